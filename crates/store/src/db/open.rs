//! Opening a store: the URL and its spellings, the pool, migrations, and on SQLite the
//! native connections of the writer and the hot reads.

use crate::accounts::PasswordCost;
use crate::conn::NativeReaders;
use crate::error::{Result, StoreError};
use crate::queue_rules::GoldAccuracyBound;
use crate::{Store, migrate};
use sqlx::AnyConnection;
use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, Connection, Executor};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

use super::Inner;
use super::dialect::{Backend, Dialect};
use super::log_sync::wal_path;
use super::writer::{WriteJob, spawn_writer};

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
    /// The statistic of the gold pause rule: given by the caller, since the store computes
    /// none (concord-qa's `gold_accuracy_upper_bound`).
    pub gold_accuracy_bound: GoldAccuracyBound,
}

impl StoreOptions {
    pub fn new(url: impl Into<String>, gold_accuracy_bound: GoldAccuracyBound) -> Self {
        StoreOptions {
            url: url.into(),
            gold_accuracy_bound,
            pg_schema: None,
            password_cost: PasswordCost::Default,
            max_connections: 16,
            group_commit_limit: 512,
            access_ttl: crate::access::DEFAULT_ACCESS_TTL,
        }
    }
}

/// WAL for concurrent readers; FULL so that a commit is on disk when acknowledged; a long
/// busy timeout because an import's publish step briefly holds the write lock.
pub(crate) const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 60000;";

