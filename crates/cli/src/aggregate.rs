//! `concord aggregate`: consensus labels with posteriors, and annotator quality.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use concord_formats::{Format, read_annotations, read_gold};
use concord_stats::aggregate::metrics::{
    UncertaintyBy, accuracy_against, consistency_by_item, label_accuracy, uncertainty,
};
use concord_stats::aggregate::multi_label::binary_relevance;
use concord_stats::aggregate::{AggregateOptions, Aggregation, Method, TieRule, aggregate};
use concord_stats::{AnnotationTable, LabelKind, LabelSpec, LabelTypeRequest};
use serde_json::{Value, json};

use crate::item_rows::{ItemRows, agreement_with, entropy};

#[derive(Args)]
pub struct AggregateArgs {
    /// CSV / TSV / JSONL file with item, annotator and label columns.
    file: PathBuf,
    /// Model: mv, wawa, zbs, gold-mv, ds, one-coin-ds, glad, mace, kos, mmsr.
    #[arg(long, short = 'm', default_value = "ds")]
    method: String,
    /// Labels are sets (JSON list or a|b|c): aggregate each category (binary relevance).
    #[arg(long)]
    multi_label: bool,
    /// Known answers the model may use (gold majority vote, gold clamping in Dawid–Skene): item,label.
    #[arg(long, value_name = "FILE")]
    known: Option<PathBuf>,
    /// Answers used only to score the output (never given to the model): item,label.
    #[arg(long, value_name = "FILE")]
    gold: Option<PathBuf>,
    /// Maximum iterations (EM, message passing).
    #[arg(long)]
    iterations: Option<usize>,
    /// Stop when the objective improves by less than this.
    #[arg(long, allow_hyphen_values = true)]
    tol: Option<f64>,
    /// Majority-vote ties: first (first label in sorted order), random (seeded) or undecided.
    #[arg(long, default_value = "first")]
    tie: String,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Report items whose consensus posterior is below this.
    #[arg(long, default_value_t = 0.7)]
    min_confidence: f64,
    /// Annotator weights for majority vote (CSV: annotator,skill).
    #[arg(long, value_name = "FILE")]
    skills: Option<PathBuf>,
    /// Dirichlet smoothing added to Dawid–Skene confusion counts.
    #[arg(long, default_value_t = 0.0)]
    smoothing: f64,
    /// MACE fitting: vb (variational Bayes) or em.
    #[arg(long, default_value = "vb")]
    mace_method: String,
    /// MACE random restarts.
    #[arg(long, default_value_t = 10)]
    restarts: usize,
    /// Per-item output: .csv or .jsonl (label, posterior, entropy, agreement).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Per-annotator output (CSV): skill, accuracy on gold and against the consensus, confusion matrix.
    #[arg(long, value_name = "FILE")]
    annotators: Option<PathBuf>,
    /// How labels are read: auto, category, int, float, bool, set.
    #[arg(long, default_value = "auto")]
    label_type: String,
    /// Declared categories, `a,b,c` or a JSON list.
    #[arg(long)]
    categories: Option<String>,
    #[arg(long)]
    input_format: Option<String>,
    /// Output: table or json.
    #[arg(long, default_value = "table")]
    format: String,
}

impl AggregateArgs {
    /// Whether the method iterates over its tables. Majority vote (gold or not) and Wawa
    /// pass over them two or three times: huge pages only add their 2 MiB zeroing to
    /// those, and majority vote with `--out` at 5M labels took 0.55–0.98 s with them,
    /// 0.58–0.64 s without (Wawa 0.98–1.45 s against 0.79–0.86 s).
    pub fn iterates(&self) -> bool {
        !matches!(
            self.method.parse::<Method>(),
            Ok(Method::MajorityVote | Method::GoldMajorityVote | Method::Wawa)
        )
    }
}

