//! M-MSR (Ma & Olshevsky 2020, "Adversarial crowdsourcing through robust rank-one
//! matrix completion"): annotator skills from a robust rank-one completion of the
//! annotator covariance, then a skill-weighted vote.
//!
//! Semantics follow crowd-kit 1.4 (`crowdkit.aggregation.MMSR`):
//!
//! * for a repeated (annotator, item) pair only the last rating counts in the covariance;
//! * C[i][j] = share of agreeing shared items, rescaled as `C·M/(M−1) − 1/(M−1)` (M = number
//!   of labels present); unobserved pairs and the diagonal are `−1/(M−1)`;
//! * F = ⌊min_j #partners(j) / 2⌋ − 1, the trimmed-mean updates of `v` then `u` with
//!   crowd-kit's trimming (including its `F = −1` slicing and the lone-zero rule), stopping
//!   when ‖u vᵀ − u' v'ᵀ‖_F < tol (default 1e-10, at most 10000 iterations);
//! * `u = v =` numpy `RandomState(seed).random_sample(W)` (our MT19937 port), so the
//!   fixed point is the one crowd-kit reaches;
//! * the sign of each annotator comes from the eigenvector of the smallest eigenvalue of
//!   the random-walk matrix of crowd-kit's signed pair graph; skills are
//!   `ln(p(M−1)/(1−p))` of the clipped, rescaled values;
//! * `probas` are the normalised weighted-vote scores in sorted label order (they can be
//!   negative, and a row with a negative total flips sign, so its argmax is the label with
//!   the lowest raw score, as in crowd-kit).
//!
//! Scale and differences:
//!
//! * Nothing of size annotators × items is built. Observed annotator pairs are kept in a
//!   sparse symmetric list (built item by item, per annotator in parallel); the
//!   annotators × annotators matrices are implicit (all-ones block plus sparse corrections).
//! * The eigenproblem (size annotators + positive pairs) is solved densely (Jacobi) when
//!   it has at most [`DENSE_EIGEN_LIMIT`] nodes, exactly the matrix crowd-kit builds.
//!   Above that the pair nodes are eliminated (Schur complement): the smallest eigenvalue
//!   μ of the normalised matrix is the root of λ_min(T(μ)) = μ with
//!   T(μ) = N₁₁ + N₁₂N₂₁/μ an annotators × annotators operator, found by safeguarded Newton
//!   with a restarted Lanczos inner solver. Memory stays O(annotators + observed pairs).
//! * A row of the covariance whose sum is zero up to 1e-12·W is treated as crowd-kit's
//!   exact-zero row (skill sign 0).
//! * Fewer than two distinct labels is an error (crowd-kit divides by zero).
//! * An item whose weighted scores sum to exactly 0 gets all-zero scores and is tied
//!   (crowd-kit gives NaN); the tie rule decides.
//! * The loss ‖u vᵀ − u' v'ᵀ‖_F is computed densely for up to 256 annotators and in the
//!   cancellation-free factored form `‖du‖²‖v‖² + 2(du·u')(dv·v) + ‖u'‖²‖dv‖²` above.
//! * Each half-step keeps every annotator's partner list ordered by the previous values
//!   (two working copies of the pair lists during the iteration), so the per-iteration
//!   sort is nearly linear. On 5M ratings (1M items × 5, 5000 annotators, 13.8M observed
//!   pairs: `peer_bench.py`'s n1m_k10_r5) an iteration takes ~40 ms on two cores and the
//!   fit reaches tol = 1e-10 after 13 iterations (4.5 s, 0.4 GiB). Data whose loss levels
//!   off above tol (it is a Frobenius norm over annotators², so it grows with their number)
//!   run all 10000 iterations, as in crowd-kit.
//!
//! All reductions run in a fixed order, so results do not depend on the thread count.

use rayon::prelude::*;

use super::mace::{Mt19937, numpy_seed};
use super::majority::sparse_vote;
use super::{AggregateError, AggregateOptions, Aggregation, Method};
use crate::table::AnnotationTable;

/// Largest eigenproblem (annotators + positive pairs) solved densely.
pub const DENSE_EIGEN_LIMIT: usize = 200;
const DEFAULT_ITERATIONS: usize = 10_000;
const DEFAULT_TOL: f64 = 1e-10;

/// Observed annotator pairs, symmetric CSR with sorted neighbours; `cov` is the rescaled
/// covariance C[a][b].
struct Pairs {
    offsets: Vec<usize>,
    neighbours: Vec<u32>,
    cov: Vec<f64>,
}

