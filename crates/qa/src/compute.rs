//! The pure part of a consensus run: labels in, consensus, quality report and escalations
//! out. No database here, so the rules are tested on plain data.

use crate::model_scores::{QuestionTally, Scored};
use crate::report::{
    CategorySummary, CostSummary, Figure, MetricSummary, ModelReport, PairSummary, QualityReport,
    QuestionReport, SliceSummary,
};
use crate::rules;
use concord_stats::aggregate::multi_label::binary_relevance;
use concord_stats::aggregate::{AggregateOptions, Aggregation, Method, aggregate};
use concord_stats::agreement::pairs::pairwise_cohen;
use concord_stats::agreement::per_item::{per_category_alpha, per_item_agreement};
use concord_stats::agreement::two_rater::CohenWeights;
use concord_stats::costs::CostMatrix;
use concord_stats::{
    AgreementOptions, AnnotationTable, Inference, LabelKind, LabelSpec, LabelTypeRequest, Level,
    Metric, Prepared, TableBuilder, WeightChoice, WeightScheme, compute,
};
use concord_store::ItemId;
use concord_store::UserId;
use concord_store::{
    AccountKind, AnnotatorQuality, AnswerKind, ConsensusInput, CostSource, Id, ItemFact, ItemState,
    LabelFacts, LabelSchema, NewEscalation, NewItemConsensus, QaSettings, Question, QuestionKind,
};
use rayon::prelude::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// What a run computes; the store writes it in one transaction.
#[derive(Debug, Clone)]
pub struct Computed {
    pub report: QualityReport,
    pub items: Vec<NewItemConsensus>,
    pub annotators: Vec<AnnotatorQuality>,
    pub escalations: Vec<NewEscalation>,
    pub annotations: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    #[error("question {question:?}: {reason}")]
    Question { question: String, reason: String },
    #[error("{0}")]
    Settings(String),
}

/// Pairs kept in the report (those with the most shared items).
const MAX_PAIRS: usize = 50;
/// Pairs need this many shared items for a κ.
const MIN_SHARED_FOR_PAIR: u64 = 10;

/// A question's labels turned into the engine's table.
struct QuestionTable {
    table: AnnotationTable,
    /// Table item index → store item id, ascending (rows arrive in item order).
    item_ids: Vec<Id>,
    /// Table annotator index → index into [`LabelFacts::annotators`].
    annotators: Vec<u32>,
}

impl QuestionTable {
    fn item_index(&self, item_id: ItemId) -> Option<u32> {
        self.item_ids
            .binary_search(&item_id.get())
            .ok()
            .map(|i| i as u32)
    }
}

pub(crate) fn label_text(question: &Question, value: &Value) -> Option<String> {
    match (question.kind, value) {
        (QuestionKind::Multi, Value::Array(codes)) => {
            let codes: Vec<&str> = codes.iter().filter_map(Value::as_str).collect();
            Some(serde_json::to_string(&codes).unwrap_or_default())
        }
        (QuestionKind::Single | QuestionKind::Ordinal, Value::String(code)) => Some(code.clone()),
        _ => None,
    }
}

/// Builds the question's table from the given label rows (indexes into `facts`, in item
/// order). Ids are interned once per item and annotator, answers once per distinct answer.
fn build_table(
    question: &Question,
    facts: &LabelFacts,
    rows: impl Iterator<Item = u32>,
) -> Result<Option<QuestionTable>, ComputeError> {
    const UNSEEN: u32 = u32::MAX;
    const ABSENT: u32 = u32::MAX - 1;
    let mut builder = TableBuilder::new();
    // Per distinct answer: its raw label in the builder, ABSENT when it does not answer
    // this question, UNSEEN until first met (so a slice's domain holds only its labels).
    let mut raw_of_answer = vec![UNSEEN; facts.answers.len()];
    let mut local_annotator = vec![UNSEEN; facts.annotators.len()];
    let mut item_ids: Vec<Id> = Vec::new();
    let mut annotators: Vec<u32> = Vec::new();
    let mut current: Option<(ItemId, u32)> = None;
    for row in rows {
        let fact = facts.get(row as usize);
        let answer = fact.answer_index as usize;
        if raw_of_answer[answer] == UNSEEN {
            raw_of_answer[answer] = fact
                .answer
                .get(&question.key)
                .and_then(|v| label_text(question, v))
                .map_or(ABSENT, |text| builder.raw_labels.intern(&text).0);
        }
        let raw = raw_of_answer[answer];
        if raw == ABSENT {
            continue;
        }
        let item = match current {
            Some((id, index)) if id == fact.item_id => index,
            _ => {
                let (index, new) = builder.items.intern(&fact.item_id.to_string());
                if new {
                    item_ids.push(fact.item_id.get());
                }
                current = Some((fact.item_id, index));
                index
            }
        };
        let who = fact.annotator_index as usize;
        if local_annotator[who] == UNSEEN {
            local_annotator[who] = builder.annotators.intern(&fact.annotator_id.to_string()).0;
            annotators.push(fact.annotator_index);
        }
        builder.push_ids(item, local_annotator[who], raw);
    }
    if builder.is_empty() {
        return Ok(None);
    }
    let table = builder
        .build(&label_spec(question))
        .map_err(|e| ComputeError::Question {
            question: question.key.clone(),
            reason: e.to_string(),
        })?;
    Ok(Some(QuestionTable {
        table,
        item_ids,
        annotators,
    }))
}

