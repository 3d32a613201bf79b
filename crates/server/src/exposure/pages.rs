//! Exposure budgets: page routes.

use crate::AppState;
use crate::access::{ProjectPage, need};
use crate::error::AppResult;
use crate::views::{base, capabilities, render};
use axum::Router;
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::get;
use concord_store::{EXPOSURE_NEAR, ExposureStatus};
use minijinja::context;
use serde::Deserialize;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/p/{slug}/exposure", get(exposure_page))
}

#[derive(Deserialize)]
struct DayQuery {
    date: Option<String>,
}

async fn exposure_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::ManageAnnotators>,
    Query(query): Query<DayQuery>,
) -> AppResult<Html<String>> {
    let date = query.date.filter(|d| !d.is_empty());
    let day = date.as_deref().map(super::api::day_of).transpose()?;
    let standings = state.store.exposure_standings(&project, day).await?;
    let near = standings
        .iter()
        .filter(|s| matches!(s.status, ExposureStatus::Near | ExposureStatus::Reached))
        .count();
    let budget = project.settings.queue.exposure.clone();
    render(
        &state,
        "exposure.html",
        context! {
            project, can => capabilities(role), budget, standings, near, date,
            budget_on => budget.is_on(), near_from => EXPOSURE_NEAR * 100.0,
            ..base(&auth)
        },
    )
}
