//! The item browser's bulk actions: set the priority, assign for re-review, mark gold. Each
//! runs in one transaction, all or nothing, and writes one audit entry per item.

use crate::Store;
use crate::audit::{self, AuditEvent};
use crate::conn::{Columns, Conn, stmt};
use crate::error::{Result, StoreError, json_text, parse_json};
use crate::ids::{ItemId, ProjectId, UserId};
use crate::{AssignmentPurpose, AuditAction, Id};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// The most items one action takes: a page of the browser is at most this long.
pub const MAX_BULK_ITEMS: usize = 500;

/// What to do to every selected item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkAction {
    SetPriority(i64),
    /// A re-review assignment for this annotator (served before the ordinary queue).
    Rereview {
        annotator_id: UserId,
    },
    /// The item becomes gold with its settled answer: the latest adjudication, else the
    /// consensus of every question.
    MarkGold,
}

impl BulkAction {
    /// The word the API and the audit log use.
    pub fn as_str(&self) -> &'static str {
        match self {
            BulkAction::SetPriority(_) => "set_priority",
            BulkAction::Rereview { .. } => "rereview",
            BulkAction::MarkGold => "mark_gold",
        }
    }
}

/// What a bulk action did: the items it changed, by id and external id.
#[derive(Debug, Clone, Serialize)]
pub struct BulkOutcome {
    pub action: &'static str,
    pub items: Vec<BulkItem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BulkItem {
    pub id: ItemId,
    pub external_id: String,
}

/// An item as the action reads it before changing it.
struct Selected {
    id: ItemId,
    external_id: String,
    priority: i64,
    is_gold: bool,
}

impl Store {
    /// Applies `action` to every item of `item_ids` (all of this project), in one transaction.
    /// Unknown items, an empty or too long selection, and (for gold) items without a settled
    /// answer are refused, naming the items, and nothing changes.
    pub async fn bulk_items(
        &self,
        project_id: ProjectId,
        item_ids: Vec<ItemId>,
        action: BulkAction,
        actor: UserId,
    ) -> Result<BulkOutcome> {
        let ids = distinct_selection(item_ids)?;
        let schema = self.current_schema(project_id).await?;
        let now = self.dialect().now_ms();
        self.write_conn(move |mut c| {
            let (ids, action, schema) = (ids.clone(), action.clone(), schema.clone());
            Box::pin(async move {
                let c = &mut c;
                let items = selected_items(c, project_id, &ids).await?;
                let bulk = Bulk {
                    project_id,
                    actor,
                    now,
                };
                match &action {
                    BulkAction::SetPriority(priority) => {
                        set_priority(c, &bulk, &items, *priority).await?
                    }
                    BulkAction::Rereview { annotator_id } => {
                        assign_rereview(c, &bulk, &items, *annotator_id).await?
                    }
                    BulkAction::MarkGold => mark_gold(c, &bulk, &items, &schema.definition).await?,
                }
                Ok(BulkOutcome {
                    action: action.as_str(),
                    items: items
                        .into_iter()
                        .map(|i| BulkItem {
                            id: i.id,
                            external_id: i.external_id,
                        })
                        .collect(),
                })
            })
        })
        .await
    }
}

/// The selection without repeats, in id order; empty or too long is refused.
fn distinct_selection(item_ids: Vec<ItemId>) -> Result<Vec<ItemId>> {
    let ids: Vec<ItemId> = item_ids
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Err(StoreError::invalid("select at least one item"));
    }
    if ids.len() > MAX_BULK_ITEMS {
        return Err(StoreError::invalid(format!(
            "select at most {MAX_BULK_ITEMS} items at once, not {}",
            ids.len()
        )));
    }
    Ok(ids)
}

/// What every step of one bulk action shares: where, who, and the dialect's clock.
struct Bulk {
    project_id: ProjectId,
    actor: UserId,
    now: &'static str,
}

impl Bulk {
    /// The audit entry of one item the action changed.
    fn item_updated(&self, id: ItemId, before: Value, after: Value) -> AuditEvent {
        AuditEvent {
            actor: Some(self.actor),
            project: Some(self.project_id),
            action: AuditAction::Update,
            entity: "item",
            entity_id: Some(id.get()),
            before: audit::snapshot(&before),
            after: audit::snapshot(&after),
        }
    }
}

async fn set_priority(
    c: &mut Conn<'_>,
    bulk: &Bulk,
    items: &[Selected],
    priority: i64,
) -> Result<()> {
    let now = bulk.now;
    for item in items {
        let statement = stmt(format!(
            "UPDATE items SET priority = $1, updated_at = {now} WHERE id = $2"
        ))
        .bind(priority)
        .bind(item.id);
        c.execute(statement).await?;
        let before = serde_json::json!({"priority": item.priority});
        let after = serde_json::json!({"priority": priority, "bulk": true});
        audit::record_in(c, bulk.item_updated(item.id, before, after)).await?;
    }
    // A new priority can put a candidate before a model's queue cursor.
    crate::queue::queue_reordered(c, bulk.project_id).await
}

