-- The QA loop: consensus runs and their per-item / per-annotator results, the QA-expert
-- escalation queue, and adjudications (which become precedent). SQLite dialect.
-- Never edit once applied.

-- One row per consensus computation; `summary` is the quality report (JSON): agreement with
-- intervals per question, per category, per guideline version, per week and per annotator pair.
CREATE TABLE consensus_runs (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    job_id      INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
    method      TEXT NOT NULL,
    annotations INTEGER NOT NULL,
    items       INTEGER NOT NULL,
    escalated   INTEGER NOT NULL,
    summary     TEXT NOT NULL,
    created_by  INTEGER REFERENCES users(id),
    created_at  INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
);
CREATE INDEX consensus_runs_project ON consensus_runs(project_id, id);

-- The latest consensus per item and question; each run replaces the project's rows.
CREATE TABLE item_consensus (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    item_id    INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    question   TEXT NOT NULL,
    run_id     INTEGER NOT NULL,
    label      TEXT,                 -- JSON: a code, a list of codes, or NULL when undecided
    posterior  TEXT NOT NULL,        -- JSON {code: probability}
    confidence REAL,                 -- posterior of the label
    agreement  REAL,                 -- share of agreeing pairs of the item's labels
    n_labels   INTEGER NOT NULL,
    tied       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (item_id, question)
);
CREATE INDEX item_consensus_project ON item_consensus(project_id, question, item_id);

-- The latest per-annotator quality per question (replaced by each run).
CREATE TABLE annotator_quality (
    project_id   INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    question     TEXT NOT NULL,
    run_id       INTEGER NOT NULL,
    labels       INTEGER NOT NULL,
    agreement    REAL,               -- share of labels equal to the consensus
    skill        REAL,               -- the model's skill estimate, where it has one
    confusion    TEXT NOT NULL,      -- JSON {classes, counts[true][given]} against consensus
    PRIMARY KEY (project_id, user_id, question)
);

-- The QA-expert queue. At most one open escalation per item.
CREATE TABLE escalations (
    id              INTEGER PRIMARY KEY,
    project_id      INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    item_id         INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    reasons         TEXT NOT NULL,   -- JSON [{rule, question, detail}]
    priority        INTEGER NOT NULL,-- 2 urgent, 1 high, 0 normal
    priority_reason TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    opened_at       INTEGER NOT NULL,
    due_at          INTEGER NOT NULL,
    resolved_at     INTEGER,
    resolved_by     INTEGER REFERENCES users(id),
    adjudication_id INTEGER,
    run_id          INTEGER
);
CREATE UNIQUE INDEX escalations_open_item ON escalations(item_id) WHERE status = 'open';
CREATE INDEX escalations_queue ON escalations(project_id, status, priority DESC, due_at);

-- Expert decisions; append-only (`supersedes` names the decision a new one replaces).
CREATE TABLE adjudications (
    id                   INTEGER PRIMARY KEY,
    project_id           INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    item_id              INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    expert_id            INTEGER NOT NULL REFERENCES users(id),
    answer               TEXT NOT NULL,      -- JSON {question key: value}
    rationale            TEXT NOT NULL,
    guideline_clause     TEXT NOT NULL DEFAULT '',
    guideline_version_id INTEGER REFERENCES guideline_versions(id),
    promoted_to_gold     INTEGER NOT NULL DEFAULT 0,
    example_scope        TEXT CHECK (example_scope IN ('in', 'out')),
    example_category     TEXT,
    consensus_before     TEXT,               -- JSON {question: label} when decided
    overturned           INTEGER NOT NULL DEFAULT 0,
    supersedes           INTEGER REFERENCES adjudications(id),
    created_at           INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
);
CREATE INDEX adjudications_item ON adjudications(item_id, id);
CREATE INDEX adjudications_project ON adjudications(project_id, id);

-- Dataset releases for ML: a named, immutable snapshot. Per item the final label
-- (adjudicated, else consensus) with the soft labels and agreement; the individual labels are
-- the annotations up to `annotation_watermark` (annotations are append-only, so that set never
-- changes).
CREATE TABLE releases (
    id                   INTEGER PRIMARY KEY,
    project_id           INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name                 TEXT NOT NULL,
    description          TEXT NOT NULL DEFAULT '',
    run_id               INTEGER REFERENCES consensus_runs(id) ON DELETE SET NULL,
    method               TEXT NOT NULL,
    items                INTEGER NOT NULL,
    annotation_watermark INTEGER NOT NULL,
    summary              TEXT NOT NULL,      -- JSON QA summary
    created_by           INTEGER REFERENCES users(id),
    created_at           INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    UNIQUE (project_id, name)
);

CREATE TABLE release_items (
    release_id         INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    item_id            INTEGER NOT NULL,
    external_id        TEXT NOT NULL,
    label              TEXT NOT NULL,        -- JSON {question: final value}
    adjudicated        INTEGER NOT NULL,
    soft_label         TEXT NOT NULL,        -- JSON {question: {code: probability}}
    agreement          TEXT NOT NULL,        -- JSON {question: share of agreeing pairs}
    n_labels           INTEGER NOT NULL,
    guideline_versions TEXT NOT NULL,        -- JSON [version numbers]
    is_gold            INTEGER NOT NULL,
    PRIMARY KEY (release_id, item_id)
);

-- Imported labels may carry the guideline version they were given under and their time.
ALTER TABLE annotation_staging ADD COLUMN guideline_version_id INTEGER;
ALTER TABLE annotation_staging ADD COLUMN created_at INTEGER;
