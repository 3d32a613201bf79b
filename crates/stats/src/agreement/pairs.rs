//! Cohen's κ for every pair of annotators that share at least `min_shared` items.
//!
//! Memory is proportional to one annotator's co-raters per thread, never annotators².

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::Serialize;

use super::conger::last_ratings;
use super::two_rater::{CohenWeights, ContingencyTable, cohen_kappa};
use super::{Estimate, Inference};
use crate::table::AnnotationTable;

#[derive(Clone, Debug, Serialize)]
pub struct PairAgreement {
    pub annotator_a: u32,
    pub annotator_b: u32,
    pub shared_items: u64,
    pub estimate: Estimate,
}

/// Cohen's κ for all pairs with at least `min_shared` shared items, sorted by the pair's
/// annotator names (a < b).
///
/// Each annotator is processed independently (in parallel): walk its items, and for every
/// co-rater whose name sorts after it, count (own label, their label) in a scratch table
/// keyed by co-rater. Work is proportional to the number of co-ratings; memory to one
/// annotator's co-raters per thread.
pub fn pairwise_cohen(
    table: &AnnotationTable,
    weights: CohenWeights,
    min_shared: u64,
    inference: &Inference,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<PairAgreement> {
    let q = table.n_values();
    let n_annotators = table.n_annotators();
    // Rank of each annotator by name: pairs are (lower rank, higher rank).
    let mut by_name: Vec<u32> = (0..n_annotators as u32).collect();
    by_name.par_sort_unstable_by(|&x, &y| table.annotator_name(x).cmp(table.annotator_name(y)));
    let mut rank = vec![0u32; n_annotators];
    for (r, &a) in by_name.iter().enumerate() {
        rank[a as usize] = r as u32;
    }
    let declared = table.values().declared();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let mut pairs: Vec<PairAgreement> = (0..n_annotators as u32)
        .into_par_iter()
        .map_init(
            || {
                (
                    FxHashMap::<u32, usize>::default(),
                    Vec::<u32>::new(),
                    Vec::<(u32, u32)>::new(),
                    Vec::<u32>::new(),
                )
            },
            |(slots, tables, scratch, partners), a| {
                slots.clear();
                tables.clear();
                partners.clear();
                let mut last_item = u32::MAX;
                for &item in table.annotator_items(a) {
                    if item == last_item {
                        continue;
                    }
                    last_item = item;
                    last_ratings(table, item, scratch);
                    let Some(&(_, own)) = scratch.iter().find(|(x, _)| *x == a) else {
                        continue;
                    };
                    for &(b, theirs) in scratch.iter() {
                        if rank[b as usize] <= rank[a as usize] {
                            continue;
                        }
                        let slot = *slots.entry(b).or_insert_with(|| {
                            partners.push(b);
                            tables.resize(tables.len() + q * q, 0);
                            partners.len() - 1
                        });
                        tables[slot * q * q + own as usize * q + theirs as usize] += 1;
                    }
                }
                let mut out = Vec::new();
                for (slot, &b) in partners.iter().enumerate() {
                    let counts = &tables[slot * q * q..(slot + 1) * q * q];
                    let shared: u64 = counts.iter().map(|&c| u64::from(c)).sum();
                    if shared < min_shared.max(1) {
                        continue;
                    }
                    let ct = ContingencyTable {
                        q,
                        counts: counts.iter().map(|&c| f64::from(c)).collect(),
                    };
                    let ct = if declared {
                        ct
                    } else {
                        ct.restrict(&ct.used_categories())
                    };
                    let estimate = cohen_kappa(&ct, &weights.matrix(ct.q), inference);
                    out.push(PairAgreement {
                        annotator_a: a,
                        annotator_b: b,
                        shared_items: shared,
                        estimate,
                    });
                }
                let finished = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if finished % 256 == 0 || finished == n_annotators {
                    progress(finished, n_annotators);
                }
                out
            },
        )
        .flatten()
        .collect();
    pairs
        .par_sort_unstable_by_key(|p| (rank[p.annotator_a as usize], rank[p.annotator_b as usize]));
    pairs
}
