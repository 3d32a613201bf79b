//! A model's imported predictions (`item, model, label, score`), the stratified samples
//! drawn from them for human review, and the humans' labels on a sample — what the
//! precision / recall estimate reads. The store keeps and reads these records; drawing the
//! sample and estimating are `concord-stats`' (through `concord-annotators`).
//!
//! A prediction's label is an option of the schema's first single-choice or ordinal
//! question (the *class question*).

use crate::Store;
use crate::conn::{Columns, Conn, stmt};
use crate::error::{Result, StoreError};
use crate::ids::ItemId;
use crate::ids::ProjectId;
use crate::model::{Id, Project};
use crate::schema::{LabelSchema, Question, QuestionKind};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// One prediction as read from a file (the reader's record), with its line for error
/// messages.
pub type PredictionRow = concord_formats::predictions::PredictionRecord;

/// A stored prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    pub item_id: ItemId,
    pub label: String,
    pub score: f64,
}

/// A sampled item to record: its stratum and inclusion probability.
#[derive(Debug, Clone, PartialEq)]
pub struct SampledItem {
    pub item_id: ItemId,
    pub stratum: String,
    pub inclusion: f64,
}

/// A new sample of a model's predictions.
#[derive(Debug, Clone)]
pub struct NewPredictionSample {
    pub model: String,
    pub size: i64,
    pub bands: i64,
    pub seed: u64,
    pub items: Vec<SampledItem>,
}

/// A recorded sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredictionSample {
    pub id: Id,
    pub model: String,
    pub question: String,
    pub size: i64,
    pub bands: i64,
    pub seed: i64,
    pub items: i64,
    /// Items served to people first (still collecting labels when the sample was drawn).
    pub queued_for_review: i64,
    pub created_at: i64,
}

/// A sampled item with the model's prediction and the humans' labels on the class question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleUnitRow {
    pub item_id: ItemId,
    pub external_id: String,
    pub stratum: String,
    pub inclusion: f64,
    pub predicted: String,
    pub score: f64,
    pub human_labels: Vec<String>,
}

/// The question a prediction's label answers: the first single-choice or ordinal one.
pub fn class_question(schema: &LabelSchema) -> Option<&Question> {
    schema
        .questions
        .iter()
        .find(|q| matches!(q.kind, QuestionKind::Single | QuestionKind::Ordinal))
}

fn line_error(line: u64, field: &str, message: impl std::fmt::Display) -> StoreError {
    StoreError::invalid(format!("line {line}: field {field}: {message}"))
}

/// What an imported row is checked against.
struct RowCheck<'a> {
    model: &'a str,
    question: &'a str,
    options: HashSet<&'a str>,
    items: HashMap<String, ItemId>,
    existing: HashMap<ItemId, Prediction>,
}

impl RowCheck<'_> {
    /// The row's (item, label, score) to insert; `None` when it is stored already.
    fn resolve(
        &self,
        row: &PredictionRow,
        seen: &mut HashSet<ItemId>,
    ) -> Result<Option<(Id, String, f64)>> {
        let model = self.model;
        if row.model != model {
            let message = format!(
                "{:?} is not the model being imported ({model:?})",
                row.model
            );
            return Err(line_error(row.line, "model", message));
        }
        let Some(&item_id) = self.items.get(&row.item) else {
            let message = format!("no item {:?} in this project", row.item);
            return Err(line_error(row.line, "item", message));
        };
        if !seen.insert(item_id) {
            let message = format!("item {:?} appears twice in the file", row.item);
            return Err(line_error(row.line, "item", message));
        }
        if let Some(stored) = self.existing.get(&item_id) {
            if stored.label == row.label && stored.score == row.score {
                return Ok(None);
            }
            let message = format!(
                "item {:?} already has a different prediction from {model:?}",
                row.item
            );
            return Err(line_error(row.line, "item", message));
        }
        if !self.options.contains(row.label.as_str()) {
            let message = format!(
                "{:?} is not an option of question {:?}",
                row.label, self.question
            );
            return Err(line_error(row.line, "label", message));
        }
        if !(0.0..=1.0).contains(&row.score) {
            return Err(line_error(row.line, "score", "must be between 0 and 1"));
        }
        Ok(Some((item_id.get(), row.label.clone(), row.score)))
    }
}

/// The queue priority given to sampled items still collecting labels, so people see them
/// before the rest of the queue.
pub const REVIEW_PRIORITY: i64 = 1_000_000;

