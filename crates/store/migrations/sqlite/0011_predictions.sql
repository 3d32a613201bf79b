-- Model-assisted overlap's saving, and a model's imported predictions with the stratified
-- samples drawn from them for review. SQLite dialect. Never edit once applied.

-- Human labels an item was not asked for because a confident model label agreed.
ALTER TABLE items ADD COLUMN assist_saved INTEGER NOT NULL DEFAULT 0;

-- A model's prediction for an item (imported from a file): the class on the schema's
-- first single-choice or ordinal question and the model's score (0 to 1).
CREATE TABLE model_predictions (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    model      TEXT NOT NULL,
    item_id    INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    label      TEXT NOT NULL,
    score      REAL NOT NULL,
    created_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    UNIQUE (project_id, model, item_id)
);

-- A stratified sample of a model's predictions (strata: predicted class × score band).
CREATE TABLE prediction_samples (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    model      TEXT NOT NULL,
    question   TEXT NOT NULL,
    size       INTEGER NOT NULL,
    bands      INTEGER NOT NULL,
    seed       INTEGER NOT NULL,
    created_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
);
CREATE INDEX prediction_samples_model ON prediction_samples(project_id, model, id);

-- Each sampled item with its stratum and inclusion probability.
CREATE TABLE prediction_sample_items (
    sample_id   INTEGER NOT NULL REFERENCES prediction_samples(id) ON DELETE CASCADE,
    item_id     INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    stratum     TEXT NOT NULL,
    inclusion   REAL NOT NULL,
    PRIMARY KEY (sample_id, item_id)
);
