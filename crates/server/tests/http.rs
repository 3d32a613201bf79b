//! The server's HTTP specification. Every test starts the real server (`serve` on a fresh
//! port) over a fresh store and talks to it over the wire with reqwest, the way a browser or
//! an API client would.
//!
//! Each spec runs on SQLite (a temporary file) and, when `CONCORD_TEST_POSTGRES_URL` is set,
//! on PostgreSQL too (each test in its own schema). With `CONCORD_REQUIRE_ALL_SUITES` set, a
//! missing PostgreSQL URL fails the PostgreSQL variants instead of skipping them.

#[path = "http/support.rs"]
mod support;

#[path = "http/basics.rs"]
mod basics;

#[path = "http/auth.rs"]
mod auth;

#[path = "http/roles.rs"]
mod roles;

#[path = "http/guidelines.rs"]
mod guidelines;

#[path = "http/items.rs"]
mod items;

#[path = "http/queue.rs"]
mod queue;

#[path = "http/qa.rs"]
mod qa;

#[path = "http/sql.rs"]
mod sql;

#[path = "http/layering.rs"]
mod layering;

#[path = "http/models.rs"]
mod models;

#[path = "http/retest.rs"]
mod retest;

#[path = "http/calibration.rs"]
mod calibration;

#[path = "http/exposure.rs"]
mod exposure;

#[path = "http/foreign.rs"]
mod foreign;

#[path = "http/dsa.rs"]
mod dsa;
