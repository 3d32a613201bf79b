//! `concord calibration`: open, list, report, close and repeat a project's calibration
//! rounds, and release annotators a round holds — what the server's pages and API do.

use crate::consensus::figure;
use crate::platform::{DatabaseArgs, runtime};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use concord_qa::calibration::{
    CalibrationReport, RoundItems, RoundRequest, close_round, open_round, repeat_round,
    round_report,
};
use concord_store::{CalibrationRound, Id, Project, Store};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum CalibrationCommand {
    /// Open a round: its items are served first to every annotator and QA expert of the
    /// project; the experts' answers form the key.
    Open {
        project: String,
        /// The round's name.
        #[arg(long)]
        name: String,
        /// A file of external ids, one per line, served in that order.
        #[arg(long, conflicts_with = "sample")]
        items: Option<PathBuf>,
        /// Or this many of the project's items (adjudicated and gold first, then labelled).
        #[arg(long)]
        sample: Option<usize>,
        /// Pass mark: the least share of answers equal to the key, on every question
        /// (default: settings.qa.calibration.threshold).
        #[arg(long)]
        threshold: Option<f64>,
        /// Hold annotators from production work until they pass (default: the setting).
        #[arg(long, conflicts_with = "no_hold")]
        hold: bool,
        /// Do not hold annotators while the round is open (default: the setting).
        #[arg(long)]
        no_hold: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// The project's rounds, newest first.
    List {
        project: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// A round's report: progress, agreement with the key and the group, verdicts.
    Report {
        project: String,
        round: Id,
        #[command(flatten)]
        output: ReportOutput,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Close an open round: unanswered items are withdrawn, verdicts applied, annotators
    /// who did not pass held from production work.
    Close {
        project: String,
        round: Id,
        #[command(flatten)]
        output: ReportOutput,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Repeat a round (same items and threshold) under the current guideline.
    Repeat {
        project: String,
        round: Id,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Release an annotator the round holds for production work.
    Release {
        project: String,
        round: Id,
        username: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Args)]
pub struct ReportOutput {
    /// Print the report as JSON instead of the summary.
    #[arg(long)]
    json: bool,
}

pub fn run(command: CalibrationCommand) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        match command {
            CalibrationCommand::Open {
                project,
                name,
                items,
                sample,
                threshold,
                hold,
                no_hold,
                db,
            } => {
                let items = match (items, sample) {
                    (Some(path), None) => RoundItems::External(read_ids(&path)?),
                    (None, Some(count)) => RoundItems::Sample(count),
                    _ => bail!("give --items FILE (external ids) or --sample N"),
                };
                let hold_until_verdict = match (hold, no_hold) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                };
                let (store, project) = open(&db, &project).await?;
                let request = RoundRequest {
                    name,
                    items,
                    threshold,
                    hold_until_verdict,
                };
                let round = open_round(&store, &project, request, None).await?;
                print_round(&round);
            }
            CalibrationCommand::List { project, db } => {
                let (store, project) = open(&db, &project).await?;
                let rounds = store.calibration_rounds(project.id).await?;
                if rounds.is_empty() {
                    println!("no calibration round in {}", project.slug);
                }
                for round in &rounds {
                    print_round(round);
                }
            }
            CalibrationCommand::Report {
                project,
                round,
                output,
                db,
            } => {
                let (store, project) = open(&db, &project).await?;
                let report = round_report(&store, &project, round).await?;
                print_report(&report, &output)?;
            }
            CalibrationCommand::Close {
                project,
                round,
                output,
                db,
            } => {
                let (store, project) = open(&db, &project).await?;
                let report = close_round(&store, &project, round, None).await?;
                print_report(&report, &output)?;
            }
            CalibrationCommand::Repeat { project, round, db } => {
                let (store, project) = open(&db, &project).await?;
                let round = repeat_round(&store, &project, round, None).await?;
                print_round(&round);
            }
            CalibrationCommand::Release {
                project,
                round,
                username,
                db,
            } => {
                let (store, project) = open(&db, &project).await?;
                let user = store
                    .user_by_name(&username)
                    .await
                    .with_context(|| format!("user {username:?}"))?;
                store.calibration_round(project.id, round).await?;
                store
                    .release_from_calibration(project.id, round, user.id, None)
                    .await?;
                println!(
                    "{username} released for production work in {}",
                    project.slug
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

async fn open(db: &DatabaseArgs, slug: &str) -> Result<(Store, Project)> {
    let store = db.open().await?;
    let project = store
        .project(slug)
        .await
        .with_context(|| format!("project {slug:?}"))?;
    Ok((store, project))
}

/// External ids, one per line; blank lines and `#` comments are skipped.
fn read_ids(path: &PathBuf) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the item list {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(String::from)
        .collect())
}

fn print_round(round: &CalibrationRound) {
    println!(
        "round {} {:?}: {} · {} items · {} annotators, {} experts · {} answers · threshold {}{}",
        round.id,
        round.name,
        round.status,
        round.items,
        round.annotators,
        round.experts,
        round.answers,
        round.threshold,
        match round.guideline_version {
            Some(v) => format!(" · guideline v{v}"),
            None => String::new(),
        }
    );
}

fn print_report(report: &CalibrationReport, output: &ReportOutput) -> Result<()> {
    if output.json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    print_round(&report.round);
    if report.guideline_revised {
        println!("the guideline was revised since this round opened");
    }
    println!("\nprogress");
    for p in &report.participants {
        let standing = match (p.part, p.held) {
            (concord_store::CalibrationPart::Expert, _) => "key",
            (_, true) => "held",
            _ => "free",
        };
        println!(
            "  {:<24} {:>4} of {:<4} {}",
            p.username, p.answered, report.round.items, standing
        );
    }
    if report.keyed_items == 0 {
        println!("\nno key yet: the QA experts have not answered (or split on every item)");
        return Ok(());
    }
    println!("\nverdicts ({} keyed items)", report.keyed_items);
    for v in &report.verdicts {
        println!(
            "  {:<24} {:<10} score {:<8} answered {} of {}{}",
            v.annotator,
            v.verdict,
            v.score.map_or("—".into(), |s| format!("{s:.3}")),
            v.answered_keyed,
            report.keyed_items,
            if v.below_threshold.is_empty() {
                String::new()
            } else {
                format!(" · below on {}", v.below_threshold.join(", "))
            }
        );
    }
    for q in &report.questions {
        println!(
            "\n{} ({} keyed, {} split) · α among annotators {}",
            q.key,
            q.keyed,
            q.experts_split,
            figure(&q.group_alpha)
        );
        for a in &q.annotators {
            println!(
                "  {:<24} key {}/{} {:<28} α {:<28} group {}",
                a.annotator,
                a.with_key.share.same,
                a.with_key.share.compared,
                figure(&a.with_key.share.percent),
                figure(&a.with_key.alpha),
                figure(&a.with_group.percent)
            );
        }
    }
    Ok(())
}
