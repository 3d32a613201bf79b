//! Gold planning: for an annotator's gold record, the 95 % interval on their accuracy, how
//! many more gold answers bring it to the project's target width, and when they get there
//! at their recent gold rate.

use concord_stats::sampling::{Proportion, trials_for_half_width, wilson};
use concord_store::{GOLD_RATE_WINDOW_DAYS, GoldTally, QueueSettings};
use serde::Serialize;

/// The confidence of every gold interval the platform shows and the pause rule reads.
pub const GOLD_CONFIDENCE: f64 = 0.95;

/// The upper bound of the 95 % Wilson interval on gold accuracy: the statistic the store's
/// pause rule reads (give it to `StoreOptions::new`).
pub fn gold_accuracy_upper_bound(correct: u64, answered: u64) -> f64 {
    wilson(correct, answered, GOLD_CONFIDENCE).high
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GoldPlan {
    /// Accuracy on gold with its 95 % Wilson interval.
    pub accuracy: Proportion,
    /// The project's target: the interval at most ± this wide.
    pub target_half_width: f64,
    /// Gold answers the target takes in all, at the accuracy measured so far (0.5, the
    /// widest, before any gold answer).
    pub needed_total: u64,
    /// Of those, still to be answered (0 once the interval is narrow enough).
    pub still_needed: u64,
    /// Gold answers per day over the last [`GOLD_RATE_WINDOW_DAYS`] days.
    pub recent_per_day: f64,
    /// Days until `still_needed` more at `recent_per_day`; `None` when they answered no gold
    /// lately (no rate to plan with). 0 when the target is met.
    pub eta_days: Option<f64>,
}

/// The plan for one annotator's gold record under the project's queue settings.
pub fn gold_plan(tally: GoldTally, settings: &QueueSettings) -> GoldPlan {
    let accuracy = wilson(tally.correct, tally.answered, GOLD_CONFIDENCE);
    let target = settings.gold_target_half_width;
    // The settings' validation keeps the target in (0, 0.5], so a size always exists.
    let needed_total =
        trials_for_half_width(accuracy.estimate.unwrap_or(0.5), target, GOLD_CONFIDENCE)
            .unwrap_or(0);
    let met = tally.answered > 0 && (accuracy.high - accuracy.low) / 2.0 <= target;
    let still_needed = if met {
        0
    } else {
        needed_total.saturating_sub(tally.answered).max(1)
    };
    let recent_per_day = tally.answered_recently as f64 / GOLD_RATE_WINDOW_DAYS as f64;
    let eta_days = if still_needed == 0 {
        Some(0.0)
    } else if recent_per_day > 0.0 {
        Some(still_needed as f64 / recent_per_day)
    } else {
        None
    };
    GoldPlan {
        accuracy,
        target_half_width: target,
        needed_total,
        still_needed,
        recent_per_day,
        eta_days,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(correct: u64, answered: u64, answered_recently: u64) -> GoldTally {
        GoldTally {
            correct,
            answered,
            answered_recently,
        }
    }

    #[test]
    fn before_any_gold_the_plan_is_the_widest_case_and_has_no_date() {
        let plan = gold_plan(tally(0, 0, 0), &QueueSettings::default());
        // ±0.10 at 95 % with p = 0.5: 93 (see concord_stats::sampling).
        assert_eq!((plan.needed_total, plan.still_needed), (93, 93));
        assert_eq!(plan.eta_days, None);
        assert_eq!(plan.accuracy.estimate, None);
    }

    #[test]
    fn the_plan_counts_what_is_left_and_dates_it_at_the_recent_rate() {
        // 40/50 right, 14 of them this week: 2 a day.
        let plan = gold_plan(tally(40, 50, 14), &QueueSettings::default());
        let needed = trials_for_half_width(0.8, 0.10, 0.95).unwrap();
        assert_eq!(plan.needed_total, needed);
        assert_eq!(plan.still_needed, needed - 50);
        assert_eq!(plan.recent_per_day, 2.0);
        assert_eq!(plan.eta_days, Some((needed - 50) as f64 / 2.0));
    }

    #[test]
    fn a_narrow_enough_interval_needs_nothing_more() {
        let plan = gold_plan(tally(180, 200, 0), &QueueSettings::default());
        assert_eq!(plan.still_needed, 0);
        assert_eq!(plan.eta_days, Some(0.0));
        assert!((plan.accuracy.high - plan.accuracy.low) / 2.0 <= 0.10);
    }

    #[test]
    fn the_pause_rule_reads_the_intervals_upper_bound_not_the_point_estimate() {
        use concord_store::queue_rules::should_pause;
        let settings = QueueSettings {
            pause_below: 0.6,
            pause_min_gold: 2,
            ..QueueSettings::default()
        };
        let bound = gold_accuracy_upper_bound;
        // 0/2: the point estimate is 0, but the upper bound 3.84/5.84 = 0.66 is not below 0.6.
        assert!((bound(0, 2) - 0.6576).abs() < 1e-3);
        assert!(!should_pause(&settings, bound, 0, 2));
        // 0/3: 3.84/6.84 = 0.56, clearly below.
        assert!(should_pause(&settings, bound, 0, 3));
        // 5/10 (upper 0.76) is not clearly below 60 %; 1/10 (upper 0.40) is.
        assert!(!should_pause(&settings, bound, 5, 10));
        assert!(should_pause(&settings, bound, 1, 10));
    }
}
