//! Majority vote and its skill-weighted relatives: Wawa, zero-based skill, gold majority vote.
//!
//! Annotator accuracy (the skill of these models) counts each distinct
//! (item, annotator, label) once, as crowd-kit does.

use rayon::prelude::*;

use super::{AggregateError, AggregateOptions, Aggregation, Method};
use crate::buffers::written_zeros;
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
    (0..table.n_annotators() as u32)
        .into_par_iter()
        .map_init(Vec::new, |seen: &mut Vec<(u32, u32)>, annotator| {
            seen.clear();
            let items = table.annotator_items(annotator);
            seen.extend(
                items
                    .iter()
                    .copied()
                    .zip(table.annotator_values(annotator).iter().copied()),
            );
            // Items come in order; only repeated ratings of an item can break the order.
            if !seen.is_sorted() {
                seen.sort_unstable();
            }
            seen.dedup();
            let (mut correct, mut total) = (0u64, 0u64);
            for &(item, value) in seen.iter() {
                if let Some(ok) = is_correct(item, value) {
                    total += 1;
                    correct += u64::from(ok);
                }
            }
            (total > 0).then(|| correct as f64 / total as f64)
        })
        .collect()
}

/// Overall accuracy of all distinct answers against references (micro average).
pub fn overall_accuracy(table: &AnnotationTable, reference: &[Option<u32>]) -> Option<f64> {
    let (correct, total) = (0..table.n_annotators() as u32)
        .into_par_iter()
        .map_init(Vec::new, |seen: &mut Vec<(u32, u32)>, annotator| {
            seen.clear();
            seen.extend(
                table
                    .annotator_items(annotator)
                    .iter()
                    .copied()
                    .zip(table.annotator_values(annotator).iter().copied()),
            );
            if !seen.is_sorted() {
                seen.sort_unstable();
            }
            seen.dedup();
            let mut out = (0u64, 0u64);
            for &(item, value) in seen.iter() {
                if let Some(truth) = reference[item as usize] {
                    out.1 += 1;
                    out.0 += u64::from(truth == value);
                }
            }
            out
        })
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    (total > 0).then(|| correct as f64 / total as f64)
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
    result.probas = Some(vote_shares(table, skills));
    result.labels_from_probas(options.tie, options.seed);
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
