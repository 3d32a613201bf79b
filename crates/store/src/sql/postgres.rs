//! PostgreSQL: a `READ ONLY` transaction under a role that may read the views and nothing
//! else, on a small pool of its own.
//!
//! Made on first use, under a transaction-scoped advisory lock (so several servers agree):
//! * the views, in a schema of their own beside the instance's tables (`<schema>_sql`, or
//!   `concord_sql` when the tables live in `public`); they run with their owner's rights, so
//!   the role needs no right on any table. Each view filters on `concord.sql_projects` (and
//!   `concord.sql_named_projects` for names), settings the server sets per transaction.
//! * the role, `NOLOGIN`, named after the database and the views' schema (role names are
//!   cluster-wide): `USAGE` on that schema and `SELECT` on its views, no more.
//! * `set_config` and the session-level advisory locks are taken from `PUBLIC` (and kept for
//!   the server's own role): `set_config('role', …)` is checked against the *session* user,
//!   so anyone who can call it could leave the role, lift the time limit or widen the
//!   project list; a session lock would outlive the query on a pooled connection. This is a
//!   database-wide change; a setup that cannot make it is refused, never run open.
//!
//! The user's text is only prepared as it is (for its column names and its errors) and run
//! as `FROM ( … ) AS q` inside our own `SELECT`, so only a query expression can execute: a
//! `SET`, `COPY`, a second statement or a data-modifying `WITH` never runs.

use super::catalog::{self, VIEWS};
use super::{SqlAnswer, SqlScope};
use crate::Store;
use crate::error::{Result, StoreError};
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgDatabaseError, PgErrorPosition, PgPool, PgPoolOptions};
use sqlx::{Column, Executor, Row, Statement};
use std::time::Duration;

/// Functions taken from PUBLIC (see the module's comment).
const GUARDED_FUNCTIONS: &[&str] = &[
    "pg_catalog.set_config(text, text, boolean)",
    "pg_catalog.pg_advisory_lock(bigint)",
    "pg_catalog.pg_advisory_lock(integer, integer)",
    "pg_catalog.pg_advisory_lock_shared(bigint)",
    "pg_catalog.pg_advisory_lock_shared(integer, integer)",
    "pg_catalog.pg_try_advisory_lock(bigint)",
    "pg_catalog.pg_try_advisory_lock(integer, integer)",
    "pg_catalog.pg_try_advisory_lock_shared(bigint)",
    "pg_catalog.pg_try_advisory_lock_shared(integer, integer)",
];

/// Advisory-lock key for making the views and the role.
const SETUP_LOCK: i64 = 0x636f_6e73_716c;

const PROJECTS_SETTING: &str = "concord.sql_projects";
const NAMES_SETTING: &str = "concord.sql_named_projects";

pub(crate) struct Reader {
    pool: PgPool,
    views_schema: String,
    role: String,
}

fn visible(setting: &str) -> String {
    format!("= ANY (string_to_array(current_setting('{setting}', true), ',')::bigint[])")
}

async fn reader(store: &Store, concurrent: usize) -> Result<&Reader> {
    store
        .inner
        .sql
        .postgres
        .get_or_try_init(|| set_up(store, concurrent))
        .await
}

// The analysts' SQL layer runs on sqlx, not `Conn`: its own pool, role, session settings
// and READ ONLY transactions, none of which `Conn` has.
async fn set_up(store: &Store, concurrent: usize) -> Result<Reader> {
    let mut tx = store.pool().begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SETUP_LOCK)
        .execute(&mut *tx)
        .await?;
    let names = SetupNames::of_this_database(&mut tx).await?;
    replace_views_if_changed(&mut tx, &names).await?;
    create_role(&mut tx, &names).await?;
    guard_functions(&mut tx, &names.role).await?;
    tx.commit().await?;

    let options: sqlx::postgres::PgConnectOptions = store.inner.url.parse()?;
    let pool = PgPoolOptions::new()
        .max_connections(concurrent.max(1) as u32)
        .acquire_timeout(Duration::from_secs(30))
        .connect_lazy_with(options.statement_cache_capacity(0));
    Ok(Reader {
        pool,
        views_schema: names.views_schema,
        role: names.role,
    })
}

type SetupTx = sqlx::Transaction<'static, sqlx::Any>;

/// Where the views live and who runs the queries, named after this instance's tables.
struct SetupNames {
    tables: String,
    views_schema: String,
    role: String,
}

