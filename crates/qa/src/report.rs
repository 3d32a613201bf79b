//! The quality report a consensus run stores: what the analyst's pages and the API show.
//! Every agreement figure carries its interval, interpretation and sample-size warnings.

use concord_stats::agreement::report::{MetricResult, interpret};
use concord_stats::{Estimate, Metric};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One agreement figure, ready to show.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Figure {
    pub value: Option<f64>,
    pub ci: Option<[f64; 2]>,
    /// Why there is no value (too few items, a single category, …).
    pub undefined: Option<String>,
    pub interpretation: Option<String>,
    pub warnings: Vec<String>,
}

impl Figure {
    pub fn from_result(result: &MetricResult) -> Figure {
        Figure {
            value: result.estimate.value,
            ci: result.estimate.ci,
            undefined: result.estimate.undefined.clone(),
            interpretation: result.interpretation.clone(),
            warnings: result.warnings.clone(),
        }
    }

    pub fn from_estimate(metric: Metric, estimate: &Estimate) -> Figure {
        let mut warnings = Vec::new();
        if let Some([lo, hi]) = estimate.ci {
            if hi - lo > concord_stats::agreement::report::WIDE_CI {
                warnings.push(format!(
                    "the confidence interval is {:.2} wide: too few items for a firm conclusion",
                    hi - lo
                ));
            }
        }
        Figure {
            value: estimate.value,
            ci: estimate.ci,
            undefined: estimate.undefined.clone(),
            interpretation: estimate.value.map(|v| interpret(metric, v)),
            warnings,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MetricSummary {
    /// Engine key, e.g. `krippendorff_alpha`.
    pub metric: String,
    pub name: String,
    pub weighting: String,
    pub figure: Figure,
    pub n_items: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CategorySummary {
    pub code: String,
    pub label: String,
    /// Ratings that chose the category.
    pub ratings: f64,
    /// One-vs-rest α.
    pub alpha: Figure,
    /// α below the project's target: the guideline for this category needs work.
    pub revise: bool,
}

/// α over a slice of the labels (one guideline version, one week).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SliceSummary {
    pub slice: String,
    /// Start of the week (ms), for charts; the version number for guideline slices.
    pub key: i64,
    pub labels: usize,
    pub items: usize,
    pub alpha: Figure,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PairSummary {
    pub a: String,
    pub b: String,
    pub shared_items: u64,
    pub kappa: Figure,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QuestionReport {
    pub key: String,
    pub prompt: String,
    pub kind: String,
    /// Items with at least one label on this question.
    pub items: usize,
    pub labels: usize,
    /// Items with two labels or more (the ones agreement is computed on).
    pub pairable_items: usize,
    pub metrics: Vec<MetricSummary>,
    pub categories: Vec<CategorySummary>,
    pub by_guideline_version: Vec<SliceSummary>,
    pub by_week: Vec<SliceSummary>,
    /// The pairs with the most shared items (Cohen's κ).
    pub pairs: Vec<PairSummary>,
    /// Consensus label counts, in schema order.
    pub consensus_counts: Vec<(String, usize)>,
    pub mean_confidence: Option<f64>,
    /// Agreement weighed by the costs of disagreement (questions with costs only; absent
    /// from reports stored before costs existed).
    #[serde(default)]
    pub costs: Option<CostSummary>,
}

/// A question's costs of disagreement and what they weigh.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CostSummary {
    pub source: concord_store::CostSource,
    /// The question's options, the matrix's row (truth) and column (label) order.
    pub classes: Vec<String>,
    pub matrix: Vec<Vec<f64>>,
    /// Krippendorff's α with the symmetric cost (c + cᵀ) / 2 as its distance.
    pub alpha: Figure,
    /// Gwet's AC2 with weights 1 − symmetric cost / the largest cost.
    pub gwet: Figure,
    /// Mean over items of the consensus label's expected cost (posterior × cost).
    pub mean_expected_cost: Option<f64>,
    pub total_expected_cost: f64,
}

impl QuestionReport {
    /// The headline α of the question, if computed.
    pub fn alpha(&self) -> Option<&Figure> {
        self.metrics
            .iter()
            .find(|m| m.metric == Metric::KrippendorffAlpha.key())
            .map(|m| &m.figure)
    }
}

/// How the automated annotator compares with the human consensus.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelReport {
    pub annotator: String,
    pub labels: usize,
    /// Per question: share of items where the model's answer equals the consensus.
    pub agreement: BTreeMap<String, Option<f64>>,
    /// Per question, in schema order: scored like a person (intervals, categories,
    /// calibration, confusion). Empty in reports stored before these scores existed.
    #[serde(default)]
    pub questions: Vec<ModelQuestionScore>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QualityReport {
    pub method: String,
    pub method_name: String,
    pub items: usize,
    pub labelled_items: usize,
    pub annotations: usize,
    pub annotators: usize,
    pub unsure: usize,
    pub target_alpha: f64,
    pub questions: Vec<QuestionReport>,
    pub models: Vec<ModelReport>,
    /// How many items matched each escalation rule in this run (before skipping those
    /// already waiting or adjudicated).
    pub escalation_matches: BTreeMap<String, usize>,
    /// Rule settings that could not be applied (e.g. an unknown severity code).
    pub notes: Vec<String>,
}

/// A share (successes of trials) with its 95 % Wilson interval.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Share {
    pub successes: u64,
    pub trials: u64,
    /// `successes / trials`; `None` with no trials.
    pub estimate: Option<f64>,
    /// The 95 % Wilson interval; `None` with no trials.
    pub ci: Option<[f64; 2]>,
}

impl Share {
    pub fn wilson(successes: u64, trials: u64) -> Share {
        let p = concord_stats::sampling::wilson(successes, trials, 0.95);
        Share {
            successes: p.successes,
            trials: p.trials,
            estimate: p.estimate,
            ci: p.estimate.map(|_| [p.low, p.high]),
        }
    }
}

/// An automated annotator on one category: of the items whose consensus (or gold answer)
/// includes the category, the share it also labelled with it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelCategoryScore {
    pub code: String,
    pub label: String,
    pub agreement: Share,
    pub gold: Share,
}

/// Stated confidence in `[low, high)` (the last band includes 1) against how often the
/// answer equalled the consensus.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CalibrationBand {
    pub low: f64,
    pub high: f64,
    pub mean_confidence: f64,
    /// Observed accuracy against the consensus, with its interval.
    pub accuracy: Share,
}

/// Counts of model answer (rows) × consensus answer (columns), single and ordinal
/// questions only.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelConfusion {
    pub classes: Vec<String>,
    pub counts: Vec<Vec<u64>>,
    /// The largest cell, for shading.
    pub max: u64,
}

/// An automated annotator scored like a person on one question.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelQuestionScore {
    pub question: String,
    pub labels: usize,
    /// Its answer equals the consensus, on items the consensus decided.
    pub agreement: Share,
    /// Its answer equals the gold answer, on gold items it labelled.
    pub gold: Share,
    /// In schema order, the categories with a consensus or gold item.
    pub categories: Vec<ModelCategoryScore>,
    /// Bands with at least one answer that stated a confidence (empty when none did).
    pub calibration: Vec<CalibrationBand>,
    pub confusion: Option<ModelConfusion>,
}
