-- The work queue: assignments (leases and their outcomes), per-item overlap accounting,
-- per-annotator progress, gold results. SQLite dialect. Never edit once applied.

-- The 0001 `leases` table is replaced by `assignments`, which also remembers what became of
-- each lease (submitted, skipped, expired), so that an annotator never gets an item twice.
DROP TABLE leases;

-- Overlap accounting on the item, kept in the same transaction as every lease and submit:
-- `needed` distinct human annotators (NULL until first served, then fixed from the coverage
-- rule, raised by dynamic overlap); `slots_taken` = live leases + counted submissions;
-- `open` = 1 while the item can take another lease.
ALTER TABLE items ADD COLUMN needed INTEGER;
ALTER TABLE items ADD COLUMN slots_taken INTEGER NOT NULL DEFAULT 0;
ALTER TABLE items ADD COLUMN labels_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE items ADD COLUMN open INTEGER NOT NULL DEFAULT 1;
-- The automated pre-label (from a model account's submission or the import): severity as the
-- index of the ordinal option (-1: none) and categories as a JSON array of codes.
ALTER TABLE items ADD COLUMN prelabel_severity INTEGER NOT NULL DEFAULT -1;
ALTER TABLE items ADD COLUMN prelabel_categories TEXT NOT NULL DEFAULT '[]';
ALTER TABLE items ADD COLUMN escalation_reason TEXT;
-- Serving order: priority, then pre-label severity, then age (id).
CREATE INDEX items_queue ON items(project_id, open, is_gold, priority DESC, prelabel_severity DESC, id);

-- 'label' or 'unsure' (an answer that counts as missing in agreement and escalates).
ALTER TABLE annotations ADD COLUMN kind TEXT NOT NULL DEFAULT 'label';
-- For submissions on gold items: 1 correct, 0 wrong; NULL otherwise.
ALTER TABLE annotations ADD COLUMN gold_correct INTEGER;

CREATE TABLE assignments (
    id                    INTEGER PRIMARY KEY,
    project_id            INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    item_id               INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    user_id               INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- label: the ordinary queue; gold: a gold item mixed in; rereview / retest: created
    -- deliberately, the only way an annotator sees an item again.
    purpose               TEXT NOT NULL CHECK (purpose IN ('label', 'gold', 'rereview', 'retest')),
    status                TEXT NOT NULL CHECK (status IN ('assigned', 'leased', 'submitted', 'skipped', 'expired')),
    counts_toward_overlap INTEGER NOT NULL,
    leased_at             INTEGER,
    expires_at            INTEGER,
    finished_at           INTEGER,
    annotation_id         INTEGER REFERENCES annotations(id),
    skip_reason           TEXT,
    created_by            INTEGER REFERENCES users(id),
    created_at            INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
);
CREATE UNIQUE INDEX assignments_once ON assignments(item_id, user_id) WHERE purpose IN ('label', 'gold');
CREATE INDEX assignments_item_user ON assignments(item_id, user_id);
CREATE INDEX assignments_user ON assignments(project_id, user_id, status);
CREATE INDEX assignments_live ON assignments(project_id, expires_at) WHERE status = 'leased';

CREATE TABLE annotator_progress (
    project_id          INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id             INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    day                 INTEGER NOT NULL DEFAULT 0,     -- UTC day number of done_today
    done_today          INTEGER NOT NULL DEFAULT 0,
    done_total          INTEGER NOT NULL DEFAULT 0,
    served_total        INTEGER NOT NULL DEFAULT 0,
    gold_served         INTEGER NOT NULL DEFAULT 0,
    gold_answered       INTEGER NOT NULL DEFAULT 0,
    gold_correct        INTEGER NOT NULL DEFAULT 0,
    -- Gold since the last resume: the auto-pause rule reads these.
    window_gold_answered INTEGER NOT NULL DEFAULT 0,
    window_gold_correct  INTEGER NOT NULL DEFAULT 0,
    paused              INTEGER NOT NULL DEFAULT 0,
    paused_reason       TEXT,
    paused_at           INTEGER,
    daily_cap           INTEGER,                        -- NULL: the project's cap
    excluded_categories TEXT NOT NULL DEFAULT '[]',
    time_total_ms       INTEGER NOT NULL DEFAULT 0,
    high_severity_ms    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, user_id)
);
