//! `concord agreement`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use concord_formats::{Format, read_annotations};
use concord_stats::agreement::bootstrap::BootstrapOptions;
use concord_stats::agreement::pairs::{PairAgreement, pairwise_cohen};
use concord_stats::agreement::per_item::{CategoryAlpha, per_category_alpha, per_item_agreement};
use concord_stats::agreement::report::{
    AgreementOptions, Metric, MetricResult, Prepared, Variance, WeightChoice, compute,
};
use concord_stats::agreement::two_rater::CohenWeights;
use concord_stats::{AnnotationTable, LabelSpec, LabelTypeRequest, Level, WeightScheme, Weights};
use serde_json::{Value, json};

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
    let checked = CheckedArgs::from_args(&args)?;
    let file = read_annotations(&args.file, checked.format, &checked.spec)?;
    let table = &file.table;
    let options = agreement_options(&args, &checked, table)?;
    let metrics = if checked.metrics.is_empty() {
        Metric::defaults(table.n_annotators())
    } else {
        checked.metrics
    };
    let prepared = Prepared::new(table);
    let results = compute_metrics(&prepared, metrics, &options, args.bootstrap)?;
    let by_category = args
        .by_category
        .then(|| per_category_alpha(prepared.units(), table.values(), &options.inference));
    let pairs = if args.pairs {
        Some(annotator_pairs(table, &options, args.min_shared)?)
    } else {
        None
    };
    if let Some(path) = &args.items {
        write_item_agreement(path, table)?;
    }
    let pairs_summary = match &pairs {
        Some(pairs) => {
            // The pairs CSV goes to --out, or is printed ahead of a table or CSV report.
            if args.out.is_some() || checked.output != "json" {
                write_pairs_csv(args.out.as_deref(), table, pairs)?;
            }
            Some(summarise_pairs(pairs, args.min_shared))
        }
        None => None,
    };
    let report = Report {
        rows: file.rows,
        table,
        results: &results,
        by_category: by_category.as_deref(),
        pairs: pairs.as_deref(),
        pairs_summary,
    };
    print_report(&args, checked.output, &report, &options)?;
    Ok(ExitCode::SUCCESS)
}

/// The options read from the command line, checked before the file is read so a typo
/// costs no parsing.
struct CheckedArgs<'a> {
    /// table, json or csv.
    output: &'a str,
    spec: LabelSpec,
    format: Option<Format>,
    scheme: WeightScheme,
    variance: Variance,
    /// Empty: the default set for the number of annotators.
    metrics: Vec<Metric>,
    level: Option<Level>,
    /// `--level weights`: α's distance is 1 − w from the weights.
    level_from_weights: bool,
}

impl<'a> CheckedArgs<'a> {
    fn from_args(args: &'a AgreementArgs) -> Result<Self> {
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
        Ok(CheckedArgs {
            output,
            spec: LabelSpec { kind, categories },
            format,
            scheme,
            variance,
            metrics,
            level,
            level_from_weights,
        })
    }
}

/// The engine's options; weights and α's distance depend on the categories read.
fn agreement_options(
    args: &AgreementArgs,
    checked: &CheckedArgs<'_>,
    table: &AnnotationTable,
) -> Result<AgreementOptions> {
    let weights = weight_choice(checked.scheme, args.weights_matrix.as_deref())?;
    let alpha_distance = if checked.level_from_weights {
        Some(alpha_distance_from_weights(&weights, table)?)
    } else {
        None
    };
    Ok(AgreementOptions {
        level: checked.level,
        alpha_distance,
        weights,
        variance: checked.variance,
        inference: concord_stats::Inference {
            confidence: args.confidence,
            population: args.population,
        },
        bootstrap: (args.bootstrap > 0).then_some(BootstrapOptions {
            replicates: args.bootstrap,
            seed: args.seed,
            confidence: args.confidence,
        }),
    })
}

/// `--weights`, with the matrix of `--weights-matrix` for `custom`.
fn weight_choice(scheme: WeightScheme, matrix: Option<&str>) -> Result<WeightChoice> {
    Ok(match (scheme, matrix) {
        (WeightScheme::Custom, Some(json)) => {
            let rows: Vec<Vec<f64>> =
                serde_json::from_str(json).context("--weights-matrix: not a JSON matrix")?;
            WeightChoice::Matrix(Weights::custom(&rows).map_err(anyhow::Error::msg)?)
        }
        (WeightScheme::Custom, None) => bail!("--weights custom needs --weights-matrix"),
        (s, _) => WeightChoice::Scheme(s),
    })
}

