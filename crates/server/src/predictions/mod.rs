//! Predictions in and model-assisted overlap's saving: JSON API routes. Sampling and the
//! estimate are `concord-annotators`' (over `concord-stats`); the store keeps the records.

pub(crate) mod api;

use crate::AppState;
use crate::error::AppResult;
use concord_annotators::predictions::{PredictionsError, prediction_report};
use concord_store::Project;
use serde_json::{Value, json};

/// Each model with imported predictions and its estimate (or why there is none yet), for
/// the dashboard.
pub(crate) async fn dashboard_reports(
    state: &AppState,
    project: &Project,
) -> AppResult<Vec<Value>> {
    let mut out = Vec::new();
    for model in state.store.prediction_models(project.id).await? {
        match prediction_report(&state.store, project, &model).await {
            Ok(report) => out.push(json!({"model": model, "report": report})),
            Err(PredictionsError::Invalid(note)) => out.push(json!({"model": model, "note": note})),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}
