//! Per-item agreement and entropy, and per-category (one-vs-rest) α.

use rayon::prelude::*;
use serde::Serialize;

use super::krippendorff::alpha;
use super::{Estimate, Inference};
use crate::table::{AnnotationTable, ValueDomain};
use crate::units::Units;
use crate::weights::Level;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ItemAgreement {
    pub item: u32,
    pub ratings: u32,
    /// Most frequent value (first in value order on ties).
    pub top_value: u32,
    /// Share of ratings in the top value.
    pub top_share: f64,
    /// Share of agreeing pairs of ratings; `None` with fewer than two ratings.
    pub pairwise_agreement: Option<f64>,
    /// Shannon entropy (nats) of the item's label distribution.
    pub entropy: f64,
}

/// Agreement and entropy of every item, in item order.
pub fn per_item_agreement(table: &AnnotationTable) -> Vec<ItemAgreement> {
    let q = table.n_values();
    (0..table.n_items() as u32)
        .into_par_iter()
        .with_min_len(4096)
        .map_init(
            || vec![0u32; q],
            |counts, item| {
                counts.iter_mut().for_each(|c| *c = 0);
                let values = table.item_values(item);
                for &v in values {
                    counts[v as usize] += 1;
                }
                let r = values.len() as f64;
                let (mut top_value, mut top) = (0u32, 0u32);
                let mut agreeing = 0.0;
                let mut entropy = 0.0;
                for (k, &c) in counts.iter().enumerate() {
                    if c > top {
                        top = c;
                        top_value = k as u32;
                    }
                    if c > 0 {
                        let c = f64::from(c);
                        agreeing += c * (c - 1.0);
                        let p = c / r;
                        entropy -= p * p.ln();
                    }
                }
                ItemAgreement {
                    item,
                    ratings: values.len() as u32,
                    top_value,
                    top_share: f64::from(top) / r,
                    pairwise_agreement: (r >= 2.0).then(|| agreeing / (r * (r - 1.0))),
                    entropy: entropy.max(0.0),
                }
            },
        )
        .collect()
}

#[derive(Clone, Debug, Serialize)]
pub struct CategoryAlpha {
    /// Category name (an element name for multi-label data).
    pub category: String,
    /// Ratings that chose this category.
    pub ratings: f64,
    pub estimate: Estimate,
}

/// Nominal α of "category c vs everything else", for every category (for multi-label
/// data: every element, present vs absent).
pub fn per_category_alpha(
    units: &Units,
    domain: &ValueDomain,
    inference: &Inference,
) -> Vec<CategoryAlpha> {
    let binary = ValueDomain::categories(vec!["other".into(), "this".into()]);
    let categories: Vec<(String, Vec<bool>)> = if domain.is_sets() {
        domain
            .elements()
            .iter()
            .enumerate()
            .map(|(e, name)| {
                let member = (0..domain.len() as u32)
                    .map(|v| domain.set_members(v).contains(&(e as u32)))
                    .collect();
                (name.clone(), member)
            })
            .collect()
    } else {
        (0..domain.len())
            .map(|c| {
                (
                    domain.name(c as u32).to_string(),
                    (0..domain.len()).map(|v| v == c).collect(),
                )
            })
            .collect()
    };
    categories
        .into_par_iter()
        .map(|(category, member)| {
            let mut counts = Vec::with_capacity(units.n_patterns() * 2);
            for p in 0..units.n_patterns() {
                let this: f64 = units
                    .counts_of(p)
                    .iter()
                    .zip(&member)
                    .filter(|(_, m)| **m)
                    .map(|(c, _)| c)
                    .sum();
                counts.push(units.ratings[p] - this);
                counts.push(this);
            }
            let recoded = Units {
                q: 2,
                counts,
                ratings: units.ratings.clone(),
                multiplicity: units.multiplicity.clone(),
            };
            let ratings = recoded.category_totals()[1];
            let estimate = alpha(&recoded, &binary, Level::Nominal, inference)
                .unwrap_or_else(Estimate::undefined);
            CategoryAlpha {
                category,
                ratings,
                estimate,
            }
        })
        .collect()
}
