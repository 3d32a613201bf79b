//! Catalog items (keyset-paged listings), append-only annotations, and streamed export.

use crate::audit::AuditEvent;
use crate::conn::{Columns, Conn, NativeRow, Param, Row, Stmt, stmt};
use crate::error::{Result, StoreError, json_text, parse_json};
use crate::ids::{ItemId, ProjectId, UserId};
use crate::model::AuditAction;
use crate::model::{Annotation, AnnotationSource, AnswerKind, Id, Item, ItemState, NewAnnotation};
use crate::{Store, audit};
use concord_formats::items::{ExportAnnotation, ExportRecord, raw_json};
use futures_util::TryStreamExt;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

pub use concord_formats::items::ExportRecord as ExportRow;

const ITEM_COLUMNS: &str = "i.id, i.project_id, i.external_id, i.item_type, i.title, i.creators, \
     i.metadata, i.text_fields, i.media_url, i.priority, i.state, i.is_gold, i.gold_answer, \
     i.created_at, i.updated_at";

/// The same columns without a table alias (a `RETURNING` clause, a read by id), as a macro
/// so that hot statements are spliced together at compile time.
macro_rules! item_returning {
    () => {
        "id, project_id, external_id, item_type, title, creators, metadata, text_fields, \
         media_url, priority, state, is_gold, gold_answer, created_at, updated_at"
    };
}
pub(crate) use item_returning;

pub(crate) fn item_from_row(row: &impl Columns) -> Result<Item> {
    let gold: Option<String> = row.col("gold_answer")?;
    Ok(Item {
        id: row.col("id")?,
        project_id: row.col("project_id")?,
        external_id: row.col("external_id")?,
        item_type: row.col("item_type")?,
        title: row.col("title")?,
        creators: parse_json(&row.col::<String>("creators")?, "creators")?,
        metadata: parse_json(&row.col::<String>("metadata")?, "metadata")?,
        text: parse_json(&row.col::<String>("text_fields")?, "text")?,
        media_url: row.col("media_url")?,
        priority: row.col("priority")?,
        state: row.col("state")?,
        is_gold: row.col::<i64>("is_gold")? != 0,
        gold_answer: gold.map(|g| parse_json(&g, "gold answer")).transpose()?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
    })
}

