//! Re-review after a guideline change: labels given under an older version in a category
//! whose guidance changed, and the assignments that send them back to their annotators.

use crate::audit::AuditEvent;
use crate::conn::{Columns, stmt};
use crate::error::{Result, parse_json};
use crate::ids::ItemId;
use crate::ids::{ProjectId, UserId};
use crate::items::like_pattern;
use crate::model::AuditAction;
use crate::{Store, audit};
use serde::Serialize;
use serde_json::Value;

/// A label given under an older guideline version that names a category whose guidance
/// changed: a candidate for re-review.
#[derive(Debug, Clone, Serialize)]
pub struct RevisionCandidate {
    pub item_id: ItemId,
    pub external_id: String,
    pub title: String,
    pub annotator_id: UserId,
    pub annotator: String,
    pub guideline_version: i64,
    pub answer: Value,
}

/// The FROM and WHERE of the re-review candidates: `$1` project, `$2` version, `$3…` one
/// LIKE pattern per code.
fn candidates_from(codes: usize) -> String {
    let tests: Vec<String> = (0..codes)
        .map(|k| format!("a.answer LIKE ${} ESCAPE '\\'", k + 3))
        .collect();
    format!(
        "FROM annotations a JOIN guideline_versions g ON g.id = a.guideline_version_id \
         JOIN items i ON i.id = a.item_id JOIN users u ON u.id = a.annotator_id \
         WHERE a.project_id = $1 AND g.version < $2 AND u.kind = 'human' AND a.kind = 'label' \
           AND NOT EXISTS (SELECT 1 FROM annotations later WHERE later.item_id = a.item_id \
                           AND later.annotator_id = a.annotator_id AND later.id > a.id) \
           AND ({})",
        tests.join(" OR ")
    )
}

impl Store {
    /// How many labels [`Store::labels_under_older_versions`] would list without a limit.
    pub async fn count_labels_under_older_versions(
        &self,
        project_id: ProjectId,
        before_version: i64,
        codes: &[String],
    ) -> Result<i64> {
        if codes.is_empty() {
            return Ok(0);
        }
        let sql = format!("SELECT COUNT(*) AS n {}", candidates_from(codes.len()));
        let mut query = stmt(&sql).bind(project_id).bind(before_version);
        for code in codes {
            query = query.bind(like_pattern(&format!("\"{code}\"")));
        }
        self.read_one(query).await?.col("n")
    }

    /// The latest human labels given under a guideline version older than `before_version`
    /// that name any of `codes`, oldest item first.
    pub async fn labels_under_older_versions(
        &self,
        project_id: ProjectId,
        before_version: i64,
        codes: &[String],
        limit: i64,
        offset: i64,
    ) -> Result<Vec<RevisionCandidate>> {
        if codes.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT a.item_id, i.external_id, i.title, a.annotator_id, u.username, g.version, a.answer \
             {} ORDER BY a.item_id, a.id LIMIT {} OFFSET {}",
            candidates_from(codes.len()),
            limit.clamp(1, 10_000),
            offset.max(0)
        );
        let mut query = stmt(&sql).bind(project_id).bind(before_version);
        for code in codes {
            query = query.bind(like_pattern(&format!("\"{code}\"")));
        }
        let rows = self.read_rows(query).await?;
        rows.iter()
            .map(|row| {
                Ok(RevisionCandidate {
                    item_id: row.col("item_id")?,
                    external_id: row.col("external_id")?,
                    title: row.col("title")?,
                    annotator_id: row.col("annotator_id")?,
                    annotator: row.col("username")?,
                    guideline_version: row.col("version")?,
                    answer: parse_json(&row.col::<String>("answer")?, "annotation answer")?,
                })
            })
            .collect()
    }

    /// Queues a re-review of each (item, annotator) pair, skipping pairs that already wait
    /// for one; returns how many were queued. One transaction, one audit entry.
    pub async fn queue_rereviews(
        &self,
        project_id: ProjectId,
        pairs: Vec<(ItemId, UserId)>,
        reason: &str,
        actor: Option<UserId>,
    ) -> Result<usize> {
        let reason = reason.to_owned();
        self.write_conn(move |mut c| {
            let reason = reason.clone();
            let pairs = pairs.clone();
            Box::pin(async move {
                let c = &mut c;
                let mut queued = 0usize;
                for (item_id, user_id) in &pairs {
                    let statement = stmt(
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
                    .bind(*user_id);
                    let done = c.execute(statement)
                    .await?;
                    queued += done as usize;
                }
                audit::record_in(c,
AuditEvent {
actor,
project: Some(project_id),
action: AuditAction::QueueRereviews,
entity: "assignment",
entity_id: None,
before: None,
after: audit::snapshot(&serde_json::json!({"queued": queued, "asked": pairs.len(), "reason": reason})),
},
)
                .await?;
                Ok(queued)
            })
        })
        .await
    }
}
