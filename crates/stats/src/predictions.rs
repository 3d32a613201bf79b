//! Evaluating a model's imported predictions from a stratified sample: strata are the
//! predicted class × score band; each stratum gets a share of the sample (proportional,
//! at least one item per non-empty stratum when the sample is large enough), drawn without
//! replacement with a seeded generator; each sampled item carries its inclusion probability
//! `n_h / N_h`. Once humans have labelled (part of) the sample, the model's precision and
//! recall per class are estimated with inverse-probability weights (a ratio estimator), with
//! a normal interval from the linearised stratified variance.
//!
//! Items of a stratum that humans have not labelled yet are treated as missing at random
//! within their stratum: the labelled ones carry the stratum's weight (`N_h / m_h`).

use crate::dist::normal_quantile;
use rand::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;
use std::collections::BTreeMap;

/// The score band (0-based) of a score in [0, 1] cut into `bands` equal-width bands; a
/// score of exactly 1 is in the top band.
pub fn score_band(score: f64, bands: usize) -> usize {
    let bands = bands.max(1);
    ((score.clamp(0.0, 1.0) * bands as f64) as usize).min(bands - 1)
}

/// How many items each stratum gives to a sample of `size`: proportional to the stratum's
/// size (largest remainders), at least one from every non-empty stratum when `size` allows,
/// never more than the stratum holds. The total is `min(size, Σ sizes)`.
pub fn allocate(sizes: &[usize], size: usize) -> Vec<usize> {
    let total: usize = sizes.iter().sum();
    let size = size.min(total);
    let mut take = vec![0usize; sizes.len()];
    if size == 0 {
        return take;
    }
    let non_empty = sizes.iter().filter(|s| **s > 0).count();
    if size >= non_empty {
        for (t, s) in take.iter_mut().zip(sizes) {
            *t = usize::from(*s > 0);
        }
    }
    let mut left = size - take.iter().sum::<usize>();
    // Proportional shares of what is left, over the room each stratum still has.
    let room: Vec<usize> = sizes.iter().zip(&take).map(|(s, t)| s - t).collect();
    let room_total: usize = room.iter().sum();
    if left > 0 && room_total > 0 {
        let exact: Vec<f64> = room
            .iter()
            .map(|r| left as f64 * *r as f64 / room_total as f64)
            .collect();
        for (t, e) in take.iter_mut().zip(&exact) {
            *t += e.floor() as usize;
        }
        left = size - take.iter().sum::<usize>();
        let mut order: Vec<usize> = (0..sizes.len()).collect();
        // Largest remainder first; ties to the earlier stratum.
        order.sort_by(|a, b| {
            let (ra, rb) = (exact[*a] - exact[*a].floor(), exact[*b] - exact[*b].floor());
            rb.total_cmp(&ra).then(a.cmp(b))
        });
        for i in order.into_iter().cycle().take(sizes.len() * 2) {
            if left == 0 {
                break;
            }
            if take[i] < sizes[i] {
                take[i] += 1;
                left -= 1;
            }
        }
    }
    take
}

/// A stratified sample: for every stratum, the positions (into that stratum's member list)
/// drawn, and the inclusion probability of each of them.
#[derive(Debug, Clone, PartialEq)]
pub struct StratifiedDraw {
    pub picked: Vec<Vec<usize>>,
    pub inclusion: Vec<f64>,
}

/// Draws `allocate(sizes, size)` members from each stratum without replacement, the same
/// draw for the same seed.
pub fn stratified_draw(sizes: &[usize], size: usize, seed: u64) -> StratifiedDraw {
    let take = allocate(sizes, size);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut picked = Vec::with_capacity(sizes.len());
    let mut inclusion = Vec::with_capacity(sizes.len());
    for (n, k) in sizes.iter().zip(&take) {
        let mut positions: Vec<usize> = (0..*n).collect();
        // Partial Fisher–Yates: the first k positions are a uniform sample.
        for i in 0..*k {
            let span = (n - i) as u128;
            let j = i + ((rng.next_u64() as u128 * span) >> 64) as usize;
            positions.swap(i, j);
        }
        positions.truncate(*k);
        positions.sort_unstable();
        picked.push(positions);
        inclusion.push(if *n > 0 { *k as f64 / *n as f64 } else { 0.0 });
    }
    StratifiedDraw { picked, inclusion }
}