/// Filters for the item browser. Paging is by id (keyset): pass the last id seen as `after`.
#[derive(Debug, Clone, Default)]
pub struct ItemFilter {
    pub item_type: Option<String>,
    pub state: Option<ItemState>,
    pub min_priority: Option<i64>,
    pub gold: Option<bool>,
    /// Case-insensitive substring of the title or the external id.
    pub text: Option<String>,
    pub after: Option<Id>,
    pub limit: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ItemPage {
    pub items: Vec<Item>,
    /// The `after` value for the next page, when there is one.
    pub next_after: Option<ItemId>,
}

/// `%text%` with LIKE's wildcards escaped (use with `ESCAPE '\'`).
pub(crate) fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

const ANNOTATION_COLUMNS: &str = "a.id, a.project_id, a.item_id, a.annotator_id, u.username AS annotator, \
     a.answer, a.rationale, a.flags, a.guideline_version_id, a.schema_version_id, a.time_spent_ms, \
     a.supersedes, a.is_late, a.source, a.created_at, a.kind, u.kind AS annotator_kind";

fn annotation_from_row(row: &impl Columns) -> Result<Annotation> {
    Ok(Annotation {
        id: row.col("id")?,
        project_id: row.col("project_id")?,
        item_id: row.col("item_id")?,
        annotator_id: row.col("annotator_id")?,
        annotator: row.col("annotator")?,
        answer: parse_json(&row.col::<String>("answer")?, "answer")?,
        rationale: row.col("rationale")?,
        flags: parse_json(&row.col::<String>("flags")?, "flags")?,
        guideline_version_id: row.col("guideline_version_id")?,
        schema_version_id: row.col("schema_version_id")?,
        time_spent_ms: row.col("time_spent_ms")?,
        supersedes: row.col("supersedes")?,
        is_late: row.col::<i64>("is_late")? != 0,
        source: row.col("source")?,
        created_at: row.col("created_at")?,
        kind: row.col("kind")?,
        annotator_kind: row.col("annotator_kind")?,
    })
}

/// The item browser's query: one more row than the page, to tell whether another follows.
/// Each condition and its value are added together, so placeholders and binds cannot drift
/// apart.
fn item_page_statement(project_id: ProjectId, filter: &ItemFilter, like: &str, limit: i64) -> Stmt {
    let mut sql = format!("SELECT {ITEM_COLUMNS} FROM items i WHERE i.project_id = $1");
    let mut params: Vec<Param> = vec![project_id.into()];
    let mut value = |v: Param| {
        params.push(v);
        format!("${}", params.len())
    };
    if let Some(t) = &filter.item_type {
        sql += &format!(" AND i.item_type = {}", value(t.into()));
    }
    if let Some(s) = filter.state {
        sql += &format!(" AND i.state = {}", value(s.as_str().into()));
    }
    if let Some(p) = filter.min_priority {
        sql += &format!(" AND i.priority >= {}", value(p.into()));
    }
    if let Some(g) = filter.gold {
        sql += &format!(" AND i.is_gold = {}", value(i64::from(g).into()));
    }
    if let Some(text) = filter
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let pattern = like_pattern(text);
        let (a, b) = (value(pattern.as_str().into()), value(pattern.into()));
        sql += &format!(
            " AND (i.title {like} {a} ESCAPE '\\' OR i.external_id {like} {b} ESCAPE '\\')"
        );
    }
    if let Some(after) = filter.after {
        sql += &format!(" AND i.id > {}", value(after.into()));
    }
    sql += &format!(" ORDER BY i.id LIMIT {}", value((limit + 1).into()));
    params
        .into_iter()
        .fold(stmt(sql), |statement, param| statement.bind(param))
}

impl Store {
    /// Also what the queue serves with every lease: a hot read.
    pub async fn item(&self, project_id: ProjectId, item_id: ItemId) -> Result<Item> {
        self.read_native(move |mut c| {
            Box::pin(async move {
                let row = c
                    .fetch_optional(
                        stmt(format!(
                            "SELECT {ITEM_COLUMNS} FROM items i \
                             WHERE i.project_id = $1 AND i.id = $2"
                        ))
                        .bind(project_id)
                        .bind(item_id),
                    )
                    .await?
                    .ok_or_else(|| StoreError::not_found(format!("item {item_id}")))?;
                item_from_row(&row)
            })
        })
        .await
    }

