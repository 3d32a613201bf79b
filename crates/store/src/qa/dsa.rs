//! What a DSA statement of reasons is built from: the decisions in force made in a period,
//! each with its item's catalog facts and whether a model flagged the item. The statement
//! itself is `concord-qa`'s to build.

use super::adjudications::{ADJUDICATION_SELECT, adjudication_from_row};
use crate::Store;
use crate::conn::{Columns, stmt};
use crate::error::{Result, parse_json};
use crate::ids::ProjectId;
use serde_json::Value;

/// An expert's decision with the item facts a statement needs.
#[derive(Debug, Clone)]
pub struct DecisionFacts {
    pub adjudication: super::Adjudication,
    pub item_type: String,
    /// The item's catalog metadata (`markets`, `language`, `release_date`, …).
    pub metadata: Value,
    /// When the item entered the catalog (ms).
    pub item_created_at: i64,
    /// A model labelled or predicted the item (automated detection).
    pub model_flagged: bool,
}

impl Store {
    /// The project's decisions in force (not superseded) made in [`from_ms`, `to_ms`), oldest
    /// first.
    pub async fn decisions_in_period(
        &self,
        project_id: ProjectId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<DecisionFacts>> {
        let sql = format!(
            "SELECT d.*, i.item_type, i.metadata, i.created_at AS item_created_at, \
               CASE WHEN EXISTS (SELECT 1 FROM model_predictions p WHERE p.item_id = d.item_id) \
                 OR EXISTS (SELECT 1 FROM annotations m JOIN users mu ON mu.id = m.annotator_id \
                            WHERE m.item_id = d.item_id AND mu.kind = 'model') \
               THEN 1 ELSE 0 END AS model_flagged \
             FROM ({ADJUDICATION_SELECT}) d JOIN items i ON i.id = d.item_id \
             WHERE d.project_id = $1 AND d.created_at >= $2 AND d.created_at < $3 \
               AND d.superseded_count = 0 \
             ORDER BY d.created_at, d.id"
        );
        let rows = self
            .read_rows(stmt(&sql).bind(project_id).bind(from_ms).bind(to_ms))
            .await?;
        rows.iter()
            .map(|row| {
                Ok(DecisionFacts {
                    adjudication: adjudication_from_row(row)?,
                    item_type: row.col("item_type")?,
                    metadata: parse_json(&row.col::<String>("metadata")?, "item metadata")?,
                    item_created_at: row.col("item_created_at")?,
                    model_flagged: row.col::<i64>("model_flagged")? != 0,
                })
            })
            .collect()
    }
}
