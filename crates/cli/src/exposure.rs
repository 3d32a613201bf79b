//! `concord exposure PROJECT`: each annotator's exposure to high-severity content per
//! category on a day, against the project's limits (`settings.queue.exposure`).

use crate::platform::{DatabaseArgs, runtime};
use anyhow::{Context, Result, anyhow};
use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct ExposureArgs {
    /// Project slug.
    project: String,
    /// The UTC day (YYYY-MM-DD); today when absent.
    #[arg(long)]
    date: Option<String>,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    db: DatabaseArgs,
}

pub fn run(args: ExposureArgs) -> Result<ExitCode> {
    let day = match &args.date {
        Some(date) => Some(
            concord_formats::items::parse_utc_day(date)
                .ok_or_else(|| anyhow!("--date must be YYYY-MM-DD, not {date:?}"))?,
        ),
        None => None,
    };
    runtime()?.block_on(async move {
        let store = args.db.open().await?;
        let project = store
            .project(&args.project)
            .await
            .with_context(|| format!("project {:?}", args.project))?;
        let standings = store.exposure_standings(&project, day).await?;
        if args.json {
            let budget = &project.settings.queue.exposure;
            let out = serde_json::json!({"budget": budget, "standings": standings});
            println!("{}", serde_json::to_string_pretty(&out)?);
            return Ok(ExitCode::SUCCESS);
        }
        if !project.settings.queue.exposure.is_on() {
            println!(
                "no exposure limit on {} (settings: queue.exposure.daily, queue.exposure.categories)",
                project.slug
            );
        }
        if standings.is_empty() {
            println!("no high-severity labels on that day");
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "{:<24} {:<16} {:>6} {:>8} {:>6}  status",
            "annotator", "category", "items", "minutes", "used"
        );
        for s in &standings {
            let used = s
                .used
                .map_or_else(|| "-".to_owned(), |u| format!("{:.0}%", u * 100.0));
            println!(
                "{:<24} {:<16} {:>6} {:>8.1} {:>6}  {}",
                s.annotator,
                s.category,
                s.items,
                s.minutes,
                used,
                serde_json::to_value(s.status)?.as_str().unwrap_or_default()
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}
