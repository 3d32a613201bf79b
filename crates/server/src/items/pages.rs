//! Items: page routes.

use super::*;
use crate::AppState;
use crate::access::{ProjectPage, need};
use crate::error::AppResult;
use crate::views::{base, capabilities, render};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Html;
use axum::routing::get;
use concord_store::{ItemState, Permission, item_types};
use minijinja::context;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/p/{slug}/items", get(items_page))
        .route("/p/{slug}/items/{id}", get(item_page))
        .route("/p/{slug}/import", get(import_page))
        .route(
            "/p/{slug}/import/foreign",
            axum::routing::post(foreign_import),
        )
}

async fn items_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::BrowseItems>,
    Query(q): Query<ItemQuery>,
) -> AppResult<Html<String>> {
    let filter = q.filter()?;
    let page = state.store.items_page(project.id, &filter).await?;
    // The query string for "next page" keeps the filters.
    let mut keep = Vec::new();
    let state_filter = filter.state.map(|s| s.as_str().to_owned());
    for (key, value) in [
        ("type", &filter.item_type),
        ("state", &state_filter),
        ("q", &filter.text),
        ("gold", &q.gold),
        ("min_priority", &q.min_priority),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            keep.push(format!("{key}={}", crate::auth::urlencode(v)));
        }
    }
    let filters_qs = keep.join("&");
    let states: Vec<&str> = ItemState::ALL.iter().map(|s| s.as_str()).collect();
    render(
        &state,
        "items.html",
        context! {
            project, can => capabilities(role), page, filters_qs, types => item_types(), states,
            f => context! { item_type => filter.item_type, state => filter.state, q => filter.text, gold => q.gold, min_priority => q.min_priority },
            first_page => filter.after.is_none(),
            ..base(&auth)
        },
    )
}

async fn item_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::BrowseItems>,
    Path((_, id)): Path<(String, i64)>,
) -> AppResult<Html<String>> {
    let item = state.store.item(project.id, id).await?;
    let (annotations, consensus, adjudications, escalations) =
        if role.allows(Permission::ReadAnnotations) {
            (
                state.store.item_annotations(item.id).await?,
                state.store.item_consensus(item.id).await?,
                state.store.item_adjudications(item.id).await?,
                state.store.item_escalations(item.id, auth.user.id).await?,
            )
        } else {
            Default::default()
        };
    render(
        &state,
        "item.html",
        context! {
            project, can => capabilities(role), item, annotations, consensus, adjudications,
            escalations, ..base(&auth)
        },
    )
}

async fn import_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::ImportItems>,
) -> AppResult<Html<String>> {
    let jobs = state.store.project_jobs(project.id, 10).await?;
    render(
        &state,
        "import.html",
        context! { project, can => capabilities(role), jobs, item_types => item_types(), ..base(&auth) },
    )
}

/// The import page's "from another tool" form: the file as the body, the report (or the
/// reason nothing was imported) as a fragment for the page.
async fn foreign_import(
    State(state): State<AppState>,
    ProjectPage { auth, project, .. }: ProjectPage<need::ImportItems>,
    Query(q): Query<super::foreign::ForeignQuery>,
    body: axum::body::Bytes,
) -> AppResult<Html<String>> {
    let (report, error) =
        match super::foreign::import(&state, &project, auth.user.id, &q, &body).await {
            Ok(report) => (Some(serde_json::json!(report)), None),
            Err(e) => {
                let report = e.details.as_ref().and_then(|d| d.get("report")).cloned();
                (report, Some(e.message))
            }
        };
    render(
        &state,
        "_foreign_report.html",
        context! { project, report, error },
    )
}
