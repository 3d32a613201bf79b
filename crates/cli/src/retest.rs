//! `concord retest PROJECT`: each annotator's consistency with themselves on the items
//! served to them again (test–retest), as the server's page and API report it.

use crate::consensus::figure;
use crate::platform::{DatabaseArgs, runtime};
use anyhow::{Context, Result};
use clap::Args;
use concord_qa::retest::project_retest_report;
use std::process::ExitCode;

#[derive(Args)]
pub struct RetestArgs {
    /// Project slug.
    project: String,
    /// Print the report as JSON instead of the summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    db: DatabaseArgs,
}

pub fn run(args: RetestArgs) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        let store = args.db.open().await?;
        let project = store
            .project(&args.project)
            .await
            .with_context(|| format!("project {:?}", args.project))?;
        let report = project_retest_report(&store, &project).await?;
        let counts = report.counts;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(ExitCode::SUCCESS);
        }
        let plan = &project.settings.queue.retest;
        if plan.rate > 0.0 {
            println!(
                "retests on {}: {:.1} % of each annotator's labels, after {} h",
                project.slug,
                plan.rate * 100.0,
                plan.delay_hours
            );
        } else {
            println!(
                "retests are off on {} (settings: queue.retest.rate, queue.retest.delay_hours)",
                project.slug
            );
        }
        println!(
            "{} scheduled, {} waiting for their delay, {} answered",
            counts.scheduled, counts.waiting, counts.answered
        );
        for question in &report.questions {
            println!("\n{} ({} pairs)", question.key, question.project.pairs);
            if question.project.pairs == 0 {
                println!("  no answered retests yet");
                continue;
            }
            println!(
                "  {:<24} {:>5} {:>5}  {:<28} percent agreement",
                "who", "pairs", "same", "α"
            );
            let rows = std::iter::once(("(project)", &question.project)).chain(
                question
                    .annotators
                    .iter()
                    .map(|a| (a.annotator.as_str(), &a.consistency)),
            );
            for (who, c) in rows {
                println!(
                    "  {:<24} {:>5} {:>5}  {:<28} {}{}",
                    who,
                    c.pairs,
                    c.same,
                    figure(&c.alpha),
                    figure(&c.percent),
                    if c.thin { "  (few pairs)" } else { "" }
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
