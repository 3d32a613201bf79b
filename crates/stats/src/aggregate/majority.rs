//! Majority vote and its skill-weighted relatives: Wawa, zero-based skill, gold majority vote.
//!
//! Annotator accuracy (the skill of these models) counts each distinct
//! (item, annotator, label) once, as crowd-kit does.

use rayon::prelude::*;

use super::{AggregateError, AggregateOptions, Aggregation, Method, Posteriors};
use crate::buffers::{split_at_bounds, written_zeros};
use crate::table::AnnotationTable;

/// Vote shares per item, each vote weighted by its annotator's skill (1 without skills).
/// Returns row-major n_items × k; a row whose weights sum to 0 is all zero.
pub fn vote_shares(table: &AnnotationTable, skills: Option<&[f64]>) -> Vec<f64> {
    let k = table.n_values();
    let mut probas = written_zeros(table.n_items() * k);
    probas
        .par_chunks_mut(k.max(1))
        .enumerate()
        .with_min_len(1024)
        .for_each(|(item, row)| {
            for (annotator, value) in table.item_ratings(item as u32) {
                row[value as usize] += skills.map_or(1.0, |s| s[annotator as usize]);
            }
            let total: f64 = row.iter().sum();
            if total != 0.0 {
                row.iter_mut().for_each(|v| *v /= total);
            }
        });
    probas
}

/// Accuracy of each annotator against reference labels (`None` = no reference for the item),
/// counting each distinct (item, label) of an annotator once. `None` for annotators with no
/// rated reference item.
pub fn annotator_accuracy(table: &AnnotationTable, reference: &[Option<u32>]) -> Vec<Option<f64>> {
    annotator_accuracy_by(table, |item, value| {
        reference[item as usize].map(|truth| truth == value)
    })
}

/// Like [`annotator_accuracy`], with several acceptable answers per item.
pub fn annotator_accuracy_by(
    table: &AnnotationTable,
    is_correct: impl Fn(u32, u32) -> Option<bool> + Sync,
) -> Vec<Option<f64>> {
    per_annotator_accuracy(&correct_and_scored(table, is_correct))
}

/// Each annotator's share of correct answers among their scored ones.
pub(crate) fn per_annotator_accuracy(counts: &[(u32, u32)]) -> Vec<Option<f64>> {
    counts
        .iter()
        .map(|&(correct, total)| (total > 0).then(|| f64::from(correct) / f64::from(total)))
        .collect()
}

/// Overall accuracy of all distinct answers against references (micro average).
pub fn overall_accuracy(table: &AnnotationTable, reference: &[Option<u32>]) -> Option<f64> {
    overall_accuracy_by(table, |item, value| {
        reference[item as usize].map(|truth| truth == value)
    })
}

/// Like [`overall_accuracy`], with several acceptable answers per item.
pub fn overall_accuracy_by(
    table: &AnnotationTable,
    is_correct: impl Fn(u32, u32) -> Option<bool> + Sync,
) -> Option<f64> {
    micro_accuracy(&correct_and_scored(table, is_correct))
}

/// The share of correct answers among all scored ones.
pub(crate) fn micro_accuracy(counts: &[(u32, u32)]) -> Option<f64> {
    let (correct, total) = counts
        .iter()
        .fold((0u64, 0u64), |(c, t), &(correct, total)| {
            (c + u64::from(correct), t + u64::from(total))
        });
    (total > 0).then(|| correct as f64 / total as f64)
}

/// Per annotator: (correct, scored) over their distinct (item, label) pairs. One pass over
/// the item-major rows, so the annotator index is never needed.
pub(crate) fn correct_and_scored(
    table: &AnnotationTable,
    is_correct: impl Fn(u32, u32) -> Option<bool> + Sync,
) -> Vec<(u32, u32)> {
    let (offsets, annotators, values) = table.item_columns();
    let n_items = table.n_items();
    let n_annotators = table.n_annotators();
    let chunk = n_items.div_ceil(rayon::current_num_threads() * 4).max(4096);
    let add = |mut into: Vec<(u32, u32)>, from: Vec<(u32, u32)>| {
        for (a, b) in into.iter_mut().zip(from) {
            a.0 += b.0;
            a.1 += b.1;
        }
        into
    };
    (0..n_items.div_ceil(chunk))
        .into_par_iter()
        .map(|c| {
            let mut counts = vec![(0u32, 0u32); n_annotators];
            let mut distinct: Vec<(u32, u32)> = Vec::new();
            for item in c * chunk..((c + 1) * chunk).min(n_items) {
                let rows = offsets[item] as usize..offsets[item + 1] as usize;
                distinct_ratings(&annotators[rows.clone()], &values[rows], &mut distinct);
                for &(annotator, value) in &distinct {
                    if let Some(ok) = is_correct(item as u32, value) {
                        let count = &mut counts[annotator as usize];
                        count.0 += u32::from(ok);
                        count.1 += 1;
                    }
                }
            }
            counts
        })
        .reduce_with(add)
        .unwrap_or_else(|| vec![(0, 0); n_annotators])
}

