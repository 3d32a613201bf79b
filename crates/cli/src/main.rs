//! `concord`: the command-line tool. Thin: parses arguments, calls the other crates.

mod aggregate;
mod agreement;
mod case;
mod progress;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "concord",
    version,
    about = "Annotation quality: agreement, consensus and review"
)]
struct Cli {
    /// Worker threads (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inter-annotator agreement of a file of (item, annotator, label) rows.
    Agreement(agreement::AgreementArgs),
    /// Consensus labels with posteriors, and annotator skills and confusion matrices.
    Aggregate(aggregate::AggregateArgs),
    /// Run conformance cases (reference test vectors) through the engine.
    #[command(subcommand)]
    Case(case::CaseCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(threads) = cli.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .ok();
    }
    let outcome = match cli.command {
        Command::Agreement(args) => agreement::run(args),
        Command::Aggregate(args) => aggregate::run(args),
        Command::Case(command) => case::run(command),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}
