//! MACE's restarts fitted side by side, one SIMD lane per restart.
//!
//! Every restart runs the same E-step over the same ratings; only the parameters differ.
//! Holding up to [`LANES`] restarts' parameters side by side per (annotator, class) cell
//! turns each rating's random table read into one contiguous read for all of them, and
//! every per-item step (products, class sums, prefix and suffix sums, divisions) into one
//! vector operation. Each lane performs exactly the operations of the one-restart pass
//! ([`super::ChunkPass::run`]) in the same order, and chunks are the same and summed in the
//! same order, so every restart's expected counts and likelihood are bit for bit the ones
//! it gets when fitted alone.

use rayon::prelude::*;

use super::{Expectation, Params, RESCALE, counts_expectation, fixed_chunk_size, split_exponent};
use crate::buffers::written_zeros;
use crate::table::AnnotationTable;

/// Restarts per side-by-side pass: one AVX-512 register of f64.
pub(super) const LANES: usize = 8;

/// One value per restart.
type Lanes = [f64; LANES];

/// A cell's parameters in every lane: b = S0·Θ[class] (floored at 1e-100) and g/b, as
/// [`super::cell_records`] computes them. Two cache lines, read together.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct CellLanes {
    b: Lanes,
    ratio: Lanes,
}

/// The per-cell table of `params` (one per lane; lanes past `params.len()` repeat the last
/// restart, and their results are dropped).
fn cell_lanes(params: &[&Params], n_annotators: usize, k: usize) -> Vec<CellLanes> {
    let mut table = vec![
        CellLanes {
            b: [0.0; LANES],
            ratio: [0.0; LANES],
        };
        n_annotators * k
    ];
    for lane in 0..LANES {
        let p = params[lane.min(params.len() - 1)];
        for w in 0..n_annotators {
            let (s0, s1) = (p.s[2 * w], p.s[2 * w + 1]);
            for c in 0..k {
                let cell = &mut table[w * k + c];
                let b = (s0 * p.theta[w * k + c]).max(1e-100);
                cell.b[lane] = b;
                cell.ratio[lane] = s1.max(0.0) / b;
            }
        }
    }
    table
}

/// Per-chunk accumulators, kept across E-steps so that their pages are faulted in once.
#[derive(Default)]
pub(super) struct WaveBuffers {
    chunks: Vec<Vec<Lanes>>,
}

/// One E-step (expected counts and likelihood) for each restart in `params` (at most
/// [`LANES`]), in order.
pub(super) fn e_step(
    table: &AnnotationTable,
    k: usize,
    cells: &[u32],
    params: &[&Params],
    buffers: &mut WaveBuffers,
) -> Vec<Expectation> {
    assert!((1..=LANES).contains(&params.len()), "1 to {LANES} restarts");
    let n_annotators = table.n_annotators();
    let n_cells = n_annotators * k;
    let width = n_cells + n_annotators;
    let n_items = table.n_items();
    let chunk_items = fixed_chunk_size(n_items, width);
    let n_chunks = n_items.div_ceil(chunk_items);
    let lanes = cell_lanes(params, n_annotators, k);
    let pass = LanePass {
        table,
        cells,
        lanes: &lanes,
        k,
        n_cells,
        width,
        chunk_items,
    };
    let (log_likelihood, acc) = pass.run_in_waves(n_chunks, buffers);
    (0..params.len())
        .map(|lane| {
            let sums = acc.iter().map(|v| v[lane]).collect();
            counts_expectation(sums, k, n_annotators, log_likelihood[lane])
        })
        .collect()
}

/// What every chunk of one side-by-side E-step shares.
struct LanePass<'a> {
    table: &'a AnnotationTable,
    cells: &'a [u32],
    lanes: &'a [CellLanes],
    k: usize,
    n_cells: usize,
    /// Accumulator length: expected spam count per cell, then knowing count per annotator.
    width: usize,
    chunk_items: usize,
}

/// Accumulator elements each thread adds up at a time when chunks are summed.
const SUM_BLOCK: usize = 4096;

