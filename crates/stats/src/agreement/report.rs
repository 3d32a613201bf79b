//! The one entry point the CLI, the server and the conformance runner share:
//! compute a named coefficient on a table with options, with bootstrap, interpretation
//! and warnings.

use std::sync::OnceLock;

use serde::Serialize;

use super::bootstrap::{BootstrapOptions, BootstrapResult, bootstrap};
use super::conger::{RaterRatings, conger_kappa};
use super::fleiss::{fleiss_kappa, randolph_kappa};
use super::krippendorff::{alpha, alpha_custom};
use super::raw::{RawCoefficient, raw_coefficient};
use super::two_rater::{
    CohenWeights, ContingencyTable, TableCoefficient, cohen_kappa, table_coefficient,
};
use super::{Estimate, Inference};
use crate::table::{AnnotationTable, LabelKind, ValueDomain};
use crate::units::Units;
use crate::weights::{Level, WeightScheme, Weights};

/// Every coefficient `concord agreement` offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    PercentAgreement,
    CohenKappa,
    ScottPi,
    BrennanPrediger,
    FleissKappa,
    FleissGeneralized,
    RandolphKappa,
    CongerKappa,
    GwetAc,
    KrippendorffAlpha,
}

impl std::str::FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "percent" | "percent_agreement" | "pa" => Self::PercentAgreement,
            "cohen" | "cohen_kappa" | "kappa" => Self::CohenKappa,
            "scott" | "scott_pi" | "pi" => Self::ScottPi,
            "bp" | "brennan_prediger" | "bennett_s" | "s" => Self::BrennanPrediger,
            "fleiss" | "fleiss_kappa" => Self::FleissKappa,
            "fleiss_generalized"
            | "fleiss_generalised"
            | "fleiss_kappa_generalized"
            | "gfleiss" => Self::FleissGeneralized,
            "randolph" | "randolph_kappa" | "free_marginal" => Self::RandolphKappa,
            "conger" | "conger_kappa" => Self::CongerKappa,
            "gwet" | "ac1" | "ac2" | "gwet_ac" | "gwet_ac1_ac2" => Self::GwetAc,
            "alpha" | "krippendorff" | "krippendorff_alpha" | "kripp" => Self::KrippendorffAlpha,
            other => {
                return Err(format!(
                    "unknown metric '{other}' (percent, cohen, scott, bp, fleiss, fleiss-generalized, randolph, conger, gwet, alpha)"
                ));
            }
        })
    }
}

impl Metric {
    pub const ALL: [Metric; 10] = [
        Metric::PercentAgreement,
        Metric::KrippendorffAlpha,
        Metric::FleissGeneralized,
        Metric::GwetAc,
        Metric::BrennanPrediger,
        Metric::CohenKappa,
        Metric::ScottPi,
        Metric::FleissKappa,
        Metric::RandolphKappa,
        Metric::CongerKappa,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Self::PercentAgreement => "percent_agreement",
            Self::CohenKappa => "cohen_kappa",
            Self::ScottPi => "scott_pi",
            Self::BrennanPrediger => "brennan_prediger",
            Self::FleissKappa => "fleiss_kappa",
            Self::FleissGeneralized => "fleiss_generalized",
            Self::RandolphKappa => "randolph_kappa",
            Self::CongerKappa => "conger_kappa",
            Self::GwetAc => "gwet_ac",
            Self::KrippendorffAlpha => "krippendorff_alpha",
        }
    }

    /// The default set: the chance-corrected coefficients that work with missing data,
    /// plus Cohen's κ when there are exactly two annotators.
    pub fn defaults(n_annotators: usize) -> Vec<Metric> {
        let mut metrics = vec![
            Metric::PercentAgreement,
            Metric::KrippendorffAlpha,
            Metric::FleissGeneralized,
            Metric::GwetAc,
            Metric::BrennanPrediger,
        ];
        if n_annotators == 2 {
            metrics.push(Metric::CohenKappa);
        }
        metrics
    }
}

/// Which variance formulas to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Variance {
    /// Raters × items with missing values (Gwet's raw-data formulas).
    #[default]
    Raw,
    /// The data is a two-rater contingency table (Gwet's table formulas).
    TwoRaterTable,
}

