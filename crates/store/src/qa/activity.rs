//! Throughput: labels per day and per annotator.

use crate::Store;
use crate::conn::{Columns, stmt};
use crate::error::Result;
use crate::ids::ProjectId;
use crate::model::AccountKind;

impl Store {
    /// Annotations per UTC day (day number since the epoch), oldest first.
    pub async fn labels_per_day(&self, project_id: ProjectId) -> Result<Vec<(i64, i64)>> {
        let rows = self
            .read_rows(
                stmt(
                    "SELECT created_at / 86400000 AS day, COUNT(*) AS n FROM annotations \
             WHERE project_id = $1 GROUP BY created_at / 86400000 ORDER BY day",
                )
                .bind(project_id),
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.col("day")?, r.col("n")?)))
            .collect()
    }

    /// Annotations per annotator, most first, with the account kind.
    pub async fn labels_per_annotator(
        &self,
        project_id: ProjectId,
        limit: i64,
    ) -> Result<Vec<(String, AccountKind, i64)>> {
        let rows = self
            .read_rows(
                stmt(
                    // Counted per annotator id first, then named: grouping the joined rows by name
                    // sorted every label's text (twice as slow at 90k labels).
                    "SELECT u.username, u.kind, c.n FROM \
               (SELECT annotator_id, COUNT(*) AS n FROM annotations WHERE project_id = $1 \
                GROUP BY annotator_id) c \
             JOIN users u ON u.id = c.annotator_id ORDER BY c.n DESC, u.username LIMIT $2",
                )
                .bind(project_id)
                .bind(limit),
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.col("username")?, r.col("kind")?, r.col("n")?)))
            .collect()
    }
}
