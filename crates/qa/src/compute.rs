//! The pure part of a consensus run: labels in, consensus, quality report and escalations
//! out. No database here, so the rules are tested on plain data.

use crate::report::{
    CategorySummary, Figure, MetricSummary, ModelReport, PairSummary, QualityReport,
    QuestionReport, SliceSummary,
};
use crate::rules::{self, ItemOutcome};
use concord_stats::aggregate::multi_label::binary_relevance;
use concord_stats::aggregate::{AggregateOptions, Aggregation, Method, aggregate};
use concord_stats::agreement::pairs::pairwise_cohen;
use concord_stats::agreement::per_item::{per_category_alpha, per_item_agreement};
use concord_stats::agreement::two_rater::CohenWeights;
use concord_stats::{
    AgreementOptions, AnnotationTable, Inference, LabelKind, LabelSpec, LabelTypeRequest, Level,
    Metric, Prepared, TableBuilder, compute,
};
use concord_store::{
    AnnotatorQuality, ConsensusInput, Id, ItemConsensus, LabelFact, LabelSchema, NewEscalation,
    QaSettings, Question, QuestionKind,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// What a run computes; the store writes it in one transaction.
#[derive(Debug, Clone)]
pub struct Computed {
    pub report: QualityReport,
    pub items: Vec<ItemConsensus>,
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
    /// Table item index → store item id.
    item_ids: Vec<Id>,
    /// Table annotator index → store user id.
    annotator_ids: Vec<Id>,
}

fn label_text(question: &Question, value: &Value) -> Option<String> {
    match (question.kind, value) {
        (QuestionKind::Multi, Value::Array(codes)) => {
            let codes: Vec<&str> = codes.iter().filter_map(Value::as_str).collect();
            Some(serde_json::to_string(&codes).unwrap_or_default())
        }
        (QuestionKind::Single | QuestionKind::Ordinal, Value::String(code)) => Some(code.clone()),
        _ => None,
    }
}

fn build_table<'a>(
    question: &Question,
    labels: impl Iterator<Item = &'a LabelFact>,
) -> Result<Option<QuestionTable>, ComputeError> {
    let mut builder = TableBuilder::new();
    let mut item_ids = HashMap::new();
    let mut annotator_ids = HashMap::new();
    for fact in labels {
        let Some(text) = fact
            .answer
            .get(&question.key)
            .and_then(|v| label_text(question, v))
        else {
            continue;
        };
        let item = fact.item_id.to_string();
        let annotator = fact.annotator_id.to_string();
        item_ids.insert(item.clone(), fact.item_id);
        annotator_ids.insert(annotator.clone(), fact.annotator_id);
        builder.push(&item, &annotator, &text);
    }
    if builder.is_empty() {
        return Ok(None);
    }
    let kind = if question.kind == QuestionKind::Multi {
        LabelKind::Set
    } else {
        LabelKind::Category
    };
    let spec = LabelSpec {
        kind: LabelTypeRequest::Exactly(kind),
        categories: Some(question.options.iter().map(|o| o.value.clone()).collect()),
    };
    let table = builder.build(&spec).map_err(|e| ComputeError::Question {
        question: question.key.clone(),
        reason: e.to_string(),
    })?;
    let item_ids = (0..table.n_items() as u32)
        .map(|i| {
            item_ids
                .get(table.item_name(i))
                .copied()
                .unwrap_or_default()
        })
        .collect();
    let annotator_ids = (0..table.n_annotators() as u32)
        .map(|a| {
            annotator_ids
                .get(table.annotator_name(a))
                .copied()
                .unwrap_or_default()
        })
        .collect();
    Ok(Some(QuestionTable {
        table,
        item_ids,
        annotator_ids,
    }))
}

fn alpha_level(question: &Question) -> Level {
    match question.kind {
        QuestionKind::Single => Level::Nominal,
        QuestionKind::Ordinal => Level::Ordinal,
        QuestionKind::Multi => Level::Masi,
    }
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
    /// Per table item: `{code: p}`.
    posteriors: Vec<Value>,
    confidence: Vec<Option<f64>>,
    tied: Vec<bool>,
    /// Per table annotator: the model's skill.
    skills: Option<Vec<f64>>,
    /// Per table item: value id of the label (single / ordinal), for confusion matrices.
    value_ids: Vec<Option<u32>>,
}

