//! An annotator's progress as pages and the API show it: the store's tally of gold answers
//! with its 95 % Wilson interval and the gold plan put on here (the store computes no
//! statistics).

use concord_qa::gold_plan;
use concord_store::{AnnotatorProgress, QueueSettings};
use serde_json::Value;

/// The progress as JSON: `gold` is the proportion with its interval, `gold_plan` the gold
/// answers still needed for the project's target interval width and when.
pub(crate) fn progress_json(progress: &AnnotatorProgress, settings: &QueueSettings) -> Value {
    let mut value = serde_json::to_value(progress).unwrap_or(Value::Null);
    let plan = gold_plan(progress.gold, settings);
    if let Some(fields) = value.as_object_mut() {
        fields.insert(
            "gold".into(),
            serde_json::to_value(plan.accuracy).unwrap_or(Value::Null),
        );
        fields.insert(
            "gold_plan".into(),
            serde_json::to_value(plan).unwrap_or(Value::Null),
        );
    }
    value
}

/// [`progress_json`] for each of a team.
pub(crate) fn team_json(team: &[AnnotatorProgress], settings: &QueueSettings) -> Vec<Value> {
    team.iter().map(|p| progress_json(p, settings)).collect()
}
