//! `concord model predictions`: import a model's predictions, sample them for review by
//! predicted class × score band, and estimate the model's precision and recall per class
//! from the humans' labels on the sample.

use crate::platform::DatabaseArgs;
use anyhow::{Context, Result};
use clap::Subcommand;
use concord_annotators::predictions::{
    PredictionReport, SampleRequest, prediction_report, sample_predictions,
};
use concord_formats::predictions::read_predictions;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum PredictionsCommand {
    /// Import predictions (CSV or JSONL: item,model,label,score), all or nothing.
    Import {
        project: String,
        /// The model's name; every row's `model` must be this.
        model: String,
        file: PathBuf,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Draw a stratified sample (predicted class × score band) for human review.
    Sample {
        project: String,
        model: String,
        #[arg(long)]
        size: usize,
        /// Equal-width score bands over [0, 1].
        #[arg(long, default_value_t = 4)]
        bands: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Precision and recall per class from the latest sample's human labels.
    Report {
        project: String,
        model: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

pub async fn predictions(command: PredictionsCommand) -> Result<ExitCode> {
    match command {
        PredictionsCommand::Import {
            project,
            model,
            file,
            db,
        } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let rows = read_predictions(&file.display().to_string(), &bytes)?;
            let store = db.open().await?;
            let project = store.project(&project).await?;
            let imported = store
                .import_predictions(&project, &model, rows)
                .await
                .with_context(|| file.display().to_string())?;
            println!(
                "{imported} predictions of {model} imported into {}",
                project.slug
            );
            Ok(ExitCode::SUCCESS)
        }
        PredictionsCommand::Sample {
            project,
            model,
            size,
            bands,
            seed,
            db,
        } => {
            let store = db.open().await?;
            let project = store.project(&project).await?;
            let request = SampleRequest { size, bands, seed };
            let sample = sample_predictions(&store, &project, &model, request).await?;
            println!(
                "sample {} of {model}: {} items over {} score bands (seed {}); {} queued for review",
                sample.id, sample.items, sample.bands, sample.seed, sample.queued_for_review
            );
            Ok(ExitCode::SUCCESS)
        }
        PredictionsCommand::Report {
            project,
            model,
            json,
            db,
        } => {
            let store = db.open().await?;
            let project = store.project(&project).await?;
            let report = prediction_report(&store, &project, &model).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_report(&report);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_report(report: &PredictionReport) {
    println!(
        "{}: sample {} — {} of {} sampled items labelled by people; {:.0} % intervals",
        report.model,
        report.sample.id,
        report.labelled,
        report.sample.items,
        report.confidence * 100.0
    );
    println!("class\tprecision [interval] (n)\trecall [interval] (n)");
    let show = |e: &concord_stats::predictions::RatioEstimate| match e.estimate {
        Some(v) => format!("{v:.3} [{:.3}, {:.3}] ({})", e.low, e.high, e.n),
        None => format!("— ({})", e.n),
    };
    for c in &report.classes {
        println!("{}\t{}\t{}", c.class, show(&c.precision), show(&c.recall));
    }
}
