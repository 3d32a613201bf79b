//! Adjudications: an expert's structured decision on an escalated item, and the precedent
//! library searched over them.

use crate::audit::AuditEvent;
use crate::conn::{Columns, Conn, stmt};
use crate::error::{Result, StoreError, json_text, parse_json};
use crate::ids::{ItemId, ProjectId, UserId};
use crate::items::like_pattern;
use crate::model::AuditAction;
use crate::model::{ExampleScope, GuidelineExample, Id};
use crate::schema::LabelSchema;
use crate::{Store, audit};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    pub project_id: ProjectId,
    pub item_id: ItemId,
    pub external_id: String,
    pub title: String,
    pub expert_id: UserId,
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

pub(super) const ADJUDICATION_SELECT: &str = "SELECT a.*, i.external_id, i.title, u.username AS expert, \
     g.version AS guideline_version, \
     (SELECT COUNT(*) FROM adjudications later WHERE later.supersedes = a.id) AS superseded_count \
     FROM adjudications a JOIN items i ON i.id = a.item_id JOIN users u ON u.id = a.expert_id \
     LEFT JOIN guideline_versions g ON g.id = a.guideline_version_id";

pub(super) fn adjudication_from_row(row: &impl Columns) -> Result<Adjudication> {
    let consensus: Option<String> = row.col("consensus_before")?;
    Ok(Adjudication {
        id: row.col("id")?,
        project_id: row.col("project_id")?,
        item_id: row.col("item_id")?,
        external_id: row.col("external_id")?,
        title: row.col("title")?,
        expert_id: row.col("expert_id")?,
        expert: row.col("expert")?,
        answer: parse_json(&row.col::<String>("answer")?, "adjudication answer")?,
        rationale: row.col("rationale")?,
        guideline_clause: row.col("guideline_clause")?,
        guideline_version: row.col("guideline_version")?,
        promoted_to_gold: row.col::<i64>("promoted_to_gold")? != 0,
        example_scope: row.col("example_scope")?,
        example_category: row.col("example_category")?,
        consensus_before: consensus
            .map(|c| parse_json(&c, "consensus before adjudication"))
            .transpose()?,
        overturned: row.col::<i64>("overturned")? != 0,
        supersedes: row.col("supersedes")?,
        superseded: row.col::<i64>("superseded_count")? > 0,
        created_at: row.col("created_at")?,
    })
}

/// `{question: label}` of an item's current consensus.
pub(super) async fn consensus_labels(c: &mut Conn<'_>, item_id: ItemId) -> Result<Value> {
    let rows = c
        .fetch_all(
            stmt("SELECT question, label FROM item_consensus WHERE item_id = $1").bind(item_id),
        )
        .await?;
    let mut labels = serde_json::Map::new();
    for row in &rows {
        let label: Option<String> = row.col("label")?;
        labels.insert(
            row.col("question")?,
            label
                .map(|l| parse_json(&l, "consensus label"))
                .transpose()?
                .unwrap_or(Value::Null),
        );
    }
    Ok(Value::Object(labels))
}

/// The guideline example a decision asks for, checked against the schema: a scope needs a
/// category, and the category must be one of the schema's codes.
fn checked_example(
    schema: &LabelSchema,
    decision: &NewAdjudication,
) -> Result<Option<(ExampleScope, String)>> {
    match (decision.example_scope, decision.example_category.as_deref()) {
        (Some(scope), Some(category)) if !category.trim().is_empty() => {
            let category = category.trim();
            let known = schema
                .questions
                .iter()
                .any(|q| q.options.iter().any(|o| o.value == category));
            if !known {
                return Err(StoreError::invalid(format!(
                    "example_category: {category:?} is not a code of the label schema"
                )));
            }
            Ok(Some((scope, category.to_owned())))
        }
        (Some(_), _) => Err(StoreError::invalid(
            "example_category: name the category the example illustrates",
        )),
        (None, _) => Ok(None),
    }
}

async fn item_title(c: &mut Conn<'_>, project_id: ProjectId, item_id: ItemId) -> Result<String> {
    let item = c
        .fetch_optional(
            stmt("SELECT title FROM items WHERE id = $1 AND project_id = $2")
                .bind(item_id)
                .bind(project_id),
        )
        .await?
        .ok_or_else(|| StoreError::not_found(format!("item {item_id}")))?;
    item.col("title")
}

/// An expert never decides an item they labelled.
async fn refuse_own_item(c: &mut Conn<'_>, item_id: ItemId, expert_id: UserId) -> Result<()> {
    let labelled = c
        .fetch_one(
            stmt("SELECT COUNT(*) AS n FROM annotations WHERE item_id = $1 AND annotator_id = $2")
                .bind(item_id)
                .bind(expert_id),
        )
        .await?;
    if labelled.col::<i64>("n")? > 0 {
        return Err(StoreError::conflict(
            "you labelled this item, so another expert must adjudicate it",
        ));
    }
    Ok(())
}

