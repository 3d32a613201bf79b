//! The audit log: who changed what, from what to what, and when. Written in the same
//! transaction as the change itself, so the log never disagrees with the data.

use crate::Store;
use crate::conn::{Conn, stmt};
use crate::error::{Result, json_text};
use crate::model::{AuditEntry, Id};
use serde::Serialize;
use sqlx::AnyConnection;
use sqlx::Row;

#[allow(clippy::too_many_arguments)]
pub(crate) async fn record<T: Serialize>(
    c: &mut AnyConnection,
    actor: Option<Id>,
    project: Option<Id>,
    action: &str,
    entity: &str,
    entity_id: Option<Id>,
    before: Option<&T>,
    after: Option<&T>,
) -> Result<()> {
    let mut conn = Conn::Sqlx(c);
    record_in(
        &mut conn, actor, project, action, entity, entity_id, before, after,
    )
    .await
}

/// [`record`] on a hot path's connection.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn record_in<T: Serialize>(
    c: &mut Conn<'_>,
    actor: Option<Id>,
    project: Option<Id>,
    action: &str,
    entity: &str,
    entity_id: Option<Id>,
    before: Option<&T>,
    after: Option<&T>,
) -> Result<()> {
    c.execute(
        stmt(
            "INSERT INTO audit_log (actor_id, project_id, action, entity, entity_id, before, after) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(actor)
        .bind(project)
        .bind(action)
        .bind(entity)
        .bind(entity_id)
        .bind(before.map(json_text))
        .bind(after.map(json_text)),
    )
    .await?;
    Ok(())
}

impl Store {
    /// Newest first; `project` narrows to one project's changes.
    pub async fn audit_log(&self, project: Option<Id>, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT a.id, a.at, u.username AS actor, a.project_id, a.action, a.entity, a.entity_id, \
                    a.before, a.after \
             FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id \
             WHERE ($1 IS NULL OR a.project_id = $1) ORDER BY a.id DESC LIMIT $2",
        )
        .bind(project)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let parse = |col: &str| -> Result<Option<serde_json::Value>> {
                    Ok(row
                        .try_get::<Option<String>, _>(col)?
                        .and_then(|t| serde_json::from_str(&t).ok()))
                };
                Ok(AuditEntry {
                    id: row.try_get("id")?,
                    at: row.try_get("at")?,
                    actor: row.try_get("actor")?,
                    project_id: row.try_get("project_id")?,
                    action: row.try_get("action")?,
                    entity: row.try_get("entity")?,
                    entity_id: row.try_get("entity_id")?,
                    before: parse("before")?,
                    after: parse("after")?,
                })
            })
            .collect()
    }
}
