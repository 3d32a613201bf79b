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
use super::{AggregateError, AggregateOptions, Aggregation, Confusion, Method};
use crate::table::AnnotationTable;

const EPS: f64 = 1e-10;
const CHUNK: usize = 2048;

/// Error matrices in the layout the EM loop uses: `e[(a * k + observed) * k + truth]`.
struct Errors {
    k: usize,
    e: Vec<f64>,
    /// (annotator, observed) pairs present in the data.
    observed: Vec<bool>,
}

fn observed_pairs(table: &AnnotationTable) -> Vec<bool> {
    let k = table.n_values();
    let mut observed = vec![false; table.n_annotators() * k];
    observed
        .par_chunks_mut(k.max(1))
        .enumerate()
        .for_each(|(a, row)| {
            for &r in table.annotator_rows(a as u32) {
                row[table.row_value(r) as usize] = true;
            }
        });
    observed
}

/// Soft counts n[a][observed][truth] = Σ over a's ratings with that label of q[item][truth].
fn soft_counts(table: &AnnotationTable, q: &[f64], k: usize) -> Vec<f64> {
    let mut counts = vec![0.0; table.n_annotators() * k * k];
    counts
        .par_chunks_mut((k * k).max(1))
        .enumerate()
        .for_each(|(a, block)| {
            let items = table.annotator_items(a as u32);
            for (&item, &row) in items.iter().zip(table.annotator_rows(a as u32)) {
                let y = table.row_value(row) as usize;
                let qrow = &q[item as usize * k..(item as usize + 1) * k];
                for (slot, qv) in block[y * k..(y + 1) * k].iter_mut().zip(qrow) {
                    *slot += qv;
                }
            }
        });
    counts
}

/// Full confusion M-step: floor counts of observed rows at EPS and normalise over the
/// labels the annotator used.
fn m_step_full(table: &AnnotationTable, q: &[f64], observed: &[bool], smoothing: f64) -> Errors {
    let k = table.n_values();
    let mut e = soft_counts(table, q, k);
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

/// One-coin M-step: skill = mean posterior of the given label over the annotator's
/// ratings; errors spread evenly over the other labels; clipped to [EPS, 1 − EPS].
fn m_step_one_coin(
    table: &AnnotationTable,
    q: &[f64],
    observed: &[bool],
    skills: &mut [f64],
) -> Errors {
    let k = table.n_values();
    skills.par_iter_mut().enumerate().for_each(|(a, skill)| {
        let items = table.annotator_items(a as u32);
        let rows = table.annotator_rows(a as u32);
        let mut sum = 0.0;
        for (&item, &row) in items.iter().zip(rows) {
            sum += q[item as usize * k + table.row_value(row) as usize];
        }
        *skill = if rows.is_empty() {
            0.0
        } else {
            sum / rows.len() as f64
        };
    });
    let mut e = vec![0.0; table.n_annotators() * k * k];
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

/// E-step: q[t][c] ∝ p_c Π e[a][y][c], with p floored at EPS.
fn e_step(table: &AnnotationTable, priors: &[f64], errors: &Errors, q: &mut [f64]) {
    let k = errors.k;
    let log_p: Vec<f64> = priors.iter().map(|p| p.max(EPS).ln()).collect();
    let log_e: Vec<f64> = errors
        .e
        .iter()
        .map(|v| if *v > 0.0 { v.ln() } else { f64::NEG_INFINITY })
        .collect();
    q.par_chunks_mut(k.max(1))
        .enumerate()
        .with_min_len(CHUNK)
        .for_each(|(item, row)| {
            row.copy_from_slice(&log_p);
            for (a, y) in table.item_ratings(item as u32) {
                let base = (a as usize * k + y as usize) * k;
                for (slot, le) in row.iter_mut().zip(&log_e[base..base + k]) {
                    *slot += le;
                }
            }
            let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let mut total = 0.0;
            for v in row.iter_mut() {
                *v = (*v - max).exp();
                total += *v;
            }
            row.iter_mut().for_each(|v| *v /= total);
        });
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

fn mean_rows(q: &[f64], k: usize, n_items: usize) -> Vec<f64> {
    // Fixed-size chunks summed in parallel, then in order: deterministic.
    let partial: Vec<Vec<f64>> = q
        .par_chunks(k * CHUNK)
        .map(|chunk| {
            let mut sums = vec![0.0; k];
            for row in chunk.chunks(k) {
                for (s, v) in sums.iter_mut().zip(row) {
                    *s += v;
                }
            }
            sums
        })
        .collect();
    let mut sums = vec![0.0; k];
    for part in partial {
        for (s, v) in sums.iter_mut().zip(part) {
            *s += v;
        }
    }
    sums.iter().map(|s| s / n_items as f64).collect()
}

/// ELBO per annotation (crowd-kit's objective; the prior term counts once per rating).
/// Floors q at EPS in place, as the reference does.
fn elbo_per_annotation(
    table: &AnnotationTable,
    q: &mut [f64],
    priors: &[f64],
    errors: &Errors,
) -> f64 {
    let k = errors.k;
    let log_p: Vec<f64> = priors.iter().map(|p| p.max(EPS).ln()).collect();
    let partial: Vec<f64> = q
        .par_chunks_mut(k * CHUNK)
        .enumerate()
        .map(|(chunk_index, chunk)| {
            let mut sum = 0.0;
            for (offset, row) in chunk.chunks_mut(k).enumerate() {
                let item = (chunk_index * CHUNK + offset) as u32;
                for (a, y) in table.item_ratings(item) {
                    let base = (a as usize * k + y as usize) * k;
                    for c in 0..k {
                        let e = errors.e[base + c];
                        let le = if e > 0.0 { e.ln() } else { f64::NEG_INFINITY };
                        if row[c] != 0.0 {
                            sum += row[c] * (le + log_p[c]);
                        }
                    }
                }
                for v in row.iter_mut() {
                    *v = v.max(EPS);
                    sum -= *v * v.ln();
                }
            }
            sum
        })
        .collect();
    partial.iter().sum::<f64>() / table.n_rows() as f64
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
    let mut skills = vec![0.0; table.n_annotators()];
    let mut q = vote_shares(table, None);
    if let Some(known) = &known {
        clamp_known(&mut q, k, known);
    }
    let mut priors = mean_rows(&q, k, n_items);
    let m_step = |q: &[f64], skills: &mut [f64]| match variant {
        Variant::Full => m_step_full(table, q, &observed, options.smoothing),
        Variant::OneCoin => m_step_one_coin(table, q, &observed, skills),
    };
    let mut errors = m_step(&q, &mut skills);
    let mut history = Vec::new();
    let mut previous = f64::NEG_INFINITY;
    for iteration in 1..=n_iter {
        e_step(table, &priors, &errors, &mut q);
        if let Some(known) = &known {
            clamp_known(&mut q, k, known);
        }
        priors = mean_rows(&q, k, n_items);
        errors = m_step(&q, &mut skills);
        let loss = elbo_per_annotation(table, &mut q, &priors, &errors);
        history.push(loss);
        progress(iteration, loss);
        if loss - previous < tol {
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
    result.probas = Some(q);
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
