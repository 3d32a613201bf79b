//! The QA loop's records: what a consensus run reads (every label with its annotator and
//! guideline version), what it writes back in one transaction (per-item consensus,
//! per-annotator quality, the run's report, new escalations), the QA-expert queue, and
//! adjudications with their precedent search. No statistics here: `concord-qa` computes.

use crate::error::{Result, StoreError, json_text, parse_json};
use crate::items::like_pattern;
use crate::model::{ExampleScope, GuidelineExample, Id};
use crate::schema::LabelSchema;
use crate::{Store, audit};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// One label as the consensus run sees it: the latest answer of an annotator on an item.
#[derive(Debug, Clone, Serialize)]
pub struct LabelFact {
    pub annotation_id: Id,
    pub item_id: Id,
    pub annotator_id: Id,
    pub annotator: String,
    /// `human` or `model` (the automated annotator is scored, not counted in consensus).
    pub annotator_kind: String,
    /// `label` or `unsure`.
    pub kind: String,
    pub answer: Value,
    /// The guideline version number the annotator worked under.
    pub guideline_version: Option<i64>,
    pub created_at: i64,
}

/// What the run needs of an item.
#[derive(Debug, Clone, Serialize)]
pub struct ItemFact {
    pub id: Id,
    pub external_id: String,
    pub title: String,
    pub state: String,
    pub is_gold: bool,
    pub gold_answer: Option<Value>,
    pub escalation_reason: Option<String>,
    /// An expert has decided it (escalation rules no longer apply).
    pub adjudicated: bool,
    /// It is waiting in the expert queue already.
    pub open_escalation: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ConsensusInput {
    pub labels: Vec<LabelFact>,
    pub items: Vec<ItemFact>,
}

/// A consensus result for one item and question.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ItemConsensus {
    pub item_id: Id,
    pub question: String,
    /// A code, a list of codes (multi-label), or null when undecided.
    pub label: Option<Value>,
    /// `{code: probability}`.
    pub posterior: Value,
    pub confidence: Option<f64>,
    pub agreement: Option<f64>,
    pub n_labels: i64,
    pub tied: bool,
}

/// An annotator's quality on one question, against the consensus.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AnnotatorQuality {
    pub user_id: Id,
    pub question: String,
    pub labels: i64,
    pub agreement: Option<f64>,
    pub skill: Option<f64>,
    /// `{classes: [...], counts: [[...]]}`: rows the consensus, columns the annotator's label.
    pub confusion: Value,
}

/// An escalation the run opens.
#[derive(Debug, Clone, Serialize)]
pub struct NewEscalation {
    pub item_id: Id,
    /// `[{rule, question, detail}]`.
    pub reasons: Value,
    /// 2 urgent, 1 high, 0 normal.
    pub priority: i64,
    pub priority_reason: String,
    pub sla_ms: i64,
}

/// Everything one run writes.
#[derive(Debug, Clone)]
pub struct ConsensusWrite {
    pub method: String,
    pub annotations: i64,
    pub summary: Value,
    pub items: Vec<ItemConsensus>,
    pub annotators: Vec<AnnotatorQuality>,
    pub escalations: Vec<NewEscalation>,
    pub job_id: Option<Id>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConsensusRun {
    pub id: Id,
    pub project_id: Id,
    pub job_id: Option<Id>,
    pub method: String,
    pub annotations: i64,
    pub items: i64,
    pub escalated: i64,
    pub summary: Value,
    pub created_by: Option<String>,
    pub created_at: i64,
}

/// An entry of the QA-expert queue.
#[derive(Debug, Clone, Serialize)]
pub struct Escalation {
    pub id: Id,
    pub project_id: Id,
    pub item_id: Id,
    pub external_id: String,
    pub title: String,
    pub item_type: String,
    pub reasons: Value,
    pub priority: i64,
    pub priority_reason: String,
    pub status: String,
    pub opened_at: i64,
    pub due_at: i64,
    pub resolved_at: Option<i64>,
    pub resolved_by: Option<String>,
    pub adjudication_id: Option<Id>,
    /// The viewer labelled this item, so may not adjudicate it.
    pub viewer_labelled: bool,
}

/// An expert's decision as submitted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewAdjudication {
    pub answer: Value,
    pub rationale: String,
    #[serde(default)]
    pub guideline_clause: String,
    #[serde(default)]
    pub promote_to_gold: bool,
    /// Add the item as an example of `example_category` in the guideline draft.
    #[serde(default)]
    pub example_scope: Option<ExampleScope>,
    #[serde(default)]
    pub example_category: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Adjudication {
    pub id: Id,
    pub project_id: Id,
    pub item_id: Id,
    pub external_id: String,
    pub title: String,
    pub expert_id: Id,
    pub expert: String,
    pub answer: Value,
    pub rationale: String,
    pub guideline_clause: String,
    pub guideline_version: Option<i64>,
    pub promoted_to_gold: bool,
    pub example_scope: Option<String>,
    pub example_category: Option<String>,
    pub consensus_before: Option<Value>,
    pub overturned: bool,
    pub supersedes: Option<Id>,
    /// A later decision on the same item replaced this one.
    pub superseded: bool,
    pub created_at: i64,
}

/// A label given under an older guideline version that names a category whose guidance
/// changed: a candidate for re-review.
#[derive(Debug, Clone, Serialize)]
pub struct RevisionCandidate {
    pub item_id: Id,
    pub external_id: String,
    pub title: String,
    pub annotator_id: Id,
    pub annotator: String,
    pub guideline_version: i64,
    pub answer: Value,
}

/// Search of the precedent library. Every field narrows; empty fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PrecedentFilter {
    /// Substring of the rationale, clause, item title or external id.
    #[serde(default)]
    pub text: Option<String>,
    /// A code that appears anywhere in the decided answer (category, decision, severity).
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub clause: Option<String>,
    #[serde(default)]
    pub overturned: Option<bool>,
    #[serde(default)]
    pub limit: Option<i64>,
}