impl Store {
    /// Imports `model`'s predictions, all or nothing: every row must name this model, an
    /// item of the project (once per file), an option of the class question and a score in
    /// [0, 1]. A prediction already stored unchanged is skipped (a retried import changes
    /// nothing); a different one for the same item is refused. The number imported.
    pub async fn import_predictions(
        &self,
        project: &Project,
        model: &str,
        rows: Vec<PredictionRow>,
    ) -> Result<i64> {
        let version = self.project_schema(project).await?;
        let question = class_question(&version.definition).ok_or_else(|| {
            StoreError::invalid("the project's schema has no single-choice or ordinal question")
        })?;
        let check = RowCheck {
            model,
            question: &question.key,
            options: question.options.iter().map(|o| o.value.as_str()).collect(),
            items: self.external_ids(project.id).await?,
            existing: self
                .predictions(project.id, model)
                .await?
                .into_iter()
                .map(|p| (p.item_id, p))
                .collect(),
        };
        let mut seen = HashSet::new();
        let mut resolved = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(new) = check.resolve(row, &mut seen)? {
                resolved.push(new);
            }
        }
        let (project_id, model) = (project.id, model.to_owned());
        let count = resolved.len() as i64;
        self.write_conn(move |mut c| {
            let resolved = resolved.clone();
            let model = model.clone();
            Box::pin(async move {
                let c = &mut c;
                for (item_id, label, score) in &resolved {
                    let statement = stmt(
                        "INSERT INTO model_predictions (project_id, model, item_id, label, score) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(project_id)
                    .bind(&model)
                    .bind(*item_id)
                    .bind(label)
                    .bind(*score);
                    c.execute(statement).await?;
                }
                Ok(())
            })
        })
        .await?;
        Ok(count)
    }

