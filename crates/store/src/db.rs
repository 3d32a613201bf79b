//! Connecting, the dialect differences, and the single write path.

use crate::accounts::PasswordCost;
use crate::conn::{Conn, NativeReaders};
use crate::error::{Result, StoreError};
use crate::{Store, migrate};
use futures_util::future::BoxFuture;
use sqlx::AnyConnection;
use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, Connection, Executor};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The few SQL fragments that differ between the back ends.
#[derive(Debug, Clone, Copy)]
pub struct Dialect(pub Backend);

/// Milliseconds since the epoch from the operating system: what SQLite's `unixepoch` reads.
pub fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Dialect {
    /// The database clock in milliseconds since the epoch. Leases, sessions and rate
    /// limits use it so that several servers agree on time.
    pub fn now_ms(self) -> &'static str {
        match self.0 {
            Backend::Sqlite => "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
            Backend::Postgres => "(floor(extract(epoch from clock_timestamp()) * 1000))::bigint",
        }
    }

    /// The `n`-th (1-based) bind parameter of a statement whose parameters appear in order.
    /// SQLite gets anonymous `?`: sqlx looks up every named parameter by a linear scan, which
    /// makes statements with thousands of `$n` quadratic.
    pub fn param(self, n: usize) -> String {
        match self.0 {
            Backend::Sqlite => "?".to_owned(),
            Backend::Postgres => format!("${n}"),
        }
    }

    /// An aggregate packing a subquery's rows into one JSON text, an array of `[column, …]`
    /// arrays in `order`: bulk reads take one driver row per page instead of one per row
    /// (the driver's per-row cost, not the database, dominates reads of a million rows).
    /// On SQLite the order is the subquery's, which must have an `ORDER BY`.
    pub fn json_rows(self, columns: &str, order: &str) -> String {
        match self.0 {
            Backend::Sqlite => format!("json_group_array(json_array({columns}))"),
            Backend::Postgres => format!(
                "COALESCE(json_agg(json_build_array({columns}) ORDER BY {order}), '[]'::json)::text"
            ),
        }
    }

    pub fn is_postgres(self) -> bool {
        self.0 == Backend::Postgres
    }

    /// Case-insensitive substring match operator.
    pub fn ilike(self) -> &'static str {
        match self.0 {
            Backend::Sqlite => "LIKE",
            Backend::Postgres => "ILIKE",
        }
    }
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `postgres://…`, `sqlite://…`, or a plain file path (SQLite).
    pub url: String,
    /// PostgreSQL only: the schema to create and use (tests give each test its own).
    pub pg_schema: Option<String>,
    pub password_cost: PasswordCost,
    pub max_connections: u32,
    /// Most write requests committed together by the SQLite writer.
    pub group_commit_limit: usize,
    /// How long the token and project-role lookups of API requests are remembered while
    /// nothing in this process writes (see `access.rs`); zero looks them up every time.
    pub access_ttl: Duration,
}

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        StoreOptions {
            url: url.into(),
            pg_schema: None,
            password_cost: PasswordCost::Default,
            max_connections: 16,
            group_commit_limit: 512,
            access_ttl: crate::access::DEFAULT_ACCESS_TTL,
        }
    }
}

pub(crate) struct Inner {
    pub(crate) backend: Backend,
    pub(crate) pool: AnyPool,
    writer: Option<mpsc::Sender<WriteJob>>,
    /// SQLite: connections for the hot reads.
    readers: Option<NativeReaders>,
    pub(crate) password_cost: PasswordCost,
    /// The connection URL, for connections outside the pool (import staging).
    pub(crate) url: String,
    /// Published label schemas by version id: they never change once published.
    pub(crate) published_schemas: crate::guidelines::PublishedSchemas,
    /// Recent token and project-role lookups; forgotten after every write.
    pub(crate) access: crate::access::AccessCache,
}

/// A write request as the SQLite writer sees it: run the caller's operation on the shared
/// transaction, report whether it succeeded, and hand back what to do once the commit's fate
/// is known. Ordinary writes run through sqlx; the hot paths on the writer's own connection.
enum WriteJob {
    Sqlx(SqlxJob),
    Native(NativeJob),
}
type Completion = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;

