//! Dawid & Skene (1979): EM over class priors and a full confusion matrix per annotator;
//! the one-coin variant with a single accuracy per annotator.
//!
//! Semantics follow crowd-kit 1.4 so results are comparable: initialisation from
//! majority-vote shares, probabilities floored at 1e-10, the objective (ELBO per
//! annotation) and its stopping rule (stop when it improves by less than `tol`).
//! Every sum runs in a fixed order, so the result does not depend on thread count and a
//! fixed point is reached bit for bit.

use rayon::prelude::*;

use super::majority::vote_shares;
use super::{AggregateError, AggregateOptions, Aggregation, Confusion, Method, Posteriors};
use crate::buffers::{Scratch, prefetch, with_scratch, written_zeros};
use crate::table::AnnotationTable;

const EPS: f64 = 1e-10;
/// Products of probabilities are scaled up by this when they approach underflow.
const RESCALE: f64 = 1e200;

/// Error matrices in the layout the EM loop uses: `e[(a * k + observed) * k + truth]`.
struct Errors {
    k: usize,
    e: Vec<f64>,
    /// (annotator, observed) pairs present in the data.
    observed: Vec<bool>,
}

/// Per rating in item order, its (annotator, observed) row of the tables:
/// `annotator · k + observed`. A pass reads one u32 per rating rather than two.
fn rating_cells(table: &AnnotationTable) -> Result<Vec<u32>, AggregateError> {
    let k = table.n_values();
    let rows = table.n_annotators().checked_mul(k);
    if rows.is_none_or(|rows| rows > u32::MAX as usize) {
        return Err(AggregateError::Invalid(
            "too many annotator–label pairs for Dawid–Skene's tables".into(),
        ));
    }
    let (_, annotators, values) = table.item_columns();
    Ok(annotators
        .par_iter()
        .zip(values)
        .map(|(&annotator, &value)| annotator * k as u32 + value)
        .collect())
}

fn observed_pairs(table: &AnnotationTable) -> Vec<bool> {
    let k = table.n_values();
    let mut observed = vec![false; table.n_annotators() * k];
    let (_, annotators, values) = table.item_columns();
    for (&annotator, &value) in annotators.iter().zip(values) {
        observed[annotator as usize * k + value as usize] = true;
    }
    observed
}

/// Items are processed in this many fixed ranges, each with its own count table, summed in
/// range order: results do not depend on the number of threads.
fn n_ranges(n_items: usize, table_len: usize) -> usize {
    // Keep the per-range count tables within 16 MiB together: the pass adds to them at
    // random, and with the error table they should stay in the last-level cache (at
    // 128 MiB, eight 4 MiB tables evicted each other and the error table).
    let by_memory = (16usize << 20) / (table_len.max(1) * 8);
    by_memory.clamp(1, 8).min(n_items.max(1))
}

/// Full-confusion M-step from soft counts n[a][observed][truth]: floor observed rows at
/// EPS (after smoothing) and normalise over the labels the annotator used.
fn m_step_full(mut e: Vec<f64>, k: usize, observed: &[bool], smoothing: f64) -> Errors {
    e.par_chunks_mut((k * k).max(1))
        .enumerate()
        .for_each(|(a, block)| {
            let used = &observed[a * k..(a + 1) * k];
            for y in 0..k {
                if used[y] {
                    for v in &mut block[y * k..(y + 1) * k] {
                        *v = (*v + smoothing).max(EPS);
                    }
                } else {
                    block[y * k..(y + 1) * k].iter_mut().for_each(|v| *v = 0.0);
                }
            }
            for c in 0..k {
                let total: f64 = (0..k).filter(|&y| used[y]).map(|y| block[y * k + c]).sum();
                if total > 0.0 {
                    for y in (0..k).filter(|&y| used[y]) {
                        block[y * k + c] /= total;
                    }
                }
            }
        });
    Errors {
        k,
        e,
        observed: observed.to_vec(),
    }
}

