//! Queue: JSON API routes (under `/api/v1`).

use super::progress;
use crate::AppState;
use crate::access::{ProjectAccess, need};
use crate::error::{AppError, AppResult};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use concord_store::ItemId;
use concord_store::{AssignmentPurpose, NewAnnotation, Submission};
use serde::Deserialize;
use serde_json::{Value, json};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/projects/{slug}/queue/next", post(queue_next))
        .route("/projects/{slug}/queue/submit", post(queue_submit))
        .route("/projects/{slug}/queue/skip", post(queue_skip))
        .route("/projects/{slug}/queue/undo", post(queue_undo))
        .route("/projects/{slug}/queue/correct", post(queue_correct))
        .route("/projects/{slug}/queue/mine", get(queue_mine))
        .route("/projects/{slug}/queue/team", get(queue_team))
        .route(
            "/projects/{slug}/annotators/{username}/resume",
            post(resume_annotator),
        )
        .route(
            "/projects/{slug}/annotators/{username}/limits",
            put(set_annotator_limits),
        )
        .route("/projects/{slug}/assignments", post(assign_again))
}

/// What the annotator's client needs to show the next item: the item (blind), the lease
/// expiry, and the versions to record with the answer.
/// The answer to "next item". A served item is serialised straight from the lease: through
/// a `Value` tree its JSON fields were copied twice more per request.
#[derive(serde::Serialize)]
#[serde(untagged)]
pub(crate) enum NextItemBody {
    Leased(Box<LeasedItemBody>),
    Other(Value),
}

#[derive(serde::Serialize)]
pub(crate) struct LeasedItemBody {
    status: &'static str,
    item: concord_store::BlindItem,
    expires_at: i64,
    resumed: bool,
    /// An item of a calibration round (announced; a retest is not).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    calibration: bool,
    guideline_version_id: Option<i64>,
    schema_version_id: Option<i64>,
}

pub(crate) fn next_item_body(
    project: &concord_store::Project,
    next: concord_store::NextItem,
) -> NextItemBody {
    use concord_store::NextItem;
    match next {
        NextItem::Leased(lease) => NextItemBody::Leased(Box::new(LeasedItemBody {
            status: "leased",
            expires_at: lease.expires_at,
            resumed: lease.resumed,
            calibration: lease.calibration,
            item: lease.item.into(),
            guideline_version_id: project.current_guideline_version_id,
            schema_version_id: project.current_schema_version_id,
        })),
        NextItem::Paused { reason } => {
            NextItemBody::Other(json!({"status": "paused", "reason": reason}))
        }
        NextItem::CapReached { cap } => {
            NextItemBody::Other(json!({"status": "cap_reached", "cap": cap}))
        }
        NextItem::Empty => NextItemBody::Other(json!({"status": "empty"})),
    }
}

async fn queue_next(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::Annotate>,
) -> AppResult<Json<NextItemBody>> {
    let next = state.store.next_item(&project, &auth.user).await?;
    Ok(Json(next_item_body(&project, next)))
}

/// `?next=true`: the annotator's next item comes back with the outcome, leased in the same
/// transaction (one request per answer instead of two).
#[derive(Deserialize)]
struct SubmitOptions {
    #[serde(default)]
    next: bool,
}

/// The answer to a submission: its outcome, and the next item when it was asked for.
#[derive(serde::Serialize)]
struct SubmitBody {
    outcome: concord_store::SubmitOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<NextItemBody>,
}

async fn queue_submit(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::Annotate>,
    Query(options): Query<SubmitOptions>,
    Json(mut body): Json<Submission>,
) -> AppResult<Json<SubmitBody>> {
    if body.guideline_version_id.is_none() {
        body.guideline_version_id = project.current_guideline_version_id;
    }
    if !options.next {
        let outcome = state.store.submit(&project, &auth.user, body).await?;
        return Ok(Json(SubmitBody {
            outcome,
            next: None,
        }));
    }
    let (outcome, next) = state
        .store
        .submit_and_next(&project, &auth.user, body)
        .await?;
    Ok(Json(SubmitBody {
        outcome,
        next: Some(next_item_body(&project, next)),
    }))
}

#[derive(Deserialize)]
pub(crate) struct UndoBody {
    pub(crate) annotation_id: i64,
}