/// One sampled item: its stratum, inclusion probability, the model's predicted class and
/// the humans' class (`None` until labelled, or when the humans tie).
#[derive(Debug, Clone, PartialEq)]
pub struct SampledUnit {
    pub stratum: String,
    pub inclusion: f64,
    pub predicted: String,
    pub truth: Option<String>,
}

/// A ratio estimate with its standard error and normal interval (clipped to [0, 1]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatioEstimate {
    /// `None` when the denominator has no weight (no labelled unit bears on it).
    pub estimate: Option<f64>,
    pub std_error: f64,
    pub low: f64,
    pub high: f64,
    /// Labelled sample units in the denominator.
    pub n: usize,
}

/// Precision and recall of one class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassEstimate {
    pub class: String,
    pub precision: RatioEstimate,
    pub recall: RatioEstimate,
}

/// Precision and recall per class (every class predicted or found by the humans), at
/// `confidence` (e.g. 0.95).
pub fn precision_recall(units: &[SampledUnit], confidence: f64) -> Vec<ClassEstimate> {
    let labelled = weighted_units(units);
    let mut classes: Vec<&str> = units
        .iter()
        .map(|u| u.predicted.as_str())
        .chain(units.iter().filter_map(|u| u.truth.as_deref()))
        .collect();
    classes.sort_unstable();
    classes.dedup();
    let z = normal_quantile(1.0 - (1.0 - confidence) / 2.0);
    classes
        .into_iter()
        .map(|class| {
            let hit = |u: &Weighted| u.predicted == class && u.truth == class;
            ClassEstimate {
                class: class.to_owned(),
                precision: ratio(&labelled, hit, |u| u.predicted == class, z),
                recall: ratio(&labelled, hit, |u| u.truth == class, z),
            }
        })
        .collect()
}

/// A labelled unit with its weight and its stratum's finite-population factor.
struct Weighted<'a> {
    stratum: &'a str,
    weight: f64,
    fpc: f64,
    predicted: &'a str,
    truth: &'a str,
}

/// The labelled units, each weighted `1/π × n_h/m_h` (the stratum's unlabelled units'
/// weight spread over its labelled ones).
fn weighted_units(units: &[SampledUnit]) -> Vec<Weighted<'_>> {
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for u in units {
        let entry = counts.entry(u.stratum.as_str()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(u.truth.is_some());
    }
    units
        .iter()
        .filter_map(|u| {
            let truth = u.truth.as_deref()?;
            let (n, m) = counts[u.stratum.as_str()];
            let weight = n as f64 / (u.inclusion * m as f64);
            // f_h = m_h / N_h with N_h = n_h / π.
            let fpc = 1.0 - (m as f64 * u.inclusion / n as f64);
            Some(Weighted {
                stratum: &u.stratum,
                weight,
                fpc,
                predicted: &u.predicted,
                truth,
            })
        })
        .collect()
}

