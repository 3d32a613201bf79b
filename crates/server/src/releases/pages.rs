//! Releases: page routes.

use crate::AppState;
use crate::access::{ProjectPage, need};
use crate::auth::Auth;
use crate::error::{AppError, AppResult};
use crate::views::{base, capabilities, render};
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use concord_store::{Project, Role};
use minijinja::context;
use serde::Deserialize;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route(
        "/p/{slug}/releases",
        get(releases_page).post(create_release_page),
    )
}

#[derive(Deserialize, Default)]
struct ReleasesQuery {
    from: Option<String>,
    to: Option<String>,
    /// Search over name, description, method and author; kept in the URL with the page.
    #[serde(default)]
    q: String,
    page: Option<usize>,
}

async fn releases_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::ReadAnnotations>,
    Query(query): Query<ReleasesQuery>,
) -> AppResult<(StatusCode, Html<String>)> {
    releases_view(&state, &auth, &project, role, query, None).await
}

async fn releases_view(
    state: &AppState,
    auth: &Auth,
    project: &Project,
    role: Role,
    query: ReleasesQuery,
    error: Option<(StatusCode, String)>,
) -> AppResult<(StatusCode, Html<String>)> {
    let releases = state.store.releases(project.id).await?;
    let list = crate::views::ListQuery {
        q: query.q.clone(),
        page: query.page,
    };
    let found: Vec<_> = releases
        .iter()
        .filter(|r| {
            let by = r.created_by.as_deref().unwrap_or("");
            list.matches(&[&r.name, &r.description, &r.method, by])
        })
        .cloned()
        .collect();
    let (shown, pager) = list.page(found);
    let keep = crate::views::kept_filters(&[
        ("from", query.from.as_deref().unwrap_or("")),
        ("to", query.to.as_deref().unwrap_or("")),
    ]);
    let schema = state.store.current_schema(project.id).await?;
    let diff = match (query.from.as_deref(), query.to.as_deref()) {
        (Some(from), Some(to)) if !from.is_empty() && !to.is_empty() => {
            let a = state.store.release(project.id, from).await?;
            let b = state.store.release(project.id, to).await?;
            Some(state.store.diff_releases(&a, &b).await?)
        }
        _ => None,
    };
    let has_run = state
        .store
        .latest_consensus_run(project.id)
        .await?
        .is_some();
    let (status, message) = match error {
        Some((status, message)) => (status, Some(message)),
        None => (StatusCode::OK, None),
    };
    let html = render(
        state,
        "releases.html",
        context! {
            project, can => capabilities(role), releases, shown, pager, keep, diff, has_run, error => message,
            schema => schema.definition, f => context! { from => query.from, to => query.to },
            ..base(auth)
        },
    )?;
    Ok((status, html))
}

#[derive(Deserialize)]
struct ReleaseForm {
    name: String,
    #[serde(default)]
    description: String,
}

async fn create_release_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::CreateReleases>,
    Path(slug): Path<String>,
    Form(form): Form<ReleaseForm>,
) -> AppResult<Response> {
    match concord_qa::create_release(
        &state.store,
        &project,
        &form.name,
        &form.description,
        Some(auth.user.id),
    )
    .await
    {
        Ok(release) => Ok(
            Redirect::to(&format!("/p/{slug}/releases#release-{}", release.name)).into_response(),
        ),
        Err(e) => {
            let e = AppError::from(e);
            if e.status.is_client_error() {
                Ok(releases_view(
                    &state,
                    &auth,
                    &project,
                    role,
                    ReleasesQuery::default(),
                    Some((e.status, e.message)),
                )
                .await?
                .into_response())
            } else {
                Err(e)
            }
        }
    }
}
