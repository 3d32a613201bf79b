//! Data-quality metrics around consensus: consistency, uncertainty, accuracy on
//! aggregates and on gold, per item or per annotator.

use rayon::prelude::*;

use super::Aggregation;
use super::majority::{correct_and_scored, micro_accuracy, per_annotator_accuracy};
use crate::table::AnnotationTable;

/// Label distribution of each rating under a one-coin model: the given label gets the
/// annotator's skill, every other label (1 − skill)/(k − 1).
fn one_coin_weight(skill: f64, k: usize, same: bool) -> f64 {
    if same {
        skill
    } else if k > 1 {
        (1.0 - skill) / (k - 1) as f64
    } else {
        0.0
    }
}

/// Consistency: per item, the posterior probability of its aggregated label under a
/// one-coin model with the given annotator skills (0 when undefined). Returns per-item values.
pub fn consistency_by_item(
    table: &AnnotationTable,
    labels: &[Option<u32>],
    skills: &[f64],
) -> Vec<f64> {
    let k = table.n_values();
    // Each annotator's two log weights, taken once rather than k times per rating.
    let log_weights: Vec<[f64; 2]> = skills
        .iter()
        .map(|&s| {
            [
                one_coin_weight(s, k, false).ln(),
                one_coin_weight(s, k, true).ln(),
            ]
        })
        .collect();
    (0..table.n_items() as u32)
        .into_par_iter()
        .with_min_len(1024)
        .map_init(
            || vec![0.0; k],
            |log_p, item| {
                let Some(label) = labels[item as usize] else {
                    return 0.0;
                };
                // Log space avoids underflow on items with many ratings.
                log_p.iter_mut().for_each(|v| *v = 0.0);
                let mut named = NamedLabels::new(k);
                for (annotator, value) in table.item_ratings(item) {
                    let weights = log_weights[annotator as usize];
                    for (l, lp) in log_p.iter_mut().enumerate() {
                        *lp += weights[usize::from(value as usize == l)];
                    }
                    named.add(value);
                }
                let max = log_p.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                if !max.is_finite() {
                    return 0.0;
                }
                // Labels no rating names got the same additions in the same order, so the
                // same bits: their exponential is taken once.
                let unnamed = (0..k)
                    .find(|&l| !named.has(l))
                    .map_or(0.0, |l| (log_p[l] - max).exp());
                let exp_of = |l: usize| {
                    if named.has(l) {
                        (log_p[l] - max).exp()
                    } else {
                        unnamed
                    }
                };
                let total: f64 = (0..k).map(exp_of).sum();
                exp_of(label as usize) / total
            },
        )
        .collect()
}

