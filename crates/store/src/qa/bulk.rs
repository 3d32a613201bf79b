//! Bulk reads and writes of the QA tables: packed pages keyed by (question, item), and
//! multi-row inserts (bound VALUES on SQLite, one JSON parameter on PostgreSQL).

use crate::conn::{Conn, Stmt, stmt};
use crate::error::{Result, StoreError, json_text};
use crate::ids::ItemId;
use crate::ids::ProjectId;
use serde_json::Value;

/// Parameters per multi-row statement (SQLite allows 32,766, PostgreSQL 65,535).
pub(super) const PARAMS_PER_STATEMENT: usize = 3_200;

/// Rows per page of a bulk read (a page travels as one JSON text of a few megabytes).
pub(crate) const PAGE_ROWS: usize = 50_000;

/// Runs a query selecting one packed page ([`crate::Dialect::json_rows`]) and parses it.
pub(crate) async fn packed_page<T>(c: &mut Conn<'_>, query: Stmt) -> Result<Vec<T>>
where
    T: serde::de::DeserializeOwned,
{
    let text = c.fetch_one(query).await?.first_text()?;
    match text {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| StoreError::invalid(format!("a packed page of rows did not parse: {e}"))),
        None => Ok(Vec::new()),
    }
}

impl crate::Store {
    /// One packed page ([`packed_page`]) read through [`crate::Store::read`].
    pub(crate) async fn read_packed_page<T>(&self, query: Stmt) -> Result<Vec<T>>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        self.read(move |mut c| Box::pin(async move { packed_page(&mut c, query).await }))
            .await
    }
}

/// Runs a packed-page query over a project's per-question rows, keyed by (question, item):
/// `sql` takes the project as `$1` and the last key read as `$2, $3` (a row-value keyset,
/// `(question, item_id) > ($2, $3)`), and `each` receives every page in order.
pub(crate) async fn for_each_question_page<T: serde::de::DeserializeOwned>(
    c: &mut Conn<'_>,
    sql: &str,
    project_id: ProjectId,
    key: impl Fn(&T) -> (String, ItemId),
    mut each: impl FnMut(Vec<T>) -> Result<()>,
) -> Result<()> {
    let (mut after_question, mut after_item) = (String::new(), ItemId(0));
    loop {
        let page: Vec<T> = packed_page(
            c,
            stmt(sql)
                .bind(project_id)
                .bind(after_question.clone())
                .bind(after_item),
        )
        .await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        (after_question, after_item) = key(last);
        each(page)?;
    }
}

/// Rows per packed PostgreSQL write (one JSON parameter of a few megabytes).
pub(super) const PACKED_WRITE_ROWS: usize = 20_000;

/// How a batch of rows is written: the PostgreSQL type of each column (for the packed
/// form), each row as a JSON array (PostgreSQL), and each row's values bound in order
/// (SQLite).
pub(super) struct RowWriter<'a, T> {
    pub(super) types: &'a [&'a str],
    pub(super) to_json: &'a (dyn Fn(&T) -> Value + Sync),
    pub(super) bind: &'a (dyn Fn(Stmt, &T) -> Stmt + Sync),
}

/// Runs `head SOURCE tail` over `rows` in chunks, SOURCE being a row source with the
/// writer's columns; returns the rows affected. On SQLite SOURCE is `VALUES (…), (…)` of
/// bound parameters; on PostgreSQL the chunk travels as one JSON parameter unpacked by
/// `json_array_elements`, because a statement of thousands of parameters spends its time
/// in PostgreSQL's parser and planner (35 s for 666,668 consensus rows; packed, a few).
pub(super) async fn insert_rows<T>(
    c: &mut Conn<'_>,
    dialect: crate::Dialect,
    head: &str,
    tail: &str,
    rows: &[T],
    writer: RowWriter<'_, T>,
) -> Result<u64> {
    let per_row = writer.types.len();
    let mut affected = 0;
    if dialect.is_postgres() {
        let columns: Vec<String> = writer
            .types
            .iter()
            .enumerate()
            .map(|(i, ty)| format!("(value->>{i})::{ty}"))
            .collect();
        let sql = format!(
            "{head}SELECT {} FROM json_array_elements($1::json) AS packed(value){tail}",
            columns.join(", ")
        );
        for chunk in rows.chunks(PACKED_WRITE_ROWS) {
            let packed: Vec<Value> = chunk.iter().map(|row| (writer.to_json)(row)).collect();
            affected += c.execute(stmt(&sql).bind(json_text(&packed))).await?;
        }
        return Ok(affected);
    }
    for chunk in rows.chunks((PARAMS_PER_STATEMENT / per_row).max(1)) {
        let mut sql = String::with_capacity(head.len() + tail.len() + chunk.len() * per_row * 4);
        sql.push_str(head);
        sql.push_str("VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            for k in 1..=per_row {
                if k > 1 {
                    sql.push_str(", ");
                }
                sql.push_str(&dialect.param(i * per_row + k));
            }
            sql.push(')');
        }
        sql.push_str(tail);
        let mut query = stmt(sql);
        for row in chunk {
            query = (writer.bind)(query, row);
        }
        affected += c.execute(query).await?;
    }
    Ok(affected)
}
