//! SQLite: one fresh connection per query, which can name nothing but the documented views.
//!
//! The views are TEMP views made on that connection, so the user's scope is written into
//! them as literal id lists (the planner then uses the `project_id` indexes). Why the
//! connection is laid out as it is:
//!
//! * Its `main` database is an empty in-memory one. The concord file is attached under a
//!   random alias made for this connection only, so no query can qualify an internal table
//!   (`main.users` is not ours, and the alias cannot be guessed or reused).
//! * Unqualified names are looked up in `temp`, then `main`, then attached databases, so
//!   every internal table gets an empty stand-in of the same name in `main`: `users` or
//!   `sessions` resolve to a stand-in, whose reads the authorizer refuses.
//! * The authorizer cannot tell a view's reads from a query's by their "accessor" (a CTE
//!   named like a view gets the same one), which is why the alias, not the accessor, keeps
//!   the tables out of reach. It allows `SELECT`, reads of the views, reads of the attached
//!   tables the views use (never the secret columns), recursive CTEs and a list of pure
//!   functions; it refuses everything else: writes, `PRAGMA`, `ATTACH`, DDL, transactions,
//!   `load_extension` and any function not on the list.
//! * `query_only` refuses writes a second time; a progress handler interrupts the query at
//!   the time limit; values are capped in length.

use super::catalog::{self, SECRET_COLUMNS, SOURCE_TABLES, VIEWS};
use super::{SqlAnswer, SqlScope};
use crate::error::{Result, StoreError};
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, limits::Limit};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// Functions analysts use; every other function is refused (`load_extension`,
/// `sqlite_*`, blob makers, anything with an effect outside the query).
/// Table-valued functions that unnest JSON text: pure, they read only their arguments.
const JSON_TABLES: &[&str] = &["json_each", "json_tree"];

const FUNCTIONS: &[&str] = &[
    // aggregates and window functions
    "count",
    "sum",
    "total",
    "avg",
    "min",
    "max",
    "group_concat",
    "string_agg",
    "json_group_array",
    "json_group_object",
    "row_number",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "ntile",
    "lag",
    "lead",
    "first_value",
    "last_value",
    "nth_value",
    // scalars
    "abs",
    "coalesce",
    "ifnull",
    "iif",
    "nullif",
    "length",
    "lower",
    "upper",
    "trim",
    "ltrim",
    "rtrim",
    "substr",
    "substring",
    "replace",
    "instr",
    "printf",
    "format",
    "round",
    "typeof",
    "hex",
    "char",
    "unicode",
    "quote",
    "like",
    "glob",
    "sign",
    "likely",
    "unlikely",
    "likelihood",
    // math
    "sqrt",
    "pow",
    "power",
    "exp",
    "ln",
    "log",
    "log2",
    "log10",
    "floor",
    "ceil",
    "ceiling",
    "mod",
    "pi",
    // dates
    "date",
    "time",
    "datetime",
    "julianday",
    "unixepoch",
    "strftime",
    "timediff",
    // JSON
    "json",
    "json_extract",
    "->",
    "->>",
    "json_array_length",
    "json_type",
    "json_valid",
    "json_object",
    "json_array",
    "json_quote",
];

/// Longest text or blob a query may build (a string-doubling CTE stops here, not at 1 GB).
const MAX_VALUE_BYTES: i32 = 16 * 1024 * 1024;

/// Virtual-machine steps between two looks at the clock.
const STEPS_PER_CHECK: i32 = 10_000;

pub(super) fn run(
    path: &Path,
    scope: &SqlScope,
    query: &str,
    row_cap: usize,
    time_limit: Duration,
) -> Result<SqlAnswer> {
    let conn = prepare_connection(path, scope)?;
    let deadline = Instant::now() + time_limit;
    conn.progress_handler(STEPS_PER_CHECK, Some(move || Instant::now() > deadline));
    execute(&conn, query, row_cap).map_err(|e| query_error(e, time_limit))
}

/// A connection on which only the views exist for the user.
fn prepare_connection(path: &Path, scope: &SqlScope) -> Result<Connection> {
    let conn = Connection::open_in_memory()?;
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES);
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 1);
    conn.execute_batch("PRAGMA busy_timeout = 60000; PRAGMA trusted_schema = OFF;")?;
    let alias = format!("concord_{}", crate::accounts::random_token(16));
    conn.execute(
        &format!("ATTACH DATABASE ?1 AS {alias}"),
        [path.to_string_lossy()],
    )?;

    let internal: Vec<String> = conn
        .prepare(&format!(
            "SELECT name FROM {alias}.sqlite_schema \
             WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'"
        ))?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for name in &internal {
        conn.execute_batch(&format!(
            "CREATE TABLE main.{} (not_queryable INTEGER)",
            quote_identifier(name)
        ))?;
    }

    let in_scope = format!("IN ({})", id_list(&scope.projects));
    let names = format!("IN ({})", id_list(&scope.names_visible));
    for view in VIEWS {
        let body = catalog::resolve(view.body, &format!("{alias}."), &in_scope, &names);
        conn.execute_batch(&format!("CREATE TEMP VIEW {} AS {body}", view.name))?;
    }
    conn.execute_batch("PRAGMA query_only = ON")?;
    conn.authorizer(Some(move |context: AuthContext<'_>| {
        authorize(&alias, context)
    }));
    Ok(conn)
}