/// One-coin M-step from the same soft counts: skill = mean posterior of the given label
/// over the annotator's ratings (Σ_y n[a][y][y] / ratings); errors spread evenly over the
/// other labels; clipped to [EPS, 1 − EPS].
fn m_step_one_coin(
    ratings_per_annotator: &[u32],
    counts: &[f64],
    k: usize,
    observed: &[bool],
    skills: &mut [f64],
) -> Errors {
    skills.par_iter_mut().enumerate().for_each(|(a, skill)| {
        let ratings = ratings_per_annotator[a];
        let agreeing: f64 = (0..k).map(|y| counts[(a * k + y) * k + y]).sum();
        *skill = if ratings == 0 {
            0.0
        } else {
            agreeing / ratings as f64
        };
    });
    let mut e = vec![0.0; ratings_per_annotator.len() * k * k];
    e.par_chunks_mut((k * k).max(1))
        .enumerate()
        .for_each(|(a, block)| {
            let s = skills[a];
            let off = if k > 1 {
                (1.0 - s) / (k - 1) as f64
            } else {
                0.0
            };
            for y in 0..k {
                if !observed[a * k + y] {
                    continue;
                }
                for c in 0..k {
                    block[y * k + c] = (if c == y { s } else { off }).clamp(EPS, 1.0 - EPS);
                }
            }
        });
    Errors {
        k,
        e,
        observed: observed.to_vec(),
    }
}

/// ln e into `out` (a buffer reused across iterations: a fresh table per iteration cost a
/// page fault per 4 KiB).
fn log_errors(errors: &Errors, out: &mut Vec<f64>) {
    out.resize(errors.e.len(), 0.0);
    out.par_iter_mut()
        .zip(errors.e.par_iter())
        .with_min_len(4096)
        .for_each(|(log, v)| *log = if *v > 0.0 { v.ln() } else { f64::NEG_INFINITY });
}

/// What one pass over the items accumulates.
struct PassTotals {
    /// Soft counts n[a][observed][truth] of the posteriors.
    counts: Vec<f64>,
    /// Σ_items q (for the priors).
    prior_sums: Vec<f64>,
    /// Σ_items r_item · q (ratings-weighted, for the prior term of the objective).
    rated_sums: Vec<f64>,
    /// Π Z over E-step items that were not clamped, kept as mantissa × 2^exponent so that
    /// no logarithm is taken per item.
    product_z: LogProduct,
    /// Rescalings applied against underflow (each divides Z by RESCALE).
    rescales: f64,
    /// Posterior entries below EPS among those items (floored in the objective).
    tiny_entries: f64,
    /// Clamped items: count, Σ ln p(answer), Σ_ratings ln e(answer).
    clamped: f64,
    clamped_log_p: f64,
    clamped_log_e: f64,
}

impl PassTotals {
    fn new(table_len: usize, k: usize) -> Self {
        Self {
            counts: written_zeros(table_len),
            prior_sums: vec![0.0; k],
            rated_sums: vec![0.0; k],
            product_z: LogProduct::default(),
            tiny_entries: 0.0,
            rescales: 0.0,
            clamped: 0.0,
            clamped_log_p: 0.0,
            clamped_log_e: 0.0,
        }
    }
    /// Add the sums of `other` in, all but the count table (see [`add_count_tables`]).
    fn add_sums(&mut self, other: &PassTotals) {
        for (a, b) in self.prior_sums.iter_mut().zip(&other.prior_sums) {
            *a += b;
        }
        for (a, b) in self.rated_sums.iter_mut().zip(&other.rated_sums) {
            *a += b;
        }
        self.product_z.merge(&other.product_z);
        self.tiny_entries += other.tiny_entries;
        self.rescales += other.rescales;
        self.clamped += other.clamped;
        self.clamped_log_p += other.clamped_log_p;
        self.clamped_log_e += other.clamped_log_e;
    }
}

/// `first[i] += rest[0][i] + … ` in that order for every entry (the same bits as adding the
/// tables one after another), in one pass over cache-sized blocks of all tables.
fn add_count_tables(first: &mut [f64], rest: &[PassTotals]) {
    const BLOCK: usize = 4096;
    first
        .par_chunks_mut(BLOCK)
        .enumerate()
        .for_each(|(block, out)| {
            let range = block * BLOCK..block * BLOCK + out.len();
            for part in rest {
                for (o, v) in out.iter_mut().zip(&part.counts[range.clone()]) {
                    *o += v;
                }
            }
        });
}

/// A product of positive numbers as mantissa × 2^exponent (its logarithm on demand).
#[derive(Clone, Copy, Debug)]
struct LogProduct {
    mantissa: f64,
    exponent: i64,
    /// ln of factors that are not normal numbers (taken directly).
    extra_log: f64,
}

