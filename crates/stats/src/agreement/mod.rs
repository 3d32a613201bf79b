//! Agreement coefficients.
//!
//! * [`raw`] — the chance-corrected family over count vectors with missing data
//!   (percent agreement, Gwet AC1/AC2, generalised Fleiss, Brennan–Prediger and the
//!   weighted Krippendorff of Gwet's handbook), with Gwet's analytic variance.
//! * [`krippendorff`] — Krippendorff's α from the coincidence matrix at any level.
//! * [`two_rater`] — two-rater coefficients (Cohen, Scott, …) from a contingency table.
//! * [`conger`] — Conger's κ (rater identity, any number of raters).
//! * [`fleiss`] — Fleiss' κ with fixed marginals and Randolph's free-marginal κ.
//! * [`pairs`] — Cohen's κ for every annotator pair.
//! * [`bootstrap`] — the item-cluster bootstrap for any coefficient.

pub mod bootstrap;
pub mod conger;
pub mod fleiss;
pub mod krippendorff;
pub mod pairs;
pub mod per_item;
pub mod raw;
pub mod report;
pub mod two_rater;

use serde::Serialize;

use crate::dist;

/// A coefficient's point estimate with, where available, its analytic inference.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Estimate {
    /// `None` when undefined (then `undefined` says why).
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undefined: Option<String>,
    /// Observed (weighted) agreement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pa: Option<f64>,
    /// Chance agreement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pe: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub se: Option<f64>,
    /// Standard error under H0 (value = 0), where the method has one (Cohen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub se_h0: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci: Option<[f64; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub z: Option<f64>,
    /// Two-sided p-value of H0: coefficient = 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// One-sided p-value (H1: coefficient > 0 when z > 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_value_one_sided: Option<f64>,
    /// How the CI was obtained, e.g. "analytic, t(11)" or "bootstrap, B = 1000".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci_method: Option<String>,
}

impl Estimate {
    pub fn undefined(reason: impl Into<String>) -> Self {
        Self {
            undefined: Some(reason.into()),
            ..Self::default()
        }
    }
    pub fn is_defined(&self) -> bool {
        self.value.is_some()
    }
}

/// Options for analytic inference.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Inference {
    /// Confidence level of intervals, e.g. 0.95.
    pub confidence: f64,
    /// Size of the population of items, for the finite-population correction; `None` = infinite.
    pub population: Option<f64>,
}

impl Default for Inference {
    fn default() -> Self {
        Self {
            confidence: 0.95,
            population: None,
        }
    }
}

impl Inference {
    /// Point estimates only: no standard errors or intervals (bootstrap replicates).
    pub const POINT_ONLY: Inference = Inference {
        confidence: f64::NAN,
        population: None,
    };

    pub fn wants_intervals(&self) -> bool {
        !self.confidence.is_nan()
    }

    /// Finite-population correction factor f = n / N (0 when N is infinite).
    pub fn sampling_fraction(&self, n: f64) -> f64 {
        match self.population {
            Some(population) if population > 0.0 => (n / population).min(1.0),
            _ => 0.0,
        }
    }
}

/// Fill SE, CI, t statistic and p-value from a variance, the way Gwet's handbook does:
/// Student's t with `n − 1` degrees of freedom, the CI's upper bound clipped at 1.
pub(crate) fn t_inference(estimate: &mut Estimate, variance: f64, n: f64, inference: &Inference) {
    t_inference_with(estimate, variance, n, inference, PStatistic::Absolute);
}

/// What the p-value is computed from (Gwet's two-rater formulas test max(value, 0)).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PStatistic {
    Absolute,
    PositivePart,
}

pub(crate) fn t_inference_with(
    estimate: &mut Estimate,
    variance: f64,
    n: f64,
    inference: &Inference,
    p_statistic: PStatistic,
) {
    let Some(value) = estimate.value else { return };
    if !(variance.is_finite() && n > 1.0 && inference.wants_intervals()) {
        return;
    }
    let se = variance.max(0.0).sqrt();
    let df = n - 1.0;
    let t = dist::t_quantile(1.0 - (1.0 - inference.confidence) / 2.0, df);
    estimate.se = Some(se);
    estimate.ci = Some([value - t * se, (value + t * se).min(1.0)]);
    if se > 0.0 {
        let z = value / se;
        estimate.z = Some(z);
        let tested = match p_statistic {
            PStatistic::Absolute => z.abs(),
            PStatistic::PositivePart => z.max(0.0),
        };
        let two_sided = dist::t_two_sided_p(tested, df);
        estimate.p_value = Some(two_sided);
        estimate.p_value_one_sided = Some(two_sided / 2.0);
    }
    estimate.ci_method = Some(format!("analytic, t({df})"));
}

/// (pa − pe) / (1 − pe), or undefined when pe = 1.
pub(crate) fn chance_corrected(pa: f64, pe: f64, what: &str) -> Estimate {
    if (1.0 - pe).abs() < 1e-12 {
        return Estimate {
            pa: Some(pa),
            pe: Some(pe),
            ..Estimate::undefined(format!(
                "chance agreement pe = 1 (every rating in one category): {what} = 0/0"
            ))
        };
    }
    Estimate {
        value: Some((pa - pe) / (1.0 - pe)),
        pa: Some(pa),
        pe: Some(pe),
        ..Estimate::default()
    }
}
