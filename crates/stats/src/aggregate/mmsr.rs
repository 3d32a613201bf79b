//! Placeholder: filled in by the mmsr implementation.

use super::{AggregateError, AggregateOptions, Aggregation};
use crate::table::AnnotationTable;

pub fn mmsr(
    _table: &AnnotationTable,
    _options: &AggregateOptions,
) -> Result<Aggregation, AggregateError> {
    Err(AggregateError::Invalid(
        "mmsr is not implemented yet".into(),
    ))
}