impl Default for LogProduct {
    fn default() -> Self {
        Self {
            mantissa: 1.0,
            exponent: 0,
            extra_log: 0.0,
        }
    }
}

impl LogProduct {
    fn split(x: f64) -> Option<(f64, i64)> {
        let bits = x.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as i64;
        if x <= 0.0 || biased == 0 || biased == 0x7ff {
            return None;
        }
        Some((
            f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000),
            biased - 1023,
        ))
    }
    #[inline]
    fn push(&mut self, x: f64) {
        match Self::split(x) {
            Some((m, e)) => {
                self.mantissa *= m;
                self.exponent += e;
                if self.mantissa > 1e250 {
                    self.renormalise();
                }
            }
            None => self.extra_log += x.ln(),
        }
    }
    fn renormalise(&mut self) {
        if let Some((m, e)) = Self::split(self.mantissa) {
            self.mantissa = m;
            self.exponent += e;
        }
    }
    fn merge(&mut self, other: &LogProduct) {
        self.push(other.mantissa);
        self.exponent += other.exponent;
        self.extra_log += other.extra_log;
    }
    fn ln(&self) -> f64 {
        self.mantissa.ln() + self.exponent as f64 * std::f64::consts::LN_2 + self.extra_log
    }
}

/// How a pass obtains each item's posterior.
#[derive(Clone, Copy)]
enum Posterior<'a> {
    /// E-step: q ∝ p Π e, with known answers clamped. The posteriors are written to the
    /// rows only with `write_rows`: the counts are accumulated in the same pass, so only
    /// the last E-step's rows are ever read, and not writing the others spares a stream of
    /// n_items · k values per iteration through the cache the tables live in.
    EStep {
        known: Option<&'a [Option<u32>]>,
        write_rows: bool,
    },
    /// Use the rows as they are (the initialisation from vote shares).
    Given,
}

/// One pass over items: the E-step (q ∝ p Π e, in probability space with rescaling
/// against underflow) and the sums the M-step and the objective need. The objective's
/// entropy and log-joint terms are recovered from these sums in O(annotators · k²), so the
/// pass needs no logarithm per class and touches each rating's error row once.
/// `spare` holds count tables of earlier passes, reused rather than allocated again.
fn fused_pass(
    table: &AnnotationTable,
    cells: &[u32],
    priors: &[f64],
    errors: &Errors,
    q: &mut [f64],
    posterior: Posterior,
    spare: &mut Vec<Vec<f64>>,
) -> PassTotals {
    // A compile-time class count lets the per-class loops unroll and vectorise.
    with_scratch!(errors.k, S => fused_pass_k::<S>(table, cells, priors, errors, q, posterior, spare))
}

/// How many items ahead rows are prefetched.
const PREFETCH_AHEAD: usize = 6;

/// `fused_pass` with scratch rows `S`.
fn fused_pass_k<S: Scratch>(
    table: &AnnotationTable,
    cells: &[u32],
    priors: &[f64],
    errors: &Errors,
    q: &mut [f64],
    posterior: Posterior,
    spare: &mut Vec<Vec<f64>>,
) -> PassTotals {
    let k = S::width(errors.k);
    let n_items = table.n_items();
    let table_len = table.n_annotators() * k * k;
    let p: Vec<f64> = priors.iter().map(|p| p.max(EPS)).collect();
    let ranges = n_ranges(n_items, table_len);
    let per_range = n_items.div_ceil(ranges);
    let pass = RangePass {
        table,
        cells,
        p: &p,
        errors,
        posterior,
        k,
        table_len,
        // Tables that fit in the L2 cache gain nothing from prefetching.
        prefetching: table_len * 8 > (1 << 20),
    };
    let tables: Vec<Vec<f64>> = (0..ranges)
        .map(|_| spare.pop().unwrap_or_default())
        .collect();
    let partials: Vec<PassTotals> = q
        .par_chunks_mut((per_range * k).max(1))
        .zip(tables)
        .enumerate()
        .map(|(range, (rows, counts))| pass.run_dispatch::<S>(range * per_range, rows, counts))
        .collect();
    // Combine ranges in order.
    let mut parts = partials.into_iter();
    let mut totals = parts
        .next()
        .unwrap_or_else(|| PassTotals::new(table_len, k));
    let rest: Vec<PassTotals> = parts.collect();
    add_count_tables(&mut totals.counts, &rest);
    for part in rest {
        totals.add_sums(&part);
        spare.push(part.counts);
    }
    totals
}

