//! Connecting, the dialect differences, and the single write path: [`open`] makes a store,
//! [`dialect`] holds what differs between SQLite and PostgreSQL, [`writer`] runs every write
//! and [`log_sync`] makes a group of SQLite writes durable before they are acknowledged.

mod dialect;
mod log_sync;
mod open;
mod writer;

use crate::accounts::PasswordCost;
use crate::conn::NativeReaders;
use sqlx::AnyPool;
use tokio::sync::mpsc;

pub(crate) use dialect::pg_clock_ms;
pub use dialect::{Backend, Dialect, system_now_ms};
pub use open::StoreOptions;
pub(crate) use open::{SQLITE_PRAGMAS, sqlite_path};
use writer::WriteJob;

pub(crate) struct Inner {
    pub(crate) backend: Backend,
    pub(crate) pool: AnyPool,
    writer: Option<mpsc::Sender<WriteJob>>,
    /// SQLite: connections for the hot reads.
    readers: Option<NativeReaders>,
    pub(crate) password_cost: PasswordCost,
    /// The connection URL, for connections outside the pool (import staging).
    pub(crate) url: String,
    /// PostgreSQL: the schema every pooled connection puts on its search path; connections
    /// outside the pool must do the same (tests give each test its own schema).
    pub(crate) pg_schema: Option<String>,
    /// Published label schemas by version id: they never change once published.
    pub(crate) published_schemas: crate::guidelines::PublishedSchemas,
    /// Recent token and project-role lookups; forgotten after every write.
    pub(crate) access: crate::access::AccessCache,
    /// Analysts' SQL: its turns, and on PostgreSQL its pool and role.
    pub(crate) sql: crate::sql::SqlState,
    pub(crate) gold_accuracy_bound: crate::queue_rules::GoldAccuracyBound,
    /// SQLite: how many [`Store::read`]s run at once (each on a blocking thread with a
    /// native connection of its own), as the pool's size bounded them through sqlx.
    pub(crate) read_slots: tokio::sync::Semaphore,
}