/// Mean consistency over items.
pub fn consistency(table: &AnnotationTable, aggregation: &Aggregation, skills: &[f64]) -> f64 {
    let values = consistency_by_item(table, &aggregation.labels, skills);
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The labels an item's ratings name, for up to 64 labels; with more, every label counts
/// as named.
#[derive(Clone, Copy)]
struct NamedLabels(u64);

impl NamedLabels {
    fn new(k: usize) -> Self {
        Self(if k > 64 { u64::MAX } else { 0 })
    }

    fn add(&mut self, value: u32) {
        if value < 64 {
            self.0 |= 1 << value;
        }
    }

    fn has(self, label: usize) -> bool {
        label >= 64 || self.0 & (1 << label) != 0
    }
}

/// Natural logarithms remembered by their argument's bits. Vote shares take few distinct
/// values (fifths, with five votes an item), so most items' entropies need no `ln` call;
/// a remembered value is the one `ln` gave, to the bit.
pub struct LnMemo {
    arguments: [u64; Self::SLOTS],
    logarithms: [f64; Self::SLOTS],
}

impl Default for LnMemo {
    fn default() -> Self {
        Self::new()
    }
}

impl LnMemo {
    const SLOTS: usize = 64;

    pub fn new() -> Self {
        // No share is NaN, so no argument matches an empty slot's bits.
        Self {
            arguments: [f64::NAN.to_bits(); Self::SLOTS],
            logarithms: [0.0; Self::SLOTS],
        }
    }

    /// `x.ln()`, to the bit.
    #[inline]
    pub fn of(&mut self, x: f64) -> f64 {
        let bits = x.to_bits();
        let slot = ((bits ^ (bits >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize;
        if self.arguments[slot] != bits {
            self.arguments[slot] = bits;
            self.logarithms[slot] = x.ln();
        }
        self.logarithms[slot]
    }
}

/// Group of ratings for uncertainty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UncertaintyBy {
    Item,
    Annotator,
}

/// Entropy (nats) of each item's (or annotator's) label distribution, each rating
/// spread by a one-coin model with the annotator's skill (skill 1 = plain vote counts).
pub fn uncertainty(table: &AnnotationTable, skills: Option<&[f64]>, by: UncertaintyBy) -> Vec<f64> {
    let k = table.n_values();
    let entropy = |mass: &[f64], ln: &mut LnMemo| -> f64 {
        let total: f64 = mass.iter().sum();
        if total <= 0.0 {
            return 0.0;
        }
        -mass
            .iter()
            .filter(|m| **m > 0.0)
            .map(|m| (m / total) * ln.of(m / total))
            .sum::<f64>()
    };
    let add = |mass: &mut [f64], annotator: u32, value: u32| match skills {
        // Skill 1 gives the rating's label 1 and every other label 0: adding those zeros
        // changes no bit.
        None => mass[value as usize] += 1.0,
        Some(skills) => {
            let s = skills[annotator as usize];
            for (l, m) in mass.iter_mut().enumerate() {
                *m += one_coin_weight(s, k, value as usize == l);
            }
        }
    };
    match by {
        UncertaintyBy::Item => (0..table.n_items() as u32)
            .into_par_iter()
            .with_min_len(1024)
            .map_init(
                || (vec![0.0; k], LnMemo::new()),
                |(mass, ln), item| {
                    mass.iter_mut().for_each(|v| *v = 0.0);
                    for (annotator, value) in table.item_ratings(item) {
                        add(mass, annotator, value);
                    }
                    entropy(mass, ln)
                },
            )
            .collect(),
        UncertaintyBy::Annotator if k == 0 => vec![0.0; table.n_annotators()],
        UncertaintyBy::Annotator => {
            // One pass in item order: each annotator's ratings arrive in the order of the
            // annotator index (item order), so the sums are the same, without building it.
            let mut mass = vec![0.0; table.n_annotators() * k];
            for item in 0..table.n_items() as u32 {
                for (annotator, value) in table.item_ratings(item) {
                    let at = annotator as usize * k;
                    add(&mut mass[at..at + k], annotator, value);
                }
            }
            mass.par_chunks(k.max(1))
                .map_init(LnMemo::new, |ln, mass| entropy(mass, ln))
                .collect()
        }
    }
}

/// Accuracy of the ratings against reference labels: overall (micro) and per annotator
/// (each distinct item/label counted once, as crowd-kit does).
pub struct Accuracy {
    pub overall: Option<f64>,
    pub per_annotator: Vec<Option<f64>>,
}

pub fn accuracy_against(table: &AnnotationTable, reference: &[Option<u32>]) -> Accuracy {
    Accuracy::of(&correct_and_scored(table, |item, value| {
        reference[item as usize].map(|truth| truth == value)
    }))
}

impl Accuracy {
    /// From each annotator's (correct, scored) counts: one counting pass for both figures.
    fn of(counts: &[(u32, u32)]) -> Self {
        Self {
            overall: micro_accuracy(counts),
            per_annotator: per_annotator_accuracy(counts),
        }
    }
}

/// Accuracy against several acceptable answers per item (`accepted[item]`; empty = not
/// scored): an answer is correct when it is any of them, each distinct (item, annotator,
/// label) counted once.
pub fn accuracy_against_accepted(table: &AnnotationTable, accepted: &[Vec<u32>]) -> Accuracy {
    let is_correct = |item: u32, value: u32| {
        let ok = &accepted[item as usize];
        (!ok.is_empty()).then(|| ok.contains(&value))
    };
    Accuracy::of(&correct_and_scored(table, is_correct))
}

/// Accuracy of aggregated labels against gold, over the items that have both.
pub fn label_accuracy(labels: &[Option<u32>], gold: &[Option<u32>]) -> Option<(f64, usize)> {
    let (mut correct, mut total) = (0usize, 0usize);
    for (label, truth) in labels.iter().zip(gold) {
        if let Some(truth) = truth {
            total += 1;
            correct += usize::from(*label == Some(*truth));
        }
    }
    (total > 0).then(|| (correct as f64 / total as f64, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::fixtures::scattered_table;

    /// The textbook forms: a fresh row per item or annotator, one logarithm per class and
    /// rating, and each annotator's ratings read from the annotator index.
    fn direct_consistency(
        table: &AnnotationTable,
        labels: &[Option<u32>],
        skills: &[f64],
    ) -> Vec<f64> {
        let k = table.n_values();
        (0..table.n_items() as u32)
            .map(|item| {
                let Some(label) = labels[item as usize] else {
                    return 0.0;
                };
                let mut log_p = vec![0.0; k];
                for (annotator, value) in table.item_ratings(item) {
                    let s = skills[annotator as usize];
                    for (l, lp) in log_p.iter_mut().enumerate() {
                        *lp += one_coin_weight(s, k, value as usize == l).ln();
                    }
                }
                let max = log_p.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                if !max.is_finite() {
                    return 0.0;
                }
                let total: f64 = log_p.iter().map(|lp| (lp - max).exp()).sum();
                (log_p[label as usize] - max).exp() / total
            })
            .collect()
    }

    fn direct_annotator_uncertainty(table: &AnnotationTable, skills: &[f64]) -> Vec<f64> {
        let k = table.n_values();
        (0..table.n_annotators() as u32)
            .map(|annotator| {
                let mut mass = vec![0.0; k];
                for &value in table.annotator_values(annotator) {
                    for (l, m) in mass.iter_mut().enumerate() {
                        *m += one_coin_weight(skills[annotator as usize], k, value as usize == l);
                    }
                }
                let total: f64 = mass.iter().sum();
                if total <= 0.0 {
                    return 0.0;
                }
                -mass
                    .iter()
                    .filter(|m| **m > 0.0)
                    .map(|m| (m / total) * (m / total).ln())
                    .sum::<f64>()
            })
            .collect()
    }

    fn bits(values: &[f64]) -> Vec<u64> {
        values.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn consistency_and_uncertainty_give_the_direct_forms_bits() {
        let table = scattered_table(3000);
        let skills: Vec<f64> = (0..table.n_annotators())
            .map(|a| 0.35 + 0.6 * ((a * 37) % 101) as f64 / 100.0)
            .collect();
        let labels: Vec<Option<u32>> = (0..table.n_items() as u32)
            .map(|item| (item % 7 != 0).then(|| table.item_values(item)[0]))
            .collect();
        assert_eq!(
            bits(&consistency_by_item(&table, &labels, &skills)),
            bits(&direct_consistency(&table, &labels, &skills))
        );
        let ones = vec![1.0; table.n_annotators()];
        for skills in [&skills, &ones] {
            assert_eq!(
                bits(&uncertainty(&table, Some(skills), UncertaintyBy::Annotator)),
                bits(&direct_annotator_uncertainty(&table, skills))
            );
        }
        // Without skills a rating is one vote, counted without spreading zeros.
        assert_eq!(
            bits(&uncertainty(&table, None, UncertaintyBy::Annotator)),
            bits(&direct_annotator_uncertainty(&table, &ones))
        );
        assert_eq!(
            bits(&uncertainty(&table, None, UncertaintyBy::Item)),
            bits(&uncertainty(&table, Some(&ones), UncertaintyBy::Item))
        );
    }

    #[test]
    fn remembered_logarithms_are_the_logarithms_to_the_bit() {
        let mut memo = LnMemo::new();
        for round in 0..3 {
            for n in 1..2_000u32 {
                // Few values often (shares of small counts), and many once.
                let x = if n % 2 == 0 {
                    f64::from(n % 7 + 1) / 8.0
                } else {
                    f64::from(n * 31 + round) / 1e4
                };
                assert_eq!(memo.of(x).to_bits(), x.ln().to_bits(), "{x}");
            }
        }
    }
}