/// What every range of one pass shares.
struct RangePass<'a> {
    table: &'a AnnotationTable,
    /// [`rating_cells`] of the table.
    cells: &'a [u32],
    /// Priors floored at EPS.
    p: &'a [f64],
    errors: &'a Errors,
    posterior: Posterior<'a>,
    k: usize,
    table_len: usize,
    prefetching: bool,
}

/// The CPU can run the four-lane build of the pass (std caches the answer).
#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// The CPU can run the eight-lane build of the pass.
#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

impl RangePass<'_> {
    /// [`RangePass::run`], eight lanes wide on CPUs with AVX-512F, four with AVX2 (the
    /// x86-64 baseline is SSE2, two lanes). Every operation is an element-wise IEEE multiply
    /// or add in the same order, so every build gives the same bits.
    fn run_dispatch<S: Scratch>(
        &self,
        first: usize,
        rows: &mut [f64],
        counts: Vec<f64>,
    ) -> PassTotals {
        #[cfg(target_arch = "x86_64")]
        if has_avx512() {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { self.run_avx512::<S>(first, rows, counts) };
        }
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { self.run_avx2::<S>(first, rows, counts) };
        }
        self.run::<S>(first, rows, counts)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn run_avx512<S: Scratch>(
        &self,
        first: usize,
        rows: &mut [f64],
        counts: Vec<f64>,
    ) -> PassTotals {
        self.run::<S>(first, rows, counts)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn run_avx2<S: Scratch>(&self, first: usize, rows: &mut [f64], counts: Vec<f64>) -> PassTotals {
        self.run::<S>(first, rows, counts)
    }

    /// The pass over the items from `first` whose posterior rows are `rows`, with its own
    /// count table. Running sums live in `S` scratch rows and locals rather than in
    /// `PassTotals`, so that writes to the count table cannot force them through memory.
    /// `counts` is a table to reuse (any length; resized and zeroed here).
    #[inline(always)]
    fn run<S: Scratch>(&self, first: usize, rows: &mut [f64], mut counts: Vec<f64>) -> PassTotals {
        let k = S::width(self.k);
        let (offsets, _, _) = self.table.item_columns();
        let cells = self.cells;
        let e_all = self.errors.e.as_slice();
        if counts.len() == self.table_len {
            counts.fill(0.0);
        } else {
            counts = written_zeros(self.table_len);
        }
        let (mut posterior, mut prior_sums, mut rated_sums) =
            (S::zeroed(k), S::zeroed(k), S::zeroed(k));
        let (mut product_z, mut rescales, mut tiny_entries) = (LogProduct::default(), 0.0, 0.0);
        let (mut clamped, mut clamped_log_p, mut clamped_log_e) = (0.0, 0.0, 0.0);
        let n = rows.len() / k.max(1);
        let cell = |row: usize| cells[row] as usize * k;
        for (offset, row) in rows.chunks_exact_mut(k.max(1)).enumerate() {
            let item = first + offset;
            let ahead = offset + PREFETCH_AHEAD;
            if self.prefetching && ahead < n {
                let item_ahead = first + ahead;
                for r in offsets[item_ahead] as usize..offsets[item_ahead + 1] as usize {
                    let base = cell(r);
                    if let Posterior::EStep { .. } = self.posterior {
                        prefetch(e_all, base);
                        prefetch(e_all, base + k - 1);
                    }
                    prefetch(&counts, base);
                    prefetch(&counts, base + k - 1);
                }
            }
            let ratings = offsets[item] as usize..offsets[item + 1] as usize;
            let r = ratings.len() as f64;
            // For `[f64; K]` scratch the compiler keeps q in vector registers, provided every
            // access has a constant index after unrolling; spilled, each item paid for
            // store-forwarding stalls between the row copy and the per-class loads.
            let q = posterior.values();
            match self.posterior {
                Posterior::EStep { known, write_rows } => {
                    q.copy_from_slice(self.p);
                    let mut item_rescales = 0.0;
                    // Error entries are ≥ ~1e-17, so checking after every fourth rating
                    // keeps products far from underflow.
                    let mut rating = ratings.start;
                    while rating < ratings.end {
                        let group_end = (rating + 4).min(ratings.end);
                        for rating in rating..group_end {
                            for (v, e) in q.iter_mut().zip(&e_all[cell(rating)..][..k]) {
                                *v *= e;
                            }
                        }
                        if group_end - rating == 4 && q.iter().all(|v| *v < 1.0 / RESCALE) {
                            q.iter_mut().for_each(|v| *v *= RESCALE);
                            item_rescales += 1.0;
                        }
                        rating = group_end;
                    }
                    let total: f64 = q.iter().sum();
                    let inverse = 1.0 / total;
                    for v in q.iter_mut() {
                        *v *= inverse;
                    }
                    match known.and_then(|known| known[item]) {
                        Some(answer) => {
                            // Every index constant once the class loop is unrolled: a
                            // run-time index into q would keep it in memory (see above).
                            for (class, v) in q.iter_mut().enumerate() {
                                *v = if class == answer as usize { 1.0 } else { 0.0 };
                            }
                            clamped += 1.0;
                            clamped_log_p += self.p[answer as usize].ln();
                            for rating in ratings.clone() {
                                clamped_log_e += e_all[cell(rating) + answer as usize].ln();
                            }
                        }
                        None => {
                            product_z.push(total);
                            rescales += item_rescales;
                            tiny_entries += q.iter().filter(|v| **v < EPS).count() as f64;
                        }
                    }
                    if write_rows {
                        row.copy_from_slice(q);
                    }
                }
                Posterior::Given => q.copy_from_slice(row),
            }
            let q: &[f64] = q;
            for ((prior_sum, rated_sum), v) in prior_sums
                .values()
                .iter_mut()
                .zip(rated_sums.values().iter_mut())
                .zip(q)
            {
                *prior_sum += v;
                *rated_sum += r * v;
            }
            for rating in ratings {
                for (count, v) in counts[cell(rating)..][..k].iter_mut().zip(q) {
                    *count += v;
                }
            }
        }
        PassTotals {
            counts,
            prior_sums: prior_sums.values().to_vec(),
            rated_sums: rated_sums.values().to_vec(),
            product_z,
            rescales,
            tiny_entries,
            clamped,
            clamped_log_p,
            clamped_log_e,
        }
    }
}