/// An item's distinct (annotator, value) pairs, in `into`. An item's few ratings are
/// compared pairwise, which needs no sort (sorting five pairs per item was a tenth of a
/// majority vote with `--out`); the order does not matter to the counts made of them.
fn distinct_ratings(annotators: &[u32], values: &[u32], into: &mut Vec<(u32, u32)>) {
    const COMPARED_PAIRWISE: usize = 16;
    into.clear();
    let ratings = annotators.iter().copied().zip(values.iter().copied());
    if annotators.len() <= COMPARED_PAIRWISE {
        for rating in ratings {
            if !into.contains(&rating) {
                into.push(rating);
            }
        }
    } else {
        into.extend(ratings);
        into.sort_unstable();
        into.dedup();
    }
}

/// Vote shares per item, each vote weighted by its annotator's skill (1 without skills),
/// stored sparse, and each item's label: the argmax of its full row under `options.tie`
/// (the rule `labels_from_probas` applies to dense posteriors).
pub(crate) fn sparse_vote(
    table: &AnnotationTable,
    skills: Option<&[f64]>,
    options: &AggregateOptions,
) -> (Posteriors, Vec<Option<u32>>, Vec<bool>) {
    const ITEMS_PER_TASK: usize = 4096;
    let k = table.n_values();
    let n_items = table.n_items();
    let (item_offsets, annotators, values) = table.item_columns();
    let rows = |item: usize| item_offsets[item] as usize..item_offsets[item + 1] as usize;

    // Pass 1: how many distinct classes each item has.
    let mut offsets: Vec<u32> = written_zeros(n_items + 1);
    offsets[1..]
        .par_iter_mut()
        .enumerate()
        .with_min_len(ITEMS_PER_TASK)
        .for_each_init(
            || vec![u32::MAX; k],
            |last_seen, (item, count)| {
                for &value in &values[rows(item)] {
                    if last_seen[value as usize] != item as u32 {
                        last_seen[value as usize] = item as u32;
                        *count += 1;
                    }
                }
            },
        );
    for i in 0..n_items {
        offsets[i + 1] += offsets[i];
    }

    // Pass 2: shares and labels, a fixed range of items per task.
    let entries = offsets[n_items] as usize;
    let mut classes: Vec<u32> = written_zeros(entries);
    let mut shares: Vec<f64> = written_zeros(entries);
    let mut labels = vec![None; n_items];
    let mut tied = vec![false; n_items];
    let tasks: Vec<usize> = (0..n_items).step_by(ITEMS_PER_TASK).collect();
    let entry_bounds: Vec<usize> = std::iter::once(0)
        .chain(
            tasks
                .iter()
                .map(|&t| offsets[(t + ITEMS_PER_TASK).min(n_items)] as usize),
        )
        .collect();
    let class_spans = split_at_bounds(&mut classes, &entry_bounds);
    let share_spans = split_at_bounds(&mut shares, &entry_bounds);
    tasks
        .into_par_iter()
        .zip(class_spans)
        .zip(share_spans)
        .zip(labels.par_chunks_mut(ITEMS_PER_TASK))
        .zip(tied.par_chunks_mut(ITEMS_PER_TASK))
        .for_each(
            |((((first, class_span), share_span), label_span), tied_span)| {
                let mut row = vec![0.0; k];
                let mut chosen: Vec<u32> = Vec::new();
                let mut at = 0;
                for (i, item) in (first..(first + ITEMS_PER_TASK).min(n_items)).enumerate() {
                    chosen.clear();
                    for j in rows(item) {
                        let value = values[j] as usize;
                        if row[value] == 0.0 && !chosen.contains(&(value as u32)) {
                            chosen.push(value as u32);
                        }
                        row[value] += skills.map_or(1.0, |s| s[annotators[j] as usize]);
                    }
                    chosen.sort_unstable();
                    let total: f64 = chosen.iter().map(|&c| row[c as usize]).sum();
                    if total != 0.0 {
                        chosen.iter().for_each(|&c| row[c as usize] /= total);
                    }
                    (label_span[i], tied_span[i]) =
                        super::argmax_with_ties(&row, options.tie, options.seed, item as u64);
                    for &c in &chosen {
                        class_span[at] = c;
                        share_span[at] = row[c as usize];
                        row[c as usize] = 0.0;
                        at += 1;
                    }
                }
            },
        );
    (
        Posteriors::Sparse {
            offsets,
            classes,
            shares,
        },
        labels,
        tied,
    )
}