/// The back end and the URL sqlx opens. Every SQLite spelling — a bare path,
/// `sqlite:///abs/path.db`, `sqlite://rel.db`, `sqlite:rel.db`, with or without a query —
/// names the same file and creates it when missing, as a bare path does.
pub(super) fn normalise_url(url: &str) -> (Backend, String) {
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

pub(super) fn valid_schema_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

pub(crate) fn sqlite_path(url: &str) -> Result<std::path::PathBuf> {
    let options: SqliteConnectOptions = url.parse()?;
    Ok(options.get_filename().to_owned())
}

/// The writer's own SQLite connection, on the same file as the pool. Its commits do not
/// wait for the disk (`synchronous = NORMAL`): the log syncer flushes the log before any of
/// them is acknowledged (see [`spawn_log_syncer`]).
pub(super) fn open_native(url: &str) -> Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(sqlite_path(url)?)?;
    conn.execute_batch(SQLITE_PRAGMAS)?;
    conn.execute_batch("PRAGMA cache_size = -65536; PRAGMA synchronous = NORMAL")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) the database and applies pending migrations.
    pub async fn open(options: StoreOptions) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalise_url(&options.url);
        let schema = options.pg_schema.clone();
        if let Some(name) = &schema {
            create_pg_schema(backend, &url, name).await?;
        }
        let pool = connect_pool(backend, &url, schema.clone(), options.max_connections).await?;
        let (writer, readers) = match backend {
            Backend::Sqlite => {
                let (writer, readers) =
                    start_sqlite_writer(&url, options.group_commit_limit).await?;
                (Some(writer), Some(readers))
            }
            Backend::Postgres => {
                let mut conn = pool.acquire().await?;
                migrate::apply(&mut conn, backend).await?;
                (None, None)
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
                pg_schema: schema,
                published_schemas: Default::default(),
                access: crate::access::AccessCache::new(options.access_ttl),
                sql: Default::default(),
                gold_accuracy_bound: options.gold_accuracy_bound,
                read_slots: tokio::sync::Semaphore::new(options.max_connections.max(1) as usize),
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

    /// PostgreSQL: a native connection outside the pool, for what sqlx's `Any` driver cannot
    /// do (`COPY`), on the same database and search path as the pool's connections: the
    /// URL's own `options` (`-c search_path=…`) are parsed the same way, and the store's
    /// schema is set as the pool's `after_connect` sets it.
    pub(crate) async fn connect_pg_native(&self) -> Result<sqlx::PgConnection> {
        let options: sqlx::postgres::PgConnectOptions = self.inner.url.parse()?;
        let mut conn = sqlx::PgConnection::connect_with(&options).await?;
        if let Some(name) = &self.inner.pg_schema {
            // Checked by `create_pg_schema` when the store was opened.
            conn.execute(format!("SET search_path TO {name}").as_str())
                .await?;
        }
        Ok(conn)
    }

    /// True when the database answers a trivial query (for `/readyz`).
    pub async fn ping(&self) -> bool {
        // On sqlx, not `Conn`: what is checked is the pool the store was opened with.
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
        // On sqlx, not `Conn`: DDL on PostgreSQL only, outside any transaction (test support).
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// PostgreSQL: drops the scratch schemas named `{prefix}_{pid}_…` whose process has ended
    /// (no `/proc/{pid}`), as test runs name theirs: a run killed or finished leaves them, and
    /// the next run on the same database sweeps them. Returns how many it dropped.
    pub async fn drop_scratch_schemas_of_ended_processes(&self, prefix: &str) -> Result<usize> {
        if self.inner.backend != Backend::Postgres || !valid_schema_name(prefix) {
            return Ok(0);
        }
        // On sqlx, not `Conn`: the catalog of schemas, outside any transaction (test support).
        let names: Vec<(String,)> = sqlx::query_as(
            "SELECT schema_name::text FROM information_schema.schemata \
             WHERE starts_with(schema_name, $1)",
        )
        .bind(format!("{prefix}_"))
        .fetch_all(self.pool())
        .await?;
        let mut dropped = 0;
        for (name,) in names {
            let pid = name[prefix.len() + 1..].split('_').next().unwrap_or("");
            let ended = pid.parse::<u32>().is_ok_and(|pid| {
                pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            });
            if ended && self.drop_schema(&name).await.is_ok() {
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    /// Closes the pool; pending writes already acknowledged are on disk.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }
}

/// Checks the PostgreSQL schema's name (on any back end, so a typo is caught on SQLite too)
/// and creates the schema on PostgreSQL.
async fn create_pg_schema(backend: Backend, url: &str, name: &str) -> Result<()> {
    if !valid_schema_name(name) {
        return Err(StoreError::invalid(format!(
            "schema name {name:?} must be lower-case letters, digits and underscores"
        )));
    }
    if backend == Backend::Postgres {
        let mut conn = AnyConnection::connect(url).await?;
        conn.execute(format!("CREATE SCHEMA IF NOT EXISTS {name}").as_str())
            .await?;
        conn.close().await?;
    }
    Ok(())
}

/// The sqlx pool every read and non-hot write uses; each connection gets SQLite's pragmas
/// or PostgreSQL's search path.
async fn connect_pool(
    backend: Backend,
    url: &str,
    schema: Option<String>,
    max_connections: u32,
) -> Result<AnyPool> {
    let pool = AnyPoolOptions::new()
        .max_connections(max_connections.max(2))
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _meta| {
            let schema = schema.clone();
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
        .connect(url)
        .await?;
    Ok(pool)
}

/// SQLite's single writer: migrations first, then the writer thread with its sqlx and
/// native connections, and the read-only native connections for the hot reads.
async fn start_sqlite_writer(
    url: &str,
    group_commit_limit: usize,
) -> Result<(mpsc::Sender<WriteJob>, NativeReaders)> {
    let mut conn = AnyConnection::connect(url).await?;
    conn.execute(SQLITE_PRAGMAS).await?;
    // The one writer gets a larger page cache (64 MiB, filled only as used):
    // bulk writes touch indexes far bigger than the default 2 MiB.
    conn.execute("PRAGMA cache_size = -65536").await?;
    migrate::apply(&mut conn, Backend::Sqlite).await?;
    let native = open_native(url)?;
    let readers = NativeReaders::new(sqlite_path(url)?);
    let (tx, rx) = mpsc::channel(4096);
    let log = wal_path(&sqlite_path(url)?);
    spawn_writer(conn, native, log, rx, group_commit_limit.max(1))?;
    Ok((tx, readers))
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
