//! Versioned guidelines and label schemas. Each project has at most one draft of each;
//! publishing freezes the draft (a published version is never updated) and points the
//! project at it. Every version after the first records what changed.

use crate::audit::AuditEvent;
use crate::conn::{Columns, Conn, stmt};
use crate::error::{Result, StoreError, json_text, parse_json};
use crate::ids::{ProjectId, UserId};
use crate::model::AuditAction;
use crate::model::{GuidelineExample, GuidelineVersion, Id, Project, SchemaVersion, VersionStatus};
use crate::schema::LabelSchema;
use crate::{Store, audit};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Published schema versions kept in memory. Every submission is checked against its
/// project's schema; a published version is never updated, so a copy read once stays true
/// on every server. Bounded: past the limit it starts again empty.
#[derive(Default)]
pub(crate) struct PublishedSchemas(Mutex<HashMap<Id, Arc<SchemaVersion>>>);

const PUBLISHED_SCHEMAS_KEPT: usize = 1024;

impl PublishedSchemas {
    fn get(&self, id: Id) -> Option<Arc<SchemaVersion>> {
        self.0.lock().ok()?.get(&id).cloned()
    }

    fn keep(&self, version: Arc<SchemaVersion>) {
        if version.status != VersionStatus::Published {
            return;
        }
        if let Ok(mut kept) = self.0.lock() {
            if kept.len() >= PUBLISHED_SCHEMAS_KEPT {
                kept.clear();
            }
            kept.insert(version.id, version);
        }
    }
}

/// The two versioned documents share their life cycle; only the content columns differ.
#[derive(Clone, Copy)]
enum Doc {
    Guideline,
    Schema,
}

impl Doc {
    fn table(self) -> &'static str {
        match self {
            Doc::Guideline => "guideline_versions",
            Doc::Schema => "schema_versions",
        }
    }
    fn pointer(self) -> &'static str {
        match self {
            Doc::Guideline => "current_guideline_version_id",
            Doc::Schema => "current_schema_version_id",
        }
    }
    fn entity(self) -> &'static str {
        match self {
            Doc::Guideline => "guideline_version",
            Doc::Schema => "schema_version",
        }
    }
}

fn guideline_from_row(row: &impl Columns) -> Result<GuidelineVersion> {
    Ok(GuidelineVersion {
        id: row.col("id")?,
        project_id: row.col("project_id")?,
        version: row.col("version")?,
        body: row.col("body")?,
        examples: parse_json(&row.col::<String>("examples")?, "guideline examples")?,
        change_note: row.col("change_note")?,
        status: VersionStatus::parse(&row.col::<String>("status")?),
        created_by: row.col("author")?,
        created_at: row.col("created_at")?,
        published_at: row.col("published_at")?,
    })
}

fn schema_from_row(row: &impl Columns) -> Result<SchemaVersion> {
    Ok(SchemaVersion {
        id: row.col("id")?,
        project_id: row.col("project_id")?,
        version: row.col("version")?,
        definition: parse_json(&row.col::<String>("definition")?, "label schema")?,
        change_note: row.col("change_note")?,
        status: VersionStatus::parse(&row.col::<String>("status")?),
        created_by: row.col("author")?,
        created_at: row.col("created_at")?,
        published_at: row.col("published_at")?,
    })
}

fn select(doc: Doc) -> String {
    format!(
        "SELECT v.*, u.username AS author FROM {} v LEFT JOIN users u ON u.id = v.created_by",
        doc.table()
    )
}

/// The content of a draft (column, value) with its note and author.
struct DraftText<'a> {
    table: &'static str,
    content: Vec<(&'static str, String)>,
    change_note: &'a str,
    actor: Option<UserId>,
}