/// Undo, first step: checks that the answer may still be undone and hands back the item
/// (blind) with the answer given, to be corrected through `queue/correct`. Writes nothing:
/// the answer stands until its correction arrives.
async fn queue_undo(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::Annotate>,
    Json(body): Json<UndoBody>,
) -> AppResult<Json<Value>> {
    let answer = state
        .store
        .undoable_answer(project.id, auth.user.id, body.annotation_id)
        .await?;
    let item = concord_store::BlindItem::from(state.store.item(project.id, answer.item_id).await?);
    Ok(Json(json!({"item": item, "answer": answer})))
}

/// Undo, second step: the corrected answer replaces the latest one (`supersedes` names it);
/// both stay in the history.
async fn queue_correct(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::Annotate>,
    Json(mut body): Json<NewAnnotation>,
) -> AppResult<Json<Value>> {
    if body.guideline_version_id.is_none() {
        body.guideline_version_id = project.current_guideline_version_id;
    }
    let corrected = state
        .store
        .correct_last_answer(project.id, auth.user.id, body)
        .await?;
    Ok(Json(json!({
        "outcome": {"annotation_id": corrected.id, "corrects": corrected.supersedes, "late": false, "replayed": false},
        "annotation": corrected,
    })))
}

#[derive(Deserialize)]
struct SkipBody {
    item_id: ItemId,
    reason: String,
}

async fn queue_skip(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::Annotate>,
    Json(body): Json<SkipBody>,
) -> AppResult<Json<Value>> {
    state
        .store
        .skip(&project, &auth.user, body.item_id, &body.reason)
        .await?;
    Ok(Json(json!({"skipped": body.item_id})))
}

async fn queue_mine(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::Annotate>,
) -> AppResult<Json<Value>> {
    let work = state.store.my_work(&project, auth.user.id, 200).await?;
    let progress = state
        .store
        .annotator_progress(project.id, auth.user.id)
        .await
        .ok()
        .as_ref()
        .map(|p| progress::progress_json(p, &project.settings.queue));
    Ok(Json(json!({"progress": progress, "annotations": work})))
}

async fn queue_team(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::ManageAnnotators>,
) -> AppResult<Json<Value>> {
    Ok(Json(json!({
        "annotators": progress::team_json(
            &state.store.team_progress(project.id).await?,
            &project.settings.queue,
        ),
        "queue": state.store.queue_overview(project.id).await?,
    })))
}

async fn resume_annotator(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::ManageAnnotators>,
    Path((_, username)): Path<(String, String)>,
) -> AppResult<Json<Value>> {
    let annotator = state.store.user_by_name(&username).await?;
    state
        .store
        .resume_annotator(project.id, annotator.id, auth.user.id)
        .await?;
    Ok(Json(json!({"resumed": username})))
}

#[derive(Deserialize)]
struct LimitsBody {
    daily_cap: Option<i64>,
    #[serde(default)]
    excluded_categories: Vec<String>,
}

async fn set_annotator_limits(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::ManageAnnotators>,
    Path((_, username)): Path<(String, String)>,
    Json(body): Json<LimitsBody>,
) -> AppResult<Json<Value>> {
    let annotator = state.store.user_by_name(&username).await?;
    state
        .store
        .set_annotator_limits(
            project.id,
            annotator.id,
            body.daily_cap,
            body.excluded_categories,
            auth.user.id,
        )
        .await?;
    Ok(Json(json!({"progress": progress::progress_json(
        &state.store.annotator_progress(project.id, annotator.id).await?,
        &project.settings.queue,
    )})))
}

#[derive(Deserialize)]
struct AssignBody {
    item_id: ItemId,
    username: String,
    purpose: String,
}

async fn assign_again(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::ManageAnnotators>,
    Json(body): Json<AssignBody>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let purpose = AssignmentPurpose::parse(&body.purpose).ok_or_else(|| {
        AppError::bad_request(format!(
            "purpose must be rereview or retest, not {:?}",
            body.purpose
        ))
    })?;
    let annotator = state.store.user_by_name(&body.username).await?;
    let id = state
        .store
        .assign_again(
            project.id,
            body.item_id,
            annotator.id,
            purpose,
            Some(auth.user.id),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"assignment_id": id}))))
}