async fn assign_rereview(
    c: &mut Conn<'_>,
    bulk: &Bulk,
    items: &[Selected],
    annotator_id: UserId,
) -> Result<()> {
    for item in items {
        let id = insert_rereview(c, bulk.project_id, item.id, annotator_id, bulk.actor).await?;
        let after = serde_json::json!({
            "item_id": item.id, "user_id": annotator_id,
            "purpose": AssignmentPurpose::Rereview, "bulk": true,
        });
        let event = AuditEvent {
            actor: Some(bulk.actor),
            project: Some(bulk.project_id),
            action: AuditAction::Create,
            entity: "assignment",
            entity_id: Some(id),
            before: None,
            after: audit::snapshot(&after),
        };
        audit::record_in(c, event).await?;
    }
    Ok(())
}

async fn mark_gold(
    c: &mut Conn<'_>,
    bulk: &Bulk,
    items: &[Selected],
    schema: &crate::LabelSchema,
) -> Result<()> {
    let now = bulk.now;
    let answers = settled_answers(c, items, schema).await?;
    for (item, (answer, from)) in items.iter().zip(answers) {
        let statement = stmt(format!(
            "UPDATE items SET is_gold = 1, gold_answer = $1, updated_at = {now} \
             WHERE id = $2"
        ))
        .bind(json_text(&answer))
        .bind(item.id);
        c.execute(statement).await?;
        let before = serde_json::json!({"is_gold": item.is_gold});
        let after = serde_json::json!({
            "is_gold": true, "gold_answer": answer, "from": from, "bulk": true,
        });
        audit::record_in(c, bulk.item_updated(item.id, before, after)).await?;
    }
    crate::queue::queue_reordered(c, bulk.project_id).await
}

/// The selected items of the project, in id order; any id that is not one is refused.
async fn selected_items(
    c: &mut Conn<'_>,
    project_id: ProjectId,
    ids: &[ItemId],
) -> Result<Vec<Selected>> {
    let placeholders: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT id, external_id, priority, is_gold FROM items \
         WHERE project_id = $1 AND id IN ({}) ORDER BY id",
        placeholders.join(", ")
    );
    let mut query = stmt(&sql).bind(project_id);
    for id in ids {
        query = query.bind(*id);
    }
    let rows = c.fetch_all(query).await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in &rows {
        found.push(Selected {
            id: row.col("id")?,
            external_id: row.col("external_id")?,
            priority: row.col("priority")?,
            is_gold: row.col::<i64>("is_gold")? != 0,
        });
    }
    if found.len() != ids.len() {
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| !found.iter().any(|f| f.id == **id))
            .map(ItemId::to_string)
            .collect();
        return Err(StoreError::not_found(format!(
            "item {} in this project",
            missing.join(", ")
        )));
    }
    Ok(found)
}

async fn insert_rereview(
    c: &mut Conn<'_>,
    project_id: ProjectId,
    item_id: ItemId,
    annotator_id: UserId,
    actor: UserId,
) -> Result<Id> {
    let row = c
        .fetch_one(
            stmt(
                "INSERT INTO assignments (project_id, item_id, user_id, purpose, status, \
           counts_toward_overlap, created_by) \
         VALUES ($1, $2, $3, $4, 'assigned', 0, $5) RETURNING id",
            )
            .bind(project_id)
            .bind(item_id)
            .bind(annotator_id)
            .bind(AssignmentPurpose::Rereview.as_str())
            .bind(actor),
        )
        .await?;
    row.col("id")
}

/// Each item's gold answer and where it comes from: the latest adjudication, else the
/// consensus when it decided every question and the answer fits the schema. Items with
/// neither are refused together, by external id.
async fn settled_answers(
    c: &mut Conn<'_>,
    items: &[Selected],
    schema: &crate::LabelSchema,
) -> Result<Vec<(Value, &'static str)>> {
    let mut answers = Vec::with_capacity(items.len());
    let mut unsettled = Vec::new();
    for item in items {
        let adjudicated = c
            .fetch_optional(
                stmt(
                    "SELECT answer FROM adjudications WHERE item_id = $1 ORDER BY id DESC LIMIT 1",
                )
                .bind(item.id),
            )
            .await?;
        if let Some(row) = adjudicated {
            let answer: Value = parse_json(&row.col::<String>("answer")?, "adjudication")?;
            answers.push((answer, "adjudication"));
            continue;
        }
        match consensus_answer(c, item.id).await? {
            Some(answer) if schema.validate_answer(&answer).is_ok() => {
                answers.push((answer, "consensus"));
            }
            _ => unsettled.push(item.external_id.clone()),
        }
    }
    if !unsettled.is_empty() {
        return Err(StoreError::invalid(format!(
            "no adjudicated or consensus answer to make gold for: {} (adjudicate them, or run \
             the consensus, first); nothing was changed",
            unsettled.join(", ")
        )));
    }
    Ok(answers)
}

/// The consensus label of every question of the item, or `None` when a question is undecided
/// or no run has seen it.
async fn consensus_answer(c: &mut Conn<'_>, item_id: ItemId) -> Result<Option<Value>> {
    let rows = c
        .fetch_all(
            stmt("SELECT question, label FROM item_consensus WHERE item_id = $1").bind(item_id),
        )
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut answer = Map::new();
    for row in &rows {
        let question: String = row.col("question")?;
        match row.col::<Option<String>>("label")? {
            Some(label) => {
                answer.insert(question, parse_json(&label, "consensus label")?);
            }
            None => return Ok(None),
        }
    }
    Ok(Some(Value::Object(answer)))
}
