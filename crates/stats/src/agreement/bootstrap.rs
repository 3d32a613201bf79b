//! The item-cluster bootstrap: resample items (each with all its ratings) with
//! replacement, recompute the coefficient, take percentile intervals.
//!
//! Every coefficient here is a function of item-level units with multiplicities
//! (count patterns, contingency-table cells or single items), so a replicate is a
//! multinomial draw of n items over those units — exactly the distribution of the
//! unit counts when n items are drawn uniformly with replacement. Each replicate has
//! its own RNG stream derived from (seed, replicate index), so results do not depend
//! on the number of threads.

use rand::SeedableRng;
use rand_distr::{Binomial, Distribution};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BootstrapOptions {
    pub replicates: usize,
    pub seed: u64,
    pub confidence: f64,
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        Self {
            replicates: 1000,
            seed: 1,
            confidence: 0.95,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BootstrapResult {
    /// Percentile interval.
    pub ci: [f64; 2],
    /// Standard deviation of the replicates.
    pub se: f64,
    pub replicates: usize,
    /// Replicates where the coefficient was undefined (left out of the interval).
    pub undefined_replicates: usize,
}

/// SplitMix64 finaliser: decorrelates (seed, replicate) into a stream seed.
fn mix(seed: u64, replicate: u64) -> u64 {
    let mut z = seed
        ^ replicate
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(0x632B_E59B_D9B4_E019);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Draw multinomial counts of `n` items over units whose shares are `weights / n`.
pub fn multinomial_draw(weights: &[f64], rng: &mut Xoshiro256PlusPlus) -> Vec<f64> {
    let total: f64 = weights.iter().sum();
    let mut remaining_items = total.round() as u64;
    let mut remaining_mass = total;
    let mut out = vec![0.0; weights.len()];
    for (slot, &w) in out.iter_mut().zip(weights) {
        if remaining_items == 0 {
            break;
        }
        if w <= 0.0 {
            continue;
        }
        let p = (w / remaining_mass).clamp(0.0, 1.0);
        let k = if p >= 1.0 {
            remaining_items
        } else {
            Binomial::new(remaining_items, p)
                .map(|b| b.sample(rng))
                .unwrap_or(0)
        };
        *slot = k as f64;
        remaining_items -= k;
        remaining_mass -= w;
    }
    out
}

/// Run the bootstrap. `statistic` maps unit multiplicities to the coefficient
/// (`None` = undefined). `progress` is called with the number of finished replicates.
pub fn bootstrap(
    weights: &[f64],
    options: &BootstrapOptions,
    statistic: impl Fn(&[f64]) -> Option<f64> + Sync,
    progress: &(dyn Fn(usize) + Sync),
) -> Option<BootstrapResult> {
    if options.replicates == 0 {
        return None;
    }
    let done = std::sync::atomic::AtomicUsize::new(0);
    let values: Vec<Option<f64>> = (0..options.replicates)
        .into_par_iter()
        .map(|b| {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(mix(options.seed, b as u64));
            let draw = multinomial_draw(weights, &mut rng);
            let value = statistic(&draw);
            let finished = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if finished % 16 == 0 || finished == options.replicates {
                progress(finished);
            }
            value
        })
        .collect();
    let mut defined: Vec<f64> = values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let undefined_replicates = options.replicates - defined.len();
    if defined.is_empty() {
        return None;
    }
    defined.sort_by(f64::total_cmp);
    let alpha = 1.0 - options.confidence;
    let ci = [
        quantile(&defined, alpha / 2.0),
        quantile(&defined, 1.0 - alpha / 2.0),
    ];
    let mean = defined.iter().sum::<f64>() / defined.len() as f64;
    let se = if defined.len() > 1 {
        (defined.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (defined.len() - 1) as f64)
            .sqrt()
    } else {
        0.0
    };
    Some(BootstrapResult {
        ci,
        se,
        replicates: options.replicates,
        undefined_replicates,
    })
}

/// Linear-interpolation quantile of sorted data (type 7).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multinomial_draws_preserve_the_number_of_items() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let draw = multinomial_draw(&[3.0, 0.0, 5.0, 2.0], &mut rng);
        assert_eq!(draw.iter().sum::<f64>(), 10.0);
        assert_eq!(draw[1], 0.0);
    }

    #[test]
    fn the_same_seed_gives_the_same_interval_on_one_or_two_threads() {
        let weights = vec![1.0; 200];
        let stat =
            |m: &[f64]| Some(m.iter().enumerate().map(|(i, x)| i as f64 * x).sum::<f64>() / 200.0);
        let options = BootstrapOptions {
            replicates: 200,
            seed: 42,
            confidence: 0.95,
        };
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let a = one.install(|| bootstrap(&weights, &options, stat, &|_| {}));
        let b = two.install(|| bootstrap(&weights, &options, stat, &|_| {}));
        assert_eq!(a, b);
        let r = a.unwrap();
        assert!(r.ci[0] < 99.5 && 99.5 < r.ci[1], "{r:?}");
    }
}
