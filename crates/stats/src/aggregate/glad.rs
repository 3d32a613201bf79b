//! GLAD (Whitehill et al. 2009): each annotator has an ability α, each item an inverse
//! difficulty exp(β), and an annotator answers an item correctly with probability
//! σ(α·exp(β)); wrong answers are spread evenly over the other K − 1 labels.
//!
//! Semantics follow crowd-kit 1.4 so results are comparable:
//!
//! * α = β = 1 at the start, standard normal priors centred on 1 for both, and a fixed
//!   uniform class prior;
//! * the E-step is the exact posterior over the true label; the M-step maximises the
//!   expected complete log-likelihood Q (with the parameter priors, without an entropy
//!   term) by nonlinear conjugate gradients (Polak–Ribière+, Moré–Thuente line search,
//!   stopped when max |∇Q| ≤ 0.01 or after 25 iterations). The early stop matters: it
//!   freezes the parameters where crowd-kit's optimiser leaves them, so exact
//!   maximisation would give visibly different α and β;
//! * the loss is Q / (annotations × K) after each M-step, and EM stops when it improves
//!   by less than `tol` (the first comparison is against the unnormalised initial Q);
//! * `probas` come from the E-step made before the last M-step.
//!
//! Gradients are computed by one pass over the ratings grouped by item and one pass over
//! them grouped by annotator. Every sum runs in a fixed order (per item, per annotator,
//! fixed-size item chunks added in order), so results do not depend on the thread count.

use rayon::prelude::*;

use super::{AggregateError, AggregateOptions, Aggregation, Method, Posteriors};
use crate::buffers::{prefetch, split_at_bounds};
use crate::logistic::{RatingArguments, RatingTerms, exp_all, log_sigmoids, rating_terms};
use crate::table::AnnotationTable;

/// Items per parallel work unit (fixed so partial sums are added in a fixed order).
const ITEM_CHUNK: usize = 2048;
// Each rating stores its item's place in the chunk as a `u16`.
const _: () = assert!(ITEM_CHUNK <= 1 << 16);
/// How many rows ahead the α-sum scatter fetches its annotator's sum.
const SCATTER_AHEAD: usize = 16;
/// Annotators per work unit when adding per-chunk α-gradient sums.
const ANNOTATOR_BLOCK: usize = 256;
/// crowd-kit's M-step settings: `minimize(method="CG", tol=1e-2, maxiter=25)`.
const M_STEP_MAX_ITER: usize = 25;
const M_STEP_GTOL: f64 = 1e-2;
/// ½ ln(2π).
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// GLAD. Labels are the table's values in sorted order; the class prior is uniform.
pub fn glad(
    table: &AnnotationTable,
    options: &AggregateOptions,
    progress: &(dyn Fn(usize, f64) + Sync),
) -> Result<Aggregation, AggregateError> {
    let k = table.n_values();
    if k < 2 {
        return Err(AggregateError::Invalid(format!(
            "GLAD needs at least 2 distinct labels (found {k}): with one label the \
             chance of a wrong answer, spread over K - 1 = 0 labels, is undefined"
        )));
    }
    if table.n_rows() == 0 {
        return Err(AggregateError::Invalid("no annotations".into()));
    }
    Ok(fit(Model::new(table), options, progress))
}

/// EM from α = β = 1 until the loss improves by less than `tol`.
fn fit(
    mut model: Model<'_>,
    options: &AggregateOptions,
    progress: &(dyn Fn(usize, f64) + Sync),
) -> Aggregation {
    let table = model.table;
    let k = model.k;
    let n_iter = options.iterations.unwrap_or(100);
    let tol = options.tol.unwrap_or(1e-5);
    let n_w = model.n_w;
    // Parameters: [α (annotators) ; β (items)].
    let mut params = vec![1.0; n_w + model.n_t];
    let mut q = vec![0.0; table.n_items() * k];
    let mut grad = vec![0.0; params.len()];
    let mut pool = Pool::new(params.len());

    model.e_step(&params, &mut q);
    let first = model.objective(&params, &mut grad);
    let mut previous = -first;
    // The first M-step starts from this E-step and this evaluation: an E-step at the same
    // parameters would give the same weights, and the same value and gradient.
    let mut start = Some(Start {
        value: first,
        gradient: grad,
    });
    let norm = (table.n_rows() * k) as f64;
    let mut history = Vec::new();
    for iteration in 1..=n_iter {
        let last = previous;
        if start.is_none() {
            model.e_step(&params, &mut q);
        }
        let end = minimize_cg(
            &mut |x, g| model.objective(x, g),
            params,
            start.take(),
            &mut pool,
        );
        params = end.x;
        // The M-step's last value is the objective at its last iterate.
        let loss = -end.value / norm;
        history.push(loss);
        progress(iteration, loss);
        if loss - last < tol {
            break;
        }
        previous = loss;
    }

    let mut result = Aggregation::new(Method::Glad, table);
    result.iterations = history.len();
    result.loss_history = history;
    result.betas = Some(params.split_off(n_w));
    result.alphas = Some(params);
    result.probas = Some(Posteriors::Dense(q));
    result.labels_from_probas(options.tie, options.seed);
    result
}

/// Standard normal log-density (NaN → −∞).
#[inline]
fn log_phi(z: f64) -> f64 {
    let v = -0.5 * z * z - HALF_LN_2PI;
    if v.is_nan() { f64::NEG_INFINITY } else { v }
}

struct Model<'a> {
    table: &'a AnnotationTable,
    k: usize,
    n_w: usize,
    n_t: usize,
    /// ln(K − 1) and ln(1/K).
    log_km1: f64,
    log_prior: f64,
    /// First row of each item chunk, then n_rows.
    row_bounds: Vec<usize>,
    /// Per row (item order): its item's place in its chunk.
    row_chunk_items: Vec<u16>,
    /// Per row (item order): q[t, y] and Σ_{c≠y} q[t, c] from the last E-step.
    weights: Vec<[f64; 2]>,
    /// Scratch for the α gradient.
    alpha_sums: AlphaSums,
}

impl<'a> Model<'a> {
    fn new(table: &'a AnnotationTable) -> Self {
        let n_chunks = table.n_items().div_ceil(ITEM_CHUNK);
        Self::with_alpha_sums(
            table,
            n_chunks.saturating_mul(table.n_annotators()) <= table.n_rows(),
        )
    }

    /// `per_chunk`: accumulate the α gradient in per-chunk annotator sums (cheap when
    /// annotators are few) rather than one term per row.
    fn with_alpha_sums(table: &'a AnnotationTable, per_chunk: bool) -> Self {
        let k = table.n_values();
        let n_t = table.n_items();
        let n_rows = table.n_rows();
        let mut row_bounds: Vec<usize> = (0..n_t)
            .step_by(ITEM_CHUNK)
            .map(|item| table.item_rows(item as u32).start)
            .collect();
        row_bounds.push(n_rows);
        let mut row_chunk_items = Vec::with_capacity(n_rows);
        for item in 0..n_t {
            let place = (item % ITEM_CHUNK) as u16;
            row_chunk_items.extend(std::iter::repeat_n(
                place,
                table.item_rows(item as u32).len(),
            ));
        }
        let n_w = table.n_annotators();
        let n_chunks = row_bounds.len() - 1;
        let alpha_sums = if per_chunk {
            AlphaSums::PerChunk(vec![0.0; n_chunks * n_w])
        } else {
            AlphaSums::PerRow(vec![0.0; n_rows])
        };
        Self {
            table,
            k,
            n_w,
            n_t,
            log_km1: ((k - 1) as f64).ln(),
            log_prior: (1.0 / k as f64).ln(),
            row_bounds,
            row_chunk_items,
            weights: vec![[0.0; 2]; n_rows],
            alpha_sums,
        }
    }

