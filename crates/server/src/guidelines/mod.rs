//! Versioned guidelines: drafts, publishing, the editor, versions and their diff.

pub(crate) mod api;
pub(crate) mod pages;

use concord_store::{ExampleScope, GuidelineExample, LabelSchema};
use minijinja::{Value, context};

/// The name the schema gives a category code (the first option with that code), if any.
fn category_name<'a>(schema: &'a LabelSchema, code: &str) -> Option<&'a str> {
    schema
        .questions
        .iter()
        .flat_map(|q| q.options.iter())
        .find(|o| o.value == code)
        .map(|o| o.label.as_str())
}

/// A guideline's examples grouped by category (with the category's name from the label
/// schema), for the guideline panel and pages.
pub(crate) fn examples_by_category(
    examples: &[GuidelineExample],
    schema: &LabelSchema,
) -> Vec<Value> {
    let mut categories: Vec<&str> = examples.iter().map(|e| e.category.as_str()).collect();
    categories.sort_unstable();
    categories.dedup();
    categories
        .into_iter()
        .map(|category| {
            let of = |scope| {
                examples
                    .iter()
                    .filter(|e| e.category == category && e.scope == scope)
                    .map(|e| e.text.clone())
                    .collect::<Vec<_>>()
            };
            let name = category_name(schema, category).unwrap_or(category);
            context! { category, name, in_scope => of(ExampleScope::InScope), out_of_scope => of(ExampleScope::OutOfScope) }
        })
        .collect()
}
