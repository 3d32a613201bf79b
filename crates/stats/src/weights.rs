//! Agreement weights (Gwet 2014, chapter 3) and Krippendorff's distance metrics.
//!
//! Gwet's schemes are defined on category *values*: the numbers themselves for
//! numeric labels, positions 1..q for named categories (as irrCAC does).

use serde::Serialize;

use crate::table::ValueDomain;

/// Gwet's weight schemes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightScheme {
    Identity,
    Linear,
    Quadratic,
    Ordinal,
    Radical,
    Ratio,
    Circular,
    Bipolar,
    Custom,
}

impl std::str::FromStr for WeightScheme {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "identity" | "none" | "unweighted" => Self::Identity,
            "linear" => Self::Linear,
            "quadratic" => Self::Quadratic,
            "ordinal" => Self::Ordinal,
            "radical" => Self::Radical,
            "ratio" => Self::Ratio,
            "circular" => Self::Circular,
            "bipolar" => Self::Bipolar,
            "custom" => Self::Custom,
            other => {
                return Err(format!(
                    "unknown weights '{other}' (identity, linear, quadratic, ordinal, radical, ratio, circular, bipolar, custom)"
                ));
            }
        })
    }
}

impl WeightScheme {
    pub fn name(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Linear => "linear",
            Self::Quadratic => "quadratic",
            Self::Ordinal => "ordinal",
            Self::Radical => "radical",
            Self::Ratio => "ratio",
            Self::Circular => "circular",
            Self::Bipolar => "bipolar",
            Self::Custom => "custom",
        }
    }
}

/// A q × q agreement-weight matrix, row-major: `w[k][l]` in [0, 1], 1 on the diagonal.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Weights {
    q: usize,
    w: Vec<f64>,
}

impl Weights {
    pub fn identity(q: usize) -> Self {
        let mut w = vec![0.0; q * q];
        for k in 0..q {
            w[k * q + k] = 1.0;
        }
        Self { q, w }
    }

    /// A user-supplied matrix; must be q × q with finite entries.
    pub fn custom(rows: &[Vec<f64>]) -> Result<Self, String> {
        let q = rows.len();
        let mut w = Vec::with_capacity(q * q);
        for (k, row) in rows.iter().enumerate() {
            if row.len() != q {
                return Err(format!(
                    "weight matrix row {} has {} entries, expected {q}",
                    k + 1,
                    row.len()
                ));
            }
            if let Some(v) = row.iter().find(|v| !v.is_finite()) {
                return Err(format!(
                    "weight matrix row {} has a non-finite entry {v}",
                    k + 1
                ));
            }
            w.extend_from_slice(row);
        }
        Ok(Self { q, w })
    }

    /// Gwet's scheme over the given category values (in category order).
    pub fn from_scheme(scheme: WeightScheme, values: &[f64]) -> Result<Self, String> {
        let q = values.len();
        if scheme == WeightScheme::Identity {
            return Ok(Self::identity(q));
        }
        if scheme == WeightScheme::Custom {
            return Err("custom weights need a matrix".into());
        }
        if q < 2 {
            return Ok(Self::identity(q));
        }
        let (min, max) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let span = max - min;
        let mut w = vec![0.0; q * q];
        match scheme {
            WeightScheme::Linear => {
                fill(&mut w, q, |k, l| 1.0 - (values[k] - values[l]).abs() / span)
            }
            WeightScheme::Quadratic => fill(&mut w, q, |k, l| {
                1.0 - (values[k] - values[l]).powi(2) / (span * span)
            }),
            WeightScheme::Radical => fill(&mut w, q, |k, l| {
                1.0 - (values[k] - values[l]).abs().sqrt() / span.sqrt()
            }),
            WeightScheme::Ordinal => {
                // Ranks, not values: the number of categories spanned, as pairs.
                let pairs = |n: f64| n * (n - 1.0) / 2.0;
                let max = pairs(q as f64);
                fill(&mut w, q, |k, l| {
                    1.0 - pairs((k as f64 - l as f64).abs() + 1.0) / max
                })
            }
            WeightScheme::Ratio => {
                if min + max == 0.0 || values.iter().any(|v| *v < 0.0) {
                    return Err("ratio weights need non-negative category values".into());
                }
                let denom = (span / (max + min)).powi(2);
                fill(&mut w, q, |k, l| {
                    let (a, b) = (values[k], values[l]);
                    if a + b == 0.0 {
                        1.0
                    } else {
                        1.0 - ((a - b) / (a + b)).powi(2) / denom
                    }
                })
            }
            WeightScheme::Circular => {
                let u = span + 1.0;
                let raw = |k: usize, l: usize| {
                    (std::f64::consts::PI * (values[k] - values[l]) / u)
                        .sin()
                        .powi(2)
                };
                let top = max_over(q, raw);
                fill(&mut w, q, |k, l| 1.0 - raw(k, l) / top)
            }
            WeightScheme::Bipolar => {
                let raw = |k: usize, l: usize| {
                    if k == l {
                        return 0.0;
                    }
                    let (a, b) = (values[k], values[l]);
                    let denom = (a + b - 2.0 * min) * (2.0 * max - a - b);
                    if denom == 0.0 {
                        0.0
                    } else {
                        (a - b).powi(2) / denom
                    }
                };
                let top = max_over(q, raw);
                fill(&mut w, q, |k, l| 1.0 - raw(k, l) / top)
            }
            WeightScheme::Identity | WeightScheme::Custom => unreachable!("handled above"),
        }
        Ok(Self { q, w })
    }

