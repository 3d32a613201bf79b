//! Two-rater coefficients from a contingency table (rows = the annotator whose id
//! sorts first, columns = the other), each rater's last rating of an item counting.
//!
//! * Cohen's κ with the Fleiss–Cohen–Everitt asymptotic variance and the variance
//!   under H0 (as statsmodels and SAS report them), weights on category ranks.
//! * Gwet's (2014) two-rater variance formulas for Cohen, Scott, Gwet AC1/AC2,
//!   Brennan–Prediger, Krippendorff and percent agreement (`variance = two_rater_table`).

use super::conger::last_ratings;
use super::{Estimate, Inference, PStatistic, chance_corrected, t_inference_with};
use crate::dist;
use crate::table::AnnotationTable;
use crate::weights::Weights;

/// A q × q contingency table of two raters (row-major counts).
#[derive(Clone, Debug, PartialEq)]
pub struct ContingencyTable {
    pub q: usize,
    pub counts: Vec<f64>,
}

impl ContingencyTable {
    pub fn new(q: usize) -> Self {
        Self {
            q,
            counts: vec![0.0; q * q],
        }
    }
    pub fn total(&self) -> f64 {
        self.counts.iter().sum()
    }
    pub fn with_counts(&self, counts: Vec<f64>) -> Self {
        Self { q: self.q, counts }
    }
    #[inline]
    pub fn get(&self, k: usize, l: usize) -> f64 {
        self.counts[k * self.q + l]
    }
    fn marginals(&self) -> (Vec<f64>, Vec<f64>, f64) {
        let q = self.q;
        let n = self.total();
        let mut rows = vec![0.0; q];
        let mut cols = vec![0.0; q];
        for k in 0..q {
            for l in 0..q {
                let p = self.get(k, l) / n;
                rows[k] += p;
                cols[l] += p;
            }
        }
        (rows, cols, n)
    }

    /// The table of two annotators over the items both rated (last rating each).
    pub fn from_pair(table: &AnnotationTable, a: u32, b: u32) -> Self {
        let q = table.n_values();
        let mut out = Self::new(q);
        let mut scratch = Vec::new();
        let mut last_item = u32::MAX;
        for &item in table.annotator_items(a) {
            if item == last_item {
                continue;
            }
            last_item = item;
            last_ratings(table, item, &mut scratch);
            let va = scratch.iter().find(|(ann, _)| *ann == a).map(|x| x.1);
            let vb = scratch.iter().find(|(ann, _)| *ann == b).map(|x| x.1);
            if let (Some(va), Some(vb)) = (va, vb) {
                out.counts[va as usize * q + vb as usize] += 1.0;
            }
        }
        out
    }

    /// For a table with exactly two annotators: rows = the one whose id sorts first.
    pub fn from_two_annotators(table: &AnnotationTable) -> Option<Self> {
        if table.n_annotators() != 2 {
            return None;
        }
        let (a, b) = if table.annotator_name(0) <= table.annotator_name(1) {
            (0, 1)
        } else {
            (1, 0)
        };
        Some(Self::from_pair(table, a, b))
    }

    /// Categories used by either rater (indices).
    pub fn used_categories(&self) -> Vec<usize> {
        let (rows, cols, _) = self.marginals();
        (0..self.q)
            .filter(|&k| rows[k] > 0.0 || cols[k] > 0.0)
            .collect()
    }

    /// The table restricted to the given categories.
    pub fn restrict(&self, keep: &[usize]) -> Self {
        let q = keep.len();
        let mut out = Self::new(q);
        for (i, &k) in keep.iter().enumerate() {
            for (j, &l) in keep.iter().enumerate() {
                out.counts[i * q + j] = self.get(k, l);
            }
        }
        out
    }
}

/// Cohen's weight scheme (on category ranks 0..q−1, as sklearn, R irr and statsmodels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CohenWeights {
    Unweighted,
    Linear,
    Quadratic,
}

