//! Consensus: turning several annotators' labels into one label per item with a
//! posterior, and measuring each annotator.
//!
//! Every model reads the [`AnnotationTable`](crate::AnnotationTable) and returns an
//! [`Aggregation`]. Labels are value ids of the table's [`ValueDomain`](crate::table::ValueDomain),
//! whose order (numeric for numbers, by name for categories) is the "sorted order" that
//! decides ties.

pub mod dawid_skene;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod glad;
pub mod kos;
pub mod mace;
pub mod majority;
pub mod metrics;
pub mod mmsr;
pub mod multi_label;

use std::borrow::Cow;

use rayon::prelude::*;
use serde::Serialize;

use crate::table::AnnotationTable;

/// The models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    MajorityVote,
    Wawa,
    ZeroBasedSkill,
    GoldMajorityVote,
    DawidSkene,
    OneCoinDawidSkene,
    Glad,
    Mace,
    Kos,
    Mmsr,
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "mv" | "majority-vote" => Self::MajorityVote,
            "wawa" => Self::Wawa,
            "zbs" | "zero-based-skill" => Self::ZeroBasedSkill,
            "gold-mv" | "gold-majority-vote" => Self::GoldMajorityVote,
            "ds" | "dawid-skene" => Self::DawidSkene,
            "one-coin-ds" | "one-coin-dawid-skene" | "onecoin" => Self::OneCoinDawidSkene,
            "glad" => Self::Glad,
            "mace" => Self::Mace,
            "kos" => Self::Kos,
            "mmsr" | "m-msr" => Self::Mmsr,
            other => {
                return Err(format!(
                    "unknown method '{other}' (mv, wawa, zbs, gold-mv, ds, one-coin-ds, glad, mace, kos, mmsr)"
                ));
            }
        })
    }
}

impl Method {
    pub fn key(self) -> &'static str {
        match self {
            Self::MajorityVote => "mv",
            Self::Wawa => "wawa",
            Self::ZeroBasedSkill => "zbs",
            Self::GoldMajorityVote => "gold-mv",
            Self::DawidSkene => "ds",
            Self::OneCoinDawidSkene => "one-coin-ds",
            Self::Glad => "glad",
            Self::Mace => "mace",
            Self::Kos => "kos",
            Self::Mmsr => "mmsr",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::MajorityVote => "majority vote",
            Self::Wawa => "Wawa",
            Self::ZeroBasedSkill => "zero-based skill",
            Self::GoldMajorityVote => "gold majority vote",
            Self::DawidSkene => "Dawid–Skene",
            Self::OneCoinDawidSkene => "one-coin Dawid–Skene",
            Self::Glad => "GLAD",
            Self::Mace => "MACE",
            Self::Kos => "KOS",
            Self::Mmsr => "M-MSR",
        }
    }
}

/// How majority-vote ties are resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TieRule {
    /// The first tied label in sorted order (crowd-kit's behaviour; the default, so results
    /// are reproducible and comparable).
    #[default]
    First,
    /// A seeded random choice among the tied labels.
    Random,
    /// No label: the item is flagged as a tie (the platform escalates it).
    Undecided,
}

impl std::str::FromStr for TieRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "first" => Ok(Self::First),
            "random" => Ok(Self::Random),
            "undecided" => Ok(Self::Undecided),
            other => Err(format!(
                "unknown tie rule '{other}' (first, random, undecided)"
            )),
        }
    }
}

/// Known answers: item id → value id (several per item allowed for gold majority vote).
#[derive(Clone, Debug, Default)]
pub struct Known {
    pub answers: Vec<(u32, u32)>,
}

impl Known {
    /// First known answer per item (n_items entries).
    pub fn per_item(&self, n_items: usize) -> Vec<Option<u32>> {
        let mut out = vec![None; n_items];
        for &(item, value) in &self.answers {
            if out[item as usize].is_none() {
                out[item as usize] = Some(value);
            }
        }
        out
    }
}

/// Options shared by the models (each reads what applies to it).
#[derive(Clone, Debug)]
pub struct AggregateOptions {
    pub tie: TieRule,
    pub seed: u64,
    /// Maximum EM / message-passing iterations (model default when `None`).
    pub iterations: Option<usize>,
    /// Stop when the objective improves by less than this (model default when `None`;
    /// `Some(f64::NEG_INFINITY)` never stops early).
    pub tol: Option<f64>,
    /// Answers the model may use (gold majority vote, gold clamping in Dawid–Skene).
    pub known: Option<Known>,
    /// Dirichlet pseudo-count added to Dawid–Skene confusion counts (0 = none).
    pub smoothing: f64,
    /// Per-annotator weights for weighted majority vote.
    pub skills: Option<Vec<f64>>,
    /// MACE: `em` or variational Bayes.
    pub mace_variational: bool,
    pub mace_restarts: usize,
}

