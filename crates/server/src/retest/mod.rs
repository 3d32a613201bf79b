//! Test–retest: each annotator's consistency with themselves on items served to them again
//! (`settings.queue.retest` schedules them). The figures are `concord-qa`'s.

pub(crate) mod api;
pub(crate) mod pages;

use crate::AppState;
use crate::error::AppResult;
use concord_qa::retest::{RetestReport, retest_report};
use concord_store::Project;

/// The project's test–retest report under its current schema.
pub(crate) async fn report(state: &AppState, project: &Project) -> AppResult<RetestReport> {
    let schema = state.store.current_schema(project.id).await?.definition;
    let pairs = state.store.retest_pairs(project.id).await?;
    let counts = state.store.retest_counts(project.id).await?;
    Ok(retest_report(&schema, &pairs, counts))
}
