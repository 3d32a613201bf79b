-- Test–retest: a retest assignment is not served before its delay has passed. PostgreSQL dialect.
-- Never edit once applied.

-- Database-clock milliseconds from which the assignment may be served; NULL: at once.
ALTER TABLE assignments ADD COLUMN available_at BIGINT;
