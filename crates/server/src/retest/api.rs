//! Test–retest: JSON API routes (under `/api/v1`).

use crate::AppState;
use crate::access::{ProjectAccess, need};
use crate::error::AppResult;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/projects/{slug}/retest", get(retest))
}

/// The retest plan in force and each question's consistency, for the project and for each
/// annotator.
async fn retest(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::ReadAnnotations>,
) -> AppResult<Json<Value>> {
    let report = super::report(&state, &project).await?;
    Ok(Json(json!({
        "plan": project.settings.queue.retest,
        "report": report,
    })))
}
