//! Durability without a sync in the writer's path: on SQLite the writer commits with
//! `synchronous = NORMAL` and hands the group to this thread, which syncs the write-ahead log
//! and then acknowledges every write in the group.

use super::writer::NativeJob;

/// SQLite's write-ahead log for a database file.
pub(super) fn wal_path(database: &std::path::Path) -> std::path::PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push("-wal");
    std::path::PathBuf::from(name)
}

/// Hot-path writes whose commit is in the log but perhaps not yet on disk.
pub(super) type Unsynced = Vec<NativeJob>;

/// Acknowledges committed hot-path writes once the log holding them is on disk. The writer
/// commits without waiting for the disk and goes on with the next batch while this thread
/// flushes the log (one `fdatasync` for every commit waiting) and only then answers: the
/// guarantee of a synchronous commit — nothing is acknowledged before its commit is durable
/// (the log is one file written in order, so a flush covers every commit before it) —
/// without the writer idling through each flush. Other connections may read a commit a
/// moment before it is acknowledged; a crash in that moment loses only unacknowledged work.
/// The log is opened afresh for each flush, so a log SQLite has recreated is the one flushed.
pub(super) fn spawn_log_syncer(
    log: std::path::PathBuf,
) -> std::io::Result<std::sync::mpsc::Sender<Unsynced>> {
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