    pub async fn item_by_external_id(
        &self,
        project_id: ProjectId,
        external_id: &str,
    ) -> Result<Item> {
        let statement = stmt(format!(
            "SELECT {ITEM_COLUMNS} FROM items i WHERE i.project_id = $1 AND i.external_id = $2"
        ))
        .bind(project_id)
        .bind(external_id);
        let row = self
            .read_optional(statement)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("item {external_id:?}")))?;
        item_from_row(&row)
    }

    /// One page of items in id order. Every filter is an indexed prefix or a residual
    /// predicate on the id-ordered walk, so a page costs the same at item 10 and 1,000,000.
    pub async fn items_page(&self, project_id: ProjectId, filter: &ItemFilter) -> Result<ItemPage> {
        let limit = filter.limit.clamp(1, 500);
        let statement = item_page_statement(project_id, filter, self.dialect().ilike(), limit);
        let rows = self.read_rows(statement).await?;
        let mut items = rows.iter().map(item_from_row).collect::<Result<Vec<_>>>()?;
        let next_after = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|i| i.id)
        } else {
            None
        };
        Ok(ItemPage { items, next_after })
    }

    /// Items per state (all five states, zeros included) and in total.
    pub async fn item_state_counts(&self, project_id: ProjectId) -> Result<Vec<(ItemState, i64)>> {
        let rows = self
            .read_rows(
                stmt("SELECT state, COUNT(*) AS n FROM items WHERE project_id = $1 GROUP BY state")
                    .bind(project_id),
            )
            .await?;
        let mut counts: Vec<(ItemState, i64)> = ItemState::ALL.iter().map(|&s| (s, 0)).collect();
        for row in rows {
            let state: ItemState = row.col("state")?;
            let n: i64 = row.col("n")?;
            if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == state) {
                slot.1 = n;
            }
        }
        Ok(counts)
    }

    /// Appends an annotation outside the queue: a correction of the annotator's own label
    /// (`supersedes` names it) or an override by a role that may override (the caller checks
    /// the role). An override takes no overlap slot and is not counted among the item's
    /// overlap votes; it marks the item as had, so the queue never serves it to the same
    /// person. A retried request with the same idempotency key and answer returns the
    /// annotation already stored; with another answer it is refused (`KeyReused`).
    pub async fn add_annotation(
        &self,
        project_id: ProjectId,
        annotator_id: UserId,
        new: NewAnnotation,
    ) -> Result<Annotation> {
        self.append_label(project_id, annotator_id, new, CorrectionRule::OwnLabel)
            .await
    }

    /// The label page's undo: the author corrects their latest answer in the project. The
    /// undone answer stays in the history (`supersedes` links the two, both are kept); the
    /// correction takes no slot and changes no counter, and every reader takes an annotator's
    /// latest answer on an item, so nothing counts twice. Refused (`Conflict`, naming why)
    /// when `supersedes` is not the author's latest answer, or when its item was adjudicated
    /// or released since.
    pub async fn correct_last_answer(
        &self,
        project_id: ProjectId,
        annotator_id: UserId,
        new: NewAnnotation,
    ) -> Result<Annotation> {
        if new.supersedes.is_none() {
            return Err(StoreError::invalid(
                "name the answer you undo in `supersedes`",
            ));
        }
        self.append_label(
            project_id,
            annotator_id,
            new,
            CorrectionRule::LatestUnsettled,
        )
        .await
    }

    /// The answer the author may undo, checked as `correct_last_answer` will check it: theirs,
    /// their latest in the project, on an item neither adjudicated nor released.
    pub async fn undoable_answer(
        &self,
        project_id: ProjectId,
        annotator_id: UserId,
        annotation_id: Id,
    ) -> Result<Annotation> {
        // The latest check comes first: it also refuses someone else's answer, which is
        // never the caller's latest.
        self.read_native(move |mut c| {
            Box::pin(async move {
                require_latest(&mut c, project_id, annotator_id, annotation_id).await
            })
        })
        .await?;
        let annotation = self.annotation(annotation_id).await?;
        let item_id = annotation.item_id;
        self.read_native(move |mut c| {
            Box::pin(async move { require_unsettled(&mut c, project_id, item_id).await })
        })
        .await?;
        Ok(annotation)
    }

    async fn append_label(
        &self,
        project_id: ProjectId,
        annotator_id: UserId,
        new: NewAnnotation,
        rule: CorrectionRule,
    ) -> Result<Annotation> {
        // long: one transaction's steps in order, each a named function, and the PostgreSQL
        // race of two retries with one key, answered after it.
        let schema = self.current_schema(project_id).await?;
        schema
            .definition
            .validate_answer(&new.answer)
            .map_err(StoreError::Invalid)?;
        let schema_version = new.schema_version_id.unwrap_or(schema.id);
        let key = new.idempotency_key.clone();
        let answer = new.answer.clone();
        let written = self
            .write_conn(move |mut c| {
                let new = new.clone();
                Box::pin(async move {
                    let c = &mut c;
                    if let Some(key) = &new.idempotency_key
                        && let Some(row) = stored_under_key(&mut *c, annotator_id, key).await?
                    {
                        return replay_of(&row, &new.answer);
                    }
                    require_item(c, project_id, new.item_id).await?;
                    let source = match new.supersedes {
                        Some(old) => {
                            if rule == CorrectionRule::LatestUnsettled {
                                require_undoable(c, project_id, annotator_id, old, new.item_id)
                                    .await?;
                            }
                            require_own_label(c, old, new.item_id, annotator_id).await?;
                            AnnotationSource::Correction
                        }
                        None => {
                            refuse_override_of_served_item(c, new.item_id, annotator_id).await?;
                            AnnotationSource::Override
                        }
                    };
                    let written = DirectLabel {
                        project_id,
                        annotator_id,
                        schema_version,
                        source,
                    };
                    let id = insert_direct_label(c, &written, &new).await?;
                    if source == AnnotationSource::Override {
                        mark_override_as_had(c, &written, new.item_id, id).await?;
                    }
                    let event = AuditEvent {
                        actor: Some(annotator_id),
                        project: Some(project_id),
                        action: AuditAction::Create,
                        entity: "annotation",
                        entity_id: Some(id),
                        before: None,
                        after: audit::snapshot(&new.answer),
                    };
                    audit::record_in(c, event).await?;
                    Ok(id)
                })
            })
            .await;
        let id = match (written, key) {
            // A concurrent request with the same key committed first (PostgreSQL runs the
            // two transactions side by side): its annotation is the answer to this one too.
            // (Or its override's assignment committed first: a conflict, answered the same.)
            (Err(e), Some(key))
                if e.is_unique_violation() || matches!(e, StoreError::Conflict(_)) =>
            {
                let stored = self
                    .read_native(move |mut c| {
                        Box::pin(async move { stored_under_key(&mut c, annotator_id, &key).await })
                    })
                    .await?;
                match stored {
                    Some(row) => replay_of(&row, &answer)?,
                    None => return Err(e),
                }
            }
            (written, _) => written?,
        };
        self.annotation(id).await
    }

    pub async fn annotation(&self, id: Id) -> Result<Annotation> {
        let statement = stmt(format!(
            "SELECT {ANNOTATION_COLUMNS} FROM annotations a JOIN users u ON u.id = a.annotator_id WHERE a.id = $1"
        ))
        .bind(id);
        let row = self
            .read_optional(statement)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("annotation {id}")))?;
        annotation_from_row(&row)
    }

    /// Every annotation on an item, corrections included, oldest first.
    pub async fn item_annotations(&self, item_id: ItemId) -> Result<Vec<Annotation>> {
        let statement = stmt(format!(
            "SELECT {ANNOTATION_COLUMNS} FROM annotations a JOIN users u ON u.id = a.annotator_id \
             WHERE a.item_id = $1 ORDER BY a.id"
        ))
        .bind(item_id);
        let rows = self.read_rows(statement).await?;
        rows.iter().map(annotation_from_row).collect()
    }

    pub async fn count_annotations(&self, project_id: ProjectId) -> Result<i64> {
        let row = self
            .read_one(
                stmt("SELECT COUNT(*) AS n FROM annotations WHERE project_id = $1")
                    .bind(project_id),
            )
            .await?;
        row.col("n")
    }

    /// Streams a project's items with their annotations, in item order, from one query
    /// (one snapshot). The channel is bounded, so a slow reader slows the query instead of
    /// filling memory. On SQLite the query steps on a blocking thread with a native
    /// connection (through the async driver every row would be a hand-off between threads).
    pub fn export(&self, project_id: ProjectId) -> mpsc::Receiver<Result<ExportRecord>> {
        let (tx, rx) = mpsc::channel(256);
        let store = self.clone();
        if store.backend() == crate::db::Backend::Sqlite {
            tokio::task::spawn_blocking(move || {
                let exported = store
                    .with_native_reader(|conn| export_native(conn, project_id, &tx))
                    .unwrap_or(Ok(()));
                if let Err(e) = exported {
                    let _ = tx.blocking_send(Err(e));
                }
            });
        } else {
            tokio::spawn(async move {
                if let Err(e) = export_into(&store, project_id, &tx).await {
                    let _ = tx.send(Err(e)).await;
                }
            });
        }
        rx
    }
}