/// `Σ w·y / Σ w·x` over the labelled units, `y` and `x` indicators, with the linearised
/// variance `Σ_h (1 − f_h) m_h/(m_h − 1) Σ_i (w_i e_i − ē_h)²`, `e_i = (y_i − R x_i) / X̂`.
fn ratio(
    units: &[Weighted],
    y: impl Fn(&Weighted) -> bool,
    x: impl Fn(&Weighted) -> bool,
    z: f64,
) -> RatioEstimate {
    let ind = |b: bool| if b { 1.0 } else { 0.0 };
    let x_total: f64 = units.iter().map(|u| u.weight * ind(x(u))).sum();
    let y_total: f64 = units.iter().map(|u| u.weight * ind(y(u))).sum();
    let n = units.iter().filter(|u| x(u)).count();
    if x_total <= 0.0 {
        return RatioEstimate {
            estimate: None,
            std_error: f64::NAN,
            low: 0.0,
            high: 1.0,
            n,
        };
    }
    let r = y_total / x_total;
    let mut by_stratum: BTreeMap<&str, (Vec<f64>, f64)> = BTreeMap::new();
    for u in units {
        let e = u.weight * (ind(y(u)) - r * ind(x(u))) / x_total;
        let entry = by_stratum.entry(u.stratum).or_insert((Vec::new(), u.fpc));
        entry.0.push(e);
    }
    let variance: f64 = by_stratum
        .values()
        .filter(|(es, _)| es.len() > 1)
        .map(|(es, fpc)| {
            let m = es.len() as f64;
            let mean = es.iter().sum::<f64>() / m;
            fpc * m / (m - 1.0) * es.iter().map(|e| (e - mean).powi(2)).sum::<f64>()
        })
        .sum();
    let se = variance.max(0.0).sqrt();
    RatioEstimate {
        estimate: Some(r),
        std_error: se,
        low: (r - z * se).max(0.0),
        high: (r + z * se).min(1.0),
        n,
    }
}