    /// Gwet's scheme over a table's categories: numeric values, else positions 1..q.
    pub fn for_domain(scheme: WeightScheme, domain: &ValueDomain) -> Result<Self, String> {
        Self::from_scheme(scheme, &gwet_category_values(domain))
    }

    pub fn q(&self) -> usize {
        self.q
    }
    #[inline]
    pub fn get(&self, k: usize, l: usize) -> f64 {
        self.w[k * self.q + l]
    }
    pub fn row(&self, k: usize) -> &[f64] {
        &self.w[k * self.q..(k + 1) * self.q]
    }
    pub fn sum(&self) -> f64 {
        self.w.iter().sum()
    }
    pub fn is_identity(&self) -> bool {
        (0..self.q).all(|k| (0..self.q).all(|l| self.get(k, l) == if k == l { 1.0 } else { 0.0 }))
    }
    pub fn rows(&self) -> Vec<Vec<f64>> {
        (0..self.q).map(|k| self.row(k).to_vec()).collect()
    }
}

fn fill(w: &mut [f64], q: usize, f: impl Fn(usize, usize) -> f64) {
    for k in 0..q {
        for l in 0..q {
            w[k * q + l] = if k == l { 1.0 } else { f(k, l) };
        }
    }
}

fn max_over(q: usize, f: impl Fn(usize, usize) -> f64) -> f64 {
    let mut top: f64 = 0.0;
    for k in 0..q {
        for l in 0..q {
            top = top.max(f(k, l));
        }
    }
    if top == 0.0 { 1.0 } else { top }
}

/// The numbers Gwet's weights are computed from: label values when numeric,
/// else 1-based positions in category order.
pub fn gwet_category_values(domain: &ValueDomain) -> Vec<f64> {
    match domain.numeric_values() {
        Some(v) => v.to_vec(),
        None => (1..=domain.len()).map(|i| i as f64).collect(),
    }
}

/// Krippendorff's metric (level of measurement) for α.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Nominal,
    Ordinal,
    Interval,
    Ratio,
    /// Multi-label: MASI distance (Passonneau 2006).
    Masi,
    /// Multi-label: Jaccard distance.
    Jaccard,
}

impl std::str::FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "nominal" | "binary" => Self::Nominal,
            "ordinal" => Self::Ordinal,
            "interval" => Self::Interval,
            "ratio" => Self::Ratio,
            "masi" => Self::Masi,
            "jaccard" => Self::Jaccard,
            other => {
                return Err(format!(
                    "unknown level '{other}' (nominal, ordinal, interval, ratio, masi, jaccard)"
                ));
            }
        })
    }
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Self::Nominal => "nominal",
            Self::Ordinal => "ordinal",
            Self::Interval => "interval",
            Self::Ratio => "ratio",
            Self::Masi => "masi",
            Self::Jaccard => "jaccard",
        }
    }
}

