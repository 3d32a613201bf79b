-- A person's place in the queue's order. SQLite dialect. Never edit once applied.

-- Bumped by every change that can make an ordinary item a person's candidate again, or move
-- it forward in the queue's order, other than those that already bump `queue_epoch`: a
-- slot given back (an expired or returned lease), an item reopened by a raised overlap, a
-- model's pre-label raising its severity. A person's place remembered under an older sum of
-- the two epochs is not trusted.
ALTER TABLE projects ADD COLUMN reopen_epoch INTEGER NOT NULL DEFAULT 0;

-- Where a person's next lease starts walking the order `priority DESC, prelabel_severity
-- DESC, id` (inclusive), and the project's `queue_epoch + reopen_epoch` it was found under:
-- every ordinary item before it was closed or had been had by them, so the walk no longer
-- passes every item they labelled that still waits for others' labels.
ALTER TABLE annotator_progress ADD COLUMN walk_priority INTEGER;
ALTER TABLE annotator_progress ADD COLUMN walk_severity INTEGER;
ALTER TABLE annotator_progress ADD COLUMN walk_item_id INTEGER;
ALTER TABLE annotator_progress ADD COLUMN walk_epoch INTEGER;
