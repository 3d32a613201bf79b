//! KOS (Karger, Oh & Shah 2011): iterative message passing on the item–annotator graph
//! for binary labels.
//!
//! Semantics follow crowd-kit 1.4 (`crowdkit.aggregation.KOS`):
//!
//! * binary only: the data must use exactly two labels; the first label to appear maps
//!   to +1, the other to −1;
//! * one message per rating, initialised from Normal(1, 1) drawn with numpy's legacy
//!   MT19937 `gauss` (seed `options.seed`), one draw per rating;
//! * each iteration sends item → annotator messages (item sum minus the edge's own
//!   contribution), then annotator → item messages likewise; before each half-step, if
//!   any sum exceeds 1e300 in magnitude the loop stops (the overflow guard);
//! * label = sign of Σ A·y over the item's ratings.
//!
//! Differences from crowd-kit:
//!
//! * Draws are made in the table's row order (ratings grouped by item in first-appearance
//!   order, input order within an item). This equals crowd-kit's order when the input is
//!   grouped by item; otherwise the initial messages are permuted and results can differ
//!   (KOS is sensitive to its random start).
//! * A score of exactly 0 (crowd-kit raises a KeyError) marks the item as tied between
//!   the two labels, resolved by the tie rule (`first`: the smaller label in sorted order).
//! * `probas` is `None`: KOS scores grow geometrically with the iteration count and are not
//!   probabilities.
//!
//! The item → annotator messages are folded into per-item sums (see the loop), so an
//! iteration is three sequential passes over the ratings; the sums are algebraically those
//! of crowd-kit, with different rounding (labels agree unless a score is within rounding
//! of 0). Sums run in a fixed order, so
//! results do not depend on the thread count.

use rayon::prelude::*;

use super::mace::{Mt19937, fixed_chunk_size, numpy_seed};
use super::{AggregateError, AggregateOptions, Aggregation, Method, argmax_with_ties};
use crate::buffers::written_zeros;
use crate::table::AnnotationTable;

const OVERFLOW: f64 = 1e300;
const DEFAULT_ITERATIONS: usize = 100;