/// Queues a job for the SQLite writer and waits for its acknowledgement.
async fn through_writer<T>(
    writer: &mpsc::Sender<WriteJob>,
    job: impl FnOnce(oneshot::Sender<Result<T>>) -> WriteJob,
) -> Result<T> {
    let (done, result) = oneshot::channel();
    writer
        .send(job(done))
        .await
        .map_err(|_| StoreError::WriterGone)?;
    result.await.map_err(|_| StoreError::WriterGone)?
}

/// What a caller is told once its transaction's fate is known: its own error, or its value
/// if the commit went through.
fn after_commit<T>(outcome: Result<T>, commit: std::result::Result<(), String>) -> Result<T> {
    match (outcome, commit) {
        (Ok(value), Ok(())) => Ok(value),
        (Err(e), _) => Err(e),
        (Ok(_), Err(reason)) => Err(StoreError::conflict(format!(
            "the transaction could not be committed: {reason}"
        ))),
    }
}

/// Wraps a caller's result so that it is delivered only once the commit's fate is known.
fn completion<T: Send + 'static>(
    outcome: Result<T>,
    done: oneshot::Sender<Result<T>>,
) -> (bool, Completion) {
    let ok = outcome.is_ok();
    let completion: Completion = Box::new(move |commit| {
        let _ = done.send(after_commit(outcome, commit));
    });
    (ok, completion)
}

/// WAL for concurrent readers; FULL so that a commit is on disk when acknowledged; a long
/// busy timeout because an import's publish step briefly holds the write lock.
pub(crate) const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 60000;";

/// The back end and the URL sqlx opens. Every SQLite spelling — a bare path,
/// `sqlite:///abs/path.db`, `sqlite://rel.db`, `sqlite:rel.db`, with or without a query —
/// names the same file and creates it when missing, as a bare path does.
fn normalise_url(url: &str) -> (Backend, String) {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return (Backend::Postgres, url.to_owned());
    }
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, query),
        None => (rest, ""),
    };
    let mut params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    if !params.iter().any(|p| p.starts_with("mode=")) {
        params.push("mode=rwc");
    }
    (
        Backend::Sqlite,
        format!("sqlite://{path}?{}", params.join("&")),
    )
}

