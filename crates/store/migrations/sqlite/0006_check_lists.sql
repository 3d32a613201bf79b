-- CHECK constraints spelled with OR instead of a multi-value IN list. SQLite dialect. Never
-- edit once applied.
--
-- SQLite checks `x IN ('a', 'b', 'c')` by building a temporary B-tree of the list for every
-- row it inserts or updates: ≈ 3 µs a row, 3.4 s of a million-item import, and two per queue
-- lease. `x = 'a' OR x = 'b' OR …` is a few comparisons. The constraints mean the same and the
-- stored rows do not change, so the tables are not rebuilt: this is SQLite's documented
-- procedure for changing a CHECK constraint (lang_altertable.html, "making other kinds of
-- table schema changes"): edit the stored CREATE TABLE text, reload the schema and bump the
-- schema version so that every open connection reloads it too.
PRAGMA writable_schema = ON;

UPDATE sqlite_schema
SET sql = replace(replace(sql,
    'CHECK (item_type IN (''track'', ''episode'', ''audiobook'', ''chapter''))',
    'CHECK (item_type = ''track'' OR item_type = ''episode'' OR item_type = ''audiobook'' OR item_type = ''chapter'')'),
    'CHECK (state IN (''queued'', ''in_progress'', ''labelled'', ''escalated'', ''adjudicated''))',
    'CHECK (state = ''queued'' OR state = ''in_progress'' OR state = ''labelled'' OR state = ''escalated'' OR state = ''adjudicated'')')
WHERE type = 'table' AND name = 'items';

UPDATE sqlite_schema
SET sql = replace(replace(sql,
    'CHECK (purpose IN (''label'', ''gold'', ''rereview'', ''retest''))',
    'CHECK (purpose = ''label'' OR purpose = ''gold'' OR purpose = ''rereview'' OR purpose = ''retest'')'),
    'CHECK (status IN (''assigned'', ''leased'', ''submitted'', ''skipped'', ''expired''))',
    'CHECK (status = ''assigned'' OR status = ''leased'' OR status = ''submitted'' OR status = ''skipped'' OR status = ''expired'')')
WHERE type = 'table' AND name = 'assignments';

UPDATE sqlite_schema
SET sql = replace(sql,
    'CHECK (role IN (''annotator'', ''qa_analyst'', ''qa_expert'', ''project_manager'', ''admin''))',
    'CHECK (role = ''annotator'' OR role = ''qa_analyst'' OR role = ''qa_expert'' OR role = ''project_manager'' OR role = ''admin'')')
WHERE type = 'table' AND name = 'memberships';

UPDATE sqlite_schema
SET sql = replace(sql,
    'CHECK (status IN (''queued'', ''running'', ''succeeded'', ''failed''))',
    'CHECK (status = ''queued'' OR status = ''running'' OR status = ''succeeded'' OR status = ''failed'')')
WHERE type = 'table' AND name = 'jobs';

PRAGMA writable_schema = RESET;

-- Any schema change bumps the schema version: the other open connections reload the schema.
CREATE TABLE concord_schema_bump (x INTEGER);
DROP TABLE concord_schema_bump;