impl LanePass<'_> {
    /// All chunks, a few per thread at a time, each wave's sums added in chunk order into
    /// the total (as the one-restart pass adds its partial sums) before the next starts.
    fn run_in_waves(&self, n_chunks: usize, buffers: &mut WaveBuffers) -> (Lanes, Vec<Lanes>) {
        let wave = 2 * rayon::current_num_threads().max(1);
        buffers.chunks.resize_with(wave.min(n_chunks), Vec::new);
        let mut total: Vec<Lanes> = written_zeros(self.width);
        let mut log_likelihood = [0.0; LANES];
        for first in (0..n_chunks).step_by(wave) {
            let chunks = first..(first + wave).min(n_chunks);
            let partials = &mut buffers.chunks[..chunks.len()];
            let chunk_lls: Vec<Lanes> = partials
                .par_iter_mut()
                .zip(chunks.into_par_iter())
                .map(|(acc, chunk)| self.run_dispatch(chunk, acc))
                .collect();
            for chunk_ll in &chunk_lls {
                add_assign(&mut log_likelihood, chunk_ll);
            }
            let partials = &*partials;
            total
                .par_chunks_mut(SUM_BLOCK)
                .enumerate()
                .for_each(|(block, sums)| {
                    let start = block * SUM_BLOCK;
                    for partial in partials {
                        for (sum, part) in sums.iter_mut().zip(&partial[start..]) {
                            add_assign(sum, part);
                        }
                    }
                });
        }
        (log_likelihood, total)
    }

    /// [`LanePass::run`], built for AVX-512F when the CPU has it. Every operation is an
    /// element-wise IEEE operation, so every build gives the same bits.
    fn run_dispatch(&self, chunk: usize, acc: &mut Vec<Lanes>) -> Lanes {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { self.run_avx512(chunk, acc) };
        }
        self.run(chunk, acc)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn run_avx512(&self, chunk: usize, acc: &mut Vec<Lanes>) -> Lanes {
        self.run(chunk, acc)
    }

    /// One chunk of items: each lane's log likelihood, and the accumulator in `acc`
    /// (resized and zeroed here). The steps mirror [`super::ChunkPass::run`] line by line.
    #[inline(always)]
    fn run(&self, chunk: usize, acc: &mut Vec<Lanes>) -> Lanes {
        let (table, lanes, k, n_cells) = (self.table, self.lanes, self.k, self.n_cells);
        if acc.len() == self.width {
            acc.fill([0.0; LANES]);
        } else {
            *acc = written_zeros(self.width);
        }
        let inv_k = 1.0 / k as f64;
        let mut r = vec![[0.0; LANES]; k];
        let mut one_minus_q = vec![[0.0; LANES]; k];
        let mut likelihood = RunningLikelihood::new();
        let n_items = table.n_items();
        let items = chunk * self.chunk_items..((chunk + 1) * self.chunk_items).min(n_items);
        for item in items {
            let rows = table.item_rows(item as u32);
            let item_cells = &self.cells[rows];
            let item_annotators = table.item_annotators(item as u32);
            let class_of = |cell: u32, a: u32| (cell - a * k as u32) as usize;
            let mut base = [inv_k; LANES];
            let (mut rescaled_base, mut rescaled_r) = ([0i32; LANES], [0i32; LANES]);
            r.fill([1.0; LANES]);
            for (&cell, &a) in item_cells.iter().zip(item_annotators) {
                let lane_cell = &lanes[cell as usize];
                mul_assign(&mut base, &lane_cell.b);
                let low = lanes_where(&base, |v| v < 1.0 / RESCALE);
                if low.iter().any(|&l| l) {
                    for l in 0..LANES {
                        if low[l] {
                            base[l] *= RESCALE;
                            rescaled_base[l] += 1;
                        }
                    }
                }
                let slot = &mut r[class_of(cell, a)];
                for (v, ratio) in slot.iter_mut().zip(&lane_cell.ratio) {
                    *v *= 1.0 + ratio;
                }
                let high = lanes_where(slot, |v| v > RESCALE);
                if high.iter().any(|&h| h) {
                    for row in r.iter_mut() {
                        for l in 0..LANES {
                            if high[l] {
                                row[l] /= RESCALE;
                            }
                        }
                    }
                    for l in 0..LANES {
                        rescaled_r[l] += i32::from(high[l]);
                    }
                }
            }
            let mut total = [0.0; LANES];
            for row in &r {
                add_assign(&mut total, row);
            }
            likelihood.add_item(&base, &total, &rescaled_base, &rescaled_r);
            // Σ_{j≠c} r_j from prefix and suffix sums (first the suffix after c, in place).
            let mut suffix = [0.0; LANES];
            for c in (0..k).rev() {
                one_minus_q[c] = suffix;
                add_assign(&mut suffix, &r[c]);
            }
            let mut prefix = [0.0; LANES];
            for c in 0..k {
                for l in 0..LANES {
                    one_minus_q[c][l] = (prefix[l] + one_minus_q[c][l]) / total[l];
                }
                add_assign(&mut prefix, &r[c]);
            }
            for (&cell, &a) in item_cells.iter().zip(item_annotators) {
                let c = class_of(cell, a);
                let ratio = &lanes[cell as usize].ratio;
                let mut qy = [0.0; LANES];
                let mut spam = [0.0; LANES];
                let mut know = [0.0; LANES];
                for l in 0..LANES {
                    qy[l] = r[c][l] / total[l];
                    let spam_share = 1.0 / (1.0 + ratio[l]);
                    spam[l] = one_minus_q[c][l] + qy[l] * spam_share;
                    know[l] = qy[l] * (ratio[l] * spam_share);
                }
                add_assign(&mut acc[cell as usize], &spam);
                add_assign(&mut acc[n_cells + a as usize], &know);
            }
        }
        likelihood.finish()
    }
}

