//! The consensus models: one call runs one engine model and returns its fitted state as
//! NumPy arrays in engine order (items, annotators and values by id).

use concord_stats::aggregate::{
    AggregateOptions, Aggregation, Known, Method, Posteriors, TieRule, aggregate as run_model,
};
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::table::Table;

/// Known answers as (item id, value id) pairs.
fn known_answers(
    table: &Table,
    items: Option<PyReadonlyArray1<'_, i64>>,
    values: Option<PyReadonlyArray1<'_, i64>>,
) -> PyResult<Option<Known>> {
    let (Some(items), Some(values)) = (items, values) else {
        return Ok(None);
    };
    let (items, values) = (items.as_slice()?, values.as_slice()?);
    if items.len() != values.len() {
        return Err(PyValueError::new_err(
            "known answers: items and labels differ in length",
        ));
    }
    let (n_items, n_values) = (table.table.n_items() as i64, table.table.n_values() as i64);
    let mut answers = Vec::with_capacity(items.len());
    for (&item, &value) in items.iter().zip(values) {
        if !(0..n_items).contains(&item) || !(0..n_values).contains(&value) {
            return Err(PyValueError::new_err(format!(
                "known answer ({item}, {value}) is outside the table"
            )));
        }
        answers.push((item as u32, value as u32));
    }
    Ok(Some(Known { answers }))
}

/// Run `method` (mv, wawa, zbs, gold-mv, ds, one-coin-ds, glad, mace, kos, mmsr) and return
/// a dict: `labels` (value id per item, −1 when undecided), `tied`, and where the model has
/// them `probas` (items × values), `skills`, `confusion` (annotators × true × observed) with
/// `observed` (annotators × values), `priors`, `alphas`, `betas`, `thetas`, `loss_history`,
/// `iterations`.
#[pyfunction]
#[pyo3(signature = (table, method, *, tie="first", seed=0, iterations=None, tol=None, known_items=None, known_values=None, smoothing=0.0, skills=None, mace_variational=true, mace_restarts=10))]
#[allow(clippy::too_many_arguments)]
pub fn aggregate<'py>(
    py: Python<'py>,
    table: &Table,
    method: &str,
    tie: &str,
    seed: u64,
    iterations: Option<usize>,
    tol: Option<f64>,
    known_items: Option<PyReadonlyArray1<'_, i64>>,
    known_values: Option<PyReadonlyArray1<'_, i64>>,
    smoothing: f64,
    skills: Option<PyReadonlyArray1<'_, f64>>,
    mace_variational: bool,
    mace_restarts: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let method: Method = method.parse().map_err(PyValueError::new_err)?;
    let tie: TieRule = tie.parse().map_err(PyValueError::new_err)?;
    let skills = match skills {
        Some(s) if s.len()? != table.table.n_annotators() => {
            return Err(PyValueError::new_err(format!(
                "skills: {} weights for {} annotators",
                s.len()?,
                table.table.n_annotators()
            )));
        }
        Some(s) => Some(s.as_slice()?.to_vec()),
        None => None,
    };
    let options = AggregateOptions {
        tie,
        seed,
        iterations,
        tol,
        known: known_answers(table, known_items, known_values)?,
        smoothing,
        skills,
        mace_variational,
        mace_restarts,
    };
    let engine_table = &table.table;
    let result = py
        .allow_threads(|| run_model(engine_table, method, &options, &|_, _| {}))
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    to_dict(py, result, table.table.n_annotators())
}

/// Posteriors as a row-major items × values matrix (vote shares are kept sparse by the engine).
fn dense_probas(probas: Posteriors, n_items: usize, k: usize) -> Vec<f64> {
    match probas {
        Posteriors::Dense(values) => values,
        Posteriors::Sparse {
            offsets,
            classes,
            shares,
        } => {
            let mut dense = vec![0.0; n_items * k];
            for item in 0..n_items {
                let span = offsets[item] as usize..offsets[item + 1] as usize;
                for (&class, &share) in classes[span.clone()].iter().zip(&shares[span]) {
                    dense[item * k + class as usize] = share;
                }
            }
            dense
        }
    }
}

fn to_dict(
    py: Python<'_>,
    result: Aggregation,
    n_annotators: usize,
) -> PyResult<Bound<'_, PyDict>> {
    let k = result.k;
    let n_items = result.labels.len();
    let out = PyDict::new(py);
    let labels: Vec<i64> = result
        .labels
        .iter()
        .map(|l| l.map_or(-1, i64::from))
        .collect();
    out.set_item("labels", PyArray1::from_vec(py, labels))?;
    out.set_item("tied", PyArray1::from_vec(py, result.tied))?;
    if let Some(probas) = result.probas {
        let dense = dense_probas(probas, n_items, k);
        out.set_item(
            "probas",
            PyArray1::from_vec(py, dense).reshape([n_items, k])?,
        )?;
    }
    if let Some(skills) = result.skills {
        out.set_item("skills", PyArray1::from_vec(py, skills))?;
    }
    if let Some(confusion) = result.confusion {
        let ck = confusion.k;
        out.set_item(
            "confusion",
            PyArray1::from_vec(py, confusion.p).reshape([n_annotators, ck, ck])?,
        )?;
        out.set_item(
            "observed",
            PyArray1::from_vec(py, confusion.observed).reshape([n_annotators, ck])?,
        )?;
    }
    if let Some(priors) = result.priors {
        out.set_item("priors", PyArray1::from_vec(py, priors))?;
    }
    if let Some(alphas) = result.alphas {
        out.set_item("alphas", PyArray1::from_vec(py, alphas))?;
    }
    if let Some(betas) = result.betas {
        out.set_item("betas", PyArray1::from_vec(py, betas))?;
    }
    if let Some(thetas) = result.thetas {
        out.set_item(
            "thetas",
            PyArray1::from_vec(py, thetas).reshape([n_annotators, k])?,
        )?;
    }
    out.set_item("loss_history", result.loss_history)?;
    out.set_item("iterations", result.iterations)?;
    Ok(out)
}
