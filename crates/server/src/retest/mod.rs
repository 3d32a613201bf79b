//! Test–retest: each annotator's consistency with themselves on items served to them again
//! (`settings.queue.retest` schedules them). The figures are `concord-qa`'s.

pub(crate) mod api;
pub(crate) mod pages;

use crate::AppState;
use crate::error::AppResult;
use concord_qa::retest::{RetestReport, project_retest_report};
use concord_store::Project;

/// The project's test–retest report under its current schema.
pub(crate) async fn report(state: &AppState, project: &Project) -> AppResult<RetestReport> {
    Ok(project_retest_report(&state.store, project).await?)
}