fn valid_schema_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl Store {
    /// Opens (creating if needed) the database and applies pending migrations.
    pub async fn open(options: StoreOptions) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalise_url(&options.url);
        let schema = options.pg_schema.clone();
        if let Some(name) = &schema
            && !valid_schema_name(name)
        {
            return Err(StoreError::invalid(format!(
                "schema name {name:?} must be lower-case letters, digits and underscores"
            )));
        }
        if backend == Backend::Postgres
            && let Some(name) = &schema
        {
            let mut conn = AnyConnection::connect(&url).await?;
            conn.execute(format!("CREATE SCHEMA IF NOT EXISTS {name}").as_str())
                .await?;
            conn.close().await?;
        }

        let after_connect_schema = schema.clone();
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                let schema = after_connect_schema.clone();
                Box::pin(async move {
                    match backend {
                        Backend::Sqlite => {
                            conn.execute(SQLITE_PRAGMAS).await?;
                        }
                        Backend::Postgres => {
                            if let Some(name) = schema {
                                conn.execute(format!("SET search_path TO {name}").as_str())
                                    .await?;
                            }
                        }
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;

        let mut readers = None;
        let writer = match backend {
            Backend::Sqlite => {
                let mut conn = AnyConnection::connect(&url).await?;
                conn.execute(SQLITE_PRAGMAS).await?;
                // The one writer gets a larger page cache (64 MiB, filled only as used):
                // bulk writes touch indexes far bigger than the default 2 MiB.
                conn.execute("PRAGMA cache_size = -65536").await?;
                migrate::apply(&mut conn, backend).await?;
                let native = open_native(&url)?;
                readers = Some(NativeReaders::new(sqlite_path(&url)?));
                let (tx, rx) = mpsc::channel(4096);
                let log = wal_path(&sqlite_path(&url)?);
                spawn_writer(conn, native, log, rx, options.group_commit_limit.max(1))?;
                Some(tx)
            }
            Backend::Postgres => {
                let mut conn = pool.acquire().await?;
                migrate::apply(&mut conn, backend).await?;
                None
            }
        };
        Ok(Store {
            inner: Arc::new(Inner {
                backend,
                pool,
                writer,
                readers,
                password_cost: options.password_cost,
                url,
                published_schemas: Default::default(),
                access: crate::access::AccessCache::new(options.access_ttl),
            }),
        })
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    pub fn dialect(&self) -> Dialect {
        Dialect(self.inner.backend)
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    /// True when the database answers a trivial query (for `/readyz`).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").fetch_one(self.pool()).await.is_ok()
    }

    /// PostgreSQL: drops a scratch schema (benchmarks and tests clean up with it). Refused on
    /// SQLite, and for names that are not plain identifiers.
    pub async fn drop_schema(&self, name: &str) -> Result<()> {
        if self.inner.backend != Backend::Postgres {
            return Err(StoreError::invalid("schemas exist on PostgreSQL only"));
        }
        if !valid_schema_name(name) {
            return Err(StoreError::invalid(format!(
                "schema name {name:?} must be lower-case letters, digits and underscores"
            )));
        }
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Closes the pool; pending writes already acknowledged are on disk.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    /// The one write path. `op` runs inside a transaction; its result is returned only
    /// after that transaction has committed. On SQLite concurrent calls share one commit
    /// (each in its own savepoint, so one failure does not undo the others).
    pub async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let outcome = match &self.inner.writer {
            Some(writer) => {
                through_writer(writer, |done| {
                    WriteJob::Sqlx(Box::new(move |conn| {
                        Box::pin(async move { completion(op(conn).await, done) })
                    }))
                })
                .await
            }
            None => {
                let mut tx = self.inner.pool.begin().await?;
                match op(&mut tx).await {
                    Ok(value) => tx.commit().await.map(|()| value).map_err(Into::into),
                    Err(e) => {
                        let _ = tx.rollback().await;
                        Err(e)
                    }
                }
            }
        };
        // After the commit (or its failure), so that no lookup read before it is kept.
        self.inner.access.invalidate();
        outcome
    }

    /// [`Store::write`] for the hot paths: on SQLite `op` runs on the writer thread's own
    /// connection, without a thread hand-off per statement; on PostgreSQL it is the same
    /// ordinary transaction. `op` may run more than once on SQLite (see
    /// [`run_native_batch`]); only the outcome of the run that commits is returned.
    pub(crate) async fn write_native<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> Fn(Conn<'c>) -> BoxFuture<'c, Result<T>> + Send + Sync + 'static,
    {
        match &self.inner.writer {
            Some(writer) => {
                through_writer(writer, |done| {
                    WriteJob::Native(Box::new(PendingWrite {
                        op,
                        outcome: None,
                        done,
                    }))
                })
                .await
            }
            None => self.write(move |c| op(Conn::Sqlx(c))).await,
        }
    }

    /// A long read on SQLite (an export): `op` runs on a native connection of its own, on
    /// the calling thread, which should be a blocking one. `None` on PostgreSQL.
    pub(crate) fn with_native_reader<T>(
        &self,
        op: impl FnOnce(&mut rusqlite::Connection) -> Result<T>,
    ) -> Option<Result<T>> {
        let readers = self.inner.readers.as_ref()?;
        Some(readers.take().and_then(|mut conn| {
            let result = op(&mut conn);
            readers.give_back(conn);
            result
        }))
    }

    /// A hot read: on SQLite it runs inline on a connection of its own (no hand-off to a
    /// driver thread); on PostgreSQL on a pooled connection.
    pub(crate) async fn read_native<T, F>(&self, op: F) -> Result<T>
    where
        F: for<'c> FnOnce(Conn<'c>) -> BoxFuture<'c, Result<T>>,
    {
        match &self.inner.readers {
            Some(readers) => {
                let mut conn = readers.take()?;
                let result = op(Conn::Sqlite(&mut conn)).await;
                readers.give_back(conn);
                result
            }
            None => {
                let mut conn = self.inner.pool.acquire().await?;
                op(Conn::Sqlx(&mut conn)).await
            }
        }
    }
}

fn sqlite_path(url: &str) -> Result<std::path::PathBuf> {
    let options: SqliteConnectOptions = url.parse()?;
    Ok(options.get_filename().to_owned())
}

/// The writer's own SQLite connection, on the same file as the pool. Its commits do not
/// wait for the disk (`synchronous = NORMAL`): the log syncer flushes the log before any of
/// them is acknowledged (see [`spawn_log_syncer`]).
fn open_native(url: &str) -> Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(sqlite_path(url)?)?;
    conn.execute_batch(SQLITE_PRAGMAS)?;
    conn.execute_batch("PRAGMA cache_size = -65536; PRAGMA synchronous = NORMAL")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// SQLite's write-ahead log for a database file.
fn wal_path(database: &std::path::Path) -> std::path::PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push("-wal");
    std::path::PathBuf::from(name)
}

/// The SQLite writer gets an OS thread and an executor of its own: as a task among the
/// server's, each of its waits would queue behind the HTTP tasks.
fn spawn_writer(
    conn: AnyConnection,
    native: rusqlite::Connection,
    log: std::path::PathBuf,
    rx: mpsc::Receiver<WriteJob>,
    limit: usize,
) -> Result<()> {
    let cannot_start = |e: std::io::Error| {
        StoreError::invalid(format!("the SQLite writer thread could not start: {e}"))
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(cannot_start)?;
    let syncer = spawn_log_syncer(log).map_err(cannot_start)?;
    std::thread::Builder::new()
        .name("concord-writer".into())
        .spawn(move || runtime.block_on(writer_loop(conn, native, syncer, rx, limit)))
        .map_err(cannot_start)?;
    Ok(())
}

/// Hot-path writes whose commit is in the log but perhaps not yet on disk.
type Unsynced = Vec<NativeJob>;

/// Acknowledges committed hot-path writes once the log holding them is on disk. The writer
/// commits without waiting for the disk and goes on with the next batch while this thread
/// flushes the log (one `fdatasync` for every commit waiting) and only then answers: the
/// guarantee of a synchronous commit — nothing is acknowledged before its commit is durable
/// (the log is one file written in order, so a flush covers every commit before it) —
/// without the writer idling through each flush. Other connections may read a commit a
/// moment before it is acknowledged; a crash in that moment loses only unacknowledged work.
/// The log is opened afresh for each flush, so a log SQLite has recreated is the one flushed.
fn spawn_log_syncer(log: std::path::PathBuf) -> std::io::Result<std::sync::mpsc::Sender<Unsynced>> {
    let (tx, rx) = std::sync::mpsc::channel::<Unsynced>();
    std::thread::Builder::new()
        .name("concord-log-sync".into())
        .spawn(move || {
            while let Ok(mut waiting) = rx.recv() {
                while let Ok(more) = rx.try_recv() {
                    waiting.extend(more);
                }
                let flushed = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&log)
                    .and_then(|file| file.sync_data());
                let commit = flushed.map_err(|e| {
                    tracing::error!(error = %e, log = %log.display(), "could not flush the SQLite log to disk");
                    format!("the commit could not be flushed to disk: {e}")
                });
                for job in waiting {
                    job.finish(commit.clone());
                }
            }
        })?;
    Ok(tx)
}

/// The SQLite writer: waits for a request, takes every other request already waiting (up to
/// `limit`), runs them in one transaction per connection, and has them acknowledged once the
/// commit is on disk.
async fn writer_loop(
    mut conn: AnyConnection,
    mut native: rusqlite::Connection,
    syncer: std::sync::mpsc::Sender<Unsynced>,
    mut rx: mpsc::Receiver<WriteJob>,
    limit: usize,
) {
    let mut sqlx_jobs = Vec::with_capacity(limit);
    let mut native_jobs = Vec::with_capacity(limit);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(job) = next.take() {
            match job {
                WriteJob::Sqlx(job) => sqlx_jobs.push(job),
                WriteJob::Native(job) => native_jobs.push(job),
            }
            taken += 1;
            if taken < limit {
                next = rx.try_recv().ok();
            }
        }
        if !native_jobs.is_empty() {
            let committed = run_native_batch(&mut native, &mut native_jobs).await;
            let jobs = std::mem::replace(&mut native_jobs, Vec::with_capacity(limit));
            match committed {
                Ok(()) => {
                    if let Err(unsent) = syncer.send(jobs) {
                        for job in unsent.0 {
                            job.finish(Err("the log syncer has stopped".into()));
                        }
                    }
                }
                Err(reason) => {
                    for job in jobs {
                        job.finish(Err(reason.clone()));
                    }
                }
            }
        }
        if !sqlx_jobs.is_empty() {
            run_sqlx_batch(&mut conn, &mut sqlx_jobs).await;
        }
    }
}

type SqlxJob =
    Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, (bool, Completion)> + Send>;
type NativeJob = Box<dyn NativeWrite>;

/// A hot-path write waiting in the SQLite writer: its operation can run again (when its
/// batch has to start over), and its outcome is delivered once the commit's fate is known.
trait NativeWrite: Send {
    /// Runs the operation on the shared transaction; whether it succeeded.
    fn run<'c>(&'c mut self, conn: Conn<'c>) -> BoxFuture<'c, bool>;
    /// Delivers the last run's outcome, or the commit's failure.
    fn finish(self: Box<Self>, commit: std::result::Result<(), String>);
}

struct PendingWrite<T, F> {
    op: F,
    outcome: Option<Result<T>>,
    done: oneshot::Sender<Result<T>>,
}

impl<T, F> NativeWrite for PendingWrite<T, F>
where
    T: Send + 'static,
    F: for<'c> Fn(Conn<'c>) -> BoxFuture<'c, Result<T>> + Send + Sync + 'static,
{
    fn run<'c>(&'c mut self, conn: Conn<'c>) -> BoxFuture<'c, bool> {
        Box::pin(async move {
            let outcome = (self.op)(conn).await;
            let ok = outcome.is_ok();
            self.outcome = Some(outcome);
            ok
        })
    }

    fn finish(self: Box<Self>, commit: std::result::Result<(), String>) {
        let Some(outcome) = self.outcome else {
            // Never ran: dropping `done` tells the caller the writer could not run it.
            return;
        };
        let _ = self.done.send(after_commit(outcome, commit));
    }
}

