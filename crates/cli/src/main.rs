//! `concord`: the command-line tool. Thin: parses arguments, calls the other crates.

mod aggregate;
mod agreement;
mod calibration;
mod case;
mod consensus;
mod demo;
mod dsa;
mod exposure;
mod foreign;
mod item_rows;
mod model;
mod platform;
mod predictions;
mod progress;
mod release;
mod retest;
mod sql;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Compute a project's consensus, agreement report and escalations (as the server's job does).
    Consensus(consensus::ConsensusArgs),
    /// Build a demo database (people in every role, a project with real crowd ratings) and serve it.
    Demo(demo::DemoArgs),
    /// Automated annotators: add, run, list, disable, enable.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Run the server: API under /api/v1 and the pages.
    Serve(platform::ServeArgs),
    /// Manage user accounts and API tokens.
    #[command(subcommand)]
    User(platform::UserCommand),
    /// Create and list projects, manage members.
    #[command(subcommand)]
    Project(platform::ProjectCommand),
    /// Import items (or existing annotations) from CSV or JSONL, or another tool's export
    /// (`--from label-studio|toloka`), all or nothing.
    Import(platform::ImportArgs),
    /// Export a project's items with their annotations (JSONL or CSV), streamed.
    Export(platform::ExportArgs),
    /// Dataset releases for ML: create, list, export, diff.
    #[command(subcommand)]
    Release(release::ReleaseCommand),
    /// Run one read-only SQL query over the documented views (see docs/sql.md).
    Sql(sql::SqlArgs),
    /// Test–retest: each annotator's consistency with themselves on items served again.
    Retest(retest::RetestArgs),
    /// Exposure budgets: each annotator's high-severity labels and time per category on a day.
    Exposure(exposure::ExposureArgs),
    /// Calibration rounds: open, list, report, close, repeat; release held annotators.
    #[command(subcommand)]
    Calibration(calibration::CalibrationCommand),
    /// DSA statements of reasons from adjudicated decisions (EU Transparency Database format).
    #[command(subcommand)]
    Dsa(dsa::DsaCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if !matches!(&cli.command, Command::Aggregate(args) if args.iterates()) {
        without_transparent_huge_pages();
    }
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
        Command::Consensus(args) => consensus::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Model(command) => model::model(command),
        Command::Serve(args) => platform::serve(args),
        Command::User(command) => platform::user(command),
        Command::Project(command) => platform::project(command),
        Command::Import(args) => platform::import(args),
        Command::Export(args) => platform::export(args),
        Command::Release(command) => release::run(command),
        Command::Sql(args) => sql::run(args),
        Command::Retest(args) => retest::run(args),
        Command::Exposure(args) => exposure::run(args),
        Command::Calibration(command) => calibration::run(command),
        Command::Dsa(command) => dsa::run(command),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", error_chain(&error));
            std::process::ExitCode::from(2)
        }
    }
}

/// Turns transparent huge pages off for this process. mimalloc asks the kernel for them
/// (`MADV_HUGEPAGE`), and the kernel then zeroes 2 MiB at the first touch of any byte of
/// one: the consensus rerun of a million labels spent 1.4–2.7 s of system time in that
/// zeroing (0.6 s with small pages), and `agreement` over 5M labels used 25 % more memory.
/// `aggregate` keeps them for the models that iterate: their fits reuse the same tables
/// many times, and MACE's random reads over them ran 10–20 % slower on small pages (the
/// TLB's reach). Every other command (the server, whose consensus job was the case above,
/// included) gains.
fn without_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// An error and its causes on one line, each said once: a cause whose text its parent
/// already shows (a wrapper that prints its source) is not repeated.
fn error_chain(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_error_chain_says_each_cause_once() {
        let inner = anyhow::anyhow!("unable to open database file");
        let wrapped = inner.context("database error: unable to open database file");
        let outer = wrapped.context("cannot open /tmp/x.db");
        assert_eq!(
            super::error_chain(&outer),
            "cannot open /tmp/x.db: database error: unable to open database file"
        );
    }
}