/// What a question's labels are to the engine: a category, or a set for a multi-label
/// question, over the schema's codes.
pub(crate) fn label_spec(question: &Question) -> LabelSpec {
    let kind = if question.kind == QuestionKind::Multi {
        LabelKind::Set
    } else {
        LabelKind::Category
    };
    LabelSpec {
        kind: LabelTypeRequest::Exactly(kind),
        categories: Some(question.options.iter().map(|o| o.value.clone()).collect()),
    }
}

pub(crate) fn alpha_level(question: &Question) -> Level {
    match question.kind {
        QuestionKind::Single => Level::Nominal,
        QuestionKind::Ordinal => Level::Ordinal,
        QuestionKind::Multi => Level::Masi,
    }
}

/// Krippendorff's α at the question's level and percent agreement, each with its interval,
/// over a small table built by the caller (retest pairs, an annotator against a key).
pub(crate) fn alpha_and_percent(question: &Question, builder: TableBuilder) -> (Figure, Figure) {
    let table = match builder.build(&label_spec(question)) {
        Ok(table) => table,
        Err(e) => {
            let failed = || Figure {
                undefined: Some(e.to_string()),
                ..Figure::default()
            };
            return (failed(), failed());
        }
    };
    let prepared = Prepared::new(&table);
    let figure = |metric: Metric, weights: WeightChoice| {
        let options = AgreementOptions {
            level: Some(alpha_level(question)),
            weights,
            ..AgreementOptions::default()
        };
        match compute(&prepared, metric, &options, &|_| {}) {
            Ok(result) => Figure::from_result(&result),
            Err(e) => Figure {
                undefined: Some(e.to_string()),
                ..Figure::default()
            },
        }
    };
    let identity = WeightChoice::Scheme(WeightScheme::Identity);
    (
        figure(Metric::KrippendorffAlpha, identity.clone()),
        figure(Metric::PercentAgreement, identity),
    )
}

fn alpha_figure(table: &AnnotationTable, level: Level) -> Figure {
    let prepared = Prepared::new(table);
    let options = AgreementOptions {
        level: Some(level),
        ..AgreementOptions::default()
    };
    match compute(&prepared, Metric::KrippendorffAlpha, &options, &|_| {}) {
        Ok(result) => Figure::from_result(&result),
        Err(e) => Figure {
            undefined: Some(e.to_string()),
            ..Figure::default()
        },
    }
}

/// The per-item consensus of one question: label index (or set), posterior row, tie.
struct QuestionConsensus {
    /// Per table item: the chosen code(s) as JSON, or None when undecided.
    labels: Vec<Option<Value>>,
    /// Per table item: JSON text `{code: p}`.
    posteriors: Vec<String>,
    confidence: Vec<Option<f64>>,
    tied: Vec<bool>,
    /// Per table annotator: the model's skill.
    skills: Option<Vec<f64>>,
    /// Per table item: value id of the label (single / ordinal), for confusion matrices.
    value_ids: Vec<Option<u32>>,
    /// Per table item: the chosen elements (multi-label), as element indexes.
    sets: Vec<Vec<u32>>,
    /// Per table item: the expected cost of the label under the posterior and the
    /// question's cost matrix (None without costs or label).
    expected_cost: Vec<Option<f64>>,
}

/// Writes `{"code":p,…}` for the non-zero probabilities, rounded to four places.
fn posterior_text<'a>(entries: impl Iterator<Item = (&'a str, f64)>) -> String {
    let mut out = Vec::with_capacity(64);
    out.push(b'{');
    for (code, p) in entries {
        if p > 0.0 {
            if out.len() > 1 {
                out.push(b',');
            }
            // Writing a string and a float into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut out, code);
            out.push(b':');
            let _ = serde_json::to_writer(&mut out, &round4(p));
        }
    }
    out.push(b'}');
    String::from_utf8(out).unwrap_or_default()
}

fn consensus_single(
    question: &Question,
    table: &AnnotationTable,
    method: Method,
    costs: Option<&CostMatrix>,
) -> Result<QuestionConsensus, ComputeError> {
    let options = AggregateOptions::default();
    let aggregation = aggregate(table, method, &options, &|_, _| {})
        .or_else(|_| aggregate(table, Method::MajorityVote, &options, &|_, _| {}))
        .map_err(|e| ComputeError::Question {
            question: question.key.clone(),
            reason: e.to_string(),
        })?;
    let names = table.values().names();
    let mut out = QuestionConsensus {
        labels: Vec::with_capacity(table.n_items()),
        posteriors: Vec::with_capacity(table.n_items()),
        confidence: Vec::with_capacity(table.n_items()),
        tied: aggregation.tied.clone(),
        skills: aggregation.skills.clone(),
        value_ids: aggregation.labels.clone(),
        sets: Vec::new(),
        expected_cost: Vec::with_capacity(table.n_items()),
    };
    for item in 0..table.n_items() {
        let row = posterior_row(&aggregation, table, item as u32);
        let label = aggregation.labels[item];
        out.expected_cost.push(
            costs
                .zip(label)
                .map(|(c, l)| round4(c.expected_cost(&row, l as usize))),
        );
        out.labels
            .push(label.map(|v| Value::String(names[v as usize].clone())));
        out.confidence.push(label.map(|v| row[v as usize]));
        out.posteriors.push(posterior_text(
            names.iter().map(String::as_str).zip(row.iter().copied()),
        ));
    }
    Ok(out)
}

