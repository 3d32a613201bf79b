//! Automated annotators: JSON API routes (under `/api/v1`).

use super::{add_model as configure, start_run as start};
use crate::AppState;
use crate::access::{ProjectAccess, need};
use crate::error::AppResult;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use concord_store::{ModelKind, NewModelAnnotator};
use serde::Deserialize;
use serde_json::{Value, json};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/projects/{slug}/models", get(list_models).post(add_model))
        .route("/projects/{slug}/models/{model}/enable", post(enable_model))
        .route(
            "/projects/{slug}/models/{model}/disable",
            post(disable_model),
        )
        .route("/projects/{slug}/models/{model}/run", post(start_run))
}

async fn list_models(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::EditSettings>,
) -> AppResult<Json<Value>> {
    let mut models = Vec::new();
    for model in state.store.model_annotators(project.id).await? {
        let runs = state.store.model_runs(model.id, 1).await?;
        let totals = state.store.model_totals(model.id).await?;
        models.push(json!({"model": model, "last_run": runs.first(), "totals": totals}));
    }
    Ok(Json(json!({"models": models})))
}

/// A model to configure; the API key is never sent, only the name of its variable.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelRequest {
    name: String,
    kind: ModelKind,
    #[serde(default)]
    base_url: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    api_key_env: String,
    temperature: Option<f64>,
    max_concurrency: Option<i64>,
    rate_per_minute: Option<i64>,
    timeout_ms: Option<i64>,
    #[serde(default)]
    prompt_template: String,
    #[serde(default)]
    rules: String,
    price_in_per_1k: Option<f64>,
    price_out_per_1k: Option<f64>,
}

async fn add_model(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::EditSettings>,
    Json(request): Json<ModelRequest>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let mut new = NewModelAnnotator::new(&request.name, request.kind);
    new.base_url = request.base_url;
    new.model = request.model;
    new.api_key_env = request.api_key_env;
    new.temperature = request.temperature.unwrap_or(new.temperature);
    new.max_concurrency = request.max_concurrency.unwrap_or(new.max_concurrency);
    new.rate_per_minute = request.rate_per_minute;
    new.timeout_ms = request.timeout_ms.unwrap_or(new.timeout_ms);
    new.prompt_template = request.prompt_template;
    new.rules = request.rules;
    new.price_in_per_1k = request.price_in_per_1k.unwrap_or(0.0);
    new.price_out_per_1k = request.price_out_per_1k.unwrap_or(0.0);
    let created = configure(&state, &project, new, auth.user.id).await?;
    Ok((StatusCode::CREATED, Json(json!({"model": created}))))
}

async fn enable_model(
    State(state): State<AppState>,
    access: ProjectAccess<need::EditSettings>,
    Path((_, name)): Path<(String, String)>,
) -> AppResult<Json<Value>> {
    set_enabled(&state, access, &name, true).await
}

async fn disable_model(
    State(state): State<AppState>,
    access: ProjectAccess<need::EditSettings>,
    Path((_, name)): Path<(String, String)>,
) -> AppResult<Json<Value>> {
    set_enabled(&state, access, &name, false).await
}

async fn set_enabled(
    state: &AppState,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::EditSettings>,
    name: &str,
    enabled: bool,
) -> AppResult<Json<Value>> {
    let model = state
        .store
        .set_model_enabled(project.id, name, enabled, Some(auth.user.id))
        .await?;
    Ok(Json(json!({"model": model})))
}

/// Starts a run as a background job; its row shows done, failures, tokens and cost.
async fn start_run(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::EditSettings>,
    Path((_, name)): Path<(String, String)>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let job = start(&state, &project, &name, auth.user.id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"job": job}))))
}
