//! Placeholder: filled in by the glad implementation.

use super::{AggregateError, AggregateOptions, Aggregation};
use crate::table::AnnotationTable;

pub fn glad(
    _table: &AnnotationTable,
    _options: &AggregateOptions,
    _progress: &(dyn Fn(usize, f64) + Sync),
) -> Result<Aggregation, AggregateError> {
    Err(AggregateError::Invalid(
        "glad is not implemented yet".into(),
    ))
}
