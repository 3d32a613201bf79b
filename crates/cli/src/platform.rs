//! The platform commands: `serve`, `user`, `project`, `import`, `export`. Each opens the
//! store named by `--database-url` (SQLite file by default, PostgreSQL by URL).

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use concord_formats::items::{ExportWriter, RecordFormat};
use concord_formats::parquet::{ExportParquetWriter, ROWS_PER_GROUP};
use concord_store::{
    ImportKind, LabelSchema, NewProject, NewUser, OnConflict, PasswordCost, Role, Store,
    StoreOptions, import_file,
};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Clone)]
pub struct DatabaseArgs {
    /// SQLite file, `sqlite://…` or `postgres://…` URL.
    #[arg(long, env = "CONCORD_DATABASE_URL", default_value = "concord.db")]
    pub database_url: String,
    /// PostgreSQL only: the schema to use, created if missing (several concord instances can
    /// share one database this way).
    #[arg(long, env = "CONCORD_DATABASE_SCHEMA")]
    pub database_schema: Option<String>,
}

impl DatabaseArgs {
    pub async fn open(&self) -> Result<Store> {
        let mut options =
            StoreOptions::new(&self.database_url, concord_qa::gold_accuracy_upper_bound);
        if self.database_schema.is_some() && !self.database_url.starts_with("postgres") {
            bail!("--database-schema applies to PostgreSQL databases only");
        }
        options.pg_schema = self.database_schema.clone();
        // Only for test suites: argon2 at its smallest parameters.
        if std::env::var("CONCORD_TEST_FAST_PASSWORD_HASH").is_ok_and(|v| v == "1") {
            options.password_cost = PasswordCost::Fast;
        }
        Store::open(options)
            .await
            .with_context(|| format!("opening the database {}", redact(&self.database_url)))
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Who an account is, as the command line spells it.
#[derive(Clone, Copy, ValueEnum)]
pub enum AccountKindArg {
    Human,
    Model,
}

impl From<AccountKindArg> for concord_store::AccountKind {
    fn from(kind: AccountKindArg) -> Self {
        match kind {
            AccountKindArg::Human => concord_store::AccountKind::Human,
            AccountKindArg::Model => concord_store::AccountKind::Model,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    /// Address to listen on.
    #[arg(long, env = "CONCORD_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Mark cookies Secure (serve over HTTPS, directly or behind a proxy).
    #[arg(long, env = "CONCORD_SECURE_COOKIES")]
    secure_cookies: bool,
    /// Session lifetime in hours.
    #[arg(long, env = "CONCORD_SESSION_HOURS", default_value_t = 12)]
    session_hours: i64,
    /// Largest import upload in MiB.
    #[arg(long, env = "CONCORD_MAX_UPLOAD_MIB", default_value_t = 4096)]
    max_upload_mib: u64,
    /// Directory for uploads while they are imported (default: the system temp dir).
    #[arg(long, env = "CONCORD_UPLOAD_DIR")]
    upload_dir: Option<PathBuf>,
    /// Log format (filter with CONCORD_LOG, e.g. `info` or `concord_server=debug`).
    #[arg(long, env = "CONCORD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Analysts' SQL: how long one query may run, in milliseconds.
    #[arg(long, env = "CONCORD_SQL_TIME_LIMIT_MS", default_value_t = 10_000)]
    sql_time_limit_ms: u64,
    /// Analysts' SQL: the most rows one answer carries.
    #[arg(long, env = "CONCORD_SQL_ROW_CAP", default_value_t = 10_000)]
    sql_row_cap: usize,
    /// Analysts' SQL: queries running at once (more wait their turn).
    #[arg(long, env = "CONCORD_SQL_CONCURRENT", default_value_t = 2)]
    sql_concurrent: usize,
}

impl ServeArgs {
    /// Serving a local SQLite file on `listen` with the defaults (what `concord demo` runs).
    pub fn local(database: &std::path::Path, listen: &str) -> ServeArgs {
        ServeArgs {
            db: DatabaseArgs {
                database_url: database.to_string_lossy().into_owned(),
                database_schema: None,
            },
            listen: listen.to_owned(),
            secure_cookies: false,
            session_hours: 12,
            max_upload_mib: 4096,
            upload_dir: None,
            log_format: LogFormat::Text,
            sql_time_limit_ms: 10_000,
            sql_row_cap: 10_000,
            sql_concurrent: 2,
        }
    }
}

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONCORD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in a log file or a collector.
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

pub fn serve(args: ServeArgs) -> Result<ExitCode> {
    init_logging(args.log_format);
    runtime()?.block_on(async move {
        let store = args.db.open().await?;
        if store.count_users().await? == 0 {
            tracing::warn!(
                "no users yet: create an administrator with `concord user add NAME --admin`"
            );
        }
        let config = concord_server::ServerConfig {
            secure_cookies: args.secure_cookies,
            session_ttl_ms: args.session_hours.max(1) * 3_600_000,
            max_upload_bytes: args.max_upload_mib.max(1) << 20,
            upload_dir: args.upload_dir.unwrap_or_else(std::env::temp_dir),
            sql: concord_store::SqlLimits {
                time_limit: std::time::Duration::from_millis(args.sql_time_limit_ms.max(1)),
                row_cap: args.sql_row_cap.max(1),
                concurrent: args.sql_concurrent.max(1),
            },
        };
        let state = concord_server::AppState::new(store.clone(), config);
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let address = listener.local_addr()?;
        tracing::info!(%address, backend = ?store.backend(), "concord is serving");
        // One line on stdout that scripts (and tests) can wait for.
        println!("listening on http://{address}");
        let _ = std::io::stdout().flush();
        // Enabled automated annotators label in the background, as jobs any server reports.
        let models = tokio::spawn(concord_annotators::run_enabled_models(
            store.clone(),
            std::time::Duration::from_secs(60),
        ));
        concord_server::serve(listener, state, shutdown_signal()).await?;
        models.abort();
        store.close().await;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

// ---------------------------------------------------------------- users

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user. Without --password-stdin a random password is generated and printed.
    Add {
        username: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Global administrator (the first user should be one).
        #[arg(long)]
        admin: bool,
        /// `model` for an automated annotator account.
        #[arg(long, value_enum, default_value_t = AccountKindArg::Human)]
        kind: AccountKindArg,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Set a new password (ends the user's sessions).
    Passwd {
        username: String,
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Create an API token; the secret is printed once.
    Token {
        username: String,
        /// What the token is for.
        #[arg(long, default_value = "cli")]
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Disable an account: it cannot sign in, and its sessions and tokens stop working.
    Disable {
        username: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Enable a disabled account again.
    Enable {
        username: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List users.
    List {
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

fn read_password(from_stdin: bool) -> Result<(String, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        let password = line.trim_end_matches(['\n', '\r']).to_owned();
        if password.is_empty() {
            bail!("standard input held no password");
        }
        Ok((password, false))
    } else {
        Ok((generate_password(), true))
    }
}

pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 16];
    let _ = rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

async fn set_disabled(store: &Store, username: &str, disabled: bool) -> Result<()> {
    let user = store.set_user_disabled(username, disabled, None).await?;
    let state = if user.disabled { "disabled" } else { "enabled" };
    println!("{} is {state}", user.username);
    Ok(())
}

pub fn user(command: UserCommand) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        match command {
            UserCommand::Add {
                username,
                display_name,
                admin,
                kind,
                password_stdin,
                db,
            } => {
                let store = db.open().await?;
                let (password, generated) = read_password(password_stdin)?;
                let user = store
                    .create_user(
                        NewUser {
                            username,
                            display_name,
                            password: Some(password.clone()),
                            is_admin: admin,
                            kind: kind.into(),
                        },
                        None,
                    )
                    .await?;
                println!(
                    "created user {}{}",
                    user.username,
                    if user.is_admin {
                        " (administrator)"
                    } else {
                        ""
                    }
                );
                if generated {
                    println!("password: {password}");
                }
            }
            UserCommand::Passwd {
                username,
                password_stdin,
                db,
            } => {
                let store = db.open().await?;
                let (password, generated) = read_password(password_stdin)?;
                store
                    .set_password(&username, password.clone(), None)
                    .await?;
                println!("password changed for {username}; their sessions have ended");
                if generated {
                    println!("password: {password}");
                }
            }
            UserCommand::Token { username, name, db } => {
                let store = db.open().await?;
                let user = store.user_by_name(&username).await?;
                let (secret, _) = store.create_api_token(user.id, &name).await?;
                println!("{secret}");
            }
            UserCommand::Disable { username, db } => {
                set_disabled(&db.open().await?, &username, true).await?;
            }
            UserCommand::Enable { username, db } => {
                set_disabled(&db.open().await?, &username, false).await?;
            }
            UserCommand::List { db } => {
                let store = db.open().await?;
                for user in store.list_users().await? {
                    println!(
                        "{}\t{}\t{}{}{}",
                        user.username,
                        user.display_name,
                        user.kind,
                        if user.is_admin { "\tadmin" } else { "" },
                        if user.disabled { "\tdisabled" } else { "" }
                    );
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

// ---------------------------------------------------------------- projects

#[derive(Subcommand)]
pub enum ProjectCommand {
    /// Create a project (with the catalog-safety label schema unless --schema is given).
    Create {
        slug: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Label schema as a JSON file.
        #[arg(long)]
        schema: Option<PathBuf>,
        /// Project settings as a JSON file (e.g. `{"queue": {"overlap": 3, "gold_rate": 0.1}}`).
        #[arg(long)]
        settings: Option<PathBuf>,
        /// Make this user the project manager.
        #[arg(long)]
        manager: Option<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List projects.
    List {
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// The team's gold record: accuracy with its 95 % interval, the gold answers still needed
    /// for the project's target interval width, and when at each one's recent gold rate.
    Team {
        slug: String,
        /// One JSON object per annotator instead of the table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// What dynamic (and model-assisted) overlap saved against the fixed overlap, and how
    /// the items that stopped early fared when checked later.
    Savings {
        slug: String,
        /// The figures as one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Add a member or change their role (annotator, qa_analyst, qa_expert, project_manager, admin).
    Member {
        slug: String,
        username: String,
        #[arg(long)]
        role: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

pub fn project(command: ProjectCommand) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        match command {
            ProjectCommand::Create {
                slug,
                name,
                description,
                schema,
                settings,
                manager,
                db,
            } => {
                let settings = match settings {
                    Some(path) => {
                        let text = std::fs::read_to_string(&path)
                            .with_context(|| format!("reading {}", path.display()))?;
                        let value: serde_json::Value = serde_json::from_str(&text)
                            .with_context(|| format!("{} is not JSON", path.display()))?;
                        // Checked before anything is created, so bad settings change nothing.
                        concord_store::ProjectSettings::parse(value.clone())
                            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                        Some(value)
                    }
                    None => None,
                };
                let schema = match schema {
                    Some(path) => {
                        let text = std::fs::read_to_string(&path)
                            .with_context(|| format!("reading {}", path.display()))?;
                        serde_json::from_str::<LabelSchema>(&text)
                            .with_context(|| format!("{} is not a label schema", path.display()))?
                    }
                    None => LabelSchema::catalog_safety(),
                };
                let store = db.open().await?;
                let project = store
                    .create_project(
                        NewProject {
                            slug,
                            name,
                            description,
                            schema,
                        },
                        None,
                    )
                    .await?;
                let project = match settings {
                    Some(settings) => {
                        store
                            .update_project(
                                project.id,
                                &project.name,
                                &project.description,
                                settings,
                                None,
                            )
                            .await?
                    }
                    None => project,
                };
                if let Some(manager) = manager {
                    store
                        .set_member(project.id, &manager, Role::ProjectManager, None)
                        .await?;
                }
                println!("created project {} ({})", project.slug, project.name);
            }
            ProjectCommand::List { db } => {
                let store = db.open().await?;
                for project in store.list_projects().await? {
                    let counts = store.item_state_counts(project.id).await?;
                    let total: i64 = counts.iter().map(|(_, n)| n).sum();
                    println!("{}\t{}\t{} items", project.slug, project.name, total);
                }
            }
            ProjectCommand::Team { slug, json, db } => {
                let store = db.open().await?;
                let project = store.project(&slug).await?;
                let team = store.team_progress(project.id).await?;
                print_gold_plans(&team, &project.settings.queue, json)?;
            }
            ProjectCommand::Savings { slug, json, db } => {
                let store = db.open().await?;
                let project = store.project(&slug).await?;
                let report = concord_qa::overlap_savings(&store, &project).await?;
                if json {
                    println!("{}", serde_json::to_string(&report)?);
                } else {
                    print_overlap_savings(&report);
                }
            }
            ProjectCommand::Member {
                slug,
                username,
                role,
                db,
            } => {
                let role = Role::from_input(&role).map_err(anyhow::Error::msg)?;
                let store = db.open().await?;
                let project = store.project(&slug).await?;
                store.set_member(project.id, &username, role, None).await?;
                println!("{username} is now {} in {slug}", role.label());
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn print_overlap_savings(report: &concord_qa::OverlapReport) {
    let c = &report.counts;
    println!(
        "{} labels saved against a fixed overlap of {}: {} items stopped early with {} labels",
        c.labels_saved, c.fixed_overlap, c.early_items, c.labels_used
    );
    let later = &report.confirmed_later;
    match (later.estimate, later.ci) {
        (Some(p), Some([low, high])) => println!(
            "checked later (gold, expert decision): {} of {} confirmed, {:.0} % [{:.0}–{:.0} %]",
            later.successes,
            later.trials,
            p * 100.0,
            low * 100.0,
            high * 100.0
        ),
        _ => println!("none checked later by gold or an expert yet"),
    }
    if let Some(mean) = report.mean_confidence {
        println!("mean consensus confidence of the early items: {mean:.3}");
    }
}

/// One line per annotator (or one JSON object with `--json`): gold answered, accuracy with
/// its interval, gold still needed for the target width and the days that takes.
fn print_gold_plans(
    team: &[concord_store::AnnotatorProgress],
    settings: &concord_store::QueueSettings,
    json: bool,
) -> Result<()> {
    if !json {
        println!(
            "annotator\tgold\taccuracy (95 % interval)\tstill needed\tdays at recent rate\tpaused"
        );
    }
    for annotator in team {
        let plan = concord_qa::gold_plan(annotator.gold, settings);
        if json {
            let line = serde_json::json!({
                "username": annotator.username,
                "paused": annotator.paused,
                "gold_plan": plan,
            });
            println!("{}", serde_json::to_string(&line)?);
            continue;
        }
        let accuracy = match plan.accuracy.estimate {
            Some(p) => format!(
                "{:.0} % ({:.0}–{:.0} %)",
                p * 100.0,
                plan.accuracy.low * 100.0,
                plan.accuracy.high * 100.0
            ),
            None => "-".into(),
        };
        let eta = plan
            .eta_days
            .map_or_else(|| "no recent gold".into(), |d| format!("{d:.1}"));
        println!(
            "{}\t{}/{}\t{accuracy}\t{} (±{})\t{eta}\t{}",
            annotator.username,
            annotator.gold.correct,
            annotator.gold.answered,
            plan.still_needed,
            plan.target_half_width,
            if annotator.paused { "paused" } else { "" },
        );
    }
    Ok(())
}

// ---------------------------------------------------------------- import / export

#[derive(Clone, Copy, ValueEnum)]
pub enum FileFormat {
    Csv,
    Jsonl,
}

impl From<FileFormat> for RecordFormat {
    fn from(f: FileFormat) -> Self {
        match f {
            FileFormat::Csv => RecordFormat::Csv,
            FileFormat::Jsonl => RecordFormat::Jsonl,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Kind {
    Items,
    Annotations,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Conflict {
    Error,
    Skip,
    Update,
}

#[derive(Args)]
pub struct ImportArgs {
    /// Project slug.
    project: String,
    /// CSV or JSONL file.
    file: PathBuf,
    #[arg(long, value_enum, default_value_t = Kind::Items)]
    kind: Kind,
    /// Default: from the file name (.jsonl / .ndjson / .json, else CSV).
    #[arg(long, value_enum)]
    format: Option<FileFormat>,
    /// What to do with items whose id is already in the project.
    #[arg(long, value_enum, default_value_t = Conflict::Error)]
    on_conflict: Conflict,
    /// Another tool's export: a Label Studio JSON export or a Toloka / Crowd-Kit TSV,
    /// mapped onto the project's schema (items, annotations and predictions at once).
    #[arg(long = "from", value_enum)]
    from: Option<crate::foreign::Tool>,
    /// With --from: a JSON mapping of source fields, values and users (see the README).
    #[arg(long, requires = "from")]
    mapping: Option<PathBuf>,
    /// With --from: the catalog item type of new items (overrides the mapping's).
    #[arg(long, requires = "from")]
    item_type: Option<String>,
    /// With --from: print what maps and what does not, write nothing.
    #[arg(long, requires = "from")]
    dry_run: bool,
    /// With --from: print the report as JSON.
    #[arg(long, requires = "from")]
    json: bool,
    #[command(flatten)]
    db: DatabaseArgs,
}

pub fn import(args: ImportArgs) -> Result<ExitCode> {
    // The staging and publishing steps' timings, for whoever asks (`CONCORD_LOG=info`).
    if std::env::var_os("CONCORD_LOG").is_some() {
        init_logging(LogFormat::Text);
    }
    if let Some(tool) = args.from {
        let options = crate::foreign::Options {
            tool,
            project: args.project,
            file: args.file,
            mapping: args.mapping,
            item_type: args.item_type,
            dry_run: args.dry_run,
            json: args.json,
        };
        return runtime()?.block_on(async move {
            let store = args.db.open().await?;
            crate::foreign::import(&store, options).await
        });
    }
    runtime()?.block_on(async move {
        let store = args.db.open().await?;
        let project = store.project(&args.project).await?;
        let input = std::fs::File::open(&args.file)
            .with_context(|| format!("opening {}", args.file.display()))?;
        let size = input.metadata().map(|m| m.len()).unwrap_or(0);
        let label = args.file.display().to_string();
        let format = args
            .format
            .map(RecordFormat::from)
            .unwrap_or_else(|| RecordFormat::guess(&label));
        let kind = match args.kind {
            Kind::Items => ImportKind::Items,
            Kind::Annotations => ImportKind::Annotations,
        };
        let on_conflict = match args.on_conflict {
            Conflict::Error => OnConflict::Error,
            Conflict::Skip => OnConflict::Skip,
            Conflict::Update => OnConflict::Update,
        };
        let bar = (std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(size);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        let started = std::time::Instant::now();
        let outcome = import_file(
            &store,
            project.id,
            kind,
            &label,
            input,
            format,
            on_conflict,
            None,
            |p| {
                if let Some(bar) = &bar {
                    bar.set_position(p.bytes);
                    bar.set_message(format!("{} records", p.records));
                }
            },
        )
        .await;
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let outcome = outcome?;
        println!(
            "imported {}: {} read, {} added, {} updated, {} skipped in {:.2} s",
            label,
            outcome.read,
            outcome.inserted,
            outcome.updated,
            outcome.skipped,
            started.elapsed().as_secs_f64()
        );
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Args)]
pub struct ExportArgs {
    /// Project slug.
    project: String,
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    format: ExportFormat,
    /// Output file (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    db: DatabaseArgs,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Csv,
    /// One row per item, its annotations a list of typed structs.
    Parquet,
}

pub fn export(args: ExportArgs) -> Result<ExitCode> {
    let format = match args.format {
        ExportFormat::Jsonl => RecordFormat::Jsonl,
        ExportFormat::Csv => RecordFormat::Csv,
        ExportFormat::Parquet => return export_parquet(args),
    };
    runtime()?.block_on(async move {
        let store = args.db.open().await?;
        let project = store.project(&args.project).await?;
        let out: Box<dyn Write> = match &args.out {
            Some(path) => Box::new(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            ),
            None => Box::new(std::io::stdout().lock()),
        };
        let mut writer = ExportWriter::new(std::io::BufWriter::with_capacity(1 << 16, out), format);
        let mut records = store.export(project.id);
        let mut count = 0u64;
        while let Some(record) = records.recv().await {
            writer.write(&record?).context("writing the export")?;
            count += 1;
        }
        writer.finish().context("writing the export")?;
        if let Some(path) = &args.out {
            eprintln!("exported {count} items to {}", path.display());
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `concord export --format parquet`: the same records with typed columns, in row groups.
fn export_parquet(args: ExportArgs) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        let store = args.db.open().await?;
        let project = store.project(&args.project).await?;
        let out: Box<dyn Write + Send> = match &args.out {
            Some(path) => Box::new(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            ),
            None => Box::new(std::io::stdout()),
        };
        let mut writer = ExportParquetWriter::new(
            std::io::BufWriter::with_capacity(1 << 16, out),
            ROWS_PER_GROUP,
        )
        .context("starting the Parquet file")?;
        let mut records = store.export(project.id);
        let mut count = 0u64;
        while let Some(record) = records.recv().await {
            writer.write(&record?).context("writing the export")?;
            count += 1;
        }
        writer
            .finish()
            .and_then(|mut out| out.flush())
            .context("writing the export")?;
        if let Some(path) = &args.out {
            eprintln!("exported {count} items to {}", path.display());
        }
        Ok(ExitCode::SUCCESS)
    })
}