/// Σ ln(Z + 1e-8) per lane, as [`super::ChunkPass::run`] keeps it: the log of a running
/// product (mantissa, binary exponent), plus the terms of items whose products needed
/// rescaling.
struct RunningLikelihood {
    product: Lanes,
    exponent: [i64; LANES],
    rescaled: Lanes,
}

impl RunningLikelihood {
    fn new() -> Self {
        Self {
            product: [1.0; LANES],
            exponent: [0; LANES],
            rescaled: [0.0; LANES],
        }
    }

    #[inline(always)]
    fn add_item(
        &mut self,
        base: &Lanes,
        total: &Lanes,
        rescaled_base: &[i32; LANES],
        rescaled_r: &[i32; LANES],
    ) {
        let plain = (0..LANES).all(|l| rescaled_base[l] == 0 && rescaled_r[l] == 0);
        if plain {
            for l in 0..LANES {
                self.product[l] *= base[l] * total[l] + 1e-8;
            }
        } else {
            for l in 0..LANES {
                if rescaled_base[l] == 0 && rescaled_r[l] == 0 {
                    self.product[l] *= base[l] * total[l] + 1e-8;
                } else {
                    let log_z = base[l].ln()
                        + total[l].ln()
                        + f64::from(rescaled_r[l] - rescaled_base[l]) * RESCALE.ln();
                    self.rescaled[l] += rescaled_term(log_z);
                }
            }
        }
        let small = lanes_where(&self.product, |v| v < 1e-150);
        if small.iter().any(|&s| s) {
            for l in 0..LANES {
                if small[l] {
                    let (mantissa, e) = split_exponent(self.product[l]);
                    self.product[l] = mantissa;
                    self.exponent[l] += e;
                }
            }
        }
    }

    fn finish(&self) -> Lanes {
        std::array::from_fn(|l| {
            self.product[l].ln()
                + self.exponent[l] as f64 * std::f64::consts::LN_2
                + self.rescaled[l]
        })
    }
}

/// ln(exp(log_z) + 1e-8) without overflow, as the one-restart pass takes it.
fn rescaled_term(log_z: f64) -> f64 {
    let ln_eps = 1e-8f64.ln();
    if log_z > ln_eps {
        log_z + (ln_eps - log_z).exp().ln_1p()
    } else {
        ln_eps + (log_z - ln_eps).exp().ln_1p()
    }
}

#[inline(always)]
fn add_assign(sum: &mut Lanes, x: &Lanes) {
    for (s, v) in sum.iter_mut().zip(x) {
        *s += v;
    }
}

#[inline(always)]
fn mul_assign(product: &mut Lanes, x: &Lanes) {
    for (p, v) in product.iter_mut().zip(x) {
        *p *= v;
    }
}

#[inline(always)]
fn lanes_where(values: &Lanes, test: impl Fn(f64) -> bool) -> [bool; LANES] {
    std::array::from_fn(|l| test(values[l]))
}