/// The model's posterior, or the vote shares when it has none.
fn posterior_row(aggregation: &Aggregation, table: &AnnotationTable, item: u32) -> Vec<f64> {
    if let Some(row) = aggregation.proba(item) {
        return row.to_vec();
    }
    let mut counts = vec![0.0; table.n_values()];
    let values = table.item_values(item);
    for &v in values {
        counts[v as usize] += 1.0;
    }
    let n = values.len().max(1) as f64;
    counts.iter().map(|c| c / n).collect()
}

fn consensus_multi(
    question: &Question,
    table: &AnnotationTable,
    method: Method,
) -> Result<QuestionConsensus, ComputeError> {
    let options = AggregateOptions::default();
    let (sets, per_category) = binary_relevance(table, method, &options, &|_, _| {})
        .or_else(|_| binary_relevance(table, Method::MajorityVote, &options, &|_, _| {}))
        .map_err(|e| ComputeError::Question {
            question: question.key.clone(),
            reason: e.to_string(),
        })?;
    let elements = table.values().elements();
    let mut out = QuestionConsensus {
        labels: Vec::with_capacity(table.n_items()),
        posteriors: Vec::with_capacity(table.n_items()),
        confidence: Vec::with_capacity(table.n_items()),
        tied: vec![false; table.n_items()],
        skills: None,
        value_ids: vec![None; table.n_items()],
        sets: Vec::new(),
        expected_cost: vec![None; table.n_items()],
    };
    for (item, set) in sets.iter().enumerate() {
        let codes: Vec<Value> = set
            .iter()
            .map(|e| Value::String(elements[*e as usize].clone()))
            .collect();
        out.labels.push(Some(Value::Array(codes)));
        // Per category: P(present); the item's confidence is that of its least certain call.
        let mut posterior: Vec<(&str, f64)> = Vec::with_capacity(per_category.len());
        let mut least_certain: Option<f64> = None;
        for category in &per_category {
            let binary = &category.aggregation;
            let present = binary
                .proba(item as u32)
                .map(|row| row.get(1).copied().unwrap_or(0.0))
                .unwrap_or_else(|| {
                    if binary.labels[item] == Some(1) {
                        1.0
                    } else {
                        0.0
                    }
                });
            posterior.push((category.category.as_str(), present));
            let certainty = present.max(1.0 - present);
            least_certain = Some(least_certain.map_or(certainty, |c: f64| c.min(certainty)));
            out.tied[item] |= binary.tied[item];
        }
        out.confidence.push(least_certain);
        out.posteriors.push(posterior_text(posterior.into_iter()));
    }
    out.sets = sets;
    Ok(out)
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Monday 00:00 UTC of the week containing `ms`.
pub fn week_start(ms: i64) -> i64 {
    let days = ms.div_euclid(86_400_000);
    // 1970-01-01 was a Thursday: days since the Monday before it.
    let since_monday = (days + 3).rem_euclid(7);
    (days - since_monday) * 86_400_000
}

/// `YYYY-MM-DD` of a day number (Howard Hinnant's civil-from-days).
pub fn date_of(ms: i64) -> String {
    let z = ms.div_euclid(86_400_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn slice_summaries<K: Ord + Copy>(
    question: &Question,
    facts: &LabelFacts,
    rows: &[u32],
    key_of: impl Fn(usize) -> Option<K>,
    name_of: impl Fn(K) -> (String, i64),
) -> Result<Vec<SliceSummary>, ComputeError> {
    let mut groups: BTreeMap<K, Vec<u32>> = BTreeMap::new();
    for &row in rows {
        if let Some(key) = key_of(row as usize) {
            groups.entry(key).or_default().push(row);
        }
    }
    let mut out = Vec::new();
    for (key, rows) in groups {
        let Some(built) = build_table(question, facts, rows.into_iter())? else {
            continue;
        };
        let (slice, sort_key) = name_of(key);
        out.push(SliceSummary {
            slice,
            key: sort_key,
            labels: built.table.n_rows(),
            items: built.table.n_items(),
            alpha: alpha_figure(&built.table, alpha_level(question)),
        });
    }
    Ok(out)
}

/// A question's consensus, kept until every item's escalation rules have run.
struct QuestionResult<'q> {
    question: &'q Question,
    built: QuestionTable,
    consensus: QuestionConsensus,
    agreement: Vec<Option<f64>>,
    /// The question's cost matrix over the table's values, and where it comes from.
    costs: Option<(CostMatrix, CostSource)>,
}

impl QuestionResult<'_> {
    fn outcome(&self, t_item: u32) -> rules::QuestionOutcome {
        let table = &self.built.table;
        let mut distinct: Vec<u32> = table.item_values(t_item).to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        let i = t_item as usize;
        rules::QuestionOutcome {
            question: self.question.key.clone(),
            kind: Some(self.question.kind),
            label: self.consensus.labels[i].clone(),
            confidence: self.consensus.confidence[i],
            agreement: self.agreement[i],
            n_labels: table.item_values(t_item).len() as i64,
            tied: self.consensus.tied[i],
            given: distinct
                .iter()
                .map(|v| table.values().name(*v).to_string())
                .collect(),
        }
    }

    /// Whether an annotator's label (a table value) equals the item's consensus.
    fn agrees(&self, t_item: u32, value: u32) -> bool {
        let i = t_item as usize;
        if self.question.kind == QuestionKind::Multi {
            let mut given = self.built.table.values().set_members(value).to_vec();
            given.sort_unstable();
            let mut chosen = self.consensus.sets[i].clone();
            chosen.sort_unstable();
            self.consensus.labels[i].is_some() && given == chosen
        } else {
            self.consensus.value_ids[i] == Some(value)
        }
    }
}

/// Every code each distinct answer names.
fn codes_per_answer(facts: &LabelFacts) -> Vec<Vec<String>> {
    facts.answers.iter().map(answer_codes).collect()
}

/// Everything a run computes, from the project's labels.
pub fn compute_run(
    schema: &LabelSchema,
    settings: &QaSettings,
    input: &ConsensusInput,
) -> Result<Computed, ComputeError> {
    let method: Method = settings.method.parse().map_err(ComputeError::Settings)?;
    let facts = &input.labels;
    let order = rows_in_item_order(facts);
    let humans = human_label_rows(facts, &order);
    let models = model_rows(facts, &order);
    let truth = ModelTruth::of(input);
    let inference = Inference::default();

    // Questions are independent until the model tallies: compute them in parallel, then
    // gather them in schema order (so notes and rows come out as from a serial loop).
    let passes: Vec<Option<QuestionPass<'_>>> = schema
        .questions
        .par_iter()
        .map(|question| question_pass(question, settings, facts, &humans, method, &inference))
        .collect::<Result<_, _>>()?;
    let mut run = QuestionsComputed::default();
    // One allocation for every question's rows (appending grew and copied them).
    run.items
        .reserve_exact(passes.iter().flatten().map(|pass| pass.items.len()).sum());
    for (question, pass) in schema.questions.iter().zip(passes) {
        let Some(mut pass) = pass else {
            run.questions.push(empty_question(question));
            continue;
        };
        run.notes.append(&mut pass.notes);
        run.items.append(&mut pass.items);
        run.annotators.append(&mut pass.annotators);
        let tallies = tally_models(
            &pass.result,
            facts,
            &models,
            &truth,
            &mut run.model_disagreements,
        );
        record_model_scores(
            question,
            tallies,
            &mut run.annotators,
            &mut run.model_reports,
        );
        run.questions.push(pass.report);
        run.results.push(pass.result);
    }

    let mut escalated = escalate_items(schema, settings, input, &order, &mut run);
    escalated.notes.append(&mut run.notes);
    let report = QualityReport {
        method: method.key().to_string(),
        method_name: method.name().to_string(),
        items: input.items.len(),
        labelled_items: labelled_items(facts, &humans),
        annotations: facts.len(),
        annotators: distinct_annotators(facts, &humans),
        unsure: facts
            .iter()
            .filter(|f| f.kind == AnswerKind::Unsure)
            .count(),
        target_alpha: settings.target_alpha,
        questions: run.questions,
        models: run.model_reports.into_values().collect(),
        escalation_matches: escalated.matches,
        notes: escalated.notes,
    };
    Ok(Computed {
        report,
        items: run.items,
        annotators: run.annotators,
        escalations: escalated.escalations,
        annotations: facts.len(),
    })
}

/// One question's consensus, report and stored rows, computed on its own.
struct QuestionPass<'q> {
    result: QuestionResult<'q>,
    report: QuestionReport,
    items: Vec<NewItemConsensus>,
    annotators: Vec<AnnotatorQuality>,
    notes: Vec<String>,
}

