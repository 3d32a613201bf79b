//! The logistic function and its logarithms for many arguments at once, without libm.
//!
//! GLAD evaluates σ(x), log σ(x) and log(1 − σ(x)) once per rating for every objective
//! evaluation of its optimiser: billions of calls at a million items, where libm's
//! scalar `exp` and `log` took half the time. Here both are polynomials on a reduced
//! argument, written branch-free so a loop over a slice compiles to vector code; on x86-64
//! CPUs with AVX2 and FMA that loop runs four lanes wide. Every path computes the same
//! operations (`mul_add` is a fused multiply–add everywhere), so results do not depend on
//! the CPU. Accuracy: within a few ulp of libm (see the tests).

/// Beyond this |x|, softplus(x) is taken as max(x, 0) (crowd-kit's cut-off).
pub const SOFTPLUS_CUTOFF: f64 = 30.0;

/// ln 2 split in two: the high part has 21 trailing zero bits, so n·LN2_HI is exact.
const LN2_HI: f64 = 0.693_147_180_369_123_8;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
const LOG2_E: f64 = std::f64::consts::LOG2_E;
/// 2^52 + 1023: adding it to a small integer-valued float puts the biased exponent in the
/// low mantissa bits.
const EXPONENT_BIAS_SHIFTER: f64 = 4_503_599_627_371_519.0;

/// The CPU can run the four-lane kernels (std caches the answer).
#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// The CPU can run the eight-lane kernels (twice the lanes and the registers, so the
/// polynomials' constants stay in registers).
#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f") && has_avx2_fma()
}

/// σ(x), 1 − σ(x) and their logarithms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Logistic {
    pub sig: f64,
    pub one_minus: f64,
    pub log_sig: f64,
    pub log_one_minus: f64,
}

/// e^−a for a ≥ 0.
#[inline(always)]
pub fn exp_neg(a: f64) -> f64 {
    exp(-a)
}

/// e^y, with y limited to [−708, 709] so the result is a normal, finite number (below,
/// the difference is under 10^−307; above, e^709 ≈ 8·10^307 stands in for overflow).
#[inline(always)]
pub fn exp(y: f64) -> f64 {
    let y = y.clamp(-708.0, 709.0);
    // y = n·ln 2 + r with |r| ≤ ln 2 / 2.
    let n = (y * LOG2_E).round_ties_even();
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, y));
    // e^r by its Taylor series to r^13 (the first omitted term is below 10^−17).
    let mut p: f64 = 1.0 / 6_227_020_800.0;
    for factorial in [
        479_001_600.0,
        39_916_800.0,
        3_628_800.0,
        362_880.0,
        40_320.0,
        5_040.0,
        720.0,
        120.0,
        24.0,
        6.0,
        2.0,
        1.0,
        1.0,
    ] {
        p = p.mul_add(r, 1.0 / factorial);
    }
    // 2^n, n in [−1022, 1023]: the biased exponent shifted into place.
    let scale = f64::from_bits((n + EXPONENT_BIAS_SHIFTER).to_bits() << 52);
    p * scale
}

/// ln(1 + e) for e in [0, 1], given u = 1 + e as rounded and its reciprocal.
#[inline(always)]
fn log1p_unit(e: f64, u: f64, inv_u: f64) -> f64 {
    // u = 2^k·m with m in (1/√2, √2], so f = m − 1 is exact.
    let halve = u > std::f64::consts::SQRT_2;
    let m = if halve { u * 0.5 } else { u };
    let k: f64 = if halve { 1.0 } else { 0.0 };
    let f = m - 1.0;
    // ln(1 + f) = 2·atanh(s) with s = f / (2 + f): f − f²/2 + s·(f²/2 + R), where
    // R = Σ_{j≥1} 2·s^{2j} / (2j + 1); s² ≤ 0.03, so eleven terms reach 10^−17.
    let s = f / (2.0 + f);
    let z = s * s;
    let mut series: f64 = 2.0 / 23.0;
    for odd in [21.0, 19.0, 17.0, 15.0, 13.0, 11.0, 9.0, 7.0, 5.0, 3.0] {
        series = series.mul_add(z, 2.0 / odd);
    }
    let r = series * z;
    let half_f2 = 0.5 * f * f;
    let ln_m = f - (half_f2 - s * (half_f2 + r));
    // Add k·ln 2, and correct for the rounding of u = 1 + e: ln(1 + e) ≈ ln u − (u − 1 − e)/u.
    k.mul_add(LN2_HI, k.mul_add(LN2_LO, ln_m)) - ((u - 1.0) - e) * inv_u
}

