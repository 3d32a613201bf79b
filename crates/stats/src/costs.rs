//! Costs of disagreement: a q × q matrix `c[t][l]`, the cost of the label `l` when the
//! truth is `t` (zero on the diagonal, non-negative; it need not be symmetric — calling
//! explicit content clean may cost more than the reverse). From it: the expected cost of a
//! label under a posterior, and the symmetric distance / agreement weights that weigh
//! Krippendorff's α and Gwet's AC2 by what a confusion costs.

use crate::weights::Weights;

/// A validated cost matrix over q classes, row-major, rows the truth.
#[derive(Clone, Debug, PartialEq)]
pub struct CostMatrix {
    q: usize,
    c: Vec<f64>,
}

impl CostMatrix {
    /// From rows; refused unless square, finite, non-negative, zero on the diagonal and
    /// positive somewhere. The message names the row and column (1-based).
    pub fn new(rows: &[Vec<f64>]) -> Result<CostMatrix, String> {
        let q = rows.len();
        let mut c = Vec::with_capacity(q * q);
        for (t, row) in rows.iter().enumerate() {
            if row.len() != q {
                return Err(format!(
                    "cost matrix row {} has {} entries, expected {q}",
                    t + 1,
                    row.len()
                ));
            }
            for (l, &v) in row.iter().enumerate() {
                if !v.is_finite() || v < 0.0 {
                    return Err(format!(
                        "cost matrix row {} column {}: {v} is not a non-negative number",
                        t + 1,
                        l + 1
                    ));
                }
                if t == l && v != 0.0 {
                    return Err(format!(
                        "cost matrix row {} column {}: the right label costs nothing (0), not {v}",
                        t + 1,
                        l + 1
                    ));
                }
            }
            c.extend_from_slice(row);
        }
        if !c.iter().any(|&v| v > 0.0) {
            return Err("a cost matrix needs at least one positive cost".into());
        }
        Ok(CostMatrix { q, c })
    }

    /// The default for an ordinal scale: a confusion costs the number of levels apart.
    pub fn ordinal(q: usize) -> CostMatrix {
        let c = (0..q * q).map(|i| (i / q).abs_diff(i % q) as f64).collect();
        CostMatrix { q, c }
    }

    pub fn q(&self) -> usize {
        self.q
    }

    /// The cost of labelling `label` when the truth is `truth`.
    pub fn cost(&self, truth: usize, label: usize) -> f64 {
        self.c[truth * self.q + label]
    }

    /// Expected cost of `label` when the truth has the distribution `posterior`:
    /// Σₜ p(t) · c[t][label].
    pub fn expected_cost(&self, posterior: &[f64], label: usize) -> f64 {
        posterior
            .iter()
            .take(self.q)
            .enumerate()
            .map(|(t, p)| p * self.cost(t, label))
            .sum()
    }

    /// The symmetric part, (c + cᵀ) / 2, row-major: two annotators who disagree do not say
    /// which of them is right, so agreement weighs a confusion by its mean cost. As α's
    /// distance (α is unchanged by the scale of δ).
    pub fn alpha_distance(&self) -> Vec<f64> {
        let q = self.q;
        (0..q * q)
            .map(|i| (self.cost(i / q, i % q) + self.cost(i % q, i / q)) / 2.0)
            .collect()
    }

    /// Gwet's agreement weights: 1 − symmetric cost / the largest cost (1 on the diagonal,
    /// 0 for the costliest confusion).
    pub fn agreement_weights(&self) -> Weights {
        let distance = self.alpha_distance();
        let max = distance.iter().copied().fold(0.0, f64::max);
        let rows: Vec<Vec<f64>> = distance
            .chunks(self.q.max(1))
            .map(|row| row.iter().map(|d| 1.0 - d / max).collect())
            .collect();
        // Square and finite by construction (max > 0 since a cost is positive).
        Weights::custom(&rows).unwrap_or_else(|_| Weights::identity(self.q))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clean, advisory, explicit: calling explicit content clean costs 10, the reverse 4;
    /// adjacent levels 1.
    fn explicit_clean() -> CostMatrix {
        CostMatrix::new(&[
            vec![0.0, 1.0, 4.0],
            vec![1.0, 0.0, 1.0],
            vec![10.0, 1.0, 0.0],
        ])
        .unwrap()
    }

    #[test]
    fn expected_cost_weighs_each_truth_by_its_posterior() {
        let c = explicit_clean();
        // Labelled clean with p = (0.7, 0.1, 0.2): 0.7·0 + 0.1·1 + 0.2·10 = 2.1.
        assert!((c.expected_cost(&[0.7, 0.1, 0.2], 0) - 2.1).abs() < 1e-12);
        // Labelled explicit with the same posterior: 0.7·4 + 0.1·1 + 0 = 2.9.
        assert!((c.expected_cost(&[0.7, 0.1, 0.2], 2) - 2.9).abs() < 1e-12);
        // A sure posterior on the label costs nothing.
        assert_eq!(c.expected_cost(&[0.0, 1.0, 0.0], 1), 0.0);
    }

    #[test]
    fn agreement_uses_the_symmetric_part_scaled_to_weights() {
        let c = explicit_clean();
        let d = c.alpha_distance();
        // clean/explicit: (4 + 10) / 2 = 7; adjacent: 1.
        assert_eq!((d[2], d[6], d[1], d[5]), (7.0, 7.0, 1.0, 1.0));
        let w = c.agreement_weights();
        assert_eq!(w.get(0, 0), 1.0);
        assert_eq!(w.get(0, 2), 0.0);
        assert!((w.get(0, 1) - (1.0 - 1.0 / 7.0)).abs() < 1e-12);
    }

    #[test]
    fn the_ordinal_default_costs_the_levels_apart() {
        let c = CostMatrix::ordinal(4);
        assert_eq!((c.cost(0, 3), c.cost(2, 1), c.cost(1, 1)), (3.0, 1.0, 0.0));
    }

    #[test]
    fn a_bad_matrix_is_refused_naming_where() {
        let err = CostMatrix::new(&[vec![0.0, 1.0], vec![1.0]]).unwrap_err();
        assert!(err.contains("row 2"), "{err}");
        let err = CostMatrix::new(&[vec![0.0, -1.0], vec![1.0, 0.0]]).unwrap_err();
        assert!(err.contains("row 1 column 2"), "{err}");
        let err = CostMatrix::new(&[vec![1.0, 1.0], vec![1.0, 0.0]]).unwrap_err();
        assert!(err.contains("costs nothing"), "{err}");
        assert!(CostMatrix::new(&[vec![0.0, 0.0], vec![0.0, 0.0]]).is_err());
    }
}
