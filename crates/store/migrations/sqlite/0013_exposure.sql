-- Exposure budgets: each annotator's high-severity labels and time per category and UTC day
-- (the queue stops serving items flagged in a category whose limit is reached).
-- SQLite dialect. Never edit once applied.

CREATE TABLE exposure_days (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    day        INTEGER NOT NULL,            -- days since 1970-01-01, UTC
    category   TEXT NOT NULL,
    items      INTEGER NOT NULL DEFAULT 0,
    time_ms    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, user_id, day, category)
);