impl Pairs {
    fn row(&self, a: usize) -> (&[u32], &[f64]) {
        let range = self.offsets[a]..self.offsets[a + 1];
        (&self.neighbours[range.clone()], &self.cov[range])
    }
    fn degree(&self, a: usize) -> usize {
        self.offsets[a + 1] - self.offsets[a]
    }
}

fn observed_pairs(table: &AnnotationTable, m: f64) -> Pairs {
    let n_annotators = table.n_annotators();
    // The annotator's last rating of each item (its rows of one item are adjacent and in
    // input order).
    let mut is_last = vec![false; table.n_rows()];
    for a in 0..n_annotators as u32 {
        let items = table.annotator_items(a);
        let rows = table.annotator_rows(a);
        for i in 0..items.len() {
            if i + 1 == items.len() || items[i + 1] != items[i] {
                is_last[rows[i] as usize] = true;
            }
        }
    }
    let lists: Vec<Vec<(u32, f64)>> = (0..n_annotators as u32)
        .into_par_iter()
        .map_init(
            || {
                (
                    vec![0u32; n_annotators],
                    vec![0u32; n_annotators],
                    Vec::new(),
                )
            },
            |(count, agree, touched), a| {
                let items = table.annotator_items(a);
                let rows = table.annotator_rows(a);
                for (&item, &row) in items.iter().zip(rows) {
                    if !is_last[row as usize] {
                        continue;
                    }
                    let mine = table.row_value(row);
                    for r in table.item_rows(item) {
                        let b = table.row_annotator(r as u32);
                        if b == a || !is_last[r] {
                            continue;
                        }
                        let b = b as usize;
                        if count[b] == 0 {
                            touched.push(b as u32);
                        }
                        count[b] += 1;
                        if table.row_value(r as u32) == mine {
                            agree[b] += 1;
                        }
                    }
                }
                touched.sort_unstable();
                let out = touched
                    .iter()
                    .map(|&b| {
                        let b_ = b as usize;
                        let share = f64::from(agree[b_]) / f64::from(count[b_]);
                        count[b_] = 0;
                        agree[b_] = 0;
                        (b, share * m / (m - 1.0) - 1.0 / (m - 1.0))
                    })
                    .collect();
                touched.clear();
                out
            },
        )
        .collect();
    let mut offsets = Vec::with_capacity(n_annotators + 1);
    offsets.push(0);
    let total: usize = lists.iter().map(Vec::len).sum();
    let mut neighbours = Vec::with_capacity(total);
    let mut cov = Vec::with_capacity(total);
    for list in lists {
        for (b, c) in list {
            neighbours.push(b);
            cov.push(c);
        }
        offsets.push(neighbours.len());
    }
    Pairs {
        offsets,
        neighbours,
        cov,
    }
}

/// crowd-kit's trimming on ascending `y`: drop up to F values below `a` and F above `a`
/// (with Python slicing for F = −1), replace a lone 0 by 1/√T; returns the mean of what
/// is left (summed in ascending order), if anything.
fn trimmed_mean(y: &[f64], f: i64, a: f64, n_items: f64) -> Option<f64> {
    let n = y.len();
    let below = y.partition_point(|&x| x < a);
    let lo = if (below as i64) < f {
        below
    } else if f < 0 {
        n.saturating_sub(1)
    } else {
        (f as usize).min(n)
    };
    let kept = &y[lo..];
    let not_above = kept.partition_point(|&x| x <= a);
    let above = kept.len() - not_above;
    let hi = if (above as i64) < f {
        not_above
    } else if f > 0 {
        kept.len().saturating_sub(f as usize)
    } else {
        kept.len()
    };
    let kept = &kept[..hi];
    match kept {
        [] => None,
        [x] if *x == 0.0 => Some(1.0 / n_items.sqrt()),
        _ => Some(kept.iter().sum::<f64>() / kept.len() as f64),
    }
}

/// Each annotator's partners and C values (rows as in [`Pairs`]), kept per row in the
/// order of the values of the latest half-step that used them. Values move little between
/// iterations, so re-sorting from that order is nearly linear and reads are sequential.
struct SortedRows {
    partner: Vec<u32>,
    cov: Vec<f64>,
}

impl SortedRows {
    fn rows_mut<'a>(&'a mut self, offsets: &[usize]) -> Vec<(&'a mut [u32], &'a mut [f64])> {
        let mut out = Vec::with_capacity(offsets.len().saturating_sub(1));
        let (mut rest_p, mut rest_c) = (&mut self.partner[..], &mut self.cov[..]);
        for w in offsets.windows(2) {
            let (head_p, tail_p) = rest_p.split_at_mut(w[1] - w[0]);
            let (head_c, tail_c) = rest_c.split_at_mut(w[1] - w[0]);
            out.push((head_p, head_c));
            rest_p = tail_p;
            rest_c = tail_c;
        }
        out
    }
}

