//! Placeholder: filled in by the mace implementation.

use super::{AggregateError, AggregateOptions, Aggregation};
use crate::table::AnnotationTable;

pub fn mace(
    _table: &AnnotationTable,
    _options: &AggregateOptions,
    _progress: &(dyn Fn(usize, f64) + Sync),
) -> Result<Aggregation, AggregateError> {
    Err(AggregateError::Invalid(
        "mace is not implemented yet".into(),
    ))
}