/// A question's pass, or `None` when nobody answered it.
fn question_pass<'q>(
    question: &'q Question,
    settings: &QaSettings,
    facts: &LabelFacts,
    humans: &[u32],
    method: Method,
    inference: &Inference,
) -> Result<Option<QuestionPass<'q>>, ComputeError> {
    let Some(built) = build_table(question, facts, humans.iter().copied())? else {
        return Ok(None);
    };
    let mut notes = Vec::new();
    let costs = question_costs(question, settings, &built.table, &mut notes);
    let mut result = question_consensus(question, built, method, costs)?;
    // The posterior texts move into the rows: nothing after them reads the texts.
    let posteriors = std::mem::take(&mut result.consensus.posteriors);
    debug_assert_eq!(posteriors.len(), result.built.item_ids.len());
    let items = item_consensus_rows(&result, posteriors).collect();
    let annotators = human_quality_rows(&result, facts);
    let report = question_report(question, &result, settings, facts, humans, inference)?;
    Ok(Some(QuestionPass {
        result,
        report,
        items,
        annotators,
        notes,
    }))
}

/// What the per-question pass of a run gathers, question by question.
#[derive(Default)]
struct QuestionsComputed<'q> {
    items: Vec<NewItemConsensus>,
    annotators: Vec<AnnotatorQuality>,
    questions: Vec<QuestionReport>,
    /// Kept for the escalation rules, which look at every question of an item.
    results: Vec<QuestionResult<'q>>,
    /// Per item: where the automated annotator and the consensus differ, said in words.
    model_disagreements: HashMap<Id, Vec<String>>,
    model_reports: BTreeMap<Id, ModelReport>,
    /// Settings that could not be applied (a cost matrix that does not fit its question).
    notes: Vec<String>,
}

/// The question's cost matrix (settings, or the ordinal default) over the table's values;
/// one that does not fit the question is left out with a note.
fn question_costs(
    question: &Question,
    settings: &QaSettings,
    table: &AnnotationTable,
    notes: &mut Vec<String>,
) -> Option<(CostMatrix, CostSource)> {
    let (rows, source) = match settings.costs_for(question)? {
        Ok(found) => found,
        Err(e) => {
            notes.push(e);
            return None;
        }
    };
    if question.kind == QuestionKind::Multi {
        notes.push(format!(
            "qa.costs.{}: costs apply to single-choice and ordinal questions, not multi-label",
            question.key
        ));
        return None;
    }
    // The table declares the question's options in schema order, as `costs_for` orders rows.
    if table.n_values() != rows.len() {
        notes.push(format!(
            "qa.costs.{}: {} classes in the matrix, {} in the labels",
            question.key,
            rows.len(),
            table.n_values()
        ));
        return None;
    }
    match CostMatrix::new(&rows) {
        Ok(matrix) => Some((matrix, source)),
        Err(e) => {
            notes.push(format!("qa.costs.{}: {e}", question.key));
            None
        }
    }
}