/// The humans' class: the most common label, `None` with no labels or a tie at the top.
pub fn majority_class(labels: &[String]) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for l in labels {
        *counts.entry(l.as_str()).or_default() += 1;
    }
    let top = counts.values().copied().max()?;
    let mut best = counts.iter().filter(|(_, c)| **c == top);
    let first = best.next()?;
    if best.next().is_some() {
        return None;
    }
    Some(first.0.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_fall_in_equal_width_bands_with_one_in_the_top_band() {
        assert_eq!(score_band(0.0, 4), 0);
        assert_eq!(score_band(0.24, 4), 0);
        assert_eq!(score_band(0.25, 4), 1);
        assert_eq!(score_band(0.99, 4), 3);
        assert_eq!(score_band(1.0, 4), 3);
        assert_eq!(score_band(0.7, 1), 0);
    }

    #[test]
    fn allocation_is_proportional_with_one_per_stratum_and_capped() {
        // 9 left after one each, over room 79, 9, 0: 8.08 and 0.92 → 8 + 0, the last one
        // to the larger remainder (0.92).
        assert_eq!(allocate(&[80, 10, 1], 12), vec![9, 2, 1]);
        assert_eq!(allocate(&[5, 5], 100), vec![5, 5]);
        assert_eq!(allocate(&[3, 0, 3], 2), vec![1, 0, 1]);
        // Fewer than the non-empty strata: proportional only, no guarantee.
        assert_eq!(allocate(&[90, 5, 5], 1).iter().sum::<usize>(), 1);
        assert_eq!(allocate(&[4, 4], 0), vec![0, 0]);
    }

    #[test]
    fn a_draw_is_reproducible_within_its_strata_with_inclusion_probabilities() {
        let a = stratified_draw(&[20, 4], 6, 7);
        let b = stratified_draw(&[20, 4], 6, 7);
        assert_eq!(a, b);
        assert_eq!(a.picked[0].len() + a.picked[1].len(), 6);
        assert!(a.picked[0].iter().all(|p| *p < 20));
        assert!(a.picked[1].iter().all(|p| *p < 4));
        let mut dedup = a.picked[0].clone();
        dedup.dedup();
        assert_eq!(dedup, a.picked[0]);
        assert_eq!(
            a.inclusion,
            vec![
                a.picked[0].len() as f64 / 20.0,
                a.picked[1].len() as f64 / 4.0
            ]
        );
        assert_ne!(stratified_draw(&[20, 4], 6, 8).picked, a.picked);
    }

    fn unit(stratum: &str, inclusion: f64, predicted: &str, truth: Option<&str>) -> SampledUnit {
        SampledUnit {
            stratum: stratum.into(),
            inclusion,
            predicted: predicted.into(),
            truth: truth.map(str::to_owned),
        }
    }

    #[test]
    fn precision_and_recall_weight_each_unit_by_its_inverse_inclusion_probability() {
        // Stratum A: predicted X, 2 of N=10 sampled (π = 0.2, w = 5): one X, one Y.
        // Stratum B: predicted Y, 2 of N=4 sampled (π = 0.5, w = 2): both Y.
        let units = [
            unit("X|0", 0.2, "X", Some("X")),
            unit("X|0", 0.2, "X", Some("Y")),
            unit("Y|0", 0.5, "Y", Some("Y")),
            unit("Y|0", 0.5, "Y", Some("Y")),
        ];
        let estimates = precision_recall(&units, 0.95);
        let x = estimates.iter().find(|e| e.class == "X").unwrap();
        let y = estimates.iter().find(|e| e.class == "Y").unwrap();
        // Precision X = 5 / 10. Linearised: X̂ = 10, e = 5·(1 − .5)/10 = .25 and
        // 5·(0 − .5)/10 = −.25; mean 0; (1 − 2/10)·2/1·(.0625·2) = .2; se = √.2.
        assert_eq!(x.precision.estimate, Some(0.5));
        assert!((x.precision.std_error - 0.2f64.sqrt()).abs() < 1e-12);
        assert_eq!(x.precision.n, 2);
        assert_eq!(x.precision.low, 0.0);
        assert!((x.precision.high - (0.5 + 1.959964 * 0.2f64.sqrt()).min(1.0)).abs() < 1e-5);
        // Recall X = 5/5 = 1 (one labelled X, no variance).
        assert_eq!(x.recall.estimate, Some(1.0));
        assert_eq!(x.recall.std_error, 0.0);
        // Precision Y = 4/4 = 1; recall Y = 4 / (5 + 4) = 4/9.
        assert_eq!(y.precision.estimate, Some(1.0));
        assert!((y.recall.estimate.unwrap() - 4.0 / 9.0).abs() < 1e-12);
        // Recall Y linearised, X̂ = 9, R = 4/9: stratum A: e = 5·(0 − 4/9)/9 = −20/81 and
        // 0; mean −10/81; Σ(e − ē)² = 2·(10/81)²; × (1 − .2)·2 = 3.2·(100/6561).
        // Stratum B: e = 2·(1 − 4/9)/9 = 10/81 both; no spread. se = √(320/6561).
        assert!((y.recall.std_error - (320.0f64 / 6561.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn unlabelled_units_pass_their_weight_to_the_labelled_ones_of_their_stratum() {
        let units = [
            unit("X|0", 0.2, "X", Some("X")),
            unit("X|0", 0.2, "X", None),
            unit("Y|0", 0.5, "Y", Some("X")),
        ];
        let estimates = precision_recall(&units, 0.95);
        let x = estimates.iter().find(|e| e.class == "X").unwrap();
        // Weights: stratum X 10 on the one labelled unit, stratum Y 2. Recall X = 10 / 12.
        assert_eq!(x.precision.estimate, Some(1.0));
        assert!((x.recall.estimate.unwrap() - 10.0 / 12.0).abs() < 1e-12);
        let y = estimates.iter().find(|e| e.class == "Y").unwrap();
        assert_eq!(y.precision.estimate, Some(0.0));
        assert_eq!(y.recall.estimate, None);
        assert_eq!((y.recall.low, y.recall.high), (0.0, 1.0));
    }

    #[test]
    fn the_human_class_is_the_majority_and_a_tie_is_no_class() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(majority_class(&l(&["a", "b", "a"])), Some("a".into()));
        assert_eq!(majority_class(&l(&["a", "b"])), None);
        assert_eq!(majority_class(&[]), None);
    }
}
