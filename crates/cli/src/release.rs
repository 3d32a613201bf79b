//! `concord release`: freeze a project's final labels as a named dataset release, list
//! releases, export one (items or individual labels, streamed), and compare two.

use crate::platform::{DatabaseArgs, runtime};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use concord_formats::items::RecordFormat;
use concord_formats::parquet::{
    ROWS_PER_GROUP, ReleaseItemParquetWriter, ReleaseLabelParquetWriter, release_metadata,
};
use concord_formats::release::{ReleaseItemWriter, ReleaseLabelWriter};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum ReleaseCommand {
    /// Freeze the current final labels (adjudicated, else consensus) as release NAME.
    Create {
        project: String,
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// The project's releases, newest first.
    List {
        project: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Write a release: one record per item, or with --labels the individual labels.
    Export(ExportArgs),
    /// What changed between two releases of a project.
    Diff {
        project: String,
        from: String,
        to: String,
        /// Print the changes as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Jsonl,
    Csv,
    /// Typed columns, streamed in row groups; the QA summary in the file's metadata.
    Parquet,
}

#[derive(Args)]
pub struct ExportArgs {
    project: String,
    name: String,
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    format: Format,
    /// The individual labels instead of the items. With CSV, name the question: the file is
    /// `item,annotator,label`, ready for `concord agreement` and `concord aggregate`.
    #[arg(long)]
    labels: bool,
    #[arg(long)]
    question: Option<String>,
    /// Output file (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    db: DatabaseArgs,
}

pub fn run(command: ReleaseCommand) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        match command {
            ReleaseCommand::Create { project, name, description, db } => {
                let store = db.open().await?;
                let project = store.project(&project).await?;
                let release =
                    concord_qa::create_release(&store, &project, &name, &description, None).await?;
                println!(
                    "release {} of {}: {} items (consensus by {}, run {})",
                    release.name,
                    project.slug,
                    release.items,
                    release.method,
                    release.run_id.map(|r| r.to_string()).unwrap_or_default()
                );
                for a in release.summary["agreement"].as_array().into_iter().flatten() {
                    if let (Some(q), Some(v)) = (a["question"].as_str(), a["value"].as_f64()) {
                        let ci = a["ci"]
                            .as_array()
                            .map(|c| format!(" [{:.3}, {:.3}]", c[0].as_f64().unwrap_or(f64::NAN), c[1].as_f64().unwrap_or(f64::NAN)))
                            .unwrap_or_default();
                        println!("  α {q}: {v:.3}{ci}");
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            ReleaseCommand::List { project, db } => {
                let store = db.open().await?;
                let project = store.project(&project).await?;
                let releases = store.releases(project.id).await?;
                if releases.is_empty() {
                    println!("no releases yet: concord release create {} NAME", project.slug);
                }
                for r in releases {
                    println!(
                        "{}\t{} items\t{}\t{}",
                        r.name, r.items, r.method, r.description
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            ReleaseCommand::Export(args) => export(args).await,
            ReleaseCommand::Diff { project, from, to, json, db } => {
                let store = db.open().await?;
                let project = store.project(&project).await?;
                let a = store.release(project.id, &from).await?;
                let b = store.release(project.id, &to).await?;
                let diff = store.diff_releases(&a, &b).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&diff)?);
                } else {
                    println!(
                        "{} → {}: {} added, {} removed, {} with a changed answer, {} unchanged, {} newly adjudicated",
                        diff.from,
                        diff.to,
                        diff.added.len(),
                        diff.removed.len(),
                        diff.changed.iter().map(|c| &c.item).collect::<std::collections::BTreeSet<_>>().len(),
                        diff.unchanged,
                        diff.newly_adjudicated
                    );
                    for change in &diff.changed {
                        println!("  {} {}: {} → {}", change.item, change.question, change.from, change.to);
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

async fn export(args: ExportArgs) -> Result<ExitCode> {
    let store = args.db.open().await?;
    let project = store.project(&args.project).await?;
    let release = store.release(project.id, &args.name).await?;
    let format = match args.format {
        Format::Jsonl => RecordFormat::Jsonl,
        Format::Csv => RecordFormat::Csv,
        Format::Parquet => return export_parquet(&store, &release, &args).await,
    };
    let schema = store.current_schema(project.id).await?.definition;
    let questions: Vec<String> = schema.questions.iter().map(|q| q.key.clone()).collect();
    if let Some(q) = &args.question {
        if !questions.contains(q) {
            bail!(
                "--question {q:?} is not a question of the project ({})",
                questions.join(", ")
            );
        }
    }
    if args.labels && matches!(args.format, Format::Csv) && args.question.is_none() {
        bail!(
            "--labels --format csv writes one question: add --question ({})",
            questions.join(", ")
        );
    }
    let out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let out = std::io::BufWriter::with_capacity(1 << 16, out);
    let mut count = 0u64;
    if args.labels {
        let mut writer = ReleaseLabelWriter::new(out, format, args.question.clone());
        let mut rx = store.release_labels(&release);
        while let Some(label) = rx.recv().await {
            writer.write(&label?).context("writing the release")?;
            count += 1;
        }
        writer.finish().context("writing the release")?;
    } else {
        let mut writer = ReleaseItemWriter::new(out, format, questions);
        let mut rx = store.release_items(&release);
        while let Some(item) = rx.recv().await {
            writer.write(&item?).context("writing the release")?;
            count += 1;
        }
        writer.finish().context("writing the release")?;
    }
    if let Some(path) = &args.out {
        eprintln!(
            "exported {count} {} of release {} to {}",
            if args.labels { "labels" } else { "items" },
            release.name,
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `--format parquet`: items (or with --labels the individual labels) with typed columns.
async fn export_parquet(
    store: &concord_store::Store,
    release: &concord_store::Release,
    args: &ExportArgs,
) -> Result<ExitCode> {
    let columns = store.answer_columns(release.project_id).await?;
    let metadata = release_metadata(release).context("describing the release")?;
    let out: Box<dyn Write + Send> = match &args.out {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let out = std::io::BufWriter::with_capacity(1 << 16, out);
    let mut count = 0u64;
    if args.labels {
        let mut writer = ReleaseLabelParquetWriter::new(out, columns, metadata, ROWS_PER_GROUP)
            .context("starting the Parquet file")?;
        let mut rx = store.release_labels(release);
        while let Some(label) = rx.recv().await {
            writer.write(&label?).context("writing the release")?;
            count += 1;
        }
        writer
            .finish()
            .and_then(|mut out| out.flush())
            .context("writing the release")?;
    } else {
        let mut writer = ReleaseItemParquetWriter::new(out, columns, metadata, ROWS_PER_GROUP)
            .context("starting the Parquet file")?;
        let mut rx = store.release_items(release);
        while let Some(item) = rx.recv().await {
            writer.write(&item?).context("writing the release")?;
            count += 1;
        }
        writer
            .finish()
            .and_then(|mut out| out.flush())
            .context("writing the release")?;
    }
    if let Some(path) = &args.out {
        eprintln!(
            "exported {count} {} of release {} to {}",
            if args.labels { "labels" } else { "items" },
            release.name,
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
