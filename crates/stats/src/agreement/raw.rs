//! The chance-corrected family on raw ratings with missing data (Gwet 2014,
//! "Handbook of Inter-Rater Reliability", 4th ed., chapters 2–5), with the
//! analytic variance of each coefficient (linearisation over subjects).
//!
//! Notation: for item i, r_ik = ratings in category k, r_i = Σ_k r_ik,
//! r*_ik = Σ_l w_kl r_il. n = items, n₂ = items with r_i ≥ 2, q = categories.

use super::{Estimate, Inference, chance_corrected, t_inference};
use crate::units::Units;
use crate::weights::Weights;

/// Which member of the family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawCoefficient {
    PercentAgreement,
    /// Gwet's AC1 (identity weights) / AC2 (any other weights).
    Gwet,
    /// Fleiss' κ generalised to missing data and weights.
    Fleiss,
    BrennanPrediger,
    /// Krippendorff's α in Gwet's weighted formulation.
    Krippendorff,
}

/// Per-pattern quantities shared by every member.
struct Prepared {
    /// Σ_k r_ik (r*_ik − 1) per pattern.
    sum_q: Vec<f64>,
    n: f64,
    n2: f64,
}

fn prepare(units: &Units, w: &Weights) -> Prepared {
    let q = units.q;
    let mut sum_q = Vec::with_capacity(units.n_patterns());
    for p in 0..units.n_patterns() {
        let c = units.counts_of(p);
        let mut s = 0.0;
        for k in 0..q {
            if c[k] == 0.0 {
                continue;
            }
            let row = w.row(k);
            let weighted: f64 = c.iter().zip(row).map(|(x, wk)| x * wk).sum();
            s += c[k] * (weighted - 1.0);
        }
        sum_q.push(s);
    }
    let n = units.n_items();
    let n2 = units.pairable_items();
    Prepared { sum_q, n, n2 }
}

/// Compute one coefficient with its analytic inference.
pub fn raw_coefficient(
    which: RawCoefficient,
    units: &Units,
    w: &Weights,
    inference: &Inference,
) -> Estimate {
    if which == RawCoefficient::Krippendorff {
        return krippendorff(units, w, inference);
    }
    let q = units.q;
    let prep = prepare(units, w);
    let (n, n2) = (prep.n, prep.n2);
    if n2 == 0.0 {
        return Estimate::undefined("no item has two or more ratings: nothing to compare");
    }
    let m = &units.multiplicity;
    let r = &units.ratings;
    // Observed agreement per pattern (0 for single-rated items).
    let pa_i: Vec<f64> = (0..units.n_patterns())
        .map(|p| {
            if r[p] >= 2.0 {
                prep.sum_q[p] / (r[p] * (r[p] - 1.0))
            } else {
                0.0
            }
        })
        .collect();
    let pa: f64 = pa_i.iter().zip(m).map(|(a, m)| a * m).sum::<f64>() / n2;
    // Category propensities π_k = (1/n) Σ_i r_ik / r_i.
    let mut pi = vec![0.0; q];
    for p in 0..units.n_patterns() {
        let c = units.counts_of(p);
        for k in 0..q {
            pi[k] += m[p] * c[k] / r[p];
        }
    }
    for v in &mut pi {
        *v /= n;
    }
    let total_weight = w.sum();
    let f = inference.sampling_fraction(n);
    let variance_of = |terms: &dyn Fn(usize) -> f64, value: f64| -> f64 {
        let ss: f64 = (0..units.n_patterns())
            .map(|p| m[p] * (terms(p) - value).powi(2))
            .sum();
        (1.0 - f) / (n * (n - 1.0)) * ss
    };
    let is_pairable = |p: usize| if r[p] >= 2.0 { 1.0 } else { 0.0 };
    match which {
        RawCoefficient::PercentAgreement => {
            let mut est = Estimate {
                value: Some(pa),
                pa: Some(pa),
                pe: Some(0.0),
                ..Estimate::default()
            };
            let var = variance_of(&|p| (n / n2) * pa_i[p], pa);
            t_inference(&mut est, var, n, inference);
            est
        }
        RawCoefficient::BrennanPrediger => {
            let pe = total_weight / (q * q) as f64;
            let mut est = chance_corrected(pa, pe, "Brennan–Prediger");
            if let Some(value) = est.value {
                let var = variance_of(
                    &|p| (n / n2) * (pa_i[p] - pe * is_pairable(p)) / (1.0 - pe),
                    value,
                );
                t_inference(&mut est, var, n, inference);
            }
            est
        }
        RawCoefficient::Gwet => {
            if q < 2 {
                return Estimate::undefined("Gwet's AC needs at least two categories");
            }
            let scale = total_weight / (q * (q - 1)) as f64;
            let pe = scale * pi.iter().map(|p| p * (1.0 - p)).sum::<f64>();
            let mut est = chance_corrected(pa, pe, "Gwet's AC");
            if let Some(value) = est.value {
                let terms = |p: usize| {
                    let c = units.counts_of(p);
                    let ac_i = (n / n2) * (pa_i[p] - pe * is_pairable(p)) / (1.0 - pe);
                    let pe_i =
                        scale * c.iter().zip(&pi).map(|(x, pk)| x * (1.0 - pk)).sum::<f64>() / r[p];
                    ac_i - 2.0 * (1.0 - value) * (pe_i - pe) / (1.0 - pe)
                };
                let var = variance_of(&terms, value);
                t_inference(&mut est, var, n, inference);
            }
            est
        }
        RawCoefficient::Fleiss => {
            let mut pe = 0.0;
            for k in 0..q {
                for l in 0..q {
                    pe += w.get(k, l) * pi[k] * pi[l];
                }
            }
            let mut est = chance_corrected(pa, pe, "Fleiss' κ");
            if let Some(value) = est.value {
                let pi_w = symmetric_weighted_propensities(w, &pi);
                let terms = |p: usize| {
                    let c = units.counts_of(p);
                    let k_i = (n / n2) * (pa_i[p] - pe * is_pairable(p)) / (1.0 - pe);
                    let pe_i = c.iter().zip(&pi_w).map(|(x, pw)| x * pw).sum::<f64>() / r[p];
                    k_i - 2.0 * (1.0 - value) * (pe_i - pe) / (1.0 - pe)
                };
                let var = variance_of(&terms, value);
                t_inference(&mut est, var, n, inference);
            }
            est
        }
        RawCoefficient::Krippendorff => unreachable!("handled above"),
    }
}