    async fn external_ids(&self, project_id: ProjectId) -> Result<HashMap<String, ItemId>> {
        let rows = self
            .read_rows(
                stmt("SELECT id, external_id FROM items WHERE project_id = $1").bind(project_id),
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.col("external_id")?, r.col("id")?)))
            .collect()
    }

    /// A model's predictions, by item id.
    pub async fn predictions(&self, project_id: ProjectId, model: &str) -> Result<Vec<Prediction>> {
        let rows = self
            .read_rows(
                stmt(
                    "SELECT item_id, label, score FROM model_predictions \
             WHERE project_id = $1 AND model = $2 ORDER BY item_id",
                )
                .bind(project_id)
                .bind(model),
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Prediction {
                    item_id: r.col("item_id")?,
                    label: r.col("label")?,
                    score: r.col("score")?,
                })
            })
            .collect()
    }

    /// Records a sample and raises its items still collecting labels to the review
    /// priority, in one transaction.
    pub async fn create_prediction_sample(
        &self,
        project: &Project,
        new: NewPredictionSample,
    ) -> Result<PredictionSample> {
        let version = self.project_schema(project).await?;
        let question = class_question(&version.definition)
            .map(|q| q.key.clone())
            .ok_or_else(|| StoreError::invalid("the project's schema has no class question"))?;
        let project_id = project.id;
        // Shared, not copied, by each run of the write (it may run more than once).
        let new = std::sync::Arc::new(new);
        let id = self
            .write_conn(move |mut c| {
                let question = question.clone();
                let new = new.clone();
                Box::pin(async move {
                    let c = &mut c;
                    let statement = stmt(
                        "INSERT INTO prediction_samples (project_id, model, question, size, bands, seed) \
                         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    )
                    .bind(project_id)
                    .bind(&new.model)
                    .bind(&question)
                    .bind(new.size)
                    .bind(new.bands)
                    .bind(new.seed as i64);
                    let row = c.fetch_one(statement)
                    .await?;
                    let id: Id = row.col("id")?;
                    add_sample_items(c, project_id, id, &new.items).await?;
                    Ok(id)
                })
            })
            .await?;
        self.prediction_sample(project_id, id).await
    }

    async fn prediction_sample(&self, project_id: ProjectId, id: Id) -> Result<PredictionSample> {
        let r = self
            .read_optional(
                stmt(
                    "SELECT s.id, s.model, s.question, s.size, s.bands, s.seed, s.created_at, \
               (SELECT COUNT(*) FROM prediction_sample_items x WHERE x.sample_id = s.id) AS items, \
               (SELECT COUNT(*) FROM prediction_sample_items x JOIN items i ON i.id = x.item_id \
                 WHERE x.sample_id = s.id AND i.priority >= $3 \
                   AND i.state IN ('queued', 'in_progress')) AS queued \
             FROM prediction_samples s WHERE s.project_id = $1 AND s.id = $2",
                )
                .bind(project_id)
                .bind(id)
                .bind(REVIEW_PRIORITY),
            )
            .await?
            .ok_or_else(|| StoreError::not_found(format!("prediction sample {id}")))?;
        Ok(PredictionSample {
            id: r.col("id")?,
            model: r.col("model")?,
            question: r.col("question")?,
            size: r.col("size")?,
            bands: r.col("bands")?,
            seed: r.col("seed")?,
            items: r.col("items")?,
            queued_for_review: r.col("queued")?,
            created_at: r.col("created_at")?,
        })
    }

    /// The model's latest sample, if it has one.
    pub async fn latest_prediction_sample(
        &self,
        project_id: ProjectId,
        model: &str,
    ) -> Result<Option<PredictionSample>> {
        let row = self
            .read_optional(
                stmt(
                    "SELECT id FROM prediction_samples WHERE project_id = $1 AND model = $2 \
             ORDER BY id DESC LIMIT 1",
                )
                .bind(project_id)
                .bind(model),
            )
            .await?;
        match row {
            Some(r) => Ok(Some(
                self.prediction_sample(project_id, r.col("id")?).await?,
            )),
            None => Ok(None),
        }
    }

    /// The models with imported predictions in a project, by name.
    pub async fn prediction_models(&self, project_id: ProjectId) -> Result<Vec<String>> {
        let statement = stmt(
            "SELECT DISTINCT model FROM model_predictions WHERE project_id = $1 ORDER BY model",
        )
        .bind(project_id);
        let rows = self.read_rows(statement).await?;
        rows.iter().map(|r| r.col("model")).collect()
    }

    /// A sample's items with the prediction and the human labels (current, not superseded)
    /// on the sample's class question.
    pub async fn prediction_sample_units(
        &self,
        project_id: ProjectId,
        sample: &PredictionSample,
    ) -> Result<Vec<SampleUnitRow>> {
        let rows = self
            .read_rows(
                stmt(
                    "SELECT x.item_id, i.external_id, x.stratum, x.inclusion, p.label, p.score \
             FROM prediction_sample_items x JOIN items i ON i.id = x.item_id \
             JOIN model_predictions p ON p.item_id = x.item_id AND p.project_id = $1 \
               AND p.model = $2 \
             WHERE x.sample_id = $3 ORDER BY x.item_id",
                )
                .bind(project_id)
                .bind(&sample.model)
                .bind(sample.id),
            )
            .await?;
        let mut labels = self.sample_human_labels(sample).await?;
        rows.iter()
            .map(|r| {
                let item_id: Id = r.col("item_id")?;
                Ok(SampleUnitRow {
                    item_id: ItemId(item_id),
                    external_id: r.col("external_id")?,
                    stratum: r.col("stratum")?,
                    inclusion: r.col("inclusion")?,
                    predicted: r.col("label")?,
                    score: r.col("score")?,
                    human_labels: labels.remove(&item_id).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// The human labels on a sample's items, the class question's value of each.
    async fn sample_human_labels(
        &self,
        sample: &PredictionSample,
    ) -> Result<HashMap<Id, Vec<String>>> {
        let rows = self
            .read_rows(
                stmt(
                    "SELECT a.item_id, a.answer FROM prediction_sample_items x \
             JOIN annotations a ON a.item_id = x.item_id \
             JOIN users u ON u.id = a.annotator_id \
             WHERE x.sample_id = $1 AND u.kind = 'human' AND a.kind = 'label' \
               AND NOT EXISTS (SELECT 1 FROM annotations b WHERE b.supersedes = a.id) \
             ORDER BY a.id",
                )
                .bind(sample.id),
            )
            .await?;
        let mut labels: HashMap<Id, Vec<String>> = HashMap::new();
        for r in &rows {
            let answer: String = r.col("answer")?;
            let value: serde_json::Value = serde_json::from_str(&answer)
                .map_err(|e| StoreError::invalid(format!("stored answer: {e}")))?;
            if let Some(code) = value.get(&sample.question).and_then(|v| v.as_str()) {
                labels
                    .entry(r.col("item_id")?)
                    .or_default()
                    .push(code.to_owned());
            }
        }
        Ok(labels)
    }
}

/// What model-assisted overlap saved in a project.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AssistSavings {
    /// Items finished early because a confident model label agreed with their humans.
    pub items: i64,
    /// Human labels those items were not asked for.
    pub labels_saved: i64,
}

impl Store {
    pub async fn model_assist_savings(&self, project_id: ProjectId) -> Result<AssistSavings> {
        let statement = stmt(
            "SELECT COUNT(*) AS items, CAST(COALESCE(SUM(assist_saved), 0) AS BIGINT) AS saved \
             FROM items \
             WHERE project_id = $1 AND assist_saved > 0",
        )
        .bind(project_id);
        let row = self.read_one(statement).await?;
        Ok(AssistSavings {
            items: row.col("items")?,
            labels_saved: row.col("saved")?,
        })
    }
}

/// The sample's items, each raised to the review priority while it still collects labels.
async fn add_sample_items(
    c: &mut Conn<'_>,
    project_id: ProjectId,
    sample_id: Id,
    items: &[SampledItem],
) -> Result<()> {
    for item in items {
        let statement = stmt(
            "INSERT INTO prediction_sample_items (sample_id, item_id, stratum, inclusion) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(sample_id)
        .bind(item.item_id)
        .bind(&item.stratum)
        .bind(item.inclusion);
        c.execute(statement).await?;
        let statement = stmt(
            "UPDATE items SET priority = $1 WHERE id = $2 AND priority < $1 \
               AND state IN ('queued', 'in_progress')",
        )
        .bind(REVIEW_PRIORITY)
        .bind(item.item_id);
        c.execute(statement).await?;
    }
    // Raised priorities move items forward in the queue's order.
    if !items.is_empty() {
        crate::queue::queue_reordered(c, project_id).await?;
    }
    Ok(())
}
