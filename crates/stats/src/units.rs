//! Items reduced to their category-count vectors, grouped into distinct patterns.
//!
//! Every count-based coefficient (percent agreement, Fleiss, Gwet, Brennan–Prediger,
//! Krippendorff) depends on an item only through how many of its ratings fall in each
//! category. Items with the same counts are interchangeable, so a million items with
//! five ratings over ten categories collapse to at most a few thousand patterns —
//! and the item-cluster bootstrap can resample patterns with a multinomial draw
//! instead of touching every item.

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::table::AnnotationTable;

/// Distinct count patterns with their multiplicities.
#[derive(Clone, Debug, PartialEq)]
pub struct Units {
    /// Number of categories.
    pub q: usize,
    /// Row-major P × q category counts.
    pub counts: Vec<f64>,
    /// Ratings per pattern (row sums of `counts`).
    pub ratings: Vec<f64>,
    /// How many items have each pattern.
    pub multiplicity: Vec<f64>,
}

impl Units {
    pub fn n_patterns(&self) -> usize {
        self.multiplicity.len()
    }

    #[inline]
    pub fn counts_of(&self, p: usize) -> &[f64] {
        &self.counts[p * self.q..(p + 1) * self.q]
    }

    /// Number of items (patterns weighted by multiplicity).
    pub fn n_items(&self) -> f64 {
        self.multiplicity.iter().sum()
    }

    /// Build from explicit per-item count vectors (tests, tables given as counts).
    pub fn from_item_counts(q: usize, items: &[Vec<f64>]) -> Self {
        let mut index: FxHashMap<Vec<u64>, usize> = FxHashMap::default();
        let mut units = Units {
            q,
            counts: Vec::new(),
            ratings: Vec::new(),
            multiplicity: Vec::new(),
        };
        for counts in items {
            let key: Vec<u64> = counts.iter().map(|c| c.to_bits()).collect();
            let p = *index.entry(key).or_insert_with(|| {
                units.counts.extend_from_slice(counts);
                units.ratings.push(counts.iter().sum());
                units.multiplicity.push(0.0);
                units.multiplicity.len() - 1
            });
            units.multiplicity[p] += 1.0;
        }
        units
    }

    /// Group a table's items by their count vectors. Every rating counts, repeats
    /// included (conformance README, item 10).
    pub fn from_table(table: &AnnotationTable) -> Self {
        Self::from_table_items(table, None)
    }

    /// Like `from_table`, restricted to the items for which `keep` is true.
    pub fn from_table_items(
        table: &AnnotationTable,
        keep: Option<&(dyn Fn(u32) -> bool + Sync)>,
    ) -> Self {
        let q = table.n_values();
        let n_items = table.n_items() as u32;
        // Key: the item's values sorted (a multiset determines the count vector).
        let local_maps = (0..n_items)
            .into_par_iter()
            .with_min_len(4096)
            .fold(
                || (FxHashMap::<Vec<u32>, f64>::default(), Vec::<u32>::new()),
                |(mut map, mut scratch), item| {
                    if keep.is_none_or(|keep| keep(item)) {
                        scratch.clear();
                        scratch.extend_from_slice(table.item_values(item));
                        scratch.sort_unstable();
                        if let Some(m) = map.get_mut(scratch.as_slice()) {
                            *m += 1.0;
                        } else {
                            map.insert(scratch.clone(), 1.0);
                        }
                    }
                    (map, scratch)
                },
            )
            .map(|(map, _)| map)
            .reduce(FxHashMap::default, |mut a, b| {
                if a.len() < b.len() {
                    return merge(b, a);
                }
                for (k, v) in b {
                    *a.entry(k).or_insert(0.0) += v;
                }
                a
            });
        let mut patterns: Vec<(Vec<u32>, f64)> = local_maps.into_iter().collect();
        // Deterministic order whatever the thread count.
        patterns.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut units = Units {
            q,
            counts: vec![0.0; patterns.len() * q],
            ratings: Vec::with_capacity(patterns.len()),
            multiplicity: Vec::with_capacity(patterns.len()),
        };
        for (p, (values, m)) in patterns.iter().enumerate() {
            for &v in values {
                units.counts[p * q + v as usize] += 1.0;
            }
            units.ratings.push(values.len() as f64);
            units.multiplicity.push(*m);
        }
        units
    }

    /// The same patterns with other multiplicities (a bootstrap replicate).
    pub fn with_multiplicity(&self, multiplicity: Vec<f64>) -> Self {
        Units {
            q: self.q,
            counts: self.counts.clone(),
            ratings: self.ratings.clone(),
            multiplicity,
        }
    }

    /// Total ratings on items with at least two ratings (the pairable values).
    pub fn pairable_values(&self) -> f64 {
        self.ratings
            .iter()
            .zip(&self.multiplicity)
            .filter(|(r, _)| **r >= 2.0)
            .map(|(r, m)| r * m)
            .sum()
    }

    /// Number of items with at least two ratings.
    pub fn pairable_items(&self) -> f64 {
        self.ratings
            .iter()
            .zip(&self.multiplicity)
            .filter(|(r, _)| **r >= 2.0)
            .map(|(_, m)| m)
            .sum()
    }

    /// Total count per category over all items.
    pub fn category_totals(&self) -> Vec<f64> {
        let mut totals = vec![0.0; self.q];
        for p in 0..self.n_patterns() {
            for (t, c) in totals.iter_mut().zip(self.counts_of(p)) {
                *t += c * self.multiplicity[p];
            }
        }
        totals
    }
}

fn merge(mut a: FxHashMap<Vec<u32>, f64>, b: FxHashMap<Vec<u32>, f64>) -> FxHashMap<Vec<u32>, f64> {
    for (k, v) in b {
        *a.entry(k).or_insert(0.0) += v;
    }
    a
}
