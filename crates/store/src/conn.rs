//! The connection the hot write paths (the work queue's lease and submit) run on: sqlx on
//! PostgreSQL, and on SQLite a synchronous connection owned by the writer thread.
//!
//! Through sqlx, every SQLite statement is a round trip to the driver's worker thread, and a
//! lease or a submission is about nine statements inside the single writer: the writer spent
//! its time on thread hand-offs, not in SQLite. Here the writer thread runs those statements
//! itself. One body of queue logic serves both back ends: it is written against [`Conn`],
//! whose SQLite methods never suspend, so awaiting them costs nothing. The reads every
//! queue request makes (token, project and role, schema, item) take the same road on
//! connections of their own ([`NativeReaders`]), run inline on the calling thread.

use crate::error::{Result, StoreError};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row as _};

/// Read-only SQLite connections for the hot reads, opened on demand and kept for reuse. A
/// read never suspends, so no more are in use at once than there are threads polling.
pub(crate) struct NativeReaders {
    path: std::path::PathBuf,
    idle: std::sync::Mutex<Vec<rusqlite::Connection>>,
}

impl NativeReaders {
    pub(crate) fn new(path: std::path::PathBuf) -> Self {
        NativeReaders {
            path,
            idle: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn take(&self) -> Result<rusqlite::Connection> {
        if let Some(conn) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(conn);
        }
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.execute_batch("PRAGMA busy_timeout = 60000; PRAGMA query_only = ON;")?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    pub(crate) fn give_back(&self, conn: rusqlite::Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < 16
        {
            idle.push(conn);
        }
    }
}

/// Where a hot write runs.
pub(crate) enum Conn<'c> {
    Sqlx(&'c mut AnyConnection),
    Sqlite(&'c mut rusqlite::Connection),
}

/// A bind value.
#[derive(Debug, Clone)]
pub(crate) enum Param {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
}

impl From<f64> for Param {
    fn from(v: f64) -> Self {
        Param::Real(Some(v))
    }
}
impl From<Option<f64>> for Param {
    fn from(v: Option<f64>) -> Self {
        Param::Real(v)
    }
}

impl From<i64> for Param {
    fn from(v: i64) -> Self {
        Param::Int(Some(v))
    }
}
impl From<Option<i64>> for Param {
    fn from(v: Option<i64>) -> Self {
        Param::Int(v)
    }
}
impl From<&str> for Param {
    fn from(v: &str) -> Self {
        Param::Text(Some(v.to_owned()))
    }
}
impl From<String> for Param {
    fn from(v: String) -> Self {
        Param::Text(Some(v))
    }
}
impl From<&String> for Param {
    fn from(v: &String) -> Self {
        Param::Text(Some(v.clone()))
    }
}
impl From<Option<&str>> for Param {
    fn from(v: Option<&str>) -> Self {
        Param::Text(v.map(str::to_owned))
    }
}
impl From<Option<String>> for Param {
    fn from(v: Option<String>) -> Self {
        Param::Text(v)
    }
}

/// A statement with `$1 … $n` placeholders and its values in that order.
pub(crate) struct Stmt {
    sql: String,
    params: Vec<Param>,
}

pub(crate) fn stmt(sql: impl Into<String>) -> Stmt {
    Stmt {
        sql: sql.into(),
        params: Vec::new(),
    }
}

impl Stmt {
    pub(crate) fn bind(mut self, value: impl Into<Param>) -> Self {
        self.params.push(value.into());
        self
    }

    /// Appends text to the statement (a `RETURNING` clause, say); its placeholders continue
    /// the statement's numbering.
    pub(crate) fn push_sql(mut self, sql: &str) -> Self {
        self.sql.push_str(sql);
        self
    }

    /// PostgreSQL only: `steps` run as data-modifying common table expressions of this
    /// statement, so that several writes cost one round trip. Each step is named and its
    /// `RETURNING` rows can be read by the steps after it and by this statement (`SELECT id
    /// FROM name`); no step sees another's changes otherwise, so steps must touch different
    /// rows. Every statement keeps its own `$1 … $n`: they are renumbered here, in order.
    pub(crate) fn after_steps(self, steps: Vec<(&str, Stmt)>) -> Stmt {
        let mut sql = String::from("WITH ");
        let mut params = Vec::new();
        for (n, (name, step)) in steps.into_iter().enumerate() {
            if n > 0 {
                sql.push_str(", ");
            }
            sql.push_str(name);
            sql.push_str(" AS (");
            sql.push_str(&renumbered(&step.sql, params.len()));
            sql.push(')');
            params.extend(step.params);
        }
        sql.push(' ');
        sql.push_str(&renumbered(&self.sql, params.len()));
        params.extend(self.params);
        Stmt { sql, params }
    }
}

/// `sql` with every placeholder `$n` written `$(n + by)`. The statements composed this way
/// are the store's own, with no `$` inside a quoted literal.
fn renumbered(sql: &str, by: usize) -> String {
    if by == 0 {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + by).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// A result row from either back end.
pub(crate) enum Row {
    Sqlx(AnyRow),
    Sqlite {
        columns: std::sync::Arc<[String]>,
        values: Vec<rusqlite::types::Value>,
    },
}

/// A column type both back ends can decode.
pub(crate) trait Column: Sized {
    fn from_sqlx(row: &AnyRow, column: &str) -> Result<Self>;
    fn from_sqlite(value: &rusqlite::types::Value, column: &str) -> Result<Self>;
}

fn wrong_type(column: &str, value: &rusqlite::types::Value) -> StoreError {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: format!("unexpected SQLite value {value:?}").into(),
    }
    .into()
}

impl Column for Option<i64> {
    fn from_sqlx(row: &AnyRow, column: &str) -> Result<Self> {
        Ok(row.try_get(column)?)
    }
    fn from_sqlite(value: &rusqlite::types::Value, column: &str) -> Result<Self> {
        match value {
            rusqlite::types::Value::Null => Ok(None),
            rusqlite::types::Value::Integer(v) => Ok(Some(*v)),
            other => Err(wrong_type(column, other)),
        }
    }
}

impl Column for i64 {
    fn from_sqlx(row: &AnyRow, column: &str) -> Result<Self> {
        Ok(row.try_get(column)?)
    }
    fn from_sqlite(value: &rusqlite::types::Value, column: &str) -> Result<Self> {
        Option::<i64>::from_sqlite(value, column)?.ok_or_else(|| wrong_type(column, value))
    }
}

impl Column for Option<f64> {
    fn from_sqlx(row: &AnyRow, column: &str) -> Result<Self> {
        Ok(row.try_get(column)?)
    }
    fn from_sqlite(value: &rusqlite::types::Value, column: &str) -> Result<Self> {
        match value {
            rusqlite::types::Value::Null => Ok(None),
            rusqlite::types::Value::Real(v) => Ok(Some(*v)),
            rusqlite::types::Value::Integer(v) => Ok(Some(*v as f64)),
            other => Err(wrong_type(column, other)),
        }
    }
}

impl Column for f64 {
    fn from_sqlx(row: &AnyRow, column: &str) -> Result<Self> {
        Ok(row.try_get(column)?)
    }
    fn from_sqlite(value: &rusqlite::types::Value, column: &str) -> Result<Self> {
        Option::<f64>::from_sqlite(value, column)?.ok_or_else(|| wrong_type(column, value))
    }
}

impl Column for Option<String> {
    fn from_sqlx(row: &AnyRow, column: &str) -> Result<Self> {
        Ok(row.try_get(column)?)
    }
    fn from_sqlite(value: &rusqlite::types::Value, column: &str) -> Result<Self> {
        match value {
            rusqlite::types::Value::Null => Ok(None),
            rusqlite::types::Value::Text(v) => Ok(Some(v.clone())),
            other => Err(wrong_type(column, other)),
        }
    }
}

impl Column for String {
    fn from_sqlx(row: &AnyRow, column: &str) -> Result<Self> {
        Ok(row.try_get(column)?)
    }
    fn from_sqlite(value: &rusqlite::types::Value, column: &str) -> Result<Self> {
        Option::<String>::from_sqlite(value, column)?.ok_or_else(|| wrong_type(column, value))
    }
}

/// Typed column access on either back end's rows, so one mapping function serves both.
pub(crate) trait Columns {
    fn col<T: Column>(&self, column: &str) -> Result<T>;
}

impl Columns for AnyRow {
    fn col<T: Column>(&self, column: &str) -> Result<T> {
        T::from_sqlx(self, column)
    }
}

impl Columns for Row {
    fn col<T: Column>(&self, column: &str) -> Result<T> {
        match self {
            Row::Sqlx(row) => T::from_sqlx(row, column),
            Row::Sqlite { columns, values } => {
                let index = columns
                    .iter()
                    .position(|c| c == column)
                    .ok_or_else(|| StoreError::column_not_found(column))?;
                T::from_sqlite(&values[index], column)
            }
        }
    }
}

impl Row {
    /// The first column as text, for a statement selecting one unnamed value (a packed page).
    pub(crate) fn first_text(&self) -> Result<Option<String>> {
        match self {
            Row::Sqlx(row) => Ok(row.try_get(0)?),
            Row::Sqlite { values, .. } => match values.first() {
                Some(value) => Option::<String>::from_sqlite(value, "0"),
                None => Err(StoreError::column_not_found("0")),
            },
        }
    }
}

/// A row stepped on a native SQLite connection, read by column name like the others.
pub(crate) struct NativeRow<'r, 's> {
    pub(crate) row: &'r rusqlite::Row<'s>,
    pub(crate) columns: &'r [String],
}

impl Columns for NativeRow<'_, '_> {
    fn col<T: Column>(&self, column: &str) -> Result<T> {
        let index = self
            .columns
            .iter()
            .position(|c| c == column)
            .ok_or_else(|| StoreError::column_not_found(column))?;
        let value = rusqlite::types::Value::from(self.row.get_ref(index)?);
        T::from_sqlite(&value, column)
    }
}

impl Conn<'_> {
    /// Runs a statement; the number of rows it changed.
    pub(crate) async fn execute(&mut self, statement: Stmt) -> Result<u64> {
        match self {
            Conn::Sqlx(c) => Ok(sqlx_query(&statement)
                .execute(&mut **c)
                .await?
                .rows_affected()),
            Conn::Sqlite(c) => sqlite_execute(c, &statement),
        }
    }

    pub(crate) async fn fetch_all(&mut self, statement: Stmt) -> Result<Vec<Row>> {
        match self {
            Conn::Sqlx(c) => Ok(sqlx_query(&statement)
                .fetch_all(&mut **c)
                .await?
                .into_iter()
                .map(Row::Sqlx)
                .collect()),
            Conn::Sqlite(c) => sqlite_rows(c, &statement, usize::MAX),
        }
    }

    pub(crate) async fn fetch_optional(&mut self, statement: Stmt) -> Result<Option<Row>> {
        match self {
            Conn::Sqlx(c) => Ok(sqlx_query(&statement)
                .fetch_optional(&mut **c)
                .await?
                .map(Row::Sqlx)),
            Conn::Sqlite(c) => Ok(sqlite_rows(c, &statement, 1)?.pop()),
        }
    }

    /// Runs an `INSERT` and returns the new row's `id`: on SQLite from `last_insert_rowid`
    /// (a `RETURNING` clause there buffers its rows in a temporary table first), on
    /// PostgreSQL through `RETURNING id`.
    pub(crate) async fn insert_id(&mut self, mut statement: Stmt) -> Result<i64> {
        match self {
            Conn::Sqlx(_) => {
                statement.sql.push_str(" RETURNING id");
                let row = self.fetch_one(statement).await?;
                row.col("id")
            }
            Conn::Sqlite(c) => {
                sqlite_execute(c, &statement)?;
                Ok(c.last_insert_rowid())
            }
        }
    }

    pub(crate) async fn fetch_one(&mut self, statement: Stmt) -> Result<Row> {
        self.fetch_optional(statement)
            .await?
            .ok_or_else(|| sqlx::Error::RowNotFound.into())
    }
}

fn sqlx_query(statement: &Stmt) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
    let mut query = sqlx::query(&statement.sql);
    for param in &statement.params {
        query = match param {
            Param::Int(v) => query.bind(*v),
            Param::Real(v) => query.bind(*v),
            Param::Text(v) => query.bind(v.as_deref()),
        };
    }
    query
}

/// Prepares (from the connection's cache) and binds: `$n` by its number, so a placeholder
/// used twice or out of order binds as it does through sqlx; an anonymous `?` by position.
fn sqlite_prepare<'c>(
    c: &'c rusqlite::Connection,
    statement: &Stmt,
) -> Result<rusqlite::CachedStatement<'c>> {
    let mut prepared = c.prepare_cached(&statement.sql)?;
    for index in 1..=prepared.parameter_count() {
        let value = match prepared.parameter_name(index) {
            None => statement.params.get(index - 1),
            Some(name) => match name.strip_prefix('$').map(str::parse::<usize>) {
                Some(Ok(n)) if n >= 1 => statement.params.get(n - 1),
                _ => {
                    return Err(StoreError::invalid(format!(
                        "internal: placeholder {name} is not of the form $n"
                    )));
                }
            },
        };
        match value {
            Some(Param::Int(v)) => prepared.raw_bind_parameter(index, v),
            Some(Param::Real(v)) => prepared.raw_bind_parameter(index, v),
            Some(Param::Text(v)) => prepared.raw_bind_parameter(index, v),
            None => {
                return Err(StoreError::invalid(format!(
                    "internal: placeholder {index} of a statement has no value"
                )));
            }
        }?;
    }
    Ok(prepared)
}

