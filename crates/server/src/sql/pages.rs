//! Analysts' SQL: the SQL page (query box, the views beside it, results, saved queries) and
//! its CSV download.

use crate::AppState;
use crate::access::{ProjectPage, need};
use crate::error::{AppError, AppResult};
use crate::views::{base, capabilities, render};
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use concord_store::NewSavedQuery;
use concord_store::sql::catalog::VIEWS;
use minijinja::context;
use serde::Deserialize;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/p/{slug}/sql", get(sql_page))
        .route("/p/{slug}/sql/result.csv", get(sql_csv))
        .route("/p/{slug}/sql/saved", post(save_page))
        .route("/p/{slug}/sql/saved/{name}/delete", post(delete_page))
}

/// `q`: a query to run; `saved`: the name of a saved query to load and run.
#[derive(Deserialize, Default)]
struct SqlQuery {
    q: Option<String>,
    saved: Option<String>,
}

/// Rows shown on the page; the CSV download carries up to the row cap.
const PAGE_ROWS: usize = 1000;

async fn sql_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::QuerySql>,
    Query(query): Query<SqlQuery>,
) -> AppResult<(StatusCode, Html<String>)> {
    let saved = state.store.saved_queries(project.id).await?;
    let text = match (&query.q, &query.saved) {
        (Some(q), _) if !q.trim().is_empty() => Some(q.clone()),
        (_, Some(name)) => Some(state.store.saved_query(project.id, name).await?.query),
        _ => None,
    };
    let (mut status, mut answer, mut error, mut position) = (StatusCode::OK, None, None, None);
    if let Some(text) = &text {
        match super::run(
            &state,
            &auth.user,
            Some(&project.slug),
            text,
            Some(PAGE_ROWS),
        )
        .await
        {
            Ok(result) => answer = Some(result),
            Err(e) if e.status.is_client_error() => {
                status = e.status;
                position = e
                    .details
                    .as_ref()
                    .and_then(|d| d.get("position"))
                    .and_then(|p| p.as_u64());
                error = Some(e.message);
            }
            Err(e) => return Err(e),
        }
    }
    let html = render(
        &state,
        "sql.html",
        context! {
            project, can => capabilities(role), views => VIEWS, saved, query => text,
            saved_name => query.saved, answer, error, position,
            backend => format!("{:?}", state.store.backend()),
            row_cap => state.config.sql.row_cap, page_rows => PAGE_ROWS,
            ..base(&auth)
        },
    )?;
    Ok((status, html))
}

async fn sql_csv(
    State(state): State<AppState>,
    ProjectPage { auth, project, .. }: ProjectPage<need::QuerySql>,
    Query(query): Query<SqlQuery>,
) -> AppResult<Response> {
    let text = match (&query.q, &query.saved) {
        (Some(q), _) if !q.trim().is_empty() => q.clone(),
        (_, Some(name)) => state.store.saved_query(project.id, name).await?.query,
        _ => {
            return Err(AppError::bad_request(
                "give a query (q) or a saved query's name",
            ));
        }
    };
    let answer = super::run(&state, &auth.user, Some(&project.slug), &text, None).await?;
    let body = concord_formats::query_result::csv(&answer.columns, &answer.rows);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}-query.csv\"", project.slug),
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Deserialize)]
struct SaveForm {
    name: String,
    query: String,
}

async fn save_page(
    State(state): State<AppState>,
    ProjectPage { auth, project, .. }: ProjectPage<need::QuerySql>,
    Form(form): Form<SaveForm>,
) -> AppResult<Response> {
    let saved = state
        .store
        .save_query(
            project.id,
            NewSavedQuery {
                name: form.name,
                query: form.query,
            },
            auth.user.id,
        )
        .await?;
    let name = serde_urlencoded::to_string([("saved", saved.name.as_str())])
        .map_err(AppError::internal)?;
    Ok(Redirect::to(&format!("/p/{}/sql?{name}", project.slug)).into_response())
}

async fn delete_page(
    State(state): State<AppState>,
    ProjectPage { project, .. }: ProjectPage<need::QuerySql>,
    Path((_, name)): Path<(String, String)>,
) -> AppResult<Response> {
    state.store.delete_saved_query(project.id, &name).await?;
    Ok(Redirect::to(&format!("/p/{}/sql", project.slug)).into_response())
}
