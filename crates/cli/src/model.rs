//! `concord model`: configure automated annotators and run them over a project's queue.

use crate::platform::{DatabaseArgs, runtime};
use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use concord_annotators::{RunOptions, job_message, run_model};
use concord_store::{ModelKind, NewModelAnnotator};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum)]
pub enum KindArg {
    /// An OpenAI-compatible chat-completions server (OpenAI, vLLM, llama.cpp, Ollama).
    Openai,
    /// Keyword and regular-expression rules from a file (offline).
    Rules,
}

#[derive(Args)]
pub struct AddArgs {
    pub project: String,
    /// The model's name in the project (its account is `PROJECT.NAME`).
    pub name: String,
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// openai: the server's base URL, e.g. http://127.0.0.1:8000/v1.
    #[arg(long)]
    pub base_url: Option<String>,
    /// openai: the model to ask for.
    #[arg(long)]
    pub model: Option<String>,
    /// openai: the environment variable that holds the API key (the key is never stored).
    #[arg(long)]
    pub api_key_env: Option<String>,
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    #[arg(long, default_value_t = 4)]
    pub max_concurrency: i64,
    #[arg(long)]
    pub rate_per_minute: Option<i64>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
    /// A file of instructions put before the guideline in the prompt.
    #[arg(long)]
    pub prompt: Option<PathBuf>,
    /// rules: the rules file (JSON).
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Price per 1,000 prompt tokens.
    #[arg(long, default_value_t = 0.0)]
    pub price_in: f64,
    /// Price per 1,000 completion tokens.
    #[arg(long, default_value_t = 0.0)]
    pub price_out: f64,
    #[command(flatten)]
    pub db: DatabaseArgs,
}

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Configure an automated annotator for a project.
    Add(Box<AddArgs>),
    /// Label the project's queue with a model until nothing is left for it.
    Run {
        project: String,
        name: String,
        /// Stop after this many items.
        #[arg(long)]
        limit: Option<u64>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// The project's models and their last run.
    List {
        project: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Stop `concord serve` from running a model.
    Disable {
        project: String,
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Let `concord serve` run a model again.
    Enable {
        project: String,
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Import a model's predictions, sample them for review, estimate precision and recall.
    #[command(subcommand)]
    Predictions(crate::predictions::PredictionsCommand),
    /// Human labels model-assisted overlap (`settings.queue.model_assist`) has saved.
    Assist {
        project: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

fn read(path: &Option<PathBuf>) -> Result<String> {
    match path {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
        }
        None => Ok(String::new()),
    }
}

pub fn model(command: ModelCommand) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        match command {
            ModelCommand::Add(args) => {
                let kind = match args.kind {
                    KindArg::Openai => ModelKind::OpenAi,
                    KindArg::Rules => ModelKind::Rules,
                };
                let mut new = NewModelAnnotator::new(&args.name, kind);
                new.base_url = args.base_url.clone().unwrap_or_default();
                new.model = args.model.clone().unwrap_or_default();
                new.api_key_env = args.api_key_env.clone().unwrap_or_default();
                new.temperature = args.temperature;
                new.max_concurrency = args.max_concurrency;
                new.rate_per_minute = args.rate_per_minute;
                new.timeout_ms = (args.timeout * 1000.0).round() as i64;
                new.prompt_template = read(&args.prompt)?;
                new.rules = read(&args.rules)?;
                new.price_in_per_1k = args.price_in;
                new.price_out_per_1k = args.price_out;
                let store = args.db.open().await?;
                let project = store.project(&args.project).await?;
                if kind == ModelKind::Rules {
                    // Checked against the schema now, so a bad file changes nothing.
                    let schema = store.project_schema(&project).await?;
                    concord_annotators::rules::RulesModel::parse(&new.rules, &schema.definition)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", display(&args.rules)))?;
                }
                let created = store.create_model_annotator(&project, new, None).await?;
                println!(
                    "model {} added to {} (labels as {})",
                    created.name, project.slug, created.username
                );
                Ok(ExitCode::SUCCESS)
            }
            ModelCommand::Run {
                project,
                name,
                limit,
                db,
            } => {
                let store = db.open().await?;
                let project = store.project(&project).await?;
                let model = store.model_annotator(project.id, &name).await?;
                let options = RunOptions {
                    limit,
                    ..RunOptions::default()
                };
                let run = run_model(&store, &model, options).await?;
                println!("{}: {}", model.name, job_message(&run.counts));
                Ok(ExitCode::SUCCESS)
            }
            ModelCommand::List { project, db } => {
                let store = db.open().await?;
                let project = store.project(&project).await?;
                for model in store.model_annotators(project.id).await? {
                    let last = store.model_runs(model.id, 1).await?;
                    let state = if model.enabled { "enabled" } else { "disabled" };
                    let what = match model.kind {
                        ModelKind::Rules => "rules".to_owned(),
                        ModelKind::OpenAi => {
                            format!("openai {} at {}", model.model, model.base_url)
                        }
                    };
                    let last = last
                        .first()
                        .map(|r| format!("; last run: {}", job_message(&r.counts)))
                        .unwrap_or_default();
                    println!("{}\t{state}\t{what}{last}", model.name);
                }
                Ok(ExitCode::SUCCESS)
            }
            ModelCommand::Disable { project, name, db } => {
                set_enabled(&db, &project, &name, false).await
            }
            ModelCommand::Enable { project, name, db } => {
                set_enabled(&db, &project, &name, true).await
            }
            ModelCommand::Predictions(command) => crate::predictions::predictions(command).await,
            ModelCommand::Assist { project, db } => {
                let store = db.open().await?;
                let project = store.project(&project).await?;
                let saved = store.model_assist_savings(project.id).await?;
                let state = if project.settings.queue.model_assist.enabled {
                    "on"
                } else {
                    "off"
                };
                println!(
                    "model-assisted overlap {state}: {} human labels saved on {} items",
                    saved.labels_saved, saved.items
                );
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

async fn set_enabled(db: &DatabaseArgs, project: &str, name: &str, on: bool) -> Result<ExitCode> {
    let store = db.open().await?;
    let project = store.project(project).await?;
    let model = store.set_model_enabled(project.id, name, on, None).await?;
    let state = if model.enabled { "enabled" } else { "disabled" };
    println!("model {} {state}", model.name);
    Ok(ExitCode::SUCCESS)
}

fn display(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}
