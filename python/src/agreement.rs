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

fn cohen_weights(weights: &str) -> PyResult<CohenWeights> {
    match weights
        .parse::<WeightScheme>()
        .map_err(PyValueError::new_err)?
    {
        WeightScheme::Identity => Ok(CohenWeights::Unweighted),
        WeightScheme::Linear => Ok(CohenWeights::Linear),
        WeightScheme::Quadratic => Ok(CohenWeights::Quadratic),
        other => Err(PyValueError::new_err(format!(
            "Cohen's κ per pair takes identity, linear or quadratic weights, not {}",
            other.name()
        ))),
    }
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
    let weights = cohen_weights(weights)?;
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
    pairs_dict(py, &pairs)
}

/// One number of a pair's estimate.
type PairField = fn(&PairAgreement) -> Option<f64>;

fn pairs_dict<'py>(py: Python<'py>, pairs: &[PairAgreement]) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    let codes = |f: fn(&PairAgreement) -> u32| -> Vec<i64> {
        pairs.iter().map(|p| i64::from(f(p))).collect()
    };
    out.set_item("a", PyArray1::from_vec(py, codes(|p| p.annotator_a)))?;
    out.set_item("b", PyArray1::from_vec(py, codes(|p| p.annotator_b)))?;
    let shared: Vec<u64> = pairs.iter().map(|p| p.shared_items).collect();
    out.set_item("shared_items", PyArray1::from_vec(py, shared))?;
    let numbers =
        |f: PairField| -> Vec<f64> { pairs.iter().map(|p| f(p).unwrap_or(f64::NAN)).collect() };
    let columns: [(&str, PairField); 5] = [
        ("value", |p| p.estimate.value),
        ("se", |p| p.estimate.se),
        ("ci_low", |p| p.estimate.ci.map(|c| c[0])),
        ("ci_high", |p| p.estimate.ci.map(|c| c[1])),
        ("p_value", |p| p.estimate.p_value),
    ];
    for (name, field) in columns {
        out.set_item(name, PyArray1::from_vec(py, numbers(field)))?;
    }
    Ok(out)
}
