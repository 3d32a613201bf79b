//! Multi-label aggregation by binary relevance: for every category, aggregate
//! "category present" vs "absent" with any base model; an item gets the categories whose
//! binary consensus is "present".

use super::{AggregateError, AggregateOptions, Aggregation, Method, aggregate};
use crate::table::{AnnotationTable, LabelKind, LabelSpec, LabelTypeRequest, TableBuilder};

/// Consensus for one category of a multi-label table.
pub struct CategoryConsensus {
    pub category: String,
    pub aggregation: Aggregation,
}

/// The binary "element present?" table for one element of a set-valued table.
pub fn presence_table(
    table: &AnnotationTable,
    element: u32,
) -> Result<AnnotationTable, AggregateError> {
    let mut builder = TableBuilder {
        items: table.items().clone(),
        annotators: table.annotators().clone(),
        ..TableBuilder::default()
    };
    let absent = builder.raw_labels.intern("0").0;
    let present = builder.raw_labels.intern("1").0;
    for item in 0..table.n_items() as u32 {
        for (annotator, value) in table.item_ratings(item) {
            let has = table.values().set_members(value).contains(&element);
            builder.push_ids(item, annotator, if has { present } else { absent });
        }
    }
    let spec = LabelSpec {
        kind: LabelTypeRequest::Exactly(LabelKind::Int),
        categories: Some(vec!["0".into(), "1".into()]),
    };
    builder
        .build(&spec)
        .map_err(|e| AggregateError::Invalid(e.to_string()))
}

/// Binary relevance over `method`. Returns per-item category sets (element ids, sorted)
/// and the per-category aggregations.
pub fn binary_relevance(
    table: &AnnotationTable,
    method: Method,
    options: &AggregateOptions,
    progress: &(dyn Fn(usize, f64) + Sync),
) -> Result<(Vec<Vec<u32>>, Vec<CategoryConsensus>), AggregateError> {
    if !table.values().is_sets() {
        return Err(AggregateError::Invalid(
            "multi-label aggregation needs --label-type set".into(),
        ));
    }
    let mut labels: Vec<Vec<u32>> = vec![Vec::new(); table.n_items()];
    let mut per_category = Vec::new();
    for (element, name) in table.values().elements().iter().enumerate() {
        let binary = presence_table(table, element as u32)?;
        let mut element_options = options.clone();
        element_options.known = None;
        let aggregation = aggregate(&binary, method, &element_options, progress)?;
        for (item, label) in aggregation.labels.iter().enumerate() {
            if *label == Some(1) {
                labels[item].push(element as u32);
            }
        }
        per_category.push(CategoryConsensus {
            category: name.clone(),
            aggregation,
        });
    }
    Ok((labels, per_category))
}
