//! Analysts' SQL: JSON API routes (under `/api/v1`).

use crate::AppState;
use crate::access::{ProjectAccess, need};
use crate::auth::Auth;
use crate::error::AppResult;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use concord_store::NewSavedQuery;
use concord_store::sql::catalog::VIEWS;
use serde::Deserialize;
use serde_json::{Value, json};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/sql", post(run_query))
        .route("/sql/views", get(views))
        .route(
            "/projects/{slug}/sql/saved",
            get(list_saved).post(save_query),
        )
        .route(
            "/projects/{slug}/sql/saved/{name}",
            get(get_saved).delete(delete_saved),
        )
        .route("/projects/{slug}/sql/saved/{name}/run", post(run_saved))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryBody {
    query: String,
    /// Only this project (its slug); every project the caller may query otherwise.
    project: Option<String>,
    limit: Option<usize>,
}

async fn run_query(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<QueryBody>,
) -> AppResult<Json<Value>> {
    let answer = super::run(
        &state,
        &auth.user,
        body.project.as_deref(),
        &body.query,
        body.limit,
    )
    .await?;
    Ok(Json(json!(answer)))
}

async fn views(_auth: Auth) -> Json<Value> {
    Json(json!({ "views": VIEWS }))
}

async fn list_saved(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::QuerySql>,
) -> AppResult<Json<Value>> {
    Ok(Json(
        json!({ "saved": state.store.saved_queries(project.id).await? }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveBody {
    name: String,
    query: String,
}

async fn save_query(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::QuerySql>,
    Json(body): Json<SaveBody>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let saved = state
        .store
        .save_query(
            project.id,
            NewSavedQuery {
                name: body.name,
                query: body.query,
            },
            auth.user.id,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!(saved))))
}

async fn get_saved(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::QuerySql>,
    Path((_, name)): Path<(String, String)>,
) -> AppResult<Json<Value>> {
    Ok(Json(json!(
        state.store.saved_query(project.id, &name).await?
    )))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RunBody {
    limit: Option<usize>,
}

async fn run_saved(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::QuerySql>,
    Path((_, name)): Path<(String, String)>,
    body: Option<Json<RunBody>>,
) -> AppResult<Json<Value>> {
    let saved = state.store.saved_query(project.id, &name).await?;
    let limit = body.and_then(|Json(b)| b.limit);
    let answer = super::run(&state, &auth.user, Some(&project.slug), &saved.query, limit).await?;
    Ok(Json(json!(answer)))
}

async fn delete_saved(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::QuerySql>,
    Path((_, name)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    state.store.delete_saved_query(project.id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
