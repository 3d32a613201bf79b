//! An annotator's progress as pages and the API show it: the store's tally of gold answers
//! with its 95 % Wilson interval put on here (the store computes no statistics).

use concord_stats::sampling::wilson;
use concord_store::AnnotatorProgress;
use serde_json::Value;

/// The progress as JSON, `gold` being the proportion with its interval.
pub(crate) fn progress_json(progress: &AnnotatorProgress) -> Value {
    let mut value = serde_json::to_value(progress).unwrap_or(Value::Null);
    let gold = wilson(progress.gold.correct, progress.gold.answered, 0.95);
    if let Some(fields) = value.as_object_mut() {
        fields.insert(
            "gold".into(),
            serde_json::to_value(gold).unwrap_or(Value::Null),
        );
    }
    value
}

/// [`progress_json`] for each of a team.
pub(crate) fn team_json(team: &[AnnotatorProgress]) -> Vec<Value> {
    team.iter().map(progress_json).collect()
}
