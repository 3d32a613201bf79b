//! Calibration rounds: a batch served to every annotator and QA expert before production
//! work, the experts' answers as the key, a pass / retrain verdict per annotator, holds and
//! releases. The store keeps the rounds; `concord-qa` opens, reports and closes them.

pub(crate) mod api;
pub(crate) mod pages;

use crate::AppState;
use concord_store::CalibrationRound;
use concord_store::UserId;

/// After a guideline revision is published: the project's latest round is repeated when its
/// settings ask for it. The revision stands whatever happens here, so a failure is logged,
/// not returned.
pub(crate) async fn after_guideline_published(
    state: &AppState,
    slug: &str,
    actor: UserId,
) -> Option<CalibrationRound> {
    match concord_qa::calibration::repeat_after_revision(&state.store, slug, Some(actor)).await {
        Ok(repeat) => repeat,
        Err(e) => {
            tracing::warn!(project = slug, error = %e, "could not repeat the calibration round after a guideline revision");
            None
        }
    }
}
