//! MACE's restarts fitted side by side, one SIMD lane per restart.
//!
//! Every restart runs the same E-step over the same ratings; only the parameters differ.
//! Holding up to [`MAX_LANES`] restarts' parameters side by side per (annotator, class) cell
//! turns each rating's random table read into one contiguous read for all of them, and
//! every per-item step (products, class sums, prefix and suffix sums, divisions) into one
//! vector operation. Each lane performs exactly the operations of the one-restart pass
//! ([`super::ChunkPass::run`]) in the same order, and chunks are the same and summed in the
//! same order, so every restart's expected counts and likelihood are bit for bit the ones
//! it gets when fitted alone.

use std::ops::Range;

use rayon::prelude::*;

use super::RESCALE;
use super::{
    CellRecord, Expectation, Params, RunningLikelihood, counts_expectation, e_step_chunk_size,
};
use crate::buffers::prefetch_lines;
use crate::table::AnnotationTable;

/// The most restarts fitted side by side in one pass: one AVX-512 register of f64.
/// Sixteen lanes measured slower per restart than eight: their cell table and
/// accumulators no longer fit in the caches.
pub(super) const MAX_LANES: usize = 8;

/// A cell's parameters in every lane: b, g/b and the spam share of a [`CellRecord`]. Read
/// together.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct CellLanes<const L: usize> {
    b: [f64; L],
    ratio: [f64; L],
    spam_share: [f64; L],
}

/// What the passes of one group of restarts reuse from one E-step to the next, so that
/// their pages are faulted in once: the cell table, the total and the per-chunk sums.
pub(super) struct SideBySide<const L: usize> {
    cells: Vec<CellLanes<L>>,
    total: Vec<[f64; L]>,
    chunks: Vec<Vec<[f64; L]>>,
    build: Build,
}

impl<const L: usize> Default for SideBySide<L> {
    fn default() -> Self {
        Self::with_build(Build::best())
    }
}

/// Which compiled build of the pass runs. Every operation is an element-wise IEEE
/// operation (never fused), so every build gives the same bits; wider registers only take
/// fewer instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Build {
    /// The x86-64 baseline (SSE2: two lanes per instruction) or another architecture's.
    Baseline,
    /// Four lanes per instruction.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// Eight lanes per instruction.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Build {
    /// The widest build this CPU runs (std caches the detection).
    fn best() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Build::Avx512;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Build::Avx2;
        }
        Build::Baseline
    }

    /// Every build this CPU runs.
    #[cfg(test)]
    pub(super) fn available() -> Vec<Self> {
        let mut builds = vec![Build::Baseline];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                builds.push(Build::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                builds.push(Build::Avx512);
            }
        }
        builds
    }
}

/// `buffer` holding `len` zeros, its pages written before anything reads them.
fn zeroed<const L: usize>(buffer: &mut Vec<[f64; L]>, len: usize) {
    buffer.clear();
    buffer.resize(len, [0.0; L]);
}

impl<const L: usize> SideBySide<L> {
    /// Buffers for passes run by `build`, which the CPU must support ([`Build::best`] or
    /// one of [`Build::available`]).
    pub(super) fn with_build(build: Build) -> Self {
        Self {
            cells: Vec::new(),
            total: Vec::new(),
            chunks: Vec::new(),
            build,
        }
    }

    /// Fills the cell table from `params` (one per lane; lanes past `params.len()` repeat
    /// the last restart, and their results are dropped).
    fn fill_cells(&mut self, params: &[&Params], n_annotators: usize, k: usize) {
        let unset = CellLanes {
            b: [0.0; L],
            ratio: [0.0; L],
            spam_share: [0.0; L],
        };
        self.cells.clear();
        self.cells.resize(n_annotators * k, unset);
        let lane_params: [&Params; L] = std::array::from_fn(|l| params[l.min(params.len() - 1)]);
        for (index, cell) in self.cells.iter_mut().enumerate() {
            let w = index / k;
            for (lane, p) in lane_params.iter().enumerate() {
                let record = CellRecord::new(p.s[2 * w], p.s[2 * w + 1], p.theta[index]);
                cell.b[lane] = record.b;
                cell.ratio[lane] = record.ratio;
                cell.spam_share[lane] = record.spam_share;
            }
        }
    }

