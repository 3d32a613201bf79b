//! `concord._engine`: the Python extension over `concord-stats`.
//!
//! Thin on purpose: it builds an [`AnnotationTable`](concord_stats::AnnotationTable) from
//! integer codes (pandas factorizes the columns; the codes are read in place), calls the
//! engine with the GIL released, and hands results back as NumPy arrays. Every algorithm
//! is the engine's; the Python package (`python/concord/`) gives them crowd-kit's shape.

mod aggregate;
mod agreement;
mod table;

use pyo3::prelude::*;

#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<table::Table>()?;
    m.add_function(wrap_pyfunction!(aggregate::aggregate, m)?)?;
    m.add_function(wrap_pyfunction!(agreement::agreement, m)?)?;
    m.add_function(wrap_pyfunction!(agreement::default_metrics, m)?)?;
    m.add_function(wrap_pyfunction!(agreement::cohen_pairs, m)?)?;
    Ok(())
}
