//! Fleiss' κ (Fleiss 1971, fixed marginals) and Randolph's free-marginal κ (2005).
//!
//! With a varying number of ratings per item, observed agreement is the mean over
//! items with two or more ratings of Σ_k r_ik (r_ik − 1) / (r_i (r_i − 1)) and the
//! category proportions are pooled over all ratings; with a constant number this is
//! exactly Fleiss (1971). The standard error under H0 (Fleiss, Nee & Landis 1979) is
//! reported when every item has the same number of ratings.

use super::{Estimate, chance_corrected};
use crate::dist;
use crate::units::Units;

fn observed_agreement(units: &Units) -> Option<f64> {
    let mut sum = 0.0;
    let mut n2 = 0.0;
    for p in 0..units.n_patterns() {
        let r = units.ratings[p];
        let m = units.multiplicity[p];
        if r < 2.0 || m == 0.0 {
            continue;
        }
        let agreeing: f64 = units.counts_of(p).iter().map(|c| c * (c - 1.0)).sum();
        sum += m * agreeing / (r * (r - 1.0));
        n2 += m;
    }
    (n2 > 0.0).then_some(sum / n2)
}

/// Fleiss' κ with category proportions pooled over all ratings.
pub fn fleiss_kappa(units: &Units) -> Estimate {
    let Some(pa) = observed_agreement(units) else {
        return Estimate::undefined("no item has two or more ratings: nothing to compare");
    };
    let totals = units.category_totals();
    let all: f64 = totals.iter().sum();
    let p: Vec<f64> = totals.iter().map(|t| t / all).collect();
    let pe: f64 = p.iter().map(|x| x * x).sum();
    let mut est = chance_corrected(pa, pe, "Fleiss' κ");
    // H0 standard error needs a constant number of ratings per item.
    let constant_r = units
        .ratings
        .iter()
        .zip(&units.multiplicity)
        .filter(|(_, m)| **m > 0.0)
        .map(|(r, _)| *r)
        .try_fold(None, |acc: Option<f64>, r| match acc {
            None => Some(Some(r)),
            Some(prev) if prev == r => Some(Some(r)),
            _ => None,
        })
        .flatten();
    if let (Some(value), Some(r)) = (est.value, constant_r) {
        let n = units.n_items();
        let pq: f64 = p.iter().map(|x| x * (1.0 - x)).sum();
        let skew: f64 = p.iter().map(|x| x * (1.0 - x) * (1.0 - 2.0 * x)).sum();
        if r >= 2.0 && pq > 0.0 {
            let var0 = 2.0 / (n * r * (r - 1.0)) * (pq * pq - skew) / (pq * pq);
            let se0 = var0.sqrt();
            est.se_h0 = Some(se0);
            let z = value / se0;
            est.z = Some(z);
            est.p_value = Some(dist::normal_two_sided_p(z));
        }
    }
    est
}

/// Randolph's free-marginal κ: chance agreement 1/K with K the declared (or observed) categories.
pub fn randolph_kappa(units: &Units) -> Estimate {
    let Some(pa) = observed_agreement(units) else {
        return Estimate::undefined("no item has two or more ratings: nothing to compare");
    };
    if units.q < 2 {
        return Estimate::undefined("Randolph's κ needs at least two categories");
    }
    chance_corrected(pa, 1.0 / units.q as f64, "Randolph's κ")
}