/// Σ counts · ln e over observed rows (entries with e = 0 carry no count).
fn counts_dot_log(counts: &[f64], log_e: &[f64]) -> f64 {
    counts
        .par_chunks(4096)
        .zip(log_e.par_chunks(4096))
        .map(|(c, l)| {
            c.iter()
                .zip(l)
                .filter(|(c, _)| **c != 0.0)
                .map(|(c, l)| c * l)
                .sum::<f64>()
        })
        .collect::<Vec<f64>>()
        .iter()
        .sum()
}

/// Entropy term Σ −q̃ ln q̃ of the E-step posteriors, from the pass sums:
/// ln q = ln p + Σ_ratings ln e − ln Z for items not clamped; clamped items are one-hot.
fn entropy_from_totals(totals: &PassTotals, priors: &[f64], log_e: &[f64], k: usize) -> f64 {
    let eps_term = -EPS * EPS.ln();
    let log_p_term: f64 = totals
        .prior_sums
        .iter()
        .zip(priors)
        .map(|(s, p)| s * p.max(EPS).ln())
        .sum::<f64>()
        - totals.clamped_log_p;
    let log_e_term = counts_dot_log(&totals.counts, log_e) - totals.clamped_log_e;
    let sum_log_z = totals.product_z.ln() - totals.rescales * RESCALE.ln();
    -(log_p_term + log_e_term - sum_log_z)
        + totals.tiny_entries * eps_term
        + totals.clamped * (k.saturating_sub(1)) as f64 * eps_term
}

/// Σ_ratings Σ_c q (ln e + ln p) from the pass sums and the new parameters.
fn joint_from_totals(totals: &PassTotals, priors: &[f64], log_e: &[f64]) -> f64 {
    let log_p_term: f64 = totals
        .rated_sums
        .iter()
        .zip(priors)
        .map(|(s, p)| s * p.max(EPS).ln())
        .sum();
    counts_dot_log(&totals.counts, log_e) + log_p_term
}