impl SetupNames {
    async fn of_this_database(tx: &mut SetupTx) -> Result<SetupNames> {
        let row =
            sqlx::query("SELECT current_schema()::text AS tables, current_database()::text AS db")
                .fetch_one(&mut **tx)
                .await?;
        let tables: String = row.try_get("tables")?;
        let database: String = row.try_get("db")?;
        let views_schema = if tables == "public" {
            "concord_sql".to_owned()
        } else {
            format!("{tables}_sql")
        };
        if views_schema.len() > 63 {
            return Err(StoreError::invalid(format!(
                "the SQL views' schema name {views_schema:?} is longer than PostgreSQL allows; \
                 use a shorter --database-schema"
            )));
        }
        // Role names are cluster-wide: the database and the schema make it unique.
        let role = format!(
            "concord_sql_{}",
            &crate::accounts::hex(&Sha256::digest(format!("{database}.{views_schema}")))[..16]
        );
        Ok(SetupNames {
            tables,
            views_schema,
            role,
        })
    }
}

/// The views are made again only when their text changed (a fingerprint in the schema's
/// comment), so servers of the same version leave each other's views alone.
async fn replace_views_if_changed(tx: &mut SetupTx, names: &SetupNames) -> Result<()> {
    let SetupNames {
        tables,
        views_schema,
        ..
    } = names;
    let bodies: Vec<String> = VIEWS
        .iter()
        .map(|view| {
            catalog::resolve(
                view.body,
                &format!("\"{tables}\"."),
                &visible(PROJECTS_SETTING),
                &visible(NAMES_SETTING),
            )
        })
        .collect();
    let fingerprint =
        crate::accounts::hex(&Sha256::digest(bodies.join(";").as_bytes()))[..32].to_owned();
    let current: Option<String> = sqlx::query(
        "SELECT obj_description(n.oid, 'pg_namespace') AS note FROM pg_namespace n \
         WHERE n.nspname = $1",
    )
    .bind(views_schema)
    .fetch_optional(&mut **tx)
    .await?
    .map(|row| row.try_get::<Option<String>, _>("note"))
    .transpose()?
    .flatten();
    if current.as_deref() == Some(fingerprint.as_str()) {
        return Ok(());
    }
    tx.execute(format!("DROP SCHEMA IF EXISTS \"{views_schema}\" CASCADE").as_str())
        .await?;
    tx.execute(format!("CREATE SCHEMA \"{views_schema}\"").as_str())
        .await?;
    for (view, body) in VIEWS.iter().zip(&bodies) {
        tx.execute(format!("CREATE VIEW \"{views_schema}\".{} AS {body}", view.name).as_str())
            .await?;
    }
    tx.execute(format!("COMMENT ON SCHEMA \"{views_schema}\" IS '{fingerprint}'").as_str())
        .await?;
    Ok(())
}

