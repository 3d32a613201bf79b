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
        let mut patterns = match PackedCounts::for_table(table) {
            Some(packed) => patterns_by_packed_counts(table, keep, packed),
            None => patterns_by_sorted_values(table, keep),
        };
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

/// An item's category counts packed into one `u64`, `width` bits per category: with a few
/// categories and ratings per item (the usual case) an item's key is a sum of shifted ones,
/// with no sorting and no allocation, and the hash map's keys are plain integers.
#[derive(Clone, Copy, Debug)]
struct PackedCounts {
    width: u32,
}

impl PackedCounts {
    /// The packing for this table, if every item's counts fit.
    fn for_table(table: &AnnotationTable) -> Option<Self> {
        let most_ratings = (0..table.n_items() as u32)
            .map(|item| table.item_values(item).len())
            .max()
            .unwrap_or(0);
        // Room for the largest count an item can have in one category.
        let width = usize::BITS - most_ratings.leading_zeros();
        let fits = (width as usize)
            .checked_mul(table.n_values())
            .is_some_and(|bits| bits <= 64);
        (width > 0 && fits).then_some(Self { width })
    }

    fn key(self, values: &[u32]) -> u64 {
        values.iter().map(|&v| 1u64 << (v * self.width)).sum()
    }

    /// The item's values in ascending order, as the sorted-values key holds them.
    fn sorted_values(self, key: u64, q: usize) -> Vec<u32> {
        let mask = (1u64 << self.width) - 1;
        let mut values = Vec::new();
        for category in 0..q as u32 {
            let count = (key >> (category * self.width)) & mask;
            values.extend(std::iter::repeat_n(category, count as usize));
        }
        values
    }
}

type KeepItem<'a> = Option<&'a (dyn Fn(u32) -> bool + Sync)>;

/// Patterns keyed by packed counts, returned as (sorted values, items).
fn patterns_by_packed_counts(
    table: &AnnotationTable,
    keep: KeepItem<'_>,
    packed: PackedCounts,
) -> Vec<(Vec<u32>, f64)> {
    let counts = (0..table.n_items() as u32)
        .into_par_iter()
        .with_min_len(4096)
        .fold(FxHashMap::<u64, f64>::default, |mut map, item| {
            if keep.is_none_or(|keep| keep(item)) {
                *map.entry(packed.key(table.item_values(item)))
                    .or_insert(0.0) += 1.0;
            }
            map
        })
        .reduce(FxHashMap::default, merge);
    counts
        .into_iter()
        .map(|(key, items)| (packed.sorted_values(key, table.n_values()), items))
        .collect()
}

/// Patterns keyed by the item's values sorted (a multiset determines the count vector):
/// for tables whose counts do not pack into a `u64`.
fn patterns_by_sorted_values(table: &AnnotationTable, keep: KeepItem<'_>) -> Vec<(Vec<u32>, f64)> {
    let counts = (0..table.n_items() as u32)
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
        .reduce(FxHashMap::default, merge);
    counts.into_iter().collect()
}

/// The sum of two maps of item counts, the smaller added into the larger. The counts are
/// whole numbers, so the order of the additions does not change them.
fn merge<K: std::hash::Hash + Eq>(a: FxHashMap<K, f64>, b: FxHashMap<K, f64>) -> FxHashMap<K, f64> {
    let (mut large, small) = if a.len() < b.len() { (b, a) } else { (a, b) };
    for (k, v) in small {
        *large.entry(k).or_insert(0.0) += v;
    }
    large
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::LabelSpec;

    /// Items of 1–`max_ratings` ratings over `categories` labels, from a fixed LCG.
    fn table(items: usize, categories: u64, max_ratings: u64) -> AnnotationTable {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |bound: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % bound
        };
        let mut rows = Vec::new();
        for item in 0..items {
            for annotator in 0..=next(max_ratings - 1) {
                let label = format!("c{}", next(categories));
                rows.push((format!("i{item}"), format!("a{annotator}"), label));
            }
        }
        let triples = rows
            .iter()
            .map(|(i, a, l)| (i.as_str(), a.as_str(), l.as_str()));
        AnnotationTable::from_triples(triples, &LabelSpec::default()).unwrap()
    }

    fn sorted(mut patterns: Vec<(Vec<u32>, f64)>) -> Vec<(Vec<u32>, f64)> {
        patterns.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        patterns
    }

    #[test]
    fn packed_counts_find_the_patterns_sorted_values_find() {
        let table = table(20_000, 7, 9);
        let packed = PackedCounts::for_table(&table).expect("7 categories × 4 bits fit");
        assert_eq!(packed.width, 4, "up to 9 ratings need four bits");
        let odd_items = |item: u32| item % 2 == 1;
        for keep in [None, Some(&odd_items as &(dyn Fn(u32) -> bool + Sync))] {
            let by_packing = sorted(patterns_by_packed_counts(&table, keep, packed));
            let by_sorting = sorted(patterns_by_sorted_values(&table, keep));
            assert!(by_packing.len() > 100);
            assert_eq!(by_packing, by_sorting);
        }
    }

    #[test]
    fn counts_that_do_not_fit_a_u64_are_grouped_by_sorted_values() {
        // 30 categories × 4 bits is more than 64.
        let table = table(2_000, 30, 9);
        assert!(PackedCounts::for_table(&table).is_none());
        let units = Units::from_table(&table);
        assert_eq!(units.n_items(), 2_000.0);
        assert_eq!(
            units.pairable_values() + units.n_items() - units.pairable_items(),
            table.n_rows() as f64
        );
    }
}
