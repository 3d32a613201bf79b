//! Dataset releases: the QA summary that travels with a release (agreement with intervals,
//! gold accuracy, escalation and overturn rates), computed here and frozen by the store.

use crate::{QaError, report_of};
use concord_stats::sampling::wilson;
use concord_store::UserId;
use concord_store::{AccountKind, Project, Release, Store, StoreError};
use serde_json::{Value, json};

/// The QA summary of the project as it stands (from the latest consensus run).
pub async fn release_summary(store: &Store, project: &Project) -> Result<Value, QaError> {
    let run = store
        .latest_consensus_run(project.id)
        .await?
        .ok_or_else(|| {
            QaError::Store(StoreError::Conflict(
                "compute the consensus before releasing (no run yet)".into(),
            ))
        })?;
    let report = report_of(&run);
    let agreement: Vec<Value> = report
        .iter()
        .flat_map(|r| &r.questions)
        .filter_map(|q| {
            q.alpha().map(|alpha| {
                json!({
                    "question": q.key, "metric": "krippendorff_alpha", "value": alpha.value,
                    "ci": alpha.ci, "interpretation": alpha.interpretation,
                    "items": q.items, "pairable_items": q.pairable_items,
                })
            })
        })
        .collect();
    let team = store.team_progress(project.id).await?;
    let (correct, answered) = team
        .iter()
        .filter(|a| a.kind == AccountKind::Human)
        .fold((0u64, 0u64), |(c, n), a| {
            (c + a.gold.correct, n + a.gold.answered)
        });
    let gold = wilson(correct, answered, 0.95);
    let (open, overdue, resolved) = store.escalation_counts(project.id).await?;
    let (adjudicated, overturned) = store.adjudication_counts(project.id).await?;
    let labelled = report.as_ref().map(|r| r.labelled_items).unwrap_or(0);
    let rate = |part: i64, whole: usize| (whole > 0).then(|| part as f64 / whole as f64);
    Ok(json!({
        "method": run.method,
        "consensus_run": run.id,
        "computed_at": run.created_at,
        "labelled_items": labelled,
        "annotations": run.annotations,
        "agreement": agreement,
        "gold_accuracy": {
            "correct": correct, "answered": answered, "estimate": gold.estimate,
            "ci": (answered > 0).then_some([gold.low, gold.high]),
        },
        "escalations": {"open": open, "overdue": overdue, "resolved": resolved},
        "escalation_rate": rate(open + resolved, labelled),
        "adjudications": adjudicated,
        "overturn_rate": rate(overturned, adjudicated as usize),
    }))
}

/// Freezes the project's final labels as a named release with its QA summary.
pub async fn create_release(
    store: &Store,
    project: &Project,
    name: &str,
    description: &str,
    actor: Option<UserId>,
) -> Result<Release, QaError> {
    let summary = release_summary(store, project).await?;
    Ok(store
        .create_release(project.id, name, description, summary, actor)
        .await?)
}