impl DraftText<'_> {
    /// Replaces the content of the existing draft `id`.
    async fn replace(self, c: &mut Conn<'_>, id: Id) -> Result<()> {
        let table = self.table;
        let sets: String = self
            .content
            .iter()
            .enumerate()
            .map(|(i, (col, _))| format!("{col} = ${}, ", i + 1))
            .collect();
        let n = self.content.len();
        let sql = format!(
            "UPDATE {table} SET {sets}change_note = ${}, created_by = ${} \
             WHERE id = ${} AND status = 'draft'",
            n + 1,
            n + 2,
            n + 3
        );
        let mut query = stmt(&sql);
        for (_, value) in self.content {
            query = query.bind(value);
        }
        c.execute(query.bind(self.change_note).bind(self.actor).bind(id))
            .await?;
        Ok(())
    }

    /// Creates the project's draft as the next version; returns its id.
    async fn insert(self, c: &mut Conn<'_>, project_id: ProjectId) -> Result<Id> {
        let table = self.table;
        let cols: String = self
            .content
            .iter()
            .map(|(col, _)| format!("{col}, "))
            .collect();
        let n = self.content.len();
        let params: String = (0..n).map(|i| format!("${}, ", i + 2)).collect();
        let sql = format!(
            "INSERT INTO {table} (project_id, version, {cols}change_note, status, created_by) \
             VALUES ($1, (SELECT COALESCE(MAX(version), 0) + 1 FROM {table} WHERE project_id = $1), \
                     {params}${}, 'draft', ${}) RETURNING id",
            n + 2,
            n + 3
        );
        let mut query = stmt(&sql).bind(project_id);
        for (_, value) in self.content {
            query = query.bind(value);
        }
        let row = c
            .fetch_one(query.bind(self.change_note).bind(self.actor))
            .await?;
        row.col("id")
    }
}

