//! Placeholder: filled in by the kos implementation.

use super::{AggregateError, AggregateOptions, Aggregation};
use crate::table::AnnotationTable;

pub fn kos(
    _table: &AnnotationTable,
    _options: &AggregateOptions,
) -> Result<Aggregation, AggregateError> {
    Err(AggregateError::Invalid("kos is not implemented yet".into()))
}