/// Label rows in item order (the store reads them so; anything else is sorted here).
fn rows_in_item_order(facts: &LabelFacts) -> Vec<u32> {
    let mut order: Vec<u32> = (0..facts.len() as u32).collect();
    if !order.is_sorted_by_key(|&r| facts.get(r as usize).item_id) {
        order.sort_by_key(|&r| facts.get(r as usize).item_id);
    }
    order
}

/// The rows the consensus is computed from: labels (not "unsure") by human annotators.
fn human_label_rows(facts: &LabelFacts, order: &[u32]) -> Vec<u32> {
    order
        .iter()
        .copied()
        .filter(|&r| {
            let fact = facts.get(r as usize);
            fact.annotator.kind == AccountKind::Human && fact.kind == AnswerKind::Label
        })
        .collect()
}

/// The automated annotator's rows, scored against the consensus but never part of it.
fn model_rows(facts: &LabelFacts, order: &[u32]) -> Vec<u32> {
    order
        .iter()
        .copied()
        .filter(|&r| facts.get(r as usize).annotator.kind == AccountKind::Model)
        .collect()
}

/// One question's consensus and per-item agreement over its table.
fn question_consensus(
    question: &Question,
    built: QuestionTable,
    method: Method,
    costs: Option<(CostMatrix, CostSource)>,
) -> Result<QuestionResult<'_>, ComputeError> {
    let table = &built.table;
    let consensus = if question.kind == QuestionKind::Multi {
        consensus_multi(question, table, method)?
    } else {
        consensus_single(question, table, method, costs.as_ref().map(|(c, _)| c))?
    };
    let agreement: Vec<Option<f64>> = per_item_agreement(table)
        .iter()
        .map(|a| a.pairwise_agreement)
        .collect();
    Ok(QuestionResult {
        question,
        built,
        consensus,
        agreement,
        costs,
    })
}

/// The stored consensus of each item of the question.
fn item_consensus_rows<'a>(
    result: &'a QuestionResult<'_>,
    posteriors: Vec<String>,
) -> impl Iterator<Item = NewItemConsensus> + 'a {
    let (built, consensus) = (&result.built, &result.consensus);
    built
        .item_ids
        .iter()
        .zip(posteriors)
        .enumerate()
        .map(move |(t_item, (&item_id, posterior))| NewItemConsensus {
            item_id: ItemId(item_id),
            question: result.question.key.clone(),
            label: consensus.labels[t_item].as_ref().map(Value::to_string),
            posterior,
            confidence: consensus.confidence[t_item].map(round4),
            agreement: result.agreement[t_item].map(round4),
            n_labels: built.table.item_values(t_item as u32).len() as i64,
            tied: consensus.tied[t_item],
        })
}

/// Each human annotator against the consensus: agreement on decided items, the model's
/// skill, and (single / ordinal) the confusion matrix consensus × given.
fn human_quality_rows(result: &QuestionResult<'_>, facts: &LabelFacts) -> Vec<AnnotatorQuality> {
    let (question, built, consensus) = (result.question, &result.built, &result.consensus);
    let table = &built.table;
    let k = table.n_values();
    let mut rows = Vec::with_capacity(built.annotators.len());
    for (t_annotator, &fact_annotator) in built.annotators.iter().enumerate() {
        let items = table.annotator_items(t_annotator as u32);
        let values = table.annotator_values(t_annotator as u32);
        let mut matches = 0usize;
        let mut decided = 0usize;
        let mut counts = vec![vec![0u64; k]; k];
        for (&item, &value) in items.iter().zip(values) {
            if consensus.labels[item as usize].is_none() {
                continue;
            }
            decided += 1;
            matches += usize::from(result.agrees(item, value));
            if let Some(truth) = consensus.value_ids[item as usize] {
                counts[truth as usize][value as usize] += 1;
            }
        }
        let confusion = if question.kind == QuestionKind::Multi {
            json!({})
        } else {
            json!({"classes": table.values().names(), "counts": counts})
        };
        rows.push(AnnotatorQuality {
            user_id: UserId(facts.annotators[fact_annotator as usize].id),
            question: question.key.clone(),
            labels: items.len() as i64,
            agreement: (decided > 0).then(|| round4(matches as f64 / decided as f64)),
            skill: consensus
                .skills
                .as_ref()
                .and_then(|s| s.get(t_annotator))
                .copied()
                .filter(|s| s.is_finite())
                .map(round4),
            confusion,
        });
    }
    rows
}

/// What the automated annotators' labels are scored against besides the consensus.
struct ModelTruth<'a> {
    /// Gold item → its gold answer.
    gold: HashMap<Id, &'a Value>,
    /// (item, model account) → the confidence the model stated.
    confidence: &'a HashMap<(ItemId, UserId), f64>,
}