fn consensus_single(
    question: &Question,
    table: &AnnotationTable,
    method: Method,
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
    };
    for item in 0..table.n_items() {
        let row = posterior_row(&aggregation, table, item as u32);
        let label = aggregation.labels[item];
        out.labels
            .push(label.map(|v| Value::String(names[v as usize].clone())));
        out.confidence.push(label.map(|v| row[v as usize]));
        let mut posterior = serde_json::Map::new();
        for (k, p) in row.iter().enumerate() {
            if *p > 0.0 {
                posterior.insert(names[k].clone(), json!(round4(*p)));
            }
        }
        out.posteriors.push(Value::Object(posterior));
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
    };
    for (item, set) in sets.iter().enumerate() {
        let codes: Vec<Value> = set
            .iter()
            .map(|e| Value::String(elements[*e as usize].clone()))
            .collect();
        out.labels.push(Some(Value::Array(codes)));
        // Per category: P(present); the item's confidence is that of its least certain call.
        let mut posterior = serde_json::Map::new();
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
            if present > 0.0 {
                posterior.insert(category.category.clone(), json!(round4(present)));
            }
            let certainty = present.max(1.0 - present);
            least_certain = Some(least_certain.map_or(certainty, |c: f64| c.min(certainty)));
            out.tied[item] |= binary.tied[item];
        }
        out.confidence.push(least_certain);
        out.posteriors.push(Value::Object(posterior));
    }
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
    labels: &[&LabelFact],
    key_of: impl Fn(&LabelFact) -> Option<K>,
    name_of: impl Fn(K) -> (String, i64),
) -> Result<Vec<SliceSummary>, ComputeError> {
    let mut groups: BTreeMap<K, Vec<&LabelFact>> = BTreeMap::new();
    for fact in labels {
        if let Some(key) = key_of(fact) {
            groups.entry(key).or_default().push(fact);
        }
    }
    let mut out = Vec::new();
    for (key, facts) in groups {
        let Some(built) = build_table(question, facts.iter().copied())? else {
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

/// Everything a run computes, from the project's labels.
pub fn compute_run(
    schema: &LabelSchema,
    settings: &QaSettings,
    input: &ConsensusInput,
) -> Result<Computed, ComputeError> {
    let method: Method = settings.method.parse().map_err(ComputeError::Settings)?;
    let humans: Vec<&LabelFact> = input
        .labels
        .iter()
        .filter(|f| f.annotator_kind == "human" && f.kind == "label")
        .collect();
    let models: Vec<&LabelFact> = input
        .labels
        .iter()
        .filter(|f| f.annotator_kind == "model")
        .collect();
    let inference = Inference::default();

    let mut item_results: Vec<ItemConsensus> = Vec::new();
    let mut annotator_rows: Vec<AnnotatorQuality> = Vec::new();
    let mut questions = Vec::new();
    // item id → per question (consensus label, confidence, agreement, n labels, tied, table item).
    let mut outcomes: HashMap<Id, ItemOutcome> = HashMap::new();
    let mut model_reports: BTreeMap<Id, ModelReport> = BTreeMap::new();

    for question in &schema.questions {
        let Some(built) = build_table(question, humans.iter().copied())? else {
            questions.push(empty_question(question));
            continue;
        };
        let table = &built.table;
        let consensus = if question.kind == QuestionKind::Multi {
            consensus_multi(question, table, method)?
        } else {
            consensus_single(question, table, method)?
        };
        let per_item = per_item_agreement(table);

        // Per item results.
        let mut consensus_by_item: HashMap<Id, &Option<Value>> = HashMap::new();
        for (t_item, &item_id) in built.item_ids.iter().enumerate() {
            let agreement = per_item[t_item].pairwise_agreement;
            let n_labels = table.item_values(t_item as u32).len() as i64;
            item_results.push(ItemConsensus {
                item_id,
                question: question.key.clone(),
                label: consensus.labels[t_item].clone(),
                posterior: consensus.posteriors[t_item].clone(),
                confidence: consensus.confidence[t_item].map(round4),
                agreement: agreement.map(round4),
                n_labels,
                tied: consensus.tied[t_item],
            });
            consensus_by_item.insert(item_id, &consensus.labels[t_item]);
            let distinct = {
                let mut values: Vec<u32> = table.item_values(t_item as u32).to_vec();
                values.sort_unstable();
                values.dedup();
                values
            };
            outcomes
                .entry(item_id)
                .or_default()
                .questions
                .push(rules::QuestionOutcome {
                    question: question.key.clone(),
                    kind: Some(question.kind),
                    label: consensus.labels[t_item].clone(),
                    confidence: consensus.confidence[t_item],
                    agreement,
                    n_labels,
                    tied: consensus.tied[t_item],
                    given: distinct
                        .iter()
                        .map(|v| table.values().name(*v).to_string())
                        .collect(),
                });
        }

        // Annotators against the consensus.
        let k = table.n_values();
        for (t_annotator, &user_id) in built.annotator_ids.iter().enumerate() {
            let items = table.annotator_items(t_annotator as u32);
            let values = table.annotator_values(t_annotator as u32);
            let mut matches = 0usize;
            let mut decided = 0usize;
            let mut counts = vec![vec![0u64; k]; k];
            for (item, value) in items.iter().zip(values) {
                let label = &consensus.labels[*item as usize];
                if label.is_none() {
                    continue;
                }
                decided += 1;
                let given = table.values().name(*value);
                let given_value = label_value_of(question, given);
                if label.as_ref() == Some(&given_value) {
                    matches += 1;
                }
                if let Some(truth) = consensus.value_ids[*item as usize] {
                    counts[truth as usize][*value as usize] += 1;
                }
            }
            let confusion = if question.kind == QuestionKind::Multi {
                json!({})
            } else {
                json!({"classes": table.values().names(), "counts": counts})
            };
            annotator_rows.push(AnnotatorQuality {
                user_id,
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

        // The automated annotator, scored like a human against the consensus.
        let mut model_stats: HashMap<Id, (usize, usize, usize, String)> = HashMap::new();
        for fact in &models {
            let Some(given) = fact.answer.get(&question.key).filter(|v| !v.is_null()) else {
                continue;
            };
            let entry =
                model_stats
                    .entry(fact.annotator_id)
                    .or_insert((0, 0, 0, fact.annotator.clone()));
            entry.0 += 1;
            if let Some(Some(label)) = consensus_by_item.get(&fact.item_id) {
                entry.1 += 1;
                let same = same_answer(given, label);
                entry.2 += usize::from(same);
                if let Some(outcome) = outcomes.get_mut(&fact.item_id) {
                    if !same {
                        outcome.model_disagreements.push(format!(
                            "{}: the automated annotator said {} but the consensus is {}",
                            question.key,
                            short(given),
                            short(label)
                        ));
                    }
                }
            }
        }
        for (user_id, (labels, decided, matches, name)) in model_stats {
            let agreement = (decided > 0).then(|| round4(matches as f64 / decided as f64));
            annotator_rows.push(AnnotatorQuality {
                user_id,
                question: question.key.clone(),
                labels: labels as i64,
                agreement,
                skill: None,
                confusion: json!({}),
            });
            let report = model_reports.entry(user_id).or_insert(ModelReport {
                annotator: name,
                labels: 0,
                agreement: BTreeMap::new(),
            });
            report.labels = report.labels.max(labels);
            report.agreement.insert(question.key.clone(), agreement);
        }

        questions.push(question_report(
            question, &built, &consensus, settings, &humans, &inference,
        )?);
    }

    // Unsure answers and queue escalations join the outcomes.
    for fact in &input.labels {
        if fact.kind == "unsure" {
            outcomes.entry(fact.item_id).or_default().unsure += 1;
        }
        for code in answer_codes(&fact.answer) {
            let outcome = outcomes.entry(fact.item_id).or_default();
            if !outcome.codes.contains(&code) {
                outcome.codes.push(code);
            }
        }
    }
    let mut notes = Vec::new();
    let severity_rule = rules::SeverityRule::from_schema(schema, &settings.escalation, &mut notes);
    let mut matches: BTreeMap<String, usize> = BTreeMap::new();
    let mut escalations = Vec::new();
    for item in &input.items {
        if item.is_gold || item.adjudicated {
            continue;
        }
        let mut outcome = outcomes.remove(&item.id).unwrap_or_default();
        outcome.queue_reason = (item.state == "escalated" && !item.open_escalation).then(|| {
            item.escalation_reason
                .clone()
                .unwrap_or_else(|| "escalated".into())
        });
        let reasons = rules::reasons(&outcome, &settings.escalation, severity_rule.as_ref());
        if reasons.is_empty() {
            continue;
        }
        for reason in &reasons {
            *matches.entry(reason.rule.to_string()).or_default() += 1;
        }
        if item.open_escalation {
            continue;
        }
        let (priority, priority_reason) = rules::priority(&outcome, schema, &settings.escalation);
        escalations.push(NewEscalation {
            item_id: item.id,
            reasons: serde_json::to_value(&reasons).unwrap_or_default(),
            priority,
            priority_reason,
            sla_ms: settings.escalation.sla_ms(priority),
        });
    }

    let mut annotators: Vec<Id> = humans.iter().map(|f| f.annotator_id).collect();
    annotators.sort_unstable();
    annotators.dedup();
    let mut labelled: Vec<Id> = humans.iter().map(|f| f.item_id).collect();
    labelled.sort_unstable();
    labelled.dedup();
    let report = QualityReport {
        method: method.key().to_string(),
        method_name: method.name().to_string(),
        items: input.items.len(),
        labelled_items: labelled.len(),
        annotations: input.labels.len(),
        annotators: annotators.len(),
        unsure: input.labels.iter().filter(|f| f.kind == "unsure").count(),
        target_alpha: settings.target_alpha,
        questions,
        models: model_reports.into_values().collect(),
        escalation_matches: matches,
        notes,
    };
    Ok(Computed {
        report,
        items: item_results,
        annotators: annotator_rows,
        escalations,
        annotations: input.labels.len(),
    })
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
    built: &QuestionTable,
    consensus: &QuestionConsensus,
    settings: &QaSettings,
    humans: &[&LabelFact],
    inference: &Inference,
) -> Result<QuestionReport, ComputeError> {
    let table = &built.table;
    let prepared = Prepared::new(table);
    let level = alpha_level(question);
    let mut metrics = Vec::new();
    let mut candidates = vec![
        Metric::KrippendorffAlpha,
        Metric::PercentAgreement,
        Metric::FleissGeneralized,
        Metric::GwetAc,
    ];
    if question.kind == QuestionKind::Multi {
        // Fleiss and Gwet are defined over single categories.
        candidates.truncate(2);
    }
    for metric in candidates {
        let options = AgreementOptions {
            level: Some(level),
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
        humans,
        |f| f.guideline_version,
        |v| (format!("v{v}"), v),
    )?;
    let by_week = slice_summaries(
        question,
        humans,
        |f| Some(week_start(f.created_at)),
        |start| (format!("week of {}", date_of(start)), start),
    )?;
    let names: HashMap<Id, &str> = humans
        .iter()
        .map(|f| (f.annotator_id, f.annotator.as_str()))
        .collect();
    let annotator_name = |index: u32| -> String {
        built
            .annotator_ids
            .get(index as usize)
            .and_then(|user| names.get(user))
            .map(|n| n.to_string())
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
    })
}

/// The JSON value an annotator's label stands for (a code, or a list of codes).
fn label_value_of(question: &Question, name: &str) -> Value {
    if question.kind == QuestionKind::Multi {
        serde_json::from_str::<Value>(name).unwrap_or(Value::Null)
    } else {
        Value::String(name.to_string())
    }
}

/// Answers compare as sets when they are lists.
pub fn same_answer(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            let mut x: Vec<String> = x.iter().map(Value::to_string).collect();
            let mut y: Vec<String> = y.iter().map(Value::to_string).collect();
            x.sort();
            y.sort();
            x == y
        }
        _ => a == b,
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
