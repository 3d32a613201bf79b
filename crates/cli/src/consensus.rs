//! `concord consensus PROJECT`: the same consensus run the server's background job does,
//! from the terminal, with the quality report printed.

use crate::platform::{DatabaseArgs, runtime};
use anyhow::{Context, Result};
use clap::Args;
use concord_qa::report::Figure;
use std::io::IsTerminal;
use std::process::ExitCode;

#[derive(Args)]
pub struct ConsensusArgs {
    /// Project slug.
    project: String,
    /// Print the stored report as JSON instead of the summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    db: DatabaseArgs,
}

pub(crate) fn figure(f: &Figure) -> String {
    match (f.value, f.ci) {
        (Some(v), Some([lo, hi])) => format!("{v:.3} [{lo:.3}, {hi:.3}]"),
        (Some(v), None) => format!("{v:.3}"),
        (None, _) => format!(
            "undefined ({})",
            f.undefined.as_deref().unwrap_or("no data")
        ),
    }
}

pub fn run(args: ConsensusArgs) -> Result<ExitCode> {
    // Timings of each step, for whoever asks (`CONCORD_LOG=info`).
    if std::env::var_os("CONCORD_LOG").is_some() {
        crate::platform::init_logging(crate::platform::LogFormat::Text);
    }
    runtime()?.block_on(async move {
        let store = args.db.open().await?;
        let project = store
            .project(&args.project)
            .await
            .with_context(|| format!("project {:?}", args.project))?;
        let interactive = std::io::stderr().is_terminal() && !args.json;
        let progress = move |message: &str| {
            if interactive {
                eprintln!("… {message}");
            }
        };
        let started = std::time::Instant::now();
        let run = concord_qa::run_consensus(&store, &project, None, None, &progress).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&run.summary)?);
            return Ok(ExitCode::SUCCESS);
        }
        let report = concord_qa::report_of(&run).context("reading the stored report")?;
        println!(
            "consensus run {} on {} ({}): {} labels on {} of {} items by {} annotators, {:.2} s",
            run.id,
            project.slug,
            report.method_name,
            report.annotations,
            report.labelled_items,
            report.items,
            report.annotators,
            started.elapsed().as_secs_f64()
        );
        for question in &report.questions {
            println!(
                "\n{} ({}, {} items, {} with two labels or more)",
                question.key, question.kind, question.items, question.pairable_items
            );
            for metric in &question.metrics {
                println!("  {:<28} {}", metric.name, figure(&metric.figure));
            }
            if let Some(costs) = &question.costs {
                println!("  {:<28} {}", "α, cost distance", figure(&costs.alpha));
                println!(
                    "  {:<28} {}",
                    "Gwet's AC2, cost weights",
                    figure(&costs.gwet)
                );
                if let Some(mean) = costs.mean_expected_cost {
                    println!(
                        "  {:<28} {mean:.3} per item ({:.2} in all)",
                        "expected cost", costs.total_expected_cost
                    );
                }
            }
            let revise: Vec<&str> = question
                .categories
                .iter()
                .filter(|c| c.revise)
                .map(|c| c.code.as_str())
                .collect();
            if !revise.is_empty() {
                println!(
                    "  revise the guideline for: {} (α below {:.3})",
                    revise.join(", "),
                    report.target_alpha
                );
            }
        }
        println!(
            "\nescalated {} item(s) to the QA-expert queue{}",
            run.escalated,
            if report.escalation_matches.is_empty() {
                String::new()
            } else {
                format!(
                    " (rules matched: {})",
                    report
                        .escalation_matches
                        .iter()
                        .map(|(rule, n)| format!("{rule} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
        for note in &report.notes {
            println!("note: {note}");
        }
        Ok(ExitCode::SUCCESS)
    })
}