// A job that cannot run is dropped: its caller's channel closes and it gets an error.
async fn run_sqlx_batch(conn: &mut AnyConnection, batch: &mut Vec<SqlxJob>) {
    if let Err(e) = conn.execute("BEGIN IMMEDIATE").await {
        tracing::error!(error = %e, "sqlite writer could not begin a transaction");
        batch.clear();
        return;
    }
    let mut completions: Vec<Completion> = Vec::with_capacity(batch.len());
    for job in batch.drain(..) {
        if let Err(e) = conn.execute("SAVEPOINT concord_write").await {
            tracing::error!(error = %e, "sqlite writer could not open a savepoint");
            continue;
        }
        let (ok, completion) = job(conn).await;
        if let Err(e) = conn.execute(savepoint_end(ok)).await {
            tracing::error!(error = %e, "sqlite writer could not close a savepoint");
        }
        completions.push(completion);
    }
    let commit = conn.execute("COMMIT").await.map(|_| ()).map_err(|e| {
        tracing::error!(error = %e, "sqlite group commit failed");
        e.to_string()
    });
    if commit.is_err() {
        let _ = conn.execute("ROLLBACK").await;
    }
    for completion in completions {
        completion(commit.clone());
    }
}

/// Runs a batch of hot-path writes in one transaction. First without savepoints: opening and
/// releasing one per write made SQLite copy every page a write touched into its statement
/// journal, a sixth of the writer's time. If any write fails, the whole transaction is
/// rolled back and the batch runs again with a savepoint per write, so that the failure
/// undoes only itself; nothing is acknowledged before the commit either way.
async fn run_native_batch(
    conn: &mut rusqlite::Connection,
    batch: &mut Vec<NativeJob>,
) -> std::result::Result<(), String> {
    if let Err(e) = control(conn, &["BEGIN IMMEDIATE"]) {
        tracing::error!(error = %e, "sqlite writer could not begin a transaction");
        batch.clear();
        return Err(e.to_string());
    }
    let mut all_ok = true;
    for job in batch.iter_mut() {
        if !job.run(Conn::Sqlite(conn)).await {
            all_ok = false;
            break;
        }
    }
    if !all_ok {
        // A failed statement may already have ended the transaction; that is fine here.
        let _ = control(conn, &["ROLLBACK"]);
        if let Err(e) = control(conn, &["BEGIN IMMEDIATE"]) {
            tracing::error!(error = %e, "sqlite writer could not begin a transaction");
            batch.clear();
            return Err(e.to_string());
        }
        let mut kept = Vec::with_capacity(batch.len());
        for mut job in batch.drain(..) {
            if let Err(e) = control(conn, &["SAVEPOINT concord_write"]) {
                tracing::error!(error = %e, "sqlite writer could not open a savepoint");
                continue;
            }
            let ok = job.run(Conn::Sqlite(conn)).await;
            let end: &[&str] = if ok {
                &["RELEASE concord_write"]
            } else {
                &["ROLLBACK TO concord_write", "RELEASE concord_write"]
            };
            if let Err(e) = control(conn, end) {
                tracing::error!(error = %e, "sqlite writer could not close a savepoint");
            }
            kept.push(job);
        }
        *batch = kept;
    }
    let commit = control(conn, &["COMMIT"]).map_err(|e| {
        tracing::error!(error = %e, "sqlite group commit failed");
        e.to_string()
    });
    if commit.is_err() {
        let _ = control(conn, &["ROLLBACK"]);
    }
    commit
}

