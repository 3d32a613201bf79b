//! Conger's κ (1980): Cohen's κ generalised to any number of raters, with chance
//! agreement from each rater's own marginals (Gwet 2014, §5), missing data allowed.
//!
//! Needs rater identity: one rating per rater and item — the rater's last rating
//! when an item was rated more than once (conformance README, item 10).

use super::{Estimate, Inference, chance_corrected, t_inference};
use crate::table::AnnotationTable;
use crate::weights::Weights;

/// The last rating of each annotator on an item, as (annotator, value) pairs.
pub fn last_ratings(table: &AnnotationTable, item: u32, out: &mut Vec<(u32, u32)>) {
    out.clear();
    for (annotator, value) in table.item_ratings(item) {
        if let Some(slot) = out.iter_mut().find(|(a, _)| *a == annotator) {
            slot.1 = value;
        } else {
            out.push((annotator, value));
        }
    }
}

/// Ratings reduced to one per (item, rater), kept for repeated evaluation (bootstrap).
pub struct RaterRatings {
    pub q: usize,
    pub n_raters: usize,
    /// Per item: (rater, value) pairs.
    pub offsets: Vec<usize>,
    pub ratings: Vec<(u32, u32)>,
}

impl RaterRatings {
    pub fn from_table(table: &AnnotationTable) -> Self {
        let mut offsets = Vec::with_capacity(table.n_items() + 1);
        let mut ratings = Vec::with_capacity(table.n_rows());
        let mut scratch = Vec::new();
        offsets.push(0);
        for item in 0..table.n_items() as u32 {
            last_ratings(table, item, &mut scratch);
            ratings.extend_from_slice(&scratch);
            offsets.push(ratings.len());
        }
        Self {
            q: table.n_values(),
            n_raters: table.n_annotators(),
            offsets,
            ratings,
        }
    }
    pub fn n_items(&self) -> usize {
        self.offsets.len() - 1
    }
    fn item(&self, i: usize) -> &[(u32, u32)] {
        &self.ratings[self.offsets[i]..self.offsets[i + 1]]
    }
}

/// Conger's κ with Gwet's variance. `multiplicity` weights items (bootstrap); `None` = 1 each.
pub fn conger_kappa(
    data: &RaterRatings,
    w: &Weights,
    inference: &Inference,
    multiplicity: Option<&[f64]>,
) -> Estimate {
    let q = data.q;
    let n_items = data.n_items();
    let weight = |i: usize| multiplicity.map_or(1.0, |m| m[i]);
    // Raters who rated anything (with positive weight) take part.
    let mut classif = vec![0.0; data.n_raters * q];
    let mut n = 0.0;
    let mut n2 = 0.0;
    let mut pa_sum = 0.0;
    let mut counts = vec![0.0; q];
    for i in 0..n_items {
        let m = weight(i);
        if m == 0.0 {
            continue;
        }
        let ratings = data.item(i);
        if ratings.is_empty() {
            continue;
        }
        n += m;
        for &(g, v) in ratings {
            classif[g as usize * q + v as usize] += m;
        }
        let r = ratings.len() as f64;
        if r >= 2.0 {
            n2 += m;
            pa_sum += m * item_agreement(ratings, w, &mut counts) / (r * (r - 1.0));
        }
    }
    if n2 == 0.0 {
        return Estimate::undefined("no item has two or more ratings: nothing to compare");
    }
    let raters: Vec<usize> = (0..data.n_raters)
        .filter(|&g| classif[g * q..(g + 1) * q].iter().sum::<f64>() > 0.0)
        .collect();
    let r = raters.len() as f64;
    if r < 2.0 {
        return Estimate::undefined("Conger's κ needs at least two raters");
    }
    let pa = pa_sum / n2;
    // p_gk: share of rater g's items in category k.
    let mut n_g = vec![0.0; data.n_raters];
    let mut p_gk = vec![0.0; data.n_raters * q];
    for &g in &raters {
        let row = &classif[g * q..(g + 1) * q];
        n_g[g] = row.iter().sum();
        for k in 0..q {
            p_gk[g * q + k] = row[k] / n_g[g];
        }
    }
    let mut p_mean = vec![0.0; q];
    for &g in &raters {
        for k in 0..q {
            p_mean[k] += p_gk[g * q + k] / r;
        }
    }
    let mut pe = 0.0;
    for k in 0..q {
        for l in 0..q {
            let cross: f64 = raters
                .iter()
                .map(|&g| p_gk[g * q + k] * p_gk[g * q + l])
                .sum();
            let s2 = (cross - r * p_mean[k] * p_mean[l]) / (r - 1.0);
            pe += w.get(k, l) * (p_mean[k] * p_mean[l] - s2 / r);
        }
    }
    let mut est = chance_corrected(pa, pe, "Conger's κ");
    let Some(value) = est.value else { return est };
    // Per-item chance agreement: pe_i = [C + Σ_{g rated i} (n/n_g)(A_g[x_ig] − B_g)] / (r(r−1)),
    // where the terms of raters who did not rate i collapse into the constant C.
    let mut a_g = vec![0.0; data.n_raters * q];
    let mut b_g = vec![0.0; data.n_raters];
    let mut constant = 0.0;
    for &g in &raters {
        for l in 0..q {
            a_g[g * q + l] = (0..q)
                .map(|k| w.get(k, l) * (r * p_mean[k] - p_gk[g * q + k]))
                .sum();
        }
        let b: f64 = (0..q)
            .map(|k| {
                let wp: f64 = (0..q).map(|l| w.get(k, l) * p_gk[g * q + l]).sum();
                wp * (r * p_mean[k] - p_gk[g * q + k])
            })
            .sum();
        b_g[g] = b;
        constant += b;
    }
    let f = inference.sampling_fraction(n);
    let mut ss = 0.0;
    for i in 0..n_items {
        let m = weight(i);
        let ratings = data.item(i);
        if m == 0.0 || ratings.is_empty() {
            continue;
        }
        let r_i = ratings.len() as f64;
        let pa_i = if r_i >= 2.0 {
            item_agreement(ratings, w, &mut counts) / (r_i * (r_i - 1.0))
        } else {
            0.0
        };
        let pe_r2 = if r_i >= 2.0 { pe } else { 0.0 };
        let k_i = (n / n2) * (pa_i - pe_r2) / (1.0 - pe);
        let mut lambda = constant;
        for &(g, v) in ratings {
            let g = g as usize;
            lambda += (n / n_g[g]) * (a_g[g * q + v as usize] - b_g[g]);
        }
        let pe_i = lambda / (r * (r - 1.0));
        let x = k_i - 2.0 * (1.0 - value) * (pe_i - pe) / (1.0 - pe);
        ss += m * (x - value).powi(2);
    }
    let var = (1.0 - f) / (n * (n - 1.0)) * ss;
    t_inference(&mut est, var, n, inference);
    est
}

/// Σ_k r_ik (r*_ik − 1) for one item's ratings.
fn item_agreement(ratings: &[(u32, u32)], w: &Weights, counts: &mut [f64]) -> f64 {
    counts.iter_mut().for_each(|c| *c = 0.0);
    for &(_, v) in ratings {
        counts[v as usize] += 1.0;
    }
    let mut s = 0.0;
    for (k, &c) in counts.iter().enumerate() {
        if c > 0.0 {
            let weighted: f64 = counts.iter().zip(w.row(k)).map(|(x, wk)| x * wk).sum();
            s += c * (weighted - 1.0);
        }
    }
    s
}
