//! `concord agreement`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use concord_formats::{Format, read_annotations};
use concord_stats::agreement::bootstrap::BootstrapOptions;
use concord_stats::agreement::pairs::pairwise_cohen;
use concord_stats::agreement::per_item::{per_category_alpha, per_item_agreement};
use concord_stats::agreement::report::{
    AgreementOptions, Metric, MetricResult, Prepared, Variance, WeightChoice, compute,
};
use concord_stats::agreement::two_rater::CohenWeights;
use concord_stats::{LabelSpec, LabelTypeRequest, Level, WeightScheme, Weights};
use serde_json::json;

#[derive(Args)]
pub struct AgreementArgs {
    /// CSV / TSV / JSONL file with item, annotator and label columns.
    file: PathBuf,
    /// Coefficients (repeatable): percent, alpha, fleiss-generalized, gwet, bp, cohen, scott,
    /// fleiss, randolph, conger. Default: percent, alpha, fleiss-generalized, gwet, bp
    /// (and cohen with exactly two annotators).
    #[arg(long = "metric", short = 'm', value_name = "M")]
    metrics: Vec<String>,
    /// Krippendorff's α distance: nominal, ordinal, interval, ratio, masi, jaccard, or
    /// `weights` (δ = 1 − w from --weights). Default: nominal (masi for sets).
    #[arg(long)]
    level: Option<String>,
    /// Gwet-family weights: identity, linear, quadratic, ordinal, radical, ratio, circular,
    /// bipolar, custom (with --weights-matrix). Cohen's κ takes identity, linear, quadratic.
    #[arg(long, default_value = "identity")]
    weights: String,
    /// Custom weight matrix as JSON, e.g. '[[1,0.5],[0.5,1]]' (rows and columns in category order).
    #[arg(long, value_name = "JSON")]
    weights_matrix: Option<String>,
    /// Declared categories in order: `a,b,c` or a JSON list. Unused ones still count;
    /// a label outside the list is an error.
    #[arg(long)]
    categories: Option<String>,
    /// How labels are read: auto, category, int, float, bool, set.
    #[arg(long, default_value = "auto")]
    label_type: String,
    /// Input format (default: from the file extension).
    #[arg(long)]
    input_format: Option<String>,
    /// Variance formulas: raw (any number of raters, missing data) or two-rater-table.
    #[arg(long, default_value = "raw")]
    variance: String,
    /// Confidence level of intervals.
    #[arg(long, default_value_t = 0.95)]
    confidence: f64,
    /// Population size of items, for the finite-population correction (default infinite).
    #[arg(long)]
    population: Option<f64>,
    /// Item-cluster bootstrap replicates (0 = none).
    #[arg(long, default_value_t = 0)]
    bootstrap: usize,
    /// Bootstrap seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Cohen's κ for every annotator pair with at least --min-shared shared items.
    #[arg(long)]
    pairs: bool,
    #[arg(long, default_value_t = 10)]
    min_shared: u64,
    /// Where to write the pairs (CSV); default: printed with the report.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// One-vs-rest Krippendorff's α for every category.
    #[arg(long)]
    by_category: bool,
    /// Write per-item agreement and entropy to this CSV.
    #[arg(long, value_name = "FILE")]
    items: Option<PathBuf>,
    /// Output: table, json or csv.
    #[arg(long, default_value = "table")]
    format: String,
}

pub(crate) fn parse_categories(text: &str) -> Result<Vec<String>> {
    let trimmed = text.trim();
    if trimmed.starts_with('[') {
        let values: Vec<serde_json::Value> =
            serde_json::from_str(trimmed).context("--categories: not a valid JSON list")?;
        return Ok(values
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
            .collect());
    }
    Ok(trimmed.split(',').map(|s| s.trim().to_string()).collect())
}

