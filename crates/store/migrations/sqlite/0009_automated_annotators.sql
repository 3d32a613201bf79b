-- Automated annotators: their configuration, the call cache, runs with their token and cost
-- counters, failures, and what each machine label was made with. SQLite dialect. Never edit
-- once applied.

-- One configured model per (project, name), labelling as its own model account. The API key
-- is never stored: `api_key_env` names the environment variable that holds it.
CREATE TABLE model_annotators (
    id               INTEGER PRIMARY KEY,
    project_id       INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id          INTEGER NOT NULL REFERENCES users(id),
    name             TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind = 'openai' OR kind = 'rules'),
    base_url         TEXT NOT NULL DEFAULT '',
    model            TEXT NOT NULL DEFAULT '',
    api_key_env      TEXT NOT NULL DEFAULT '',
    temperature      REAL NOT NULL DEFAULT 0,
    max_concurrency  INTEGER NOT NULL DEFAULT 4,
    rate_per_minute  INTEGER,
    timeout_ms       INTEGER NOT NULL DEFAULT 60000,
    prompt_template  TEXT NOT NULL DEFAULT '',
    rules            TEXT NOT NULL DEFAULT '',
    price_in_per_1k  REAL NOT NULL DEFAULT 0,
    price_out_per_1k REAL NOT NULL DEFAULT 0,
    enabled          INTEGER NOT NULL DEFAULT 1,
    created_at       INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    updated_at       INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    UNIQUE (project_id, name),
    UNIQUE (project_id, user_id)
);

-- Every answer a model gave, by what determines it: a re-run with the same inputs costs
-- nothing. `guideline_version_id` 0 means the project had no published guideline.
CREATE TABLE model_calls (
    id                   INTEGER PRIMARY KEY,
    item_id              INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    guideline_version_id INTEGER NOT NULL,
    schema_version_id    INTEGER NOT NULL,
    prompt_digest        TEXT NOT NULL,
    model                TEXT NOT NULL,
    raw_answer           TEXT NOT NULL,
    model_version        TEXT NOT NULL DEFAULT '',
    prompt_tokens        INTEGER NOT NULL DEFAULT 0,
    completion_tokens    INTEGER NOT NULL DEFAULT 0,
    created_at           INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    UNIQUE (item_id, guideline_version_id, schema_version_id, prompt_digest, model)
);

-- One run of a model over the queue, with its counters (cost in the price's currency).
CREATE TABLE model_runs (
    id                INTEGER PRIMARY KEY,
    annotator_id      INTEGER NOT NULL REFERENCES model_annotators(id) ON DELETE CASCADE,
    job_id            INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
    labelled          INTEGER NOT NULL DEFAULT 0,
    failures          INTEGER NOT NULL DEFAULT 0,
    cached            INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost              REAL NOT NULL DEFAULT 0,
    started_at        INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    finished_at       INTEGER
);
CREATE INDEX model_runs_annotator ON model_runs(annotator_id, id);

-- An answer that never became a label: the raw text and why.
CREATE TABLE model_failures (
    id           INTEGER PRIMARY KEY,
    run_id       INTEGER NOT NULL REFERENCES model_runs(id) ON DELETE CASCADE,
    item_id      INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    raw_answer   TEXT NOT NULL,
    reason       TEXT NOT NULL,
    created_at   INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
);
CREATE INDEX model_failures_run ON model_failures(run_id, id);

-- What a machine label was made with.
CREATE TABLE model_labels (
    annotation_id        INTEGER PRIMARY KEY REFERENCES annotations(id) ON DELETE CASCADE,
    annotator_id         INTEGER NOT NULL REFERENCES model_annotators(id) ON DELETE CASCADE,
    model                TEXT NOT NULL,
    model_version        TEXT NOT NULL,
    prompt_digest        TEXT NOT NULL,
    guideline_version_id INTEGER REFERENCES guideline_versions(id),
    confidence           REAL
);
