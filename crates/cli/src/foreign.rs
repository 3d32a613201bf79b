//! `concord import --from label-studio|toloka`: another tool's export mapped onto the
//! project's schema, with a dry-run report of what maps and what does not.

use anyhow::{Context, Result};
use clap::ValueEnum;
use concord_formats::foreign::{Mapping, Source, read_export, read_mapping};
use concord_store::{ForeignReport, Store, Target};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum)]
pub enum Tool {
    /// A Label Studio JSON export (tasks with annotations and predictions).
    LabelStudio,
    /// A Toloka / Crowd-Kit TSV (INPUT:, OUTPUT:, GOLDEN:, ASSIGNMENT:worker_id).
    Toloka,
}

impl From<Tool> for Source {
    fn from(tool: Tool) -> Source {
        match tool {
            Tool::LabelStudio => Source::LabelStudio,
            Tool::Toloka => Source::Toloka,
        }
    }
}

pub struct Options {
    pub tool: Tool,
    pub project: String,
    pub file: PathBuf,
    pub mapping: Option<PathBuf>,
    pub item_type: Option<String>,
    pub dry_run: bool,
    pub json: bool,
}

pub async fn import(store: &Store, options: Options) -> Result<ExitCode> {
    let project = store.project(&options.project).await?;
    let mut mapping = match &options.mapping {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            read_mapping(&path.display().to_string(), &bytes)?
        }
        None => Mapping::default(),
    };
    if options.item_type.is_some() {
        mapping.item_type = options.item_type.clone();
    }
    let label = options.file.display().to_string();
    let bytes = std::fs::read(&options.file).with_context(|| format!("reading {label}"))?;
    let export = read_export(options.tool.into(), &label, &bytes, &mapping)?;
    let report = store
        .import_foreign(&project, &export, &mapping, options.dry_run, None)
        .await?;
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// The report as the terminal shows it.
pub fn render(report: &ForeignReport) -> String {
    let mut out = String::new();
    let items = &report.items;
    out += &format!(
        "{} ({}): {} items ({} new, {} already in the project, {} gold), {} annotations by {} annotators, {} predictions{}\n",
        report.file,
        report.source,
        items.found,
        items.new,
        items.existing,
        items.gold,
        report.annotations,
        report.annotators.len(),
        report.predictions,
        match report.models.is_empty() {
            true => String::new(),
            false => format!(" ({})", report.models.join(", ")),
        }
    );
    if report.annotations_existing + report.predictions_existing > 0 {
        out += &format!(
            "already imported (left out): {} annotations, {} predictions\n",
            report.annotations_existing, report.predictions_existing
        );
    }
    if !report.annotators.is_empty() {
        out += "annotators:\n";
        for a in &report.annotators {
            out += &format!(
                "  {} → {} ({} annotations)\n",
                a.source, a.annotator, a.annotations
            );
        }
    }
    if !report.fields.is_empty() {
        out += "fields:\n";
    }
    for field in &report.fields {
        let target = match &field.target {
            Target::Question(key) => format!("question {key}"),
            Target::Rationale => "rationale".into(),
            Target::Ignored => "not imported".into(),
        };
        let kind = serde_json::to_value(field.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        out += &format!("  {} ({kind}) → {target}\n", field.field);
        for v in &field.values {
            out += &format!("    {:?} → {} ×{}\n", v.value, v.code, v.count);
        }
    }
    for ignored in &report.ignored {
        out += &format!(
            "not imported: field {}: {}\n",
            ignored.field, ignored.reason
        );
    }
    for skipped in &report.skipped {
        out += &format!("skipped: {}: {}\n", skipped.place, skipped.reason);
    }
    for problem in &report.not_mapped {
        let value = problem
            .value
            .as_ref()
            .map(|v| format!("{v:?} "))
            .unwrap_or_default();
        out += &format!(
            "does not map: {}: field {}: {value}{} (×{})\n",
            problem.first, problem.field, problem.reason, problem.count
        );
    }
    out += &match (report.dry_run, report.not_mapped.is_empty()) {
        (true, true) => "dry run: nothing written; the import would succeed\n".to_owned(),
        (true, false) => format!(
            "dry run: nothing written; the import would be refused ({} reasons above)\n",
            report.not_mapped.len()
        ),
        (false, _) => "imported\n".to_owned(),
    };
    out
}