/// `--level weights`: α's distance δ = 1 − w, from a matrix the size of the categories.
fn alpha_distance_from_weights(
    weights: &WeightChoice,
    table: &AnnotationTable,
) -> Result<Vec<f64>> {
    let w = match weights {
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
    Ok(concord_formats::conformance::distance_from_weights(&w))
}

/// Each coefficient, with a progress bar while its bootstrap runs.
fn compute_metrics(
    prepared: &Prepared<'_>,
    metrics: Vec<Metric>,
    options: &AgreementOptions,
    replicates: usize,
) -> Result<Vec<MetricResult>> {
    let mut results = Vec::with_capacity(metrics.len());
    for metric in metrics {
        let bar = (replicates > 0).then(|| {
            crate::progress::bar(replicates as u64, &format!("bootstrap {}", metric.key()))
        });
        let progress = |done: usize| {
            if let Some(bar) = &bar {
                bar.set_position(done as u64);
            }
        };
        let result = compute(prepared, metric, options, &progress)?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        results.push(result);
    }
    Ok(results)
}

/// `--pairs`: Cohen's κ for every annotator pair sharing at least `min_shared` items.
fn annotator_pairs(
    table: &AnnotationTable,
    options: &AgreementOptions,
    min_shared: u64,
) -> Result<Vec<PairAgreement>> {
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
    let pairs = pairwise_cohen(table, cohen, min_shared, &options.inference, &progress);
    bar.finish_and_clear();
    Ok(pairs)
}

/// `--items`: per-item agreement and entropy as CSV.
fn write_item_agreement(path: &Path, table: &AnnotationTable) -> Result<()> {
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    writeln!(
        out,
        "item,ratings,top_label,top_share,pairwise_agreement,entropy"
    )?;
    for row in per_item_agreement(table) {
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
    Ok(())
}

/// How many pairs, how many defined, and their mean and median κ.
fn summarise_pairs(pairs: &[PairAgreement], min_shared: u64) -> Value {
    let defined: Vec<f64> = pairs.iter().filter_map(|p| p.estimate.value).collect();
    let mut sorted = defined.clone();
    sorted.sort_by(f64::total_cmp);
    json!({
        "pairs": pairs.len(),
        "defined": defined.len(),
        "min_shared": min_shared,
        "mean_kappa": (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64),
        "median_kappa": sorted.get(sorted.len() / 2),
    })
}

/// The pairs as CSV, to `path` or to stdout.
fn write_pairs_csv(
    path: Option<&Path>,
    table: &AnnotationTable,
    pairs: &[PairAgreement],
) -> Result<()> {
    let mut out: Box<dyn Write> = match path {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout()),
    };
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
    Ok(())
}

/// Everything the printed report shows.
struct Report<'a> {
    /// Ratings read from the file.
    rows: usize,
    table: &'a AnnotationTable,
    results: &'a [MetricResult],
    by_category: Option<&'a [CategoryAlpha]>,
    pairs: Option<&'a [PairAgreement]>,
    pairs_summary: Option<Value>,
}

/// The report on stdout in the chosen format.
fn print_report(
    args: &AgreementArgs,
    output: &str,
    report: &Report<'_>,
    options: &AgreementOptions,
) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match output {
        "json" => {
            // With --out the pairs went to the file; otherwise they are listed here.
            let listed_pairs = report.pairs.filter(|_| args.out.is_none());
            let doc = json_report(&args.file, report, listed_pairs)?;
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
        "csv" => write_metrics_csv(&mut out, report.results)?,
        _ => print_table(
            &mut out,
            report.table,
            report.rows,
            report.results,
            report.by_category,
            report.pairs_summary.as_ref(),
            options,
        )?,
    }
    Ok(())
}

/// `--format json`.
fn json_report(
    file: &Path,
    report: &Report<'_>,
    listed_pairs: Option<&[PairAgreement]>,
) -> Result<Value> {
    let table = report.table;
    let mut doc = json!({
        "file": file.display().to_string(),
        "n_rows": report.rows,
        "n_items": table.n_items(),
        "n_annotators": table.n_annotators(),
        "label_kind": table.values().kind(),
        "categories": table.values().names(),
        "metrics": report.results,
    });
    if let Some(by_category) = report.by_category {
        doc["by_category"] = serde_json::to_value(by_category)?;
    }
    if let Some(summary) = &report.pairs_summary {
        doc["pairs"] = summary.clone();
        if let Some(pairs) = listed_pairs {
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
    Ok(doc)
}

/// `--format csv`: one row per coefficient.
fn write_metrics_csv(out: &mut impl Write, results: &[MetricResult]) -> Result<()> {
    writeln!(
        out,
        "metric,name,value,undefined,pa,pe,se,ci_low,ci_high,z,p_value,ci_method,interpretation"
    )?;
    for r in results {
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
    Ok(())
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