/// Transaction control on the writer's connection, from its statement cache (parsing them
/// afresh for every job cost more than running them).
fn control(conn: &rusqlite::Connection, statements: &[&str]) -> rusqlite::Result<()> {
    for sql in statements {
        conn.prepare_cached(sql)?.execute([])?;
    }
    Ok(())
}

fn savepoint_end(ok: bool) -> &'static str {
    if ok {
        "RELEASE concord_write"
    } else {
        "ROLLBACK TO concord_write; RELEASE concord_write"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::stmt;

    fn insert_user(name: String) -> crate::conn::Stmt {
        stmt("INSERT INTO users (username, display_name) VALUES ($1, $1)").bind(name)
    }

    /// The native hot path shares the writer's group commit with ordinary writes: requests
    /// queued together commit together, and one that fails undoes only itself.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn native_writes_in_one_group_fail_alone_and_commit_with_ordinary_writes() {
        let dir = tempfile::tempdir().expect("a scratch folder");
        let path = dir.path().join("native.db");
        let store = Store::open(StoreOptions::new(path.to_string_lossy().to_string()))
            .await
            .expect("a store");
        // Holds the writer while the others queue up behind it.
        let blocker = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write_native(|mut c| {
                        Box::pin(async move {
                            c.execute(insert_user("blocker".into())).await?;
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            Ok(())
                        })
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut tasks = Vec::new();
        for n in 0..24 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let name = format!("writer-{n}");
                if n % 5 == 0 {
                    // An ordinary write in the same queue.
                    return store
                        .write(move |c| {
                            Box::pin(async move {
                                Conn::Sqlx(c).execute(insert_user(name)).await?;
                                Ok(n)
                            })
                        })
                        .await;
                }
                store
                    .write_native(move |mut c| {
                        let name = name.clone();
                        Box::pin(async move {
                            c.execute(insert_user(name)).await?;
                            if n == 7 {
                                return Err(StoreError::invalid("changed its mind"));
                            }
                            if n == 13 {
                                c.execute(insert_user("blocker".into())).await?;
                            }
                            Ok(n)
                        })
                    })
                    .await
            }));
        }
        blocker
            .await
            .expect("the blocker ran")
            .expect("the blocker committed");
        for (n, task) in tasks.into_iter().enumerate() {
            let result = task.await.expect("the writer task ran");
            match n {
                7 => assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}"),
                13 => assert!(result.as_ref().is_err_and(StoreError::is_unique_violation)),
                _ => assert_eq!(result.expect("acknowledged"), n as i32),
            }
        }
        for n in 0..24 {
            let found = store.user_by_name(&format!("writer-{n}")).await;
            match n {
                7 | 13 => assert!(
                    matches!(found, Err(StoreError::NotFound(_))),
                    "the failed write {n} left a row behind"
                ),
                _ => assert!(found.is_ok(), "the acknowledged write {n} was lost"),
            }
        }
        assert_eq!(store.count_users().await.expect("a count"), 23);
    }
}

#[cfg(test)]
mod url_tests {
    use super::{Backend, normalise_url};

    #[test]
    fn every_sqlite_spelling_names_the_same_file_and_creates_it() {
        for (given, opened) in [
            ("/abs/path.db", "sqlite:///abs/path.db?mode=rwc"),
            ("sqlite:///abs/path.db", "sqlite:///abs/path.db?mode=rwc"),
            ("sqlite://rel.db", "sqlite://rel.db?mode=rwc"),
            ("sqlite:rel.db", "sqlite://rel.db?mode=rwc"),
            ("rel.db", "sqlite://rel.db?mode=rwc"),
            ("sqlite://rel.db?mode=ro", "sqlite://rel.db?mode=ro"),
        ] {
            assert_eq!(
                normalise_url(given),
                (Backend::Sqlite, opened.to_string()),
                "{given}"
            );
        }
        assert_eq!(normalise_url("postgres://h/db").0, Backend::Postgres);
    }
}
