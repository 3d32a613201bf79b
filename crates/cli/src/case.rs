//! `concord case run|check`: conformance cases through the engine.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use concord_formats::conformance::{Case, compare, run_case};

#[derive(Subcommand)]
pub enum CaseCommand {
    /// Run one case and print {"id": ..., "result": {...}}.
    Run { case: PathBuf },
    /// Run every case under a folder; print pass / fail per case and "N passed, M failed".
    Check { dir: PathBuf },
}

fn load(path: &Path) -> Result<Case> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Case::from_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

pub fn run(command: CaseCommand) -> Result<ExitCode> {
    match command {
        CaseCommand::Run { case } => {
            let case = load(&case)?;
            let output = run_case(&case).map_err(|e| anyhow::anyhow!("{}: {e}", case.id))?;
            println!("{}", serde_json::to_string(&output)?);
            Ok(ExitCode::SUCCESS)
        }
        CaseCommand::Check { dir } => {
            let mut files = Vec::new();
            if dir.is_file() {
                files.push(dir.clone());
            } else {
                collect(&dir, &mut files)?;
            }
            let (mut passed, mut failed) = (0usize, 0usize);
            for path in files {
                let verdict = load(&path).and_then(|case| {
                    let output = run_case(&case).map_err(|e| anyhow::anyhow!("{e}"))?;
                    let result = output["result"].as_object().cloned().unwrap_or_default();
                    Ok((case.id.clone(), compare(&case, &result)))
                });
                match verdict {
                    Ok((id, problems)) if problems.is_empty() => {
                        passed += 1;
                        println!("pass {id}");
                    }
                    Ok((id, problems)) => {
                        failed += 1;
                        println!("FAIL {id}: {}", problems.join("; "));
                    }
                    Err(e) => {
                        failed += 1;
                        println!("FAIL {}: {e:#}", path.display());
                    }
                }
            }
            println!("{passed} passed, {failed} failed");
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
