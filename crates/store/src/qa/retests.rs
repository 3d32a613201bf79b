//! Test–retest: each retest an annotator answered, beside their first answer to the same
//! item. The consistency figures are computed by `concord-qa`.

use crate::Store;
use crate::conn::{Columns, stmt};
use crate::error::{Result, parse_json};
use crate::ids::ProjectId;
use crate::ids::{ItemId, UserId};
use serde::Serialize;
use serde_json::Value;

/// An annotator's first label of an item and their label of the same item in a retest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetestPair {
    pub annotator_id: UserId,
    pub annotator: String,
    pub item_id: ItemId,
    pub first: Value,
    pub retest: Value,
    /// When the retest was answered (database clock, ms).
    pub retested_at: i64,
}

/// Retests of a project: scheduled, waiting for their delay, served and answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetestCounts {
    pub scheduled: i64,
    pub waiting: i64,
    pub answered: i64,
}

impl Store {
    /// Every answered retest of the project with the annotator's first label of the item
    /// (both labels, not "unsure"), by annotator and item.
    pub async fn retest_pairs(&self, project_id: ProjectId) -> Result<Vec<RetestPair>> {
        let rows = self
            .read_rows(
                stmt(
                    "SELECT r.user_id, u.username, r.item_id, f.answer AS first_answer, \
                    s.answer AS retest_answer, s.created_at AS retested_at \
             FROM assignments r \
             JOIN annotations s ON s.id = r.annotation_id \
             JOIN users u ON u.id = r.user_id \
             JOIN annotations f ON f.id = ( \
                 SELECT MIN(a.annotation_id) FROM assignments a \
                 WHERE a.item_id = r.item_id AND a.user_id = r.user_id \
                   AND a.purpose IN ('label', 'gold') AND a.status = 'submitted') \
             WHERE r.project_id = $1 AND r.purpose = 'retest' AND r.status = 'submitted' \
               AND s.kind = 'label' AND f.kind = 'label' \
             ORDER BY u.username, r.item_id, r.id",
                )
                .bind(project_id),
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(RetestPair {
                    annotator_id: row.col("user_id")?,
                    annotator: row.col("username")?,
                    item_id: row.col("item_id")?,
                    first: parse_json(&row.col::<String>("first_answer")?, "answer")?,
                    retest: parse_json(&row.col::<String>("retest_answer")?, "answer")?,
                    retested_at: row.col("retested_at")?,
                })
            })
            .collect()
    }

    /// How many retests the project has scheduled, how many wait for their delay and how
    /// many were answered.
    pub async fn retest_counts(&self, project_id: ProjectId) -> Result<RetestCounts> {
        let now = self.database_now().await?;
        let statement = stmt(
            "SELECT COUNT(*) AS scheduled, \
                    COALESCE(SUM(CASE WHEN status = 'assigned' AND available_at > $2 THEN 1 ELSE 0 END), 0) AS waiting, \
                    COALESCE(SUM(CASE WHEN status = 'submitted' THEN 1 ELSE 0 END), 0) AS answered \
             FROM assignments WHERE project_id = $1 AND purpose = 'retest'",
        )
        .bind(project_id)
        .bind(now);
        let row = self.read_one(statement).await?;
        Ok(RetestCounts {
            scheduled: row.col("scheduled")?,
            waiting: row.col("waiting")?,
            answered: row.col("answered")?,
        })
    }
}