/// (Σ_l w_kl π_l + Σ_l w_lk π_l) / 2 for each k.
fn symmetric_weighted_propensities(w: &Weights, pi: &[f64]) -> Vec<f64> {
    let q = pi.len();
    (0..q)
        .map(|k| {
            let by_row: f64 = (0..q).map(|l| w.get(k, l) * pi[l]).sum();
            let by_col: f64 = (0..q).map(|l| w.get(l, k) * pi[l]).sum();
            (by_row + by_col) / 2.0
        })
        .collect()
}

/// Krippendorff's α in Gwet's formulation (only items with two or more ratings).
fn krippendorff(units: &Units, w: &Weights, inference: &Inference) -> Estimate {
    let q = units.q;
    let prep = prepare(units, w);
    let m = &units.multiplicity;
    let r = &units.ratings;
    let pairable: Vec<usize> = (0..units.n_patterns())
        .filter(|&p| r[p] >= 2.0 && m[p] > 0.0)
        .collect();
    let n: f64 = pairable.iter().map(|&p| m[p]).sum();
    if n == 0.0 {
        return Estimate::undefined("no item has two or more ratings: nothing to compare");
    }
    let total_ratings: f64 = pairable.iter().map(|&p| m[p] * r[p]).sum();
    let r_mean = total_ratings / n;
    let epsilon = 1.0 / total_ratings;
    let pa_i = |p: usize| prep.sum_q[p] / (r_mean * (r[p] - 1.0));
    let pa_prime: f64 = pairable.iter().map(|&p| m[p] * pa_i(p)).sum::<f64>() / n;
    let pa = (1.0 - epsilon) * pa_prime + epsilon;
    let mut pi = vec![0.0; q];
    for &p in &pairable {
        let c = units.counts_of(p);
        for k in 0..q {
            pi[k] += m[p] * c[k] / (n * r_mean);
        }
    }
    let mut pe = 0.0;
    for k in 0..q {
        for l in 0..q {
            pe += w.get(k, l) * pi[k] * pi[l];
        }
    }
    let mut est = chance_corrected(pa, pe, "Krippendorff's α");
    if let Some(value) = est.value {
        let pi_w = symmetric_weighted_propensities(w, &pi);
        // Gwet takes deviations from α' (without the small-sample correction) and uses the
        // sampling fraction of all items, pairable or not.
        let alpha_prime = (pa_prime - pe) / (1.0 - pe);
        let f = inference.sampling_fraction(units.n_items());
        let ss: f64 = pairable
            .iter()
            .map(|&p| {
                let c = units.counts_of(p);
                let spread = (r[p] - r_mean) / r_mean;
                let pa_adj = pa_i(p) - pa * spread;
                let alpha_i = (pa_adj - pe) / (1.0 - pe);
                let pe_i =
                    c.iter().zip(&pi_w).map(|(x, pw)| x * pw).sum::<f64>() / r_mean - pe * spread;
                let x = alpha_i - 2.0 * (1.0 - alpha_prime) * (pe_i - pe) / (1.0 - pe);
                m[p] * (x - alpha_prime).powi(2)
            })
            .sum();
        let var = (1.0 - f) / (n * (n - 1.0)) * ss;
        let _ = value;
        t_inference(&mut est, var, n, inference);
    }
    est
}
