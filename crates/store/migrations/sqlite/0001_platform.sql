-- concord schema, SQLite dialect. Never edit an applied migration: add a new file instead.
-- Times are integer milliseconds since the Unix epoch, taken from the database clock.
-- JSON documents are TEXT holding JSON. Flags are INTEGER 0/1.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT,                          -- NULL: cannot log in with a password
    is_admin      INTEGER NOT NULL DEFAULT 0,
    kind          TEXT NOT NULL DEFAULT 'human' CHECK (kind IN ('human', 'model')),
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
);

CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    last_used_at INTEGER,
    revoked_at   INTEGER
);

CREATE TABLE login_failures (
    id  INTEGER PRIMARY KEY,
    key TEXT NOT NULL,                           -- 'user:<name>' or 'addr:<ip>'
    at  INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
);
CREATE INDEX login_failures_key_at ON login_failures(key, at);

CREATE TABLE projects (
    id                           INTEGER PRIMARY KEY,
    slug                         TEXT NOT NULL UNIQUE,
    name                         TEXT NOT NULL,
    description                  TEXT NOT NULL DEFAULT '',
    settings                     TEXT NOT NULL DEFAULT '{}',
    current_schema_version_id    INTEGER,
    current_guideline_version_id INTEGER,
    created_by                   INTEGER REFERENCES users(id),
    created_at                   INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
);

CREATE TABLE memberships (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('annotator', 'qa_analyst', 'qa_expert', 'project_manager', 'admin')),
    created_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX memberships_user ON memberships(user_id);

-- Label schemas and guidelines are versioned the same way: drafts are editable, a published
-- version is immutable, and the project points at its current published version.
CREATE TABLE schema_versions (
    id           INTEGER PRIMARY KEY,
    project_id   INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    definition   TEXT NOT NULL,                  -- JSON: questions, options, taxonomy codes, flags
    change_note  TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL CHECK (status IN ('draft', 'published')),
    created_by   INTEGER REFERENCES users(id),
    created_at   INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    published_at INTEGER,
    UNIQUE (project_id, version)
);

CREATE TABLE guideline_versions (
    id           INTEGER PRIMARY KEY,
    project_id   INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    body         TEXT NOT NULL,                  -- markdown
    examples     TEXT NOT NULL DEFAULT '[]',     -- JSON: [{category, scope: in|out, text}]
    change_note  TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL CHECK (status IN ('draft', 'published')),
    created_by   INTEGER REFERENCES users(id),
    created_at   INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    published_at INTEGER,
    UNIQUE (project_id, version)
);

CREATE TABLE items (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    external_id TEXT NOT NULL,
    item_type   TEXT NOT NULL CHECK (item_type IN ('track', 'episode', 'audiobook', 'chapter')),
    title       TEXT NOT NULL,
    creators    TEXT NOT NULL DEFAULT '[]',      -- JSON [{name, role}]
    metadata    TEXT NOT NULL DEFAULT '{}',      -- JSON: language, markets, source_ids, parent, ...
    text_fields TEXT NOT NULL DEFAULT '{}',      -- JSON: description, lyrics_excerpt, transcript
    media_url   TEXT,
    priority    INTEGER NOT NULL DEFAULT 0,
    state       TEXT NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'in_progress', 'labelled', 'escalated', 'adjudicated')),
    is_gold     INTEGER NOT NULL DEFAULT 0,
    gold_answer TEXT,                            -- JSON answer, for gold items
    import_id   INTEGER,
    created_at  INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    updated_at  INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    UNIQUE (project_id, external_id)
);
-- Keyset paging: every listing walks one of these in id order.
CREATE INDEX items_project_state ON items(project_id, state, id);
CREATE INDEX items_project_type ON items(project_id, item_type, id);
CREATE INDEX items_project_priority ON items(project_id, priority DESC, id);

-- Append-only: a correction is a new row whose `supersedes` names the old one.
CREATE TABLE annotations (
    id                   INTEGER PRIMARY KEY,
    project_id           INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    item_id              INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    annotator_id         INTEGER NOT NULL REFERENCES users(id),
    answer               TEXT NOT NULL,          -- JSON {question key: value}
    rationale            TEXT NOT NULL DEFAULT '',
    flags                TEXT NOT NULL DEFAULT '[]',
    guideline_version_id INTEGER REFERENCES guideline_versions(id),
    schema_version_id    INTEGER REFERENCES schema_versions(id),
    time_spent_ms        INTEGER,
    supersedes           INTEGER REFERENCES annotations(id),
    idempotency_key      TEXT,
    is_late              INTEGER NOT NULL DEFAULT 0,
    source               TEXT NOT NULL DEFAULT 'workflow',   -- 'workflow' | 'import'
    created_at           INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    UNIQUE (annotator_id, idempotency_key)
);
CREATE INDEX annotations_item ON annotations(item_id, id);
CREATE INDEX annotations_project ON annotations(project_id, item_id, id);

-- Leases live in the database so that several servers share them (database clock).
CREATE TABLE leases (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    item_id    INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    expires_at INTEGER NOT NULL,
    UNIQUE (item_id, user_id)
);
CREATE INDEX leases_expiry ON leases(expires_at);

CREATE TABLE jobs (
    id             INTEGER PRIMARY KEY,
    kind           TEXT NOT NULL,
    project_id     INTEGER REFERENCES projects(id) ON DELETE CASCADE,
    status         TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    progress_done  INTEGER NOT NULL DEFAULT 0,
    progress_total INTEGER,
    message        TEXT NOT NULL DEFAULT '',
    result         TEXT,
    created_by     INTEGER REFERENCES users(id),
    created_at     INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    updated_at     INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    finished_at    INTEGER
);

-- Import staging: rows land here in short transactions, then one statement publishes them.
CREATE TABLE import_staging (
    import_id   INTEGER NOT NULL,
    line        INTEGER NOT NULL,
    external_id TEXT NOT NULL,
    item_type   TEXT NOT NULL,
    title       TEXT NOT NULL,
    creators    TEXT NOT NULL,
    metadata    TEXT NOT NULL,
    text_fields TEXT NOT NULL,
    media_url   TEXT,
    priority    INTEGER NOT NULL,
    is_gold     INTEGER NOT NULL,
    gold_answer TEXT,
    PRIMARY KEY (import_id, external_id)
);

CREATE TABLE annotation_staging (
    import_id     INTEGER NOT NULL,
    line          INTEGER NOT NULL,
    item_id       INTEGER NOT NULL,
    annotator     TEXT NOT NULL,
    answer        TEXT NOT NULL,
    rationale     TEXT NOT NULL,
    time_spent_ms INTEGER,
    PRIMARY KEY (import_id, line)
);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    actor_id   INTEGER REFERENCES users(id),
    project_id INTEGER,
    action     TEXT NOT NULL,
    entity     TEXT NOT NULL,
    entity_id  INTEGER,
    before     TEXT,
    after      TEXT
);
CREATE INDEX audit_log_project ON audit_log(project_id, id);
