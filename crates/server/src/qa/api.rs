//! Qa: JSON API routes (under `/api/v1`).

use crate::AppState;
use crate::access::{ProjectAccess, need};
use crate::error::{AppError, AppResult};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use concord_store::EscalationStatus;
use concord_store::ItemId;
use serde::Deserialize;
use serde_json::{Value, json};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/projects/{slug}/consensus", post(start_consensus))
        .route("/projects/{slug}/quality", get(quality))
        .route("/projects/{slug}/escalations", get(escalations))
        .route("/projects/{slug}/items/{id}/consensus", get(item_consensus))
        .route("/projects/{slug}/items/{id}/adjudication", post(adjudicate))
        .route("/projects/{slug}/precedents", get(precedents))
}

async fn start_consensus(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::ReadAnnotations>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let job = super::start_consensus_job(&state, project, auth.user.id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!(job))))
}

/// The latest consensus run with its quality report (`run` is null before the first).
async fn quality(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::ReadAnnotations>,
) -> AppResult<Json<Value>> {
    let run = state.store.latest_consensus_run(project.id).await?;
    let annotators: Vec<Value> = state
        .store
        .annotator_quality(project.id)
        .await?
        .into_iter()
        .map(|(name, q)| {
            let mut row = json!(q);
            row["annotator"] = json!(name);
            row
        })
        .collect();
    let (open, overdue, resolved) = state.store.escalation_counts(project.id).await?;
    let (adjudicated, overturned) = state.store.adjudication_counts(project.id).await?;
    let overlap = concord_qa::overlap_savings(&state.store, &project).await?;
    Ok(Json(json!({
        "run": run,
        "annotators": annotators,
        "overlap_savings": overlap,
        "escalations": {"open": open, "overdue": overdue, "resolved": resolved},
        "adjudications": {"total": adjudicated, "overturned": overturned},
    })))
}

#[derive(Deserialize)]
struct EscalationsQuery {
    #[serde(default = "open_status")]
    status: String,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn open_status() -> String {
    "open".into()
}

fn default_limit() -> i64 {
    100
}

async fn escalations(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::ReadAnnotations>,
    Query(q): Query<EscalationsQuery>,
) -> AppResult<Json<Value>> {
    let Some(status) = EscalationStatus::parse(&q.status) else {
        return Err(AppError::bad_request(format!(
            "status must be open or resolved, not {:?}",
            q.status
        )));
    };
    let list = state
        .store
        .escalations(project.id, status, auth.user.id, q.limit.clamp(1, 1000))
        .await?;
    Ok(Json(json!({ "escalations": list })))
}

async fn item_consensus(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::ReadAnnotations>,
    Path((_, id)): Path<(String, ItemId)>,
) -> AppResult<Json<Value>> {
    let item = state.store.item(project.id, id).await?;
    Ok(Json(json!({
        "item_id": item.id,
        "state": item.state,
        "consensus": state.store.item_consensus(item.id).await?,
        "escalations": state.store.item_escalations(item.id, auth.user.id).await?,
        "adjudications": state.store.item_adjudications(item.id).await?,
    })))
}

async fn adjudicate(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::Adjudicate>,
    Path((_, id)): Path<(String, ItemId)>,
    Json(decision): Json<concord_store::NewAdjudication>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let adjudication = state
        .store
        .adjudicate(project.id, id, auth.user.id, decision)
        .await?;
    Ok((StatusCode::CREATED, Json(json!(adjudication))))
}

async fn precedents(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::ViewProject>,
    Query(filter): Query<concord_store::PrecedentFilter>,
) -> AppResult<Json<Value>> {
    let list = state.store.precedents(project.id, &filter).await?;
    Ok(Json(json!({ "precedents": list })))
}