/// σ(x) and its logarithms, with softplus cut off beyond ±[`SOFTPLUS_CUTOFF`].
#[inline(always)]
pub fn logistic(x: f64) -> Logistic {
    let a = x.abs();
    let e = exp_neg(a);
    let u = 1.0 + e;
    let inv = 1.0 / u;
    let positive = x >= 0.0;
    let (sig, one_minus) = if positive {
        (inv, e * inv)
    } else {
        (e * inv, inv)
    };
    // softplus(±x) = max(±x, 0) + ln(1 + e^−|x|), the logarithm dropped beyond the cut-off.
    let l = if a <= SOFTPLUS_CUTOFF {
        log1p_unit(e, u, inv)
    } else {
        0.0
    };
    Logistic {
        sig,
        one_minus,
        log_sig: -((-x).max(0.0) + l),
        log_one_minus: -(x.max(0.0) + l),
    }
}

/// Where a chunk's ratings get their argument x = α[annotator]·e^β[item]: each rating's
/// annotator, and its item's place in `item_scale` (which holds e^β of the chunk's items).
#[derive(Clone, Copy)]
pub struct RatingArguments<'a> {
    pub alpha: &'a [f64],
    pub annotators: &'a [u32],
    pub item_scale: &'a [f64],
    pub items: &'a [u16],
}

impl<'a> RatingArguments<'a> {
    pub fn len(&self) -> usize {
        self.annotators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.annotators.is_empty()
    }

    /// The ratings a block at a time, with their α and e^β gathered.
    #[inline(always)]
    fn blocks(self) -> GatheredBlocks<'a> {
        GatheredBlocks {
            args: self,
            next: 0,
            alpha: [0.0; GATHER_BLOCK],
            scale: [0.0; GATHER_BLOCK],
        }
    }
}

/// Ratings per gathered block: small enough to stay in the first-level cache.
const GATHER_BLOCK: usize = 128;

/// Blocks of ratings with their α and e^β gathered into the first-level cache, so the
/// arithmetic after it runs in vector lanes. A lending iterator: each block's factors are
/// valid until the next call.
struct GatheredBlocks<'a> {
    args: RatingArguments<'a>,
    next: usize,
    alpha: [f64; GATHER_BLOCK],
    scale: [f64; GATHER_BLOCK],
}

impl GatheredBlocks<'_> {
    /// The next block's rows, and the α and e^β of each.
    #[inline(always)]
    fn next(&mut self) -> Option<(std::ops::Range<usize>, &[f64], &[f64])> {
        let args = &self.args;
        let start = self.next;
        if start >= args.len() {
            return None;
        }
        let end = args.len().min(start + GATHER_BLOCK);
        self.next = end;
        let rows = args.annotators[start..end]
            .iter()
            .zip(&args.items[start..end]);
        let factors = self.alpha.iter_mut().zip(self.scale.iter_mut());
        for ((a, s), (&annotator, &item)) in factors.zip(rows) {
            *a = args.alpha[annotator as usize];
            *s = args.item_scale[item as usize];
        }
        let m = end - start;
        Some((start..end, &self.alpha[..m], &self.scale[..m]))
    }
}

/// What the objective needs of each rating with posterior weights `[q_y, q_rest]` (the
/// mass on the given label and on all others): the expected log-likelihood term
/// `q_y·log σ + q_rest·(log(1 − σ) − log_km1)`, and its slope in x,
/// g = `q_y·(1 − σ) − q_rest·σ`, times e^β and times α (the chain rule's factors for β
/// and α).
pub struct RatingTerms<'a> {
    pub term: &'a mut [f64],
    pub slope_scale: &'a mut [f64],
    pub slope_alpha: &'a mut [f64],
}

