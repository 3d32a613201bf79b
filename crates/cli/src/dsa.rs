//! `concord dsa export`: DSA statements of reasons from a project's adjudicated decisions,
//! in the EU Transparency Database's record format.

use crate::platform::{DatabaseArgs, runtime};
use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};
use concord_formats::dsa::{StatementFormat, write_statements};
use concord_qa::dsa::dsa_statements;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum DsaCommand {
    /// Statements of reasons for the decisions made in a period (JSON or CSV), every one
    /// checked against the database's allowed values first: a statement that cannot be
    /// valid names the item and field, and nothing is written.
    Export {
        project: String,
        /// First day of the period (YYYY-MM-DD, UTC).
        #[arg(long)]
        from: String,
        /// Last day of the period (YYYY-MM-DD, UTC), included.
        #[arg(long)]
        to: String,
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Json,
    Csv,
}

pub fn run(command: DsaCommand) -> Result<ExitCode> {
    let DsaCommand::Export {
        project,
        from,
        to,
        format,
        out,
        db,
    } = command;
    runtime()?.block_on(async move {
        let store = db.open().await?;
        let project = store.project(&project).await?;
        let export = dsa_statements(&store, &project, &from, &to).await?;
        let format = match format {
            Format::Json => StatementFormat::Json,
            Format::Csv => StatementFormat::Csv,
        };
        let bytes = write_statements(Vec::new(), &export.statements, format)?;
        match &out {
            Some(path) => std::fs::write(path, &bytes)
                .with_context(|| format!("writing {}", path.display()))?,
            None => std::io::stdout().write_all(&bytes)?,
        }
        eprintln!(
            "{} statements from {} decisions ({} without a restriction, {} on items not offered in the EU/EEA)",
            export.statements.len(),
            export.decisions,
            export.without_action,
            export.outside_eea
        );
        Ok(ExitCode::SUCCESS)
    })
}