/// KOS for binary labels.
pub fn kos(
    table: &AnnotationTable,
    options: &AggregateOptions,
) -> Result<Aggregation, AggregateError> {
    let n_rows = table.n_rows();
    let n_items = table.n_items();
    let n_annotators = table.n_annotators();
    let n_values = table.n_values();
    let mut present = vec![false; n_values];
    for item in 0..n_items as u32 {
        for &v in table.item_values(item) {
            present[v as usize] = true;
        }
    }
    let mut labels: Vec<u32> = (0..n_values as u32)
        .filter(|&v| present[v as usize])
        .collect();
    if labels.len() != 2 {
        return Err(AggregateError::Invalid(format!(
            "KOS is for binary labels: the data has {} distinct label{}, it needs exactly 2",
            labels.len(),
            if labels.len() == 1 { "" } else { "s" }
        )));
    }
    labels.sort_by_key(|&v| table.values().first_seen_rank(v));
    let (positive, negative) = (labels[0], labels[1]);

    // Row-ordered (item-grouped) columns.
    let mut sign = vec![0.0f64; n_rows];
    let mut row_item = vec![0u32; n_rows];
    for item in 0..n_items as u32 {
        let range = table.item_rows(item);
        for (slot, &v) in sign[range.clone()].iter_mut().zip(table.item_values(item)) {
            *slot = if v == positive { 1.0 } else { -1.0 };
        }
        row_item[range].iter_mut().for_each(|r| *r = item);
    }

    // Annotator → item messages y, one per rating (row order).
    let mut rng = Mt19937::new(numpy_seed(options.seed));
    let mut y: Vec<f64> = (0..n_rows).map(|_| 1.0 + rng.gauss()).collect();
    let item_sums = |y: &[f64]| -> Vec<f64> {
        (0..n_items as u32)
            .into_par_iter()
            .with_min_len(1024)
            .map(|item| {
                let range = table.item_rows(item);
                sign[range.clone()]
                    .iter()
                    .zip(&y[range])
                    .map(|(s, m)| s * m)
                    .sum()
            })
            .collect()
    };
    // The item → annotator messages are never stored: with item sums a_t = Σ A·y,
    // x_e = a_t − A_e·y_e, so the annotator sums are b_w = Σ_{e∈w} (A_e·a_t − y_e) and the
    // new messages y_e' = b_w − A_e·x_e = y_e + b_w − A_e·a_t. Every pass runs over the
    // rows in item order; annotator sums use fixed item chunks summed in chunk order.
    let chunk_items = fixed_chunk_size(n_items, n_annotators);
    let n_chunks = n_items.div_ceil(chunk_items);
    let n_iter = options.iterations.unwrap_or(DEFAULT_ITERATIONS);
    let mut iterations = 0;
    for _ in 0..n_iter {
        let item_total = item_sums(&y);
        if item_total.iter().any(|s| s.abs() > OVERFLOW) {
            break;
        }
        let partials: Vec<Vec<f64>> = (0..n_chunks)
            .into_par_iter()
            .map(|chunk| {
                let mut acc = written_zeros(n_annotators);
                let items = chunk * chunk_items..((chunk + 1) * chunk_items).min(n_items);
                for item in items {
                    let a_t = item_total[item];
                    let range = table.item_rows(item as u32);
                    for ((&w, s), m) in table
                        .item_annotators(item as u32)
                        .iter()
                        .zip(&sign[range.clone()])
                        .zip(&y[range])
                    {
                        acc[w as usize] += s * a_t - m;
                    }
                }
                acc
            })
            .collect();
        let mut annotator_total = vec![0.0; n_annotators];
        for part in partials {
            annotator_total
                .iter_mut()
                .zip(&part)
                .for_each(|(t, p)| *t += p);
        }
        if annotator_total.iter().any(|s| s.abs() > OVERFLOW) {
            break;
        }
        y.par_iter_mut()
            .with_min_len(4096)
            .enumerate()
            .for_each(|(row, m)| {
                let w = table.row_annotator(row as u32) as usize;
                *m += annotator_total[w] - sign[row] * item_total[row_item[row] as usize];
            });
        iterations += 1;
    }

    let scores = item_sums(&y);
    let mut result = Aggregation::new(Method::Kos, table);
    // Tied scores go through the tie rule over the two labels in sorted order.
    let (low, high) = (positive.min(negative), positive.max(negative));
    for (item, &score) in scores.iter().enumerate() {
        if score > 0.0 {
            result.labels[item] = Some(positive);
        } else if score < 0.0 {
            result.labels[item] = Some(negative);
        } else {
            let (pick, _) = argmax_with_ties(&[0.0, 0.0], options.tie, options.seed, item as u64);
            result.labels[item] = pick.map(|i| if i == 0 { low } else { high });
            result.tied[item] = true;
        }
    }
    result.iterations = iterations;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{LabelKind, LabelSpec, LabelTypeRequest};

    fn bool_spec() -> LabelSpec {
        LabelSpec {
            kind: LabelTypeRequest::Exactly(LabelKind::Bool),
            categories: None,
        }
    }

    /// ck_kos_bool_labels: KOS(n_iter=10), seed 0; True appears first and maps to +1.
    #[test]
    fn ck_kos_bool_labels() {
        let triples = [
            ("t1", "w1", "true"),
            ("t2", "w1", "true"),
            ("t1", "w2", "true"),
            ("t2", "w2", "true"),
            ("t1", "w3", "false"),
            ("t2", "w3", "false"),
        ];
        let table = AnnotationTable::from_triples(triples, &bool_spec()).unwrap();
        let options = AggregateOptions {
            iterations: Some(10),
            ..Default::default()
        };
        let result = kos(&table, &options).unwrap();
        let truth = table.values().find("true").unwrap();
        for item in 0..2u32 {
            assert_eq!(
                result.labels[item as usize],
                Some(truth),
                "{}",
                table.item_name(item)
            );
            assert!(!result.tied[item as usize]);
        }
        assert_eq!(result.iterations, 10);
        // The default (100 iterations) agrees.
        let result = kos(&table, &AggregateOptions::default()).unwrap();
        assert_eq!(result.labels, vec![Some(truth); 2]);
    }

    /// crowd-kit KOS(n_iter=10) on the item-grouped ck_dawid_skene_toy data, checked with
    /// the clean-room numpy port (t4 comes out 'no' although all five said 'yes').
    #[test]
    fn dawid_skene_toy_grouped_by_item() {
        let mut triples = crate::aggregate::fixtures::TOY.to_vec();
        triples.sort_by_key(|t| t.0);
        let table = AnnotationTable::from_triples(triples, &LabelSpec::default()).unwrap();
        // crowd-kit's labels for t1..t5 at n_iter = 1, 2, 10, 100.
        let expected = [
            (1, ["yes", "yes", "no", "no", "no"]),
            (2, ["yes", "no", "yes", "no", "yes"]),
            (10, ["yes", "yes", "no", "no", "no"]),
            (100, ["no", "yes", "no", "no", "yes"]),
        ];
        for (n_iter, labels) in expected {
            let options = AggregateOptions {
                iterations: Some(n_iter),
                ..Default::default()
            };
            let result = kos(&table, &options).unwrap();
            for (item, label) in labels.iter().enumerate() {
                assert_eq!(table.item_name(item as u32), format!("t{}", item + 1));
                let got = result.labels[item].map(|v| table.values().name(v));
                assert_eq!(got, Some(*label), "n_iter {n_iter}, t{}", item + 1);
            }
        }
    }

    #[test]
    fn non_binary_is_an_error() {
        let table = AnnotationTable::from_triples(
            [("i", "a", "x"), ("i", "b", "y"), ("j", "a", "z")],
            &LabelSpec::default(),
        )
        .unwrap();
        let err = kos(&table, &AggregateOptions::default()).unwrap_err();
        assert!(err.to_string().contains("3 distinct labels"), "{err}");
        let table =
            AnnotationTable::from_triples([("i", "a", "x")], &LabelSpec::default()).unwrap();
        let err = kos(&table, &AggregateOptions::default()).unwrap_err();
        assert!(err.to_string().contains("1 distinct label,"), "{err}");
    }

    #[test]
    fn zero_score_is_a_tie() {
        // One annotator, one rating per item: after one iteration every message is 0.
        let table = AnnotationTable::from_triples(
            [("i", "a", "x"), ("j", "a", "y")],
            &LabelSpec::default(),
        )
        .unwrap();
        let options = AggregateOptions {
            iterations: Some(1),
            ..Default::default()
        };
        let result = kos(&table, &options).unwrap();
        assert_eq!(result.tied, vec![true, true]);
        assert_eq!(result.labels, vec![Some(0), Some(0)]);
        let options = AggregateOptions {
            iterations: Some(1),
            tie: crate::aggregate::TieRule::Undecided,
            ..Default::default()
        };
        assert_eq!(kos(&table, &options).unwrap().labels, vec![None, None]);
    }

    #[test]
    fn results_do_not_depend_on_thread_count() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
        let names: Vec<(String, String, &str)> = (0..3000)
            .map(|r| {
                let item = format!("i{}", r / 4);
                let annotator = format!("a{}", rng.random_range(0..40));
                let label = if rng.random_bool(0.7) { "x" } else { "y" };
                (item, annotator, label)
            })
            .collect();
        let table = AnnotationTable::from_triples(
            names.iter().map(|(i, a, l)| (i.as_str(), a.as_str(), *l)),
            &LabelSpec::default(),
        )
        .unwrap();
        let options = AggregateOptions::default();
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| kos(&table, &options).unwrap())
        };
        let (one, many) = (run(1), run(3));
        assert_eq!(one.labels, many.labels);
        assert_eq!(one.iterations, many.iterations);
    }
}
