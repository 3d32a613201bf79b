//! Analysts' read-only SQL over the documented views ([`catalog::VIEWS`]).
//!
//! A query never runs on the single writer or through the store's pool of ordinary reads:
//! on SQLite each query opens its own read-only connection on a blocking thread (see
//! `sqlite.rs`); on PostgreSQL it runs on a small pool of its own, in a `READ ONLY`
//! transaction under a role that holds `SELECT` on the views alone (see `postgres.rs`).
//! At most [`SqlLimits::concurrent`] queries run at once per store, so analysts cannot take
//! the machine from the annotators. Both back ends answer the same [`SqlAnswer`]; what goes
//! wrong in the query itself is a [`StoreError::Query`] with the database's own message.

pub mod catalog;
mod postgres;
mod saved;
mod sqlite;

use crate::error::{Result, StoreError};
use crate::ids::ProjectId;
use crate::model::{Permission, Role, User};
use crate::{Backend, Store};
use std::time::{Duration, Instant};

pub use saved::{NewSavedQuery, SavedQuery};

/// How long a query may run and how many rows it may return (server settings).
#[derive(Debug, Clone, Copy)]
pub struct SqlLimits {
    pub time_limit: Duration,
    /// The most rows any answer carries; a request may ask for fewer.
    pub row_cap: usize,
    /// Queries running at once per store; more wait their turn.
    pub concurrent: usize,
}

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits {
            time_limit: Duration::from_secs(10),
            row_cap: 10_000,
            concurrent: 2,
        }
    }
}

/// The projects a query sees, decided from the asking user's roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlScope {
    /// Projects whose rows the views show.
    pub projects: Vec<ProjectId>,
    /// Of those, the projects where the user may see members' names: project managers and
    /// admins everywhere, others where `settings.qa.show_annotator_names` is on.
    pub names_visible: Vec<ProjectId>,
}

impl SqlScope {
    /// Comma-separated ids, as the PostgreSQL views read them and SQLite's lists are spelled.
    fn list(ids: &[ProjectId]) -> String {
        ids.iter()
            .map(|id| id.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// One query's result: column names in order, rows of JSON values (numbers, text, NULL).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SqlAnswer {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
    /// More rows matched than the answer carries (the limit or the row cap).
    pub truncated: bool,
    pub elapsed_ms: u64,
}

/// Roles that may run SQL in a project.
pub fn may_query(role: Role) -> bool {
    role.allows(Permission::QuerySql)
}

impl Store {
    /// What `user` may see: every project where their role may query SQL (all for an
    /// admin), or only `project` when one is named (refused when they may not query it).
    pub async fn sql_scope(&self, user: &User, project: Option<&str>) -> Result<SqlScope> {
        let mut scope = SqlScope {
            projects: Vec::new(),
            names_visible: Vec::new(),
        };
        for (found, role) in self.projects_for(user).await? {
            if project.is_some_and(|slug| slug != found.slug) {
                continue;
            }
            let role = if user.is_admin {
                Some(Role::Admin)
            } else {
                role
            };
            let Some(role) = role.filter(|r| may_query(*r)) else {
                continue;
            };
            scope.projects.push(found.id);
            // As on the adjudication page: names for those who manage the members, and for
            // analysts only where the project shows annotator names.
            let shown = found.settings.qa.show_annotator_names;
            if role.allows(Permission::ManageMembers) || shown {
                scope.names_visible.push(found.id);
            }
        }
        if let Some(slug) = project
            && scope.projects.is_empty()
        {
            // Same answer for "no such project" and "not yours to query": no probing.
            return Err(StoreError::not_found(format!(
                "project {slug:?} (or you may not run SQL in it)"
            )));
        }
        Ok(scope)
    }

    /// Runs one read-only `SELECT` over the documented views, as seen by `scope`, returning
    /// at most `limit` rows (never more than the row cap).
    pub async fn run_sql(
        &self,
        scope: &SqlScope,
        query: &str,
        limit: Option<usize>,
        limits: SqlLimits,
    ) -> Result<SqlAnswer> {
        if query.trim().is_empty() {
            return Err(StoreError::Query {
                message: "the query is empty".into(),
                position: None,
            });
        }
        let rows = limit.unwrap_or(limits.row_cap).min(limits.row_cap);
        let _turn = self
            .inner
            .sql
            .turn(limits.concurrent)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::WriterGone)?;
        let started = Instant::now();
        let mut answer = match self.inner.backend {
            Backend::Sqlite => {
                let path = crate::db::sqlite_path(&self.inner.url)?;
                let (scope, text) = (scope.clone(), query.to_owned());
                at_low_priority(move || sqlite::run(&path, &scope, &text, rows, limits.time_limit))
                    .await?
            }
            Backend::Postgres => {
                postgres::run(
                    self,
                    scope,
                    query,
                    rows,
                    limits.time_limit,
                    limits.concurrent,
                )
                .await?
            }
        };
        answer.elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(answer)
    }
}

/// Runs an analyst's query on a thread of its own at the lowest CPU priority, so that on a
/// busy machine the annotators' requests get the cores first: a heavy query then slows only
/// itself. (A thread per query: a lowered priority cannot be raised again without privilege,
/// so a pooled thread would stay slow for whatever it ran next.)
async fn at_low_priority<T: Send + 'static>(
    run: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (done, answer) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("concord-sql".into())
        .spawn(move || {
            lowest_priority_for_this_thread();
            let _ = done.send(run());
        })
        .map_err(|e| StoreError::Query {
            message: format!("the query could not start: {e}"),
            position: None,
        })?;
    answer.await.map_err(|_| StoreError::Query {
        message: "the query stopped unexpectedly".into(),
        position: None,
    })?
}

#[cfg(target_os = "linux")]
fn lowest_priority_for_this_thread() {
    // On Linux the nice value belongs to the thread (the task), not the process.
    // SAFETY: plain system calls on the calling thread's own id; no memory is shared.
    let result = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19)
    };
    if result != 0 {
        tracing::debug!("could not lower the SQL thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lowest_priority_for_this_thread() {}

/// Per store: the queries' turns, and on PostgreSQL their pool and role (made on first use).
#[derive(Default)]
pub(crate) struct SqlState {
    turns: std::sync::OnceLock<std::sync::Arc<tokio::sync::Semaphore>>,
    pub(crate) postgres: tokio::sync::OnceCell<postgres::Reader>,
}

impl SqlState {
    fn turn(&self, concurrent: usize) -> std::sync::Arc<tokio::sync::Semaphore> {
        self.turns
            .get_or_init(|| std::sync::Arc::new(tokio::sync::Semaphore::new(concurrent.max(1))))
            .clone()
    }
}
