//! Versioned guidelines: drafts, publishing, the editor, versions and their diff.

pub(crate) mod api;
pub(crate) mod pages;

use concord_store::{ExampleScope, GuidelineExample};
use minijinja::{Value, context};

/// A guideline's examples grouped by category, for the guideline panel and pages.
pub(crate) fn examples_by_category(examples: &[GuidelineExample]) -> Vec<Value> {
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
            context! { category, in_scope => of(ExampleScope::InScope), out_of_scope => of(ExampleScope::OutOfScope) }
        })
        .collect()
}
