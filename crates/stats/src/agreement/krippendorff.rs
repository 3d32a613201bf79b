//! Krippendorff's α from the coincidence matrix (Krippendorff 2011, "Computing
//! Krippendorff's alpha-reliability"), at any level of measurement.
//!
//! Units with a single rating are unpairable and dropped before the value
//! frequencies are computed (conformance README, item 3).

use super::raw::{RawCoefficient, raw_coefficient};
use super::{Estimate, Inference};
use crate::table::ValueDomain;
use crate::units::Units;
use crate::weights::{Level, Weights, distance_matrix};

/// The coincidence matrix o_ck and value frequencies n_c of the pairable units.
pub struct Coincidences {
    pub q: usize,
    pub o: Vec<f64>,
    pub n_c: Vec<f64>,
    pub n: f64,
}

pub fn coincidences(units: &Units) -> Coincidences {
    let q = units.q;
    let mut o = vec![0.0; q * q];
    let mut nonzero: Vec<(usize, f64)> = Vec::with_capacity(q);
    for p in 0..units.n_patterns() {
        let r = units.ratings[p];
        let m = units.multiplicity[p];
        if r < 2.0 || m == 0.0 {
            continue;
        }
        nonzero.clear();
        nonzero.extend(
            units
                .counts_of(p)
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0.0)
                .map(|(k, c)| (k, *c)),
        );
        let scale = m / (r - 1.0);
        for &(c, nc) in &nonzero {
            for &(k, nk) in &nonzero {
                let pairs = if c == k { nc * (nc - 1.0) } else { nc * nk };
                o[c * q + k] += pairs * scale;
            }
        }
    }
    let n_c: Vec<f64> = (0..q).map(|c| o[c * q..(c + 1) * q].iter().sum()).collect();
    let n = n_c.iter().sum();
    Coincidences { q, o, n_c, n }
}

/// α with a given distance matrix δ² (row-major q × q).
pub fn alpha_with_distance(co: &Coincidences, delta: &[f64]) -> Estimate {
    let q = co.q;
    if co.n < 2.0 {
        return Estimate::undefined(
            "fewer than two pairable values: no unit has two or more ratings",
        );
    }
    let mut observed = 0.0;
    let mut expected = 0.0;
    for c in 0..q {
        for k in 0..q {
            let d = delta[c * q + k];
            if d == 0.0 {
                continue;
            }
            observed += co.o[c * q + k] * d;
            expected += co.n_c[c] * co.n_c[k] * d;
        }
    }
    let expected = expected / (co.n - 1.0);
    if expected <= 0.0 {
        return Estimate::undefined(
            "expected disagreement De = 0 (one value only among pairable ratings): α = 0/0",
        );
    }
    // Agreement-scale pa and pe on distances normalised to [0, 1], chosen so that
    // (pa − pe) / (1 − pe) = α (Gwet's formulation, with the small-sample correction in pa).
    let max = delta.iter().cloned().fold(0.0, f64::max);
    let n2 = co.n * co.n;
    let pe = 1.0 - expected * (co.n - 1.0) / (n2 * max);
    let pa = 1.0 - (co.n - 1.0) * observed / (n2 * max);
    let value = 1.0 - observed / expected;
    Estimate {
        value: Some(value),
        pa: Some(pa),
        pe: Some(pe),
        ..Estimate::default()
    }
}

/// Krippendorff's α at `level`, with Gwet's analytic standard error (agreement weights
/// w = 1 − δ²/max δ², which leave α unchanged).
pub fn alpha(
    units: &Units,
    domain: &ValueDomain,
    level: Level,
    inference: &Inference,
) -> Result<Estimate, String> {
    let co = coincidences(units);
    let delta = distance_matrix(level, domain, &co.n_c)?;
    Ok(alpha_from_parts(units, &co, &delta, inference))
}

/// α with a user-supplied distance matrix.
pub fn alpha_custom(units: &Units, delta: &[f64], inference: &Inference) -> Estimate {
    let co = coincidences(units);
    alpha_from_parts(units, &co, delta, inference)
}

fn alpha_from_parts(
    units: &Units,
    co: &Coincidences,
    delta: &[f64],
    inference: &Inference,
) -> Estimate {
    let mut est = alpha_with_distance(co, delta);
    if est.value.is_none() || !inference.wants_intervals() {
        return est;
    }
    let q = co.q;
    let max = delta.iter().cloned().fold(0.0, f64::max);
    if max > 0.0 {
        let rows: Vec<Vec<f64>> = (0..q)
            .map(|c| (0..q).map(|k| 1.0 - delta[c * q + k] / max).collect())
            .collect();
        if let Ok(w) = Weights::custom(&rows) {
            let analytic = raw_coefficient(RawCoefficient::Krippendorff, units, &w, inference);
            if let Some(se) = analytic.se {
                super::t_inference(&mut est, se * se, units.pairable_items(), inference);
            }
        }
    }
    est
}