const ADJUDICATION_SELECT: &str = "SELECT a.*, i.external_id, i.title, u.username AS expert, \
     g.version AS guideline_version, \
     (SELECT COUNT(*) FROM adjudications later WHERE later.supersedes = a.id) AS superseded_count \
     FROM adjudications a JOIN items i ON i.id = a.item_id JOIN users u ON u.id = a.expert_id \
     LEFT JOIN guideline_versions g ON g.id = a.guideline_version_id";

fn adjudication_from_row(row: &AnyRow) -> Result<Adjudication> {
    let consensus: Option<String> = row.try_get("consensus_before")?;
    Ok(Adjudication {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        item_id: row.try_get("item_id")?,
        external_id: row.try_get("external_id")?,
        title: row.try_get("title")?,
        expert_id: row.try_get("expert_id")?,
        expert: row.try_get("expert")?,
        answer: parse_json(&row.try_get::<String, _>("answer")?, "adjudication answer")?,
        rationale: row.try_get("rationale")?,
        guideline_clause: row.try_get("guideline_clause")?,
        guideline_version: row.try_get("guideline_version")?,
        promoted_to_gold: row.try_get::<i64, _>("promoted_to_gold")? != 0,
        example_scope: row.try_get("example_scope")?,
        example_category: row.try_get("example_category")?,
        consensus_before: consensus
            .map(|c| parse_json(&c, "consensus before adjudication"))
            .transpose()?,
        overturned: row.try_get::<i64, _>("overturned")? != 0,
        supersedes: row.try_get("supersedes")?,
        superseded: row.try_get::<i64, _>("superseded_count")? > 0,
        created_at: row.try_get("created_at")?,
    })
}

fn escalation_from_row(row: &AnyRow) -> Result<Escalation> {
    Ok(Escalation {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        item_id: row.try_get("item_id")?,
        external_id: row.try_get("external_id")?,
        title: row.try_get("title")?,
        item_type: row.try_get("item_type")?,
        reasons: parse_json(&row.try_get::<String, _>("reasons")?, "escalation reasons")?,
        priority: row.try_get("priority")?,
        priority_reason: row.try_get("priority_reason")?,
        status: row.try_get("status")?,
        opened_at: row.try_get("opened_at")?,
        due_at: row.try_get("due_at")?,
        resolved_at: row.try_get("resolved_at")?,
        resolved_by: row.try_get("resolver")?,
        adjudication_id: row.try_get("adjudication_id")?,
        viewer_labelled: row.try_get::<i64, _>("viewer_labelled")? != 0,
    })
}

