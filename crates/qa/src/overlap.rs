//! Dynamic overlap's savings as the dashboard shows them: the store's counts with the
//! share of labels saved, the agreement of the early-stopped items with what was decided
//! later (95 % Wilson interval) and their mean consensus confidence.

use crate::report::Share;
use concord_store::{OverlapSavings, Project, Store, StoreError};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OverlapReport {
    #[serde(flatten)]
    pub counts: OverlapSavings,
    /// Labels saved of the labels a fixed overlap would have taken on those items.
    pub share_saved: Option<f64>,
    /// Early items whose labels the later gold or expert decision confirmed.
    pub confirmed_later: Share,
    /// Mean consensus confidence of the early items' results in the latest run.
    pub mean_confidence: Option<f64>,
}

/// The report on the store's counts.
pub fn overlap_report(counts: OverlapSavings) -> OverlapReport {
    let would_take = counts.labels_used + counts.labels_saved;
    OverlapReport {
        counts,
        share_saved: (would_take > 0).then(|| counts.labels_saved as f64 / would_take as f64),
        confirmed_later: Share::wilson(
            counts.checked_agreeing.max(0) as u64,
            counts.checked.max(0) as u64,
        ),
        mean_confidence: (counts.confidence_count > 0)
            .then(|| counts.confidence_sum / counts.confidence_count as f64),
    }
}

/// The project's savings under its current settings.
pub async fn overlap_savings(
    store: &Store,
    project: &Project,
) -> Result<OverlapReport, StoreError> {
    Ok(overlap_report(store.overlap_savings(project).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_means_come_from_the_counts() {
        let report = overlap_report(OverlapSavings {
            fixed_overlap: 3,
            early_items: 10,
            labels_used: 20,
            labels_saved: 10,
            checked: 4,
            checked_agreeing: 3,
            confidence_sum: 9.0,
            confidence_count: 10,
        });
        assert_eq!(report.share_saved, Some(10.0 / 30.0));
        assert_eq!(report.confirmed_later.estimate, Some(0.75));
        assert_eq!(report.mean_confidence, Some(0.9));
        let none = overlap_report(OverlapSavings::default());
        assert_eq!((none.share_saved, none.mean_confidence), (None, None));
        assert_eq!(none.confirmed_later.estimate, None);
    }
}