    /// One E-step (expected counts and likelihood) for each restart in `params` (at most
    /// `L`), in order.
    pub(super) fn e_step(
        &mut self,
        table: &AnnotationTable,
        k: usize,
        cells: &[u32],
        params: &[&Params],
    ) -> Vec<Expectation> {
        assert!((1..=L).contains(&params.len()), "1 to {L} restarts");
        let n_annotators = table.n_annotators();
        let n_cells = n_annotators * k;
        let width = n_cells + n_annotators;
        let n_items = table.n_items();
        let chunk_items = e_step_chunk_size(n_items, width);
        let n_chunks = n_items.div_ceil(chunk_items);
        self.fill_cells(params, n_annotators, k);
        let pass = LanePass {
            table,
            cells,
            lanes: &self.cells,
            k,
            n_cells,
            width,
            chunk_items,
            build: self.build,
        };
        let log_likelihood = pass.run_in_waves(n_chunks, &mut self.total, &mut self.chunks);
        (0..params.len())
            .map(|lane| {
                let sums = self.total.iter().map(|v| v[lane]).collect();
                counts_expectation(sums, k, n_annotators, log_likelihood[lane])
            })
            .collect()
    }
}

/// What every chunk of one side-by-side E-step shares.
struct LanePass<'a, const L: usize> {
    table: &'a AnnotationTable,
    cells: &'a [u32],
    lanes: &'a [CellLanes<L>],
    k: usize,
    n_cells: usize,
    /// Accumulator length: expected spam count per cell, then knowing count per annotator.
    width: usize,
    chunk_items: usize,
    build: Build,
}

/// Accumulator elements each thread adds up at a time when chunks are summed.
const SUM_BLOCK: usize = 4096;