    /// Posterior over the true label of every item, and the per-row weights the
    /// objective needs.
    fn e_step(&mut self, params: &[f64], q: &mut [f64]) {
        let (alpha, beta) = params.split_at(self.n_w);
        let table = self.table;
        let k = self.k;
        let (log_km1, log_prior) = (self.log_km1, self.log_prior);
        let weights = split_at_bounds(&mut self.weights, &self.row_bounds);
        let (_, row_annotators, row_values) = table.item_columns();
        let (row_bounds, row_chunk_items) = (&self.row_bounds, &self.row_chunk_items);
        q.par_chunks_mut(ITEM_CHUNK * k)
            .zip(weights)
            .enumerate()
            .for_each_init(
                || (ChunkScratch::default(), ItemPosterior::default()),
                |(scratch, posterior), (chunk, (q_chunk, w_chunk))| {
                    let first_item = chunk * ITEM_CHUNK;
                    let (row0, row_end) = (row_bounds[chunk], row_bounds[chunk + 1]);
                    let n = row_end - row0;
                    let values = &row_values[row0..row_end];
                    let n_items = q_chunk.len() / k;
                    scratch.prepare(&beta[first_item..first_item + n_items], n);
                    let ChunkScratch {
                        item_scale,
                        per_rating: [log_sig, log_one_minus, _],
                    } = scratch;
                    let args = RatingArguments {
                        alpha,
                        annotators: &row_annotators[row0..row_end],
                        item_scale,
                        items: &row_chunk_items[row0..row_end],
                    };
                    log_sigmoids(args, log_sig, log_one_minus);
                    for (j, q_row) in q_chunk.chunks_mut(k).enumerate() {
                        let rows = table.item_rows((first_item + j) as u32);
                        let rows = rows.start - row0..rows.end - row0;
                        let item = ItemRatings {
                            values: &values[rows.clone()],
                            log_sig: &log_sig[rows.clone()],
                            log_one_minus: &log_one_minus[rows.clone()],
                        };
                        posterior.scores(&item, k, log_km1, log_prior);
                        posterior.softmax_into(q_row);
                        posterior.weights_into(&item, q_row, &mut w_chunk[rows]);
                    }
                },
            );
    }

    /// −Q at `params` (the function the M-step minimises) and its gradient.
    fn objective(&mut self, params: &[f64], grad: &mut [f64]) -> f64 {
        let n_w = self.n_w;
        let (alpha, beta) = params.split_at(n_w);
        let (grad_alpha, grad_beta) = grad.split_at_mut(n_w);
        let table = self.table;
        let log_km1 = self.log_km1;
        let weights = &self.weights;
        // Where each chunk puts the α-gradient terms g·exp(β): per-annotator sums of the
        // chunk, or one value per row.
        let per_chunk = matches!(self.alpha_sums, AlphaSums::PerChunk(_));
        let sinks: Vec<&mut [f64]> = match &mut self.alpha_sums {
            AlphaSums::PerChunk(sums) => sums.chunks_mut(n_w.max(1)).collect(),
            AlphaSums::PerRow(rows) => split_at_bounds(rows, &self.row_bounds),
        };
        // Item pass: data term and β gradient. Per chunk, the logistic terms of all its
        // ratings are computed in one vectorised loop, then summed per item.
        let (item_offsets, row_annotators, _) = table.item_columns();
        let (row_bounds, row_chunk_items) = (&self.row_bounds, &self.row_chunk_items);
        let partials: Vec<f64> = grad_beta
            .par_chunks_mut(ITEM_CHUNK)
            .zip(sinks)
            .enumerate()
            .map_init(
                ChunkScratch::default,
                |scratch, (chunk, (gb_chunk, sink))| {
                    let first_item = chunk * ITEM_CHUNK;
                    let (row0, row_end) = (row_bounds[chunk], row_bounds[chunk + 1]);
                    let n = row_end - row0;
                    let annotators = &row_annotators[row0..row_end];
                    scratch.prepare(&beta[first_item..first_item + gb_chunk.len()], n);
                    let ChunkScratch {
                        item_scale,
                        per_rating: [term, slope_scale, slope_alpha],
                    } = scratch;
                    let args = RatingArguments {
                        alpha,
                        annotators,
                        item_scale,
                        items: &row_chunk_items[row0..row_end],
                    };
                    let out = RatingTerms {
                        term,
                        slope_scale,
                        slope_alpha,
                    };
                    rating_terms(args, &weights[row0..row_end], log_km1, out);
                    // With g = Σ_c q[t, c]·(δ_c − σ): g·e^β for α, Σ g·α for β. Each
                    // annotator's terms are added in row order.
                    if per_chunk {
                        sink.fill(0.0);
                        for (row, (&w, &term)) in
                            annotators.iter().zip(slope_scale.iter()).enumerate()
                        {
                            if let Some(&ahead) = annotators.get(row + SCATTER_AHEAD) {
                                prefetch(sink, ahead as usize);
                            }
                            sink[w as usize] += term;
                        }
                    } else {
                        sink.copy_from_slice(slope_scale);
                    }
                    let mut total = 0.0;
                    let n_items = gb_chunk.len();
                    let bounds = &item_offsets[first_item..=first_item + n_items];
                    let items = gb_chunk
                        .iter_mut()
                        .zip(&beta[first_item..first_item + n_items])
                        .zip(item_scale.iter())
                        .zip(bounds.windows(2));
                    for (((gb, &b), &eb), bounds) in items {
                        let rows = bounds[0] as usize - row0..bounds[1] as usize - row0;
                        let item_q = term[rows.clone()].iter().fold(0.0, |sum, v| sum + v);
                        let d_beta = slope_alpha[rows].iter().fold(0.0, |sum, v| sum + v);
                        *gb = -(d_beta * eb - (b - 1.0));
                        total += item_q + log_phi(b - 1.0);
                    }
                    total
                },
            )
            .collect();
        // Annotator pass: add the chunk sums in chunk order, or each annotator's rows in
        // row order.
        match &self.alpha_sums {
            AlphaSums::PerChunk(sums) => {
                grad_alpha
                    .par_chunks_mut(ANNOTATOR_BLOCK)
                    .enumerate()
                    .for_each(|(block, ga_block)| {
                        let first = block * ANNOTATOR_BLOCK;
                        let mut acc = vec![0.0; ga_block.len()];
                        for chunk_sums in sums.chunks(n_w) {
                            for (a, v) in acc.iter_mut().zip(&chunk_sums[first..]) {
                                *a += v;
                            }
                        }
                        for ((ga, s), w) in ga_block.iter_mut().zip(acc).zip(first..) {
                            *ga = -(s - (alpha[w] - 1.0));
                        }
                    });
            }
            AlphaSums::PerRow(rows) => {
                grad_alpha
                    .par_iter_mut()
                    .with_min_len(64)
                    .enumerate()
                    .for_each(|(w, ga)| {
                        let s: f64 = table
                            .annotator_rows(w as u32)
                            .iter()
                            .map(|&r| rows[r as usize])
                            .sum();
                        *ga = -(s - (alpha[w] - 1.0));
                    });
            }
        }
        let data: f64 = partials.iter().sum();
        let prior_alpha: f64 = alpha.iter().map(|a| log_phi(a - 1.0)).sum();
        -(data + prior_alpha)
    }
}

