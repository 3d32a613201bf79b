//! `concord sql [PROJECT] "SELECT …"`: one read-only query over the documented views,
//! printed as a table, CSV or JSON; `--reference` prints the views' reference (docs/sql.md).

use crate::platform::{DatabaseArgs, runtime};
use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use concord_formats::query_result;
use concord_store::{SqlLimits, SqlScope, StoreError};
use std::process::ExitCode;

#[derive(Args)]
pub struct SqlArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    /// `[PROJECT] QUERY`: the query, with a project's slug before it to see that project only
    /// (every project otherwise).
    #[arg(num_args = 0..=2, value_name = "PROJECT] [QUERY")]
    words: Vec<String>,
    #[arg(long, value_enum, default_value_t = SqlFormat::Table)]
    format: SqlFormat,
    /// Rows to print at most (never more than --row-cap).
    #[arg(long)]
    limit: Option<usize>,
    /// See what this user would see through the API (their projects, names only where
    /// their role shows them); without it, the CLI sees every project, as an administrator.
    #[arg(long = "as", value_name = "USERNAME")]
    as_user: Option<String>,
    /// How long the query may run, in milliseconds.
    #[arg(long, env = "CONCORD_SQL_TIME_LIMIT_MS", default_value_t = 10_000)]
    time_limit_ms: u64,
    /// The most rows any answer carries.
    #[arg(long, env = "CONCORD_SQL_ROW_CAP", default_value_t = 10_000)]
    row_cap: usize,
    /// Print the views' reference (Markdown, as docs/sql.md) and exit.
    #[arg(long)]
    reference: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum SqlFormat {
    Table,
    Csv,
    Json,
}

pub fn run(args: SqlArgs) -> Result<ExitCode> {
    if args.reference {
        print!("{}", concord_store::sql::catalog::reference_markdown());
        return Ok(ExitCode::SUCCESS);
    }
    let (project, query) = match args.words.as_slice() {
        [query] => (None, query.clone()),
        [project, query] => (Some(project.clone()), query.clone()),
        _ => bail!(
            "give a query (and a project's slug before it): concord sql [PROJECT] \"SELECT …\""
        ),
    };
    runtime()?.block_on(async move {
        let store = args.db.open().await?;
        let scope = match &args.as_user {
            Some(name) => {
                let user = store.user_by_name(name).await?;
                store.sql_scope(&user, project.as_deref()).await?
            }
            None => {
                let mut ids = Vec::new();
                for found in store.list_projects().await? {
                    if project.as_deref().is_none_or(|slug| slug == found.slug) {
                        ids.push(found.id);
                    }
                }
                if let Some(slug) = &project
                    && ids.is_empty()
                {
                    bail!("project {slug:?} not found");
                }
                SqlScope {
                    names_visible: ids.clone(),
                    projects: ids,
                }
            }
        };
        let limits = SqlLimits {
            time_limit: std::time::Duration::from_millis(args.time_limit_ms.max(1)),
            row_cap: args.row_cap.max(1),
            ..SqlLimits::default()
        };
        let answer = match store.run_sql(&scope, &query, args.limit, limits).await {
            Ok(answer) => answer,
            Err(StoreError::Query { message, position }) => {
                eprintln!("error: {message}");
                if let Some(at) = position {
                    eprintln!("{}", caret_line(&query, at));
                }
                return Ok(ExitCode::from(1));
            }
            Err(other) => return Err(other.into()),
        };
        match args.format {
            SqlFormat::Table => {
                print!(
                    "{}",
                    query_result::text_table(&answer.columns, &answer.rows, 60)
                );
                eprintln!(
                    "{} row{}{} in {} ms",
                    answer.rows.len(),
                    if answer.rows.len() == 1 { "" } else { "s" },
                    if answer.truncated {
                        " (more matched)"
                    } else {
                        ""
                    },
                    answer.elapsed_ms
                );
            }
            SqlFormat::Csv => print!("{}", query_result::csv(&answer.columns, &answer.rows)),
            SqlFormat::Json => println!("{}", serde_json::to_string(&answer)?),
        }
        if answer.truncated {
            eprintln!("note: more rows matched than were printed (--limit / --row-cap)");
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The query's line holding character `at`, and a caret under it.
fn caret_line(query: &str, at: usize) -> String {
    let mut start = 0;
    for line in query.split('\n') {
        let length = line.chars().count();
        if at <= start + length {
            return format!("  {line}\n  {}^", " ".repeat(at - start));
        }
        start += length + 1;
    }
    format!("  (at character {})", at + 1)
}