impl<'a> ModelTruth<'a> {
    fn of(input: &'a ConsensusInput) -> ModelTruth<'a> {
        let gold = input
            .items
            .iter()
            .filter(|item| item.is_gold)
            .filter_map(|item| Some((item.id, item.gold_answer.as_ref()?)))
            .collect();
        ModelTruth {
            gold,
            confidence: &input.model_confidence,
        }
    }
}

/// Scores each automated annotator like a human against the consensus and the gold
/// answers, and notes every item where one disagrees with the consensus (an escalation rule
/// reads those notes).
fn tally_models(
    result: &QuestionResult<'_>,
    facts: &LabelFacts,
    models: &[u32],
    truth: &ModelTruth<'_>,
    disagreements: &mut HashMap<Id, Vec<String>>,
) -> HashMap<Id, QuestionTally> {
    let (question, built, consensus) = (result.question, &result.built, &result.consensus);
    let mut tallies: HashMap<Id, QuestionTally> = HashMap::new();
    for &row in models {
        let fact = facts.get(row as usize);
        let Some(given) = fact.answer.get(&question.key).filter(|v| !v.is_null()) else {
            continue;
        };
        let tally = tallies
            .entry(fact.annotator_id.get())
            .or_insert_with(|| QuestionTally::new(&fact.annotator.username));
        let decided = built
            .item_index(fact.item_id)
            .and_then(|i| consensus.labels[i as usize].as_ref());
        let scored = Scored {
            given,
            consensus: decided,
            gold: truth
                .gold
                .get(&fact.item_id.get())
                .and_then(|answer| answer.get(&question.key))
                .filter(|v| !v.is_null()),
            confidence: truth
                .confidence
                .get(&(fact.item_id, fact.annotator_id))
                .copied(),
        };
        if let (Some(false), Some(label)) = (tally.add(scored), decided) {
            disagreements
                .entry(fact.item_id.get())
                .or_default()
                .push(format!(
                    "{}: the automated annotator said {} but the consensus is {}",
                    question.key,
                    short(given),
                    short(label)
                ));
        }
    }
    tallies
}

/// The automated annotators' scores on one question: a quality row each, and their entry
/// in the report's model section.
fn record_model_scores(
    question: &Question,
    tallies: HashMap<Id, QuestionTally>,
    annotators: &mut Vec<AnnotatorQuality>,
    reports: &mut BTreeMap<Id, ModelReport>,
) {
    for (user_id, tally) in tallies {
        let agreement = tally.agreement().estimate.map(round4);
        annotators.push(AnnotatorQuality {
            user_id: UserId(user_id),
            question: question.key.clone(),
            labels: tally.labels as i64,
            agreement,
            skill: None,
            confusion: json!({}),
        });
        let report = reports.entry(user_id).or_insert_with(|| ModelReport {
            annotator: tally.name.clone(),
            labels: 0,
            agreement: BTreeMap::new(),
            questions: Vec::new(),
        });
        report.labels = report.labels.max(tally.labels);
        report.agreement.insert(question.key.clone(), agreement);
        report.questions.push(tally.score(question));
    }
}

/// The escalation rules' verdicts over every item.
struct Escalated {
    /// How many items each rule matched (open escalations included).
    matches: BTreeMap<String, usize>,
    /// New queue entries for items not already waiting for an expert.
    escalations: Vec<NewEscalation>,
    /// What the report should say about the rules as configured.
    notes: Vec<String>,
}

/// Each item's outcome (its questions' consensus, unsure answers, the automated
/// annotator's disagreements, a queue escalation) through the escalation rules; rows and
/// items are both in item order, so one cursor walks the rows.
fn escalate_items(
    schema: &LabelSchema,
    settings: &QaSettings,
    input: &ConsensusInput,
    order: &[u32],
    run: &mut QuestionsComputed<'_>,
) -> Escalated {
    let facts = &input.labels;
    let codes_of_answer = codes_per_answer(facts);
    let mut notes = Vec::new();
    let severity_rule = rules::SeverityRule::from_schema(schema, &settings.escalation, &mut notes);
    let mut escalated = Escalated {
        matches: BTreeMap::new(),
        escalations: Vec::new(),
        notes,
    };
    let mut cursor = 0usize;
    for item in &input.items {
        let item_rows = rows_of_item(facts, order, &mut cursor, ItemId(item.id));
        if item.is_gold || item.adjudicated {
            continue;
        }
        let mut outcome = item_outcome(item, item_rows, facts, run);
        let reasons = rules::reasons(&outcome, &settings.escalation, severity_rule.as_ref());
        if reasons.is_empty() {
            continue;
        }
        for reason in &reasons {
            *escalated
                .matches
                .entry(reason.rule.to_string())
                .or_default() += 1;
        }
        if item.open_escalation {
            continue;
        }
        // Every code given to the item, for its priority.
        for &row in item_rows {
            for code in &codes_of_answer[facts.get(row as usize).answer_index as usize] {
                if !outcome.codes.contains(code) {
                    outcome.codes.push(code.clone());
                }
            }
        }
        let (priority, priority_reason) = rules::priority(&outcome, schema, &settings.escalation);
        escalated.escalations.push(NewEscalation {
            item_id: ItemId(item.id),
            reasons: serde_json::to_value(&reasons).unwrap_or_default(),
            priority,
            priority_reason,
            sla_ms: settings.escalation.sla_ms(priority),
            expected_cost: expected_cost(ItemId(item.id), &run.results),
        });
    }
    escalated
}

/// The expected cost of leaving the item's consensus as it is: summed over its questions
/// that have costs (one currency for the project); `None` when none has.
fn expected_cost(item_id: ItemId, results: &[QuestionResult<'_>]) -> Option<f64> {
    results
        .iter()
        .filter_map(|r| {
            let t_item = r.built.item_index(item_id)?;
            r.consensus.expected_cost[t_item as usize]
        })
        .reduce(|a, b| a + b)
        .map(round4)
}

/// The item's rows of `order`, advancing `cursor` past them (items come in ascending id).
fn rows_of_item<'o>(
    facts: &LabelFacts,
    order: &'o [u32],
    cursor: &mut usize,
    item_id: ItemId,
) -> &'o [u32] {
    while *cursor < order.len() && facts.get(order[*cursor] as usize).item_id < item_id {
        *cursor += 1;
    }
    let first_row = *cursor;
    while *cursor < order.len() && facts.get(order[*cursor] as usize).item_id == item_id {
        *cursor += 1;
    }
    &order[first_row..*cursor]
}