/// One item's ratings in the E-step: their labels, and log σ and log(1 − σ) of each.
struct ItemRatings<'a> {
    values: &'a [u32],
    log_sig: &'a [f64],
    log_one_minus: &'a [f64],
}

/// Scratch for one item's posterior. Every label's log-score is a sum over the item's
/// ratings, in rating order; the labels no rating names all add the same terms, so their
/// score is computed once, and so are the exponentials and the weights they share.
#[derive(Default)]
struct ItemPosterior {
    /// ln prior + Σ over ratings of ln σ where the rating names the label, else
    /// ln(1 − σ) − ln(K − 1).
    scores: Vec<f64>,
    /// The labels the item's ratings name, in order of first appearance.
    named: Vec<u32>,
    /// The score of every label no rating names.
    unnamed: f64,
    /// exp(score − shift) per label.
    exps: Vec<f64>,
    /// Σ_{c ≠ y} q[c] for the labels y computed so far.
    rests: Vec<(u32, f64)>,
}

impl ItemPosterior {
    fn scores(&mut self, item: &ItemRatings<'_>, k: usize, log_km1: f64, log_prior: f64) {
        let other = |row: usize| item.log_one_minus[row] - log_km1;
        self.named.clear();
        let mut unnamed = 0.0;
        for (row, &y) in item.values.iter().enumerate() {
            unnamed += other(row);
            if !self.named.contains(&y) {
                self.named.push(y);
            }
        }
        self.scores.clear();
        self.scores.resize(k, unnamed);
        for &label in &self.named {
            let mut score = 0.0;
            for (row, &y) in item.values.iter().enumerate() {
                score += if y == label {
                    item.log_sig[row]
                } else {
                    other(row)
                };
            }
            self.scores[label as usize] = score;
        }
        for score in &mut self.scores {
            *score += log_prior;
        }
        self.unnamed = unnamed + log_prior;
    }

    /// The posterior from the scores, through logsumexp.
    fn softmax_into(&mut self, q_row: &mut [f64]) {
        let mut max = f64::NEG_INFINITY;
        for &score in &self.scores {
            if score > max {
                max = score;
            }
        }
        self.exps_of_scores_less(max);
        let total: f64 = self.exps.iter().sum();
        let lse = total.ln() + max;
        self.exps_of_scores_less(lse);
        q_row.copy_from_slice(&self.exps);
    }

    /// exp(score − shift) of every label into `exps`: once for all the unnamed labels
    /// (whose scores are the same number) and once per named label.
    fn exps_of_scores_less(&mut self, shift: f64) {
        let k = self.scores.len();
        self.exps.clear();
        if self.named.len() < k {
            self.exps.resize(k, (self.unnamed - shift).exp());
        } else {
            self.exps.resize(k, 0.0);
        }
        for &label in &self.named {
            let label = label as usize;
            self.exps[label] = (self.scores[label] - shift).exp();
        }
    }

    /// Each rating's [q[y], Σ_{c ≠ y} q[c]] for the objective.
    fn weights_into(&mut self, item: &ItemRatings<'_>, q_row: &[f64], slots: &mut [[f64; 2]]) {
        self.rests.clear();
        for (slot, &y) in slots.iter_mut().zip(item.values) {
            let rest = match self.rests.iter().find(|(label, _)| *label == y) {
                Some(&(_, rest)) => rest,
                None => {
                    let rest: f64 = q_row
                        .iter()
                        .enumerate()
                        .filter(|&(c, _)| c != y as usize)
                        .map(|(_, v)| v)
                        .sum();
                    self.rests.push((y, rest));
                    rest
                }
            };
            *slot = [q_row[y as usize], rest];
        }
    }
}

/// Per-chunk buffers: each item's e^β, and three values per rating.
#[derive(Default)]
struct ChunkScratch {
    item_scale: Vec<f64>,
    per_rating: [Vec<f64>; 3],
}

impl ChunkScratch {
    /// e^β of the chunk's items, and room for `rows` ratings.
    fn prepare(&mut self, beta: &[f64], rows: usize) {
        self.item_scale.resize(beta.len(), 0.0);
        exp_all(beta, &mut self.item_scale);
        for buffer in &mut self.per_rating {
            buffer.resize(rows, 0.0);
        }
    }
}

/// Scratch for the α gradient (see [`Model::objective`]).
enum AlphaSums {
    /// n_chunks × n_annotators partial sums (when that is no bigger than one per row).
    PerChunk(Vec<f64>),
    /// One term per row, gathered per annotator afterwards.
    PerRow(Vec<f64>),
}

// ---------------------------------------------------------------------------
// Nonlinear conjugate gradients (Polak–Ribière+) with a Moré–Thuente line search,
// following scipy 1.12's `minimize(method="CG")` step for step.
// ---------------------------------------------------------------------------

/// Python's `max(a, b)`: `a` unless `b > a` (so NaN in `a` propagates).
#[inline]
fn py_max(a: f64, b: f64) -> f64 {
    if b > a { b } else { a }
}

/// Python's `min(a, b)`: `a` unless `b < a`.
#[inline]
fn py_min(a: f64, b: f64) -> f64 {
    if b < a { b } else { a }
}

/// Elements per parallel piece of the optimiser's vector operations. Sums are added piece
/// by piece in order, so they do not depend on the thread count.
const VECTOR_PIECE: usize = 1 << 14;

/// Σ f(a[i], b[i]), in fixed pieces.
fn sum_pairs(a: &[f64], b: &[f64], f: impl Fn(f64, f64) -> f64 + Sync) -> f64 {
    let partials: Vec<f64> = a
        .par_chunks(VECTOR_PIECE)
        .zip(b.par_chunks(VECTOR_PIECE))
        .map(|(a, b)| a.iter().zip(b).map(|(&x, &y)| f(x, y)).sum::<f64>())
        .collect();
    partials.iter().sum()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    sum_pairs(a, b, |x, y| x * y)
}

/// out[i] = a[i] + s·b[i].
fn axpy_into(out: &mut [f64], a: &[f64], s: f64, b: &[f64]) {
    out.par_chunks_mut(VECTOR_PIECE)
        .zip(a.par_chunks(VECTOR_PIECE).zip(b.par_chunks(VECTOR_PIECE)))
        .for_each(|(out, (a, b))| {
            for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
                *o = a + s * b;
            }
        });
}

/// max(m, |v|), with NaN propagating (so a NaN gradient stops the optimiser like numpy's
/// amax would).
fn max_abs_fold(m: f64, v: f64) -> f64 {
    if v.is_nan() || m.is_nan() {
        f64::NAN
    } else {
        m.max(v.abs())
    }
}

fn max_abs(a: &[f64]) -> f64 {
    a.par_chunks(VECTOR_PIECE)
        .map(|piece| piece.iter().fold(0.0, |m, &v| max_abs_fold(m, v)))
        .collect::<Vec<f64>>()
        .into_iter()
        .fold(0.0, max_abs_fold)
}