const EXPORT_SQL: &str = "SELECT i.id, i.external_id, i.item_type, i.title, i.state, i.priority, \
       i.is_gold, i.creators, i.metadata, i.text_fields, i.media_url, i.gold_answer, \
       a.id AS a_id, u.username AS a_annotator, a.answer AS a_answer, \
       a.rationale AS a_rationale, a.flags AS a_flags, g.version AS a_guideline, \
       a.time_spent_ms AS a_time, a.supersedes AS a_supersedes, a.is_late AS a_late, \
       a.created_at AS a_created \
     FROM items i \
     LEFT JOIN annotations a ON a.item_id = i.id \
     LEFT JOIN users u ON u.id = a.annotator_id \
     LEFT JOIN guideline_versions g ON g.id = a.guideline_version_id \
     WHERE i.project_id = $1 ORDER BY i.id, a.id";

fn export_native(
    conn: &mut rusqlite::Connection,
    project_id: ProjectId,
    tx: &mpsc::Sender<Result<ExportRecord>>,
) -> Result<()> {
    let mut statement = conn.prepare(EXPORT_SQL)?;
    let columns: Vec<String> = statement
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    statement.raw_bind_parameter(1, project_id)?;
    let mut rows = statement.raw_query();
    let mut records = ExportFolder::default();
    while let Some(row) = rows.next()? {
        let row = NativeRow {
            row,
            columns: &columns,
        };
        if let Some(done) = records.push(&row)?
            && tx.blocking_send(Ok(done)).is_err()
        {
            return Ok(()); // the reader went away
        }
    }
    if let Some(done) = records.finish() {
        let _ = tx.blocking_send(Ok(done));
    }
    Ok(())
}

