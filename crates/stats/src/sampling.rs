//! Proportions from small samples: the Wilson score interval for a rate such as an
//! annotator's accuracy on gold items, where the normal approximation misbehaves near 0, 1
//! and at small n.

use crate::dist::normal_quantile;
use serde::Serialize;

/// A proportion with its two-sided confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Proportion {
    pub successes: u64,
    pub trials: u64,
    /// `successes / trials`; `None` when there are no trials.
    pub estimate: Option<f64>,
    pub low: f64,
    pub high: f64,
    pub confidence: f64,
}

/// Wilson score interval for `successes` out of `trials` at `confidence` (e.g. 0.95).
/// With no trials the interval is the whole of [0, 1].
pub fn wilson(successes: u64, trials: u64, confidence: f64) -> Proportion {
    let successes = successes.min(trials);
    if trials == 0 {
        return Proportion {
            successes,
            trials,
            estimate: None,
            low: 0.0,
            high: 1.0,
            confidence,
        };
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z = normal_quantile(1.0 - (1.0 - confidence) / 2.0);
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Proportion {
        successes,
        trials,
        estimate: Some(p),
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
        confidence,
    }
}

/// Half the width of the Wilson interval for a proportion `p` measured on `trials` trials,
/// with `z` the normal quantile of the interval (before clipping to [0, 1]).
fn wilson_half_width(p: f64, trials: f64, z: f64) -> f64 {
    z * (p * (1.0 - p) * trials + z * z / 4.0).sqrt() / (trials + z * z)
}

/// The fewest trials whose Wilson interval at `confidence` is at most ± `half_width` wide
/// when the proportion is `proportion` (plan with 0.5, the widest, before anything is
/// measured). `None` unless `half_width` is in (0, 0.5] and `proportion` in [0, 1].
///
/// The half-width, z·√(p(1−p)n + z²/4) / (n + z²), falls as n grows (its derivative has the
/// sign of p(1−p)z² − p(1−p)n − z²/2 < 0), so a doubling then a bisection finds it.
pub fn trials_for_half_width(proportion: f64, half_width: f64, confidence: f64) -> Option<u64> {
    let in_open_unit = |x: f64| x > 0.0 && x < 1.0;
    if !in_open_unit(half_width)
        || half_width > 0.5
        || !(0.0..=1.0).contains(&proportion)
        || !in_open_unit(confidence)
    {
        return None;
    }
    let z = normal_quantile(1.0 - (1.0 - confidence) / 2.0);
    let fits = |n: u64| wilson_half_width(proportion, n as f64, z) <= half_width;
    let mut high = 1u64;
    while !fits(high) {
        high *= 2;
    }
    let mut low = high / 2; // does not fit (or is 0)
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if fits(mid) { high = mid } else { low = mid }
    }
    Some(high)
}

#[cfg(test)]
mod tests {
    use super::{trials_for_half_width, wilson};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-4
    }

    #[test]
    fn wilson_matches_published_values() {
        // Newcombe (1998), Statistics in Medicine 17, table I: 81/263 → 0.2553–0.3662;
        // 15/148 → 0.0624–0.1605; 0/20 → 0–0.1611; 1/29 → 0.0061–0.1718.
        let r = wilson(81, 263, 0.95);
        assert!(close(r.low, 0.2553) && close(r.high, 0.3662), "{r:?}");
        let r = wilson(15, 148, 0.95);
        assert!(close(r.low, 0.0624) && close(r.high, 0.1605), "{r:?}");
        let r = wilson(0, 20, 0.95);
        assert!(close(r.low, 0.0) && close(r.high, 0.1611), "{r:?}");
        let r = wilson(1, 29, 0.95);
        assert!(close(r.low, 0.0061) && close(r.high, 0.1718), "{r:?}");
    }

    #[test]
    fn no_trials_means_no_estimate_and_the_whole_interval() {
        let r = wilson(0, 0, 0.95);
        assert_eq!(r.estimate, None);
        assert_eq!((r.low, r.high), (0.0, 1.0));
    }

    #[test]
    fn trials_for_a_half_width_match_the_hand_computed_sizes() {
        // p = 0.5, ±0.10 at 95 %: 1.96·√(0.25n + 0.96)/(n + 3.84) is 0.0996 at n = 93 and
        // 0.1001 at n = 92 (the normal approximation's 97 is more than needed).
        assert_eq!(trials_for_half_width(0.5, 0.10, 0.95), Some(93));
        // p = 1: z²/2 / (n + z²) ≤ 0.1 from n = 4z² = 15.37, so 16.
        assert_eq!(trials_for_half_width(1.0, 0.10, 0.95), Some(16));
        // A narrower target needs more; a surer estimate fewer.
        let narrow = trials_for_half_width(0.5, 0.05, 0.95).unwrap();
        assert!((370..=385).contains(&narrow), "{narrow}");
        assert!(trials_for_half_width(0.9, 0.10, 0.95).unwrap() < 93);
    }

    #[test]
    fn the_size_found_is_the_first_whose_interval_is_narrow_enough() {
        // 0/n and n/n are exact proportions, so wilson() itself can check the size.
        let n = trials_for_half_width(0.0, 0.10, 0.95).unwrap();
        let half = |t: u64| {
            let r = wilson(0, t, 0.95);
            (r.high - r.low) / 2.0
        };
        assert!(half(n) <= 0.10 && half(n - 1) > 0.10, "{n}");
    }

    #[test]
    fn a_size_is_refused_for_a_target_that_cannot_be_met_or_makes_no_sense() {
        assert_eq!(trials_for_half_width(0.5, 0.0, 0.95), None);
        assert_eq!(trials_for_half_width(0.5, 0.7, 0.95), None);
        assert_eq!(trials_for_half_width(1.5, 0.1, 0.95), None);
        assert_eq!(trials_for_half_width(0.5, 0.1, 1.0), None);
    }
}