fn run_from_row(row: &AnyRow) -> Result<ConsensusRun> {
    Ok(ConsensusRun {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        job_id: row.try_get("job_id")?,
        method: row.try_get("method")?,
        annotations: row.try_get("annotations")?,
        items: row.try_get("items")?,
        escalated: row.try_get("escalated")?,
        summary: parse_json(&row.try_get::<String, _>("summary")?, "consensus summary")?,
        created_by: row.try_get("author")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Rows per multi-row INSERT (SQLite allows 32,766 parameters).
const ROWS_PER_INSERT: usize = 400;

impl Store {
    /// Every item of the project and the latest answer of every annotator on each (a
    /// correction replaces what it supersedes), in item order.
    pub async fn consensus_input(&self, project_id: Id) -> Result<ConsensusInput> {
        let label_rows = sqlx::query(
            "SELECT a.id, a.item_id, a.annotator_id, u.username, u.kind AS user_kind, a.kind, \
                    a.answer, g.version AS guideline_version, a.created_at \
             FROM annotations a JOIN users u ON u.id = a.annotator_id \
             LEFT JOIN guideline_versions g ON g.id = a.guideline_version_id \
             WHERE a.project_id = $1 \
               AND NOT EXISTS (SELECT 1 FROM annotations later \
                               WHERE later.item_id = a.item_id AND later.annotator_id = a.annotator_id \
                                 AND later.id > a.id) \
             ORDER BY a.item_id, a.id",
        )
        .bind(project_id)
        .fetch_all(self.pool())
        .await?;
        let mut labels = Vec::with_capacity(label_rows.len());
        for row in &label_rows {
            labels.push(LabelFact {
                annotation_id: row.try_get("id")?,
                item_id: row.try_get("item_id")?,
                annotator_id: row.try_get("annotator_id")?,
                annotator: row.try_get("username")?,
                annotator_kind: row.try_get("user_kind")?,
                kind: row.try_get("kind")?,
                answer: parse_json(&row.try_get::<String, _>("answer")?, "annotation answer")?,
                guideline_version: row.try_get("guideline_version")?,
                created_at: row.try_get("created_at")?,
            });
        }
        let item_rows = sqlx::query(
            "SELECT i.id, i.external_id, i.title, i.state, i.is_gold, i.gold_answer, i.escalation_reason, \
                    EXISTS (SELECT 1 FROM adjudications d WHERE d.item_id = i.id) AS adjudicated, \
                    EXISTS (SELECT 1 FROM escalations e WHERE e.item_id = i.id AND e.status = 'open') AS escalated \
             FROM items i WHERE i.project_id = $1 ORDER BY i.id",
        )
        .bind(project_id)
        .fetch_all(self.pool())
        .await?;
        let mut items = Vec::with_capacity(item_rows.len());
        for row in &item_rows {
            let gold: Option<String> = row.try_get("gold_answer")?;
            items.push(ItemFact {
                id: row.try_get("id")?,
                external_id: row.try_get("external_id")?,
                title: row.try_get("title")?,
                state: row.try_get("state")?,
                is_gold: row.try_get::<i64, _>("is_gold")? != 0,
                gold_answer: gold.map(|g| parse_json(&g, "gold answer")).transpose()?,
                escalation_reason: row.try_get("escalation_reason")?,
                adjudicated: truthy(row, "adjudicated")?,
                open_escalation: truthy(row, "escalated")?,
            });
        }
        Ok(ConsensusInput { labels, items })
    }

    /// Stores a run in one transaction: the report, the project's per-item and
    /// per-annotator results (replacing the previous run's), and the new escalations (an
    /// item already waiting or already adjudicated is left alone).
    pub async fn save_consensus(
        &self,
        project_id: Id,
        run: ConsensusWrite,
        actor: Option<Id>,
    ) -> Result<ConsensusRun> {
        let dialect = self.dialect();
        let now = dialect.now_ms();
        let id = self
            .write(move |c| {
                Box::pin(async move {
                    let items_count = run
                        .items
                        .iter()
                        .map(|i| i.item_id)
                        .collect::<std::collections::HashSet<_>>()
                        .len() as i64;
                    let row = sqlx::query(&format!(
                        "INSERT INTO consensus_runs (project_id, job_id, method, annotations, items, \
                           escalated, summary, created_by, created_at) \
                         VALUES ($1, $2, $3, $4, $5, 0, $6, $7, {now}) RETURNING id, created_at"
                    ))
                    .bind(project_id)
                    .bind(run.job_id)
                    .bind(&run.method)
                    .bind(run.annotations)
                    .bind(items_count)
                    .bind(json_text(&run.summary))
                    .bind(actor)
                    .fetch_one(&mut *c)
                    .await?;
                    let run_id: Id = row.try_get("id")?;
                    let created_at: i64 = row.try_get("created_at")?;

                    sqlx::query("DELETE FROM item_consensus WHERE project_id = $1")
                        .bind(project_id)
                        .execute(&mut *c)
                        .await?;
                    for chunk in run.items.chunks(ROWS_PER_INSERT) {
                        let mut sql = String::from(
                            "INSERT INTO item_consensus (project_id, item_id, question, run_id, label, \
                             posterior, confidence, agreement, n_labels, tied) VALUES ",
                        );
                        for i in 0..chunk.len() {
                            if i > 0 {
                                sql.push(',');
                            }
                            let p: Vec<String> =
                                (1..=8).map(|k| dialect.param(i * 8 + k)).collect();
                            sql += &format!(
                                "({project_id}, {}, {}, {run_id}, {})",
                                p[0],
                                p[1],
                                p[2..].join(", ")
                            );
                        }
                        let mut query = sqlx::query(&sql);
                        for item in chunk {
                            query = query
                                .bind(item.item_id)
                                .bind(item.question.clone())
                                .bind(item.label.as_ref().map(json_text))
                                .bind(json_text(&item.posterior))
                                .bind(item.confidence)
                                .bind(item.agreement)
                                .bind(item.n_labels)
                                .bind(i64::from(item.tied));
                        }
                        query.execute(&mut *c).await?;
                    }

                    sqlx::query("DELETE FROM annotator_quality WHERE project_id = $1")
                        .bind(project_id)
                        .execute(&mut *c)
                        .await?;
                    for chunk in run.annotators.chunks(ROWS_PER_INSERT) {
                        let mut sql = String::from(
                            "INSERT INTO annotator_quality (project_id, user_id, question, run_id, labels, \
                             agreement, skill, confusion) VALUES ",
                        );
                        for i in 0..chunk.len() {
                            if i > 0 {
                                sql.push(',');
                            }
                            let p: Vec<String> =
                                (1..=6).map(|k| dialect.param(i * 6 + k)).collect();
                            sql += &format!(
                                "({project_id}, {}, {}, {run_id}, {})",
                                p[0],
                                p[1],
                                p[2..].join(", ")
                            );
                        }
                        let mut query = sqlx::query(&sql);
                        for a in chunk {
                            query = query
                                .bind(a.user_id)
                                .bind(a.question.clone())
                                .bind(a.labels)
                                .bind(a.agreement)
                                .bind(a.skill)
                                .bind(json_text(&a.confusion));
                        }
                        query.execute(&mut *c).await?;
                    }

                    let mut opened = 0i64;
                    for escalation in &run.escalations {
                        // Skips items that are adjudicated or already waiting, so a rerun
                        // never queues an item twice.
                        let result = sqlx::query(
                            "INSERT INTO escalations (project_id, item_id, reasons, priority, \
                               priority_reason, status, opened_at, due_at, run_id) \
                             SELECT $1, i.id, $2, $3, $4, 'open', $5, $6, $7 FROM items i \
                             WHERE i.id = $8 AND i.project_id = $9 \
                               AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.item_id = i.id AND e.status = 'open') \
                               AND NOT EXISTS (SELECT 1 FROM adjudications d WHERE d.item_id = i.id)",
                        )
                        .bind(project_id)
                        .bind(json_text(&escalation.reasons))
                        .bind(escalation.priority)
                        .bind(&escalation.priority_reason)
                        .bind(created_at)
                        .bind(created_at + escalation.sla_ms)
                        .bind(run_id)
                        .bind(escalation.item_id)
                        .bind(project_id)
                        .execute(&mut *c)
                        .await?;
                        if result.rows_affected() > 0 {
                            opened += 1;
                            sqlx::query(
                                "UPDATE items SET state = 'escalated', open = 0, updated_at = $1 WHERE id = $2",
                            )
                            .bind(created_at)
                            .bind(escalation.item_id)
                            .execute(&mut *c)
                            .await?;
                        }
                    }
                    sqlx::query("UPDATE consensus_runs SET escalated = $1 WHERE id = $2")
                        .bind(opened)
                        .bind(run_id)
                        .execute(&mut *c)
                        .await?;
                    audit::record(
                        c,
                        actor,
                        Some(project_id),
                        "run",
                        "consensus",
                        Some(run_id),
                        None,
                        Some(&serde_json::json!({"method": run.method, "escalated": opened})),
                    )
                    .await?;
                    Ok(run_id)
                })
            })
            .await?;
        self.consensus_run(id).await
    }

    pub async fn consensus_run(&self, id: Id) -> Result<ConsensusRun> {
        let row = sqlx::query(
            "SELECT r.*, u.username AS author FROM consensus_runs r \
             LEFT JOIN users u ON u.id = r.created_by WHERE r.id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::not_found(format!("consensus run {id}")))?;
        run_from_row(&row)
    }

    /// The project's most recent run, if any.
    pub async fn latest_consensus_run(&self, project_id: Id) -> Result<Option<ConsensusRun>> {
        let row = sqlx::query(
            "SELECT r.*, u.username AS author FROM consensus_runs r \
             LEFT JOIN users u ON u.id = r.created_by WHERE r.project_id = $1 \
             ORDER BY r.id DESC LIMIT 1",
        )
        .bind(project_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    /// Past runs, newest first, without their reports' bulk.
    pub async fn consensus_runs(&self, project_id: Id, limit: i64) -> Result<Vec<ConsensusRun>> {
        let rows = sqlx::query(
            "SELECT r.id, r.project_id, r.job_id, r.method, r.annotations, r.items, r.escalated, \
                    '{}' AS summary, u.username AS author, r.created_at \
             FROM consensus_runs r LEFT JOIN users u ON u.id = r.created_by \
             WHERE r.project_id = $1 ORDER BY r.id DESC LIMIT $2",
        )
        .bind(project_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// The latest consensus of an item, per question.
    pub async fn item_consensus(&self, item_id: Id) -> Result<Vec<ItemConsensus>> {
        let rows = sqlx::query("SELECT * FROM item_consensus WHERE item_id = $1 ORDER BY question")
            .bind(item_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(item_consensus_from_row).collect()
    }

    /// The latest consensus of every item of a project.
    pub async fn project_consensus(&self, project_id: Id) -> Result<Vec<ItemConsensus>> {
        let rows = sqlx::query(
            "SELECT * FROM item_consensus WHERE project_id = $1 ORDER BY item_id, question",
        )
        .bind(project_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(item_consensus_from_row).collect()
    }

    /// The latest per-annotator quality of a project, with names.
    pub async fn annotator_quality(
        &self,
        project_id: Id,
    ) -> Result<Vec<(String, AnnotatorQuality)>> {
        let rows = sqlx::query(
            "SELECT q.*, u.username FROM annotator_quality q JOIN users u ON u.id = q.user_id \
             WHERE q.project_id = $1 ORDER BY u.username, q.question",
        )
        .bind(project_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("username")?,
                    AnnotatorQuality {
                        user_id: row.try_get("user_id")?,
                        question: row.try_get("question")?,
                        labels: row.try_get("labels")?,
                        agreement: row.try_get("agreement")?,
                        skill: row.try_get("skill")?,
                        confusion: parse_json(
                            &row.try_get::<String, _>("confusion")?,
                            "confusion",
                        )?,
                    },
                ))
            })
            .collect()
    }

    /// The QA-expert queue: open escalations, most urgent first, then oldest due date
    /// (`status` "resolved" lists the resolved ones, newest first). `viewer` marks the items
    /// the viewer labelled.
    pub async fn escalations(
        &self,
        project_id: Id,
        status: &str,
        viewer: Id,
        limit: i64,
    ) -> Result<Vec<Escalation>> {
        let order = if status == "open" {
            "e.priority DESC, e.due_at, e.id"
        } else {
            "e.resolved_at DESC, e.id DESC"
        };
        let rows = sqlx::query(&format!(
            "{ESCALATION_SELECT} WHERE e.project_id = $2 AND e.status = $3 ORDER BY {order} LIMIT $4"
        ))
        .bind(viewer)
        .bind(project_id)
        .bind(status)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(escalation_from_row).collect()
    }

    /// Counts of the queue: (open, overdue, resolved).
    pub async fn escalation_counts(&self, project_id: Id) -> Result<(i64, i64, i64)> {
        let now = self.dialect().now_ms();
        let row = sqlx::query(&format!(
            "SELECT \
               COALESCE(SUM(CASE WHEN status = 'open' THEN 1 ELSE 0 END), 0) AS open, \
               COALESCE(SUM(CASE WHEN status = 'open' AND due_at < {now} THEN 1 ELSE 0 END), 0) AS overdue, \
               COALESCE(SUM(CASE WHEN status = 'resolved' THEN 1 ELSE 0 END), 0) AS resolved \
             FROM escalations WHERE project_id = $1"
        ))
        .bind(project_id)
        .fetch_one(self.pool())
        .await?;
        Ok((
            row.try_get("open")?,
            row.try_get("overdue")?,
            row.try_get("resolved")?,
        ))
    }

    /// The item's escalations, newest first.
    pub async fn item_escalations(&self, item_id: Id, viewer: Id) -> Result<Vec<Escalation>> {
        let rows = sqlx::query(&format!(
            "{ESCALATION_SELECT} WHERE e.item_id = $2 ORDER BY e.id DESC"
        ))
        .bind(viewer)
        .bind(item_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(escalation_from_row).collect()
    }

    /// Records an expert's decision: checks the expert did not label the item and the
    /// answer fits the project's current schema, resolves the open escalation, marks the
    /// item adjudicated, and — when asked — promotes it to gold and adds it as an example of
    /// a category to the guideline draft. Earlier decisions stay, superseded.
    pub async fn adjudicate(
        &self,
        project_id: Id,
        item_id: Id,
        expert_id: Id,
        decision: NewAdjudication,
    ) -> Result<Adjudication> {
        let rationale = decision.rationale.trim().to_owned();
        if rationale.is_empty() {
            return Err(StoreError::invalid(
                "rationale: say why (it is what makes the decision a precedent)",
            ));
        }
        let schema: LabelSchema = self.current_schema(project_id).await?.definition;
        schema
            .validate_answer(&decision.answer)
            .map_err(|e| StoreError::invalid(format!("answer: {e}")))?;
        let example = match (decision.example_scope, decision.example_category.as_deref()) {
            (Some(scope), Some(category)) if !category.trim().is_empty() => {
                let known = schema
                    .questions
                    .iter()
                    .any(|q| q.options.iter().any(|o| o.value == category.trim()));
                if !known {
                    return Err(StoreError::invalid(format!(
                        "example_category: {category:?} is not a code of the label schema"
                    )));
                }
                Some((scope, category.trim().to_owned()))
            }
            (Some(_), _) => {
                return Err(StoreError::invalid(
                    "example_category: name the category the example illustrates",
                ));
            }
            (None, _) => None,
        };
        let now = self.dialect().now_ms();
        let id = self
            .write(move |c| {
                Box::pin(async move {
                    let item = sqlx::query("SELECT id, title, external_id FROM items WHERE id = $1 AND project_id = $2")
                        .bind(item_id)
                        .bind(project_id)
                        .fetch_optional(&mut *c)
                        .await?
                        .ok_or_else(|| StoreError::not_found(format!("item {item_id}")))?;
                    let title: String = item.try_get("title")?;
                    let labelled = sqlx::query(
                        "SELECT COUNT(*) AS n FROM annotations WHERE item_id = $1 AND annotator_id = $2",
                    )
                    .bind(item_id)
                    .bind(expert_id)
                    .fetch_one(&mut *c)
                    .await?;
                    if labelled.try_get::<i64, _>("n")? > 0 {
                        return Err(StoreError::conflict(
                            "you labelled this item, so another expert must adjudicate it",
                        ));
                    }
                    let consensus = consensus_labels(c, item_id).await?;
                    let overturned = consensus.as_object().is_some_and(|labels| {
                        labels.iter().any(|(question, label)| {
                            !label.is_null() && decision.answer.get(question).is_some_and(|given| !same_answer(given, label))
                        })
                    });
                    let previous: Option<Id> = sqlx::query(
                        "SELECT MAX(id) AS id FROM adjudications WHERE item_id = $1",
                    )
                    .bind(item_id)
                    .fetch_one(&mut *c)
                    .await?
                    .try_get("id")?;
                    let guideline: Option<Id> = sqlx::query(
                        "SELECT current_guideline_version_id AS g FROM projects WHERE id = $1",
                    )
                    .bind(project_id)
                    .fetch_one(&mut *c)
                    .await?
                    .try_get("g")?;
                    let row = sqlx::query(&format!(
                        "INSERT INTO adjudications (project_id, item_id, expert_id, answer, rationale, \
                           guideline_clause, guideline_version_id, promoted_to_gold, example_scope, \
                           example_category, consensus_before, overturned, supersedes, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, {now}) \
                         RETURNING id, created_at"
                    ))
                    .bind(project_id)
                    .bind(item_id)
                    .bind(expert_id)
                    .bind(json_text(&decision.answer))
                    .bind(&rationale)
                    .bind(decision.guideline_clause.trim())
                    .bind(guideline)
                    .bind(i64::from(decision.promote_to_gold))
                    .bind(example.as_ref().map(|(scope, _)| match scope {
                        ExampleScope::InScope => "in",
                        ExampleScope::OutOfScope => "out",
                    }))
                    .bind(example.as_ref().map(|(_, category)| category.clone()))
                    .bind((!consensus.as_object().is_some_and(|o| o.is_empty())).then(|| json_text(&consensus)))
                    .bind(i64::from(overturned))
                    .bind(previous)
                    .fetch_one(&mut *c)
                    .await?;
                    let id: Id = row.try_get("id")?;
                    let at: i64 = row.try_get("created_at")?;
                    sqlx::query(
                        "UPDATE escalations SET status = 'resolved', resolved_at = $1, resolved_by = $2, \
                           adjudication_id = $3 WHERE item_id = $4 AND status = 'open'",
                    )
                    .bind(at)
                    .bind(expert_id)
                    .bind(id)
                    .bind(item_id)
                    .execute(&mut *c)
                    .await?;
                    sqlx::query(
                        "UPDATE items SET state = 'adjudicated', open = 0, updated_at = $1 WHERE id = $2",
                    )
                    .bind(at)
                    .bind(item_id)
                    .execute(&mut *c)
                    .await?;
                    if decision.promote_to_gold {
                        sqlx::query("UPDATE items SET is_gold = 1, gold_answer = $1 WHERE id = $2")
                            .bind(json_text(&decision.answer))
                            .bind(item_id)
                            .execute(&mut *c)
                            .await?;
                    }
                    if let Some((scope, category)) = example {
                        let text = format!("{title} — {rationale} (adjudication #{id})");
                        crate::guidelines::add_example_to_draft(
                            c,
                            project_id,
                            GuidelineExample { category, scope, text },
                            Some(expert_id),
                        )
                        .await?;
                    }
                    audit::record(
                        c,
                        Some(expert_id),
                        Some(project_id),
                        "adjudicate",
                        "item",
                        Some(item_id),
                        None,
                        Some(&serde_json::json!({
                            "adjudication": id,
                            "answer": decision.answer,
                            "overturned": overturned,
                            "promote_to_gold": decision.promote_to_gold,
                        })),
                    )
                    .await?;
                    Ok(id)
                })
            })
            .await?;
        self.adjudication(id).await
    }

    pub async fn adjudication(&self, id: Id) -> Result<Adjudication> {
        let row = sqlx::query(&format!("{ADJUDICATION_SELECT} WHERE a.id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::not_found(format!("adjudication {id}")))?;
        adjudication_from_row(&row)
    }

    /// Every decision on an item, newest first (the first is the one in force).
    pub async fn item_adjudications(&self, item_id: Id) -> Result<Vec<Adjudication>> {
        let rows = sqlx::query(&format!(
            "{ADJUDICATION_SELECT} WHERE a.item_id = $1 ORDER BY a.id DESC"
        ))
        .bind(item_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(adjudication_from_row).collect()
    }

    /// The precedent library: decisions in force (not superseded), newest first.
    pub async fn precedents(
        &self,
        project_id: Id,
        filter: &PrecedentFilter,
    ) -> Result<Vec<Adjudication>> {
        let like = self.dialect().ilike();
        let mut sql = format!(
            "{ADJUDICATION_SELECT} WHERE a.project_id = $1 \
             AND NOT EXISTS (SELECT 1 FROM adjudications later WHERE later.supersedes = a.id)"
        );
        let mut binds: Vec<String> = Vec::new();
        let mut next = 2;
        if let Some(text) = filter
            .text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let columns = [
                "a.rationale",
                "a.guideline_clause",
                "i.title",
                "i.external_id",
            ];
            let tests: Vec<String> = columns
                .iter()
                .map(|column| {
                    binds.push(like_pattern(text));
                    next += 1;
                    format!("{column} {like} ${} ESCAPE '\\'", next - 1)
                })
                .collect();
            sql += &format!(" AND ({})", tests.join(" OR "));
        }
        if let Some(code) = filter
            .code
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            // Codes sit in the JSON answer as quoted strings.
            sql += &format!(" AND a.answer LIKE ${next} ESCAPE '\\'");
            binds.push(like_pattern(&format!("\"{code}\"")));
            next += 1;
        }
        if let Some(clause) = filter
            .clause
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            sql += &format!(" AND a.guideline_clause {like} ${next} ESCAPE '\\'");
            binds.push(like_pattern(clause));
        }
        if let Some(overturned) = filter.overturned {
            sql += &format!(" AND a.overturned = {}", i64::from(overturned));
        }
        sql += &format!(
            " ORDER BY a.id DESC LIMIT {}",
            filter.limit.unwrap_or(200).clamp(1, 1000)
        );
        let mut query = sqlx::query(&sql).bind(project_id);
        for value in binds {
            query = query.bind(value);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(adjudication_from_row).collect()
    }

    /// The latest human labels given under a guideline version older than `before_version`
    /// that name any of `codes`, oldest item first.
    pub async fn labels_under_older_versions(
        &self,
        project_id: Id,
        before_version: i64,
        codes: &[String],
        limit: i64,
    ) -> Result<Vec<RevisionCandidate>> {
        if codes.is_empty() {
            return Ok(Vec::new());
        }
        let tests: Vec<String> = (0..codes.len())
            .map(|k| format!("a.answer LIKE ${} ESCAPE '\\'", k + 3))
            .collect();
        let sql = format!(
            "SELECT a.item_id, i.external_id, i.title, a.annotator_id, u.username, g.version, a.answer \
             FROM annotations a JOIN guideline_versions g ON g.id = a.guideline_version_id \
             JOIN items i ON i.id = a.item_id JOIN users u ON u.id = a.annotator_id \
             WHERE a.project_id = $1 AND g.version < $2 AND u.kind = 'human' AND a.kind = 'label' \
               AND NOT EXISTS (SELECT 1 FROM annotations later WHERE later.item_id = a.item_id \
                               AND later.annotator_id = a.annotator_id AND later.id > a.id) \
               AND ({}) ORDER BY a.item_id, a.id LIMIT {}",
            tests.join(" OR "),
            limit.clamp(1, 10_000)
        );
        let mut query = sqlx::query(&sql).bind(project_id).bind(before_version);
        for code in codes {
            query = query.bind(like_pattern(&format!("\"{code}\"")));
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| {
                Ok(RevisionCandidate {
                    item_id: row.try_get("item_id")?,
                    external_id: row.try_get("external_id")?,
                    title: row.try_get("title")?,
                    annotator_id: row.try_get("annotator_id")?,
                    annotator: row.try_get("username")?,
                    guideline_version: row.try_get("version")?,
                    answer: parse_json(&row.try_get::<String, _>("answer")?, "annotation answer")?,
                })
            })
            .collect()
    }

    /// Queues a re-review of each (item, annotator) pair, skipping pairs that already wait
    /// for one; returns how many were queued. One transaction, one audit entry.
    pub async fn queue_rereviews(
        &self,
        project_id: Id,
        pairs: Vec<(Id, Id)>,
        reason: &str,
        actor: Option<Id>,
    ) -> Result<usize> {
        let reason = reason.to_owned();
        self.write(move |c| {
            Box::pin(async move {
                let mut queued = 0usize;
                for (item_id, user_id) in &pairs {
                    let done = sqlx::query(
                        "INSERT INTO assignments (project_id, item_id, user_id, purpose, status, \
                           counts_toward_overlap, created_by) \
                         SELECT $1, i.id, $2, 'rereview', 'assigned', 0, $3 FROM items i \
                         WHERE i.id = $4 AND i.project_id = $5 \
                           AND NOT EXISTS (SELECT 1 FROM assignments w WHERE w.item_id = i.id \
                                           AND w.user_id = $6 AND w.purpose = 'rereview' \
                                           AND w.status IN ('assigned', 'leased'))",
                    )
                    .bind(project_id)
                    .bind(*user_id)
                    .bind(actor)
                    .bind(*item_id)
                    .bind(project_id)
                    .bind(*user_id)
                    .execute(&mut *c)
                    .await?;
                    queued += done.rows_affected() as usize;
                }
                audit::record(
                    c,
                    actor,
                    Some(project_id),
                    "queue_rereviews",
                    "assignment",
                    None,
                    None,
                    Some(&serde_json::json!({"queued": queued, "asked": pairs.len(), "reason": reason})),
                )
                .await?;
                Ok(queued)
            })
        })
        .await
    }

    /// Annotations per UTC day (day number since the epoch), oldest first.
    pub async fn labels_per_day(&self, project_id: Id) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query(
            "SELECT created_at / 86400000 AS day, COUNT(*) AS n FROM annotations \
             WHERE project_id = $1 GROUP BY created_at / 86400000 ORDER BY day",
        )
        .bind(project_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("day")?, r.try_get("n")?)))
            .collect()
    }

    /// Annotations per annotator, most first, with the account kind (`human` / `model`).
    pub async fn labels_per_annotator(
        &self,
        project_id: Id,
        limit: i64,
    ) -> Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT u.username, u.kind, COUNT(*) AS n FROM annotations a \
             JOIN users u ON u.id = a.annotator_id WHERE a.project_id = $1 \
             GROUP BY u.username, u.kind ORDER BY n DESC, u.username LIMIT $2",
        )
        .bind(project_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("username")?, r.try_get("kind")?, r.try_get("n")?)))
            .collect()
    }

    /// Share of adjudications that overturned the consensus, and how many there are.
    pub async fn adjudication_counts(&self, project_id: Id) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(a.overturned), 0) AS BIGINT) AS overturned FROM adjudications a \
             WHERE a.project_id = $1 \
               AND NOT EXISTS (SELECT 1 FROM adjudications later WHERE later.supersedes = a.id)",
        )
        .bind(project_id)
        .fetch_one(self.pool())
        .await?;
        Ok((row.try_get("n")?, row.try_get("overturned")?))
    }
}