impl CohenWeights {
    pub fn matrix(self, q: usize) -> Weights {
        let span = (q.max(2) - 1) as f64;
        let rows: Vec<Vec<f64>> = (0..q)
            .map(|k| {
                (0..q)
                    .map(|l| {
                        let d = (k as f64 - l as f64).abs() / span;
                        match self {
                            Self::Unweighted => f64::from(u8::from(k == l)),
                            Self::Linear => 1.0 - d,
                            Self::Quadratic => 1.0 - d * d,
                        }
                    })
                    .collect()
            })
            .collect();
        Weights::custom(&rows).unwrap_or_else(|_| Weights::identity(q))
    }
}

/// Cohen's κ with asymptotic SE (Fleiss, Cohen & Everitt 1969), SE under H0, z = κ / SE₀,
/// two-sided normal p and CI κ ± z₁₋α/₂ · SE.
pub fn cohen_kappa(table: &ContingencyTable, w: &Weights, inference: &Inference) -> Estimate {
    let q = table.q;
    let (rows, cols, n) = table.marginals();
    if n == 0.0 {
        return Estimate::undefined("the two annotators share no item");
    }
    let mut pa = 0.0;
    let mut pe = 0.0;
    for k in 0..q {
        for l in 0..q {
            pa += w.get(k, l) * table.get(k, l) / n;
            pe += w.get(k, l) * rows[k] * cols[l];
        }
    }
    let mut est = chance_corrected(pa, pe, "Cohen's κ");
    let Some(kappa) = est.value else { return est };
    if !inference.wants_intervals() {
        return est;
    }
    let row_bar: Vec<f64> = (0..q)
        .map(|k| (0..q).map(|l| w.get(k, l) * cols[l]).sum())
        .collect();
    let col_bar: Vec<f64> = (0..q)
        .map(|l| (0..q).map(|k| w.get(k, l) * rows[k]).sum())
        .collect();
    let mut sum = 0.0;
    let mut sum0 = 0.0;
    for k in 0..q {
        for l in 0..q {
            let p = table.get(k, l) / n;
            sum += p * (w.get(k, l) - (row_bar[k] + col_bar[l]) * (1.0 - kappa)).powi(2);
            sum0 += rows[k] * cols[l] * (w.get(k, l) - (row_bar[k] + col_bar[l])).powi(2);
        }
    }
    let scale = n * (1.0 - pe).powi(2);
    let var = (sum - (kappa - pe * (1.0 - kappa)).powi(2)) / scale;
    let var0 = (sum0 - pe * pe) / scale;
    let se = var.max(0.0).sqrt();
    let z_crit = dist::normal_quantile(1.0 - (1.0 - inference.confidence) / 2.0);
    est.se = Some(se);
    est.ci = Some([kappa - z_crit * se, kappa + z_crit * se]);
    if var0 > 0.0 {
        let se0 = var0.sqrt();
        est.se_h0 = Some(se0);
        est.z = Some(kappa / se0);
        est.p_value = Some(dist::normal_two_sided_p(kappa / se0));
    }
    est.ci_method = Some("analytic, normal (Fleiss–Cohen–Everitt)".into());
    est
}

/// Coefficients with Gwet's two-rater variance formulas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableCoefficient {
    Cohen,
    Scott,
    Gwet,
    BrennanPrediger,
    Krippendorff,
    PercentAgreement,
}

