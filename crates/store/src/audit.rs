//! The audit log: who changed what, from what to what, and when. Written in the same
//! transaction as the change itself, so the log never disagrees with the data.

use crate::Store;
use crate::conn::{Columns, Conn, stmt};
use crate::error::{Result, json_text};
use crate::ids::{ProjectId, UserId};
use crate::model::{AuditAction, AuditEntry, Id};
use serde::Serialize;

/// One change for the log, built by the code that made it.
pub(crate) struct AuditEvent {
    /// Who made the change; `None` for the system (e.g. the pause rule).
    pub actor: Option<UserId>,
    pub project: Option<ProjectId>,
    pub action: AuditAction,
    /// What kind of thing changed (`project`, `assignment`, …).
    pub entity: &'static str,
    pub entity_id: Option<Id>,
    /// The entity before and after, as JSON text (see [`snapshot`]).
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A value as the log stores it. Serialized here, from the caller's own type, so the text
/// keeps the type's field order.
pub(crate) fn snapshot<T: Serialize + ?Sized>(value: &T) -> Option<String> {
    Some(json_text(&value))
}

/// Records `event` in the transaction `c` belongs to.
pub(crate) async fn record_in(c: &mut Conn<'_>, event: AuditEvent) -> Result<()> {
    c.execute(
        stmt(
            "INSERT INTO audit_log (actor_id, project_id, action, entity, entity_id, before, after) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(event.actor)
        .bind(event.project)
        .bind(event.action.as_str())
        .bind(event.entity)
        .bind(event.entity_id)
        .bind(event.before)
        .bind(event.after),
    )
    .await?;
    Ok(())
}

impl Store {
    /// Newest first; `project` narrows to one project's changes.
    pub async fn audit_log(
        &self,
        project: Option<ProjectId>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>> {
        let statement = stmt(
            "SELECT a.id, a.at, u.username AS actor, a.project_id, a.action, a.entity, a.entity_id, \
                    a.before, a.after \
             FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id \
             WHERE ($1 IS NULL OR a.project_id = $1) ORDER BY a.id DESC LIMIT $2",
        )
        .bind(project)
        .bind(limit);
        let rows = self.read_rows(statement).await?;
        rows.iter()
            .map(|row| {
                let parse = |col: &str| -> Result<Option<serde_json::Value>> {
                    Ok(row
                        .col::<Option<String>>(col)?
                        .and_then(|t| serde_json::from_str(&t).ok()))
                };
                Ok(AuditEntry {
                    id: row.col("id")?,
                    at: row.col("at")?,
                    actor: row.col("actor")?,
                    project_id: row.col("project_id")?,
                    action: AuditAction::parse(&row.col::<String>("action")?)?,
                    entity: row.col("entity")?,
                    entity_id: row.col("entity_id")?,
                    before: parse("before")?,
                    after: parse("after")?,
                })
            })
            .collect()
    }
}