async fn export_into(
    store: &Store,
    project_id: ProjectId,
    tx: &mpsc::Sender<Result<ExportRecord>>,
) -> Result<()> {
    // Exception to `Conn` (PostgreSQL's export): rows are streamed as they come, which Conn,
    // reading a statement's rows whole, cannot do; SQLite's steps natively above.
    let mut rows = sqlx::query(EXPORT_SQL).bind(project_id).fetch(store.pool());
    let mut records = ExportFolder::default();
    while let Some(row) = rows.try_next().await? {
        if let Some(done) = records.push(&row)?
            && tx.send(Ok(done)).await.is_err()
        {
            return Ok(()); // the reader went away
        }
    }
    if let Some(done) = records.finish() {
        let _ = tx.send(Ok(done)).await;
    }
    Ok(())
}

/// Folds the export query's rows (one per item and annotation, in item order) into one
/// record per item.
#[derive(Default)]
struct ExportFolder {
    current: Option<(Id, ExportRecord)>,
}

impl ExportFolder {
    /// Takes the next row; the previous item's record once this row starts another item.
    fn push(&mut self, row: &impl Columns) -> Result<Option<ExportRecord>> {
        let json = |col: &str| -> Result<Box<RawValue>> {
            Ok(raw_json(
                row.col::<Option<String>>(col)?
                    .unwrap_or_else(|| "null".into()),
            ))
        };
        let id: Id = row.col("id")?;
        let mut finished = None;
        if self.current.as_ref().is_none_or(|(cur, _)| *cur != id) {
            finished = self.current.take().map(|(_, done)| done);
            let gold: Option<String> = row.col("gold_answer")?;
            self.current = Some((
                id,
                ExportRecord {
                    id: row.col("external_id")?,
                    item_type: row.col("item_type")?,
                    title: row.col("title")?,
                    state: row.col("state")?,
                    priority: row.col("priority")?,
                    is_gold: row.col::<i64>("is_gold")? != 0,
                    creators: json("creators")?,
                    metadata: json("metadata")?,
                    text: json("text_fields")?,
                    media_url: row.col("media_url")?,
                    gold_answer: gold.map(raw_json),
                    annotations: Vec::new(),
                },
            ));
        }
        let annotation_id: Option<Id> = row.col("a_id")?;
        if let (Some(annotation_id), Some((_, record))) = (annotation_id, self.current.as_mut()) {
            record.annotations.push(ExportAnnotation {
                id: annotation_id,
                annotator: row
                    .col::<Option<String>>("a_annotator")?
                    .unwrap_or_default(),
                answer: json("a_answer")?,
                rationale: row
                    .col::<Option<String>>("a_rationale")?
                    .unwrap_or_default(),
                flags: json("a_flags")?,
                guideline_version: row.col("a_guideline")?,
                time_spent_ms: row.col("a_time")?,
                supersedes: row.col("a_supersedes")?,
                is_late: row.col::<Option<i64>>("a_late")?.unwrap_or(0) != 0,
                created_at: row.col::<Option<i64>>("a_created")?.unwrap_or(0),
            });
        }
        Ok(finished)
    }

