//! Exposure budgets: JSON API routes (under `/api/v1`).

use crate::AppState;
use crate::access::{ProjectAccess, need};
use crate::error::{AppError, AppResult};
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/projects/{slug}/exposure", get(exposure))
}

#[derive(Deserialize)]
struct DayQuery {
    /// A UTC date, `YYYY-MM-DD`; today when absent.
    date: Option<String>,
}

/// The budget in force and each annotator's standing per category on a day.
async fn exposure(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::ManageAnnotators>,
    Query(query): Query<DayQuery>,
) -> AppResult<Json<Value>> {
    let day = query.date.as_deref().map(day_of).transpose()?;
    let standings = state.store.exposure_standings(&project, day).await?;
    Ok(Json(json!({
        "budget": project.settings.queue.exposure,
        "standings": standings,
    })))
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (UTC).
pub(crate) fn day_of(date: &str) -> AppResult<i64> {
    concord_formats::items::parse_utc_day(date)
        .ok_or_else(|| AppError::bad_request(format!("date must be YYYY-MM-DD, not {date:?}")))
}