/// Labels of the weighted vote without materialising the n × k vote table (ZBS calls this
/// every iteration). Same argmax and tie rule as `labels_from_probas` on the shares.
fn weighted_labels(
    table: &AnnotationTable,
    skills: &[f64],
    options: &AggregateOptions,
    labels: &mut [Option<u32>],
) {
    let k = table.n_values();
    labels
        .par_iter_mut()
        .enumerate()
        .with_min_len(1024)
        .for_each_init(
            || vec![0.0; k],
            |row, (item, label)| {
                row.iter_mut().for_each(|v| *v = 0.0);
                for (annotator, value) in table.item_ratings(item as u32) {
                    row[value as usize] += skills[annotator as usize];
                }
                let total: f64 = row.iter().sum();
                if total != 0.0 {
                    row.iter_mut().for_each(|v| *v /= total);
                }
                *label = super::argmax_with_ties(row, options.tie, options.seed, item as u64).0;
            },
        );
}

fn weighted_vote(
    table: &AnnotationTable,
    method: Method,
    skills: Option<&[f64]>,
    options: &AggregateOptions,
) -> Aggregation {
    let mut result = Aggregation::new(method, table);
    let (shares, labels, tied) = sparse_vote(table, skills, options);
    result.probas = Some(shares);
    result.labels = labels;
    result.tied = tied;
    result
}

/// Skills as a dense vector; annotators without one get the mean of the others.
fn fill_missing(skills: Vec<Option<f64>>) -> Vec<f64> {
    let known: Vec<f64> = skills.iter().flatten().copied().collect();
    let mean = if known.is_empty() {
        1.0
    } else {
        known.iter().sum::<f64>() / known.len() as f64
    };
    skills.into_iter().map(|s| s.unwrap_or(mean)).collect()
}

/// Majority vote (weighted when `skills` are given). Skills reported are each
/// annotator's accuracy against the result.
pub fn majority_vote(
    table: &AnnotationTable,
    skills: Option<&[f64]>,
    options: &AggregateOptions,
) -> Aggregation {
    let mut result = weighted_vote(table, Method::MajorityVote, skills, options);
    result.skills = Some(fill_missing(annotator_accuracy(table, &result.labels)));
    result
}

/// Wawa: majority vote weighted by each annotator's agreement with plain majority vote.
pub fn wawa(table: &AnnotationTable, options: &AggregateOptions) -> Aggregation {
    let plain = weighted_vote(table, Method::MajorityVote, None, options);
    let skills = fill_missing(annotator_accuracy(table, &plain.labels));
    let mut result = weighted_vote(table, Method::Wawa, Some(&skills), options);
    result.skills = Some(skills);
    result
}

/// Zero-based skill: skills move towards each annotator's accuracy against the weighted
/// vote, with a learning rate halved every 20 iterations (crowd-kit's schedule).
pub fn zero_based_skill(table: &AnnotationTable, options: &AggregateOptions) -> Aggregation {
    let n_iter = options.iterations.unwrap_or(100);
    let k = table.n_values().max(1) as f64;
    let mut skills = vec![1.0 / k + 1e-5; table.n_annotators()];
    let mut lr = 1.0;
    let mut labels = vec![None; table.n_items()];
    for i in 1..=n_iter {
        if i % 20 == 0 {
            lr *= 0.5;
        }
        weighted_labels(table, &skills, options, &mut labels);
        for (skill, accuracy) in skills.iter_mut().zip(annotator_accuracy(table, &labels)) {
            if let Some(accuracy) = accuracy {
                *skill += lr * (accuracy - *skill);
            }
        }
    }
    let mut result = weighted_vote(table, Method::ZeroBasedSkill, Some(&skills), options);
    result.skills = Some(skills);
    result.iterations = n_iter;
    result
}

