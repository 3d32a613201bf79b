//! The store's specification, run against every back end: SQLite always (a real file),
//! PostgreSQL when `CONCORD_TEST_POSTGRES_URL` is set (each test in its own schema).

mod harness;
mod specs;
