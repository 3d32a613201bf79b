-- PostgreSQL dialect. Never edit once applied.
--
-- Nothing to change here: the SQLite migration of the same number spells multi-value CHECK
-- lists with OR because SQLite builds a temporary B-tree per row for an IN list; PostgreSQL
-- evaluates `= ANY (ARRAY[…])` directly. The file keeps both back ends at the same version.
SELECT 1;