impl<const L: usize> LanePass<'_, L> {
    /// All chunks, a few per thread at a time, each wave's sums added in chunk order into
    /// `total` (as the one-restart pass adds its partial sums) before the next starts.
    /// Returns each lane's log likelihood.
    fn run_in_waves(
        &self,
        n_chunks: usize,
        total: &mut Vec<[f64; L]>,
        buffers: &mut Vec<Vec<[f64; L]>>,
    ) -> [f64; L] {
        let wave = 2 * rayon::current_num_threads().max(1);
        buffers.resize_with(wave.min(n_chunks), Vec::new);
        zeroed(total, self.width);
        let mut log_likelihood = [0.0; L];
        for first in (0..n_chunks).step_by(wave) {
            let chunks = first..(first + wave).min(n_chunks);
            let partials = &mut buffers[..chunks.len()];
            let chunk_lls: Vec<[f64; L]> = partials
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
        log_likelihood
    }

    /// [`LanePass::run`] in the pass's build.
    fn run_dispatch(&self, chunk: usize, acc: &mut Vec<[f64; L]>) -> [f64; L] {
        match self.build {
            Build::Baseline => self.run(chunk, acc),
            // SAFETY: a build is chosen only among those the CPU supports.
            #[cfg(target_arch = "x86_64")]
            Build::Avx2 => unsafe { self.run_avx2(chunk, acc) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Build::Avx512 => unsafe { self.run_avx512(chunk, acc) },
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn run_avx2(&self, chunk: usize, acc: &mut Vec<[f64; L]>) -> [f64; L] {
        self.run(chunk, acc)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn run_avx512(&self, chunk: usize, acc: &mut Vec<[f64; L]>) -> [f64; L] {
        self.run(chunk, acc)
    }

    /// One chunk of items: each lane's log likelihood, and the accumulator in `acc`
    /// (resized and zeroed here). The steps mirror [`super::ChunkPass::run`] line by line.
    #[inline(always)]
    fn run(&self, chunk: usize, acc: &mut Vec<[f64; L]>) -> [f64; L] {
        let (table, lanes, k, n_cells) = (self.table, self.lanes, self.k, self.n_cells);
        zeroed(acc, self.width);
        let inv_k = 1.0 / k as f64;
        let mut r = vec![[1.0; L]; k];
        let mut one_minus_q = vec![[0.0; L]; k];
        let mut likelihood = RunningLikelihood::new();
        let n_items = table.n_items();
        let items = chunk * self.chunk_items..((chunk + 1) * self.chunk_items).min(n_items);
        let (_, row_annotators, _) = table.item_columns();
        for item in items {
            let rows = table.item_rows(item as u32);
            let ahead = rows.start + PREFETCH_ROWS..rows.end + PREFETCH_ROWS;
            self.prefetch_rows(ahead, acc, row_annotators);
            let item_cells = &self.cells[rows.clone()];
            let item_annotators = &row_annotators[rows];
            let class_of = |cell: u32, a: u32| (cell - a * k as u32) as usize;
            let mut base = [inv_k; L];
            let (mut rescaled_base, mut rescaled_r) = ([0i32; L], [0i32; L]);
            for row in r.iter_mut() {
                *row = [1.0; L];
            }
            for (&cell, &a) in item_cells.iter().zip(item_annotators) {
                let lane_cell = &lanes[cell as usize];
                mul_assign(&mut base, &lane_cell.b);
                let low = lanes_where(&base, |v| v < 1.0 / RESCALE);
                if low.iter().any(|&l| l) {
                    for l in 0..L {
                        if low[l] {
                            base[l] *= RESCALE;
                            rescaled_base[l] += 1;
                        }
                    }
                }
                let c = class_of(cell, a);
                let mut slot = r[c];
                for (v, ratio) in slot.iter_mut().zip(&lane_cell.ratio) {
                    *v *= 1.0 + ratio;
                }
                r[c] = slot;
                let high = lanes_where(&slot, |v| v > RESCALE);
                if high.iter().any(|&h| h) {
                    for row in r.iter_mut() {
                        for l in 0..L {
                            if high[l] {
                                row[l] /= RESCALE;
                            }
                        }
                    }
                    for l in 0..L {
                        rescaled_r[l] += i32::from(high[l]);
                    }
                }
            }
            let mut total = [0.0; L];
            for row in &r {
                add_assign(&mut total, row);
            }
            likelihood.add_item(&base, &total, &rescaled_base, &rescaled_r);
            // Σ_{j≠c} r_j from prefix and suffix sums (first the suffix after c, in place).
            let mut suffix = [0.0; L];
            for c in (0..k).rev() {
                one_minus_q[c] = suffix;
                add_assign(&mut suffix, &r[c]);
            }
            let mut prefix = [0.0; L];
            for c in 0..k {
                for l in 0..L {
                    one_minus_q[c][l] = (prefix[l] + one_minus_q[c][l]) / total[l];
                }
                add_assign(&mut prefix, &r[c]);
            }
            for (&cell, &a) in item_cells.iter().zip(item_annotators) {
                let c = class_of(cell, a);
                let lane_cell = &lanes[cell as usize];
                let mut spam = [0.0; L];
                let mut know = [0.0; L];
                for l in 0..L {
                    let qy = r[c][l] / total[l];
                    let spam_share = lane_cell.spam_share[l];
                    spam[l] = one_minus_q[c][l] + qy * spam_share;
                    know[l] = qy * (lane_cell.ratio[l] * spam_share);
                }
                add_assign(&mut acc[cell as usize], &spam);
                add_assign(&mut acc[n_cells + a as usize], &know);
            }
        }
        likelihood.finish()
    }

    /// Starts loading the cell table and accumulator lines of the ratings in `rows`:
    /// each rating's lines are a random pick from several megabytes, so waiting for them
    /// when they are needed would stall every rating.
    #[inline(always)]
    fn prefetch_rows(&self, rows: Range<usize>, acc: &[[f64; L]], row_annotators: &[u32]) {
        for row in rows.start..rows.end.min(self.cells.len()) {
            let cell = self.cells[row] as usize;
            let know = self.n_cells + row_annotators[row] as usize;
            if let (Some(lane_cell), Some(spam), Some(know)) =
                (self.lanes.get(cell), acc.get(cell), acc.get(know))
            {
                // A cell is aligned to a cache line; an accumulator row of eight lanes is
                // one line in the (line-aligned) large allocations it lives in, and a
                // narrower one is within one.
                prefetch_lines(lane_cell);
                prefetch_lines(spam);
                prefetch_lines(know);
            }
        }
    }
}

/// How many rows ahead of the current item the pass starts loading lines.
const PREFETCH_ROWS: usize = 24;

#[inline(always)]
fn add_assign<const L: usize>(sum: &mut [f64; L], x: &[f64; L]) {
    for (s, v) in sum.iter_mut().zip(x) {
        *s += v;
    }
}

#[inline(always)]
fn mul_assign<const L: usize>(product: &mut [f64; L], x: &[f64; L]) {
    for (p, v) in product.iter_mut().zip(x) {
        *p *= v;
    }
}

#[inline(always)]
fn lanes_where<const L: usize>(values: &[f64; L], test: impl Fn(f64) -> bool) -> [bool; L] {
    std::array::from_fn(|l| test(values[l]))
}
