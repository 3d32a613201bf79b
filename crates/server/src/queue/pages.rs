//! Queue: page routes.

use super::progress;
use crate::AppState;
use crate::access::{ProjectAccess, ProjectPage, need};
use crate::auth::urlencode;
use crate::error::{AppError, AppResult, ErrorInfo};
use crate::guidelines::examples_by_category;
use crate::views::{ListQuery, base, capabilities, render};
use axum::Json;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use concord_store::ProjectId;
use concord_store::UserId;
use concord_store::{NextItem, Submission};
use minijinja::context;
use serde::Deserialize;
use serde_json::json;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/p/{slug}/label", get(label_page))
        .route("/p/{slug}/label/next", post(next_fragment))
        .route("/p/{slug}/label/submit", post(submit_and_next_fragment))
        .route("/p/{slug}/label/undo", post(undo_fragment))
        .route("/p/{slug}/my-work", get(my_work_page))
        .route("/p/{slug}/team", get(team_page))
        .route("/p/{slug}/team/{username}/resume", post(resume))
        .route("/p/{slug}/team/{username}/limits", post(limits))
}

async fn label_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::Annotate>,
) -> AppResult<Html<String>> {
    let schema = state.store.current_schema(project.id).await?;
    let guideline = match project.current_guideline_version_id {
        Some(id) => Some(state.store.guideline_by_id(id).await?),
        None => None,
    };
    let examples = guideline
        .as_ref()
        .map(|g| examples_by_category(&g.examples, &schema.definition))
        .unwrap_or_default();
    // Where the page keeps an answer that is not yet acknowledged: per project and person, so
    // a shared browser never sends one person's answer as another's.
    let pending_key = format!("concord.pending.{}.{}", project.slug, auth.user.id);
    render(
        &state,
        "label.html",
        context! {
            project, can => capabilities(role), schema => schema.definition,
            schema_version_id => schema.id, guideline, examples, pending_key,
            ..base(&auth)
        },
    )
}

/// Leases the next item and renders it (or says why there is none). POST: it reserves work.
async fn next_fragment(
    State(state): State<AppState>,
    ProjectPage { auth, project, .. }: ProjectPage<need::Annotate>,
) -> AppResult<Html<String>> {
    let next = state.store.next_item(&project, &auth.user).await?;
    item_fragment(&state, &project, auth.user.id, next).await
}

/// The label page's answer, stored with the next item leased in the same transaction:
/// `{outcome, next_html}`. Errors come as JSON, as the API gives them (the page keeps an
/// answer until it is acknowledged, and shows a refusal's message), not as an HTML page.
async fn submit_and_next_fragment(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::Annotate>,
    Json(mut submission): Json<Submission>,
) -> Response {
    if submission.guideline_version_id.is_none() {
        submission.guideline_version_id = project.current_guideline_version_id;
    }
    let reply = async {
        let (outcome, next) = state
            .store
            .submit_and_next(&project, &auth.user, submission)
            .await?;
        let Html(next_html) = item_fragment(&state, &project, auth.user.id, next).await?;
        AppResult::Ok(json!({"outcome": outcome, "next_html": next_html}))
    };
    match reply.await {
        Ok(reply) => Json(reply).into_response(),
        Err(e) => {
            let mut response = e.into_response();
            response.extensions_mut().remove::<ErrorInfo>();
            response
        }
    }
}

/// The label page's item slot: a leased item, or why there is none.
async fn item_fragment(
    state: &AppState,
    project: &concord_store::Project,
    user_id: UserId,
    next: NextItem,
) -> AppResult<Html<String>> {
    let progress = queue_progress(state, project.id, user_id).await?;
    let ctx = match next {
        NextItem::Leased(lease) => {
            let item = concord_store::BlindItem::from(lease.item);
            // Relative, so the browser's clock does not matter.
            let seconds_left = ((lease.expires_at - concord_store::system_now_ms()) / 1000).max(0);
            let calibration = lease.calibration;
            context! {
                status => "leased", item, expires_at => lease.expires_at, resumed => lease.resumed,
                seconds_left, progress, calibration,
                guideline_version_id => project.current_guideline_version_id,
            }
        }
        NextItem::Paused { reason } => context! { status => "paused", reason, progress },
        NextItem::CapReached { cap } => context! { status => "cap_reached", cap, progress },
        NextItem::Empty => context! { status => "empty", progress },
    };
    render(state, "label_item.html", ctx)
}

#[derive(Deserialize)]
struct UndoForm {
    annotation_id: i64,
}

