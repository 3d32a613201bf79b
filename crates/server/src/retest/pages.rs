//! Test–retest: page routes.

use crate::AppState;
use crate::access::{ProjectPage, need};
use crate::error::AppResult;
use crate::views::{base, capabilities, render};
use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use minijinja::context;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/p/{slug}/retest", get(retest_page))
}

async fn retest_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::ReadAnnotations>,
) -> AppResult<Html<String>> {
    let report = super::report(&state, &project).await?;
    let plan = project.settings.queue.retest.clone();
    render(
        &state,
        "retest.html",
        context! { project, can => capabilities(role), plan, report, ..base(&auth) },
    )
}