/// What the escalation rules look at for one item (its codes are added only if it escalates).
fn item_outcome(
    item: &ItemFact,
    item_rows: &[u32],
    facts: &LabelFacts,
    run: &mut QuestionsComputed<'_>,
) -> rules::ItemOutcome {
    let mut outcome = rules::ItemOutcome::default();
    for result in &run.results {
        if let Some(t_item) = result.built.item_index(ItemId(item.id)) {
            outcome.questions.push(result.outcome(t_item));
        }
    }
    outcome.unsure = item_rows
        .iter()
        .filter(|&&row| facts.get(row as usize).kind == AnswerKind::Unsure)
        .count();
    if let Some(disagreements) = run.model_disagreements.remove(&item.id) {
        outcome.model_disagreements = disagreements;
    }
    outcome.queue_reason =
        (item.state == ItemState::Escalated && !item.open_escalation).then(|| {
            item.escalation_reason
                .clone()
                .unwrap_or_else(|| "escalated".into())
        });
    outcome
}

/// Distinct human annotators with at least one label.
fn distinct_annotators(facts: &LabelFacts, humans: &[u32]) -> usize {
    let mut annotators: Vec<UserId> = humans
        .iter()
        .map(|&r| facts.get(r as usize).annotator_id)
        .collect();
    annotators.sort_unstable();
    annotators.dedup();
    annotators.len()
}

/// Items with at least one human label (`humans` is in item order).
fn labelled_items(facts: &LabelFacts, humans: &[u32]) -> usize {
    let mut labelled = 0usize;
    let mut previous: Option<ItemId> = None;
    for &row in humans {
        let item = facts.get(row as usize).item_id;
        if previous != Some(item) {
            labelled += 1;
            previous = Some(item);
        }
    }
    labelled
}

fn empty_question(question: &Question) -> QuestionReport {
    QuestionReport {
        key: question.key.clone(),
        prompt: question.prompt.clone(),
        kind: kind_name(question.kind).into(),
        items: 0,
        labels: 0,
        pairable_items: 0,
        metrics: Vec::new(),
        categories: Vec::new(),
        by_guideline_version: Vec::new(),
        by_week: Vec::new(),
        pairs: Vec::new(),
        consensus_counts: Vec::new(),
        mean_confidence: None,
        costs: None,
    }
}

fn kind_name(kind: QuestionKind) -> &'static str {
    match kind {
        QuestionKind::Single => "single",
        QuestionKind::Multi => "multi",
        QuestionKind::Ordinal => "ordinal",
    }
}