/// Parameter-length vectors for reuse, by the whole fit. At a million items each is
/// 8 MiB: allocated fresh five times per CG iteration, their page faults and zeroing cost
/// more system time than the optimiser's own arithmetic, and a fresh pool per M-step
/// still paid for them once per M-step.
struct Pool {
    n: usize,
    free: Vec<Vec<f64>>,
}

impl Pool {
    fn new(n: usize) -> Self {
        Self {
            n,
            free: Vec::new(),
        }
    }

    /// A vector of length n with unspecified contents (callers overwrite all of it).
    fn take(&mut self) -> Vec<f64> {
        self.free.pop().unwrap_or_else(|| vec![0.0; self.n])
    }
    fn give(&mut self, v: Vec<f64>) {
        self.free.push(v);
    }
}

/// φ(s) = f(x_k + s·p_k) and φ'(s), with the gradient at the last evaluated step kept.
struct Line<'f, F> {
    f: &'f mut F,
    xk: &'f [f64],
    pk: &'f [f64],
    x: Vec<f64>,
    g: Vec<f64>,
    last: Option<(f64, f64)>,
    pool: &'f mut Pool,
}

impl<F: FnMut(&[f64], &mut [f64]) -> f64> Line<'_, F> {
    /// (φ(s), φ'(s)).
    fn eval(&mut self, s: f64) -> (f64, f64) {
        if let Some((step, value)) = self.last {
            if step.to_bits() == s.to_bits() {
                return (value, dot(&self.g, self.pk));
            }
        }
        axpy_into(&mut self.x, self.xk, s, self.pk);
        let value = (self.f)(&self.x, &mut self.g);
        self.last = Some((s, value));
        (value, dot(&self.g, self.pk))
    }
}

/// The next CG iterate after a step `alpha` along `pk`.
struct Step {
    x: Vec<f64>,
    f: f64,
    g: Vec<f64>,
    p: Vec<f64>,
    gnorm: f64,
    /// g·g and p·g: the safeguard's sums, and the next iteration's |∇f|² and φ'(0).
    gg: f64,
    pg: f64,
}

impl<F> Line<'_, F> {
    /// The point x_k + α·p_k and the line's gradient, taken out of the line: the last
    /// evaluated point itself when that was at α.
    fn take_point(&mut self, alpha: f64) -> (Vec<f64>, Vec<f64>) {
        let at_alpha = self
            .last
            .is_some_and(|(step, _)| step.to_bits() == alpha.to_bits());
        let mut x = std::mem::replace(&mut self.x, self.pool.take());
        if !at_alpha {
            axpy_into(&mut x, self.xk, alpha, self.pk);
        }
        let g = std::mem::replace(&mut self.g, self.pool.take());
        (x, g)
    }

    /// Puts back a step the safeguard refused, so the line's last evaluation stays valid.
    fn give_back(&mut self, step: Step) {
        let x = std::mem::replace(&mut self.x, step.x);
        let g = std::mem::replace(&mut self.g, step.g);
        self.pool.give(x);
        self.pool.give(g);
        self.pool.give(step.p);
    }
}

/// Polak–Ribière+ update: the next direction from the line's gradient at x_k + α·p_k.
///
/// Its sums are added piece by piece exactly as `dot`, `sum_pairs` and `max_abs` add
/// them, in two passes over the vectors instead of six.
fn pr_step<F>(line: &mut Line<'_, F>, alpha: f64, f: f64, gk: &[f64], delta: f64) -> Step {
    let (x, g) = line.take_point(alpha);
    // Σ (g − g_k)·g, g·g and max |g|, per piece.
    let pieces: Vec<(f64, f64, f64)> = g
        .par_chunks(VECTOR_PIECE)
        .zip(gk.par_chunks(VECTOR_PIECE))
        .map(|(g, gk)| {
            let yg = g
                .iter()
                .zip(gk)
                .map(|(&g1, &g0)| (g1 - g0) * g1)
                .sum::<f64>();
            let gg = g.iter().map(|&v| v * v).sum::<f64>();
            (yg, gg, g.iter().fold(0.0, |m, &v| max_abs_fold(m, v)))
        })
        .collect();
    let yg: f64 = pieces.iter().map(|piece| piece.0).sum();
    let gg: f64 = pieces.iter().map(|piece| piece.1).sum();
    let gnorm = pieces.iter().map(|piece| piece.2).fold(0.0, max_abs_fold);
    let beta = py_max(0.0, yg / delta);
    // p = −g + β·p_k, and p·g per piece.
    let mut p = line.pool.take();
    let pieces: Vec<f64> = p
        .par_chunks_mut(VECTOR_PIECE)
        .zip(
            g.par_chunks(VECTOR_PIECE)
                .zip(line.pk.par_chunks(VECTOR_PIECE)),
        )
        .map(|(p, (g, pk))| {
            for ((p, &g1), &pk) in p.iter_mut().zip(g).zip(pk) {
                *p = -g1 + beta * pk;
            }
            p.iter().zip(g).map(|(&p, &g)| p * g).sum::<f64>()
        })
        .collect();
    let pg: f64 = pieces.iter().sum();
    Step {
        x,
        f,
        g,
        p,
        gnorm,
        gg,
        pg,
    }
}

/// The descent safeguard scipy's CG puts on a line-search step.
fn descent_ok(step: &Step) -> bool {
    const SIGMA_3: f64 = 0.01;
    step.gnorm <= M_STEP_GTOL || step.pg <= -SIGMA_3 * step.gg
}

/// f and its gradient at the starting point, when already known.
struct Start {
    value: f64,
    gradient: Vec<f64>,
}

/// The last iterate and f there.
struct End {
    x: Vec<f64>,
    value: f64,
}

/// Minimise f from x0, with vectors of x0's length from `pool` (which gets them back).
fn minimize_cg<F: FnMut(&[f64], &mut [f64]) -> f64>(
    f: &mut F,
    x0: Vec<f64>,
    start: Option<Start>,
    pool: &mut Pool,
) -> End {
    let mut xk = x0;
    let (mut fk, mut gk) = match start {
        Some(start) => (start.value, start.gradient),
        None => {
            let mut gk = pool.take();
            (f(&xk, &mut gk), gk)
        }
    };
    let mut delta = dot(&gk, &gk);
    let mut old_old = fk + delta.sqrt() / 2.0;
    let mut pk = pool.take();
    for (p, g) in pk.iter_mut().zip(&gk) {
        *p = -g;
    }
    let mut derphi0 = dot(&gk, &pk);
    let mut gnorm = max_abs(&gk);
    let mut k = 0;
    while gnorm > M_STEP_GTOL && k < M_STEP_MAX_ITER {
        let (x, g) = (pool.take(), pool.take());
        let mut line = Line {
            f: &mut *f,
            xk: &xk,
            pk: &pk,
            x,
            g,
            last: None,
            pool: &mut *pool,
        };
        let mut step = None;
        if let Some((alpha, value)) = line_search_more_thuente(&mut line, fk, old_old, derphi0) {
            let candidate = pr_step(&mut line, alpha, value, &gk, delta);
            if descent_ok(&candidate) {
                step = Some(candidate);
            } else {
                line.give_back(candidate);
            }
        }
        if step.is_none() {
            step = line_search_wolfe2(&mut line, fk, old_old, derphi0, &gk, delta);
        }
        let (x, g) = (line.x, line.g);
        pool.give(x);
        pool.give(g);
        let Some(step) = step else { break };
        old_old = fk;
        fk = step.f;
        pool.give(std::mem::replace(&mut xk, step.x));
        pool.give(std::mem::replace(&mut gk, step.g));
        pool.give(std::mem::replace(&mut pk, step.p));
        gnorm = step.gnorm;
        // g·g and g·p of the new iterate, as its step computed them (x·y = y·x exactly).
        (delta, derphi0) = (step.gg, step.pg);
        k += 1;
    }
    pool.give(gk);
    pool.give(pk);
    End { x: xk, value: fk }
}