fn clamp_known(q: &mut [f64], k: usize, known: &[Option<u32>]) {
    for (item, answer) in known.iter().enumerate() {
        if let Some(value) = answer {
            let row = &mut q[item * k..(item + 1) * k];
            row.iter_mut().for_each(|v| *v = 0.0);
            row[*value as usize] = 1.0;
        }
    }
}

enum Variant {
    Full,
    OneCoin,
}

fn run(
    table: &AnnotationTable,
    options: &AggregateOptions,
    variant: Variant,
    progress: &(dyn Fn(usize, f64) + Sync),
) -> Result<Aggregation, AggregateError> {
    let method = match variant {
        Variant::Full => Method::DawidSkene,
        Variant::OneCoin => Method::OneCoinDawidSkene,
    };
    let k = table.n_values();
    let n_items = table.n_items();
    if k == 0 || n_items == 0 {
        return Err(AggregateError::Invalid("no annotations".into()));
    }
    let n_iter = options.iterations.unwrap_or(100);
    let tol = options.tol.unwrap_or(1e-5);
    let known = match (&options.known, &variant) {
        (Some(known), Variant::Full) => Some(known.per_item(n_items)),
        (Some(_), Variant::OneCoin) => {
            return Err(AggregateError::Invalid(
                "one-coin Dawid–Skene does not take known answers".into(),
            ));
        }
        (None, _) => None,
    };
    let observed = observed_pairs(table);
    let cells = rating_cells(table)?;
    let ratings_per_annotator = match variant {
        Variant::OneCoin => table.annotator_rating_counts(),
        Variant::Full => Vec::new(),
    };
    let mut skills = vec![0.0; table.n_annotators()];
    let n_ratings = table.n_rows() as f64;
    // Initialisation: majority-vote shares (known answers clamped), then priors and errors.
    let mut q = vote_shares(table, None);
    if let Some(known) = &known {
        clamp_known(&mut q, k, known);
    }
    let empty = Errors {
        k,
        e: Vec::new(),
        observed: Vec::new(),
    };
    let mut spare = Vec::new();
    let init = fused_pass(
        table,
        &cells,
        &vec![1.0; k],
        &empty,
        &mut q,
        Posterior::Given,
        &mut spare,
    );
    let m_step = |counts: Vec<f64>, skills: &mut [f64]| match variant {
        Variant::Full => m_step_full(counts, k, &observed, options.smoothing),
        Variant::OneCoin => m_step_one_coin(&ratings_per_annotator, &counts, k, &observed, skills),
    };
    let mut priors: Vec<f64> = init.prior_sums.iter().map(|s| s / n_items as f64).collect();
    let mut errors = m_step(init.counts, &mut skills);
    let mut log_e = Vec::new();
    log_errors(&errors, &mut log_e);
    let mut history = Vec::new();
    let mut previous = f64::NEG_INFINITY;
    let known_rows = known.as_deref();
    // The buffer of the errors before the last, reused for the next M-step's copy.
    let mut spare_errors = Vec::new();
    for iteration in 1..=n_iter {
        // Only the last E-step's posteriors are reported: the last iteration writes them,
        // and an early stop computes them again from the same parameters below.
        let last = iteration == n_iter;
        let pass = fused_pass(
            table,
            &cells,
            &priors,
            &errors,
            &mut q,
            Posterior::EStep {
                known: known_rows,
                write_rows: last,
            },
            &mut spare,
        );
        let entropy = entropy_from_totals(&pass, &priors, &log_e, k);
        let next_priors: Vec<f64> = pass.prior_sums.iter().map(|s| s / n_items as f64).collect();
        // The M-step works on a copy of the counts (the objective needs them after it).
        let mut counts_copy = std::mem::take(&mut spare_errors);
        counts_copy.clear();
        counts_copy.extend_from_slice(&pass.counts);
        let next_errors = m_step(counts_copy, &mut skills);
        log_errors(&next_errors, &mut log_e);
        let loss = (joint_from_totals(&pass, &next_priors, &log_e) + entropy) / n_ratings;
        spare.push(pass.counts);
        history.push(loss);
        progress(iteration, loss);
        let stop = loss - previous < tol;
        if stop && !last {
            // The posteriors of this iteration's E-step, from the parameters it used.
            fused_pass(
                table,
                &cells,
                &priors,
                &errors,
                &mut q,
                Posterior::EStep {
                    known: known_rows,
                    write_rows: true,
                },
                &mut spare,
            );
        }
        priors = next_priors;
        spare_errors = std::mem::replace(&mut errors, next_errors).e;
        if stop {
            break;
        }
        previous = loss;
    }
    let mut result = Aggregation::new(method, table);
    result.iterations = history.len();
    result.loss_history = history;
    result.priors = Some(priors.iter().map(|p| p.max(EPS)).collect());
    // Transpose to [annotator][truth][observed].
    let mut p = vec![0.0; table.n_annotators() * k * k];
    for a in 0..table.n_annotators() {
        for y in 0..k {
            for c in 0..k {
                p[(a * k + c) * k + y] = errors.e[(a * k + y) * k + c];
            }
        }
    }
    result.confusion = Some(Confusion {
        k,
        p,
        observed: errors.observed,
    });
    if matches!(variant, Variant::OneCoin) {
        result.skills = Some(skills);
    } else {
        // Skill of a full-confusion annotator: prior-weighted probability of a correct answer.
        let confusion = result.confusion.as_ref().map(|c| {
            (0..table.n_annotators())
                .map(|a| (0..k).map(|c_| priors[c_] * c.get(a, c_, c_)).sum::<f64>())
                .collect::<Vec<f64>>()
        });
        result.skills = confusion;
    }
    // Reported posteriors are floored at EPS (as the reference reports them).
    if result.iterations > 0 {
        q.par_iter_mut().for_each(|v| *v = v.max(EPS));
    }
    result.probas = Some(Posteriors::Dense(q));
    result.labels_from_probas(options.tie, options.seed);
    Ok(result)
}

