//! Agreement coefficients through the engine's single entry point (`report::compute`),
//! returned as the JSON the CLI's `--format json` carries for each coefficient.

use concord_stats::agreement::bootstrap::BootstrapOptions;
use concord_stats::{
    AgreementOptions, Inference, Level, Metric, Prepared, Variance, WeightChoice, WeightScheme,
    Weights, compute,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

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