pub fn run(args: AgreementArgs) -> Result<ExitCode> {
    let output = args.format.as_str();
    if !matches!(output, "table" | "json" | "csv") {
        bail!("--format must be table, json or csv (got '{output}')");
    }
    if !(0.5..1.0).contains(&args.confidence) {
        bail!("--confidence must be in [0.5, 1), got {}", args.confidence);
    }
    let kind: LabelTypeRequest = args.label_type.parse().map_err(anyhow::Error::msg)?;
    let categories = args
        .categories
        .as_deref()
        .map(parse_categories)
        .transpose()?;
    let spec = LabelSpec { kind, categories };
    let format = args
        .input_format
        .as_deref()
        .map(str::parse::<Format>)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let scheme: WeightScheme = args.weights.parse().map_err(anyhow::Error::msg)?;
    let variance: Variance = args.variance.parse().map_err(anyhow::Error::msg)?;
    let metrics: Vec<Metric> = args
        .metrics
        .iter()
        .map(|m| m.parse::<Metric>())
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    let (level, level_from_weights) = match args.level.as_deref() {
        None => (None, false),
        Some("weights") => (None, true),
        Some(l) => (Some(l.parse::<Level>().map_err(anyhow::Error::msg)?), false),
    };

    let file = read_annotations(&args.file, format, &spec)?;
    let table = file.table;
    let weights = match (scheme, &args.weights_matrix) {
        (WeightScheme::Custom, Some(json)) => {
            let rows: Vec<Vec<f64>> =
                serde_json::from_str(json).context("--weights-matrix: not a JSON matrix")?;
            WeightChoice::Matrix(Weights::custom(&rows).map_err(anyhow::Error::msg)?)
        }
        (WeightScheme::Custom, None) => bail!("--weights custom needs --weights-matrix"),
        (s, _) => WeightChoice::Scheme(s),
    };
    let alpha_distance = if level_from_weights {
        let w = match &weights {
            WeightChoice::Matrix(w) => w.clone(),
            WeightChoice::Scheme(s) => {
                Weights::for_domain(*s, table.values()).map_err(anyhow::Error::msg)?
            }
        };
        if w.q() != table.n_values() {
            bail!(
                "the weight matrix is {0}×{0} but there are {1} categories",
                w.q(),
                table.n_values()
            );
        }
        Some(concord_formats::conformance::distance_from_weights(&w))
    } else {
        None
    };
    let options = AgreementOptions {
        level,
        alpha_distance,
        weights,
        variance,
        inference: concord_stats::Inference {
            confidence: args.confidence,
            population: args.population,
        },
        bootstrap: (args.bootstrap > 0).then_some(BootstrapOptions {
            replicates: args.bootstrap,
            seed: args.seed,
            confidence: args.confidence,
        }),
    };
    let metrics = if metrics.is_empty() {
        Metric::defaults(table.n_annotators())
    } else {
        metrics
    };

    let prepared = Prepared::new(&table);
    let mut results: Vec<MetricResult> = Vec::new();
    for metric in metrics {
        let bar = (args.bootstrap > 0).then(|| {
            crate::progress::bar(
                args.bootstrap as u64,
                &format!("bootstrap {}", metric.key()),
            )
        });
        let progress = |done: usize| {
            if let Some(bar) = &bar {
                bar.set_position(done as u64);
            }
        };
        let result = compute(&prepared, metric, &options, &progress)?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        results.push(result);
    }

    let by_category = args
        .by_category
        .then(|| per_category_alpha(prepared.units(), table.values(), &options.inference));

    let pairs = if args.pairs {
        let cohen = match &options.weights {
            WeightChoice::Scheme(WeightScheme::Identity) => CohenWeights::Unweighted,
            WeightChoice::Scheme(WeightScheme::Linear) => CohenWeights::Linear,
            WeightChoice::Scheme(WeightScheme::Quadratic) => CohenWeights::Quadratic,
            _ => bail!("--pairs computes Cohen's κ: use --weights identity, linear or quadratic"),
        };
        let bar = crate::progress::bar(0, "annotator pairs");
        let progress = |done: usize, total: usize| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        };
        let pairs = pairwise_cohen(
            &table,
            cohen,
            args.min_shared,
            &options.inference,
            &progress,
        );
        bar.finish_and_clear();
        Some(pairs)
    } else {
        None
    };

    if let Some(path) = &args.items {
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        );
        writeln!(
            out,
            "item,ratings,top_label,top_share,pairwise_agreement,entropy"
        )?;
        for row in per_item_agreement(&table) {
            writeln!(
                out,
                "{},{},{},{},{},{}",
                csv_escape(table.item_name(row.item)),
                row.ratings,
                csv_escape(table.values().name(row.top_value)),
                row.top_share,
                row.pairwise_agreement
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
                row.entropy
            )?;
        }
        out.flush()?;
    }

    let mut pairs_summary = None;
    if let Some(pairs) = &pairs {
        let defined: Vec<f64> = pairs.iter().filter_map(|p| p.estimate.value).collect();
        let mut sorted = defined.clone();
        sorted.sort_by(f64::total_cmp);
        pairs_summary = Some(json!({
            "pairs": pairs.len(),
            "defined": defined.len(),
            "min_shared": args.min_shared,
            "mean_kappa": (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64),
            "median_kappa": sorted.get(sorted.len() / 2),
        }));
        let mut out: Box<dyn Write> = match &args.out {
            Some(path) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            )),
            None => Box::new(std::io::stdout()),
        };
        if args.out.is_some() || output != "json" {
            writeln!(
                out,
                "annotator_a,annotator_b,shared_items,kappa,se,ci_low,ci_high,undefined"
            )?;
            for p in pairs {
                let e = &p.estimate;
                writeln!(
                    out,
                    "{},{},{},{},{},{},{},{}",
                    csv_escape(table.annotator_name(p.annotator_a)),
                    csv_escape(table.annotator_name(p.annotator_b)),
                    p.shared_items,
                    opt(e.value),
                    opt(e.se),
                    opt(e.ci.map(|c| c[0])),
                    opt(e.ci.map(|c| c[1])),
                    csv_escape(e.undefined.as_deref().unwrap_or(""))
                )?;
            }
            out.flush()?;
        }
    }

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match output {
        "json" => {
            let mut doc = json!({
                "file": args.file.display().to_string(),
                "n_rows": file.rows,
                "n_items": table.n_items(),
                "n_annotators": table.n_annotators(),
                "label_kind": table.values().kind(),
                "categories": table.values().names(),
                "metrics": results,
            });
            if let Some(by_category) = &by_category {
                doc["by_category"] = serde_json::to_value(by_category)?;
            }
            if let Some(summary) = pairs_summary {
                doc["pairs"] = summary;
                if args.out.is_none() {
                    if let Some(pairs) = &pairs {
                        doc["pairs"]["list"] = pairs
                            .iter()
                            .map(|p| {
                                json!({"annotator_a": table.annotator_name(p.annotator_a),
                                       "annotator_b": table.annotator_name(p.annotator_b),
                                       "shared_items": p.shared_items, "estimate": p.estimate})
                            })
                            .collect();
                    }
                }
            }
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
        "csv" => {
            writeln!(
                out,
                "metric,name,value,undefined,pa,pe,se,ci_low,ci_high,z,p_value,ci_method,interpretation"
            )?;
            for r in &results {
                let e = &r.estimate;
                let ci = r.bootstrap.as_ref().map(|b| b.ci).or(e.ci);
                writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{},{},{}",
                    r.metric.key(),
                    csv_escape(&r.name),
                    opt(e.value),
                    csv_escape(e.undefined.as_deref().unwrap_or("")),
                    opt(e.pa),
                    opt(e.pe),
                    opt(r.bootstrap.as_ref().map(|b| b.se).or(e.se)),
                    opt(ci.map(|c| c[0])),
                    opt(ci.map(|c| c[1])),
                    opt(e.z),
                    opt(e.p_value),
                    csv_escape(&ci_method(r)),
                    csv_escape(r.interpretation.as_deref().unwrap_or(""))
                )?;
            }
        }
        _ => print_table(
            &mut out,
            &table,
            file.rows,
            &results,
            by_category.as_deref(),
            pairs_summary.as_ref(),
            &options,
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

fn ci_method(r: &MetricResult) -> String {
    match &r.bootstrap {
        Some(b) => format!("bootstrap, B = {}", b.replicates),
        None => r.estimate.ci_method.clone().unwrap_or_default(),
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn csv_escape(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn print_table(
    out: &mut impl Write,
    table: &concord_stats::AnnotationTable,
    rows: usize,
    results: &[MetricResult],
    by_category: Option<&[concord_stats::agreement::per_item::CategoryAlpha]>,
    pairs: Option<&serde_json::Value>,
    options: &AgreementOptions,
) -> Result<()> {
    let units = Prepared::new(table);
    let pairable = units.units().pairable_values();
    writeln!(
        out,
        "{} ratings · {} items · {} annotators · {} categories · {} pairable values",
        rows,
        table.n_items(),
        table.n_annotators(),
        table.n_values(),
        pairable
    )?;
    let level = (options.confidence_percent()).round();
    // Weighting is shown only where it is not the default.
    let label = |r: &MetricResult| -> String {
        if matches!(r.weighting.as_str(), "identity" | "nominal") {
            r.name.clone()
        } else {
            format!("{} ({})", r.name, r.weighting)
        }
    };
    let width = results
        .iter()
        .map(|r| label(r).chars().count())
        .max()
        .unwrap_or(10)
        .max(11);
    let pad = |text: &str, width: usize| {
        format!(
            "{text}{}",
            " ".repeat(width.saturating_sub(text.chars().count()))
        )
    };
    writeln!(out)?;
    writeln!(
        out,
        "{} {:>8}  {:<16} {:<20} interpretation",
        pad("coefficient", width),
        "value",
        format!("{level}% CI"),
        "CI method",
    )?;
    for r in results {
        let e = &r.estimate;
        match e.value {
            Some(v) => {
                let ci = r.bootstrap.as_ref().map(|b| b.ci).or(e.ci);
                let ci_text = ci
                    .map(|[lo, hi]| format!("[{lo:.3}, {hi:.3}]"))
                    .unwrap_or_else(|| "—".into());
                writeln!(
                    out,
                    "{} {:>8.4}  {:<16} {:<20} {}",
                    pad(&label(r), width),
                    v,
                    ci_text,
                    ci_method(r),
                    r.interpretation.as_deref().unwrap_or("")
                )?;
            }
            None => writeln!(
                out,
                "{} {:>8}  {}",
                pad(&label(r), width),
                "undefined",
                e.undefined.as_deref().unwrap_or("")
            )?,
        }
        for w in &r.warnings {
            writeln!(out, "{}   ! {w}", " ".repeat(width))?;
        }
    }
    if let Some(categories) = by_category {
        writeln!(out)?;
        writeln!(
            out,
            "{:<26} {:>8}  {:>8}  interpretation",
            "category (one vs rest)", "α", "ratings"
        )?;
        for c in categories {
            match c.estimate.value {
                Some(v) => writeln!(
                    out,
                    "{:<26} {:>8.4}  {:>8}  {}",
                    c.category,
                    v,
                    c.ratings,
                    concord_stats::agreement::report::interpret(Metric::KrippendorffAlpha, v)
                )?,
                None => writeln!(
                    out,
                    "{:<26} {:>8}  {:>8}  {}",
                    c.category,
                    "undefined",
                    c.ratings,
                    c.estimate.undefined.as_deref().unwrap_or("")
                )?,
            }
        }
    }
    if let Some(p) = pairs {
        writeln!(out)?;
        writeln!(out, "annotator pairs: {p}")?;
    }
    Ok(())
}

trait ConfidencePercent {
    fn confidence_percent(&self) -> f64;
}

impl ConfidencePercent for AgreementOptions {
    fn confidence_percent(&self) -> f64 {
        self.inference.confidence * 100.0
    }
}
