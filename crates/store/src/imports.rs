//! All-or-nothing imports that do not hold SQLite's write lock for the whole file.
//!
//! A file is read in batches; each batch is validated and written to a staging table in its
//! own short transaction (other writers get their turn in between). When the whole file has
//! been read without error, one statement publishes the staged rows; on any error the staged
//! rows are deleted and nothing from the file is visible.

use crate::accounts::random_token;
use crate::audit::AuditEvent;
use crate::conn::{Columns, Conn, stmt};
use crate::db::Backend;
use crate::error::{Result, StoreError, json_text};
use crate::ids::{ProjectId, UserId};
use crate::model::AuditAction;
use crate::model::Id;
use crate::schema::{LabelSchema, QuestionKind};
use crate::{Store, audit};
use concord_formats::items::{AnnotationRecord, CatalogItem};
use serde::Serialize;
use serde_json::Value;
use sqlx::{AnyConnection, Connection, Executor, PgConnection};
use std::collections::HashMap;

/// What to do with an item whose id already exists in the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnConflict {
    /// Reject the file, naming the first such line.
    Error,
    /// Keep the stored item, ignore the line.
    Skip,
    /// Replace the stored catalog fields (state and annotations are kept).
    Update,
}

impl OnConflict {
    pub fn parse(text: &str) -> Option<OnConflict> {
        match text {
            "error" => Some(OnConflict::Error),
            "skip" => Some(OnConflict::Skip),
            "update" => Some(OnConflict::Update),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportOutcome {
    pub read: i64,
    pub inserted: i64,
    pub updated: i64,
    pub skipped: i64,
}

/// Rows per INSERT statement while staging (well under both back ends' parameter limits).
const ROWS_PER_STATEMENT: usize = 400;

fn import_id() -> Id {
    // 62 random bits: unique enough for concurrent imports, positive on every back end.
    i64::from_str_radix(&random_token(8)[..15], 16).unwrap_or(1)
}

const STAGED_ITEMS_COLUMNS: &str = "import_id INTEGER NOT NULL, line INTEGER NOT NULL, \
     external_id TEXT NOT NULL, item_type TEXT NOT NULL, title TEXT NOT NULL, creators TEXT NOT NULL, \
     metadata TEXT NOT NULL, text_fields TEXT NOT NULL, media_url TEXT, priority INTEGER NOT NULL, \
     is_gold INTEGER NOT NULL, gold_answer TEXT, PRIMARY KEY (import_id, external_id)";
const STAGED_ANNOTATIONS_COLUMNS: &str = "import_id INTEGER NOT NULL, line INTEGER NOT NULL, \
     item_id INTEGER NOT NULL, annotator TEXT NOT NULL, answer TEXT NOT NULL, rationale TEXT NOT NULL, \
     time_spent_ms INTEGER, guideline_version_id INTEGER, created_at INTEGER, \
     PRIMARY KEY (import_id, line)";

/// Where staged rows go (a bulk path: the staging connection is opened with sqlx, and its
/// statements run through [`Conn`]). On SQLite: a TEMP table on a connection of the import's own, so
/// staging never takes the database's write lock (temp tables live outside the main file);
/// only the publish step does, briefly. On PostgreSQL: an UNLOGGED table shared by
/// imports, written in ordinary transactions — items by `COPY` on a native connection of
/// the import's own (see [`copy_items`]), annotations through the pool.
enum Stager {
    Sqlite {
        conn: AnyConnection,
        table: &'static str,
    },
    Postgres {
        table: &'static str,
        /// Items only: the connection their `COPY`s run on, opened at the first batch.
        copy: Option<PgConnection>,
    },
}

impl Stager {
    async fn open(
        store: &Store,
        temp_table: &'static str,
        shared_table: &'static str,
        columns: &str,
    ) -> Result<Stager> {
        match store.backend() {
            Backend::Sqlite => {
                let mut conn = AnyConnection::connect(&store.inner.url).await?;
                conn.execute(crate::db::SQLITE_PRAGMAS).await?;
                conn.execute("PRAGMA temp_store = FILE").await?;
                // The publish inserts into every index on `items` at once; past a few
                // hundred thousand items the default 2 MiB cache thrashes (1M items: the
                // publish took 12.5–14 s, with 16 MiB 9.3 s). Filled only as used, and the
                // same for any file size.
                conn.execute("PRAGMA cache_size = -16384").await?;
                // The staged rows spill from the temp table's own 2 MiB cache to its file and
                // are read back by the publish: 8 MiB there took 100k items 2.02–2.25 s →
                // 1.51–1.69 s (1M: 19.8 → 18.4 s), peak RSS +10 MiB at any file size.
                conn.execute("PRAGMA temp.cache_size = -8192").await?;
                conn.execute(format!("CREATE TEMP TABLE {temp_table} ({columns})").as_str())
                    .await?;
                Ok(Stager::Sqlite {
                    conn,
                    table: temp_table,
                })
            }
            Backend::Postgres => Ok(Stager::Postgres {
                table: shared_table,
                copy: None,
            }),
        }
    }

    fn table(&self) -> &'static str {
        match self {
            Stager::Sqlite { table, .. } | Stager::Postgres { table, .. } => table,
        }
    }

    /// Runs a staging step in a transaction on the staging side.
    async fn run<T, F>(&mut self, store: &Store, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(Conn<'c>) -> futures_util::future::BoxFuture<'c, Result<T>>
            + Send
            + 'static,
    {
        match self {
            Stager::Sqlite { conn, .. } => in_transaction(conn, "BEGIN", op).await,
            Stager::Postgres { .. } => store.write(move |c| op(Conn::Sqlx(c))).await,
        }
    }

    /// Runs the publish step: on SQLite on the staging connection (which alone sees the temp
    /// table) holding the write lock for just this statement's transaction.
    async fn publish<T, F>(&mut self, store: &Store, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(Conn<'c>) -> futures_util::future::BoxFuture<'c, Result<T>>
            + Send
            + 'static,
    {
        match self {
            Stager::Sqlite { conn, .. } => {
                let outcome = in_transaction(conn, "BEGIN IMMEDIATE", op).await;
                // An annotation import adds users and memberships.
                store.inner.access.invalidate();
                outcome
            }
            Stager::Postgres { .. } => store.write(move |c| op(Conn::Sqlx(c))).await,
        }
    }

    async fn clear(self, store: &Store, import_id: Id) {
        match self {
            // Closing the connection drops its temp table.
            Stager::Sqlite { conn, .. } => {
                let _ = conn.close().await;
            }
            Stager::Postgres { table, copy } => {
                if let Some(conn) = copy {
                    let _ = conn.close().await;
                }
                clear_staging(store, table, import_id).await
            }
        }
    }
}

async fn in_transaction<T, F>(conn: &mut AnyConnection, begin: &str, op: F) -> Result<T>
where
    F: for<'c> FnOnce(Conn<'c>) -> futures_util::future::BoxFuture<'c, Result<T>>,
{
    conn.execute(begin).await?;
    match op(Conn::Sqlx(conn)).await {
        Ok(value) => {
            conn.execute("COMMIT").await?;
            Ok(value)
        }
        Err(e) => {
            let _ = conn.execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// An item as its staging row: the nested fields already JSON text.
pub struct StagedItem {
    line: u64,
    external_id: String,
    item_type: &'static str,
    title: String,
    creators: String,
    metadata: String,
    text: String,
    media_url: Option<String>,
    priority: i64,
    gold: Option<Value>,
    gold_text: Option<String>,
}

impl StagedItem {
    pub fn new(line: u64, item: CatalogItem) -> StagedItem {
        StagedItem {
            line,
            external_id: item.external_id,
            item_type: item.item_type.as_str(),
            title: item.title,
            creators: json_text(&item.creators),
            metadata: json_text(&item.metadata),
            text: json_text(&item.text),
            media_url: item.media_url,
            priority: item.priority,
            gold_text: item.gold_answer.as_ref().map(json_text),
            gold: item.gold_answer,
        }
    }
}

/// An item import in progress.
pub struct ItemImport {
    store: Store,
    stager: Stager,
    project_id: ProjectId,
    import_id: Id,
    file: String,
    schema: LabelSchema,
    read: i64,
}

impl Store {
    pub async fn begin_item_import(&self, project_id: ProjectId, file: &str) -> Result<ItemImport> {
        let schema = self.current_schema(project_id).await?.definition;
        let stager =
            Stager::open(self, "staged_items", "import_staging", STAGED_ITEMS_COLUMNS).await?;
        Ok(ItemImport {
            store: self.clone(),
            stager,
            project_id,
            import_id: import_id(),
            file: file.to_owned(),
            schema,
            read: 0,
        })
    }

    pub async fn begin_annotation_import(
        &self,
        project_id: ProjectId,
        file: &str,
    ) -> Result<AnnotationImport> {
        let schema = self.current_schema(project_id).await?;
        let stager = Stager::open(
            self,
            "staged_annotations",
            "annotation_staging",
            STAGED_ANNOTATIONS_COLUMNS,
        )
        .await?;
        Ok(AnnotationImport {
            store: self.clone(),
            stager,
            project_id,
            import_id: import_id(),
            file: file.to_owned(),
            schema: schema.definition,
            schema_version_id: schema.id,
            read: 0,
            guideline_versions: None,
        })
    }
}

fn line_error(file: &str, line: u64, field: &str, message: impl std::fmt::Display) -> StoreError {
    StoreError::invalid(format!("{file}:{line}: field {field}: {message}"))
}

impl ItemImport {
    pub fn records_read(&self) -> i64 {
        self.read
    }

    /// Validates and stages a batch. On error, call [`ItemImport::abort`].
    pub async fn stage(&mut self, batch: Vec<(u64, CatalogItem)>) -> Result<()> {
        let rows = batch
            .into_iter()
            .map(|(line, item)| StagedItem::new(line, item))
            .collect();
        self.stage_rows(rows).await
    }

    /// [`ItemImport::stage`] for items already turned into rows (the file import does that
    /// on the parser's parallel pass).
    pub async fn stage_rows(&mut self, batch: Vec<StagedItem>) -> Result<()> {
        for row in &batch {
            if let Some(gold) = &row.gold {
                self.schema
                    .validate_answer(gold)
                    .map_err(|e| line_error(&self.file, row.line, "gold", e))?;
            }
        }
        self.read += batch.len() as i64;
        let import_id = self.import_id;
        if let Stager::Postgres { table, copy } = &mut self.stager {
            if copy.is_none() {
                *copy = Some(self.store.connect_pg_native().await?);
            }
            if let Some(conn) = copy {
                return copy_items(conn, table, import_id, &self.file, &batch).await;
            }
        }
        let file = self.file.clone();
        let dialect = self.store.dialect();
        let table = self.stager.table();
        self.stager
            .run(&self.store, move |mut c| {
                Box::pin(async move {
                    let staging = Staging {
                        table,
                        import_id,
                        dialect,
                    };
                    for chunk in batch.chunks(ROWS_PER_STATEMENT) {
                        staging.insert_items(&mut c, &file, chunk).await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    /// Publishes everything staged in one statement, or rejects the file.
    pub async fn publish(
        self,
        on_conflict: OnConflict,
        actor: Option<UserId>,
    ) -> Result<ImportOutcome> {
        // long: one publishing transaction's steps in order, each a named function; the
        // rest is the outcome and its audit record.
        let ItemImport {
            store,
            mut stager,
            project_id,
            import_id,
            file,
            read,
            ..
        } = self;
        let now = store.dialect().now_ms();
        let backend = store.backend();
        let table = stager.table();
        let outcome = stager
            .publish(&store, move |mut c| {
                Box::pin(async move {
                    let staged = StagedItems {
                        table,
                        project_id,
                        import_id,
                    };
                    // Skipping needs no count: the rows not inserted are the skipped ones.
                    let existing = match on_conflict {
                        OnConflict::Skip => None,
                        _ => staged.already_in_project(&mut c).await?,
                    };
                    if let Some((count, first_line)) = existing.filter(|_| on_conflict == OnConflict::Error) {
                        let id = staged.external_id_at(&mut c, first_line).await?;
                        return Err(StoreError::conflict(format!(
                            "{file}:{first_line}: field id: item {id:?} already exists in the project \
                             ({count} lines of the file do); import with on-conflict skip or update"
                        )));
                    }
                    let existing = existing.map_or(0, |(count, _)| count);
                    let affected = staged.insert(&mut c, backend, on_conflict, now).await?;
                    crate::queue::queue_reordered(&mut c, project_id).await?;
                    let outcome = match on_conflict {
                        OnConflict::Update => ImportOutcome {
                            read,
                            inserted: affected - existing,
                            updated: existing,
                            skipped: 0,
                        },
                        _ => ImportOutcome {
                            read,
                            inserted: affected,
                            updated: 0,
                            skipped: read - affected,
                        },
                    };
                    let after = serde_json::json!({"file": file, "outcome": outcome});
                    let event = AuditEvent {
                        actor,
                        project: Some(project_id),
                        action: AuditAction::Import,
                        entity: "items",
                        entity_id: None,
                        before: None,
                        after: audit::snapshot(&after),
                    };
                    audit::record_in(&mut c, event).await?;
                    Ok(outcome)
                })
            })
            .await;
        stager.clear(&store, import_id).await;
        if outcome.is_ok() {
            store.refresh_statistics("items").await;
        }
        outcome
    }

    /// Drops everything staged; nothing from the file becomes visible.
    pub async fn abort(self) {
        self.stager.clear(&self.store, self.import_id).await;
    }
}

/// The rows one item import staged, on their way into `items`.
struct StagedItems {
    table: &'static str,
    project_id: ProjectId,
    import_id: Id,
}

impl StagedItems {
    /// How many staged items exist in the project already, and the first such line.
    async fn already_in_project(&self, c: &mut Conn<'_>) -> Result<Option<(i64, i64)>> {
        let table = self.table;
        let row = c
            .fetch_one(
                stmt(format!(
                    "SELECT COUNT(*) AS n, MIN(s.line) AS first FROM {table} s \
             JOIN items i ON i.project_id = $1 AND i.external_id = s.external_id \
             WHERE s.import_id = $2"
                ))
                .bind(self.project_id)
                .bind(self.import_id),
            )
            .await?;
        let count: i64 = row.col("n")?;
        Ok(match count {
            0 => None,
            _ => Some((count, row.col("first")?)),
        })
    }

    async fn external_id_at(&self, c: &mut Conn<'_>, line: i64) -> Result<String> {
        let table = self.table;
        c.fetch_one(
            stmt(format!(
                "SELECT external_id FROM {table} WHERE import_id = $1 AND line = $2"
            ))
            .bind(self.import_id)
            .bind(line),
        )
        .await?
        .col("external_id")
    }

    /// Inserts the staged items in file order in one statement; returns the rows affected.
    async fn insert(
        &self,
        c: &mut Conn<'_>,
        backend: Backend,
        on_conflict: OnConflict,
        now: &str,
    ) -> Result<i64> {
        let table = self.table;
        // In file order. SQLite's staging table is this import's alone and was filled in
        // file order, so its row order is the file's: a plain scan (`+` keeps the planner
        // off the key index) spares sorting every row.
        let source = match backend {
            Backend::Sqlite => "+import_id = $2 ORDER BY rowid",
            Backend::Postgres => "import_id = $2 ORDER BY line",
        };
        let upsert = match on_conflict {
            OnConflict::Error => String::new(),
            OnConflict::Skip => " ON CONFLICT (project_id, external_id) DO NOTHING".into(),
            OnConflict::Update => format!(
                " ON CONFLICT (project_id, external_id) DO UPDATE SET \
                 item_type = excluded.item_type, title = excluded.title, \
                 creators = excluded.creators, metadata = excluded.metadata, \
                 text_fields = excluded.text_fields, media_url = excluded.media_url, \
                 priority = excluded.priority, is_gold = excluded.is_gold, \
                 gold_answer = excluded.gold_answer, updated_at = {now}"
            ),
        };
        let statement = stmt(format!(
            "INSERT INTO items (project_id, external_id, item_type, title, creators, metadata, \
               text_fields, media_url, priority, is_gold, gold_answer, import_id) \
             SELECT $1, external_id, item_type, title, creators, metadata, text_fields, \
               media_url, priority, is_gold, gold_answer, import_id \
             FROM {table} WHERE {source}{upsert}"
        ))
        .bind(self.project_id)
        .bind(self.import_id);
        if backend == Backend::Postgres {
            // The staged rows are read in line order through `import_staging_line`. The
            // planner, which has no fresh statistics for the staging table, otherwise
            // guesses a few thousand rows and sorts them: a million rows of ≈ 450 bytes
            // sorted on disk took ≈ 1.3 s more than the index's ordered scan.
            c.execute(stmt("SET LOCAL enable_sort = off")).await?;
            let done = c.execute(statement).await?;
            c.execute(stmt("SET LOCAL enable_sort = on")).await?;
            return Ok(done as i64);
        }
        let done = c.execute(statement).await?;
        Ok(done as i64)
    }
}

impl Store {
    /// After a bulk import on PostgreSQL, refreshes the table's planner statistics: the
    /// autovacuum daemon gets to it later, and until then a table that was empty a minute
    /// ago is planned as empty (a 5,000-id lookup then scans the project instead of using
    /// its unique index: 20 ms became 2 s). SQLite keeps no statistics unless asked.
    pub(crate) async fn refresh_statistics(&self, table: &'static str) {
        if self.backend() == Backend::Postgres
            && let Err(e) = self
                .read(move |mut c| {
                    Box::pin(async move { c.execute(stmt(format!("ANALYZE {table}"))).await })
                })
                .await
        {
            tracing::warn!(table, error = %e, "could not refresh planner statistics");
        }
    }
}

async fn clear_staging(store: &Store, table: &'static str, import_id: Id) {
    let result = store
        .write_conn(move |mut c| {
            Box::pin(async move {
                let c = &mut c;
                c.execute(
                    stmt(format!("DELETE FROM {table} WHERE import_id = $1")).bind(import_id),
                )
                .await?;
                Ok(())
            })
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, import_id, "could not clear staged rows; they are inert");
    }
}

/// Where an import's rows wait until it is published.
struct Staging {
    table: &'static str,
    import_id: Id,
    dialect: crate::Dialect,
}

impl Staging {
    /// Stages a chunk of items in one statement; an id staged twice is named by its line.
    async fn insert_items(&self, c: &mut Conn<'_>, file: &str, chunk: &[StagedItem]) -> Result<()> {
        let Staging {
            table,
            import_id,
            dialect,
        } = *self;
        let mut sql = format!(
            "INSERT INTO {table} (import_id, line, external_id, item_type, title, \
             creators, metadata, text_fields, media_url, priority, is_gold, gold_answer) VALUES "
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            let params: Vec<String> = (1..=11).map(|k| dialect.param(i * 11 + k)).collect();
            sql += &format!("({import_id}, {})", params.join(", "));
        }
        let mut query = stmt(sql);
        for row in chunk {
            query = query
                .bind(row.line as i64)
                .bind(row.external_id.as_str())
                .bind(row.item_type)
                .bind(row.title.as_str())
                .bind(row.creators.as_str())
                .bind(row.metadata.as_str())
                .bind(row.text.as_str())
                .bind(row.media_url.as_deref())
                .bind(row.priority)
                .bind(row.gold.is_some() as i64)
                .bind(row.gold_text.as_deref());
        }
        // A savepoint per chunk, so that after a failed insert the staged rows can still be
        // read to name the duplicate (PostgreSQL refuses every statement in a transaction
        // after an error until it is rolled back).
        c.execute(stmt("SAVEPOINT stage_chunk")).await?;
        if let Err(e) = c.execute(query).await {
            if e.is_unique_violation() {
                c.execute(stmt("ROLLBACK TO SAVEPOINT stage_chunk")).await?;
                return Err(duplicate_in_file(c, table, import_id, file, chunk).await);
            }
            return Err(e);
        }
        c.execute(stmt("RELEASE SAVEPOINT stage_chunk")).await?;
        Ok(())
    }
}

/// The staging table's columns in the order [`copy_rows`] writes them.
const COPY_ITEM_COLUMNS: &str = "import_id, line, external_id, item_type, title, creators, \
     metadata, text_fields, media_url, priority, is_gold, gold_answer";

/// PostgreSQL: stages a batch of items with one `COPY … FROM STDIN` on the import's own
/// native connection. Through sqlx's `Any` driver every value of a multi-row `INSERT` was
/// bound and converted one by one; `COPY` streams the rows as text and the server parses
/// them in bulk. Each `COPY` commits by itself, as each staged batch did; an id staged
/// twice (in this batch or an earlier one) is named by its line.
async fn copy_items(
    conn: &mut PgConnection,
    table: &str,
    import_id: Id,
    file: &str,
    batch: &[StagedItem],
) -> Result<()> {
    if repeats_an_id(batch) {
        return Err(duplicate_staged(conn, table, import_id, file, batch).await);
    }
    let data = copy_rows(import_id, file, batch)?;
    let mut copy = conn
        .copy_in_raw(&format!("COPY {table} ({COPY_ITEM_COLUMNS}) FROM STDIN"))
        .await?;
    copy.send(data).await?;
    match copy.finish().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = StoreError::from(e);
            if e.is_unique_violation() {
                return Err(duplicate_staged(conn, table, import_id, file, batch).await);
            }
            Err(e)
        }
    }
}

/// True when two rows of the batch have the same id (checked before the `COPY`, whose
/// failure would not say which lines).
fn repeats_an_id(batch: &[StagedItem]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(batch.len());
    !batch
        .iter()
        .all(|item| seen.insert(item.external_id.as_str()))
}

/// Names the first line of the batch whose id was staged before: on an earlier line of
/// the batch, or in an earlier batch of the same import.
async fn duplicate_staged(
    conn: &mut PgConnection,
    table: &str,
    import_id: Id,
    file: &str,
    batch: &[StagedItem],
) -> StoreError {
    let ids: Vec<&str> = batch.iter().map(|item| item.external_id.as_str()).collect();
    // On sqlx's native PostgreSQL driver, not `Conn`: the import's own `COPY` connection.
    let earlier: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(&format!(
        "SELECT external_id, line FROM {table} WHERE import_id = $1 AND external_id = ANY($2)"
    ))
    .bind(import_id)
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await
    .map(|rows| rows.into_iter().collect())
    .unwrap_or_default();
    let mut seen: HashMap<&str, u64> = HashMap::with_capacity(batch.len());
    for item in batch {
        let id = item.external_id.as_str();
        let first = match earlier.get(id) {
            Some(line) => Some(*line as u64),
            None => seen.get(id).copied(),
        };
        if let Some(first) = first {
            return line_error(
                file,
                item.line,
                "id",
                format!("item {id:?} appears twice (first on line {first})"),
            );
        }
        seen.insert(id, item.line);
    }
    StoreError::invalid(format!("{file}: an item id appears twice"))
}

/// The batch as `COPY` text: one line per row, columns by tabs, `\N` for NULL, and in
/// every text value (the JSON ones too) backslash, tab, newline and carriage return
/// escaped with a backslash, as PostgreSQL's text format requires. A NUL character, which
/// no PostgreSQL text can hold, is refused with its line and field.
fn copy_rows(import_id: Id, file: &str, batch: &[StagedItem]) -> Result<Vec<u8>> {
    use std::io::Write as _;
    let size: usize = batch
        .iter()
        .map(|r| {
            r.external_id.len()
                + r.title.len()
                + r.creators.len()
                + r.metadata.len()
                + r.text.len()
                + r.media_url.as_ref().map_or(0, String::len)
                + r.gold_text.as_ref().map_or(0, String::len)
                + 80
        })
        .sum();
    let mut out = Vec::with_capacity(size + size / 16);
    for row in batch {
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{import_id}\t{}\t", row.line);
        let texts = [
            ("id", Some(row.external_id.as_str())),
            ("item_type", Some(row.item_type)),
            ("title", Some(row.title.as_str())),
            ("creators", Some(row.creators.as_str())),
            ("metadata", Some(row.metadata.as_str())),
            ("text", Some(row.text.as_str())),
            ("media_url", row.media_url.as_deref()),
        ];
        for (field, value) in texts {
            copy_text(&mut out, value).map_err(|()| nul_error(file, row.line, field))?;
            out.push(b'\t');
        }
        let _ = write!(out, "{}\t{}\t", row.priority, row.gold.is_some() as i64);
        copy_text(&mut out, row.gold_text.as_deref())
            .map_err(|()| nul_error(file, row.line, "gold"))?;
        out.push(b'\n');
    }
    Ok(out)
}

fn nul_error(file: &str, line: u64, field: &str) -> StoreError {
    line_error(
        file,
        line,
        field,
        "contains a NUL character (U+0000), which PostgreSQL cannot store in text",
    )
}

/// One value in `COPY` text format; `Err` for a NUL character.
fn copy_text(out: &mut Vec<u8>, value: Option<&str>) -> std::result::Result<(), ()> {
    let Some(value) = value else {
        out.extend_from_slice(b"\\N");
        return Ok(());
    };
    let bytes = value.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            0 => return Err(()),
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escaped);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    Ok(())
}

/// Names the line that repeats an id staged earlier in the same file.
async fn duplicate_in_file(
    c: &mut Conn<'_>,
    table: &str,
    import_id: Id,
    file: &str,
    chunk: &[StagedItem],
) -> StoreError {
    let mut seen: HashMap<&str, u64> = HashMap::new();
    for item in chunk {
        let line = item.line;
        if let Some(first) = seen.insert(&item.external_id, line) {
            return line_error(
                file,
                line,
                "id",
                format!(
                    "item {:?} appears twice (first on line {first})",
                    item.external_id
                ),
            );
        }
        let earlier = c
            .fetch_optional(
                stmt(format!(
                    "SELECT line FROM {table} WHERE import_id = $1 AND external_id = $2"
                ))
                .bind(import_id)
                .bind(&item.external_id),
            )
            .await;
        if let Ok(Some(row)) = earlier {
            let first: i64 = row.col("line").unwrap_or(0);
            return line_error(
                file,
                line,
                "id",
                format!(
                    "item {:?} appears twice (first on line {first})",
                    item.external_id
                ),
            );
        }
    }
    StoreError::invalid(format!("{file}: an item id appears twice"))
}

/// One staged annotation: its line, item, record, answer in the schema's shape and
/// guideline version.
type StagedAnnotation = (u64, Id, AnnotationRecord, Value, Option<Id>);

/// Annotators not yet known become accounts without a password (they cannot log in until
/// an admin sets one), and every annotator of the file an annotator of the project.
async fn enrol_new_annotators(
    c: &mut Conn<'_>,
    table: &str,
    project_id: ProjectId,
    import_id: Id,
) -> Result<()> {
    c.execute(
        stmt(format!(
            "INSERT INTO users (username, display_name) \
         SELECT DISTINCT annotator, annotator FROM {table} \
         WHERE import_id = $1 AND annotator NOT IN (SELECT username FROM users)"
        ))
        .bind(import_id),
    )
    .await?;
    c.execute(
        stmt(format!(
            "INSERT INTO memberships (project_id, user_id, role) \
         SELECT DISTINCT $1, u.id, 'annotator' FROM {table} s \
         JOIN users u ON u.username = s.annotator WHERE s.import_id = $2 \
         ON CONFLICT (project_id, user_id) DO NOTHING"
        ))
        .bind(project_id)
        .bind(import_id),
    )
    .await?;
    Ok(())
}

/// Imported labels complete their items: the queue counts them and serves the item no
/// more (it would otherwise go past its overlap).
async fn complete_labelled_items(c: &mut Conn<'_>, table: &str, import_id: Id) -> Result<()> {
    c.execute(
        stmt(format!(
            "UPDATE items SET labels_count = items.labels_count + c.n, open = 0, \
           state = CASE WHEN items.state IN ('queued', 'in_progress') \
                        THEN 'labelled' ELSE items.state END \
         FROM (SELECT item_id, COUNT(*) AS n FROM {table} WHERE import_id = $1 \
               GROUP BY item_id) c \
         WHERE items.id = c.item_id"
        ))
        .bind(import_id),
    )
    .await?;
    Ok(())
}

/// External item ids → item ids of the project (unknown ones are absent). Not a method:
/// an import holds a connection, which may not be shared across an await.
async fn item_ids(
    store: &Store,
    project_id: ProjectId,
    wanted: &[&str],
) -> Result<HashMap<String, Id>> {
    let mut ids: HashMap<String, Id> = HashMap::new();
    let dialect = store.dialect();
    for chunk in wanted.chunks(ROWS_PER_STATEMENT) {
        let params: Vec<String> = (0..chunk.len()).map(|i| dialect.param(i + 2)).collect();
        let sql = format!(
            "SELECT id, external_id FROM items WHERE project_id = {} AND external_id IN ({})",
            dialect.param(1),
            params.join(",")
        );
        let mut query = stmt(&sql).bind(project_id);
        for id in chunk {
            query = query.bind(*id);
        }
        for row in store.read_rows(query).await? {
            ids.insert(row.col("external_id")?, row.col("id")?);
        }
    }
    Ok(ids)
}

/// An import of existing annotations (migrating from another tool).
pub struct AnnotationImport {
    store: Store,
    stager: Stager,
    project_id: ProjectId,
    import_id: Id,
    file: String,
    schema: LabelSchema,
    schema_version_id: Id,
    read: i64,
    /// Published guideline versions (number → id), read at the first batch.
    guideline_versions: Option<HashMap<i64, Id>>,
}

impl AnnotationImport {
    /// Converts CSV text values to the schema's shapes (`a;b` for multi-label questions).
    fn answer(&self, line: u64, record: &AnnotationRecord) -> Result<Value> {
        let mut answer = serde_json::Map::new();
        for (key, value) in &record.answer {
            let question = self
                .schema
                .questions
                .iter()
                .find(|q| &q.key == key)
                .ok_or_else(|| {
                    line_error(
                        &self.file,
                        line,
                        key,
                        "is not a question of the project's schema",
                    )
                })?;
            let value = match (question.kind, value) {
                (QuestionKind::Multi, Value::String(text)) => Value::Array(
                    text.split(';')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.to_owned()))
                        .collect(),
                ),
                _ => value.clone(),
            };
            answer.insert(key.clone(), value);
        }
        let answer = Value::Object(answer);
        self.schema
            .validate_answer(&answer)
            .map_err(|e| line_error(&self.file, line, "answer", e))?;
        Ok(answer)
    }

    pub async fn stage(&mut self, batch: Vec<(u64, AnnotationRecord)>) -> Result<()> {
        let mut answers = Vec::with_capacity(batch.len());
        for (line, record) in &batch {
            self.check_annotator(*line, record)?;
            answers.push(self.answer(*line, record)?);
        }
        let wanted: Vec<&str> = batch.iter().map(|(_, r)| r.item.as_str()).collect();
        let ids = item_ids(&self.store, self.project_id, &wanted).await?;
        let versions = self.published_guideline_versions().await?;
        let mut staged = Vec::with_capacity(batch.len());
        for ((line, record), answer) in batch.into_iter().zip(answers) {
            let guideline_version_id = match record.guideline_version {
                None => None,
                Some(v) => Some(*versions.get(&v).ok_or_else(|| {
                    line_error(
                        &self.file,
                        line,
                        "guideline_version",
                        format!("the project has no published guideline version {v}"),
                    )
                })?),
            };
            let item_id = *ids.get(&record.item).ok_or_else(|| {
                line_error(
                    &self.file,
                    line,
                    "item",
                    format!("no item {:?} in this project", record.item),
                )
            })?;
            staged.push((line, item_id, record, answer, guideline_version_id));
        }
        self.read += staged.len() as i64;
        self.write_staged(staged).await
    }

    fn check_annotator(&self, line: u64, record: &AnnotationRecord) -> Result<()> {
        if crate::accounts::valid_username(&record.annotator) {
            return Ok(());
        }
        Err(line_error(
            &self.file,
            line,
            "annotator",
            format!(
                "{:?} is not a valid user name (1–64 letters, digits or _ - . @)",
                record.annotator
            ),
        ))
    }

    /// Published guideline versions (number → id), read at the first batch.
    async fn published_guideline_versions(&mut self) -> Result<HashMap<i64, Id>> {
        if let Some(versions) = &self.guideline_versions {
            return Ok(versions.clone());
        }
        let mut versions = HashMap::new();
        let statement = stmt(
            "SELECT version, id FROM guideline_versions WHERE project_id = $1 AND status = 'published'",
        )
        .bind(self.project_id);
        for row in self.store.read_rows(statement).await? {
            versions.insert(row.col::<i64>("version")?, row.col::<Id>("id")?);
        }
        self.guideline_versions = Some(versions.clone());
        Ok(versions)
    }

    async fn write_staged(&mut self, staged: Vec<StagedAnnotation>) -> Result<()> {
        let import_id = self.import_id;
        let dialect = self.store.dialect();
        let table = self.stager.table();
        self.stager
            .run(&self.store, move |mut c| {
                Box::pin(async move {
                    for chunk in staged.chunks(ROWS_PER_STATEMENT) {
                        let mut sql = format!(
                            "INSERT INTO {table} (import_id, line, item_id, annotator, answer, \
                             rationale, time_spent_ms, guideline_version_id, created_at) VALUES "
                        );
                        for i in 0..chunk.len() {
                            if i > 0 {
                                sql.push(',');
                            }
                            let params: Vec<String> =
                                (1..=8).map(|k| dialect.param(i * 8 + k)).collect();
                            sql += &format!("({import_id}, {})", params.join(", "));
                        }
                        let mut query = stmt(&sql);
                        for (line, item_id, record, answer, guideline_version_id) in chunk {
                            query = query
                                .bind(*line as i64)
                                .bind(*item_id)
                                .bind(record.annotator.clone())
                                .bind(json_text(answer))
                                .bind(record.rationale.clone())
                                .bind(record.time_spent_ms)
                                .bind(*guideline_version_id)
                                .bind(record.created_at);
                        }
                        c.execute(query).await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    /// Publishes the staged annotations. Annotators not yet known become accounts without a
    /// password (they cannot log in until an admin sets one) and annotators of the project.
    pub async fn publish(self, actor: Option<UserId>) -> Result<ImportOutcome> {
        let AnnotationImport {
            store,
            mut stager,
            project_id,
            import_id,
            file,
            schema_version_id,
            read,
            ..
        } = self;
        let table = stager.table();
        let now = store.dialect().now_ms();
        let outcome = stager
            .publish(&store, move |mut c| {
                Box::pin(async move {
                    enrol_new_annotators(&mut c, table, project_id, import_id).await?;
                    let statement = stmt(format!(
                        "INSERT INTO annotations (project_id, item_id, annotator_id, answer, rationale, \
                           time_spent_ms, schema_version_id, source, guideline_version_id, created_at) \
                         SELECT $1, s.item_id, u.id, s.answer, s.rationale, s.time_spent_ms, $3, 'import', \
                                s.guideline_version_id, COALESCE(s.created_at, {now}) \
                         FROM {table} s JOIN users u ON u.username = s.annotator \
                         WHERE s.import_id = $2 ORDER BY s.line"
                    ))
                    .bind(project_id)
                    .bind(import_id)
                    .bind(schema_version_id);
                    let done = c.execute(statement)
                    .await?;
                    complete_labelled_items(&mut c, table, import_id).await?;
                    let outcome = ImportOutcome {
                        read,
                        inserted: done as i64,
                        updated: 0,
                        skipped: 0,
                    };
                    let after = serde_json::json!({"file": file, "outcome": outcome});
                    let event = AuditEvent {
                        actor,
                        project: Some(project_id),
                        action: AuditAction::Import,
                        entity: "annotations",
                        entity_id: None,
                        before: None,
                        after: audit::snapshot(&after),
                    };
                    audit::record_in(&mut c, event).await?;
                    Ok(outcome)
                })
            })
            .await;
        stager.clear(&store, import_id).await;
        if outcome.is_ok() {
            store.refresh_statistics("annotations").await;
        }
        outcome
    }

    pub async fn abort(self) {
        self.stager.clear(&self.store, self.import_id).await;
    }
}

/// Records per staged batch (one short write transaction each).
pub const IMPORT_BATCH: usize = 5_000;

/// Progress of a file import: bytes of the file consumed so far, records staged so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileProgress {
    pub bytes: u64,
    pub records: i64,
}

struct CountingReader<R> {
    inner: R,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: std::io::Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportKind {
    Items,
    Annotations,
}

/// Reads a whole file of items or annotations on a blocking thread, stages it batch by
/// batch and publishes it — or, on the first bad record, publishes nothing and returns an
/// error naming file, line and field. `progress` is called after every staged batch.
#[allow(clippy::too_many_arguments)]
pub async fn import_file<R, P>(
    store: &Store,
    project_id: ProjectId,
    kind: ImportKind,
    file: &str,
    input: R,
    format: concord_formats::items::RecordFormat,
    on_conflict: OnConflict,
    actor: Option<UserId>,
    mut progress: P,
) -> Result<ImportOutcome>
where
    R: std::io::Read + Send + 'static,
    P: FnMut(FileProgress) + Send,
{
    let bytes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counting = CountingReader {
        inner: input,
        count: bytes.clone(),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<BatchMessage>(4);
    let reader = spawn_reader(file, kind, counting, format, tx);

    let mut session = Session::begin(store, kind, project_id, file).await?;
    let started = std::time::Instant::now();
    let mut records = 0i64;
    let mut failure: Option<StoreError> = None;
    while let Some(message) = rx.recv().await {
        let staged = match message {
            Err(e) => Err(StoreError::invalid(e)),
            Ok(batch) => {
                records += batch.len() as i64;
                session.stage(batch).await
            }
        };
        if let Err(e) = staged {
            failure = Some(e);
            break;
        }
        progress(FileProgress {
            bytes: bytes.load(std::sync::atomic::Ordering::Relaxed),
            records,
        });
    }
    drop(rx);
    let _ = reader.await;
    match failure {
        Some(e) => {
            session.abort().await;
            Err(e)
        }
        None => {
            log_staged(file, records, started);
            publish_timed(session, file, on_conflict, actor).await
        }
    }
}

/// Publishes, logging how long it took (`CONCORD_LOG=info`).
async fn publish_timed(
    session: Session,
    file: &str,
    on_conflict: OnConflict,
    actor: Option<UserId>,
) -> Result<ImportOutcome> {
    let publishing = std::time::Instant::now();
    let outcome = session.publish(on_conflict, actor).await;
    let seconds = publishing.elapsed().as_secs_f64();
    tracing::info!(file, seconds, "published");
    outcome
}

/// The time reading and staging took, for whoever asks (`CONCORD_LOG=info`).
fn log_staged(file: &str, records: i64, started: std::time::Instant) {
    let seconds = started.elapsed().as_secs_f64();
    let per_second = (records as f64 / seconds.max(1e-9)).round();
    tracing::info!(file, records, seconds, per_second, "read and staged");
}

/// Parses the file on a blocking thread, sending batches of records.
fn spawn_reader<R: std::io::Read + Send + 'static>(
    file: &str,
    kind: ImportKind,
    input: R,
    format: concord_formats::items::RecordFormat,
    tx: tokio::sync::mpsc::Sender<BatchMessage>,
) -> tokio::task::JoinHandle<()> {
    let label = file.to_owned();
    tokio::task::spawn_blocking(move || match kind {
        ImportKind::Items => read_items(label, input, format, &tx),
        ImportKind::Annotations => read_annotations(label, input, format, &tx),
    })
}

/// A batch of parsed records, or the reader's error naming file, line and field.
type BatchMessage = std::result::Result<Batch, String>;

/// Items are parsed in parallel, a batch at a time.
fn read_items<R: std::io::Read>(
    label: String,
    input: R,
    format: concord_formats::items::RecordFormat,
    tx: &tokio::sync::mpsc::Sender<BatchMessage>,
) {
    let mut reader = match concord_formats::items::ItemReader::new(label, input, format) {
        Ok(reader) => reader,
        Err(e) => {
            let _ = tx.blocking_send(Err(e.to_string()));
            return;
        }
    };
    loop {
        match reader.next_batch_with(IMPORT_BATCH, StagedItem::new) {
            Ok(batch) if batch.is_empty() => break,
            Ok(batch) => {
                if tx.blocking_send(Ok(Batch::Items(batch))).is_err() {
                    break;
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e.to_string()));
                break;
            }
        }
    }
}

/// Annotations are read one record at a time and sent in batches of [`IMPORT_BATCH`].
fn read_annotations<R: std::io::Read>(
    label: String,
    input: R,
    format: concord_formats::items::RecordFormat,
    tx: &tokio::sync::mpsc::Sender<BatchMessage>,
) {
    let records = match concord_formats::items::AnnotationReader::new(label, input, format) {
        Ok(reader) => reader,
        Err(e) => {
            let _ = tx.blocking_send(Err(e.to_string()));
            return;
        }
    };
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    for record in records {
        match record {
            Ok(r) => batch.push(r),
            Err(e) => {
                let _ = tx.blocking_send(Err(e.to_string()));
                return;
            }
        }
        if batch.len() == IMPORT_BATCH
            && tx
                .blocking_send(Ok(Batch::Annotations(std::mem::take(&mut batch))))
                .is_err()
        {
            return;
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(Ok(Batch::Annotations(batch)));
    }
}

/// An import of either kind in progress.
enum Session {
    Items(ItemImport),
    Annotations(AnnotationImport),
}

impl Session {
    async fn begin(
        store: &Store,
        kind: ImportKind,
        project_id: ProjectId,
        file: &str,
    ) -> Result<Self> {
        Ok(match kind {
            ImportKind::Items => Session::Items(store.begin_item_import(project_id, file).await?),
            ImportKind::Annotations => {
                Session::Annotations(store.begin_annotation_import(project_id, file).await?)
            }
        })
    }

    async fn stage(&mut self, batch: Batch) -> Result<()> {
        match (batch, self) {
            (Batch::Items(batch), Session::Items(import)) => import.stage_rows(batch).await,
            (Batch::Annotations(batch), Session::Annotations(import)) => import.stage(batch).await,
            _ => Err(StoreError::invalid("internal: batch kind mismatch")),
        }
    }

    async fn abort(self) {
        match self {
            Session::Items(import) => import.abort().await,
            Session::Annotations(import) => import.abort().await,
        }
    }

    async fn publish(
        self,
        on_conflict: OnConflict,
        actor: Option<UserId>,
    ) -> Result<ImportOutcome> {
        match self {
            Session::Items(import) => import.publish(on_conflict, actor).await,
            Session::Annotations(import) => import.publish(actor).await,
        }
    }
}

enum Batch {
    Items(Vec<StagedItem>),
    Annotations(Vec<(u64, AnnotationRecord)>),
}

impl Batch {
    fn len(&self) -> usize {
        match self {
            Batch::Items(batch) => batch.len(),
            Batch::Annotations(batch) => batch.len(),
        }
    }
}