/// scipy's first trial step: min(1, 1.01·2·(φ(0) − f_{k−1})/φ'(0)), 1 when negative.
fn initial_step(phi0: f64, old_phi0: f64, derphi0: f64) -> f64 {
    if derphi0 != 0.0 {
        let a = py_min(1.0, 1.01 * 2.0 * (phi0 - old_phi0) / derphi0);
        if a < 0.0 { 1.0 } else { a }
    } else {
        1.0
    }
}

const LS_C1: f64 = 1e-4;
const LS_C2: f64 = 0.4;
const LS_XTOL: f64 = 1e-14;
const LS_STPMIN: f64 = 1e-100;
const LS_STPMAX: f64 = 1e100;
const LS_MAXITER: usize = 100;

/// Moré–Thuente line search (MINPACK-2 `dcsrch`); `None` on any warning or error.
/// On success the line's gradient is the gradient at the returned step.
fn line_search_more_thuente<F: FnMut(&[f64], &mut [f64]) -> f64>(
    line: &mut Line<'_, F>,
    phi0: f64,
    old_phi0: f64,
    derphi0: f64,
) -> Option<(f64, f64)> {
    let mut stp = initial_step(phi0, old_phi0, derphi0);
    let mut search = Dcsrch::new(LS_C1, LS_C2, LS_XTOL, LS_STPMIN, LS_STPMAX);
    let (mut f, mut g) = (phi0, derphi0);
    let mut task = Task::Start;
    for _ in 0..LS_MAXITER {
        task = search.iterate(&mut stp, f, g, task);
        if !stp.is_finite() {
            return None;
        }
        if task == Task::Fg {
            (f, g) = line.eval(stp);
        } else {
            break;
        }
    }
    match task {
        Task::Convergence => Some((stp, f)),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Task {
    Start,
    Fg,
    Convergence,
    Warning,
    Error,
}

/// State of the Moré–Thuente search (Moré & Thuente 1994, as in MINPACK-2).
struct Dcsrch {
    ftol: f64,
    gtol: f64,
    xtol: f64,
    stpmin: f64,
    stpmax: f64,
    brackt: bool,
    stage: u8,
    ginit: f64,
    gtest: f64,
    finit: f64,
    width: f64,
    width1: f64,
    stx: f64,
    fx: f64,
    gx: f64,
    sty: f64,
    fy: f64,
    gy: f64,
    stmin: f64,
    stmax: f64,
}

const XTRAPL: f64 = 1.1;
const XTRAPU: f64 = 4.0;
const P5: f64 = 0.5;
const P66: f64 = 0.66;

impl Dcsrch {
    fn new(ftol: f64, gtol: f64, xtol: f64, stpmin: f64, stpmax: f64) -> Self {
        Self {
            ftol,
            gtol,
            xtol,
            stpmin,
            stpmax,
            brackt: false,
            stage: 1,
            ginit: 0.0,
            gtest: 0.0,
            finit: 0.0,
            width: 0.0,
            width1: 0.0,
            stx: 0.0,
            fx: 0.0,
            gx: 0.0,
            sty: 0.0,
            fy: 0.0,
            gy: 0.0,
            stmin: 0.0,
            stmax: 0.0,
        }
    }

    /// One call of the reverse-communication search: given φ and φ' at `stp`, either
    /// stop (convergence / warning / error) or set the next trial `stp` and return `Fg`.
    fn iterate(&mut self, stp: &mut f64, f: f64, g: f64, task: Task) -> Task {
        if task == Task::Start {
            if *stp < self.stpmin || *stp > self.stpmax || g >= 0.0 {
                return Task::Error;
            }
            self.brackt = false;
            self.stage = 1;
            self.finit = f;
            self.ginit = g;
            self.gtest = self.ftol * self.ginit;
            self.width = self.stpmax - self.stpmin;
            self.width1 = self.width / P5;
            self.stx = 0.0;
            self.fx = self.finit;
            self.gx = self.ginit;
            self.sty = 0.0;
            self.fy = self.finit;
            self.gy = self.ginit;
            self.stmin = 0.0;
            self.stmax = *stp + XTRAPU * *stp;
            return Task::Fg;
        }
        let ftest = self.finit + *stp * self.gtest;
        if self.stage == 1 && f <= ftest && g >= 0.0 {
            self.stage = 2;
        }
        let mut outcome = None;
        if self.brackt && (*stp <= self.stmin || *stp >= self.stmax) {
            outcome = Some(Task::Warning); // rounding errors prevent progress
        }
        if self.brackt && self.stmax - self.stmin <= self.xtol * self.stmax {
            outcome = Some(Task::Warning); // xtol test satisfied
        }
        if *stp == self.stpmax && f <= ftest && g <= self.gtest {
            outcome = Some(Task::Warning); // stp = stpmax
        }
        if *stp == self.stpmin && (f > ftest || g >= self.gtest) {
            outcome = Some(Task::Warning); // stp = stpmin
        }
        if f <= ftest && g.abs() <= self.gtol * (-self.ginit) {
            outcome = Some(Task::Convergence);
        }
        if let Some(outcome) = outcome {
            return outcome;
        }

        // In stage 1 with a lower value that is above the sufficient-decrease line, step
        // on the modified function ψ(α) = φ(α) − φ(0) − ftol·α·φ'(0).
        if self.stage == 1 && f <= self.fx && f > ftest {
            let gtest = self.gtest;
            let fm = f - *stp * gtest;
            let mut fxm = self.fx - self.stx * gtest;
            let mut fym = self.fy - self.sty * gtest;
            let gm = g - gtest;
            let mut gxm = self.gx - gtest;
            let mut gym = self.gy - gtest;
            self.dcstep(&mut fxm, &mut gxm, &mut fym, &mut gym, stp, fm, gm);
            self.fx = fxm + self.stx * gtest;
            self.fy = fym + self.sty * gtest;
            self.gx = gxm + gtest;
            self.gy = gym + gtest;
        } else {
            let (mut fx, mut gx, mut fy, mut gy) = (self.fx, self.gx, self.fy, self.gy);
            self.dcstep(&mut fx, &mut gx, &mut fy, &mut gy, stp, f, g);
            (self.fx, self.gx, self.fy, self.gy) = (fx, gx, fy, gy);
        }

        // Bisect when the bracket does not shrink fast enough.
        if self.brackt {
            if (self.sty - self.stx).abs() >= P66 * self.width1 {
                *stp = self.stx + P5 * (self.sty - self.stx);
            }
            self.width1 = self.width;
            self.width = (self.sty - self.stx).abs();
        }
        if self.brackt {
            self.stmin = py_min(self.stx, self.sty);
            self.stmax = py_max(self.stx, self.sty);
        } else {
            self.stmin = *stp + XTRAPL * (*stp - self.stx);
            self.stmax = *stp + XTRAPU * (*stp - self.stx);
        }
        *stp = py_max(*stp, self.stpmin);
        *stp = py_min(*stp, self.stpmax);
        if self.brackt
            && (*stp <= self.stmin
                || *stp >= self.stmax
                || self.stmax - self.stmin <= self.xtol * self.stmax)
        {
            *stp = self.stx;
        }
        Task::Fg
    }

    /// The safeguarded step (MINPACK-2 `dcstep`): updates the interval of uncertainty
    /// [stx, sty] with the trial (stp, fp, dp) and computes the next trial step, bounded
    /// by [stmin, stmax].
    #[allow(clippy::too_many_arguments)]
    fn dcstep(
        &mut self,
        fx: &mut f64,
        dx: &mut f64,
        fy: &mut f64,
        dy: &mut f64,
        stp: &mut f64,
        fp: f64,
        dp: f64,
    ) {
        let (stx, sty, s_p) = (self.stx, self.sty, *stp);
        let (stpmin, stpmax) = (self.stmin, self.stmax);
        let (fxv, dxv, fyv, dyv) = (*fx, *dx, *fy, *dy);
        let sgnd = dp * (dxv / dxv.abs());
        let max3 = |a: f64, b: f64, c: f64| py_max(py_max(a.abs(), b.abs()), c.abs());
        let stpf;
        if fp > fxv {
            // Case 1: higher value; the minimum is bracketed.
            let theta = 3.0 * (fxv - fp) / (s_p - stx) + dxv + dp;
            let s = max3(theta, dxv, dp);
            let mut gamma = s * ((theta / s) * (theta / s) - (dxv / s) * (dp / s)).sqrt();
            if s_p < stx {
                gamma = -gamma;
            }
            let p = (gamma - dxv) + theta;
            let q = ((gamma - dxv) + gamma) + dp;
            let r = p / q;
            let stpc = stx + r * (s_p - stx);
            let stpq = stx + ((dxv / ((fxv - fp) / (s_p - stx) + dxv)) / 2.0) * (s_p - stx);
            stpf = if (stpc - stx).abs() < (stpq - stx).abs() {
                stpc
            } else {
                stpc + (stpq - stpc) / 2.0
            };
            self.brackt = true;
        } else if sgnd < 0.0 {
            // Case 2: lower value, derivatives of opposite sign; bracketed.
            let theta = 3.0 * (fxv - fp) / (s_p - stx) + dxv + dp;
            let s = max3(theta, dxv, dp);
            let mut gamma = s * ((theta / s) * (theta / s) - (dxv / s) * (dp / s)).sqrt();
            if s_p > stx {
                gamma = -gamma;
            }
            let p = (gamma - dp) + theta;
            let q = ((gamma - dp) + gamma) + dxv;
            let r = p / q;
            let stpc = s_p + r * (stx - s_p);
            let stpq = s_p + (dp / (dp - dxv)) * (stx - s_p);
            stpf = if (stpc - s_p).abs() > (stpq - s_p).abs() {
                stpc
            } else {
                stpq
            };
            self.brackt = true;
        } else if dp.abs() < dxv.abs() {
            // Case 3: lower value, same sign, the derivative's magnitude decreases.
            let theta = 3.0 * (fxv - fp) / (s_p - stx) + dxv + dp;
            let s = max3(theta, dxv, dp);
            let mut gamma =
                s * py_max(0.0, (theta / s) * (theta / s) - (dxv / s) * (dp / s)).sqrt();
            if s_p > stx {
                gamma = -gamma;
            }
            let p = (gamma - dp) + theta;
            let q = (gamma + (dxv - dp)) + gamma;
            let r = p / q;
            let stpc = if r < 0.0 && gamma != 0.0 {
                s_p + r * (stx - s_p)
            } else if s_p > stx {
                stpmax
            } else {
                stpmin
            };
            let stpq = s_p + (dp / (dp - dxv)) * (stx - s_p);
            if self.brackt {
                let mut v = if (stpc - s_p).abs() < (stpq - s_p).abs() {
                    stpc
                } else {
                    stpq
                };
                v = if s_p > stx {
                    py_min(s_p + P66 * (sty - s_p), v)
                } else {
                    py_max(s_p + P66 * (sty - s_p), v)
                };
                stpf = v;
            } else {
                let mut v = if (stpc - s_p).abs() > (stpq - s_p).abs() {
                    stpc
                } else {
                    stpq
                };
                v = py_min(stpmax, v);
                v = py_max(stpmin, v);
                stpf = v;
            }
        } else {
            // Case 4: lower value, same sign, the derivative does not decrease.
            stpf = if self.brackt {
                let theta = 3.0 * (fp - fyv) / (sty - s_p) + dyv + dp;
                let s = max3(theta, dyv, dp);
                let mut gamma = s * ((theta / s) * (theta / s) - (dyv / s) * (dp / s)).sqrt();
                if s_p > sty {
                    gamma = -gamma;
                }
                let p = (gamma - dp) + theta;
                let q = ((gamma - dp) + gamma) + dyv;
                let r = p / q;
                s_p + r * (sty - s_p)
            } else if s_p > stx {
                stpmax
            } else {
                stpmin
            };
        }
        // Update the interval.
        if fp > fxv {
            self.sty = s_p;
            *fy = fp;
            *dy = dp;
        } else {
            if sgnd < 0.0 {
                self.sty = stx;
                *fy = fxv;
                *dy = dxv;
            }
            self.stx = s_p;
            *fx = fp;
            *dx = dp;
        }
        *stp = stpf;
    }
}

/// Minimiser of the cubic through (a, fa) with slope fpa, (b, fb) and (c, fc).
fn cubic_min(a: f64, fa: f64, fpa: f64, b: f64, fb: f64, c: f64, fc: f64) -> Option<f64> {
    let cc = fpa;
    let db = b - a;
    let dc = c - a;
    let denom = (db * dc) * (db * dc) * (db - dc);
    if denom == 0.0 || !denom.is_finite() {
        return None;
    }
    let v1 = fb - fa - cc * db;
    let v2 = fc - fa - cc * dc;
    let aa = (dc * dc * v1 + (-(db * db)) * v2) / denom;
    let bb = ((-(dc * dc * dc)) * v1 + db * db * db * v2) / denom;
    let radical = bb * bb - 3.0 * aa * cc;
    if radical < 0.0 || aa == 0.0 {
        return None;
    }
    let xmin = a + (-bb + radical.sqrt()) / (3.0 * aa);
    xmin.is_finite().then_some(xmin)
}

/// Minimiser of the quadratic through (a, fa) with slope fpa and (b, fb).
fn quad_min(a: f64, fa: f64, fpa: f64, b: f64, fb: f64) -> Option<f64> {
    let db = b - a;
    if db == 0.0 {
        return None;
    }
    let bb = (fb - fa - fpa * db) / (db * db);
    if bb == 0.0 || !bb.is_finite() {
        return None;
    }
    let xmin = a - fpa / (2.0 * bb);
    xmin.is_finite().then_some(xmin)
}

/// Fallback line search (Nocedal & Wright, Algorithm 3.5 with zoom, as in scipy's
/// `line_search_wolfe2`), with the CG descent safeguard as extra acceptance condition.
fn line_search_wolfe2<F: FnMut(&[f64], &mut [f64]) -> f64>(
    line: &mut Line<'_, F>,
    phi0: f64,
    old_phi0: f64,
    derphi0: f64,
    gk: &[f64],
    delta: f64,
) -> Option<Step> {
    const AMAX: f64 = LS_STPMAX;
    const MAXITER: usize = 10;
    let mut alpha0 = 0.0;
    let mut alpha1 = initial_step(phi0, old_phi0, derphi0);
    alpha1 = py_min(alpha1, AMAX);
    let mut phi_a1 = line.eval(alpha1).0;
    let mut phi_a0 = phi0;
    let mut derphi_a0 = derphi0;
    for i in 0..MAXITER {
        if alpha1 == 0.0 || alpha0 > AMAX {
            return None;
        }
        if phi_a1 > phi0 + LS_C1 * alpha1 * derphi0 || (phi_a1 >= phi_a0 && i > 0) {
            return zoom(
                line, alpha0, alpha1, phi_a0, phi_a1, derphi_a0, phi0, derphi0, gk, delta,
            );
        }
        let derphi_a1 = line.eval(alpha1).1;
        if derphi_a1.abs() <= -LS_C2 * derphi0 {
            if let Some(step) = accept(line, alpha1, phi_a1, gk, delta) {
                return Some(step);
            }
        }
        if derphi_a1 >= 0.0 {
            return zoom(
                line, alpha1, alpha0, phi_a1, phi_a0, derphi_a1, phi0, derphi0, gk, delta,
            );
        }
        let alpha2 = py_min(2.0 * alpha1, AMAX);
        alpha0 = alpha1;
        alpha1 = alpha2;
        phi_a0 = phi_a1;
        phi_a1 = line.eval(alpha1).0;
        derphi_a0 = derphi_a1;
    }
    // Out of iterations: scipy still returns the last trial step (without the safeguard).
    let value = line.eval(alpha1).0;
    Some(pr_step(line, alpha1, value, gk, delta))
}

/// A Wolfe step, kept only if it passes the CG descent safeguard.
fn accept<F: FnMut(&[f64], &mut [f64]) -> f64>(
    line: &mut Line<'_, F>,
    alpha: f64,
    value: f64,
    gk: &[f64],
    delta: f64,
) -> Option<Step> {
    line.eval(alpha);
    let step = pr_step(line, alpha, value, gk, delta);
    if descent_ok(&step) {
        Some(step)
    } else {
        line.give_back(step);
        None
    }
}

/// The zoom phase of the Wolfe search between a_lo and a_hi.
#[allow(clippy::too_many_arguments)]
fn zoom<F: FnMut(&[f64], &mut [f64]) -> f64>(
    line: &mut Line<'_, F>,
    mut a_lo: f64,
    mut a_hi: f64,
    mut phi_lo: f64,
    mut phi_hi: f64,
    mut derphi_lo: f64,
    phi0: f64,
    derphi0: f64,
    gk: &[f64],
    delta: f64,
) -> Option<Step> {
    const MAXITER: usize = 10;
    const DELTA1: f64 = 0.2;
    const DELTA2: f64 = 0.1;
    let mut phi_rec = phi0;
    let mut a_rec = 0.0;
    let mut i = 0;
    loop {
        let dalpha = a_hi - a_lo;
        let (a, b) = if dalpha < 0.0 {
            (a_hi, a_lo)
        } else {
            (a_lo, a_hi)
        };
        let mut a_j = None;
        if i > 0 {
            let cchk = DELTA1 * dalpha;
            a_j = cubic_min(a_lo, phi_lo, derphi_lo, a_hi, phi_hi, a_rec, phi_rec)
                .filter(|&v| !(v > b - cchk || v < a + cchk));
        }
        let a_j = match a_j {
            Some(v) => v,
            None => {
                let qchk = DELTA2 * dalpha;
                match quad_min(a_lo, phi_lo, derphi_lo, a_hi, phi_hi) {
                    Some(v) if !(v > b - qchk || v < a + qchk) => v,
                    _ => a_lo + 0.5 * dalpha,
                }
            }
        };
        let phi_aj = line.eval(a_j).0;
        if phi_aj > phi0 + LS_C1 * a_j * derphi0 || phi_aj >= phi_lo {
            phi_rec = phi_hi;
            a_rec = a_hi;
            a_hi = a_j;
            phi_hi = phi_aj;
        } else {
            let derphi_aj = line.eval(a_j).1;
            if derphi_aj.abs() <= -LS_C2 * derphi0 {
                if let Some(step) = accept(line, a_j, phi_aj, gk, delta) {
                    return Some(step);
                }
            }
            if derphi_aj * (a_hi - a_lo) >= 0.0 {
                phi_rec = phi_hi;
                a_rec = a_hi;
                a_hi = a_lo;
                phi_hi = phi_lo;
            } else {
                phi_rec = phi_lo;
                a_rec = a_lo;
            }
            a_lo = a_j;
            phi_lo = phi_aj;
            derphi_lo = derphi_aj;
        }
        i += 1;
        if i > MAXITER {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{LabelKind, LabelSpec, LabelTypeRequest};

    /// ck_glad_toy (crowd-kit 1.4.2 `GLAD(n_iter=100, tol=0)`).
    const TRIPLES: [(&str, &str, &str); 24] = crate::aggregate::fixtures::TOY;

    /// (item, label, P(no), P(yes), β).
    const ITEMS: [(&str, &str, f64, f64, f64); 5] = [
        (
            "t1",
            "yes",
            0.11983052984196162,
            0.8801694701580384,
            0.6038266817072767,
        ),
        (
            "t2",
            "yes",
            0.0865229362941505,
            0.9134770637058497,
            0.4303175811474542,
        ),
        (
            "t3",
            "no",
            0.9988654820753191,
            0.001134517924680957,
            0.9614183973264027,
        ),
        (
            "t4",
            "yes",
            1.1458537586416252e-06,
            0.9999988541462413,
            1.459719677145052,
        ),
        (
            "t5",
            "no",
            0.9999998972066912,
            1.0279330887841536e-07,
            1.5936255853178167,
        ),
    ];

    const ALPHAS: [(&str, f64); 5] = [
        ("w1", -0.04583259557830119),
        ("w2", 1.1899650462493827),
        ("w3", 1.2110669731755095),
        ("w4", 0.338453745148373),
        ("w5", 0.4840809682512758),
    ];

    fn toy_table() -> AnnotationTable {
        AnnotationTable::from_triples(
            TRIPLES.iter().copied(),
            &LabelSpec {
                kind: LabelTypeRequest::Exactly(LabelKind::Category),
                categories: None,
            },
        )
        .unwrap()
    }

    fn run(table: &AnnotationTable, iterations: usize, tol: f64) -> Aggregation {
        let options = AggregateOptions {
            iterations: Some(iterations),
            tol: Some(tol),
            ..AggregateOptions::default()
        };
        glad(table, &options, &|_, _| {}).unwrap()
    }

    #[test]
    fn matches_crowdkit_on_toy() {
        let table = toy_table();
        let result = run(&table, 100, 0.0);
        let no = table.values().find("no").unwrap();
        let yes = table.values().find("yes").unwrap();
        let alphas = result.alphas.as_ref().unwrap();
        let betas = result.betas.as_ref().unwrap();
        for (name, label, p_no, p_yes, beta) in ITEMS {
            let item = table.items().get(name).unwrap();
            assert_eq!(
                result.labels[item as usize],
                table.values().find(label),
                "{name}"
            );
            let row = result.proba(item).unwrap();
            assert!((row[no as usize] - p_no).abs() < 1e-3, "{name}: {row:?}");
            assert!((row[yes as usize] - p_yes).abs() < 1e-3, "{name}: {row:?}");
            let b = betas[item as usize];
            assert!((b - beta).abs() < 1e-2, "{name}: β {b} vs {beta}");
        }
        for (name, alpha) in ALPHAS {
            let a = alphas[table.annotators().get(name).unwrap() as usize];
            assert!((a - alpha).abs() < 1e-2, "{name}: α {a} vs {alpha}");
        }
        // The loss reaches a bit-exact fixed point, so with tol = 0 all iterations run.
        assert_eq!(result.iterations, 100);
        assert_eq!(result.loss_history.len(), 100);
        assert_eq!(result.loss_history[99], result.loss_history[98]);
    }

    #[test]
    fn default_tolerance_stops_early_with_the_same_labels() {
        let table = toy_table();
        let options = AggregateOptions::default();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let result = glad(&table, &options, &|_, _| {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
        .unwrap();
        assert!(result.iterations < 100);
        assert_eq!(calls.into_inner(), result.iterations);
        for (name, label, ..) in ITEMS {
            let item = table.items().get(name).unwrap();
            assert_eq!(result.labels[item as usize], table.values().find(label));
        }
    }

    #[test]
    fn one_label_is_an_error() {
        let table = AnnotationTable::from_triples(
            [("t1", "w1", "a"), ("t2", "w2", "a")],
            &LabelSpec::default(),
        )
        .unwrap();
        let err = glad(&table, &AggregateOptions::default(), &|_, _| {}).unwrap_err();
        assert!(matches!(err, AggregateError::Invalid(_)));
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let table = toy_table();
        let mut model = Model::new(&table);
        let n = model.n_w + model.n_t;
        let params: Vec<f64> = (0..n).map(|i| 0.3 + 0.17 * i as f64).collect();
        let mut q = vec![0.0; table.n_items() * table.n_values()];
        model.e_step(&params, &mut q);
        let mut grad = vec![0.0; n];
        model.objective(&params, &mut grad);
        let mut scratch = vec![0.0; n];
        for i in 0..n {
            let h = 1e-6;
            let mut plus = params.clone();
            plus[i] += h;
            let mut minus = params.clone();
            minus[i] -= h;
            let numeric = (model.objective(&plus, &mut scratch)
                - model.objective(&minus, &mut scratch))
                / (2.0 * h);
            assert!(
                (numeric - grad[i]).abs() < 1e-5,
                "{i}: {numeric} vs {}",
                grad[i]
            );
        }
    }

    #[test]
    fn alpha_gradient_strategies_agree() {
        let table = toy_table();
        let n = table.n_annotators() + table.n_items();
        let params: Vec<f64> = (0..n).map(|i| 1.4 - 0.21 * i as f64).collect();
        let mut q = vec![0.0; table.n_items() * table.n_values()];
        let mut results = Vec::new();
        for per_chunk in [true, false] {
            let mut model = Model::with_alpha_sums(&table, per_chunk);
            model.e_step(&params, &mut q);
            let mut grad = vec![0.0; n];
            let value = model.objective(&params, &mut grad);
            results.push((value, grad));
        }
        assert!((results[0].0 - results[1].0).abs() < 1e-12);
        for (a, b) in results[0].1.iter().zip(&results[1].1) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }

    /// Items of 1 to 12 ratings over four labels from annotators of mixed skill, spread
    /// over several item chunks.
    fn mixed_table(n_items: usize, seed: u64) -> AnnotationTable {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        let labels = ["a", "b", "c", "d"];
        let mut rows: Vec<(String, String, &str)> = Vec::new();
        for item in 0..n_items {
            let truth = rng.random_range(0..4);
            for _ in 0..1 + (item * 7 + item / 3) % 12 {
                let annotator = rng.random_range(0..60usize);
                let skill = [0.9, 0.6, 0.3][annotator % 3];
                let label = if rng.random_bool(skill) {
                    truth
                } else {
                    rng.random_range(0..4)
                };
                rows.push((format!("i{item}"), format!("w{annotator}"), labels[label]));
            }
        }
        AnnotationTable::from_triples(
            rows.iter().map(|(i, a, l)| (i.as_str(), a.as_str(), *l)),
            &LabelSpec::default(),
        )
        .unwrap()
    }

    /// FNV-1a over the bits of every figure a fit reports.
    fn fingerprint(result: &Aggregation) -> u64 {
        let figures = result
            .loss_history
            .iter()
            .chain(result.alphas.iter().flatten())
            .chain(result.betas.iter().flatten());
        let Some(Posteriors::Dense(probas)) = &result.probas else {
            panic!("GLAD reports dense posteriors");
        };
        figures
            .chain(probas)
            .fold(0xcbf2_9ce4_8422_2325, |hash, x| {
                x.to_bits().to_le_bytes().iter().fold(hash, |h, &b| {
                    (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                })
            })
    }

    /// GLAD's stopping point hangs on the last bits of its loss, so its arithmetic is
    /// pinned: a change that makes it faster must leave every figure as it was. (The
    /// fingerprints were taken before the E-step, the objective and the optimiser's
    /// vector passes were reworked for speed.)
    #[test]
    fn every_reported_figure_is_pinned_to_the_bit() {
        let table = mixed_table(5000, 11);
        assert!(table.n_items() > 2 * ITEM_CHUNK);
        for (per_chunk, expected) in [(true, 9848406636455103067), (false, 361597406606395342)] {
            let model = Model::with_alpha_sums(&table, per_chunk);
            let options = AggregateOptions {
                iterations: Some(6),
                tol: Some(f64::NEG_INFINITY),
                ..AggregateOptions::default()
            };
            let result = fit(model, &options, &|_, _| {});
            assert_eq!(result.iterations, 6);
            assert_eq!(
                fingerprint(&result),
                expected,
                "per-chunk α sums: {per_chunk}"
            );
        }
    }

    #[test]
    fn cg_minimises_a_quadratic() {
        // f(x) = Σ c_i (x_i − i)², minimiser x_i = i; stops at max |∇f| ≤ 0.01.
        let mut f = |x: &[f64], g: &mut [f64]| {
            let mut v = 0.0;
            for (i, (xi, gi)) in x.iter().zip(g.iter_mut()).enumerate() {
                let c = 1.0 + i as f64;
                v += c * (xi - i as f64).powi(2);
                *gi = 2.0 * c * (xi - i as f64);
            }
            v
        };
        let end = minimize_cg(&mut f, vec![0.0; 4], None, &mut Pool::new(4));
        let mut g = vec![0.0; 4];
        let value = f(&end.x, &mut g);
        assert!(max_abs(&g) <= M_STEP_GTOL, "{:?} {g:?}", end.x);
        assert_eq!(
            end.value, value,
            "the value reported is f at the last iterate"
        );
        // Started with f and ∇f at x0 given, it takes the same path.
        let x0 = vec![3.0, -1.0, 0.5, 2.0];
        let mut g0 = vec![0.0; 4];
        let f0 = f(&x0, &mut g0);
        let given = minimize_cg(
            &mut f,
            x0.clone(),
            Some(Start {
                value: f0,
                gradient: g0,
            }),
            &mut Pool::new(4),
        );
        let computed = minimize_cg(&mut f, x0, None, &mut Pool::new(4));
        assert_eq!(given.x, computed.x);
        assert_eq!(given.value, computed.value);
    }
}
