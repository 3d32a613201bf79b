//! Agreement coefficients through the engine's single entry point (`report::compute`),
//! returned as the JSON the CLI's `--format json` carries for each coefficient; and Cohen's κ
//! for every annotator pair (`pairs::pairwise_cohen`).

use concord_stats::agreement::bootstrap::BootstrapOptions;
use concord_stats::agreement::pairs::{PairAgreement, pairwise_cohen};
use concord_stats::agreement::two_rater::CohenWeights;
use concord_stats::{
    AgreementOptions, Inference, Level, Metric, Prepared, Variance, WeightChoice, WeightScheme,
    Weights, compute,
};
use numpy::PyArray1;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::table::Table;

fn weight_choice(weights: &str, matrix: Option<Vec<Vec<f64>>>) -> PyResult<WeightChoice> {
    let scheme: WeightScheme = weights.parse().map_err(PyValueError::new_err)?;
    Ok(match (scheme, matrix) {
        (WeightScheme::Custom, Some(rows)) => {
            WeightChoice::Matrix(Weights::custom(&rows).map_err(PyValueError::new_err)?)
        }
        (WeightScheme::Custom, None) => {
            return Err(PyValueError::new_err(
                "weights='custom' needs weights_matrix",
            ));
        }
        (scheme, Some(_)) => {
            return Err(PyValueError::new_err(format!(
                "weights_matrix goes with weights='custom', not '{}'",
                scheme.name()
            )));
        }
        (scheme, None) => WeightChoice::Scheme(scheme),
    })
}

/// One coefficient as a JSON object (value, se, ci, p_value, interpretation, bootstrap,
/// warnings, undefined reason, …).
#[pyfunction]
#[pyo3(signature = (table, metric, *, level=None, weights="identity", weights_matrix=None, variance="raw", confidence=0.95, population=None, bootstrap=0, seed=1))]
#[allow(clippy::too_many_arguments)]
pub fn agreement(
    py: Python<'_>,
    table: &Table,
    metric: &str,
    level: Option<&str>,
    weights: &str,
    weights_matrix: Option<Vec<Vec<f64>>>,
    variance: &str,
    confidence: f64,
    population: Option<f64>,
    bootstrap: usize,
    seed: u64,
) -> PyResult<String> {
    let metric: Metric = metric.parse().map_err(PyValueError::new_err)?;
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(PyValueError::new_err(format!(
            "confidence must be between 0 and 1 (got {confidence})"
        )));
    }
    let options = AgreementOptions {
        level: level
            .map(str::parse::<Level>)
            .transpose()
            .map_err(PyValueError::new_err)?,
        alpha_distance: None,
        weights: weight_choice(weights, weights_matrix)?,
        variance: variance
            .parse::<Variance>()
            .map_err(PyValueError::new_err)?,
        inference: Inference {
            confidence,
            population,
        },
        bootstrap: (bootstrap > 0).then_some(BootstrapOptions {
            replicates: bootstrap,
            seed,
            confidence,
        }),
    };
    let engine_table = &table.table;
    let result = py
        .allow_threads(|| compute(&Prepared::new(engine_table), metric, &options, &|_| {}))
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    serde_json::to_string(&result).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The coefficients `concord agreement` reports by default for this many annotators.
#[pyfunction]
pub fn default_metrics(n_annotators: usize) -> Vec<&'static str> {
    Metric::defaults(n_annotators)
        .into_iter()
        .map(Metric::key)
        .collect()
}

/// Cohen's κ for every annotator pair sharing at least `min_shared` items (`concord agreement
/// --pairs`): a dict of NumPy arrays, one entry per pair — annotator codes `a` and `b`,
/// `shared_items`, `value`, `se`, `ci_low`, `ci_high`, `p_value` (NaN where undefined).
#[pyfunction]
#[pyo3(signature = (table, *, weights="identity", min_shared=1, confidence=0.95, population=None))]
pub fn cohen_pairs<'py>(
    py: Python<'py>,
    table: &Table,
    weights: &str,
    min_shared: u64,
    confidence: f64,
    population: Option<f64>,
) -> PyResult<Bound<'py, PyDict>> {
    let weights = match weights
        .parse::<WeightScheme>()
        .map_err(PyValueError::new_err)?
    {
        WeightScheme::Identity => CohenWeights::Unweighted,
        WeightScheme::Linear => CohenWeights::Linear,
        WeightScheme::Quadratic => CohenWeights::Quadratic,
        other => {
            return Err(PyValueError::new_err(format!(
                "Cohen's κ per pair takes identity, linear or quadratic weights, not {}",
                other.name()
            )));
        }
    };
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(PyValueError::new_err(format!(
            "confidence must be between 0 and 1 (got {confidence})"
        )));
    }
    let inference = Inference {
        confidence,
        population,
    };
    let engine_table = &table.table;
    let pairs = py.allow_threads(|| {
        pairwise_cohen(engine_table, weights, min_shared, &inference, &|_, _| {})
    });
    let column = |f: &dyn Fn(&PairAgreement) -> f64| -> Vec<f64> { pairs.iter().map(f).collect() };
    let out = PyDict::new(py);
    out.set_item(
        "a",
        PyArray1::from_vec(py, pairs.iter().map(|p| i64::from(p.annotator_a)).collect()),
    )?;
    out.set_item(
        "b",
        PyArray1::from_vec(py, pairs.iter().map(|p| i64::from(p.annotator_b)).collect()),
    )?;
    out.set_item(
        "shared_items",
        PyArray1::from_vec(py, pairs.iter().map(|p| p.shared_items).collect()),
    )?;
    let or_nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
    out.set_item(
        "value",
        PyArray1::from_vec(py, column(&|p| or_nan(p.estimate.value))),
    )?;
    out.set_item(
        "se",
        PyArray1::from_vec(py, column(&|p| or_nan(p.estimate.se))),
    )?;
    out.set_item(
        "ci_low",
        PyArray1::from_vec(py, column(&|p| or_nan(p.estimate.ci.map(|c| c[0])))),
    )?;
    out.set_item(
        "ci_high",
        PyArray1::from_vec(py, column(&|p| or_nan(p.estimate.ci.map(|c| c[1])))),
    )?;
    out.set_item(
        "p_value",
        PyArray1::from_vec(py, column(&|p| or_nan(p.estimate.p_value))),
    )?;
    Ok(out)
}