fn sqlite_execute(c: &rusqlite::Connection, statement: &Stmt) -> Result<u64> {
    let mut prepared = sqlite_prepare(c, statement)?;
    Ok(prepared.raw_execute()? as u64)
}

fn sqlite_rows(c: &rusqlite::Connection, statement: &Stmt, limit: usize) -> Result<Vec<Row>> {
    let mut prepared = sqlite_prepare(c, statement)?;
    let columns: std::sync::Arc<[String]> = prepared
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let width = columns.len();
    let mut rows = prepared.raw_query();
    let mut out = Vec::new();
    // A statement with side effects (`… RETURNING`) runs to completion even past `limit`.
    while let Some(row) = rows.next()? {
        if out.len() < limit {
            let values = (0..width)
                .map(|i| row.get::<_, rusqlite::types::Value>(i))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            out.push(Row::Sqlite {
                columns: columns.clone(),
                values,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(future)
    }

    #[test]
    fn sqlite_placeholders_bind_by_number_like_sqlx_even_reused_or_out_of_order() {
        let mut sqlite = rusqlite::Connection::open_in_memory().expect("an in-memory database");
        let mut conn = Conn::Sqlite(&mut sqlite);
        let row = run(conn.fetch_one(
            stmt("SELECT $2 AS second, $1 AS first, $1 + 1 AS again, $3 AS missing")
                .bind(41)
                .bind("text")
                .bind(Option::<String>::None),
        ))
        .expect("a row");
        assert_eq!(row.col::<String>("second").expect("second"), "text");
        assert_eq!(row.col::<i64>("first").expect("first"), 41);
        assert_eq!(row.col::<i64>("again").expect("again"), 42);
        assert_eq!(row.col::<Option<String>>("missing").expect("missing"), None);
        assert!(
            row.col::<i64>("second").is_err(),
            "text is not read as a number"
        );
        assert!(row.col::<i64>("no_such_column").is_err());
    }

    #[test]
    fn sqlite_reals_read_integers_as_sqlx_does_and_a_packed_page_reads_its_first_column() {
        let mut sqlite = rusqlite::Connection::open_in_memory().expect("an in-memory database");
        let mut conn = Conn::Sqlite(&mut sqlite);
        let row = run(conn.fetch_one(stmt("SELECT 1.5 AS real, 2 AS whole, 'x' AS text")))
            .expect("a row");
        assert_eq!(row.col::<f64>("real").expect("real"), 1.5);
        assert_eq!(row.col::<f64>("whole").expect("whole"), 2.0);
        assert!(
            row.col::<f64>("text").is_err(),
            "text is not read as a number"
        );
        let page = run(conn.fetch_one(stmt("SELECT '[[1]]', 2"))).expect("a page");
        assert_eq!(
            page.first_text().expect("the page").as_deref(),
            Some("[[1]]")
        );
        let empty = run(conn.fetch_one(stmt("SELECT NULL"))).expect("an empty page");
        assert_eq!(empty.first_text().expect("no page"), None);
    }

    #[test]
    fn steps_keep_their_own_placeholders_and_values_in_order() {
        let composed = stmt("UPDATE c SET v = $1 WHERE id = $2 RETURNING (SELECT id FROM a)")
            .bind(30)
            .bind(3)
            .after_steps(vec![
                (
                    "a",
                    stmt("INSERT INTO a (v, w) VALUES ($1, $2) RETURNING id")
                        .bind(10)
                        .bind(11),
                ),
                ("b", stmt("UPDATE b SET v = $1 + $1").bind(20)),
            ]);
        assert_eq!(
            composed.sql,
            "WITH a AS (INSERT INTO a (v, w) VALUES ($1, $2) RETURNING id), \
             b AS (UPDATE b SET v = $3 + $3) \
             UPDATE c SET v = $4 WHERE id = $5 RETURNING (SELECT id FROM a)"
        );
        let values: Vec<String> = composed.params.iter().map(|p| format!("{p:?}")).collect();
        assert_eq!(
            values,
            [
                "Int(Some(10))",
                "Int(Some(11))",
                "Int(Some(20))",
                "Int(Some(30))",
                "Int(Some(3))"
            ]
        );
        assert_eq!(renumbered("$9 and $10, $ alone", 1), "$10 and $11, $ alone");
    }

    #[test]
    fn sqlite_anonymous_placeholders_bind_by_position() {
        let mut sqlite = rusqlite::Connection::open_in_memory().expect("an in-memory database");
        let mut conn = Conn::Sqlite(&mut sqlite);
        let row =
            run(conn.fetch_one(stmt("SELECT ? AS a, ? AS b").bind(1).bind("two"))).expect("a row");
        assert_eq!(row.col::<i64>("a").expect("a"), 1);
        assert_eq!(row.col::<String>("b").expect("b"), "two");
    }

    #[test]
    fn a_placeholder_without_a_value_is_refused_not_left_unbound() {
        let mut sqlite = rusqlite::Connection::open_in_memory().expect("an in-memory database");
        let mut conn = Conn::Sqlite(&mut sqlite);
        let refused = run(conn.fetch_one(stmt("SELECT :name AS a").bind(1)));
        assert!(
            matches!(refused, Err(StoreError::Invalid(_))),
            "{:?}",
            refused.err()
        );
    }

    #[test]
    fn a_statement_with_returning_runs_to_completion_when_one_row_is_asked_for() {
        let mut sqlite = rusqlite::Connection::open_in_memory().expect("an in-memory database");
        sqlite
            .execute_batch("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1), (2), (3);")
            .expect("a table");
        let mut conn = Conn::Sqlite(&mut sqlite);
        let first = run(conn.fetch_optional(stmt("UPDATE t SET v = v * 10 RETURNING v")))
            .expect("the update")
            .expect("a row");
        assert_eq!(first.col::<i64>("v").expect("v") % 10, 0);
        let rows = run(conn.fetch_all(stmt("SELECT v FROM t ORDER BY v"))).expect("the rows");
        let values: Vec<i64> = rows.iter().map(|r| r.col("v").expect("v")).collect();
        assert_eq!(values, vec![10, 20, 30], "every row was updated");
        assert_eq!(
            run(conn.execute(stmt("DELETE FROM t WHERE v > $1").bind(15))).expect("the delete"),
            2
        );
    }
}
