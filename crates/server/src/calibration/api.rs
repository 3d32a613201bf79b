//! Calibration rounds: JSON API routes (under `/api/v1`).

use crate::AppState;
use crate::access::{ProjectAccess, need};
use crate::error::{AppError, AppResult};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use concord_qa::calibration::{self, RoundItems, RoundRequest};
use concord_store::Id;
use serde::Deserialize;
use serde_json::{Value, json};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/projects/{slug}/calibration",
            get(list_rounds).post(open_round),
        )
        .route("/projects/{slug}/calibration/{round}", get(round_report))
        .route(
            "/projects/{slug}/calibration/{round}/close",
            post(close_round),
        )
        .route(
            "/projects/{slug}/calibration/{round}/repeat",
            post(repeat_round),
        )
        .route(
            "/projects/{slug}/calibration/{round}/release",
            post(release_annotator),
        )
}

/// The project's rounds, newest first, and the settings new rounds take.
async fn list_rounds(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::ManageAnnotators>,
) -> AppResult<Json<Value>> {
    let rounds = state.store.calibration_rounds(project.id).await?;
    Ok(Json(json!({
        "settings": project.settings.qa.calibration,
        "current_guideline_version_id": project.current_guideline_version_id,
        "rounds": rounds,
    })))
}

/// A new round: `items` (external ids, served in that order) or `sample` (a count of the
/// project's items, settled ones first); `threshold` and `hold_until_verdict` default to
/// `settings.qa.calibration`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenBody {
    name: String,
    #[serde(default)]
    items: Option<Vec<String>>,
    #[serde(default)]
    sample: Option<usize>,
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    hold_until_verdict: Option<bool>,
}

impl OpenBody {
    fn into_request(self) -> Result<RoundRequest, AppError> {
        let items = match (self.items, self.sample) {
            (Some(ids), None) => RoundItems::External(ids),
            (None, Some(count)) => RoundItems::Sample(count),
            _ => {
                return Err(AppError::bad_request(
                    "give either items (external ids) or sample (a number of items)",
                ));
            }
        };
        Ok(RoundRequest {
            name: self.name,
            items,
            threshold: self.threshold,
            hold_until_verdict: self.hold_until_verdict,
        })
    }
}

async fn open_round(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::ManageAnnotators>,
    Json(body): Json<OpenBody>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let request = body.into_request()?;
    let round =
        calibration::open_round(&state.store, &project, request, Some(auth.user.id)).await?;
    Ok((StatusCode::CREATED, Json(json!({ "round": round }))))
}

/// The round's report: participants and their progress, the key, each annotator's agreement
/// with the key and the group per question and category, and the verdicts (provisional while
/// the round is open).
async fn round_report(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::ManageAnnotators>,
    Path((_, round)): Path<(String, Id)>,
) -> AppResult<Json<Value>> {
    let report = calibration::round_report(&state.store, &project, round).await?;
    Ok(Json(json!({ "report": report })))
}

async fn close_round(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::ManageAnnotators>,
    Path((_, round)): Path<(String, Id)>,
) -> AppResult<Json<Value>> {
    let report =
        calibration::close_round(&state.store, &project, round, Some(auth.user.id)).await?;
    Ok(Json(json!({ "report": report })))
}

async fn repeat_round(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::ManageAnnotators>,
    Path((_, round)): Path<(String, Id)>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let round =
        calibration::repeat_round(&state.store, &project, round, Some(auth.user.id)).await?;
    Ok((StatusCode::CREATED, Json(json!({ "round": round }))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseBody {
    username: String,
}

/// Releases an annotator the round holds from production work.
async fn release_annotator(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::ManageAnnotators>,
    Path((_, round)): Path<(String, Id)>,
    Json(body): Json<ReleaseBody>,
) -> AppResult<Json<Value>> {
    let annotator = state.store.user_by_name(&body.username).await?;
    state.store.calibration_round(project.id, round).await?;
    state
        .store
        .release_from_calibration(project.id, round, annotator.id, Some(auth.user.id))
        .await?;
    let participants = state
        .store
        .calibration_participants(project.id, round)
        .await?;
    Ok(Json(json!({ "participants": participants })))
}
