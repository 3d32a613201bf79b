//! A model's imported predictions (`POST` a CSV or JSONL body), stratified samples for
//! review, the precision / recall report, and the human labels model-assisted overlap saved.

use crate::AppState;
use crate::access::{ProjectAccess, need};
use crate::error::{AppError, AppResult};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use concord_annotators::predictions::{
    PredictionsError, SampleRequest, prediction_report, sample_predictions,
};
use concord_formats::predictions::read_predictions;
use serde::Deserialize;
use serde_json::{Value, json};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/projects/{slug}/predictions", get(list_prediction_models))
        .route("/projects/{slug}/predictions/{model}", post(import))
        .route("/projects/{slug}/predictions/{model}/sample", post(sample))
        .route("/projects/{slug}/predictions/{model}/report", get(report))
        .route("/projects/{slug}/queue/model-assist", get(assist_savings))
}

impl From<PredictionsError> for AppError {
    fn from(error: PredictionsError) -> Self {
        match error {
            PredictionsError::Store(e) => e.into(),
            PredictionsError::Invalid(message) => AppError::bad_request(message),
        }
    }
}

async fn list_prediction_models(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::ReadAnnotations>,
) -> AppResult<Json<Value>> {
    let models = state.store.prediction_models(project.id).await?;
    Ok(Json(json!({"models": models})))
}

/// The body is the predictions file itself (CSV with a header, or JSONL).
async fn import(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::EditSettings>,
    Path((_, model)): Path<(String, String)>,
    body: Bytes,
) -> AppResult<(StatusCode, Json<Value>)> {
    let rows = read_predictions("request body", &body)
        .map_err(|e| AppError::bad_request(e.to_string()))?;
    let imported = state
        .store
        .import_predictions(&project, &model, rows)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"model": model, "imported": imported})),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleBody {
    size: usize,
    #[serde(default = "default_bands")]
    bands: usize,
    #[serde(default = "default_seed")]
    seed: u64,
}

fn default_bands() -> usize {
    4
}

fn default_seed() -> u64 {
    1
}

async fn sample(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::EditSettings>,
    Path((_, model)): Path<(String, String)>,
    Json(body): Json<SampleBody>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let request = SampleRequest {
        size: body.size,
        bands: body.bands,
        seed: body.seed,
    };
    let sample = sample_predictions(&state.store, &project, &model, request).await?;
    Ok((StatusCode::CREATED, Json(json!({"sample": sample}))))
}

async fn report(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::ReadAnnotations>,
    Path((_, model)): Path<(String, String)>,
) -> AppResult<Json<Value>> {
    let report = prediction_report(&state.store, &project, &model).await?;
    Ok(Json(json!({"report": report})))
}

async fn assist_savings(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::ReadAnnotations>,
) -> AppResult<Json<Value>> {
    let saved = state.store.model_assist_savings(project.id).await?;
    Ok(Json(json!({
        "enabled": project.settings.queue.model_assist.enabled,
        "items": saved.items,
        "labels_saved": saved.labels_saved,
    })))
}