    fn finish(self) -> Option<ExportRecord> {
        self.current.map(|(_, done)| done)
    }
}

/// The annotation stored under an annotator's idempotency key, if any.
async fn stored_under_key(
    c: &mut Conn<'_>,
    annotator_id: UserId,
    key: &str,
) -> Result<Option<Row>> {
    let statement = stmt(
        "SELECT id, answer, kind FROM annotations WHERE annotator_id = $1 AND idempotency_key = $2",
    )
    .bind(annotator_id)
    .bind(key);
    c.fetch_optional(statement).await
}

async fn require_item(c: &mut Conn<'_>, project_id: ProjectId, item_id: ItemId) -> Result<()> {
    let item = c
        .fetch_optional(
            stmt("SELECT id FROM items WHERE id = $1 AND project_id = $2")
                .bind(item_id)
                .bind(project_id),
        )
        .await?;
    match item {
        Some(_) => Ok(()),
        None => Err(StoreError::not_found(format!(
            "item {item_id} in this project"
        ))),
    }
}

/// Only one's own label on the same item can be corrected.
async fn require_own_label(
    c: &mut Conn<'_>,
    old: Id,
    item_id: ItemId,
    annotator_id: UserId,
) -> Result<()> {
    let own = c
        .fetch_optional(
            stmt("SELECT id FROM annotations WHERE id = $1 AND item_id = $2 AND annotator_id = $3")
                .bind(old)
                .bind(item_id)
                .bind(annotator_id),
        )
        .await?;
    match own {
        Some(_) => Ok(()),
        None => Err(StoreError::invalid(format!(
            "annotation {old} is not yours on this item, so it cannot be corrected"
        ))),
    }
}

/// How much a correction must satisfy besides being the author's own label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CorrectionRule {
    /// Any of the author's labels (the API's corrections).
    OwnLabel,
    /// The label page's undo: the latest answer, on an item not yet settled.
    LatestUnsettled,
}

/// An undo reaches only the author's latest answer in the project, and only while its item
/// is neither adjudicated nor in a release: past that point others have built on the answer.
async fn require_undoable(
    c: &mut Conn<'_>,
    project_id: ProjectId,
    annotator_id: UserId,
    annotation_id: Id,
    item_id: ItemId,
) -> Result<()> {
    require_latest(c, project_id, annotator_id, annotation_id).await?;
    require_unsettled(c, project_id, item_id).await
}

async fn require_latest(
    c: &mut Conn<'_>,
    project_id: ProjectId,
    annotator_id: UserId,
    annotation_id: Id,
) -> Result<()> {
    let latest: Option<Id> = c
        .fetch_one(
            stmt(
                "SELECT MAX(id) AS id FROM annotations WHERE project_id = $1 AND annotator_id = $2",
            )
            .bind(project_id)
            .bind(annotator_id),
        )
        .await?
        .col("id")?;
    if latest != Some(annotation_id) {
        return Err(StoreError::conflict(format!(
            "annotation {annotation_id} is not your latest answer in this project: \
             only the latest can be undone"
        )));
    }
    Ok(())
}

