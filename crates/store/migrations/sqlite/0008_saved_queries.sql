-- Analysts' saved SQL queries, per project: anyone who may query the project can run them.
-- SQLite dialect. Never edit once applied. (The views the queries read are not here: they
-- are TEMP views made on each query's own connection; see crates/store/src/sql/sqlite.rs.)
CREATE TABLE saved_queries (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    query      TEXT NOT NULL,
    author_id  INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    UNIQUE (project_id, name)
);
