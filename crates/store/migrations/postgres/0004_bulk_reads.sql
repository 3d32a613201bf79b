-- Bulk reads of a project. Its items in id order: the consensus run and other bulk reads page
-- through a project by id; without this index SQLite sorts the whole project for every page.
CREATE INDEX items_project_id ON items(project_id, id);

-- A fingerprint of each consensus row, so a run rewrites only the rows it changed and
-- reads the previous run's fingerprints from the index alone.
ALTER TABLE item_consensus ADD COLUMN digest BIGINT NOT NULL DEFAULT 0;
DROP INDEX item_consensus_project;
CREATE INDEX item_consensus_project ON item_consensus(project_id, question, item_id, digest);