/// Past adjudication or a release, others have built on the item's answers.
async fn require_unsettled(c: &mut Conn<'_>, project_id: ProjectId, item_id: ItemId) -> Result<()> {
    let adjudicated = c
        .fetch_optional(
            stmt("SELECT id FROM adjudications WHERE item_id = $1 LIMIT 1").bind(item_id),
        )
        .await?;
    if adjudicated.is_some() {
        return Err(StoreError::conflict(format!(
            "item {item_id} has been adjudicated: your answer can no longer be undone"
        )));
    }
    let released = c
        .fetch_optional(
            stmt(
                "SELECT r.name FROM release_items ri JOIN releases r ON r.id = ri.release_id \
         WHERE ri.item_id = $1 AND r.project_id = $2 LIMIT 1",
            )
            .bind(item_id)
            .bind(project_id),
        )
        .await?;
    if let Some(row) = released {
        let name: String = row.col("name")?;
        return Err(StoreError::conflict(format!(
            "item {item_id} is in release {name:?}: your answer can no longer be undone"
        )));
    }
    Ok(())
}

/// The override is this person's label of the item: the queue must never serve them the
/// item afterwards, and a person who had it through the queue corrects their own label
/// instead.
async fn refuse_override_of_served_item(
    c: &mut Conn<'_>,
    item_id: ItemId,
    annotator_id: UserId,
) -> Result<()> {
    let had = c
        .fetch_optional(
            stmt(
                "SELECT id FROM assignments WHERE item_id = $1 AND user_id = $2 \
         AND (purpose = 'label' OR purpose = 'gold')",
            )
            .bind(item_id)
            .bind(annotator_id),
        )
        .await?;
    match had {
        None => Ok(()),
        Some(_) => Err(StoreError::conflict(format!(
            "item {item_id} was served to you through the queue: answer it there, \
             or correct your label by naming it in `supersedes`"
        ))),
    }
}

/// Who writes a label outside the queue, and how it came in.
struct DirectLabel {
    project_id: ProjectId,
    annotator_id: UserId,
    schema_version: Id,
    source: AnnotationSource,
}

async fn insert_direct_label(
    c: &mut Conn<'_>,
    label: &DirectLabel,
    new: &NewAnnotation,
) -> Result<Id> {
    let statement = stmt(
        "INSERT INTO annotations (project_id, item_id, annotator_id, answer, rationale, flags, \
           guideline_version_id, schema_version_id, time_spent_ms, supersedes, idempotency_key, source) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
    )
    .bind(label.project_id)
    .bind(new.item_id)
    .bind(label.annotator_id)
    .bind(json_text(&new.answer))
    .bind(&new.rationale)
    .bind(json_text(&new.flags))
    .bind(new.guideline_version_id)
    .bind(label.schema_version)
    .bind(new.time_spent_ms)
    .bind(new.supersedes)
    .bind(new.idempotency_key.clone())
    .bind(label.source.as_str());
    let row = c.fetch_one(statement).await?;
    row.col("id")
}

/// Outside the overlap: an override takes no slot and is not one of the votes that close
/// the item, but it marks the item as had by this person.
async fn mark_override_as_had(
    c: &mut Conn<'_>,
    label: &DirectLabel,
    item_id: ItemId,
    annotation_id: Id,
) -> Result<()> {
    c.execute(
        stmt(
            "INSERT INTO assignments (project_id, item_id, user_id, purpose, status, \
           counts_toward_overlap, annotation_id, created_by) \
         VALUES ($1, $2, $3, 'label', 'submitted', 0, $4, $3)",
        )
        .bind(label.project_id)
        .bind(item_id)
        .bind(label.annotator_id)
        .bind(annotation_id),
    )
    .await?;
    Ok(())
}

/// A stored annotation found under a retried idempotency key: the same answer is a replay
/// (its id is the answer), a different one is refused with what was stored.
fn replay_of(row: &impl Columns, answer: &Value) -> Result<Id> {
    let id: Id = row.col("id")?;
    let stored_answer: Value = parse_json(&row.col::<String>("answer")?, "answer")?;
    let stored_kind: AnswerKind = row.col("kind")?;
    if crate::answer::same_answer(&stored_answer, answer) {
        Ok(id)
    } else {
        Err(StoreError::KeyReused {
            annotation_id: id,
            stored_answer,
            stored_kind,
        })
    }
}