impl Default for AggregateOptions {
    fn default() -> Self {
        Self {
            tie: TieRule::First,
            seed: 0,
            iterations: None,
            tol: None,
            known: None,
            smoothing: 0.0,
            skills: None,
            mace_variational: true,
            mace_restarts: 10,
        }
    }
}

/// Per-annotator confusion matrices: `p[a][true][observed]` = P(observed | true),
/// with a mask of the (annotator, observed) pairs that occur in the data.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Confusion {
    pub k: usize,
    pub p: Vec<f64>,
    pub observed: Vec<bool>,
}

impl Confusion {
    pub fn get(&self, annotator: usize, truth: usize, observed: usize) -> f64 {
        self.p[(annotator * self.k + truth) * self.k + observed]
    }
    pub fn is_observed(&self, annotator: usize, observed: usize) -> bool {
        self.observed[annotator * self.k + observed]
    }
}

/// Per-item class scores.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Posteriors {
    /// Row-major n_items × k (the EM models: every class has a probability).
    Dense(Vec<f64>),
    /// Only the classes an item's annotators chose (vote shares: an item with five ratings
    /// has at most five non-zero classes, so at k = 10 this is under half the dense size).
    /// Item i's entries are `offsets[i]..offsets[i + 1]`, classes ascending.
    Sparse {
        offsets: Vec<u32>,
        classes: Vec<u32>,
        shares: Vec<f64>,
    },
}

impl Posteriors {
    /// Item `item`'s scores over all classes, written into `row` (length k), so that a
    /// loop over items allocates nothing.
    pub fn fill_row(&self, item: u32, row: &mut [f64]) {
        let (item, k) = (item as usize, row.len());
        match self {
            Self::Dense(values) => row.copy_from_slice(&values[item * k..(item + 1) * k]),
            Self::Sparse { .. } => {
                row.fill(0.0);
                for (&class, &share) in self.sparse_entries(item) {
                    row[class as usize] = share;
                }
            }
        }
    }

    /// Item `item`'s score of one class (without building its row).
    pub fn value(&self, item: u32, class: u32, k: usize) -> f64 {
        let item = item as usize;
        match self {
            Self::Dense(values) => values[item * k + class as usize],
            Self::Sparse { .. } => self
                .sparse_entries(item)
                .find(|(c, _)| **c == class)
                .map_or(0.0, |(_, share)| *share),
        }
    }

    /// A sparse item's (class, share) entries; none for dense posteriors.
    fn sparse_entries(&self, item: usize) -> impl Iterator<Item = (&u32, &f64)> {
        let (classes, shares): (&[u32], &[f64]) = match self {
            Self::Dense(_) => (&[], &[]),
            Self::Sparse {
                offsets,
                classes,
                shares,
            } => {
                let span = offsets[item] as usize..offsets[item + 1] as usize;
                (&classes[span.clone()], &shares[span])
            }
        };
        classes.iter().zip(shares)
    }

    /// Item `item`'s scores over all `k` classes.
    pub fn row(&self, item: u32, k: usize) -> Cow<'_, [f64]> {
        match self {
            Self::Dense(values) => {
                let item = item as usize;
                Cow::Borrowed(&values[item * k..(item + 1) * k])
            }
            Self::Sparse { .. } => {
                let mut row = vec![0.0; k];
                self.fill_row(item, &mut row);
                Cow::Owned(row)
            }
        }
    }
}

/// The result of a model.
#[derive(Clone, Debug, Serialize)]
pub struct Aggregation {
    pub method: Method,
    /// Number of classes (the table's values).
    pub k: usize,
    /// Per item: the label (value id), `None` when undecided.
    pub labels: Vec<Option<u32>>,
    /// Per item: the label was chosen among tied top scores.
    pub tied: Vec<bool>,
    /// Per item posterior (or normalised scores), when the model has one.
    pub probas: Option<Posteriors>,
    /// Per annotator skill (accuracy-like; model-specific scale).
    pub skills: Option<Vec<f64>>,
    pub confusion: Option<Confusion>,
    pub priors: Option<Vec<f64>>,
    /// GLAD: annotator ability α and item log inverse-difficulty β.
    pub alphas: Option<Vec<f64>>,
    pub betas: Option<Vec<f64>>,
    /// MACE: per annotator spamming strategy over labels (n_annotators × k).
    pub thetas: Option<Vec<f64>>,
    /// Objective per iteration (EM models).
    pub loss_history: Vec<f64>,
    pub iterations: usize,
}