pub fn run(args: AggregateArgs) -> Result<ExitCode> {
    if !matches!(args.format.as_str(), "table" | "json") {
        bail!("--format must be table or json (got '{}')", args.format);
    }
    let method: Method = args.method.parse().map_err(anyhow::Error::msg)?;
    let tie: TieRule = args.tie.parse().map_err(anyhow::Error::msg)?;
    if !matches!(args.mace_method.as_str(), "vb" | "em") {
        bail!("--mace-method must be vb or em");
    }
    let mut kind: LabelTypeRequest = args.label_type.parse().map_err(anyhow::Error::msg)?;
    if args.multi_label && kind == LabelTypeRequest::Auto {
        kind = LabelTypeRequest::Exactly(LabelKind::Set);
    }
    let categories = args
        .categories
        .as_deref()
        .map(crate::agreement::parse_categories)
        .transpose()?;
    let format = args
        .input_format
        .as_deref()
        .map(str::parse::<Format>)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let table = read_annotations(&args.file, format, &LabelSpec { kind, categories })?.table;
    if args.multi_label != table.values().is_sets() {
        bail!("multi-label labels need --multi-label (and --multi-label needs set labels)");
    }
    let known = args
        .known
        .as_deref()
        .map(|p| read_gold(p, &table))
        .transpose()?;
    let gold = args
        .gold
        .as_deref()
        .map(|p| read_gold(p, &table))
        .transpose()?;
    let skills = args
        .skills
        .as_deref()
        .map(|p| read_skills(p, &table))
        .transpose()?;
    if skills.is_some() && method != Method::MajorityVote {
        bail!("--skills weights majority vote only (--method mv)");
    }
    let options = AggregateOptions {
        tie,
        seed: args.seed,
        iterations: args.iterations,
        tol: args.tol,
        known: known.as_ref().map(|k| k.known.clone()),
        smoothing: args.smoothing,
        skills,
        mace_variational: args.mace_method == "vb",
        mace_restarts: args.restarts,
    };
    let bar = crate::progress::spinner(method.name());
    let progress = |iteration: usize, objective: f64| {
        bar.set_message(format!(
            "{}: iteration {iteration}, objective {objective:.6}",
            method.name()
        ));
        bar.tick();
    };
    if args.multi_label {
        let (labels, per_category) = binary_relevance(&table, method, &options, &progress)?;
        bar.finish_and_clear();
        return report_multi_label(&args, &table, method, &labels, &per_category);
    }
    let result = aggregate(&table, method, &options, &progress)?;
    bar.finish_and_clear();

    let gold_labels = gold.as_ref().map(|g| g.known.per_item(table.n_items()));
    let confidence = result.confidence();
    let skills_for_metrics = one_coin_skills(&table, &result);
    let consistency = consistency_by_item(&table, &result.labels, &skills_for_metrics);
    let item_uncertainty = uncertainty(&table, None, UncertaintyBy::Item);
    let vs_aggregate = accuracy_against(&table, &result.labels);
    let on_gold = gold_labels.as_ref().map(|g| accuracy_against(&table, g));

    if let Some(path) = &args.out {
        write_items(path, &table, &result, &confidence, gold_labels.as_deref())?;
    }
    if let Some(path) = &args.annotators {
        write_annotators(
            path,
            &table,
            &result,
            &vs_aggregate.per_annotator,
            on_gold.as_ref().map(|a| a.per_annotator.as_slice()),
        )?;
    }

    let below = confidence
        .iter()
        .filter(|c| c.is_some_and(|c| c < args.min_confidence))
        .count();
    let undecided = result.labels.iter().filter(|l| l.is_none()).count();
    let ties = result.tied.iter().filter(|t| **t).count();
    let model_accuracy = gold_labels
        .as_ref()
        .and_then(|g| label_accuracy(&result.labels, g));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let label_counts = {
        let mut counts = vec![0usize; result.k];
        for label in result.labels.iter().flatten() {
            counts[*label as usize] += 1;
        }
        counts
    };
    let skill_summary = result.skills.as_ref().map(|s| quantiles(s));
    let summary = json!({
        "file": args.file.display().to_string(),
        "method": method.key(),
        "n_items": table.n_items(),
        "n_annotators": table.n_annotators(),
        "n_ratings": table.n_rows(),
        "iterations": result.iterations,
        "objective": result.loss_history.last(),
        "class_priors": result.priors.as_ref().map(|p| named(&table, p)),
        "label_counts": table.values().names().iter().zip(&label_counts).map(|(n, c)| (n.clone(), json!(c))).collect::<serde_json::Map<_, _>>(),
        "skills": skill_summary,
        "min_confidence": args.min_confidence,
        "items_below_min_confidence": below,
        "ties": ties,
        "undecided": undecided,
        "consistency": mean(&consistency),
        "uncertainty": mean(&item_uncertainty),
        "uncertainty_by_annotator": mean(&uncertainty(&table, None, UncertaintyBy::Annotator)),
        "loss_history": result.loss_history,
        "annotation_accuracy_vs_consensus": vs_aggregate.overall,
        "known_answers": known.as_ref().map(|k| json!({"rows": k.rows, "unknown_items": k.unknown_items})),
        "gold": gold.as_ref().map(|g| json!({
            "rows": g.rows,
            "unknown_items": g.unknown_items,
            "items_scored": model_accuracy.map(|m| m.1),
            "label_accuracy": model_accuracy.map(|m| m.0),
            "annotation_accuracy": on_gold.as_ref().and_then(|a| a.overall),
        })),
    });
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.format == "json" {
        let mut doc = summary;
        if args.out.is_none() {
            doc["items"] = Value::Array(
                (0..table.n_items() as u32)
                    .map(|item| item_json(&table, &result, item, confidence[item as usize]))
                    .collect(),
            );
        }
        if args.annotators.is_none() {
            doc["annotators"] = Value::Array(
                (0..table.n_annotators() as u32)
                    .map(|a| {
                        json!({
                            "annotator": table.annotator_name(a),
                            "skill": result.skills.as_ref().map(|s| s[a as usize]),
                            "accuracy_vs_consensus": vs_aggregate.per_annotator[a as usize],
                            "accuracy_on_gold": on_gold.as_ref().and_then(|g| g.per_annotator[a as usize]),
                        })
                    })
                    .collect(),
            );
        }
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{} · {} items · {} annotators · {} ratings",
            method.name(),
            table.n_items(),
            table.n_annotators(),
            table.n_rows()
        )?;
        if result.iterations > 0 {
            writeln!(
                out,
                "iterations run: {}{}",
                result.iterations,
                result
                    .loss_history
                    .last()
                    .map(|l| format!(" · final objective {l:.6}"))
                    .unwrap_or_default()
            )?;
        }
        if let Some(priors) = &result.priors {
            let text: Vec<String> = table
                .values()
                .names()
                .iter()
                .zip(priors)
                .map(|(n, p)| format!("{n} {p:.3}"))
                .collect();
            writeln!(out, "class priors: {}", text.join(" · "))?;
        }
        let counts: Vec<String> = table
            .values()
            .names()
            .iter()
            .zip(&label_counts)
            .map(|(n, c)| format!("{n} {c}"))
            .collect();
        writeln!(out, "consensus labels: {}", counts.join(" · "))?;
        if let Some(q) = &skill_summary {
            writeln!(
                out,
                "annotator skill: min {:.3} · q1 {:.3} · median {:.3} · q3 {:.3} · max {:.3}",
                q["min"].as_f64().unwrap_or(f64::NAN),
                q["q1"].as_f64().unwrap_or(f64::NAN),
                q["median"].as_f64().unwrap_or(f64::NAN),
                q["q3"].as_f64().unwrap_or(f64::NAN),
                q["max"].as_f64().unwrap_or(f64::NAN)
            )?;
        }
        writeln!(
            out,
            "items below confidence {}: {below}",
            args.min_confidence
        )?;
        writeln!(
            out,
            "ties: {ties}{}",
            if undecided > 0 {
                format!(" ({undecided} left undecided)")
            } else {
                String::new()
            }
        )?;
        writeln!(
            out,
            "consistency {:.4} · uncertainty {:.4} (nats)",
            mean(&consistency),
            mean(&item_uncertainty)
        )?;
        if let Some(g) = &gold {
            match model_accuracy {
                Some((accuracy, n)) => {
                    writeln!(out, "accuracy on gold: {accuracy:.4} over {n} items")?
                }
                None => writeln!(out, "accuracy on gold: no gold item was annotated")?,
            }
            if g.unknown_items > 0 {
                writeln!(
                    out,
                    "({} gold rows name items without annotations)",
                    g.unknown_items
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Skills on a one-coin scale for consistency: the model's skills when they are
/// accuracies, else each annotator's accuracy against the consensus.
fn one_coin_skills(table: &AnnotationTable, result: &Aggregation) -> Vec<f64> {
    match (&result.skills, result.method) {
        (
            Some(skills),
            Method::MajorityVote
            | Method::Wawa
            | Method::ZeroBasedSkill
            | Method::GoldMajorityVote
            | Method::OneCoinDawidSkene,
        ) => skills.clone(),
        _ => accuracy_against(table, &result.labels)
            .per_annotator
            .iter()
            .map(|a| a.unwrap_or(0.5))
            .collect(),
    }
}

fn named(table: &AnnotationTable, values: &[f64]) -> serde_json::Map<String, Value> {
    table
        .values()
        .names()
        .iter()
        .zip(values)
        .map(|(n, v)| (n.clone(), json!(v)))
        .collect()
}

fn quantiles(values: &[f64]) -> Value {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return Value::Null;
    }
    sorted.sort_by(f64::total_cmp);
    let at = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
    json!({"min": at(0.0), "q1": at(0.25), "median": at(0.5), "q3": at(0.75), "max": at(1.0)})
}

fn item_json(
    table: &AnnotationTable,
    result: &Aggregation,
    item: u32,
    confidence: Option<f64>,
) -> Value {
    let label = result.labels[item as usize];
    json!({
        "item": table.item_name(item),
        "label": label.map(|l| table.values().name(l)),
        "confidence": confidence,
        "posterior": result.proba(item).map(|row| named(table, &row)),
        "entropy": result.proba(item).as_deref().map(entropy),
        "agreement": agreement_with(table, item, label),
        "ratings": table.item_values(item).len(),
        "tied": result.tied[item as usize],
    })
}

fn create(path: &Path) -> Result<std::io::BufWriter<std::fs::File>> {
    Ok(std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    ))
}

fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn write_items(
    path: &Path,
    table: &AnnotationTable,
    result: &Aggregation,
    confidence: &[Option<f64>],
    gold: Option<&[Option<u32>]>,
) -> Result<()> {
    let mut out = create(path)?;
    let rows = ItemRows {
        table,
        result,
        confidence,
        gold,
    };
    rows.write(&mut out, Format::from_path(path) == Format::Jsonl)
        .and_then(|()| out.flush())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn write_annotators(
    path: &Path,
    table: &AnnotationTable,
    result: &Aggregation,
    vs_consensus: &[Option<f64>],
    on_gold: Option<&[Option<f64>]>,
) -> Result<()> {
    let mut out = create(path)?;
    writeln!(
        out,
        "annotator,ratings,skill,accuracy_vs_consensus,accuracy_on_gold,confusion"
    )?;
    let names = table.values().names();
    let ratings = table.annotator_rating_counts();
    for a in 0..table.n_annotators() {
        let confusion = result.confusion.as_ref().map(|c| {
            let matrix: serde_json::Map<String, Value> = (0..c.k)
                .map(|t| {
                    let row: serde_json::Map<String, Value> = (0..c.k)
                        .map(|o| (names[o].clone(), json!(c.get(a, t, o))))
                        .collect();
                    (names[t].clone(), Value::Object(row))
                })
                .collect();
            Value::Object(matrix).to_string()
        });
        writeln!(
            out,
            "{},{},{},{},{},{}",
            csv(table.annotator_name(a as u32)),
            ratings[a],
            opt(result.skills.as_ref().map(|s| s[a])),
            opt(vs_consensus[a]),
            opt(on_gold.and_then(|g| g[a])),
            confusion.map(|c| csv(&c)).unwrap_or_default()
        )?;
    }
    out.flush()?;
    Ok(())
}

fn report_multi_label(
    args: &AggregateArgs,
    table: &AnnotationTable,
    method: Method,
    labels: &[Vec<u32>],
    per_category: &[concord_stats::aggregate::multi_label::CategoryConsensus],
) -> Result<ExitCode> {
    let elements = table.values().elements();
    let set_name = |set: &[u32]| {
        set.iter()
            .map(|&e| elements[e as usize].as_str())
            .collect::<Vec<_>>()
    };
    if let Some(path) = &args.out {
        let mut out = create(path)?;
        let jsonl = Format::from_path(path) == Format::Jsonl;
        if !jsonl {
            writeln!(out, "item,labels")?;
        }
        for (item, set) in labels.iter().enumerate() {
            if jsonl {
                writeln!(
                    out,
                    "{}",
                    json!({"item": table.item_name(item as u32), "labels": set_name(set)})
                )?;
            } else {
                writeln!(
                    out,
                    "{},{}",
                    csv(table.item_name(item as u32)),
                    csv(&set_name(set).join("|"))
                )?;
            }
        }
        out.flush()?;
    }
    let counts: Vec<(String, usize)> = per_category
        .iter()
        .enumerate()
        .map(|(e, c)| {
            (
                c.category.clone(),
                labels.iter().filter(|s| s.contains(&(e as u32))).count(),
            )
        })
        .collect();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.format == "json" {
        let mut doc = json!({
            "method": method.key(),
            "multi_label": true,
            "n_items": table.n_items(),
            "category_counts": counts.iter().map(|(c, n)| (c.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
        });
        if args.out.is_none() {
            doc["items"] = labels
                .iter()
                .enumerate()
                .map(|(item, set)| json!({"item": table.item_name(item as u32), "labels": set_name(set)}))
                .collect();
        }
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{} per category (binary relevance) · {} items",
            method.name(),
            table.n_items()
        )?;
        for (category, n) in counts {
            writeln!(out, "{category}: {n} items")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Annotator weights: `annotator,skill` rows; annotators not listed weigh 1.
fn read_skills(path: &Path, table: &AnnotationTable) -> Result<Vec<f64>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut skills = vec![1.0; table.n_annotators()];
    for (index, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let (name, value) = line.rsplit_once(',').with_context(|| {
            format!(
                "{}, line {}: expected annotator,skill",
                path.display(),
                index + 1
            )
        })?;
        let value: f64 = value
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .with_context(|| {
                format!(
                    "{}, line {}, field 'skill': '{}' is not a number",
                    path.display(),
                    index + 1,
                    value.trim()
                )
            })?;
        if let Some(a) = table.annotators().get(name.trim()) {
            skills[a as usize] = value;
        }
    }
    Ok(skills)
}
