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
