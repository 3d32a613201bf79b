//! What dynamic (and model-assisted) overlap saved against the fixed overlap: the items
//! that stopped before it, the labels not asked for, and how those items fared when checked
//! later (gold, an expert's decision) and in the consensus. Counts only; the caller puts
//! intervals on them.

use super::parse_gold;
use crate::Store;
use crate::answer::matches_gold;
use crate::conn::{Columns, stmt};
use crate::error::{Result, parse_json};
use crate::ids::ItemId;
use crate::ids::ProjectId;
use crate::model::{Id, Project};
use crate::queue_rules::in_coverage;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

/// Labels saved against a fixed overlap, and how the items that stopped early fared.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct OverlapSavings {
    /// The project's overlap today: what every covered item would get if it were fixed.
    pub fixed_overlap: i64,
    /// Items decided with fewer labels than that (their votes agreed early, or a confident
    /// model agreed); items outside the coverage share, which get one label by design, are
    /// not among them.
    pub early_items: i64,
    /// Labels those items took.
    pub labels_used: i64,
    /// Labels they were not asked for: Σ (fixed overlap − labels).
    pub labels_saved: i64,
    /// Early items checked later: promoted to gold or decided by an expert.
    pub checked: i64,
    /// Of those, the items where most of their labels match the later answer.
    pub checked_agreeing: i64,
    /// Consensus confidence of the early items' (item, question) results in the latest
    /// run: their sum and count (the mean is the caller's).
    pub confidence_sum: f64,
    pub confidence_count: i64,
}

/// Stopped early (on `items i`, `$2` the fixed overlap): decided — labelled, or decided
/// later by an expert — with as many labels as the votes asked for, fewer than the fixed
/// overlap; or finished by a confident model's agreement.
const STOPPED_EARLY: &str = "(i.state = 'labelled' OR i.state = 'adjudicated') \
     AND i.labels_count > 0 AND i.labels_count < $2 \
     AND (i.labels_count = i.needed OR i.assist_saved > 0)";

impl Store {
    /// [`OverlapSavings`] of a project under its current queue settings.
    pub async fn overlap_savings(&self, project: &Project) -> Result<OverlapSavings> {
        let settings = &project.settings.queue;
        let fixed = settings.overlap;
        let rows = self
            .read_rows(
                stmt(format!(
                    "SELECT i.id, i.labels_count, i.assist_saved, i.is_gold, i.gold_answer, \
               (SELECT d.answer FROM adjudications d WHERE d.item_id = i.id \
                ORDER BY d.id DESC LIMIT 1) AS decided \
             FROM items i WHERE i.project_id = $1 AND {STOPPED_EARLY} ORDER BY i.id"
                ))
                .bind(project.id)
                .bind(fixed),
            )
            .await?;
        let mut savings = OverlapSavings {
            fixed_overlap: fixed,
            ..OverlapSavings::default()
        };
        let mut checks: HashMap<Id, Value> = HashMap::new();
        let mut early: Vec<Id> = Vec::new();
        for row in &rows {
            let id: Id = row.col("id")?;
            let labels: i64 = row.col("labels_count")?;
            let assisted = row.col::<i64>("assist_saved")? > 0;
            if !assisted && !in_coverage(ItemId(id), settings.coverage_percent) {
                continue;
            }
            savings.early_items += 1;
            savings.labels_used += labels;
            savings.labels_saved += fixed - labels;
            early.push(id);
            let gold = if row.col::<i64>("is_gold")? != 0 {
                parse_gold(row.col("gold_answer")?)?
            } else {
                Value::Null
            };
            let later = if gold.is_null() {
                match row.col::<Option<String>>("decided")? {
                    Some(text) => parse_json(&text, "adjudication answer")?,
                    None => Value::Null,
                }
            } else {
                gold
            };
            if !later.is_null() {
                checks.insert(id, later);
            }
        }
        savings.checked = checks.len() as i64;
        savings.checked_agreeing = self.agreeing_with_later(project.id, &checks).await?;
        let (sum, count) = self
            .consensus_confidence_of(project.id, fixed, &early)
            .await?;
        savings.confidence_sum = sum;
        savings.confidence_count = count;
        Ok(savings)
    }

    /// Of the checked items, those where most human labels match the later answer.
    async fn agreeing_with_later(
        &self,
        project_id: ProjectId,
        checks: &HashMap<Id, Value>,
    ) -> Result<i64> {
        if checks.is_empty() {
            return Ok(0);
        }
        let statement = stmt(
            "SELECT a.item_id, a.answer FROM annotations a JOIN users u ON u.id = a.annotator_id \
             WHERE a.project_id = $1 AND a.kind = 'label' AND u.kind = 'human' \
               AND a.source <> 'override' \
               AND (a.item_id IN (SELECT d.item_id FROM adjudications d WHERE d.project_id = $2) \
                    OR a.item_id IN (SELECT g.id FROM items g WHERE g.project_id = $3 AND g.is_gold = 1)) \
             ORDER BY a.item_id",
        )
        .bind(project_id)
        .bind(project_id)
        .bind(project_id);
        let rows = self.read_rows(statement).await?;
        let mut tally: HashMap<Id, (i64, i64)> = HashMap::new();
        for row in &rows {
            let item: Id = row.col("item_id")?;
            let Some(later) = checks.get(&item) else {
                continue;
            };
            let answer: Value = parse_json(&row.col::<String>("answer")?, "answer")?;
            let entry = tally.entry(item).or_default();
            entry.0 += 1;
            entry.1 += i64::from(matches_gold(&answer, later));
        }
        Ok(tally
            .values()
            .filter(|(labels, matching)| 2 * matching > *labels)
            .count() as i64)
    }

    /// Sum and count of the consensus confidences of these items' results.
    async fn consensus_confidence_of(
        &self,
        project_id: ProjectId,
        fixed: i64,
        items: &[Id],
    ) -> Result<(f64, i64)> {
        if items.is_empty() {
            return Ok((0.0, 0));
        }
        let statement = stmt(format!(
            "SELECT c.item_id, c.confidence FROM item_consensus c JOIN items i ON i.id = c.item_id \
             WHERE c.project_id = $1 AND c.confidence IS NOT NULL AND {STOPPED_EARLY} \
             ORDER BY c.item_id"
        ))
        .bind(project_id)
        .bind(fixed);
        let rows = self.read_rows(statement).await?;
        let mut sum = 0.0;
        let mut count = 0;
        for row in &rows {
            let item: Id = row.col("item_id")?;
            if items.binary_search(&item).is_ok() {
                sum += row.col::<f64>("confidence")?;
                count += 1;
            }
        }
        Ok((sum, count))
    }
}
