-- The expected cost of an escalated item's consensus (posterior × the project's cost
-- matrices, summed over its questions), which ranks the expert queue within a priority.
-- NULL when no question of the item has costs. PostgreSQL dialect. Never edit once applied.
ALTER TABLE escalations ADD COLUMN expected_cost DOUBLE PRECISION;