/// Gold majority vote: skills are accuracy on the known answers (any of several answers
/// for an item counts as correct); annotators without a known item get the mean skill.
pub fn gold_majority_vote(
    table: &AnnotationTable,
    options: &AggregateOptions,
) -> Result<Aggregation, AggregateError> {
    let known = options
        .known
        .as_ref()
        .filter(|k| !k.answers.is_empty())
        .ok_or_else(|| {
            AggregateError::Invalid("gold majority vote needs known answers (--known FILE)".into())
        })?;
    let mut accepted: Vec<Vec<u32>> = vec![Vec::new(); table.n_items()];
    for &(item, value) in &known.answers {
        accepted[item as usize].push(value);
    }
    let skills = annotator_accuracy_by(table, |item, value| {
        let ok = &accepted[item as usize];
        (!ok.is_empty()).then(|| ok.contains(&value))
    });
    if skills.iter().all(Option::is_none) {
        return Err(AggregateError::Invalid(
            "no annotator rated a known item".into(),
        ));
    }
    let skills = fill_missing(skills);
    let mut result = weighted_vote(table, Method::GoldMajorityVote, Some(&skills), options);
    result.skills = Some(skills);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::fixtures::scattered_table;
    use crate::aggregate::{TieRule, argmax_with_ties};

    #[test]
    fn an_items_distinct_ratings_are_the_sorted_and_deduplicated_ones_in_any_order() {
        let mut state = 12_345u64;
        let mut next = |bound: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            ((state >> 33) % bound) as u32
        };
        let mut found = Vec::new();
        for len in [0, 1, 2, 5, 16, 17, 40] {
            for _ in 0..200 {
                let annotators: Vec<u32> = (0..len).map(|_| next(6)).collect();
                let values: Vec<u32> = (0..len).map(|_| next(3)).collect();
                distinct_ratings(&annotators, &values, &mut found);
                let mut expected: Vec<(u32, u32)> = annotators
                    .iter()
                    .copied()
                    .zip(values.iter().copied())
                    .collect();
                expected.sort_unstable();
                expected.dedup();
                found.sort_unstable();
                assert_eq!(found, expected, "{annotators:?} {values:?}");
            }
        }
    }

    #[test]
    fn sparse_vote_shares_and_labels_equal_the_dense_vote_and_its_argmax() {
        let table = scattered_table(9000);
        let k = table.n_values();
        // Unweighted, positive skills, and skills with zeros and negatives (M-MSR's case).
        let weightings: [Option<Vec<f64>>; 3] = [
            None,
            Some((0..9).map(|a| 0.3 + a as f64 / 10.0).collect()),
            Some((0..9).map(|a| [0.0, -0.4, 0.7][a % 3]).collect()),
        ];
        for skills in &weightings {
            let dense = vote_shares(&table, skills.as_deref());
            for tie in [TieRule::First, TieRule::Undecided, TieRule::Random] {
                let options = AggregateOptions {
                    tie,
                    seed: 7,
                    ..AggregateOptions::default()
                };
                let (sparse, labels, tied) = sparse_vote(&table, skills.as_deref(), &options);
                for item in 0..table.n_items() {
                    let expected = &dense[item * k..(item + 1) * k];
                    let row = sparse.row(item as u32, k);
                    for (got, want) in row.iter().zip(expected) {
                        assert!(got == want, "item {item}: {row:?} vs {expected:?}");
                    }
                    assert_eq!(
                        (labels[item], tied[item]),
                        argmax_with_ties(expected, tie, 7, item as u64),
                        "item {item}"
                    );
                }
            }
        }
    }

    #[test]
    fn sparse_vote_keeps_only_the_chosen_classes() {
        let table = AnnotationTable::from_triples(
            [
                ("i", "a", "x"),
                ("i", "b", "x"),
                ("j", "a", "z"),
                ("j", "b", "y"),
            ],
            &crate::table::LabelSpec::default(),
        )
        .unwrap();
        let (shares, labels, tied) = sparse_vote(&table, None, &AggregateOptions::default());
        let Posteriors::Sparse {
            offsets,
            classes,
            shares,
        } = shares
        else {
            panic!("vote shares are sparse");
        };
        assert_eq!(offsets, [0, 1, 3]);
        assert_eq!(classes, [0, 1, 2]);
        assert_eq!(shares, [1.0, 0.5, 0.5]);
        assert_eq!(labels, [Some(0), Some(1)]);
        assert_eq!(tied, [false, true]);
    }

    #[test]
    fn accuracy_counts_each_distinct_answer_of_an_annotator_once() {
        let table = scattered_table(5000);
        let reference: Vec<Option<u32>> = (0..table.n_items())
            .map(|i| (i % 7 != 0).then_some((i % 3) as u32))
            .collect();
        let mut expected_total = (0u64, 0u64);
        for (annotator, accuracy) in annotator_accuracy(&table, &reference).iter().enumerate() {
            let mut distinct: Vec<(u32, u32)> = table
                .annotator_items(annotator as u32)
                .iter()
                .copied()
                .zip(table.annotator_values(annotator as u32).iter().copied())
                .filter(|&(item, _)| reference[item as usize].is_some())
                .collect();
            distinct.sort_unstable();
            distinct.dedup();
            let correct = distinct
                .iter()
                .filter(|&&(item, value)| reference[item as usize] == Some(value))
                .count() as u64;
            let total = distinct.len() as u64;
            expected_total = (expected_total.0 + correct, expected_total.1 + total);
            assert_eq!(
                *accuracy,
                (total > 0).then(|| correct as f64 / total as f64),
                "annotator {annotator}"
            );
        }
        assert_eq!(
            overall_accuracy(&table, &reference),
            Some(expected_total.0 as f64 / expected_total.1 as f64)
        );
    }
}