/// [`RatingTerms`] of every rating in `args`.
pub fn rating_terms(
    args: RatingArguments<'_>,
    weights: &[[f64; 2]],
    log_km1: f64,
    out: RatingTerms<'_>,
) {
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: the CPU supports AVX-512F and FMA, checked just above.
        unsafe { rating_terms_avx512(args, weights, log_km1, out) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        unsafe { rating_terms_avx2_fma(args, weights, log_km1, out) };
        return;
    }
    rating_terms_portable(args, weights, log_km1, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn rating_terms_avx512(
    args: RatingArguments<'_>,
    weights: &[[f64; 2]],
    log_km1: f64,
    out: RatingTerms<'_>,
) {
    rating_terms_portable(args, weights, log_km1, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn rating_terms_avx2_fma(
    args: RatingArguments<'_>,
    weights: &[[f64; 2]],
    log_km1: f64,
    out: RatingTerms<'_>,
) {
    rating_terms_portable(args, weights, log_km1, out);
}

#[inline(always)]
fn rating_terms_portable(
    args: RatingArguments<'_>,
    weights: &[[f64; 2]],
    log_km1: f64,
    out: RatingTerms<'_>,
) {
    let mut blocks = args.blocks();
    while let Some((rows, alphas, scales)) = blocks.next() {
        let weights = &weights[rows.clone()];
        let (term, slope_scale, slope_alpha) = (
            &mut out.term[rows.clone()],
            &mut out.slope_scale[rows.clone()],
            &mut out.slope_alpha[rows],
        );
        for i in 0..alphas.len() {
            let (alpha, scale) = (alphas[i], scales[i]);
            let l = logistic(alpha * scale);
            let [q_y, q_rest] = weights[i];
            term[i] = q_y * l.log_sig + q_rest * (l.log_one_minus - log_km1);
            let g = q_y * l.one_minus - q_rest * l.sig;
            slope_scale[i] = g * scale;
            slope_alpha[i] = g * alpha;
        }
    }
}

/// out[i] = e^{y[i]} (see [`exp`]).
pub fn exp_all(y: &[f64], out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: the CPU supports AVX-512F and FMA, checked just above.
        unsafe { exp_all_avx512(y, out) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        unsafe { exp_all_avx2_fma(y, out) };
        return;
    }
    exp_all_portable(y, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn exp_all_avx512(y: &[f64], out: &mut [f64]) {
    exp_all_portable(y, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn exp_all_avx2_fma(y: &[f64], out: &mut [f64]) {
    exp_all_portable(y, out);
}

#[inline(always)]
fn exp_all_portable(y: &[f64], out: &mut [f64]) {
    for (out, &y) in out[..y.len()].iter_mut().zip(y) {
        *out = exp(y);
    }
}

/// log σ(x) and log(1 − σ(x)) of every rating in `args`.
pub fn log_sigmoids(args: RatingArguments<'_>, log_sig: &mut [f64], log_one_minus: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: the CPU supports AVX-512F and FMA, checked just above.
        unsafe { log_sigmoids_avx512(args, log_sig, log_one_minus) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        unsafe { log_sigmoids_avx2_fma(args, log_sig, log_one_minus) };
        return;
    }
    log_sigmoids_portable(args, log_sig, log_one_minus);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn log_sigmoids_avx512(args: RatingArguments<'_>, log_sig: &mut [f64], log_one_minus: &mut [f64]) {
    log_sigmoids_portable(args, log_sig, log_one_minus);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn log_sigmoids_avx2_fma(
    args: RatingArguments<'_>,
    log_sig: &mut [f64],
    log_one_minus: &mut [f64],
) {
    log_sigmoids_portable(args, log_sig, log_one_minus);
}

#[inline(always)]
fn log_sigmoids_portable(
    args: RatingArguments<'_>,
    log_sig: &mut [f64],
    log_one_minus: &mut [f64],
) {
    let mut blocks = args.blocks();
    while let Some((rows, alphas, scales)) = blocks.next() {
        let (log_sig, log_one_minus) = (&mut log_sig[rows.clone()], &mut log_one_minus[rows]);
        for i in 0..alphas.len() {
            let l = logistic(alphas[i] * scales[i]);
            log_sig[i] = l.log_sig;
            log_one_minus[i] = l.log_one_minus;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> f64 {
        if a == b {
            return 0.0;
        }
        (a - b).abs() / (f64::EPSILON * a.abs().max(b.abs()))
    }

    /// 200,001 points spread over [0, hi], plus the ends.
    fn grid(hi: f64) -> impl Iterator<Item = f64> {
        (0..=200_000).map(move |i| hi * (i as f64 / 200_000.0).powi(2))
    }

    #[test]
    fn exp_neg_is_within_two_ulp_of_libm() {
        for a in grid(708.0) {
            let (ours, libm) = (exp_neg(a), (-a).exp());
            assert!(ulps(ours, libm) <= 2.0, "e^-{a}: {ours} vs {libm}");
        }
        assert_eq!(exp_neg(0.0), 1.0);
        assert!(exp_neg(1e6) > 0.0 && exp_neg(1e6) < 1e-307);
    }

    #[test]
    fn exp_is_within_two_ulp_of_libm_on_both_sides() {
        for y in grid(708.0).flat_map(|a| [a, -a]).chain([709.0]) {
            let (ours, libm) = (exp(y), y.exp());
            assert!(ulps(ours, libm) <= 2.0, "e^{y}: {ours} vs {libm}");
        }
        let ys = [-3.5, 0.0, 0.25, 7.0, 1e-12];
        let mut out = [0.0; 5];
        exp_all(&ys, &mut out);
        for (y, e) in ys.iter().zip(out) {
            assert_eq!(e.to_bits(), exp(*y).to_bits());
        }
    }

    #[test]
    fn log1p_is_within_two_ulp_of_libm() {
        for e in grid(1.0) {
            let u = 1.0 + e;
            let (ours, libm) = (log1p_unit(e, u, 1.0 / u), e.ln_1p());
            assert!(ulps(ours, libm) <= 2.0, "ln(1+{e}): {ours} vs {libm}");
        }
    }

    #[test]
    fn logistic_matches_its_definition_on_both_sides_and_past_the_cut_off() {
        for x in [
            -800.0, -31.0, -30.0, -2.5, -1e-9, 0.0, 1e-9, 0.7, 12.0, 30.0, 45.0,
        ] {
            let l = logistic(x);
            let sig = 1.0 / (1.0 + (-x).exp());
            assert!((l.sig - sig).abs() <= 1e-15, "σ({x})");
            assert!(
                (l.sig + l.one_minus - 1.0).abs() <= 1e-15,
                "σ + (1 − σ) at {x}"
            );
            let softplus = |v: f64| {
                if v > SOFTPLUS_CUTOFF {
                    v
                } else if v < -SOFTPLUS_CUTOFF {
                    0.0
                } else {
                    v.max(0.0) + (-v.abs()).exp().ln_1p()
                }
            };
            assert!(ulps(l.log_sig, -softplus(-x)) <= 4.0 || l.log_sig == -softplus(-x));
            assert!(ulps(l.log_one_minus, -softplus(x)) <= 4.0);
        }
    }

    #[test]
    fn every_build_of_the_vector_kernels_agrees_with_the_scalar_path_bit_for_bit() {
        type Build = (
            &'static str,
            fn(RatingArguments<'_>, &[[f64; 2]], f64, RatingTerms<'_>),
        );
        let mut builds: Vec<Build> = vec![("portable", rating_terms_portable)];
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY (both): each build is listed only when the CPU runs it.
            if has_avx2_fma() {
                builds.push(("AVX2", |a, w, l, o| unsafe {
                    rating_terms_avx2_fma(a, w, l, o)
                }));
            }
            if has_avx512() {
                builds.push(("AVX-512", |a, w, l, o| unsafe {
                    rating_terms_avx512(a, w, l, o)
                }));
            }
        }
        // Arguments α·e^β from −60 to 60, past the softplus cut-off on both sides.
        let n = 1001;
        let alpha: Vec<f64> = (0..37).map(|a| (a as f64 - 18.0) * 0.29).collect();
        let betas: Vec<f64> = (0..64).map(|t| -3.0 + t as f64 * 0.11).collect();
        let mut item_scale = vec![0.0; betas.len()];
        exp_all(&betas, &mut item_scale);
        let annotators: Vec<u32> = (0..n).map(|i| (i * 7 % 37) as u32).collect();
        let items: Vec<u16> = (0..n).map(|i| (i / 16) as u16).collect();
        let args = RatingArguments {
            alpha: &alpha,
            annotators: &annotators,
            item_scale: &item_scale,
            items: &items,
        };
        let weights: Vec<[f64; 2]> = (0..n)
            .map(|i| {
                let q = (i % 17) as f64 / 16.0;
                [q, 1.0 - q]
            })
            .collect();
        let (mut log_sig, mut log_one_minus) = (vec![0.0; n], vec![0.0; n]);
        log_sigmoids(args, &mut log_sig, &mut log_one_minus);
        for (name, build) in builds {
            let (mut term, mut slope_scale, mut slope_alpha) =
                (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
            let out = RatingTerms {
                term: &mut term,
                slope_scale: &mut slope_scale,
                slope_alpha: &mut slope_alpha,
            };
            build(args, &weights, 2f64.ln(), out);
            for i in 0..n {
                let (a, scale) = (alpha[annotators[i] as usize], exp(betas[items[i] as usize]));
                assert_eq!(scale.to_bits(), item_scale[items[i] as usize].to_bits());
                let x = a * scale;
                let l = logistic(x);
                assert_eq!(log_sig[i].to_bits(), l.log_sig.to_bits());
                assert_eq!(log_one_minus[i].to_bits(), l.log_one_minus.to_bits());
                let [q_y, q_rest] = weights[i];
                let expected_term = q_y * l.log_sig + q_rest * (l.log_one_minus - 2f64.ln());
                assert_eq!(
                    term[i].to_bits(),
                    expected_term.to_bits(),
                    "{name}: term at {x}"
                );
                let g = q_y * l.one_minus - q_rest * l.sig;
                assert_eq!(
                    slope_scale[i].to_bits(),
                    (g * scale).to_bits(),
                    "{name}: slope·e^β at {x}"
                );
                assert_eq!(
                    slope_alpha[i].to_bits(),
                    (g * a).to_bits(),
                    "{name}: slope·α at {x}"
                );
            }
        }
    }
}
