-- Calibration rounds: a batch of items served to every annotator and QA expert of a project
-- before production work; the experts' answers form the key, each annotator gets a pass /
-- retrain verdict, and those who did not pass are held from production work until released.
-- SQLite dialect. Never edit once applied.

CREATE TABLE calibration_rounds (
    id                   INTEGER PRIMARY KEY,
    project_id           INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name                 TEXT NOT NULL,
    -- Pass mark: the least share of answers equal to the key, on every question.
    threshold            REAL NOT NULL,
    -- Annotators get no production work from the round's opening until they pass.
    hold_until_verdict   INTEGER NOT NULL,
    -- The guideline version current when the round opened.
    guideline_version_id INTEGER REFERENCES guideline_versions(id),
    -- The round this one repeats (same items, after a guideline revision).
    repeats              INTEGER REFERENCES calibration_rounds(id),
    status               TEXT NOT NULL CHECK (status = 'open' OR status = 'closed'),
    created_by           INTEGER REFERENCES users(id),
    created_at           INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    closed_by            INTEGER REFERENCES users(id),
    closed_at            INTEGER
);
CREATE INDEX calibration_rounds_project ON calibration_rounds(project_id, id);
-- One open round per project: the hold and the queue's order have one round to follow.
CREATE UNIQUE INDEX calibration_rounds_one_open ON calibration_rounds(project_id) WHERE status = 'open';

CREATE TABLE calibration_items (
    round_id INTEGER NOT NULL REFERENCES calibration_rounds(id) ON DELETE CASCADE,
    item_id  INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (round_id, item_id)
);

CREATE TABLE calibration_participants (
    round_id    INTEGER NOT NULL REFERENCES calibration_rounds(id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- annotator: measured against the key; expert: answers form the key.
    part        TEXT NOT NULL CHECK (part = 'annotator' OR part = 'expert'),
    -- Set when the round closes (annotators only).
    verdict     TEXT CHECK (verdict = 'pass' OR verdict = 'retrain' OR verdict = 'incomplete'),
    score       REAL,
    released_by INTEGER REFERENCES users(id),
    released_at INTEGER,
    PRIMARY KEY (round_id, user_id)
);

-- Calibration answers never enter `annotations`: they are not production labels, so no
-- consensus, release, export or analysts' view ever reads them by accident.
CREATE TABLE calibration_answers (
    id                   INTEGER PRIMARY KEY,
    round_id             INTEGER NOT NULL REFERENCES calibration_rounds(id) ON DELETE CASCADE,
    item_id              INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    user_id              INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind                 TEXT NOT NULL,
    answer               TEXT NOT NULL,
    rationale            TEXT NOT NULL DEFAULT '',
    guideline_version_id INTEGER REFERENCES guideline_versions(id),
    time_spent_ms        INTEGER,
    idempotency_key      TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    UNIQUE (user_id, idempotency_key),
    UNIQUE (round_id, item_id, user_id)
);

ALTER TABLE assignments ADD COLUMN calibration_round_id INTEGER REFERENCES calibration_rounds(id);
-- The round whose verdict holds this annotator from production work; NULL: none.
ALTER TABLE annotator_progress ADD COLUMN calibration_hold INTEGER REFERENCES calibration_rounds(id);

-- A new assignment purpose. SQLite's documented procedure for changing a CHECK constraint
-- (as migration 0006): edit the stored CREATE TABLE text, then bump the schema version.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(sql,
    'CHECK (purpose = ''label'' OR purpose = ''gold'' OR purpose = ''rereview'' OR purpose = ''retest'')',
    'CHECK (purpose = ''label'' OR purpose = ''gold'' OR purpose = ''rereview'' OR purpose = ''retest'' OR purpose = ''calibration'')')
WHERE type = 'table' AND name = 'assignments';
PRAGMA writable_schema = RESET;
CREATE TABLE concord_schema_bump (x INTEGER);
DROP TABLE concord_schema_bump;