/// `IN (…)` needs at least one element; NULL matches nothing.
fn id_list(ids: &[crate::ProjectId]) -> String {
    if ids.is_empty() {
        "NULL".to_owned()
    } else {
        SqlScope::list(ids)
    }
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn authorize(alias: &str, context: AuthContext<'_>) -> Authorization {
    let allowed = match context.action {
        AuthAction::Select | AuthAction::Recursive => true,
        AuthAction::Function { function_name } => FUNCTIONS
            .iter()
            .any(|f| f.eq_ignore_ascii_case(function_name)),
        AuthAction::Read {
            table_name,
            column_name,
        } => match context.database_name {
            // A column of one of the views.
            Some("temp") => VIEWS
                .iter()
                .any(|v| v.name.eq_ignore_ascii_case(table_name)),
            // An internal table: only the attached alias, which only view bodies can name.
            Some(db) if db == alias => {
                let table = table_name.to_ascii_lowercase();
                SOURCE_TABLES.contains(&table.as_str())
                    && !SECRET_COLUMNS
                        .iter()
                        .any(|(t, c)| *t == table && c.eq_ignore_ascii_case(column_name))
            }
            // A CTE or subquery's own rows (and SQLite's count(*) shortcut), never storage.
            None => true,
            // JSON's table-valued functions (eponymous virtual tables, read as `main`).
            Some("main") if JSON_TABLES.contains(&table_name.to_ascii_lowercase().as_str()) => true,
            // `main` holds only the empty stand-ins.
            Some(_) => false,
        },
        _ => false,
    };
    if allowed {
        Authorization::Allow
    } else {
        Authorization::Deny
    }
}

fn execute(conn: &Connection, query: &str, row_cap: usize) -> rusqlite::Result<SqlAnswer> {
    let mut batch = rusqlite::Batch::new(conn, query);
    let Some(mut statement) = batch.next()? else {
        return Err(refusal("the query has no statement"));
    };
    if batch.next()?.is_some() {
        return Err(refusal(
            "only one statement can run at a time; remove everything after the first `;`",
        ));
    }
    if statement.is_explain() != 0 {
        return Err(refusal("EXPLAIN is not available; run the query itself"));
    }
    if !statement.readonly() {
        return Err(refusal("only SELECT queries can run here"));
    }
    let columns: Vec<String> = statement
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let width = columns.len();
    let mut rows = Vec::new();
    let mut truncated = false;
    let mut cursor = statement.raw_query();
    while let Some(row) = cursor.next()? {
        if rows.len() == row_cap {
            truncated = true;
            break;
        }
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            values.push(json_value(row.get_ref(i)?));
        }
        rows.push(values);
    }
    Ok(SqlAnswer {
        columns,
        rows,
        truncated,
        elapsed_ms: 0,
    })
}

fn json_value(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(crate::accounts::hex(b)),
    }
}

/// Our own refusals travel as SQLite's "not authorized" with a message of ours.
fn refusal(message: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_AUTH),
        Some(message.to_owned()),
    )
}

fn query_error(error: rusqlite::Error, time_limit: Duration) -> StoreError {
    match error {
        rusqlite::Error::SqlInputError { msg, offset, .. } => StoreError::Query {
            message: msg,
            position: usize::try_from(offset).ok(),
        },
        rusqlite::Error::SqliteFailure(e, message)
            if e.code == rusqlite::ErrorCode::OperationInterrupted =>
        {
            let _ = message;
            StoreError::Query {
                message: time_limit_message(time_limit),
                position: None,
            }
        }
        rusqlite::Error::SqliteFailure(e, message) => StoreError::Query {
            message: message.unwrap_or_else(|| e.to_string()),
            position: None,
        },
        other => StoreError::Query {
            message: other.to_string(),
            position: None,
        },
    }
}

pub(super) fn time_limit_message(time_limit: Duration) -> String {
    format!(
        "the query ran past the time limit of {} ms and was stopped",
        time_limit.as_millis()
    )
}
