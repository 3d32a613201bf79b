//! The single write path: every write is a job for one writer, which commits jobs queued
//! together as one group (each in its own savepoint, so one that fails undoes only itself)
//! and answers each only after the group is durable.

use super::log_sync::{Unsynced, spawn_log_syncer};
use crate::Store;
use crate::conn::{Conn, Row, Stmt};
use crate::error::{Result, StoreError};
use futures_util::future::BoxFuture;
use sqlx::AnyConnection;
use sqlx::Executor;
use tokio::sync::{mpsc, oneshot};

/// A write request as the SQLite writer sees it: run the caller's operation on the shared
/// transaction, report whether it succeeded, and hand back what to do once the commit's fate
/// is known. Ordinary writes run through sqlx; the hot paths on the writer's own connection.
pub(super) enum WriteJob {
    Sqlx(SqlxJob),
    Native(NativeJob),
}

pub(super) type Completion = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;

/// Queues a job for the SQLite writer and waits for its acknowledgement.
pub(super) async fn through_writer<T>(
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
pub(super) fn after_commit<T>(
    outcome: Result<T>,
    commit: std::result::Result<(), String>,
) -> Result<T> {
    match (outcome, commit) {
        (Ok(value), Ok(())) => Ok(value),
        (Err(e), _) => Err(e),
        (Ok(_), Err(reason)) => Err(StoreError::conflict(format!(
            "the transaction could not be committed: {reason}"
        ))),
    }
}

/// Wraps a caller's result so that it is delivered only once the commit's fate is known.
pub(super) fn completion<T: Send + 'static>(
    outcome: Result<T>,
    done: oneshot::Sender<Result<T>>,
) -> (bool, Completion) {
    let ok = outcome.is_ok();
    let completion: Completion = Box::new(move |commit| {
        let _ = done.send(after_commit(outcome, commit));
    });
    (ok, completion)
}

/// The SQLite writer gets an OS thread and an executor of its own: as a task among the
/// server's, each of its waits would queue behind the HTTP tasks.
pub(super) fn spawn_writer(
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

/// The SQLite writer: waits for a request, takes every other request already waiting (up to
/// `limit`), runs them in one transaction per connection, and has them acknowledged once the
/// commit is on disk.
pub(super) async fn writer_loop(
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

pub(super) type SqlxJob =
    Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, (bool, Completion)> + Send>;

pub(super) type NativeJob = Box<dyn NativeWrite>;

/// A hot-path write waiting in the SQLite writer: its operation can run again (when its
/// batch has to start over), and its outcome is delivered once the commit's fate is known.
pub(super) trait NativeWrite: Send {
    /// Runs the operation on the shared transaction; whether it succeeded.
    fn run<'c>(&'c mut self, conn: Conn<'c>) -> BoxFuture<'c, bool>;
    /// Delivers the last run's outcome, or the commit's failure.
    fn finish(self: Box<Self>, commit: std::result::Result<(), String>);
}

pub(super) struct PendingWrite<T, F> {
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
pub(super) async fn run_sqlx_batch(conn: &mut AnyConnection, batch: &mut Vec<SqlxJob>) {
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
pub(super) async fn run_native_batch(
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
pub(super) fn control(conn: &rusqlite::Connection, statements: &[&str]) -> rusqlite::Result<()> {
    for sql in statements {
        conn.prepare_cached(sql)?.execute([])?;
    }
    Ok(())
}

pub(super) fn savepoint_end(ok: bool) -> &'static str {
    if ok {
        "RELEASE concord_write"
    } else {
        "ROLLBACK TO concord_write; RELEASE concord_write"
    }
}

impl Store {
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
            None => self.pool_transaction(op).await,
        };
        // After the commit (or its failure), so that no lookup read before it is kept.
        self.inner.access.invalidate();
        outcome
    }

    /// `op` in a transaction of the pool (PostgreSQL's writes), committed when it succeeds.
    async fn pool_transaction<T, F>(&self, op: F) -> Result<T>
    where
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T>>,
    {
        let mut tx = self.inner.pool.begin().await?;
        match op(&mut tx).await {
            Ok(value) => tx.commit().await.map(|()| value).map_err(Into::into),
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
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
            // Not through `write`: that forgets the remembered token and role lookups, and
            // a lease or a submission changes neither (on PostgreSQL every queue request
            // paid two more round trips for them).
            None => self.pool_transaction(move |c| op(Conn::Sqlx(c))).await,
        }
    }

    /// The ordinary write over [`Conn`]: [`Store::write_native`], after which the cached
    /// token and role lookups are forgotten, as after [`Store::write`] (the hot paths keep
    /// them: a lease or a submission changes no token or role).
    pub(crate) async fn write_conn<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> Fn(Conn<'c>) -> BoxFuture<'c, Result<T>> + Send + Sync + 'static,
    {
        let outcome = self.write_native(op).await;
        self.inner.access.invalidate();
        outcome
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

    /// A read that can be long (a whole project's labels, a list, an export): on SQLite `op`
    /// runs on a native read-only connection on a blocking thread, so that it holds no
    /// tokio worker while SQLite steps; on PostgreSQL on a pooled connection.
    pub(crate) async fn read<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(Conn<'c>) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        if self.inner.readers.is_none() {
            let mut conn = self.inner.pool.acquire().await?;
            return op(Conn::Sqlx(&mut conn)).await;
        }
        // The semaphore is never closed; if it were, reads would be over, as for a closed pool.
        let _slot = self
            .inner
            .read_slots
            .acquire()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let store = self.clone();
        let runtime = tokio::runtime::Handle::current();
        let read = tokio::task::spawn_blocking(move || {
            // Conn's SQLite methods never suspend: the future completes on this thread.
            store.with_native_reader(|conn| runtime.block_on(op(Conn::Sqlite(conn))))
        });
        match read.await {
            Ok(Some(result)) => result,
            // A panic in `op` reaches the caller as it would have inline.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled (the runtime is shutting down), as when sqlx's SQLite worker stops.
            Ok(None) | Err(_) => Err(sqlx::Error::WorkerCrashed.into()),
        }
    }

    /// One statement's rows, through [`Store::read`].
    pub(crate) async fn read_rows(&self, statement: Stmt) -> Result<Vec<Row>> {
        self.read(move |mut c| Box::pin(async move { c.fetch_all(statement).await }))
            .await
    }

    /// One statement's first row if any, through [`Store::read`].
    pub(crate) async fn read_optional(&self, statement: Stmt) -> Result<Option<Row>> {
        self.read(move |mut c| Box::pin(async move { c.fetch_optional(statement).await }))
            .await
    }

    /// One statement's row (`RowNotFound` without one, as sqlx), through [`Store::read`].
    pub(crate) async fn read_one(&self, statement: Stmt) -> Result<Row> {
        self.read(move |mut c| Box::pin(async move { c.fetch_one(statement).await }))
            .await
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;
    use crate::conn::stmt;
    use std::time::Duration;

    fn insert_user(name: String) -> crate::conn::Stmt {
        stmt("INSERT INTO users (username, display_name) VALUES ($1, $1)").bind(name)
    }

    /// The native hot path shares the writer's group commit with ordinary writes: requests
    /// queued together commit together, and one that fails undoes only itself.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn native_writes_in_one_group_fail_alone_and_commit_with_ordinary_writes() {
        let dir = tempfile::tempdir().expect("a scratch folder");
        let path = dir.path().join("native.db");
        let store = Store::open(StoreOptions::new(
            path.to_string_lossy().to_string(),
            crate::queue_rules::never_pauses,
        ))
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