impl std::str::FromStr for Variance {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.replace('-', "_").as_str() {
            "raw" => Ok(Self::Raw),
            "two_rater_table" | "table" => Ok(Self::TwoRaterTable),
            other => Err(format!("unknown variance '{other}' (raw, two-rater-table)")),
        }
    }
}

/// Gwet-family weights: a named scheme or an explicit matrix.
#[derive(Clone, Debug, PartialEq)]
pub enum WeightChoice {
    Scheme(WeightScheme),
    Matrix(Weights),
}

impl Default for WeightChoice {
    fn default() -> Self {
        Self::Scheme(WeightScheme::Identity)
    }
}

impl WeightChoice {
    fn name(&self) -> &'static str {
        match self {
            Self::Scheme(s) => s.name(),
            Self::Matrix(_) => "custom",
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct AgreementOptions {
    /// Krippendorff's α distance.
    pub level: Option<Level>,
    /// A custom α distance matrix (overrides `level`).
    pub alpha_distance: Option<Vec<f64>>,
    /// Gwet-family weights.
    pub weights: WeightChoice,
    pub variance: Variance,
    pub inference: Inference,
    pub bootstrap: Option<BootstrapOptions>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AgreementError {
    #[error("{0}")]
    Options(String),
}

/// What of a computation depends on the order of the labels, if anything: an ordered
/// level of α, or a weight scheme other than identity (a custom matrix's rows follow the
/// categories' order too).
fn order_dependence(metric: Metric, options: &AgreementOptions) -> Option<String> {
    let level = options.level.filter(|l| {
        metric == Metric::KrippendorffAlpha
            && options.alpha_distance.is_none()
            && matches!(l, Level::Ordinal | Level::Interval | Level::Ratio)
    });
    if let Some(level) = level {
        return Some(format!("α at the {} level", level.name()));
    }
    match &options.weights {
        WeightChoice::Scheme(WeightScheme::Identity) => None,
        WeightChoice::Scheme(s) => Some(format!("{} weights", s.name())),
        WeightChoice::Matrix(_) => Some("a custom weight matrix".into()),
    }
}

/// Ordered levels and weights on text labels need the order the user declared; the
/// alphabetical order of the names is never taken for it.
fn require_known_order(
    values: &ValueDomain,
    metric: Metric,
    options: &AgreementOptions,
) -> Result<(), AgreementError> {
    if values.kind() != LabelKind::Category || values.declared() {
        return Ok(());
    }
    match order_dependence(metric, options) {
        Some(what) => Err(AgreementError::Options(format!(
            "{what} needs the order of the labels, and text labels have none: declare the \
             categories in order (--categories '[\"none\",\"mild\",\"severe\"]', the \
             project's schema, or a case's value_domain), or use the nominal level / identity \
             weights"
        ))),
        None => Ok(()),
    }
}

/// A coefficient with everything a reader needs next to it.
#[derive(Clone, Debug, Serialize)]
pub struct MetricResult {
    pub metric: Metric,
    /// Display name, e.g. "Gwet's AC2".
    pub name: String,
    #[serde(flatten)]
    pub estimate: Estimate,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interpretation: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Weights or level used.
    pub weighting: String,
    pub n_items: usize,
    pub n_annotators: usize,
    pub n_pairable_items: f64,
    pub n_pairable_values: f64,
}

/// A table with derived structures computed once and shared by several coefficients.
pub struct Prepared<'a> {
    pub table: &'a AnnotationTable,
    units: OnceLock<Units>,
    raters: OnceLock<RaterRatings>,
    pair: OnceLock<Option<ContingencyTable>>,
}

impl<'a> Prepared<'a> {
    pub fn new(table: &'a AnnotationTable) -> Self {
        Self {
            table,
            units: OnceLock::new(),
            raters: OnceLock::new(),
            pair: OnceLock::new(),
        }
    }
    pub fn units(&self) -> &Units {
        self.units.get_or_init(|| Units::from_table(self.table))
    }
    fn raters(&self) -> &RaterRatings {
        self.raters
            .get_or_init(|| RaterRatings::from_table(self.table))
    }
    fn pair(&self) -> Option<&ContingencyTable> {
        self.pair
            .get_or_init(|| ContingencyTable::from_two_annotators(self.table))
            .as_ref()
    }
}

fn gwet_weights(prepared: &Prepared, choice: &WeightChoice) -> Result<Weights, AgreementError> {
    let q = prepared.table.n_values();
    match choice {
        WeightChoice::Scheme(scheme) => {
            Weights::for_domain(*scheme, prepared.table.values()).map_err(AgreementError::Options)
        }
        WeightChoice::Matrix(w) if w.q() == q => Ok(w.clone()),
        WeightChoice::Matrix(w) => Err(AgreementError::Options(format!(
            "the weight matrix is {}×{} but there are {q} categories",
            w.q(),
            w.q()
        ))),
    }
}

fn cohen_scheme(choice: &WeightChoice) -> Result<CohenWeights, AgreementError> {
    match choice {
        WeightChoice::Scheme(WeightScheme::Identity) => Ok(CohenWeights::Unweighted),
        WeightChoice::Scheme(WeightScheme::Linear) => Ok(CohenWeights::Linear),
        WeightChoice::Scheme(WeightScheme::Quadratic) => Ok(CohenWeights::Quadratic),
        other => Err(AgreementError::Options(format!(
            "Cohen's κ takes identity, linear or quadratic weights (on category ranks), not {}; \
             use --variance two-rater-table for Gwet's weight schemes",
            other.name()
        ))),
    }
}

fn two_annotators_needed(name: &str) -> Estimate {
    Estimate::undefined(format!(
        "{name} is defined for exactly two annotators (use --pairs for every pair, or a multi-rater coefficient)"
    ))
}

/// Compute one coefficient.
pub fn compute(
    prepared: &Prepared,
    metric: Metric,
    options: &AgreementOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<MetricResult, AgreementError> {
    let table = prepared.table;
    require_known_order(table.values(), metric, options)?;
    let inference = &options.inference;
    let units = prepared.units();
    let table_mode = options.variance == Variance::TwoRaterTable;
    let mut weighting = options.weights.name().to_string();
    let name: String;
    let bootstrap_options = options.bootstrap.as_ref();
    let (estimate, boot): (Estimate, Option<BootstrapResult>) = match metric {
        _ if table_mode => {
            let (table_name, estimate, boot) =
                table_mode_estimate(prepared, metric, options, progress)?;
            name = table_name;
            (estimate, boot)
        }
        Metric::KrippendorffAlpha => {
            name = "Krippendorff's α".into();
            let level = options.level.unwrap_or(if table.values().is_sets() {
                Level::Masi
            } else {
                Level::Nominal
            });
            let estimate = match &options.alpha_distance {
                Some(delta) => {
                    weighting = "custom distance".into();
                    alpha_custom(units, delta, inference)
                }
                None => {
                    weighting = level.name().into();
                    alpha(units, table.values(), level, inference)
                        .map_err(AgreementError::Options)?
                }
            };
            let boot = bootstrap_options.and_then(|b| {
                let stat = |m: &[f64]| {
                    let replicate = units.with_multiplicity(m.to_vec());
                    let no_inference = Inference::POINT_ONLY;
                    match &options.alpha_distance {
                        Some(delta) => alpha_custom(&replicate, delta, &no_inference).value,
                        None => alpha(&replicate, table.values(), level, &no_inference)
                            .ok()
                            .and_then(|e| e.value),
                    }
                };
                bootstrap(&units.multiplicity, b, stat, progress)
            });
            (estimate, boot)
        }
        Metric::PercentAgreement
        | Metric::GwetAc
        | Metric::BrennanPrediger
        | Metric::FleissGeneralized => {
            let which = match metric {
                Metric::PercentAgreement => RawCoefficient::PercentAgreement,
                Metric::GwetAc => RawCoefficient::Gwet,
                Metric::BrennanPrediger => RawCoefficient::BrennanPrediger,
                _ => RawCoefficient::Fleiss,
            };
            let w = gwet_weights(prepared, &options.weights)?;
            name = display_name(metric, &w);
            let estimate = raw_coefficient(which, units, &w, inference);
            let boot = bootstrap_options.and_then(|b| {
                let stat = |m: &[f64]| {
                    raw_coefficient_value(which, &units.with_multiplicity(m.to_vec()), &w)
                };
                bootstrap(&units.multiplicity, b, stat, progress)
            });
            (estimate, boot)
        }
        Metric::FleissKappa | Metric::RandolphKappa => {
            let f = if metric == Metric::FleissKappa {
                fleiss_kappa
            } else {
                randolph_kappa
            };
            name = if metric == Metric::FleissKappa {
                "Fleiss' κ".into()
            } else {
                "Randolph's κ".into()
            };
            weighting = "identity".into();
            let estimate = f(units);
            let boot = bootstrap_options.and_then(|b| {
                let stat = |m: &[f64]| f(&units.with_multiplicity(m.to_vec())).value;
                bootstrap(&units.multiplicity, b, stat, progress)
            });
            (estimate, boot)
        }
        Metric::CongerKappa => {
            let w = gwet_weights(prepared, &options.weights)?;
            name = "Conger's κ".into();
            let raters = prepared.raters();
            let estimate = conger_kappa(raters, &w, inference, None);
            let boot = bootstrap_options.and_then(|b| {
                let ones = vec![1.0; raters.n_items()];
                let stat =
                    |m: &[f64]| conger_kappa(raters, &w, &Inference::POINT_ONLY, Some(m)).value;
                bootstrap(&ones, b, stat, progress)
            });
            (estimate, boot)
        }
        Metric::CohenKappa | Metric::ScottPi => {
            let is_cohen = metric == Metric::CohenKappa;
            name = if is_cohen {
                "Cohen's κ".into()
            } else {
                "Scott's π".into()
            };
            match prepared.pair() {
                None => (two_annotators_needed(&name), None),
                Some(ct) if is_cohen => {
                    let scheme = cohen_scheme(&options.weights)?;
                    let ct = if table.values().declared() {
                        ct.clone()
                    } else {
                        ct.restrict(&ct.used_categories())
                    };
                    let w = scheme.matrix(ct.q);
                    let estimate = cohen_kappa(&ct, &w, inference);
                    let boot = bootstrap_options.and_then(|b| {
                        let stat = |m: &[f64]| {
                            cohen_kappa(&ct.with_counts(m.to_vec()), &w, &Inference::POINT_ONLY)
                                .value
                        };
                        bootstrap(&ct.counts, b, stat, progress)
                    });
                    (estimate, boot)
                }
                Some(ct) => {
                    let w = gwet_weights(prepared, &options.weights)?;
                    let estimate = table_coefficient(TableCoefficient::Scott, ct, &w, inference);
                    let boot = bootstrap_options.and_then(|b| {
                        let stat = |m: &[f64]| {
                            table_coefficient(
                                TableCoefficient::Scott,
                                &ct.with_counts(m.to_vec()),
                                &w,
                                &Inference::POINT_ONLY,
                            )
                            .value
                        };
                        bootstrap(&ct.counts, b, stat, progress)
                    });
                    (estimate, boot)
                }
            }
        }
    };
    let mut result = MetricResult {
        metric,
        name,
        interpretation: estimate.value.map(|v| interpret(metric, v)),
        warnings: Vec::new(),
        estimate,
        bootstrap: boot,
        weighting,
        n_items: table.n_items(),
        n_annotators: table.n_annotators(),
        n_pairable_items: units.pairable_items(),
        n_pairable_values: units.pairable_values(),
    };
    add_warnings(&mut result);
    Ok(result)
}

/// Gwet's two-rater-table formulas (`--variance two-rater-table`).
fn table_mode_estimate(
    prepared: &Prepared,
    metric: Metric,
    options: &AgreementOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<(String, Estimate, Option<BootstrapResult>), AgreementError> {
    let inference = &options.inference;
    let bootstrap_options = options.bootstrap.as_ref();
    let which = match metric {
        Metric::PercentAgreement => TableCoefficient::PercentAgreement,
        Metric::GwetAc => TableCoefficient::Gwet,
        Metric::BrennanPrediger => TableCoefficient::BrennanPrediger,
        Metric::KrippendorffAlpha => TableCoefficient::Krippendorff,
        Metric::CohenKappa => TableCoefficient::Cohen,
        Metric::ScottPi => TableCoefficient::Scott,
        _ => {
            return Err(AgreementError::Options(
                "the two-rater-table variance has no Fleiss' κ; Scott's π is its two-rater form"
                    .into(),
            ));
        }
    };
    let w = gwet_weights(prepared, &options.weights)?;
    let name = display_name(metric, &w);
    match prepared.pair() {
        None => Ok((name.clone(), two_annotators_needed(&name), None)),
        Some(ct) => {
            let estimate = table_coefficient(which, ct, &w, inference);
            let boot = bootstrap_options.and_then(|b| {
                let stat = |m: &[f64]| {
                    table_coefficient(
                        which,
                        &ct.with_counts(m.to_vec()),
                        &w,
                        &Inference::POINT_ONLY,
                    )
                    .value
                };
                bootstrap(&ct.counts, b, stat, progress)
            });
            Ok((name, estimate, boot))
        }
    }
}

fn raw_coefficient_value(which: RawCoefficient, units: &Units, w: &Weights) -> Option<f64> {
    // Point estimate only: skip the variance work in bootstrap replicates.
    raw_coefficient(
        which,
        units,
        w,
        &Inference {
            confidence: 0.95,
            population: None,
        },
    )
    .value
}

fn display_name(metric: Metric, w: &Weights) -> String {
    match metric {
        Metric::GwetAc if w.is_identity() => "Gwet's AC1".into(),
        Metric::GwetAc => "Gwet's AC2".into(),
        Metric::PercentAgreement => "Percent agreement".into(),
        Metric::BrennanPrediger => "Brennan–Prediger".into(),
        Metric::FleissGeneralized => "Fleiss' κ (generalised)".into(),
        Metric::KrippendorffAlpha => "Krippendorff's α".into(),
        Metric::CohenKappa => "Cohen's κ".into(),
        Metric::ScottPi => "Scott's π".into(),
        Metric::FleissKappa => "Fleiss' κ".into(),
        Metric::RandolphKappa => "Randolph's κ".into(),
        Metric::CongerKappa => "Conger's κ".into(),
    }
}

/// Reading guide next to a value: Krippendorff's thresholds for α, Landis & Koch bands for κ-type coefficients.
pub fn interpret(metric: Metric, value: f64) -> String {
    match metric {
        Metric::PercentAgreement => "not chance-corrected".into(),
        Metric::KrippendorffAlpha => {
            if value >= 0.800 {
                "reliable (α ≥ .800)".into()
            } else if value >= 0.667 {
                "tentative conclusions only (.667 ≤ α < .800)".into()
            } else {
                "unreliable (α < .667)".into()
            }
        }
        _ => {
            let band = if value < 0.0 {
                "poor"
            } else if value <= 0.20 {
                "slight"
            } else if value <= 0.40 {
                "fair"
            } else if value <= 0.60 {
                "moderate"
            } else if value <= 0.80 {
                "substantial"
            } else {
                "almost perfect"
            };
            format!("{band} (Landis & Koch)")
        }
    }
}

/// CI wider than this says the sample is too small for the figure to mean much.
pub const WIDE_CI: f64 = 0.2;

fn add_warnings(result: &mut MetricResult) {
    let ci = result
        .bootstrap
        .as_ref()
        .map(|b| b.ci)
        .or(result.estimate.ci);
    if let Some([lo, hi]) = ci {
        if hi - lo > WIDE_CI {
            result.warnings.push(format!(
                "the confidence interval is {:.2} wide (> {WIDE_CI}): too few items for a firm conclusion",
                hi - lo
            ));
        }
    }
    if let Some(b) = &result.bootstrap {
        if b.undefined_replicates > 0 {
            result.warnings.push(format!(
                "{} of {} bootstrap replicates were undefined and left out",
                b.undefined_replicates, b.replicates
            ));
        }
    }
    if result.n_pairable_items < 2.0 && result.estimate.value.is_some() {
        result.warnings.push("fewer than two pairable items".into());
    }
}
