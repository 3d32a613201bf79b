//! Dataset releases: named, immutable snapshots of a project's final labels (adjudicated,
//! else consensus) with soft labels and agreement, plus the individual labels up to a
//! watermark. Listed, exported (streamed) and compared.

use crate::audit::AuditEvent;
use crate::conn::{Columns, Conn, stmt};
use crate::error::{Result, StoreError, json_text, parse_json};
use crate::ids::ItemId;
use crate::ids::{ProjectId, UserId};
use crate::model::AuditAction;
use crate::model::{AccountKind, Id};
use crate::qa::{PAGE_ROWS, for_each_question_page};
use crate::{Dialect, Store, audit};
pub use concord_formats::release::{AnswerColumn, AnswerShape, ReleaseItem, ReleaseLabel};
use futures_util::TryStreamExt;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sqlx::any::AnyRow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tokio::sync::mpsc;

#[derive(Debug, Clone, Serialize)]
pub struct Release {
    pub id: Id,
    pub project_id: ProjectId,
    pub name: String,
    pub description: String,
    pub run_id: Option<Id>,
    pub method: String,
    pub items: i64,
    pub annotation_watermark: Id,
    pub summary: Value,
    pub created_by: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LabelChange {
    pub item: String,
    pub question: String,
    pub from: Value,
    pub to: Value,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReleaseDiff {
    pub from: String,
    pub to: String,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<LabelChange>,
    /// Items whose final answer stayed the same.
    pub unchanged: usize,
    /// Items that became adjudicated between the two.
    pub newly_adjudicated: usize,
}

fn release_from_row(row: &impl Columns) -> Result<Release> {
    Ok(Release {
        id: row.col("id")?,
        project_id: row.col("project_id")?,
        name: row.col("name")?,
        description: row.col("description")?,
        run_id: row.col("run_id")?,
        method: row.col("method")?,
        items: row.col("items")?,
        annotation_watermark: row.col("annotation_watermark")?,
        summary: parse_json(&row.col::<String>("summary")?, "release summary")?,
        created_by: row.col("author")?,
        created_at: row.col("created_at")?,
    })
}

fn release_item_from_row(row: &impl Columns, method: &str) -> Result<ReleaseItem> {
    let adjudicated = row.col::<i64>("adjudicated")? != 0;
    Ok(ReleaseItem {
        item: row.col("external_id")?,
        label: parse_json(&row.col::<String>("label")?, "release label")?,
        source: if adjudicated {
            "adjudicated".into()
        } else {
            method.to_owned()
        },
        adjudicated,
        soft_label: parse_json(&row.col::<String>("soft_label")?, "soft label")?,
        agreement: parse_json(&row.col::<String>("agreement")?, "agreement")?,
        n_labels: row.col("n_labels")?,
        guideline_versions: parse_json(
            &row.col::<String>("guideline_versions")?,
            "guideline versions",
        )?,
        is_gold: row.col::<i64>("is_gold")? != 0,
    })
}

const RELEASE_SELECT: &str = "SELECT r.*, u.username AS author FROM releases r \
     LEFT JOIN users u ON u.id = r.created_by";

/// Release names go into file names and URLs.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Rows per multi-row INSERT.
const ROWS_PER_INSERT: usize = 400;

/// The latest consensus run: a release freezes its results.
async fn latest_run(c: &mut Conn<'_>, project_id: ProjectId) -> Result<(Id, String)> {
    let statement = stmt(
        "SELECT id, method FROM consensus_runs WHERE project_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(project_id);
    let run = c.fetch_optional(statement).await?.ok_or_else(|| {
        StoreError::conflict("compute the consensus before releasing (no run yet)")
    })?;
    Ok((run.col("id")?, run.col("method")?))
}

/// The newest annotation the release has seen (labels after it are not in it).
async fn annotation_watermark(c: &mut Conn<'_>, project_id: ProjectId) -> Result<Id> {
    let newest: Option<Id> = c
        .fetch_one(
            stmt("SELECT MAX(id) AS id FROM annotations WHERE project_id = $1").bind(project_id),
        )
        .await?
        .col("id")?;
    Ok(newest.unwrap_or(0))
}

/// Per item, the consensus of every question. Read in packed pages: a million result rows
/// one by one through the driver cost seconds (see `Dialect::json_rows`).
async fn consensus_snapshots(
    c: &mut Conn<'_>,
    dialect: Dialect,
    project_id: ProjectId,
) -> Result<BTreeMap<Id, Snapshot>> {
    let mut items: BTreeMap<Id, Snapshot> = BTreeMap::new();
    let sql = format!(
        "SELECT {} FROM (SELECT c.item_id, c.question, c.label, c.posterior, c.agreement, \
                c.n_labels, i.external_id, i.is_gold \
         FROM item_consensus c JOIN items i ON i.id = c.item_id \
         WHERE c.project_id = $1 AND (c.question, c.item_id) > ($2, $3) \
         ORDER BY c.question, c.item_id LIMIT {PAGE_ROWS}) page",
        dialect.json_rows(
            "item_id, question, label, posterior, agreement, n_labels, external_id, is_gold",
            "question, item_id"
        )
    );
    type ConsensusRow = (
        ItemId,
        String,
        Option<String>,
        String,
        Option<f64>,
        i64,
        String,
        i64,
    );
    let page_key = |row: &ConsensusRow| (row.1.clone(), row.0);
    for_each_question_page(c, &sql, project_id, page_key, |page| {
        for (item_id, question, label, posterior, agreement, n_labels, external_id, is_gold) in page
        {
            let entry = items.entry(item_id.get()).or_default();
            entry.external_id = external_id;
            entry.is_gold = is_gold != 0;
            let label = label
                .map(|l| parse_json(&l, "consensus label"))
                .transpose()?
                .unwrap_or(Value::Null);
            entry.label.insert(question.clone(), label);
            entry
                .soft
                .insert(question.clone(), parse_json(&posterior, "posterior")?);
            let agreement = agreement.map(Value::from).unwrap_or(Value::Null);
            entry.agreement.insert(question, agreement);
            entry.n_labels = entry.n_labels.max(n_labels);
        }
        Ok(())
    })
    .await?;
    Ok(items)
}

/// The expert decisions in force (not superseded) replace the consensus of the questions
/// they answer.
async fn apply_decisions(
    c: &mut Conn<'_>,
    project_id: ProjectId,
    items: &mut BTreeMap<Id, Snapshot>,
) -> Result<()> {
    let decisions = c
        .fetch_all(
            stmt(
                "SELECT a.item_id, a.answer, i.external_id, i.is_gold FROM adjudications a \
         JOIN items i ON i.id = a.item_id \
         WHERE a.project_id = $1 \
           AND NOT EXISTS (SELECT 1 FROM adjudications later WHERE later.supersedes = a.id)",
            )
            .bind(project_id),
        )
        .await?;
    for row in &decisions {
        let item_id: Id = row.col("item_id")?;
        let answer: Value = parse_json(&row.col::<String>("answer")?, "adjudication answer")?;
        let entry = items.entry(item_id).or_default();
        entry.external_id = row.col("external_id")?;
        entry.is_gold = row.col::<i64>("is_gold")? != 0;
        if let Value::Object(decided) = answer {
            entry.label.extend(decided);
        }
        entry.adjudicated = true;
    }
    Ok(())
}

/// The guideline versions each item's labels were given under.
async fn guideline_versions_per_item(
    c: &mut Conn<'_>,
    project_id: ProjectId,
) -> Result<HashMap<Id, BTreeSet<i64>>> {
    let mut versions: HashMap<Id, BTreeSet<i64>> = HashMap::new();
    let rows = c
        .fetch_all(
            stmt(
                "SELECT DISTINCT a.item_id, g.version FROM annotations a \
         JOIN guideline_versions g ON g.id = a.guideline_version_id \
         WHERE a.project_id = $1",
            )
            .bind(project_id),
        )
        .await?;
    for row in &rows {
        versions
            .entry(row.col("item_id")?)
            .or_default()
            .insert(row.col("version")?);
    }
    Ok(versions)
}

/// The release's own row.
struct ReleaseHeader<'a> {
    project_id: ProjectId,
    name: &'a str,
    description: &'a str,
    run_id: Id,
    method: &'a str,
    items: i64,
    watermark: Id,
    summary: &'a Value,
    actor: Option<UserId>,
}

async fn insert_release(
    c: &mut Conn<'_>,
    dialect: Dialect,
    header: &ReleaseHeader<'_>,
) -> Result<Id> {
    let now = dialect.now_ms();
    let row = c
        .fetch_one(
            stmt(format!(
                "INSERT INTO releases (project_id, name, description, run_id, method, items, \
           annotation_watermark, summary, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, {now}) RETURNING id"
            ))
            .bind(header.project_id)
            .bind(header.name)
            .bind(header.description)
            .bind(header.run_id)
            .bind(header.method)
            .bind(header.items)
            .bind(header.watermark)
            .bind(json_text(header.summary))
            .bind(header.actor),
        )
        .await?;
    row.col("id")
}

/// The frozen items, in multi-row INSERTs of [`ROWS_PER_INSERT`].
async fn insert_release_items(
    c: &mut Conn<'_>,
    dialect: Dialect,
    release_id: Id,
    items: &[(Id, Snapshot)],
    versions: &HashMap<Id, BTreeSet<i64>>,
) -> Result<()> {
    for chunk in items.chunks(ROWS_PER_INSERT) {
        let mut sql = String::from(
            "INSERT INTO release_items (release_id, item_id, external_id, label, adjudicated, \
             soft_label, agreement, n_labels, guideline_versions, is_gold) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            let p: Vec<String> = (1..=9).map(|k| dialect.param(i * 9 + k)).collect();
            sql += &format!("({release_id}, {})", p.join(", "));
        }
        let mut query = stmt(&sql);
        for (item_id, snapshot) in chunk {
            let item_versions: Vec<i64> = versions
                .get(item_id)
                .map(|v| v.iter().copied().collect())
                .unwrap_or_default();
            query = query
                .bind(*item_id)
                .bind(snapshot.external_id.clone())
                .bind(json_text(&snapshot.label))
                .bind(i64::from(snapshot.adjudicated))
                .bind(json_text(&snapshot.soft))
                .bind(json_text(&snapshot.agreement))
                .bind(snapshot.n_labels)
                .bind(json_text(&item_versions))
                .bind(i64::from(snapshot.is_gold));
        }
        c.execute(query).await?;
    }
    Ok(())
}

impl Store {
    /// Freezes the project's current final labels as release `name`. Needs a consensus run;
    /// `summary` is the QA summary computed by the caller (α with intervals, gold accuracy,
    /// escalation and overturn rates).
    pub async fn create_release(
        &self,
        project_id: ProjectId,
        name: &str,
        description: &str,
        summary: Value,
        actor: Option<UserId>,
    ) -> Result<Release> {
        // long: one transaction's steps in order, each a named function; the rest is the
        // release's header and audit record.
        let name = name.trim().to_owned();
        if !valid_name(&name) {
            return Err(StoreError::invalid(format!(
                "release name {name:?} must be 1–64 letters, digits, '-', '_' or '.'"
            )));
        }
        let description = description.trim().to_owned();
        let dialect = self.dialect();
        let shown = name.clone();
        let result = self
            .write_conn(move |mut c| {
                let summary = summary.clone();
                let name = name.clone();
                let description = description.clone();
                Box::pin(async move {
                    let c = &mut c;
                    let (run_id, method) = latest_run(c, project_id).await?;
                    let watermark = annotation_watermark(c, project_id).await?;
                    let mut items = consensus_snapshots(c, dialect, project_id).await?;
                    apply_decisions(c, project_id, &mut items).await?;
                    let versions = guideline_versions_per_item(c, project_id).await?;
                    let header = ReleaseHeader {
                        project_id,
                        name: &name,
                        description: &description,
                        run_id,
                        method: &method,
                        items: items.len() as i64,
                        watermark,
                        summary: &summary,
                        actor,
                    };
                    let release_id = insert_release(c, dialect, &header).await?;
                    let all: Vec<(Id, Snapshot)> = items.into_iter().collect();
                    insert_release_items(c, dialect, release_id, &all, &versions).await?;
                    audit::record_in(
                        c,
                        AuditEvent {
                            actor,
                            project: Some(project_id),
                            action: AuditAction::Create,
                            entity: "release",
                            entity_id: Some(release_id),
                            before: None,
                            after: audit::snapshot(&json!({"name": name, "items": all.len()})),
                        },
                    )
                    .await?;
                    Ok(release_id)
                })
            })
            .await;
        let id = match result {
            Err(e) if e.is_unique_violation() => {
                return Err(StoreError::conflict(format!(
                    "a release named {shown:?} already exists in this project (releases are immutable)"
                )));
            }
            other => other?,
        };
        self.release_by_id(id).await
    }

    pub async fn release_by_id(&self, id: Id) -> Result<Release> {
        let row = self
            .read_optional(stmt(format!("{RELEASE_SELECT} WHERE r.id = $1")).bind(id))
            .await?
            .ok_or_else(|| StoreError::not_found(format!("release {id}")))?;
        release_from_row(&row)
    }

    pub async fn release(&self, project_id: ProjectId, name: &str) -> Result<Release> {
        let row = self
            .read_optional(
                stmt(format!(
                    "{RELEASE_SELECT} WHERE r.project_id = $1 AND r.name = $2"
                ))
                .bind(project_id)
                .bind(name),
            )
            .await?
            .ok_or_else(|| StoreError::not_found(format!("release {name:?}")))?;
        release_from_row(&row)
    }

    /// The project's releases, newest first.
    pub async fn releases(&self, project_id: ProjectId) -> Result<Vec<Release>> {
        let rows = self
            .read_rows(
                stmt(format!(
                    "{RELEASE_SELECT} WHERE r.project_id = $1 ORDER BY r.id DESC"
                ))
                .bind(project_id),
            )
            .await?;
        rows.iter().map(release_from_row).collect()
    }

    /// The release's items in item order, streamed through a bounded channel.
    pub fn release_items(&self, release: &Release) -> mpsc::Receiver<Result<ReleaseItem>> {
        let method = release.method.clone();
        stream_rows(
            self.pool().clone(),
            "SELECT * FROM release_items WHERE release_id = $1 ORDER BY item_id",
            vec![release.id],
            move |row| release_item_from_row(row, &method),
        )
    }

    /// The individual labels of a release: the latest answer of every annotator on every
    /// released item, among the annotations up to the release's watermark.
    pub fn release_labels(&self, release: &Release) -> mpsc::Receiver<Result<ReleaseLabel>> {
        stream_rows(
            self.pool().clone(),
            "SELECT r.external_id, a.annotator_id, u.kind AS user_kind, a.kind, a.answer, \
                    g.version AS guideline_version \
             FROM release_items r \
             JOIN annotations a ON a.item_id = r.item_id AND a.project_id = $1 AND a.id <= $2 \
             JOIN users u ON u.id = a.annotator_id \
             LEFT JOIN guideline_versions g ON g.id = a.guideline_version_id \
             WHERE r.release_id = $3 \
               AND NOT EXISTS (SELECT 1 FROM annotations later \
                               WHERE later.item_id = a.item_id AND later.annotator_id = a.annotator_id \
                                 AND later.id > a.id AND later.id <= $4) \
             ORDER BY r.item_id, a.id",
            vec![
                release.project_id.get(),
                release.annotation_watermark,
                release.id,
                release.annotation_watermark,
            ],
            label_from_row,
        )
    }

    /// The questions of every published schema version as typed columns: the current
    /// version's questions and classes in its order, then those only older versions had
    /// (newest first), so a release made under an older schema loses nothing.
    pub async fn answer_columns(&self, project_id: ProjectId) -> Result<Vec<AnswerColumn>> {
        let mut versions = self.schema_versions(project_id).await?;
        versions.retain(|v| v.published_at.is_some());
        let current = self.current_schema(project_id).await?;
        versions.retain(|v| v.id != current.id);
        versions.insert(0, current);
        let mut columns: Vec<AnswerColumn> = Vec::new();
        for version in &versions {
            for question in &version.definition.questions {
                let at = match columns.iter().position(|c| c.key == question.key) {
                    Some(at) => at,
                    None => {
                        columns.push(AnswerColumn {
                            key: question.key.clone(),
                            shape: match question.kind {
                                crate::QuestionKind::Multi => AnswerShape::Codes,
                                crate::QuestionKind::Single | crate::QuestionKind::Ordinal => {
                                    AnswerShape::Code
                                }
                            },
                            classes: Vec::new(),
                        });
                        columns.len() - 1
                    }
                };
                for option in &question.options {
                    if !columns[at].classes.contains(&option.value) {
                        columns[at].classes.push(option.value.clone());
                    }
                }
            }
        }
        Ok(columns)
    }

    /// What changed from release `from` to release `to` of the same project.
    pub async fn diff_releases(&self, from: &Release, to: &Release) -> Result<ReleaseDiff> {
        if from.project_id != to.project_id {
            return Err(StoreError::invalid(
                "the two releases belong to different projects",
            ));
        }
        let load = |release: &Release| {
            let mut rx = self.release_items(release);
            async move {
                let mut out = BTreeMap::new();
                while let Some(item) = rx.recv().await {
                    let item = item?;
                    out.insert(item.item.clone(), item);
                }
                Ok::<_, StoreError>(out)
            }
        };
        let before = load(from).await?;
        let after = load(to).await?;
        let mut diff = ReleaseDiff {
            from: from.name.clone(),
            to: to.name.clone(),
            added: after
                .keys()
                .filter(|k| !before.contains_key(*k))
                .cloned()
                .collect(),
            removed: before
                .keys()
                .filter(|k| !after.contains_key(*k))
                .cloned()
                .collect(),
            changed: Vec::new(),
            unchanged: 0,
            newly_adjudicated: 0,
        };
        for (item, new) in &after {
            let Some(old) = before.get(item) else {
                continue;
            };
            if new.adjudicated && !old.adjudicated {
                diff.newly_adjudicated += 1;
            }
            if let (Value::Object(was), Value::Object(now)) = (&old.label, &new.label) {
                let changes = label_changes(item, was, now);
                if changes.is_empty() {
                    diff.unchanged += 1;
                }
                diff.changed.extend(changes);
            }
        }
        Ok(diff)
    }
}

/// The questions whose final label differs between two releases of one item (a multi-label
/// answer compares as a set, as everywhere else).
fn label_changes(
    item: &str,
    was: &Map<String, Value>,
    now: &Map<String, Value>,
) -> Vec<LabelChange> {
    let questions: BTreeSet<&String> = was.keys().chain(now.keys()).collect();
    questions
        .into_iter()
        .filter_map(|question| {
            let from = was.get(question).cloned().unwrap_or(Value::Null);
            let to = now.get(question).cloned().unwrap_or(Value::Null);
            (!crate::answer::same_value(&from, &to)).then(|| LabelChange {
                item: item.to_owned(),
                question: question.clone(),
                from,
                to,
            })
        })
        .collect()
}

/// Runs `sql` with integer parameters and streams the mapped rows through a bounded channel;
/// the first error ends the stream after it is sent.
fn stream_rows<T, F>(
    pool: sqlx::AnyPool,
    sql: &'static str,
    params: Vec<Id>,
    map: F,
) -> mpsc::Receiver<Result<T>>
where
    T: Send + 'static,
    F: Fn(&AnyRow) -> Result<T> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        // Exception to `Conn`: rows are streamed to the channel as they come (Conn reads a
        // statement's rows whole), so a release of any size is exported in constant memory.
        let mut query = sqlx::query(sql);
        for param in params {
            query = query.bind(param);
        }
        let mut rows = query.fetch(&pool);
        loop {
            let next = match rows.try_next().await {
                Ok(Some(row)) => map(&row),
                Ok(None) => break,
                Err(e) => Err(e.into()),
            };
            let failed = next.is_err();
            if tx.send(next).await.is_err() || failed {
                break;
            }
        }
    });
    rx
}

#[derive(Default)]
struct Snapshot {
    external_id: String,
    is_gold: bool,
    label: Map<String, Value>,
    soft: Map<String, Value>,
    agreement: Map<String, Value>,
    n_labels: i64,
    adjudicated: bool,
}

fn label_from_row(row: &impl Columns) -> Result<ReleaseLabel> {
    let annotator: Id = row.col("annotator_id")?;
    Ok(ReleaseLabel {
        item: row.col("external_id")?,
        annotator: format!("a{annotator}"),
        automated: row.col::<AccountKind>("user_kind")? == AccountKind::Model,
        kind: row.col("kind")?,
        answer: parse_json(&row.col::<String>("answer")?, "annotation answer")?,
        guideline_version: row.col("guideline_version")?,
    })
}
