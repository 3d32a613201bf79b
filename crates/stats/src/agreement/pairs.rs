//! Cohen's κ for every pair of annotators that share at least `min_shared` items.
//!
//! One pass over items emits (pair, label A, label B) for every pair of annotators
//! on an item; a parallel sort groups them by pair; each group becomes a contingency
//! table. Memory is proportional to the number of co-ratings, never annotators².

use rayon::prelude::*;
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

/// Cohen's κ for all pairs with at least `min_shared` shared items, sorted by pair.
pub fn pairwise_cohen(
    table: &AnnotationTable,
    weights: CohenWeights,
    min_shared: u64,
    inference: &Inference,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<PairAgreement> {
    let q = table.n_values();
    // (a, b) with a < b by name order, and their two labels.
    let name_less = |a: u32, b: u32| table.annotator_name(a) < table.annotator_name(b);
    let mut entries: Vec<(u64, u32, u32)> = (0..table.n_items() as u32)
        .into_par_iter()
        .with_min_len(2048)
        .fold(
            || (Vec::new(), Vec::new()),
            |(mut out, mut scratch): (Vec<(u64, u32, u32)>, Vec<(u32, u32)>), item| {
                last_ratings(table, item, &mut scratch);
                for i in 0..scratch.len() {
                    for j in i + 1..scratch.len() {
                        let (mut x, mut y) = (scratch[i], scratch[j]);
                        if !name_less(x.0, y.0) {
                            std::mem::swap(&mut x, &mut y);
                        }
                        out.push(((u64::from(x.0) << 32) | u64::from(y.0), x.1, y.1));
                    }
                }
                (out, scratch)
            },
        )
        .map(|(out, _)| out)
        .reduce(Vec::new, |mut a, mut b| {
            if a.len() < b.len() {
                std::mem::swap(&mut a, &mut b);
            }
            a.extend_from_slice(&b);
            a
        });
    entries.par_sort_unstable_by_key(|e| e.0);
    // Group boundaries.
    let mut starts: Vec<usize> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if i == 0 || entries[i - 1].0 != e.0 {
            starts.push(i);
        }
    }
    starts.push(entries.len());
    let groups: Vec<(usize, usize)> = starts
        .windows(2)
        .map(|w| (w[0], w[1]))
        .filter(|(s, e)| (e - s) as u64 >= min_shared.max(1))
        .collect();
    let total = groups.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let declared = table.values().declared();
    groups
        .par_iter()
        .map(|&(start, end)| {
            let mut ct = ContingencyTable::new(q);
            for &(_, va, vb) in &entries[start..end] {
                ct.counts[va as usize * q + vb as usize] += 1.0;
            }
            let ct = if declared {
                ct
            } else {
                ct.restrict(&ct.used_categories())
            };
            let estimate = cohen_kappa(&ct, &weights.matrix(ct.q), inference);
            let finished = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if finished % 1024 == 0 || finished == total {
                progress(finished, total);
            }
            let key = entries[start].0;
            PairAgreement {
                annotator_a: (key >> 32) as u32,
                annotator_b: key as u32,
                shared_items: (end - start) as u64,
                estimate,
            }
        })
        .collect()
}