/// The `NOLOGIN` role the queries run as: `USAGE` on the views' schema and `SELECT` on its
/// views, nothing else.
async fn create_role(tx: &mut SetupTx, names: &SetupNames) -> Result<()> {
    let SetupNames {
        views_schema, role, ..
    } = names;
    tx.execute(
        format!(
            "DO $$ BEGIN CREATE ROLE {role} NOLOGIN; \
             EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        .as_str(),
    )
    .await
    .map_err(|e| setup_refused("create the role the queries run as", e))?;
    for grant in [
        format!("GRANT USAGE ON SCHEMA \"{views_schema}\" TO {role}"),
        format!("GRANT SELECT ON ALL TABLES IN SCHEMA \"{views_schema}\" TO {role}"),
        format!("GRANT {role} TO CURRENT_USER"),
    ] {
        tx.execute(grant.as_str())
            .await
            .map_err(|e| setup_refused("grant the query role its rights", e))?;
    }
    Ok(())
}

/// Takes the guarded functions from PUBLIC (keeping them for the server's role) and checks
/// that the query role really lost `set_config`: a setup that could not is refused.
async fn guard_functions(tx: &mut SetupTx, role: &str) -> Result<()> {
    for function in GUARDED_FUNCTIONS {
        tx.execute(format!("REVOKE EXECUTE ON FUNCTION {function} FROM PUBLIC").as_str())
            .await
            .map_err(|e| setup_refused("revoke set_config from PUBLIC", e))?;
        tx.execute(format!("GRANT EXECUTE ON FUNCTION {function} TO CURRENT_USER").as_str())
            .await
            .map_err(|e| setup_refused("keep set_config for the server's role", e))?;
    }
    let open: bool = sqlx::query(
        "SELECT has_function_privilege($1, 'pg_catalog.set_config(text, text, boolean)', \
         'EXECUTE') AS open",
    )
    .bind(role)
    .fetch_one(&mut **tx)
    .await?
    .try_get("open")?;
    if open {
        return Err(StoreError::invalid(format!(
            "SQL queries are refused: role {role} can still call set_config (the server's \
             role could not revoke it from PUBLIC; a superuser can run `REVOKE EXECUTE ON \
             FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC`)"
        )));
    }
    Ok(())
}

fn setup_refused(step: &str, error: sqlx::Error) -> StoreError {
    StoreError::invalid(format!(
        "SQL queries are unavailable: could not {step} ({error}); the server's database role \
         needs CREATEROLE and ownership of its tables, or a superuser to run the setup once"
    ))
}

pub(super) async fn run(
    store: &Store,
    scope: &SqlScope,
    query: &str,
    row_cap: usize,
    time_limit: Duration,
    concurrent: usize,
) -> Result<SqlAnswer> {
    let reader = reader(store, concurrent).await?;
    // The server's own clock stops a query the database did not (it never should).
    match tokio::time::timeout(
        time_limit + Duration::from_secs(2),
        run_in_transaction(reader, scope, query, row_cap, time_limit),
    )
    .await
    {
        Ok(answer) => answer,
        Err(_) => Err(StoreError::Query {
            message: super::sqlite::time_limit_message(time_limit),
            position: None,
        }),
    }
}

async fn run_in_transaction(
    reader: &Reader,
    scope: &SqlScope,
    query: &str,
    row_cap: usize,
    time_limit: Duration,
) -> Result<SqlAnswer> {
    let mut tx = reader.pool.begin().await?;
    for statement in confinement(reader, scope, time_limit) {
        tx.execute(statement.as_str()).await?;
    }
    let body = query.trim_end().trim_end_matches(';');
    let columns: Vec<String> = match (&mut *tx).prepare(body).await {
        Ok(statement) => statement
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect(),
        Err(e) => return Err(query_error(e, 0, time_limit)),
    };
    let prefix = "SELECT (SELECT json_agg(e.value ORDER BY e.n) \
                  FROM json_each(row_to_json(q)) WITH ORDINALITY AS e(key, value, n))::text \
                  AS row FROM (\n";
    let wrapped = format!("{prefix}{body}\n) AS q LIMIT {}", row_cap + 1);
    let fetched = sqlx::query(&wrapped)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| query_error(e, prefix.chars().count(), time_limit))?;
    tx.rollback().await?;
    let truncated = fetched.len() > row_cap;
    let rows = fetched
        .iter()
        .take(row_cap)
        .map(row_values)
        .collect::<Result<Vec<_>>>()?;
    Ok(SqlAnswer {
        columns,
        rows,
        truncated,
        elapsed_ms: 0,
    })
}

/// What the transaction is set to before the user's text runs: read only, the caller's
/// projects, the time limit, the views only, the query role.
fn confinement(reader: &Reader, scope: &SqlScope, time_limit: Duration) -> [String; 6] {
    // Ids are numbers and the names ours: nothing here comes from the user's text.
    [
        "SET LOCAL transaction_read_only = on".to_owned(),
        format!(
            "SET LOCAL {PROJECTS_SETTING} = '{}'",
            SqlScope::list(&scope.projects)
        ),
        format!(
            "SET LOCAL {NAMES_SETTING} = '{}'",
            SqlScope::list(&scope.names_visible)
        ),
        format!(
            "SET LOCAL statement_timeout = {}",
            time_limit.as_millis().max(1)
        ),
        format!("SET LOCAL search_path = \"{}\"", reader.views_schema),
        format!("SET LOCAL ROLE {}", reader.role),
    ]
}

/// One result row, which the wrapping query returned as a JSON array of its values.
fn row_values(row: &sqlx::postgres::PgRow) -> Result<Vec<serde_json::Value>> {
    let text: Option<String> = row.try_get("row")?;
    match text {
        Some(text) => serde_json::from_str::<Vec<serde_json::Value>>(&text)
            .map_err(|e| StoreError::Corrupt(format!("a query row as JSON: {e}"))),
        None => Ok(Vec::new()),
    }
}

/// The database's message and, where it gave one, the position in the user's text
/// (0-based characters; `shift` is the length of our text before theirs).
fn query_error(error: sqlx::Error, shift: usize, time_limit: Duration) -> StoreError {
    let sqlx::Error::Database(db) = &error else {
        return StoreError::from(error);
    };
    let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() else {
        return StoreError::Query {
            message: db.message().to_owned(),
            position: None,
        };
    };
    if pg.code() == "57014" {
        return StoreError::Query {
            message: super::sqlite::time_limit_message(time_limit),
            position: None,
        };
    }
    let position = match pg.position() {
        Some(PgErrorPosition::Original(p)) => p.checked_sub(1 + shift),
        _ => None,
    };
    StoreError::Query {
        message: pg.message().to_owned(),
        position,
    }
}