/// Dawid–Skene with a full confusion matrix per annotator. Known answers clamp their items.
pub fn dawid_skene(
    table: &AnnotationTable,
    options: &AggregateOptions,
    progress: &(dyn Fn(usize, f64) + Sync),
) -> Result<Aggregation, AggregateError> {
    run(table, options, Variant::Full, progress)
}

/// One-coin Dawid–Skene: one accuracy per annotator.
pub fn one_coin(
    table: &AnnotationTable,
    options: &AggregateOptions,
    progress: &(dyn Fn(usize, f64) + Sync),
) -> Result<Aggregation, AggregateError> {
    run(table, options, Variant::OneCoin, progress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::fixtures::scattered_table;
    use crate::aggregate::splitmix;

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// An early stop reports the posteriors of the last E-step it ran: the same bits as a
    /// run capped at that many iterations, which writes them in its last pass.
    #[test]
    fn an_early_stop_reports_the_same_posteriors_as_a_run_capped_there() {
        let table = scattered_table(400);
        let options = |iterations, tol| AggregateOptions {
            iterations: Some(iterations),
            tol: Some(tol),
            ..AggregateOptions::default()
        };
        for variant in [Variant::Full, Variant::OneCoin] {
            let stopped = run(&table, &options(100, 1e-3), variant, &|_, _| {}).unwrap();
            assert!(stopped.iterations > 1 && stopped.iterations < 100);
            let variant = match stopped.method {
                Method::DawidSkene => Variant::Full,
                _ => Variant::OneCoin,
            };
            let capped = run(
                &table,
                &options(stopped.iterations, f64::NEG_INFINITY),
                variant,
                &|_, _| {},
            )
            .unwrap();
            let rows = |a: &Aggregation| match &a.probas {
                Some(Posteriors::Dense(q)) => bits(q),
                _ => panic!("dense posteriors expected"),
            };
            assert_eq!(rows(&stopped), rows(&capped));
            assert_eq!(bits(&stopped.loss_history), bits(&capped.loss_history));
            assert_eq!(stopped.labels, capped.labels);
        }
    }

    /// The pass specialised for K = 3 and the pass for a run-time K give the same bits,
    /// including items long enough to be rescaled against underflow and clamped items.
    #[test]
    fn the_compile_time_class_count_pass_matches_the_general_one_bit_for_bit() {
        let table = scattered_table(3000);
        let k = table.n_values();
        assert_eq!(k, 3);
        // Error entries spread over [1e-20, 1], so that 24 ratings can underflow.
        let e: Vec<f64> = (0..table.n_annotators() * k * k)
            .map(|i| 10f64.powf(-20.0 * (splitmix(i as u64) % 1000) as f64 / 1000.0))
            .collect();
        let errors = Errors {
            k,
            e,
            observed: observed_pairs(&table),
        };
        let known: Vec<Option<u32>> = (0..table.n_items())
            .map(|item| (item % 17 == 0).then_some((item % 3) as u32))
            .collect();
        let priors = [0.5, 0.3, 0.2];
        let start = vote_shares(&table, None);
        let posterior = Posterior::EStep {
            known: Some(&known),
            write_rows: true,
        };
        let cells = rating_cells(&table).unwrap();
        fn pass<S: Scratch>(
            table: &AnnotationTable,
            cells: &[u32],
            priors: &[f64],
            errors: &Errors,
            start: &[f64],
            posterior: Posterior,
        ) -> (Vec<f64>, PassTotals) {
            let mut q = start.to_vec();
            let totals = fused_pass_k::<S>(
                table,
                cells,
                priors,
                errors,
                &mut q,
                posterior,
                &mut Vec::new(),
            );
            (q, totals)
        }
        let (q_fixed, fixed) =
            pass::<[f64; 3]>(&table, &cells, &priors, &errors, &start, posterior);
        let (q_general, general) =
            pass::<Vec<f64>>(&table, &cells, &priors, &errors, &start, posterior);
        assert!(fixed.rescales > 0.0, "some item must be rescaled");
        assert!(fixed.clamped > 0.0);
        assert_eq!(bits(&q_fixed), bits(&q_general));
        assert_eq!(bits(&fixed.counts), bits(&general.counts));
        assert_eq!(bits(&fixed.prior_sums), bits(&general.prior_sums));
        assert_eq!(bits(&fixed.rated_sums), bits(&general.rated_sums));
        assert_eq!(
            fixed.product_z.ln().to_bits(),
            general.product_z.ln().to_bits()
        );
        for (a, b) in [
            (fixed.rescales, general.rescales),
            (fixed.tiny_entries, general.tiny_entries),
            (fixed.clamped_log_p, general.clamped_log_p),
            (fixed.clamped_log_e, general.clamped_log_e),
        ] {
            assert_eq!(a.to_bits(), b.to_bits());
        }
    }

    #[test]
    fn every_vector_width_of_the_pass_gives_the_same_bits() {
        let table = scattered_table(3000);
        let k = table.n_values();
        let e: Vec<f64> = (0..table.n_annotators() * k * k)
            .map(|i| 10f64.powf(-20.0 * (splitmix(i as u64) % 1000) as f64 / 1000.0))
            .collect();
        let errors = Errors {
            k,
            e,
            observed: observed_pairs(&table),
        };
        let cells = rating_cells(&table).unwrap();
        let p = [0.5, 0.3, 0.2];
        let pass = RangePass {
            table: &table,
            cells: &cells,
            p: &p,
            errors: &errors,
            posterior: Posterior::EStep {
                known: None,
                write_rows: true,
            },
            k,
            table_len: table.n_annotators() * k * k,
            prefetching: true,
        };
        let start = vote_shares(&table, None);
        let outcome = |build: &dyn Fn(&mut [f64]) -> PassTotals| {
            let mut rows = start.clone();
            let totals = build(&mut rows);
            (bits(&rows), bits(&totals.counts), bits(&totals.prior_sums))
        };
        let baseline = outcome(&|rows| pass.run::<[f64; 3]>(0, rows, Vec::new()));
        #[cfg(target_arch = "x86_64")]
        {
            if has_avx2() {
                // SAFETY: the CPU supports AVX2, checked just above.
                let avx2 =
                    outcome(&|rows| unsafe { pass.run_avx2::<[f64; 3]>(0, rows, Vec::new()) });
                assert_eq!(avx2, baseline, "AVX2");
            }
            if has_avx512() {
                // SAFETY: the CPU supports AVX-512F, checked just above.
                let avx512 =
                    outcome(&|rows| unsafe { pass.run_avx512::<[f64; 3]>(0, rows, Vec::new()) });
                assert_eq!(avx512, baseline, "AVX-512");
            }
        }
    }
}