/// True when the decision gives another answer than the consensus to some question.
fn overturns(consensus: &Value, answer: &Value) -> bool {
    consensus.as_object().is_some_and(|labels| {
        labels.iter().any(|(question, label)| {
            !label.is_null()
                && answer
                    .get(question)
                    .is_some_and(|given| !crate::answer::same_value(given, label))
        })
    })
}

/// What one decision writes.
struct DecisionRecord<'a> {
    project_id: ProjectId,
    item_id: ItemId,
    expert_id: UserId,
    decision: &'a NewAdjudication,
    rationale: &'a str,
    example: Option<&'a (ExampleScope, String)>,
    consensus: &'a Value,
    overturned: bool,
}

/// Inserts the decision, superseding the item's previous one, under the project's current
/// guideline version; returns its id and time.
async fn insert_decision(
    c: &mut Conn<'_>,
    record: &DecisionRecord<'_>,
    now: &str,
) -> Result<(Id, i64)> {
    let previous: Option<Id> = c
        .fetch_one(
            stmt("SELECT MAX(id) AS id FROM adjudications WHERE item_id = $1").bind(record.item_id),
        )
        .await?
        .col("id")?;
    let guideline: Option<Id> = c
        .fetch_one(
            stmt("SELECT current_guideline_version_id AS g FROM projects WHERE id = $1")
                .bind(record.project_id),
        )
        .await?
        .col("g")?;
    let decision = record.decision;
    let scope = record.example.map(|(scope, _)| match scope {
        ExampleScope::InScope => "in",
        ExampleScope::OutOfScope => "out",
    });
    let consensus_before = (!record.consensus.as_object().is_some_and(|o| o.is_empty()))
        .then(|| json_text(record.consensus));
    let row = c
        .fetch_one(
            stmt(format!(
                "INSERT INTO adjudications (project_id, item_id, expert_id, answer, rationale, \
           guideline_clause, guideline_version_id, promoted_to_gold, example_scope, \
           example_category, consensus_before, overturned, supersedes, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, {now}) \
         RETURNING id, created_at"
            ))
            .bind(record.project_id)
            .bind(record.item_id)
            .bind(record.expert_id)
            .bind(json_text(&decision.answer))
            .bind(record.rationale)
            .bind(decision.guideline_clause.trim())
            .bind(guideline)
            .bind(i64::from(decision.promote_to_gold))
            .bind(scope)
            .bind(record.example.map(|(_, category)| category.clone()))
            .bind(consensus_before)
            .bind(i64::from(record.overturned))
            .bind(previous),
        )
        .await?;
    Ok((row.col("id")?, row.col("created_at")?))
}

/// The decided item leaves the expert queue, is adjudicated, and becomes gold when asked.
async fn settle_decided_item(
    c: &mut Conn<'_>,
    record: &DecisionRecord<'_>,
    adjudication_id: Id,
    at: i64,
) -> Result<()> {
    c.execute(
        stmt(
            "UPDATE escalations SET status = 'resolved', resolved_at = $1, resolved_by = $2, \
           adjudication_id = $3 WHERE item_id = $4 AND status = 'open'",
        )
        .bind(at)
        .bind(record.expert_id)
        .bind(adjudication_id)
        .bind(record.item_id),
    )
    .await?;
    c.execute(
        stmt("UPDATE items SET state = 'adjudicated', open = 0, updated_at = $1 WHERE id = $2")
            .bind(at)
            .bind(record.item_id),
    )
    .await?;
    if record.decision.promote_to_gold {
        c.execute(
            stmt("UPDATE items SET is_gold = 1, gold_answer = $1 WHERE id = $2")
                .bind(json_text(&record.decision.answer))
                .bind(record.item_id),
        )
        .await?;
    }
    Ok(())
}

/// The filter as SQL conditions (each starting with ` AND`) on parameters `$2…`, and the
/// values to bind to them in order.
fn precedent_conditions(filter: &PrecedentFilter, like: &str) -> (String, Vec<String>) {
    let given = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    };
    let mut sql = String::new();
    let mut binds: Vec<String> = Vec::new();
    if let Some(text) = given(&filter.text) {
        let columns = [
            "a.rationale",
            "a.guideline_clause",
            "i.title",
            "i.external_id",
        ];
        let tests: Vec<String> = columns
            .iter()
            .map(|column| {
                binds.push(like_pattern(&text));
                format!("{column} {like} ${} ESCAPE '\\'", binds.len() + 1)
            })
            .collect();
        sql += &format!(" AND ({})", tests.join(" OR "));
    }
    if let Some(code) = given(&filter.code) {
        // Codes sit in the JSON answer as quoted strings.
        binds.push(like_pattern(&format!("\"{code}\"")));
        sql += &format!(" AND a.answer LIKE ${} ESCAPE '\\'", binds.len() + 1);
    }
    if let Some(clause) = given(&filter.clause) {
        binds.push(like_pattern(&clause));
        sql += &format!(
            " AND a.guideline_clause {like} ${} ESCAPE '\\'",
            binds.len() + 1
        );
    }
    if let Some(overturned) = filter.overturned {
        sql += &format!(" AND a.overturned = {}", i64::from(overturned));
    }
    (sql, binds)
}