/// Creates the project's draft, or replaces the content of the existing one.
/// Returns the draft's id.
async fn save_draft(
    c: &mut Conn<'_>,
    doc: Doc,
    project_id: ProjectId,
    content: Vec<(&'static str, String)>,
    change_note: &str,
    actor: Option<UserId>,
) -> Result<Id> {
    let table = doc.table();
    let draft_row = c
        .fetch_optional(
            stmt(format!(
                "SELECT id FROM {table} WHERE project_id = $1 AND status = 'draft'"
            ))
            .bind(project_id),
        )
        .await?;
    let draft = DraftText {
        table,
        content,
        change_note,
        actor,
    };
    let id = match draft_row {
        Some(row) => {
            let id: Id = row.col("id")?;
            draft.replace(c, id).await?;
            id
        }
        None => draft.insert(c, project_id).await?,
    };
    audit::record_in(
        c,
        AuditEvent {
            actor,
            project: Some(project_id),
            action: AuditAction::SaveDraft,
            entity: doc.entity(),
            entity_id: Some(id),
            before: None,
            after: None,
        },
    )
    .await?;
    Ok(id)
}

/// The note a version is published with: the one given, else the draft's; only the first
/// version may go without one.
fn published_note(version: i64, draft_note: String, given: Option<&str>) -> Result<String> {
    let note = match given.map(str::trim).filter(|n| !n.is_empty()) {
        Some(given) => given.to_owned(),
        None => draft_note,
    };
    match note.trim() {
        "" if version > 1 => Err(StoreError::invalid(format!(
            "version {version} needs a note saying what changed"
        ))),
        "" => Ok("First version".to_owned()),
        _ => Ok(note),
    }
}

async fn publish(
    c: &mut Conn<'_>,
    doc: Doc,
    now: &str,
    project_id: ProjectId,
    change_note: Option<&str>,
    actor: Option<UserId>,
) -> Result<Id> {
    let table = doc.table();
    let statement = stmt(format!(
        "SELECT id, version, change_note FROM {table} WHERE project_id = $1 AND status = 'draft'"
    ))
    .bind(project_id);
    let row = c
        .fetch_optional(statement)
        .await?
        .ok_or_else(|| StoreError::conflict("there is no draft to publish"))?;
    let id: Id = row.col("id")?;
    let version: i64 = row.col("version")?;
    let note = published_note(version, row.col("change_note")?, change_note)?;
    let statement = stmt(format!(
        "UPDATE {table} SET status = 'published', published_at = {now}, change_note = $1 WHERE id = $2"
    ))
    .bind(&note)
    .bind(id);
    c.execute(statement).await?;
    c.execute(
        stmt(format!(
            "UPDATE projects SET {} = $1 WHERE id = $2",
            doc.pointer()
        ))
        .bind(id)
        .bind(project_id),
    )
    .await?;
    let after = serde_json::json!({"version": version, "change_note": note});
    audit::record_in(
        c,
        AuditEvent {
            actor,
            project: Some(project_id),
            action: AuditAction::Publish,
            entity: doc.entity(),
            entity_id: Some(id),
            before: None,
            after: audit::snapshot(&after),
        },
    )
    .await?;
    Ok(id)
}

/// Appends an example to the guideline draft, starting the draft from the latest version
/// when there is none (used when an adjudication is added as a guideline example).
pub(crate) async fn add_example_to_draft(
    c: &mut Conn<'_>,
    project_id: ProjectId,
    example: GuidelineExample,
    actor: Option<UserId>,
) -> Result<Id> {
    let latest = c
        .fetch_optional(
            stmt(
                "SELECT body, examples, change_note, status FROM guideline_versions \
         WHERE project_id = $1 ORDER BY version DESC LIMIT 1",
            )
            .bind(project_id),
        )
        .await?;
    let (body, mut examples, note) = match latest {
        Some(row) => {
            let examples: Vec<GuidelineExample> =
                parse_json(&row.col::<String>("examples")?, "guideline examples")?;
            let status: String = row.col("status")?;
            let note = if status == "draft" {
                row.col::<String>("change_note")?
            } else {
                String::new()
            };
            (row.col::<String>("body")?, examples, note)
        }
        None => (String::new(), Vec::new(), String::new()),
    };
    let added = format!("Example for {} from an adjudication", example.category);
    let note = if note.is_empty() {
        added
    } else if note.contains(&added) {
        note
    } else {
        format!("{note}; {added}")
    };
    examples.push(example);
    let content = vec![("body", body), ("examples", json_text(&examples))];
    save_draft(c, Doc::Guideline, project_id, content, &note, actor).await
}

impl Store {
    pub async fn save_guideline_draft(
        &self,
        project_id: ProjectId,
        body: &str,
        examples: &[GuidelineExample],
        change_note: &str,
        actor: Option<UserId>,
    ) -> Result<GuidelineVersion> {
        for (i, example) in examples.iter().enumerate() {
            if example.category.trim().is_empty() || example.text.trim().is_empty() {
                return Err(StoreError::invalid(format!(
                    "example {} needs a category and a text",
                    i + 1
                )));
            }
        }
        let content = vec![
            ("body", body.to_owned()),
            ("examples", json_text(&examples)),
        ];
        let note = change_note.to_owned();
        let id = self
            .write_conn(move |mut c| {
                let note = note.clone();
                let content = content.clone();
                Box::pin(async move {
                    let c = &mut c;
                    save_draft(c, Doc::Guideline, project_id, content, &note, actor).await
                })
            })
            .await?;
        self.guideline_by_id(id).await
    }

    pub async fn publish_guideline(
        &self,
        project_id: ProjectId,
        change_note: Option<&str>,
        actor: Option<UserId>,
    ) -> Result<GuidelineVersion> {
        let now = self.dialect().now_ms();
        let note = change_note.map(str::to_owned);
        let id = self
            .write_conn(move |mut c| {
                let note = note.clone();
                Box::pin(async move {
                    let c = &mut c;
                    publish(c, Doc::Guideline, now, project_id, note.as_deref(), actor).await
                })
            })
            .await?;
        self.guideline_by_id(id).await
    }

    /// When a guideline draft was last saved (its audit entries; the version row keeps only
    /// when the draft was started). None for a version never saved as a draft.
    pub async fn guideline_draft_saved_at(&self, version_id: Id) -> Result<Option<i64>> {
        let row = self
            .read_one(
                stmt(
                    "SELECT MAX(at) AS saved FROM audit_log \
             WHERE entity = $1 AND entity_id = $2 AND action = $3",
                )
                .bind(Doc::Guideline.entity())
                .bind(version_id)
                .bind(AuditAction::SaveDraft.as_str()),
            )
            .await?;
        row.col::<Option<i64>>("saved")
    }

    pub async fn guideline_by_id(&self, id: Id) -> Result<GuidelineVersion> {
        let row = self
            .read_optional(stmt(format!("{} WHERE v.id = $1", select(Doc::Guideline))).bind(id))
            .await?
            .ok_or_else(|| StoreError::not_found(format!("guideline version {id}")))?;
        guideline_from_row(&row)
    }

    pub async fn guideline_version(
        &self,
        project_id: ProjectId,
        version: i64,
    ) -> Result<GuidelineVersion> {
        let row = self
            .read_optional(
                stmt(format!(
                    "{} WHERE v.project_id = $1 AND v.version = $2",
                    select(Doc::Guideline)
                ))
                .bind(project_id)
                .bind(version),
            )
            .await?
            .ok_or_else(|| StoreError::not_found(format!("guideline version {version}")))?;
        guideline_from_row(&row)
    }

    /// Newest first, the draft (if any) included.
    pub async fn guideline_versions(&self, project_id: ProjectId) -> Result<Vec<GuidelineVersion>> {
        let rows = self
            .read_rows(
                stmt(format!(
                    "{} WHERE v.project_id = $1 ORDER BY v.version DESC",
                    select(Doc::Guideline)
                ))
                .bind(project_id),
            )
            .await?;
        rows.iter().map(guideline_from_row).collect()
    }

    pub async fn save_schema_draft(
        &self,
        project_id: ProjectId,
        schema: &LabelSchema,
        change_note: &str,
        actor: Option<UserId>,
    ) -> Result<SchemaVersion> {
        schema.validate().map_err(StoreError::Invalid)?;
        let content = vec![("definition", json_text(schema))];
        let note = change_note.to_owned();
        let id = self
            .write_conn(move |mut c| {
                let note = note.clone();
                let content = content.clone();
                Box::pin(async move {
                    let c = &mut c;
                    save_draft(c, Doc::Schema, project_id, content, &note, actor).await
                })
            })
            .await?;
        self.schema_by_id(id).await
    }

    pub async fn publish_schema(
        &self,
        project_id: ProjectId,
        change_note: Option<&str>,
        actor: Option<UserId>,
    ) -> Result<SchemaVersion> {
        let now = self.dialect().now_ms();
        let note = change_note.map(str::to_owned);
        let id = self
            .write_conn(move |mut c| {
                let note = note.clone();
                Box::pin(async move {
                    let c = &mut c;
                    publish(c, Doc::Schema, now, project_id, note.as_deref(), actor).await
                })
            })
            .await?;
        self.schema_by_id(id).await
    }

    pub async fn schema_by_id(&self, id: Id) -> Result<SchemaVersion> {
        let row = self
            .read_optional(stmt(format!("{} WHERE v.id = $1", select(Doc::Schema))).bind(id))
            .await?
            .ok_or_else(|| StoreError::not_found(format!("schema version {id}")))?;
        schema_from_row(&row)
    }

    pub async fn schema_versions(&self, project_id: ProjectId) -> Result<Vec<SchemaVersion>> {
        let rows = self
            .read_rows(
                stmt(format!(
                    "{} WHERE v.project_id = $1 ORDER BY v.version DESC",
                    select(Doc::Schema)
                ))
                .bind(project_id),
            )
            .await?;
        rows.iter().map(schema_from_row).collect()
    }

    /// The project's current published schema (the version itself comes from memory once
    /// read: published versions never change).
    pub async fn current_schema(&self, project_id: ProjectId) -> Result<SchemaVersion> {
        let pointer = self
            .read_native(move |mut c| {
                Box::pin(async move {
                    c.fetch_optional(
                        stmt("SELECT current_schema_version_id FROM projects WHERE id = $1")
                            .bind(project_id),
                    )
                    .await?
                    .map(|row| row.col::<Option<Id>>("current_schema_version_id"))
                    .transpose()
                })
            })
            .await?
            .flatten();
        let Some(id) = pointer else {
            return Err(StoreError::not_found("a published label schema"));
        };
        Ok((*self.schema_version(project_id, id).await?).clone())
    }

    /// The schema the project row (as read for this request) names as current: the hot
    /// path's variant of [`Store::current_schema`], without reading the project again.
    pub async fn project_schema(&self, project: &Project) -> Result<Arc<SchemaVersion>> {
        let Some(id) = project.current_schema_version_id else {
            return Err(StoreError::not_found("a published label schema"));
        };
        self.schema_version(project.id, id).await
    }

    /// A schema version of the project, from memory once it has been read published.
    async fn schema_version(&self, project_id: ProjectId, id: Id) -> Result<Arc<SchemaVersion>> {
        if let Some(kept) = self.inner.published_schemas.get(id) {
            return Ok(kept);
        }
        let version = self
            .read_native(move |mut c| {
                Box::pin(async move {
                    let row = c
                        .fetch_optional(
                            stmt(format!(
                                "{} WHERE v.id = $1 AND v.project_id = $2",
                                select(Doc::Schema)
                            ))
                            .bind(id)
                            .bind(project_id),
                        )
                        .await?
                        .ok_or_else(|| StoreError::not_found("a published label schema"))?;
                    schema_from_row(&row)
                })
            })
            .await?;
        let version = Arc::new(version);
        self.inner.published_schemas.keep(version.clone());
        Ok(version)
    }
}