fn question_report(
    question: &Question,
    result: &QuestionResult,
    settings: &QaSettings,
    facts: &LabelFacts,
    humans: &[u32],
    inference: &Inference,
) -> Result<QuestionReport, ComputeError> {
    let (built, consensus) = (&result.built, &result.consensus);
    let table = &built.table;
    let prepared = Prepared::new(table);
    let level = alpha_level(question);
    let mut metrics = Vec::new();
    // The project's choice (validated when saved); Fleiss, Gwet and the others are defined
    // over single categories, so a multi-label question shows α and percent agreement only.
    let candidates = settings
        .metrics
        .iter()
        .filter_map(|name| name.parse::<Metric>().ok())
        .filter(|m| {
            question.kind != QuestionKind::Multi
                || matches!(m, Metric::KrippendorffAlpha | Metric::PercentAgreement)
        });
    for metric in candidates {
        // Ordinal questions: α at the ordinal level, the chance-corrected coefficients
        // weighted (Gwet's AC2 and the weighted forms of the others).
        let weights = match (question.kind, metric) {
            (QuestionKind::Ordinal, m) if m != Metric::KrippendorffAlpha => {
                WeightChoice::Scheme(WeightScheme::Ordinal)
            }
            _ => WeightChoice::Scheme(WeightScheme::Identity),
        };
        let options = AgreementOptions {
            level: Some(level),
            weights,
            ..AgreementOptions::default()
        };
        match compute(&prepared, metric, &options, &|_| {}) {
            Ok(result) => metrics.push(MetricSummary {
                metric: metric.key().into(),
                name: result.name.clone(),
                weighting: result.weighting.clone(),
                figure: Figure::from_result(&result),
                n_items: result.n_items,
            }),
            Err(e) => tracing::debug!(question = %question.key, error = %e, "metric skipped"),
        }
    }
    let costs = result
        .costs
        .as_ref()
        .map(|(matrix, source)| cost_summary(question, matrix, *source, &prepared, consensus));
    let labels_by_code: HashMap<&str, &str> = question
        .options
        .iter()
        .map(|o| (o.value.as_str(), o.label.as_str()))
        .collect();
    let categories = per_category_alpha(prepared.units(), table.values(), inference)
        .into_iter()
        .map(|c| {
            let alpha = Figure::from_estimate(Metric::KrippendorffAlpha, &c.estimate);
            let revise = c.ratings > 0.0 && alpha.value.is_some_and(|v| v < settings.target_alpha);
            CategorySummary {
                label: labels_by_code
                    .get(c.category.as_str())
                    .map(|l| l.to_string())
                    .unwrap_or_default(),
                code: c.category,
                ratings: c.ratings,
                alpha,
                revise,
            }
        })
        .collect();
    let by_guideline_version = slice_summaries(
        question,
        facts,
        humans,
        |row| facts.get(row).guideline_version,
        |v| (format!("v{v}"), v),
    )?;
    let by_week = slice_summaries(
        question,
        facts,
        humans,
        |row| Some(week_start(facts.get(row).created_at)),
        |start| (format!("week of {}", date_of(start)), start),
    )?;
    let annotator_name = |index: u32| -> String {
        built
            .annotators
            .get(index as usize)
            .and_then(|&a| facts.annotators.get(a as usize))
            .map(|a| a.username.clone())
            .unwrap_or_default()
    };
    let mut pairs: Vec<PairSummary> = pairwise_cohen(
        table,
        CohenWeights::Unweighted,
        MIN_SHARED_FOR_PAIR,
        inference,
        &|_, _| {},
    )
    .into_iter()
    .map(|p| PairSummary {
        a: annotator_name(p.annotator_a),
        b: annotator_name(p.annotator_b),
        shared_items: p.shared_items,
        kappa: Figure::from_estimate(Metric::CohenKappa, &p.estimate),
    })
    .collect();
    pairs.sort_by_key(|p| std::cmp::Reverse(p.shared_items));
    pairs.truncate(MAX_PAIRS);
    let mut counts: Vec<(String, usize)> = question
        .options
        .iter()
        .map(|o| (o.value.clone(), 0))
        .collect();
    for label in consensus.labels.iter().flatten() {
        let codes: Vec<&str> = match label {
            Value::Array(codes) => codes.iter().filter_map(Value::as_str).collect(),
            Value::String(code) => vec![code.as_str()],
            _ => Vec::new(),
        };
        for code in codes {
            if let Some(entry) = counts.iter_mut().find(|(c, _)| c == code) {
                entry.1 += 1;
            }
        }
    }
    let confidences: Vec<f64> = consensus.confidence.iter().flatten().copied().collect();
    Ok(QuestionReport {
        key: question.key.clone(),
        prompt: question.prompt.clone(),
        kind: kind_name(question.kind).into(),
        items: table.n_items(),
        labels: table.n_rows(),
        pairable_items: (0..table.n_items() as u32)
            .filter(|i| table.item_values(*i).len() >= 2)
            .count(),
        metrics,
        categories,
        by_guideline_version,
        by_week,
        pairs,
        consensus_counts: counts,
        mean_confidence: (!confidences.is_empty())
            .then(|| round4(confidences.iter().sum::<f64>() / confidences.len() as f64)),
        costs,
    })
}

/// Agreement weighed by the costs of disagreement: α with the symmetric cost as its
/// distance, Gwet's AC2 with weights 1 − cost / the largest; and the consensus's mean
/// expected cost.
fn cost_summary(
    question: &Question,
    matrix: &CostMatrix,
    source: CostSource,
    prepared: &Prepared,
    consensus: &QuestionConsensus,
) -> CostSummary {
    let figure = |metric: Metric, options: AgreementOptions| match compute(
        prepared,
        metric,
        &options,
        &|_| {},
    ) {
        Ok(result) => Figure::from_result(&result),
        Err(e) => Figure {
            undefined: Some(e.to_string()),
            ..Figure::default()
        },
    };
    let alpha = figure(
        Metric::KrippendorffAlpha,
        AgreementOptions {
            alpha_distance: Some(matrix.alpha_distance()),
            ..AgreementOptions::default()
        },
    );
    let gwet = figure(
        Metric::GwetAc,
        AgreementOptions {
            weights: WeightChoice::Matrix(matrix.agreement_weights()),
            ..AgreementOptions::default()
        },
    );
    let costs: Vec<f64> = consensus.expected_cost.iter().flatten().copied().collect();
    let q = matrix.q();
    CostSummary {
        source,
        classes: question.options.iter().map(|o| o.value.clone()).collect(),
        matrix: (0..q)
            .map(|t| (0..q).map(|l| matrix.cost(t, l)).collect())
            .collect(),
        alpha,
        gwet,
        mean_expected_cost: (!costs.is_empty())
            .then(|| round4(costs.iter().sum::<f64>() / costs.len() as f64)),
        total_expected_cost: round4(costs.iter().sum()),
    }
}

fn short(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(codes) if codes.is_empty() => "none".into(),
        Value::Array(codes) => codes
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// Every code an answer names.
fn answer_codes(answer: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(object) = answer.as_object() {
        for value in object.values() {
            match value {
                Value::String(code) => out.push(code.clone()),
                Value::Array(codes) => {
                    out.extend(codes.iter().filter_map(Value::as_str).map(String::from));
                }
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday_and_dates_are_civil() {
        // 2026-11-23 is a Monday.
        let monday = 1_795_392_000_000;
        assert_eq!(date_of(monday), "2026-11-23");
        assert_eq!(week_start(monday + 3 * 86_400_000 + 5_000), monday);
        assert_eq!(date_of(week_start(monday - 1)), "2026-11-16");
        assert_eq!(date_of(0), "1970-01-01");
    }
}