/// Gwet's (2014) two-rater estimates and variances.
pub fn table_coefficient(
    which: TableCoefficient,
    table: &ContingencyTable,
    w: &Weights,
    inference: &Inference,
) -> Estimate {
    let q = table.q;
    let (rows, cols, n) = table.marginals();
    if n == 0.0 {
        return Estimate::undefined("the two annotators share no item");
    }
    let p = |k: usize, l: usize| table.get(k, l) / n;
    let mut pa = 0.0;
    for k in 0..q {
        for l in 0..q {
            pa += w.get(k, l) * p(k, l);
        }
    }
    let f = inference.sampling_fraction(n);
    let pi: Vec<f64> = (0..q).map(|k| (rows[k] + cols[k]) / 2.0).collect();
    let tw = w.sum();
    let weighted_sum = |term: &dyn Fn(usize, usize) -> f64| -> f64 {
        let mut s = 0.0;
        for k in 0..q {
            for l in 0..q {
                let pkl = p(k, l);
                if pkl > 0.0 {
                    s += pkl * term(k, l).powi(2);
                }
            }
        }
        s
    };
    let (mut est, var) = match which {
        TableCoefficient::PercentAgreement => {
            let est = Estimate {
                value: Some(pa),
                pa: Some(pa),
                pe: Some(0.0),
                ..Estimate::default()
            };
            let var = (1.0 - f) / n * (weighted_sum(&|k, l| w.get(k, l)) - pa * pa);
            (est, var)
        }
        TableCoefficient::BrennanPrediger => {
            let pe = tw / (q * q) as f64;
            let est = chance_corrected(pa, pe, "Brennan–Prediger");
            let var = (1.0 - f) / (n * (1.0 - pe).powi(2))
                * (weighted_sum(&|k, l| w.get(k, l)) - pa * pa);
            (est, var)
        }
        TableCoefficient::Cohen => {
            let mut pe = 0.0;
            for k in 0..q {
                for l in 0..q {
                    pe += w.get(k, l) * rows[k] * cols[l];
                }
            }
            let est = chance_corrected(pa, pe, "Cohen's κ");
            let var = est.value.map_or(f64::NAN, |kappa| {
                // Gwet's form indexes the row term by column (identical for symmetric weights).
                let row_bar: Vec<f64> = (0..q)
                    .map(|k| (0..q).map(|m| w.get(m, k) * cols[m]).sum())
                    .collect();
                let col_bar: Vec<f64> = (0..q)
                    .map(|l| (0..q).map(|m| w.get(m, l) * rows[m]).sum())
                    .collect();
                let s =
                    weighted_sum(&|k, l| w.get(k, l) - (1.0 - kappa) * (row_bar[k] + col_bar[l]));
                (1.0 - f) / (n * (1.0 - pe).powi(2)) * (s - (pa - 2.0 * (1.0 - kappa) * pe).powi(2))
            });
            (est, var)
        }
        TableCoefficient::Scott | TableCoefficient::Krippendorff => {
            let mut pe = 0.0;
            for k in 0..q {
                for l in 0..q {
                    pe += w.get(k, l) * pi[k] * pi[l];
                }
            }
            let scott = chance_corrected(pa, pe, "Scott's π");
            let est = if which == TableCoefficient::Krippendorff {
                // Krippendorff's small-sample correction of pa; the variance is Scott's.
                let epsilon = 1.0 / (2.0 * n);
                chance_corrected((1.0 - epsilon) * pa + epsilon, pe, "Krippendorff's α")
            } else {
                scott.clone()
            };
            let var = scott.value.map_or(f64::NAN, |value| {
                let a: Vec<f64> = (0..q)
                    .map(|k| (0..q).map(|m| w.get(m, k) * cols[m]).sum())
                    .collect();
                let b: Vec<f64> = (0..q)
                    .map(|k| (0..q).map(|m| w.get(m, k) * rows[m]).sum())
                    .collect();
                let bar: Vec<f64> = (0..q).map(|k| (a[k] + b[k]) / 2.0).collect();
                let s = weighted_sum(&|k, l| w.get(k, l) - (1.0 - value) * (bar[k] + bar[l]));
                (1.0 - f) / (n * (1.0 - pe).powi(2)) * (s - (pa - 2.0 * (1.0 - value) * pe).powi(2))
            });
            (est, var)
        }
        TableCoefficient::Gwet => {
            if q < 2 {
                return Estimate::undefined("Gwet's AC needs at least two categories");
            }
            let scale = tw / (q * (q - 1)) as f64;
            let pe = scale * pi.iter().map(|x| x * (1.0 - x)).sum::<f64>();
            let est = chance_corrected(pa, pe, "Gwet's AC");
            let var = est.value.map_or(f64::NAN, |gamma| {
                let s = weighted_sum(&|k, l| {
                    w.get(k, l) - 2.0 * (1.0 - gamma) * scale * (1.0 - (pi[k] + pi[l]) / 2.0)
                });
                (1.0 - f) / (n * (1.0 - pe).powi(2)) * (s - (pa - 2.0 * (1.0 - gamma) * pe).powi(2))
            });
            (est, var)
        }
    };
    if est.value.is_some() {
        let p_statistic = if which == TableCoefficient::Cohen {
            PStatistic::Absolute
        } else {
            PStatistic::PositivePart
        };
        t_inference_with(&mut est, var, n, inference, p_statistic);
    }
    est
}