/// One half-step of the iteration: for every annotator j, the trimmed mean of
/// |C[i][j]| / other[i] over its partners i (or `own[j]` when nothing is left). Each row is
/// insertion-sorted in place from its previous order; a full sort takes over when that
/// stops being nearly linear.
fn trimmed_update(
    offsets: &[usize],
    rows: &mut SortedRows,
    own: &[f64],
    other: &[f64],
    f: i64,
    n_items: f64,
) -> Vec<f64> {
    rows.rows_mut(offsets)
        .into_par_iter()
        .enumerate()
        .with_min_len(16)
        .map_init(
            || (Vec::new(), Vec::new()),
            |(values, scratch): &mut (Vec<f64>, Vec<(f64, u32, f64)>), (j, (partner, cov))| {
                values.clear();
                for (&i, &c) in partner.iter().zip(cov.iter()) {
                    values.push(c.abs() / other[i as usize]);
                }
                let cap = 8 * values.len() + 64;
                let mut moves = 0;
                for k in 1..values.len() {
                    if values[k - 1].total_cmp(&values[k]).is_le() {
                        continue;
                    }
                    let (value, i, c) = (values[k], partner[k], cov[k]);
                    let mut m = k;
                    while m > 0 && values[m - 1].total_cmp(&value).is_gt() {
                        values[m] = values[m - 1];
                        partner[m] = partner[m - 1];
                        cov[m] = cov[m - 1];
                        m -= 1;
                    }
                    values[m] = value;
                    partner[m] = i;
                    cov[m] = c;
                    moves += k - m;
                    if moves > cap {
                        scratch.clear();
                        scratch.extend(
                            values
                                .iter()
                                .zip(partner.iter())
                                .zip(cov.iter())
                                .map(|((&v, &i), &c)| (v, i, c)),
                        );
                        scratch.sort_unstable_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
                        for (k, &(v, i, c)) in scratch.iter().enumerate() {
                            values[k] = v;
                            partner[k] = i;
                            cov[k] = c;
                        }
                        break;
                    }
                }
                trimmed_mean(values, f, own[j], n_items).unwrap_or(own[j])
            },
        )
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// ‖u vᵀ − up vpᵀ‖_F.
fn outer_difference(u: &[f64], v: &[f64], up: &[f64], vp: &[f64]) -> f64 {
    if u.len() <= 256 {
        let mut sum = 0.0;
        for (ui, upi) in u.iter().zip(up) {
            for (vj, vpj) in v.iter().zip(vp) {
                let d = ui * vj - upi * vpj;
                sum += d * d;
            }
        }
        return sum.sqrt();
    }
    let du: Vec<f64> = u.iter().zip(up).map(|(a, b)| a - b).collect();
    let dv: Vec<f64> = v.iter().zip(vp).map(|(a, b)| a - b).collect();
    let squared =
        dot(&du, &du) * dot(v, v) + 2.0 * dot(&du, up) * dot(&dv, v) + dot(up, up) * dot(&dv, &dv);
    squared.max(0.0).sqrt()
}

fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

// ---------------------------------------------------------------------------
// Sign determination
// ---------------------------------------------------------------------------

/// crowd-kit's signed pair graph over the valid annotators, in local indices: node i is
/// joined to every valid j (itself included) except those with C[i][j] ≥ 0, and to one
/// extra node per pair with C[i][j] > 0.
struct SignGraph {
    n: usize,
    /// CSR of the partners with C ≥ 0 (excluded from the all-ones block), and whether C > 0.
    offsets: Vec<usize>,
    partners: Vec<u32>,
    positive: Vec<bool>,
    n_positive: Vec<usize>,
    /// D^{-1/2} of the annotator nodes.
    inv_sqrt_degree: Vec<f64>,
    n_pairs: usize,
}

impl SignGraph {
    fn new(pairs: &Pairs, valid: &[Option<u32>], n: usize) -> Self {
        let mut offsets = vec![0usize];
        let mut partners = Vec::new();
        let mut positive = Vec::new();
        let mut n_positive = Vec::with_capacity(n);
        for (a, local) in valid.iter().enumerate() {
            if local.is_none() {
                continue;
            }
            let (neighbours, cov) = pairs.row(a);
            let mut count = 0;
            for (&b, &c) in neighbours.iter().zip(cov) {
                if let Some(lb) = valid[b as usize] {
                    if c >= 0.0 {
                        partners.push(lb);
                        positive.push(c > 0.0);
                        count += usize::from(c > 0.0);
                    }
                }
            }
            n_positive.push(count);
            offsets.push(partners.len());
        }
        let inv_sqrt_degree = (0..n)
            .map(|i| {
                let excluded = offsets[i + 1] - offsets[i];
                let degree = n - excluded + n_positive[i];
                1.0 / (degree as f64).sqrt()
            })
            .collect();
        let n_pairs = n_positive.iter().sum::<usize>() / 2;
        Self {
            n,
            offsets,
            partners,
            positive,
            n_positive,
            inv_sqrt_degree,
            n_pairs,
        }
    }

    /// The full normalised matrix D^{-1/2} A D^{-1/2} (annotators, then pairs), dense.
    fn dense(&self) -> (usize, Vec<f64>) {
        let n = self.n;
        let size = n + self.n_pairs;
        let mut a = vec![0.0; size * size];
        for i in 0..n {
            for j in 0..n {
                a[i * size + j] = 1.0;
            }
        }
        let mut next_pair = n;
        let mut degree = vec![0.0; size];
        for i in 0..n {
            for e in self.offsets[i]..self.offsets[i + 1] {
                let j = self.partners[e] as usize;
                a[i * size + j] = 0.0;
                if self.positive[e] && i < j {
                    let p = next_pair;
                    next_pair += 1;
                    for node in [i, j] {
                        a[node * size + p] = 1.0;
                        a[p * size + node] = 1.0;
                    }
                }
            }
        }
        for (r, d) in degree.iter_mut().enumerate() {
            *d = a[r * size..(r + 1) * size].iter().sum::<f64>();
        }
        for r in 0..size {
            for c in 0..size {
                a[r * size + c] /= (degree[r] * degree[c]).sqrt();
            }
        }
        (size, a)
    }

    /// out = D^{-1/2} [(J − P) z + s·(Deg⁺ + Pos) z] with z = D^{-1/2} x: T(μ) for
    /// s = 1/(2μ) (the Schur complement of the pair nodes); `jones = false` drops the
    /// (J − P) part, and with s = 1/2 gives M = N₁₂N₂₁.
    fn apply(&self, x: &[f64], out: &mut [f64], s: f64, jones: bool) {
        let z: Vec<f64> = x
            .iter()
            .zip(&self.inv_sqrt_degree)
            .map(|(a, b)| a * b)
            .collect();
        let total: f64 = if jones { z.iter().sum() } else { 0.0 };
        out.par_iter_mut()
            .with_min_len(64)
            .enumerate()
            .for_each(|(i, o)| {
                let mut excluded = 0.0;
                let mut pos = self.n_positive[i] as f64 * z[i];
                for e in self.offsets[i]..self.offsets[i + 1] {
                    let zj = z[self.partners[e] as usize];
                    excluded += zj;
                    if self.positive[e] {
                        pos += zj;
                    }
                }
                let base = if jones { total - excluded } else { 0.0 };
                *o = self.inv_sqrt_degree[i] * (base + s * pos);
            });
    }
}

/// Cyclic Jacobi eigen-decomposition of a dense symmetric matrix (row-major, n × n).
/// Returns eigenvalues and eigenvectors (column c of the row-major `vectors`).
fn jacobi_eigen(mut a: Vec<f64>, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let scale: f64 = a.iter().map(|x| x * x).sum::<f64>().max(f64::MIN_POSITIVE);
    for _sweep in 0..100 {
        let mut off = 0.0;
        for p in 0..n {
            for q in p + 1..n {
                off += a[p * n + q] * a[p * n + q];
            }
        }
        if off <= 1e-32 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let akp = a[k * n + p];
                    let akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let apk = a[p * n + k];
                    let aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

/// Index of the smallest value (first one on ties).
fn argmin(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in values.iter().enumerate() {
        if x < values[best] {
            best = i;
        }
    }
    best
}

/// Smallest eigenpair of a symmetric operator by explicitly restarted Lanczos with full
/// reorthogonalisation. Returns (Rayleigh quotient, unit vector).
fn lanczos_smallest(
    n: usize,
    op: &dyn Fn(&[f64], &mut [f64]),
    start: &[f64],
    tol: f64,
) -> (f64, Vec<f64>) {
    let steps = n.min(80);
    let mut x = start.to_vec();
    let nx = norm(&x);
    x.iter_mut().for_each(|v| *v /= nx);
    let mut ax = vec![0.0; n];
    let mut theta = 0.0;
    for _cycle in 0..500 {
        let mut basis: Vec<Vec<f64>> = vec![x.clone()];
        let mut alphas = Vec::with_capacity(steps);
        let mut betas: Vec<f64> = Vec::with_capacity(steps);
        let mut w = vec![0.0; n];
        for j in 0..steps {
            op(&basis[j], &mut w);
            let alpha = dot(&basis[j], &w);
            alphas.push(alpha);
            for _ in 0..2 {
                for b in &basis {
                    let c = dot(b, &w);
                    w.iter_mut().zip(b).for_each(|(wi, bi)| *wi -= c * bi);
                }
            }
            let beta = norm(&w);
            if j + 1 == steps || beta <= 1e-12 * alpha.abs().max(1e-3) {
                break;
            }
            betas.push(beta);
            basis.push(w.iter().map(|v| v / beta).collect());
        }
        let m = alphas.len();
        let mut t = vec![0.0; m * m];
        for i in 0..m {
            t[i * m + i] = alphas[i];
            if i + 1 < m {
                t[i * m + i + 1] = betas[i];
                t[(i + 1) * m + i] = betas[i];
            }
        }
        let (values, vectors) = jacobi_eigen(t, m);
        let c = argmin(&values);
        x.iter_mut().for_each(|v| *v = 0.0);
        for (i, b) in basis.iter().enumerate().take(m) {
            let s = vectors[i * m + c];
            x.iter_mut().zip(b).for_each(|(xi, bi)| *xi += s * bi);
        }
        let nx = norm(&x);
        x.iter_mut().for_each(|v| *v /= nx);
        op(&x, &mut ax);
        theta = dot(&x, &ax);
        let residual = ax
            .iter()
            .zip(&x)
            .map(|(a, b)| (a - theta * b).powi(2))
            .sum::<f64>()
            .sqrt();
        if residual <= tol * theta.abs().max(1.0) {
            break;
        }
    }
    (theta, x)
}

/// Eigenvector (annotator part) of the smallest eigenvalue of the normalised sign graph,
/// densely or through the Schur complement. Returns (eigenvalue, vector).
fn smallest_eigenvector(graph: &SignGraph, seed: u32, force_sparse: bool) -> (f64, Vec<f64>) {
    let n = graph.n;
    if n + graph.n_pairs <= DENSE_EIGEN_LIMIT && !force_sparse {
        let (size, a) = graph.dense();
        let (values, vectors) = jacobi_eigen(a, size);
        let c = argmin(&values);
        return (values[c], (0..n).map(|i| vectors[i * size + c]).collect());
    }
    let mut rng = Mt19937::new(seed);
    let start: Vec<f64> = (0..n).map(|_| rng.random_sample() - 0.5).collect();
    let tol = 1e-12;
    if graph.n_pairs == 0 {
        let op = |x: &[f64], out: &mut [f64]| graph.apply(x, out, 0.0, true);
        return lanczos_smallest(n, &op, &start, tol);
    }
    // Safeguarded Newton on h(μ) = λ_min(T(μ)) − μ, decreasing on (−1, 0) with h(−1) ≥ 0.
    let (mut lo, mut hi) = (-1.0f64, 0.0f64);
    let mut mu = -0.5;
    let mut x = start;
    let mut mx = vec![0.0; n];
    for _ in 0..200 {
        let s = 0.5 / mu;
        let op = |v: &[f64], out: &mut [f64]| graph.apply(v, out, s, true);
        let (lambda, vector) = lanczos_smallest(n, &op, &x, tol);
        x = vector;
        let h = lambda - mu;
        if h > 0.0 {
            lo = mu;
        } else {
            hi = mu;
        }
        if h.abs() <= 1e-13 {
            break;
        }
        graph.apply(&x, &mut mx, 0.5, false);
        let slope = -dot(&x, &mx) / (mu * mu) - 1.0;
        let mut next = mu - h / slope;
        if !(next > lo && next < hi) {
            next = 0.5 * (lo + hi);
        }
        if (next - mu).abs() <= 1e-15 {
            break;
        }
        mu = next;
    }
    (mu, x)
}

/// M-MSR.
pub fn mmsr(
    table: &AnnotationTable,
    options: &AggregateOptions,
) -> Result<Aggregation, AggregateError> {
    if table.n_rows() == 0 {
        return Err(AggregateError::Invalid("no annotations".into()));
    }
    let n_items = table.n_items() as f64;
    let n_annotators = table.n_annotators();
    let mut present = vec![false; table.n_values()];
    for item in 0..table.n_items() as u32 {
        for &v in table.item_values(item) {
            present[v as usize] = true;
        }
    }
    let n_labels = present.iter().filter(|&&p| p).count();
    if n_labels < 2 {
        return Err(AggregateError::Invalid(format!(
            "M-MSR needs at least 2 distinct labels; the data has {n_labels}"
        )));
    }
    let m = n_labels as f64;
    let mut pairs = observed_pairs(table, m);
    let sparsity = (0..n_annotators)
        .map(|a| pairs.degree(a))
        .min()
        .unwrap_or(0);
    let f = (sparsity / 2) as i64 - 1;

    let mut rng = Mt19937::new(numpy_seed(options.seed));
    let mut u: Vec<f64> = (0..n_annotators).map(|_| rng.random_sample()).collect();
    let mut v = u.clone();
    let n_iter = options.iterations.unwrap_or(DEFAULT_ITERATIONS);
    let tol = options.tol.unwrap_or(DEFAULT_TOL);
    let mut history = Vec::new();
    // Two working copies (the v and u half-steps order their values differently); the
    // pair lists themselves become the first and are restored (sorted by partner) after.
    let mut v_rows = SortedRows {
        partner: std::mem::take(&mut pairs.neighbours),
        cov: std::mem::take(&mut pairs.cov),
    };
    let mut u_rows = SortedRows {
        partner: v_rows.partner.clone(),
        cov: v_rows.cov.clone(),
    };
    for _ in 0..n_iter {
        let new_v = trimmed_update(&pairs.offsets, &mut v_rows, &v, &u, f, n_items);
        let new_u = trimmed_update(&pairs.offsets, &mut u_rows, &u, &new_v, f, n_items);
        let loss = outer_difference(&new_u, &new_v, &u, &v);
        u = new_u;
        v = new_v;
        history.push(loss);
        if loss < tol {
            break;
        }
    }

    drop(u_rows);
    v_rows
        .rows_mut(&pairs.offsets)
        .into_par_iter()
        .for_each_init(Vec::new, |scratch: &mut Vec<(u32, f64)>, (partner, cov)| {
            scratch.clear();
            scratch.extend(partner.iter().copied().zip(cov.iter().copied()));
            scratch.sort_unstable_by_key(|x| x.0);
            for (k, &(i, c)) in scratch.iter().enumerate() {
                partner[k] = i;
                cov[k] = c;
            }
        });
    pairs.neighbours = v_rows.partner;
    pairs.cov = v_rows.cov;
    let scale = (norm(&u) / norm(&v)).sqrt();
    let s_abs: Vec<f64> = u.iter().map(|x| x / scale).collect();

    // Rows of C summing to 0 are left out (unobserved entries and the diagonal are −1/(M−1)).
    let negative = -1.0 / (m - 1.0);
    let mut valid = vec![None; n_annotators];
    let mut n_valid = 0u32;
    for (a, slot) in valid.iter_mut().enumerate() {
        let (_, cov) = pairs.row(a);
        let sum = cov.iter().sum::<f64>() + (n_annotators - cov.len()) as f64 * negative;
        if sum.abs() > 1e-12 * n_annotators as f64 {
            *slot = Some(n_valid);
            n_valid += 1;
        }
    }
    let mut s_sign = vec![0.0; n_annotators];
    if n_valid > 0 {
        let graph = SignGraph::new(&pairs, &valid, n_valid as usize);
        let (_, vector) = smallest_eigenvector(&graph, numpy_seed(options.seed), false);
        let signs: Vec<f64> = vector.iter().map(|&x| sign(x)).collect();
        let orientation = sign(signs.iter().sum());
        for (a, local) in valid.iter().enumerate() {
            if let Some(l) = local {
                s_sign[a] = orientation * s_abs[a] * signs[*l as usize];
            }
        }
    }
    let skills: Vec<f64> = s_sign
        .iter()
        .map(|&s| {
            let x = s.min(1.0 - 1.0 / n_items.sqrt());
            let x = x.max(-1.0 / (m - 1.0) + 1.0 / n_items.sqrt());
            let p = x * (m - 1.0) / m + 1.0 / m;
            (p * (m - 1.0) / (1.0 - p)).ln()
        })
        .collect();

    let mut result = Aggregation::new(Method::Mmsr, table);
    let (shares, labels, tied) = sparse_vote(table, Some(&skills), options);
    result.probas = Some(shares);
    result.labels = labels;
    result.tied = tied;
    result.skills = Some(skills);
    result.iterations = history.len();
    result.loss_history = history;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::LabelSpec;

    const SIMPLE: [(&str, &str, &str); 33] = crate::aggregate::fixtures::SIMPLE;

    fn item_id(table: &AnnotationTable, name: &str) -> usize {
        (0..table.n_items() as u32)
            .find(|&i| table.item_name(i) == name)
            .unwrap() as usize
    }

    fn annotator_id(table: &AnnotationTable, name: &str) -> usize {
        (0..table.n_annotators() as u32)
            .find(|&a| table.annotator_name(a) == name)
            .unwrap() as usize
    }

    /// ck_mmsr_simple: MMSR() defaults; labels exact, skills and scores within 1e-6.
    #[test]
    fn ck_mmsr_simple() {
        let table = AnnotationTable::from_triples(SIMPLE, &LabelSpec::default()).unwrap();
        let result = mmsr(&table, &AggregateOptions::default()).unwrap();
        let skills = [
            ("bde3b214b06c1efa6cb1bc6284dc72d2", 2.0131458750666567),
            ("b17c3301ad2ccbb798716fdd405d16e8", 2.0131458750666567),
            ("a452e450f913cfa987cad58d50393718", 2.0131458750666567),
            ("0f65edea0a6dc7b9acba1dea313bbb3d", 2.0131458750666567),
            ("0c3eb7d5fcc414db137c4180a654c06e", -0.6268515139467665),
            ("e563e2fb32fce9f00123a65a1bc78c55", 1.8527467194291514),
        ];
        let got = result.skills.as_ref().unwrap();
        for (name, expected) in skills {
            let a = annotator_id(&table, name);
            assert!(
                (got[a] - expected).abs() < 1e-6,
                "{name}: {} vs {expected}",
                got[a]
            );
        }
        // (item suffix, label, scores for chicken, goose, parrot)
        let expected = [
            (
                "ee4",
                "chicken",
                [1.1843984510373275, 0.0, -0.18439845103732766],
            ),
            (
                "ee8",
                "chicken",
                [0.7652428480475112, 0.23475715195248875, 0.0],
            ),
            (
                "eec",
                "goose",
                [0.0, 1.1158136796463138, -0.11581367964631392],
            ),
            ("efb", "parrot", [0.0, 0.0, 1.0]),
            (
                "efd",
                "chicken",
                [0.6215252678195158, 0.5720046993399346, -0.19352996715945034],
            ),
            ("f02", "parrot", [0.0, 0.0, 1.0]),
            ("f03", "goose", [0.0, 1.0, 0.0]),
            (
                "f05",
                "goose",
                [0.0, 1.1843984510373275, -0.18439845103732766],
            ),
            ("f07", "parrot", [0.0, 0.0, 1.0]),
            ("f08", "parrot", [0.0, 0.0, 1.0]),
        ];
        assert_eq!(table.values().names(), ["chicken", "goose", "parrot"]);
        for (suffix, label, scores) in expected {
            let item = item_id(
                &table,
                &format!("1231239876--5fac0d234ffb2f3b00893{suffix}"),
            );
            assert_eq!(
                result.labels[item].map(|v| table.values().name(v)),
                Some(label),
                "{suffix}"
            );
            let row = result.proba(item as u32).unwrap();
            for (got, want) in row.iter().zip(scores) {
                assert!((got - want).abs() < 1e-6, "{suffix}: {row:?} vs {scores:?}");
            }
        }
        assert_eq!(result.iterations, 28);
    }

    /// crowd-kit MMSR() on ck_dawid_skene_toy (from the clean-room numpy port).
    #[test]
    fn dawid_skene_toy_skills() {
        let triples = crate::aggregate::fixtures::TOY;
        let table = AnnotationTable::from_triples(triples, &LabelSpec::default()).unwrap();
        let result = mmsr(&table, &AggregateOptions::default()).unwrap();
        let expected = [
            -0.9486439852160969,
            0.9764628672747041,
            1.2428113335479982,
            0.948643985216097,
            0.9764628672747041,
        ];
        let got = result.skills.as_ref().unwrap();
        for (w, e) in expected.iter().enumerate() {
            let a = annotator_id(&table, &format!("w{}", w + 1));
            assert!((got[a] - e).abs() < 1e-6, "w{}: {} vs {e}", w + 1, got[a]);
        }
        assert_eq!(result.iterations, 4);
    }

    fn trim(mut y: Vec<f64>, f: i64, a: f64) -> Option<f64> {
        y.sort_by(f64::total_cmp);
        trimmed_mean(&y, f, a, 4.0)
    }

    #[test]
    fn trimming_follows_python_slicing() {
        // F = −1 keeps only the largest value.
        assert_eq!(trim(vec![3.0, 1.0, 2.0], -1, 0.0), Some(3.0));
        // F = 0 keeps everything.
        assert_eq!(trim(vec![3.0, 1.0, 2.0], 0, 0.0), Some(2.0));
        // F = 1: one value below and one above a are dropped.
        assert_eq!(trim(vec![1.0, 2.0, 3.0, 10.0], 1, 2.5), Some(2.5));
        // Fewer than F below a: keep those ≥ a, then drop F from the top.
        assert_eq!(trim(vec![1.0, 5.0, 6.0, 7.0], 2, 4.0), Some(5.0));
        // Fewer than F above a: keep those ≤ a.
        assert_eq!(trim(vec![1.0, 2.0, 3.0, 9.0], 2, 5.0), Some(3.0));
        // A lone zero becomes 1/√T (T = 4).
        assert_eq!(trim(vec![0.0], 0, 1.0), Some(0.5));
        assert_eq!(trim(Vec::new(), 1, 1.0), None);
    }

    /// Random instances: the Schur-complement solver finds the same smallest eigenvalue
    /// and eigenvector signs as the dense Jacobi solver on crowd-kit's full matrix.
    #[test]
    fn schur_solver_matches_dense() {
        use rand::{Rng, SeedableRng};
        for seed in 0..12u64 {
            let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
            let n_annotators = 6 + (seed as usize % 9);
            let n_items = 40;
            let accuracy: Vec<f64> = (0..n_annotators)
                .map(|_| rng.random_range(0.1..0.95))
                .collect();
            let names: Vec<String> = (0..n_annotators).map(|a| format!("a{a}")).collect();
            let items: Vec<String> = (0..n_items).map(|i| format!("i{i}")).collect();
            let labels = ["x", "y", "z"];
            let mut rows = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let truth = i % 3;
                for (a, name) in names.iter().enumerate() {
                    if rng.random_bool(0.5) {
                        let label = if rng.random_bool(accuracy[a]) {
                            truth
                        } else {
                            rng.random_range(0..3)
                        };
                        rows.push((item.as_str(), name.as_str(), labels[label]));
                    }
                }
            }
            let table = AnnotationTable::from_triples(rows, &LabelSpec::default()).unwrap();
            let pairs = observed_pairs(&table, table.n_values() as f64);
            let n = table.n_annotators();
            let valid: Vec<Option<u32>> = (0..n as u32).map(Some).collect();
            let graph = SignGraph::new(&pairs, &valid, n);
            assert!(n + graph.n_pairs <= DENSE_EIGEN_LIMIT);
            let (dense_value, dense) = smallest_eigenvector(&graph, 0, false);
            let (sparse_value, sparse) = smallest_eigenvector(&graph, 0, true);
            assert!(
                (dense_value - sparse_value).abs() < 1e-9,
                "seed {seed}: {dense_value} vs {sparse_value}"
            );
            let unit = |v: Vec<f64>| {
                let n = norm(&v);
                v.into_iter().map(|x| x / n).collect::<Vec<f64>>()
            };
            let (dense, sparse) = (unit(dense), unit(sparse));
            let flip = sign(dot(&dense, &sparse));
            for (d, s) in dense.iter().zip(&sparse) {
                assert!(
                    (d - flip * s).abs() < 1e-6,
                    "seed {seed}: {dense:?} vs {sparse:?}"
                );
            }
        }
    }

    #[test]
    fn single_label_is_an_error() {
        let table = AnnotationTable::from_triples(
            [("i", "a", "x"), ("i", "b", "x")],
            &LabelSpec::default(),
        )
        .unwrap();
        assert!(mmsr(&table, &AggregateOptions::default()).is_err());
    }

    #[test]
    fn results_do_not_depend_on_thread_count() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(9);
        let rows: Vec<(String, String, &str)> = (0..4000)
            .map(|r| {
                let item = format!("i{}", r / 5);
                let annotator = format!("a{}", rng.random_range(0..60));
                let label = ["x", "y", "z"][rng.random_range(0..3)];
                (item, annotator, label)
            })
            .collect();
        let table = AnnotationTable::from_triples(
            rows.iter().map(|(i, a, l)| (i.as_str(), a.as_str(), *l)),
            &LabelSpec::default(),
        )
        .unwrap();
        let options = AggregateOptions {
            iterations: Some(200),
            ..Default::default()
        };
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| mmsr(&table, &options).unwrap())
        };
        let (one, many) = (run(1), run(3));
        assert_eq!(one.skills, many.skills);
        assert_eq!(one.probas, many.probas);
        assert_eq!(one.loss_history, many.loss_history);
    }
}