/// Krippendorff's squared-difference function δ²(c, k) over the value domain.
/// `marginals` are the pairable value frequencies n_c (needed by the ordinal metric).
pub fn distance_matrix(
    level: Level,
    domain: &ValueDomain,
    marginals: &[f64],
) -> Result<Vec<f64>, String> {
    let q = domain.len();
    let mut d = vec![0.0; q * q];
    // Numbers are their values; declared text categories their positions 1..q in the
    // declared order (as irrCAC's weights, and the krippendorff package given those
    // positions); undeclared text has no distance of this kind.
    let numeric = || -> Result<Vec<f64>, String> {
        match domain.numeric_values() {
            Some(values) => Ok(values.to_vec()),
            None if domain.declared() && !domain.is_sets() => {
                Ok((1..=q).map(|position| position as f64).collect())
            }
            None => Err(format!(
                "the {} level needs numeric labels (use --label-type int or float) or \
                 text categories declared in order (--categories)",
                level.name()
            )),
        }
    };
    match level {
        Level::Nominal => fill_distance(&mut d, q, |_, _| 1.0),
        Level::Ordinal => {
            // Ranks from the value order; distance from the marginal frequencies.
            let mut cumulative = vec![0.0; q + 1];
            for c in 0..q {
                cumulative[c + 1] = cumulative[c] + marginals[c];
            }
            fill_distance(&mut d, q, |c, k| {
                let (lo, hi) = if c < k { (c, k) } else { (k, c) };
                let between = cumulative[hi + 1] - cumulative[lo];
                (between - (marginals[c] + marginals[k]) / 2.0).powi(2)
            })
        }
        Level::Interval => {
            let v = numeric()?;
            fill_distance(&mut d, q, |c, k| (v[c] - v[k]).powi(2))
        }
        Level::Ratio => {
            let v = numeric()?;
            fill_distance(&mut d, q, |c, k| {
                let s = v[c] + v[k];
                if s == 0.0 {
                    0.0
                } else {
                    ((v[c] - v[k]) / s).powi(2)
                }
            })
        }
        Level::Masi | Level::Jaccard => {
            if !domain.is_sets() {
                return Err(format!(
                    "the {} distance needs multi-label data (--label-type set)",
                    level.name()
                ));
            }
            fill_distance(&mut d, q, |c, k| {
                set_distance(
                    level,
                    domain.set_members(c as u32),
                    domain.set_members(k as u32),
                )
            })
        }
    }
    Ok(d)
}

fn fill_distance(d: &mut [f64], q: usize, f: impl Fn(usize, usize) -> f64) {
    for c in 0..q {
        for k in 0..q {
            d[c * q + k] = if c == k { 0.0 } else { f(c, k) };
        }
    }
}

/// Jaccard or MASI distance between two sorted sets of element ids.
pub fn set_distance(level: Level, a: &[u32], b: &[u32]) -> f64 {
    let mut intersection = 0usize;
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                intersection += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - intersection;
    if union == 0 {
        return 0.0;
    }
    let jaccard = intersection as f64 / union as f64;
    if level == Level::Jaccard {
        return 1.0 - jaccard;
    }
    let monotonicity = if a == b {
        1.0
    } else if intersection == a.len().min(b.len()) {
        2.0 / 3.0
    } else if intersection > 0 {
        1.0 / 3.0
    } else {
        0.0
    };
    1.0 - jaccard * monotonicity
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row0(scheme: WeightScheme) -> Vec<f64> {
        Weights::from_scheme(scheme, &[1.0, 2.0, 3.0, 4.0, 5.0])
            .unwrap()
            .row(0)
            .to_vec()
    }

    fn assert_close(a: &[f64], b: &[f64]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn gwet_schemes_on_a_five_point_scale() {
        assert_close(&row0(WeightScheme::Linear), &[1.0, 0.75, 0.5, 0.25, 0.0]);
        assert_close(
            &row0(WeightScheme::Quadratic),
            &[1.0, 0.9375, 0.75, 0.4375, 0.0],
        );
        assert_close(&row0(WeightScheme::Ordinal), &[1.0, 0.9, 0.7, 0.4, 0.0]);
        assert_close(
            &row0(WeightScheme::Radical),
            &[
                1.0,
                0.5,
                1.0 - 2f64.sqrt() / 2.0,
                1.0 - 3f64.sqrt() / 2.0,
                0.0,
            ],
        );
        assert_close(
            &row0(WeightScheme::Bipolar),
            &[1.0, 6.0 / 7.0, 2.0 / 3.0, 0.4, 0.0],
        );
        assert_close(&row0(WeightScheme::Ratio), &[1.0, 0.75, 0.4375, 0.19, 0.0]);
    }

    #[test]
    fn masi_distance_follows_passonneau() {
        assert_eq!(set_distance(Level::Masi, &[1, 2], &[1, 2]), 0.0);
        assert!((set_distance(Level::Masi, &[1], &[1, 2]) - (1.0 - 0.5 * 2.0 / 3.0)).abs() < 1e-15);
        assert_eq!(set_distance(Level::Masi, &[1], &[2]), 1.0);
        assert!((set_distance(Level::Jaccard, &[1, 3], &[1, 2]) - (1.0 - 1.0 / 3.0)).abs() < 1e-15);
    }
}