impl Store {
    /// Records an expert's decision: checks the expert did not label the item and the
    /// answer fits the project's current schema, resolves the open escalation, marks the
    /// item adjudicated, and — when asked — promotes it to gold and adds it as an example of
    /// a category to the guideline draft. Earlier decisions stay, superseded.
    pub async fn adjudicate(
        &self,
        project_id: ProjectId,
        item_id: ItemId,
        expert_id: UserId,
        decision: NewAdjudication,
    ) -> Result<Adjudication> {
        // long: one transaction's steps in order, each a named function; the rest is the
        // schema check before it and the audit record after.
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
        let example = checked_example(&schema, &decision)?;
        let now = self.dialect().now_ms();
        let id = self
            .write_conn(move |mut c| {
                let rationale = rationale.clone();
                let example = example.clone();
                let decision = decision.clone();
                Box::pin(async move {
                    let c = &mut c;
                    let title = item_title(c, project_id, item_id).await?;
                    refuse_own_item(c, item_id, expert_id).await?;
                    let consensus = consensus_labels(c, item_id).await?;
                    let overturned = overturns(&consensus, &decision.answer);
                    let record = DecisionRecord {
                        project_id,
                        item_id,
                        expert_id,
                        decision: &decision,
                        rationale: &rationale,
                        example: example.as_ref(),
                        consensus: &consensus,
                        overturned,
                    };
                    let (id, at) = insert_decision(c, &record, now).await?;
                    settle_decided_item(c, &record, id, at).await?;
                    if let Some((scope, category)) = example {
                        let text = format!("{title} — {rationale} (adjudication #{id})");
                        crate::guidelines::add_example_to_draft(
                            c,
                            project_id,
                            GuidelineExample {
                                category,
                                scope,
                                text,
                            },
                            Some(expert_id),
                        )
                        .await?;
                    }
                    audit::record_in(
                        c,
                        AuditEvent {
                            actor: Some(expert_id),
                            project: Some(project_id),
                            action: AuditAction::Adjudicate,
                            entity: "item",
                            entity_id: Some(item_id.get()),
                            before: None,
                            after: audit::snapshot(&serde_json::json!({
                                "adjudication": id,
                                "answer": decision.answer,
                                "overturned": overturned,
                                "promote_to_gold": decision.promote_to_gold,
                            })),
                        },
                    )
                    .await?;
                    Ok(id)
                })
            })
            .await?;
        self.adjudication(id).await
    }

    pub async fn adjudication(&self, id: Id) -> Result<Adjudication> {
        let row = self
            .read_optional(stmt(format!("{ADJUDICATION_SELECT} WHERE a.id = $1")).bind(id))
            .await?
            .ok_or_else(|| StoreError::not_found(format!("adjudication {id}")))?;
        adjudication_from_row(&row)
    }

    /// Every decision on an item, newest first (the first is the one in force).
    pub async fn item_adjudications(&self, item_id: ItemId) -> Result<Vec<Adjudication>> {
        let rows = self
            .read_rows(
                stmt(format!(
                    "{ADJUDICATION_SELECT} WHERE a.item_id = $1 ORDER BY a.id DESC"
                ))
                .bind(item_id),
            )
            .await?;
        rows.iter().map(adjudication_from_row).collect()
    }

    /// The precedent library: decisions in force (not superseded), newest first.
    pub async fn precedents(
        &self,
        project_id: ProjectId,
        filter: &PrecedentFilter,
    ) -> Result<Vec<Adjudication>> {
        let (conditions, binds) = precedent_conditions(filter, self.dialect().ilike());
        let sql = format!(
            "{ADJUDICATION_SELECT} WHERE a.project_id = $1 \
             AND NOT EXISTS (SELECT 1 FROM adjudications later WHERE later.supersedes = a.id)\
             {conditions} ORDER BY a.id DESC LIMIT {}",
            filter.limit.unwrap_or(200).clamp(1, 1000)
        );
        let mut query = stmt(&sql).bind(project_id);
        for value in binds {
            query = query.bind(value);
        }
        let rows = self.read_rows(query).await?;
        rows.iter().map(adjudication_from_row).collect()
    }

    /// Share of adjudications that overturned the consensus, and how many there are.
    pub async fn adjudication_counts(&self, project_id: ProjectId) -> Result<(i64, i64)> {
        let statement = stmt(
            "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(a.overturned), 0) AS BIGINT) AS overturned FROM adjudications a \
             WHERE a.project_id = $1 \
               AND NOT EXISTS (SELECT 1 FROM adjudications later WHERE later.supersedes = a.id)",
        )
        .bind(project_id);
        let row = self.read_one(statement).await?;
        Ok((row.col("n")?, row.col("overturned")?))
    }
}
