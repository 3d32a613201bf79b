//! Feedback reports an analyst sends: per project or per annotator — accuracy on gold,
//! agreement with the consensus (and its drift by week), the most frequent confusions with
//! example items ("themes"), expert decisions that overturned the labels, and the categories
//! whose guidelines need work. Rendered as a page, Markdown or CSV.

use crate::compute::{date_of, week_start};
use crate::report::{ModelReport, QualityReport, Share};
use crate::{QaError, report_of};
use concord_stats::sampling::{Proportion, wilson};
use concord_store::ItemId;
use concord_store::UserId;
use concord_store::answer::same_value;
use concord_store::{
    AccountKind, Adjudication, AnswerKind, Id, LabelFact, LabelFacts, PrecedentFilter, Project,
    Question, QuestionKind, Store, User,
};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Example items shown per confusion.
const EXAMPLES: usize = 3;
/// Confusions listed per question.
const TOP_CONFUSIONS: usize = 5;

#[derive(Debug, Clone, Serialize)]
pub struct Example {
    pub item_id: ItemId,
    pub external_id: String,
    pub title: String,
}

/// "Labelled `given` where the consensus is `truth`", how often, with examples.
#[derive(Debug, Clone, Serialize)]
pub struct Confusion {
    pub question: String,
    pub truth: String,
    pub given: String,
    pub count: usize,
    pub examples: Vec<Example>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuestionAgreement {
    pub question: String,
    pub labels: usize,
    pub agreeing: usize,
    pub share: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WeekAgreement {
    pub week: String,
    pub labels: usize,
    pub share: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Overturn {
    pub item_id: ItemId,
    pub external_id: String,
    pub title: String,
    pub question: String,
    pub labelled: Value,
    pub decided: Value,
    pub rationale: String,
    pub clause: String,
    pub expert: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct GuidelineFlag {
    pub question: String,
    pub category: String,
    pub alpha: Option<f64>,
}

/// One question's confusion matrix, rows the consensus, columns the label given.
#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    pub question: String,
    pub classes: Vec<String>,
    pub counts: Vec<Vec<u64>>,
    /// Largest cell, for shading.
    pub max: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Feedback {
    pub project: String,
    pub project_name: String,
    /// None: the whole project.
    pub annotator: Option<String>,
    pub generated_at: i64,
    pub consensus_method: Option<String>,
    pub gold: Proportion,
    pub labels: usize,
    /// Mean time per labelled item (ms), where recorded.
    pub mean_time_ms: Option<i64>,
    pub agreement: Vec<QuestionAgreement>,
    pub drift: Vec<WeekAgreement>,
    pub confusions: Vec<Confusion>,
    pub matrices: Vec<Matrix>,
    pub overturned: Vec<Overturn>,
    pub guidelines: Vec<GuidelineFlag>,
    pub target_alpha: f64,
    /// The automated annotators scored like a person (the whole project: all of them; one
    /// annotator: that one, if a model).
    pub models: Vec<ModelReport>,
    /// The whole project's report: every annotator with the items they labelled (latest
    /// answers), most first — each one's report is a link away. Empty for one annotator.
    pub annotators: Vec<AnnotatorLabels>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AnnotatorLabels {
    pub username: String,
    pub kind: AccountKind,
    pub labels: usize,
}

fn code_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Builds the report for the project, or for one annotator of it.
pub async fn feedback_report(
    store: &Store,
    project: &Project,
    annotator: Option<&User>,
) -> Result<Feedback, QaError> {
    let schema = store.current_schema(project.id).await?.definition;
    // Only the latest labels: the items, model confidences and adjudications a consensus
    // run reads are not needed here, and the examples are named afterwards.
    let facts = store.latest_label_facts(project.id).await?;
    let consensus = store.consensus_labels(project.id).await?;
    let run = store.latest_consensus_run(project.id).await?;
    let report = run.as_ref().and_then(report_of);
    let truth: HashMap<(Id, &str), &Value> = consensus
        .iter()
        .map(|(item, question, label)| ((*item, question.as_str()), label))
        .collect();
    let labels = human_labels_of(&facts, annotator);
    let mut compared = compare_with_consensus(&schema.questions, &labels, &truth);
    name_examples(store, project, &mut compared.confusions).await?;
    let decisions = store
        .precedents(
            project.id,
            &PrecedentFilter {
                limit: Some(1000),
                ..PrecedentFilter::default()
            },
        )
        .await?;
    let overturned = overturned_labels(&decisions, annotator, &labels);
    let (gold, mean_time_ms) = gold_and_time_per_item(store, project, annotator).await?;
    Ok(Feedback {
        project: project.slug.clone(),
        project_name: project.name.clone(),
        annotator: annotator.map(|a| a.username.clone()),
        generated_at: concord_store::system_now_ms(),
        consensus_method: run.map(|r| r.method),
        gold,
        labels: labels.len(),
        mean_time_ms,
        agreement: compared.agreement,
        drift: compared.drift,
        confusions: compared.confusions,
        matrices: compared.matrices,
        overturned,
        guidelines: guideline_flags(report.as_ref()),
        target_alpha: report.as_ref().map(|r| r.target_alpha).unwrap_or(0.667),
        models: report.map(|r| models_of(r, annotator)).unwrap_or_default(),
        annotators: match annotator {
            Some(_) => Vec::new(),
            None => labels_per_annotator(&facts),
        },
    })
}

/// Every annotator's labelled items (latest answers, "unsure" included), most first.
fn labels_per_annotator(facts: &LabelFacts) -> Vec<AnnotatorLabels> {
    let mut counts = vec![0usize; facts.annotators.len()];
    for fact in facts.iter() {
        counts[fact.annotator_index as usize] += 1;
    }
    let mut out: Vec<AnnotatorLabels> = facts
        .annotators
        .iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .map(|(a, labels)| AnnotatorLabels {
            username: a.username.clone(),
            kind: a.kind,
            labels,
        })
        .collect();
    out.sort_by(|a, b| {
        b.labels
            .cmp(&a.labels)
            .then_with(|| a.username.cmp(&b.username))
    });
    out
}

/// The report's model scores for the project, or for the one annotator asked about.
fn models_of(report: QualityReport, annotator: Option<&User>) -> Vec<ModelReport> {
    report
        .models
        .into_iter()
        .filter(|m| annotator.is_none_or(|a| a.username == m.annotator))
        .collect()
}

/// Gives the confusions' example items their external ids and titles (one read of the few
/// items named).
async fn name_examples(
    store: &Store,
    project: &Project,
    confusions: &mut [Confusion],
) -> Result<(), QaError> {
    let ids: Vec<ItemId> = confusions
        .iter()
        .flat_map(|c| c.examples.iter().map(|e| e.item_id))
        .collect();
    let names = store.item_names(project.id, &ids).await?;
    for example in confusions.iter_mut().flat_map(|c| c.examples.iter_mut()) {
        if let Some((external_id, title)) = names.get(&example.item_id) {
            example.external_id.clone_from(external_id);
            example.title.clone_from(title);
        }
    }
    Ok(())
}

/// The labels the report is about: human labels (not "unsure"), of the annotator if one
/// is named.
fn human_labels_of<'a>(facts: &'a LabelFacts, annotator: Option<&User>) -> Vec<LabelFact<'a>> {
    let mine = |annotator_id: UserId| annotator.is_none_or(|a| a.id == annotator_id);
    facts
        .iter()
        .filter(|f| {
            f.annotator.kind == AccountKind::Human
                && f.kind == AnswerKind::Label
                && mine(f.annotator_id)
        })
        .collect()
}

/// The labels against the consensus: per question, by week, and where they differ.
struct Compared {
    agreement: Vec<QuestionAgreement>,
    drift: Vec<WeekAgreement>,
    confusions: Vec<Confusion>,
    matrices: Vec<Matrix>,
}

fn compare_with_consensus(
    questions: &[Question],
    labels: &[LabelFact<'_>],
    truth: &HashMap<(Id, &str), &Value>,
) -> Compared {
    let mut compared = Compared {
        agreement: Vec::new(),
        drift: Vec::new(),
        confusions: Vec::new(),
        matrices: Vec::new(),
    };
    // Week start → (labels compared, labels agreeing), over every question.
    let mut weekly: BTreeMap<i64, (usize, usize)> = BTreeMap::new();
    for question in questions {
        let tally = tally_question(question, labels, truth, &mut weekly);
        compared.agreement.push(QuestionAgreement {
            question: question.key.clone(),
            labels: tally.compared,
            agreeing: tally.agreeing,
            share: (tally.compared > 0).then(|| tally.agreeing as f64 / tally.compared as f64),
        });
        compared
            .confusions
            .extend(top_confusions(question, &tally.confused));
        if question.kind != QuestionKind::Multi && tally.compared > 0 {
            let max = tally.counts.iter().flatten().copied().max().unwrap_or(0);
            compared.matrices.push(Matrix {
                question: question.key.clone(),
                classes: tally.classes,
                counts: tally.counts,
                max,
            });
        }
    }
    compared.drift = weekly
        .into_iter()
        .map(|(start, (n, same))| WeekAgreement {
            week: date_of(start),
            labels: n,
            share: (n > 0).then(|| same as f64 / n as f64),
        })
        .collect();
    compared
}

/// One question's labels counted against the consensus.
struct QuestionTally {
    /// The question's codes, the confusion matrix's rows and columns.
    classes: Vec<String>,
    /// Rows the consensus, columns the label given.
    counts: Vec<Vec<u64>>,
    /// Labels on items the consensus decided.
    compared: usize,
    agreeing: usize,
    /// (consensus, given) → the items labelled so, for single codes that differ.
    confused: HashMap<(String, String), Vec<Id>>,
}

/// Counts the question's labels against the consensus, adding them to the weekly drift.
fn tally_question(
    question: &Question,
    labels: &[LabelFact<'_>],
    truth: &HashMap<(Id, &str), &Value>,
    weekly: &mut BTreeMap<i64, (usize, usize)>,
) -> QuestionTally {
    let classes: Vec<String> = question.options.iter().map(|o| o.value.clone()).collect();
    let index: HashMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let mut counts = vec![vec![0u64; classes.len()]; classes.len()];
    let (mut compared, mut agreeing) = (0usize, 0usize);
    let mut confused: HashMap<(String, String), Vec<Id>> = HashMap::new();
    for fact in labels {
        let Some(given) = fact.answer.get(&question.key).filter(|v| !v.is_null()) else {
            continue;
        };
        let Some(decided) = truth.get(&(fact.item_id.get(), question.key.as_str())) else {
            continue;
        };
        compared += 1;
        let same = same_value(given, decided);
        agreeing += usize::from(same);
        let week = weekly.entry(week_start(fact.created_at)).or_default();
        week.0 += 1;
        week.1 += usize::from(same);
        if let (Some(t), Some(g)) = (code_of(decided), code_of(given)) {
            if let (Some(&ti), Some(&gi)) = (index.get(t.as_str()), index.get(g.as_str())) {
                counts[ti][gi] += 1;
            }
            if !same {
                confused.entry((t, g)).or_default().push(fact.item_id.get());
            }
        }
    }
    QuestionTally {
        classes,
        counts,
        compared,
        agreeing,
        confused,
    }
}

/// Each item once, in the order first met (several annotators make the same confusion on
/// the same item; it is one example).
fn distinct(item_ids: &[Id]) -> impl Iterator<Item = Id> + '_ {
    let mut seen = std::collections::HashSet::new();
    item_ids.iter().copied().filter(move |i| seen.insert(*i))
}

/// The most frequent confusions of a question (ties by name), with example items.
fn top_confusions(
    question: &Question,
    confused: &HashMap<(String, String), Vec<Id>>,
) -> Vec<Confusion> {
    let mut ranked: Vec<(&(String, String), &Vec<Id>)> = confused.iter().collect();
    ranked.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    ranked
        .into_iter()
        .take(TOP_CONFUSIONS)
        .map(|((t, g), item_ids)| Confusion {
            question: question.key.clone(),
            truth: t.clone(),
            given: g.clone(),
            count: item_ids.len(),
            examples: distinct(item_ids)
                .take(EXAMPLES)
                // Named afterwards, by `name_examples`.
                .map(|item_id| Example {
                    item_id: ItemId(item_id),
                    external_id: String::new(),
                    title: String::new(),
                })
                .collect(),
        })
        .collect()
}

/// Expert decisions that differ from this annotator's label (for the project: from the
/// consensus).
fn overturned_labels(
    decisions: &[Adjudication],
    annotator: Option<&User>,
    labels: &[LabelFact<'_>],
) -> Vec<Overturn> {
    let mut overturned = Vec::new();
    for decision in decisions {
        let Value::Object(answer) = &decision.answer else {
            continue;
        };
        for (question, decided) in answer {
            let before: Vec<Value> = match annotator {
                Some(a) => labels
                    .iter()
                    .filter(|f| f.item_id == decision.item_id && f.annotator_id == a.id)
                    .filter_map(|f| f.answer.get(question).cloned())
                    .collect(),
                None => decision
                    .consensus_before
                    .as_ref()
                    .and_then(|c| c.get(question).cloned())
                    .into_iter()
                    .collect(),
            };
            for labelled in before {
                if !labelled.is_null() && !same_value(&labelled, decided) {
                    overturned.push(Overturn {
                        item_id: decision.item_id,
                        external_id: decision.external_id.clone(),
                        title: decision.title.clone(),
                        question: question.clone(),
                        labelled,
                        decided: decided.clone(),
                        rationale: decision.rationale.clone(),
                        clause: decision.guideline_clause.clone(),
                        expert: decision.expert.clone(),
                    });
                }
            }
        }
    }
    overturned
}

/// Accuracy on gold and the mean time per labelled item: the annotator's, or the human
/// team's pooled.
async fn gold_and_time_per_item(
    store: &Store,
    project: &Project,
    annotator: Option<&User>,
) -> Result<(Proportion, Option<i64>), QaError> {
    match annotator {
        Some(a) => match store.annotator_progress(project.id, a.id).await {
            Ok(p) => Ok((
                wilson(p.gold.correct, p.gold.answered, 0.95),
                (p.done_total > 0 && p.time_total_ms > 0).then(|| p.time_total_ms / p.done_total),
            )),
            // No work in the project yet: nothing measured.
            Err(concord_store::StoreError::NotFound(_)) => Ok((wilson(0, 0, 0.95), None)),
            Err(e) => Err(e.into()),
        },
        None => {
            let team = store.team_progress(project.id).await?;
            let (c, n) = team
                .iter()
                .filter(|a| a.kind == AccountKind::Human)
                .fold((0, 0), |(c, n), a| {
                    (c + a.gold.correct, n + a.gold.answered)
                });
            let (time, done) = team
                .iter()
                .fold((0, 0), |(t, d), a| (t + a.time_total_ms, d + a.done_total));
            Ok((
                wilson(c, n, 0.95),
                (done > 0 && time > 0).then(|| time / done),
            ))
        }
    }
}

/// The categories whose per-category α in the last run fell below the target.
fn guideline_flags(report: Option<&QualityReport>) -> Vec<GuidelineFlag> {
    report
        .iter()
        .flat_map(|r| &r.questions)
        .flat_map(|q| {
            q.categories
                .iter()
                .filter(|c| c.revise)
                .map(|c| GuidelineFlag {
                    question: q.key.clone(),
                    category: c.code.clone(),
                    alpha: c.alpha.value,
                })
        })
        .collect()
}

/// A share with its interval and counts, e.g. `75.0 % [30.1–95.4] (3 of 4)`.
fn share(s: &Share) -> String {
    match s.ci {
        Some([low, high]) => format!(
            "{} [{:.1}–{:.1}] ({} of {})",
            pct(s.estimate),
            low * 100.0,
            high * 100.0,
            s.successes,
            s.trials
        ),
        None => "—".into(),
    }
}

/// The automated annotators' section: per question agreement and gold accuracy, per
/// category, and the calibration table.
fn models_markdown(models: &[ModelReport]) -> String {
    let mut md = String::new();
    for m in models {
        md += &format!(
            "\n## Automated annotator {} ({} labels)\n\n",
            m.annotator, m.labels
        );
        for q in &m.questions {
            md += &format!(
                "- {}: agrees with the consensus {}; accuracy on gold {}\n",
                q.question,
                share(&q.agreement),
                share(&q.gold)
            );
            for c in &q.categories {
                md += &format!(
                    "  - {} {}: consensus {}; gold {}\n",
                    q.question,
                    c.code,
                    share(&c.agreement),
                    share(&c.gold)
                );
            }
            for b in &q.calibration {
                md += &format!(
                    "  - stated confidence {:.1}–{:.1} (mean {}): observed {}\n",
                    b.low,
                    b.high,
                    pct(Some(b.mean_confidence)),
                    share(&b.accuracy)
                );
            }
        }
    }
    md
}

fn pct(x: Option<f64>) -> String {
    x.map(|v| format!("{:.1} %", v * 100.0))
        .unwrap_or_else(|| "—".into())
}

fn short(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "none".into(),
        Value::Array(a) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// Markdown an analyst can paste into a message or a ticket.
pub fn to_markdown(f: &Feedback) -> String {
    let mut md = String::new();
    let who = f
        .annotator
        .as_deref()
        .map(|a| format!(" — {a}"))
        .unwrap_or_default();
    md += &format!("# Feedback: {}{who}\n\n", f.project_name);
    md += &format!(
        "Generated {} UTC from the consensus by {}.\n\n",
        date_of(f.generated_at),
        f.consensus_method.as_deref().unwrap_or("(no run yet)")
    );
    md += "## Accuracy\n\n";
    md += &format!(
        "- Gold accuracy: {} ({} of {}; 95 % interval {:.1}–{:.1} %)\n",
        pct(f.gold.estimate),
        f.gold.successes,
        f.gold.trials,
        f.gold.low * 100.0,
        f.gold.high * 100.0
    );
    for a in &f.agreement {
        md += &format!(
            "- Agreement with the consensus on {}: {} of {} labels\n",
            a.question,
            pct(a.share),
            a.labels
        );
    }
    if let Some(ms) = f.mean_time_ms {
        md += &format!("- Mean time per item: {:.1} s\n", ms as f64 / 1000.0);
    }
    md += "\n## Most frequent confusions\n\n";
    if f.confusions.is_empty() {
        md += "None.\n";
    }
    for c in &f.confusions {
        let examples: Vec<String> = c
            .examples
            .iter()
            .map(|e| format!("{} ({})", e.title, e.external_id))
            .collect();
        md += &format!(
            "- {}: labelled **{}** where the consensus is **{}** — {} time(s); e.g. {}\n",
            c.question,
            c.given,
            c.truth,
            c.count,
            examples.join("; ")
        );
    }
    md += "\n## Expert decisions that overturned the labels\n\n";
    if f.overturned.is_empty() {
        md += "None.\n";
    }
    for o in &f.overturned {
        md += &format!(
            "- {} ({}), {}: {} → **{}** — {}{}\n",
            o.title,
            o.external_id,
            o.question,
            short(&o.labelled),
            short(&o.decided),
            o.rationale,
            if o.clause.is_empty() {
                String::new()
            } else {
                format!(" [{}]", o.clause)
            }
        );
    }
    md += &models_markdown(&f.models);
    md += &format!(
        "\n## Guidelines that need work (α below {:.3})\n\n",
        f.target_alpha
    );
    if f.guidelines.is_empty() {
        md += "None.\n";
    }
    for g in &f.guidelines {
        md += &format!(
            "- {} / {}: α {}\n",
            g.question,
            g.category,
            g.alpha
                .map(|a| format!("{a:.3}"))
                .unwrap_or_else(|| "undefined".into())
        );
    }
    md
}

/// One row per finding: `section,question,a,b,count,item,detail`.
pub fn to_csv(f: &Feedback) -> Result<String, QaError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let io = |e: csv::Error| QaError::Settings(format!("writing the CSV: {e}"));
    out.write_record([
        "section",
        "question",
        "truth_or_label",
        "given_or_decided",
        "count",
        "item",
        "detail",
    ])
    .map_err(io)?;
    out.write_record([
        "gold_accuracy",
        "",
        &f.gold.successes.to_string(),
        &f.gold.trials.to_string(),
        &f.gold.trials.to_string(),
        "",
        &pct(f.gold.estimate),
    ])
    .map_err(io)?;
    for a in &f.agreement {
        out.write_record([
            "agreement_with_consensus",
            &a.question,
            &a.agreeing.to_string(),
            &a.labels.to_string(),
            &a.labels.to_string(),
            "",
            &pct(a.share),
        ])
        .map_err(io)?;
    }
    for c in &f.confusions {
        let items: Vec<&str> = c.examples.iter().map(|e| e.external_id.as_str()).collect();
        out.write_record([
            "confusion",
            &c.question,
            &c.truth,
            &c.given,
            &c.count.to_string(),
            &items.join("|"),
            "",
        ])
        .map_err(io)?;
    }
    for o in &f.overturned {
        out.write_record([
            "overturned",
            &o.question,
            &short(&o.labelled),
            &short(&o.decided),
            "1",
            &o.external_id,
            &o.rationale,
        ])
        .map_err(io)?;
    }
    for g in &f.guidelines {
        out.write_record([
            "revise_guideline",
            &g.question,
            &g.category,
            "",
            "",
            "",
            &g.alpha.map(|a| format!("{a:.3}")).unwrap_or_default(),
        ])
        .map_err(io)?;
    }
    let bytes = out
        .into_inner()
        .map_err(|e| QaError::Settings(e.to_string()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
