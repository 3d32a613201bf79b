//! The QA-expert queue: escalations a run opens, listed by urgency and SLA.

use crate::Store;
use crate::conn::Columns;
use crate::error::{Result, parse_json};
use crate::ids::UserId;
use crate::ids::{ItemId, ProjectId};
use crate::model::{EscalationStatus, Id};
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

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

pub(super) fn escalation_from_row(row: &AnyRow) -> Result<Escalation> {
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
        expected_cost: row.try_get("expected_cost")?,
        status: row.col("status")?,
        opened_at: row.try_get("opened_at")?,
        due_at: row.try_get("due_at")?,
        resolved_at: row.try_get("resolved_at")?,
        resolved_by: row.try_get("resolver")?,
        adjudication_id: row.try_get("adjudication_id")?,
        viewer_labelled: row.try_get::<i64, _>("viewer_labelled")? != 0,
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
        let rows = sqlx::query(&format!(
            "{ESCALATION_SELECT} WHERE e.project_id = $2 AND e.status = $3 ORDER BY {order} LIMIT $4"
        ))
        .bind(viewer)
        .bind(project_id)
        .bind(status.as_str())
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(escalation_from_row).collect()
    }

    /// Counts of the queue: (open, overdue, resolved).
    pub async fn escalation_counts(&self, project_id: ProjectId) -> Result<(i64, i64, i64)> {
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
    pub async fn item_escalations(
        &self,
        item_id: ItemId,
        viewer: UserId,
    ) -> Result<Vec<Escalation>> {
        let rows = sqlx::query(&format!(
            "{ESCALATION_SELECT} WHERE e.item_id = $2 ORDER BY e.id DESC"
        ))
        .bind(viewer)
        .bind(item_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(escalation_from_row).collect()
    }
}