const ESCALATION_SELECT: &str = "SELECT e.*, i.external_id, i.title, i.item_type, r.username AS resolver, \
     CASE WHEN EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = e.item_id AND a.annotator_id = $1) \
          THEN 1 ELSE 0 END AS viewer_labelled \
     FROM escalations e JOIN items i ON i.id = e.item_id LEFT JOIN users r ON r.id = e.resolved_by";

fn item_consensus_from_row(row: &AnyRow) -> Result<ItemConsensus> {
    let label: Option<String> = row.try_get("label")?;
    Ok(ItemConsensus {
        item_id: row.try_get("item_id")?,
        question: row.try_get("question")?,
        label: label
            .map(|l| parse_json(&l, "consensus label"))
            .transpose()?,
        posterior: parse_json(&row.try_get::<String, _>("posterior")?, "posterior")?,
        confidence: row.try_get("confidence")?,
        agreement: row.try_get("agreement")?,
        n_labels: row.try_get("n_labels")?,
        tied: row.try_get::<i64, _>("tied")? != 0,
    })
}

/// `{question: label}` of an item's current consensus.
async fn consensus_labels(c: &mut AnyConnection, item_id: Id) -> Result<Value> {
    let rows = sqlx::query("SELECT question, label FROM item_consensus WHERE item_id = $1")
        .bind(item_id)
        .fetch_all(&mut *c)
        .await?;
    let mut labels = serde_json::Map::new();
    for row in &rows {
        let label: Option<String> = row.try_get("label")?;
        labels.insert(
            row.try_get("question")?,
            label
                .map(|l| parse_json(&l, "consensus label"))
                .transpose()?
                .unwrap_or(Value::Null),
        );
    }
    Ok(Value::Object(labels))
}

/// Answers compare as sets for lists (multi-label order does not matter).
fn same_answer(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            let mut x: Vec<String> = x.iter().map(|v| v.to_string()).collect();
            let mut y: Vec<String> = y.iter().map(|v| v.to_string()).collect();
            x.sort();
            y.sort();
            x == y
        }
        _ => a == b,
    }
}

fn truthy(row: &AnyRow, column: &str) -> Result<bool> {
    // EXISTS is an integer on SQLite and a boolean on PostgreSQL.
    match row.try_get::<bool, _>(column) {
        Ok(value) => Ok(value),
        Err(_) => Ok(row.try_get::<i64, _>(column)? != 0),
    }
}
