//! Guidelines: JSON API routes (under `/api/v1`).

use crate::AppState;
use crate::access::{ProjectAccess, need};
use crate::error::AppResult;
use crate::projects::api::PublishBody;
use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use concord_store::GuidelineExample;
use serde::Deserialize;
use serde_json::{Value, json};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/projects/{slug}/guidelines", get(guideline_versions))
        .route(
            "/projects/{slug}/guidelines/draft",
            put(save_guideline_draft),
        )
        .route(
            "/projects/{slug}/guidelines/publish",
            post(publish_guideline),
        )
        .route(
            "/projects/{slug}/guidelines/{version}",
            get(guideline_version),
        )
}

async fn guideline_versions(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::ViewProject>,
) -> AppResult<Json<Value>> {
    Ok(Json(json!({
        "current_version_id": project.current_guideline_version_id,
        "versions": state.store.guideline_versions(project.id).await?,
    })))
}

async fn guideline_version(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::ViewProject>,
    Path((_, version)): Path<(String, i64)>,
) -> AppResult<Json<Value>> {
    Ok(Json(
        json!({"version": state.store.guideline_version(project.id, version).await?}),
    ))
}

#[derive(Deserialize)]
struct GuidelineDraft {
    body: String,
    #[serde(default)]
    examples: Vec<GuidelineExample>,
    #[serde(default)]
    change_note: String,
}

async fn save_guideline_draft(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::EditGuidelines>,
    Json(draft): Json<GuidelineDraft>,
) -> AppResult<Json<Value>> {
    let version = state
        .store
        .save_guideline_draft(
            project.id,
            &draft.body,
            &draft.examples,
            &draft.change_note,
            Some(auth.user.id),
        )
        .await?;
    Ok(Json(json!({"version": version})))
}

async fn publish_guideline(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::EditGuidelines>,
    body: Option<Json<PublishBody>>,
) -> AppResult<Json<Value>> {
    let note = body.and_then(|Json(b)| b.change_note);
    let version = state
        .store
        .publish_guideline(project.id, note.as_deref(), Some(auth.user.id))
        .await?;
    let calibration_repeat =
        crate::calibration::after_guideline_published(&state, &project.slug, auth.user.id).await;
    Ok(Json(
        json!({"version": version, "calibration_repeat": calibration_repeat}),
    ))
}
