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

#[cfg(test)]
mod tests {
    use super::wilson;

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
}