/// The label page's undo: the item of the annotator's latest answer again, with that answer
/// to pre-fill the form; what they submit then is a correction of it (`queue/correct`). When
/// the answer can no longer be undone, the fragment says why (409).
async fn undo_fragment(
    State(state): State<AppState>,
    ProjectPage { auth, project, .. }: ProjectPage<need::Annotate>,
    Form(form): Form<UndoForm>,
) -> AppResult<(StatusCode, Html<String>)> {
    let answer = match state
        .store
        .undoable_answer(project.id, auth.user.id, form.annotation_id)
        .await
    {
        Ok(answer) => answer,
        Err(concord_store::StoreError::Conflict(reason)) => {
            let ctx = context! { status => "undo_refused", reason };
            return Ok((
                StatusCode::CONFLICT,
                render(&state, "label_item.html", ctx)?,
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let item = concord_store::BlindItem::from(state.store.item(project.id, answer.item_id).await?);
    let progress = queue_progress(&state, project.id, auth.user.id).await?;
    let ctx = context! {
        status => "correcting", item, progress, answer,
        guideline_version_id => project.current_guideline_version_id,
    };
    Ok((StatusCode::OK, render(&state, "label_item.html", ctx)?))
}

/// The label page's progress line: what this person did today and what the queue still holds.
async fn queue_progress(
    state: &AppState,
    project_id: ProjectId,
    user_id: UserId,
) -> AppResult<minijinja::Value> {
    let done_today = match state.store.annotator_progress(project_id, user_id).await {
        Ok(found) => found.done_today,
        Err(concord_store::StoreError::NotFound(_)) => 0,
        Err(e) => return Err(e.into()),
    };
    let left = state.store.queue_overview(project_id).await?.open_items;
    Ok(context! { done_today, left })
}

async fn my_work_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::Annotate>,
    Query(list): Query<ListQuery>,
) -> AppResult<Html<String>> {
    // Someone who never took work here (a manager trying the page) has no progress yet.
    let progress = match state
        .store
        .annotator_progress(project.id, auth.user.id)
        .await
    {
        Ok(found) => Some(progress::progress_json(&found, &project.settings.queue)),
        Err(concord_store::StoreError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let found: Vec<_> = state
        .store
        .my_work(&project, auth.user.id, 500)
        .await?
        .into_iter()
        .filter(|a| {
            let answer = a.answer.to_string();
            list.matches(&[&a.title, &a.item_type, &answer])
        })
        .collect();
    let (annotations, pager) = list.page(found);
    render(
        &state,
        "my_work.html",
        context! { project, can => capabilities(role), progress, annotations, pager, ..base(&auth) },
    )
}

async fn team_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::ManageAnnotators>,
    Query(list): Query<ListQuery>,
) -> AppResult<Html<String>> {
    let team = state
        .store
        .team_progress_page(project.id, &list.request())
        .await?;
    let pager = list.pager(&team);
    let shown = team.rows;
    let settings = &project.settings.queue;
    let annotators = progress::team_json(&shown, settings);
    let queue = state.store.queue_overview(project.id).await?;
    render(
        &state,
        "team.html",
        context! { project, can => capabilities(role), annotators, queue, settings, pager, ..base(&auth) },
    )
}

fn back_to_team(slug: &str, username: &str) -> Redirect {
    Redirect::to(&format!("/p/{slug}/team#annotator-{}", urlencode(username)))
}

async fn resume(
    State(state): State<AppState>,
    ProjectPage { auth, project, .. }: ProjectPage<need::ManageAnnotators>,
    Path((slug, username)): Path<(String, String)>,
) -> AppResult<Redirect> {
    let annotator = state.store.user_by_name(&username).await?;
    state
        .store
        .resume_annotator(project.id, annotator.id, auth.user.id)
        .await?;
    Ok(back_to_team(&slug, &username))
}

#[derive(Deserialize)]
struct LimitsForm {
    #[serde(default)]
    daily_cap: String,
    #[serde(default)]
    excluded_categories: String,
}

async fn limits(
    State(state): State<AppState>,
    ProjectPage { auth, project, .. }: ProjectPage<need::ManageAnnotators>,
    Path((slug, username)): Path<(String, String)>,
    Form(form): Form<LimitsForm>,
) -> AppResult<Redirect> {
    let annotator = state.store.user_by_name(&username).await?;
    let cap = form.daily_cap.trim();
    let daily_cap = if cap.is_empty() {
        None
    } else {
        Some(cap.parse::<i64>().map_err(|_| {
            AppError::new(StatusCode::UNPROCESSABLE_ENTITY, format!(
                "daily cap: {cap:?} is not a whole number (leave it empty for the project's cap)"
            ))
        })?)
    };
    let excluded: Vec<String> = form
        .excluded_categories
        .split([',', ' ', '\n', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    state
        .store
        .set_annotator_limits(project.id, annotator.id, daily_cap, excluded, auth.user.id)
        .await?;
    Ok(back_to_team(&slug, &username))
}
