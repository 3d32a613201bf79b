//! The QA-expert queue: escalations a run opens, listed by urgency and SLA.

use crate::Store;
use crate::conn::{Columns, stmt};
use crate::error::{Result, parse_json};
use crate::ids::UserId;
use crate::ids::{ItemId, ProjectId};
use crate::model::{EscalationStatus, Id};
use serde::Serialize;
use serde_json::Value;

/// An escalation the run opens.
#[derive(Debug, Clone, Serialize)]
pub struct NewEscalation {
    pub item_id: ItemId,
    /// `[{rule, question, detail}]`.
    pub reasons: Value,
    /// 2 urgent, 1 high, 0 normal.
    pub priority: i64,
    pub priority_reason: String,
    pub sla_ms: i64,
    /// Expected cost of the item's consensus under the project's cost matrices (posterior
    /// × cost, summed over its questions); `None` when no question has costs.
    pub expected_cost: Option<f64>,
}

/// An entry of the QA-expert queue.
#[derive(Debug, Clone, Serialize)]
pub struct Escalation {
    pub id: Id,
    pub project_id: ProjectId,
    pub item_id: ItemId,
    pub external_id: String,
    pub title: String,
    pub item_type: String,
    pub reasons: Value,
    pub priority: i64,
    pub priority_reason: String,
    /// See [`NewEscalation::expected_cost`]; ranks the queue within a priority.
    pub expected_cost: Option<f64>,
    pub status: EscalationStatus,
    pub opened_at: i64,
    pub due_at: i64,
    pub resolved_at: Option<i64>,
    pub resolved_by: Option<String>,
    pub adjudication_id: Option<Id>,
    /// The viewer labelled this item, so may not adjudicate it.
    pub viewer_labelled: bool,
}

pub(super) fn escalation_from_row(row: &impl Columns) -> Result<Escalation> {
    Ok(Escalation {
        id: row.col("id")?,
        project_id: row.col("project_id")?,
        item_id: row.col("item_id")?,
        external_id: row.col("external_id")?,
        title: row.col("title")?,
        item_type: row.col("item_type")?,
        reasons: parse_json(&row.col::<String>("reasons")?, "escalation reasons")?,
        priority: row.col("priority")?,
        priority_reason: row.col("priority_reason")?,
        expected_cost: row.col("expected_cost")?,
        status: row.col("status")?,
        opened_at: row.col("opened_at")?,
        due_at: row.col("due_at")?,
        resolved_at: row.col("resolved_at")?,
        resolved_by: row.col("resolver")?,
        adjudication_id: row.col("adjudication_id")?,
        viewer_labelled: row.col::<i64>("viewer_labelled")? != 0,
    })
}

pub(super) const ESCALATION_SELECT: &str = "SELECT e.*, i.external_id, i.title, i.item_type, r.username AS resolver, \
     CASE WHEN EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = e.item_id AND a.annotator_id = $1) \
          THEN 1 ELSE 0 END AS viewer_labelled \
     FROM escalations e JOIN items i ON i.id = e.item_id LEFT JOIN users r ON r.id = e.resolved_by";

impl Store {
    /// The QA-expert queue: open escalations, most urgent first, then the costliest to
    /// leave as they are (expected cost; none last), then oldest due date (resolved ones
    /// are listed, newest first). `viewer` marks the items
    /// the viewer labelled.
    pub async fn escalations(
        &self,
        project_id: ProjectId,
        status: EscalationStatus,
        viewer: UserId,
        limit: i64,
    ) -> Result<Vec<Escalation>> {
        let order = if status == EscalationStatus::Open {
            "e.priority DESC, COALESCE(e.expected_cost, -1) DESC, e.due_at, e.id"
        } else {
            "e.resolved_at DESC, e.id DESC"
        };
        let statement = stmt(format!(
            "{ESCALATION_SELECT} WHERE e.project_id = $2 AND e.status = $3 ORDER BY {order} LIMIT $4"
        ))
        .bind(viewer)
        .bind(project_id)
        .bind(status.as_str())
        .bind(limit);
        let rows = self.read_rows(statement).await?;
        rows.iter().map(escalation_from_row).collect()
    }

    /// Counts of the queue: (open, overdue, resolved).
    pub async fn escalation_counts(&self, project_id: ProjectId) -> Result<(i64, i64, i64)> {
        let now = self.dialect().now_ms();
        let statement = stmt(format!(
            "SELECT \
               COALESCE(SUM(CASE WHEN status = 'open' THEN 1 ELSE 0 END), 0) AS open, \
               COALESCE(SUM(CASE WHEN status = 'open' AND due_at < {now} THEN 1 ELSE 0 END), 0) AS overdue, \
               COALESCE(SUM(CASE WHEN status = 'resolved' THEN 1 ELSE 0 END), 0) AS resolved \
             FROM escalations WHERE project_id = $1"
        ))
        .bind(project_id);
        let row = self.read_one(statement).await?;
        Ok((row.col("open")?, row.col("overdue")?, row.col("resolved")?))
    }

    /// The item's escalations, newest first.
    pub async fn item_escalations(
        &self,
        item_id: ItemId,
        viewer: UserId,
    ) -> Result<Vec<Escalation>> {
        let rows = self
            .read_rows(
                stmt(format!(
                    "{ESCALATION_SELECT} WHERE e.item_id = $2 ORDER BY e.id DESC"
                ))
                .bind(viewer)
                .bind(item_id),
            )
            .await?;
        rows.iter().map(escalation_from_row).collect()
    }
}