impl Aggregation {
    pub(crate) fn new(method: Method, table: &AnnotationTable) -> Self {
        let n = table.n_items();
        Self {
            method,
            k: table.n_values(),
            labels: vec![None; n],
            tied: vec![false; n],
            probas: None,
            skills: None,
            confusion: None,
            priors: None,
            alphas: None,
            betas: None,
            thetas: None,
            loss_history: Vec::new(),
            iterations: 0,
        }
    }

    /// The posterior row of an item (k values).
    pub fn proba(&self, item: u32) -> Option<Cow<'_, [f64]>> {
        self.probas.as_ref().map(|p| p.row(item, self.k))
    }

    /// Per item, the posterior of its label (`None` when undecided or without posteriors).
    pub fn confidence(&self) -> Vec<Option<f64>> {
        let Some(probas) = &self.probas else {
            return vec![None; self.labels.len()];
        };
        self.labels
            .par_iter()
            .enumerate()
            .with_min_len(4096)
            .map(|(item, label)| label.map(|label| probas.value(item as u32, label, self.k)))
            .collect()
    }

    /// Set labels from dense `probas` by argmax; ties resolved by `rule`.
    pub(crate) fn labels_from_probas(&mut self, rule: TieRule, seed: u64) {
        let Some(Posteriors::Dense(probas)) = &self.probas else {
            return;
        };
        let k = self.k.max(1);
        self.labels
            .par_iter_mut()
            .zip(self.tied.par_iter_mut())
            .zip(probas.par_chunks(k))
            .enumerate()
            .with_min_len(4096)
            .for_each(|(item, ((label, tied), row))| {
                (*label, *tied) = argmax_with_ties(row, rule, seed, item as u64);
            });
    }
}

/// Argmax of a score row (first maximum in order), with the tie rule.
pub(crate) fn argmax_with_ties(
    row: &[f64],
    rule: TieRule,
    seed: u64,
    salt: u64,
) -> (Option<u32>, bool) {
    let mut best = f64::NEG_INFINITY;
    let mut best_index = None;
    for (k, &v) in row.iter().enumerate() {
        if v > best {
            best = v;
            best_index = Some(k);
        }
    }
    let Some(first) = best_index else {
        return (None, false);
    };
    let n_tied = row.iter().filter(|v| **v == best).count();
    if n_tied <= 1 {
        return (Some(first as u32), false);
    }
    match rule {
        TieRule::First => (Some(first as u32), true),
        TieRule::Undecided => (None, true),
        TieRule::Random => {
            let pick = (splitmix(seed ^ splitmix(salt)) % n_tied as u64) as usize;
            let chosen = row
                .iter()
                .enumerate()
                .filter(|(_, v)| **v == best)
                .nth(pick)
                .map(|(k, _)| k as u32);
            (chosen, true)
        }
    }
}

pub(crate) fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Errors from the models.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AggregateError {
    #[error("{0}")]
    Invalid(String),
}

/// Run a model.
pub fn aggregate(
    table: &AnnotationTable,
    method: Method,
    options: &AggregateOptions,
    progress: &(dyn Fn(usize, f64) + Sync),
) -> Result<Aggregation, AggregateError> {
    match method {
        Method::MajorityVote => Ok(majority::majority_vote(
            table,
            options.skills.as_deref(),
            options,
        )),
        Method::Wawa => Ok(majority::wawa(table, options)),
        Method::ZeroBasedSkill => Ok(majority::zero_based_skill(table, options)),
        Method::GoldMajorityVote => majority::gold_majority_vote(table, options),
        Method::DawidSkene => dawid_skene::dawid_skene(table, options, progress),
        Method::OneCoinDawidSkene => dawid_skene::one_coin(table, options, progress),
        Method::Glad => glad::glad(table, options, progress),
        Method::Mace => mace::mace(table, options, progress),
        Method::Kos => kos::kos(table, options),
        Method::Mmsr => mmsr::mmsr(table, options),
    }
}
