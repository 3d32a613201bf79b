-- Fewer index writes per lease and submit. SQLite dialect. Never edit once applied.

-- One index answers both "has this annotator had this item?" (every purpose, the queue's
-- NOT EXISTS) and "at most one label or gold assignment per annotator and item" (unique):
-- re-review and retest rows get their own id as the third key, so they never collide.
-- It replaces the partial unique index and the plain (item_id, user_id) index beside it.
DROP INDEX assignments_once;
DROP INDEX assignments_item_user;
CREATE UNIQUE INDEX assignments_once
    ON assignments(item_id, user_id, (CASE WHEN purpose IN ('label', 'gold') THEN 0 ELSE id END));

-- The per-annotator lookup is only ever for live work (a held lease, a waiting re-review):
-- a partial index stays a few pages, where the full one took a random page per submission.
DROP INDEX assignments_user;
CREATE INDEX assignments_held ON assignments(project_id, user_id, status)
    WHERE status IN ('leased', 'assigned');
