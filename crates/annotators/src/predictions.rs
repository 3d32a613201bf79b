//! Predictions in: a model's imported predictions sampled for human review by predicted
//! class × score band (`concord_stats::predictions` draws; the store records each item's
//! inclusion probability and raises it in the queue), and, once people have labelled the
//! sample, the model's precision and recall per class estimated with inverse-probability
//! weights and intervals.

use concord_stats::predictions::{
    ClassEstimate, SampledUnit, majority_class, precision_recall, score_band, stratified_draw,
};
use concord_store::ItemId;
use concord_store::{
    NewPredictionSample, PredictionSample, Project, SampledItem, Store, StoreError,
};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum PredictionsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
}

/// How to sample: `size` items over `bands` equal-width score bands, drawn with `seed`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRequest {
    pub size: usize,
    pub bands: usize,
    pub seed: u64,
}

impl SampleRequest {
    pub fn check(&self) -> Result<(), PredictionsError> {
        if self.size == 0 {
            return Err(PredictionsError::Invalid(
                "the sample size must be at least 1".into(),
            ));
        }
        if !(1..=20).contains(&self.bands) {
            return Err(PredictionsError::Invalid(
                "bands must be between 1 and 20".into(),
            ));
        }
        Ok(())
    }
}

/// The stratum name of a predicted class and score band.
fn stratum_name(label: &str, band: usize, bands: usize) -> String {
    let width = 1.0 / bands as f64;
    format!(
        "{label} | {:.2}–{:.2}",
        band as f64 * width,
        (band + 1) as f64 * width
    )
}

/// Draws a stratified sample of `model`'s predictions and records it.
pub async fn sample_predictions(
    store: &Store,
    project: &Project,
    model: &str,
    request: SampleRequest,
) -> Result<PredictionSample, PredictionsError> {
    request.check()?;
    let predictions = store.predictions(project.id, model).await?;
    if predictions.is_empty() {
        return Err(PredictionsError::Invalid(format!(
            "no predictions imported for model {model:?}"
        )));
    }
    let mut strata: BTreeMap<(String, usize), Vec<i64>> = BTreeMap::new();
    for p in &predictions {
        let band = score_band(p.score, request.bands);
        strata
            .entry((p.label.clone(), band))
            .or_default()
            .push(p.item_id.get());
    }
    let sizes: Vec<usize> = strata.values().map(Vec::len).collect();
    let draw = stratified_draw(&sizes, request.size, request.seed);
    let mut items = Vec::new();
    for (h, ((label, band), members)) in strata.iter().enumerate() {
        let stratum = stratum_name(label, *band, request.bands);
        items.extend(draw.picked[h].iter().map(|pos| SampledItem {
            item_id: ItemId(members[*pos]),
            stratum: stratum.clone(),
            inclusion: draw.inclusion[h],
        }));
    }
    let new = NewPredictionSample {
        model: model.to_owned(),
        size: request.size as i64,
        bands: request.bands as i64,
        seed: request.seed,
        items,
    };
    Ok(store.create_prediction_sample(project, new).await?)
}

/// The estimate from a model's latest sample.
#[derive(Debug, Clone, Serialize)]
pub struct PredictionReport {
    pub model: String,
    pub sample: PredictionSample,
    /// Sampled items with a human class (a majority among current human labels).
    pub labelled: usize,
    pub confidence: f64,
    pub classes: Vec<ClassEstimate>,
}

/// Precision and recall per class from the model's latest sample, at 95 % confidence.
pub async fn prediction_report(
    store: &Store,
    project: &Project,
    model: &str,
) -> Result<PredictionReport, PredictionsError> {
    let sample = store
        .latest_prediction_sample(project.id, model)
        .await?
        .ok_or_else(|| {
            PredictionsError::Invalid(format!(
                "no sample of {model:?}'s predictions yet; draw one with \
                 `concord model predictions sample`"
            ))
        })?;
    let rows = store.prediction_sample_units(project.id, &sample).await?;
    let units: Vec<SampledUnit> = rows
        .iter()
        .map(|r| SampledUnit {
            stratum: r.stratum.clone(),
            inclusion: r.inclusion,
            predicted: r.predicted.clone(),
            truth: majority_class(&r.human_labels),
        })
        .collect();
    let confidence = 0.95;
    Ok(PredictionReport {
        model: model.to_owned(),
        labelled: units.iter().filter(|u| u.truth.is_some()).count(),
        classes: precision_recall(&units, confidence),
        sample,
        confidence,
    })
}
