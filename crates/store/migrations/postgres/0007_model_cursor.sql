-- A model account's place in the queue's order. PostgreSQL dialect. Never edit once applied.

-- Bumped by every change that can put a new candidate into the queue's order (an item
-- import: new items, new priorities, gold flags): a place remembered under an older epoch is
-- not trusted.
ALTER TABLE projects ADD COLUMN queue_epoch BIGINT NOT NULL DEFAULT 0;

-- The last item a model account was served in the order `priority DESC, id`, and the epoch
-- it was served under: every item before it had been had or was not a candidate, so the next
-- lease looks after it instead of walking the model's whole history.
ALTER TABLE annotator_progress ADD COLUMN cursor_priority BIGINT;
ALTER TABLE annotator_progress ADD COLUMN cursor_item_id BIGINT;
ALTER TABLE annotator_progress ADD COLUMN cursor_epoch BIGINT;
