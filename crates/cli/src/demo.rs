//! `concord demo`: a local SQLite database with people in every role and a catalog-safety
//! project carrying the answer patterns of a real crowd dataset, then the server.
//!
//! The labels are `gal_adult_content2` (Apache-2.0, `data/gal_adult_content2`, embedded in the
//! binary): 825 Mechanical Turk workers rating web sites G / P / R / X. Each site becomes a
//! fictional catalog item and each rating a content-advisory answer, so the agreement and the
//! disagreements are real while every title and name is invented.

use crate::platform::{ServeArgs, generate_password, runtime, serve};
use anyhow::{Context, Result, bail};
use clap::Args;
use concord_store::ProjectId;
use concord_store::{
    EscalationStatus, ExampleScope, GuidelineExample, ImportKind, LabelSchema, NewProject, NewUser,
    OnConflict, Question, QuestionKind, Role, SchemaOption, Store, StoreOptions, import_file,
};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const LABELS: &str = include_str!("../../../data/gal_adult_content2/labels.csv");
const GOLD: &str = include_str!("../../../data/gal_adult_content2/gold.csv");
const SLUG: &str = "catalog-safety";
/// Items with no crowd labels yet, for the people who sign in to label.
const FRESH_ITEMS: usize = 60;

#[derive(Args)]
pub struct DemoArgs {
    /// The demo's SQLite file; an existing one is served as it is.
    #[arg(long, default_value = "concord-demo.db")]
    database: PathBuf,
    /// Delete the database first and build the demo again.
    #[arg(long)]
    reset: bool,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Build the database and exit without serving.
    #[arg(long)]
    no_serve: bool,
}

/// The people who sign in: (username, display name, role in the project).
const PEOPLE: [(&str, &str, Role); 6] = [
    ("priya", "Priya Raman", Role::ProjectManager),
    ("quinn", "Quinn Adeyemi", Role::QaAnalyst),
    ("eli", "Eli Marchetti", Role::QaExpert),
    ("ana", "Ana Sousa", Role::Annotator),
    ("ben", "Ben Okafor", Role::Annotator),
    ("cleo", "Cleo Lindqvist", Role::Annotator),
];

pub fn run(args: DemoArgs) -> Result<ExitCode> {
    let exists = args.database.exists();
    if exists && args.reset {
        for suffix in ["", "-wal", "-shm"] {
            let path = PathBuf::from(format!("{}{suffix}", args.database.display()));
            if path.exists() {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
            }
        }
    }
    if exists && !args.reset {
        println!(
            "{} exists: serving it as it is (--reset builds the demo again; the passwords were printed when it was built)",
            args.database.display()
        );
    } else {
        let accounts = runtime()?.block_on(build(&args.database))?;
        print_accounts(&args.database, &args.listen, &accounts);
    }
    if args.no_serve {
        return Ok(ExitCode::SUCCESS);
    }
    serve(ServeArgs::local(&args.database, &args.listen))
}

fn print_accounts(database: &Path, listen: &str, accounts: &[(String, String, String)]) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "concord demo: {} built", database.display());
    let _ = writeln!(out, "open http://{listen}/ and sign in as one of:");
    for (user, password, role) in accounts {
        let _ = writeln!(out, "  {user:<8} {password}  ({role})");
    }
    let _ = out.flush();
}

/// The label schema: a content advisory (what the crowd rated) on top of the catalog-safety
/// questions, which are optional here so that the imported ratings are complete answers.
fn schema() -> LabelSchema {
    let mut schema = LabelSchema::catalog_safety();
    for question in &mut schema.questions {
        question.required = false;
    }
    let option = |value: &str, label: &str, description: &str| SchemaOption {
        value: value.into(),
        label: label.into(),
        family: None,
        description: description.into(),
    };
    schema.questions.insert(
        0,
        Question {
            key: "advisory".into(),
            prompt: "Who is this item suitable for?".into(),
            kind: QuestionKind::Ordinal,
            options: vec![
                option("G", "General audience", "Nothing a child should not hear."),
                option("P", "Parental guidance", "Mild language or themes."),
                option(
                    "R",
                    "Restricted",
                    "Strong language, drugs, violence or sexual references.",
                ),
                option("X", "Explicit", "Sexually explicit content."),
            ],
            required: true,
        },
    );
    schema
}

const WORDS: [&str; 24] = [
    "Harbour", "Lanterns", "Quiet", "Northern", "Signal", "Paper", "River", "Glass", "Ember",
    "Hollow", "Static", "Orchard", "Velvet", "Winter", "Copper", "Meadow", "Tidal", "Neon",
    "Atlas", "Sparrow", "Midnight", "Salt", "Juniper", "Falling",
];
const ARTISTS: [&str; 12] = [
    "Mira Calloway",
    "Odo Brennick",
    "Lark & The Wirelings",
    "Sefa Umarov",
    "The Pale Orchard",
    "Juno Marsh",
    "Tilde Varga",
    "Quill Harbour Society",
    "Ines Marlowe",
    "Ruth Avenell",
    "Dara Quill",
    "Noor Halvorsen",
];
const MARKETS: [[&str; 2]; 4] = [["GB", "IE"], ["SE", "NO"], ["DE", "AT"], ["US", "CA"]];

/// A fictional catalog item standing in for the dataset's `n`-th site.
fn catalog_item(n: usize, gold: Option<&str>) -> serde_json::Value {
    let kinds = ["track", "track", "track", "episode", "audiobook", "chapter"];
    let kind = kinds[n % kinds.len()];
    let w = |k: usize| WORDS[(n * 7 + k * 13) % WORDS.len()];
    let title = match kind {
        "episode" => format!("{} {}, episode {}", w(0), w(1), n % 40 + 1),
        "audiobook" => format!("The {} of {}", w(0), w(1)),
        "chapter" => format!("Chapter {}: {} {}", n % 30 + 1, w(0), w(1)),
        _ => format!("{} {}", w(0), w(1)),
    };
    let role = match kind {
        "episode" => "host",
        "audiobook" | "chapter" => "author",
        _ => "artist",
    };
    let mut item = json!({
        "id": format!("demo-{n:05}"),
        "item_type": kind,
        "title": title,
        "creators": [{"name": ARTISTS[n % ARTISTS.len()], "role": role}],
        "language": "en",
        "markets": MARKETS[n % MARKETS.len()],
        "priority": (n % 5) as i64,
        "text": {"description": format!(
            "A fictional {kind} for concord's demo; its ratings are real crowd answers from the \
             gal_adult_content2 dataset (item {n})."
        )},
    });
    if let Some(label) = gold {
        item["gold"] = json!({"advisory": label});
    }
    item
}

async fn build(database: &Path) -> Result<Vec<(String, String, String)>> {
    let mut options = StoreOptions::new(
        database.to_string_lossy(),
        concord_qa::gold_accuracy_upper_bound,
    );
    if std::env::var("CONCORD_TEST_FAST_PASSWORD_HASH").is_ok_and(|v| v == "1") {
        options.password_cost = concord_store::PasswordCost::Fast;
    }
    let store = Store::open(options)
        .await
        .context("creating the demo database")?;
    if store.count_users().await? > 0 {
        bail!("{} already has users; use --reset", database.display());
    }
    let mut accounts = Vec::new();
    let admin_password = generate_password();
    store
        .create_user(
            NewUser {
                username: "admin".into(),
                display_name: Some("Administrator".into()),
                password: Some(admin_password.clone()),
                is_admin: true,
                kind: concord_store::AccountKind::Human,
            },
            None,
        )
        .await?;
    accounts.push(("admin".into(), admin_password, "administrator".into()));

    let project = store
        .create_project(
            NewProject {
                slug: SLUG.into(),
                name: "Catalog safety review".into(),
                description: "Content advisory and policy review of tracks, episodes and audiobooks (demo data).".into(),
                schema: schema(),
            },
            None,
        )
        .await?;
    let settings = json!({
        "queue": {"overlap": 3, "gold_rate": 0.1, "gold_feedback": "immediate",
                  "pause_min_gold": 10, "pause_below": 0.5},
        "qa": {"method": "ds", "target_alpha": 0.667,
               "escalation": {"min_posterior": 0.6, "min_agreement": null, "min_labels": 3,
                              "urgent_categories": ["DG.CHILD"], "sla_hours_normal": 72}},
    });
    store
        .update_project(
            project.id,
            &project.name,
            &project.description,
            settings,
            None,
        )
        .await?;
    for (username, display, role) in PEOPLE {
        let password = generate_password();
        store
            .create_user(
                NewUser {
                    username: username.into(),
                    display_name: Some(display.into()),
                    password: Some(password.clone()),
                    is_admin: false,
                    kind: concord_store::AccountKind::Human,
                },
                None,
            )
            .await?;
        store.set_member(project.id, username, role, None).await?;
        accounts.push((username.into(), password, role.label().to_owned()));
    }
    guidelines(&store, project.id).await?;

    // Sites in order of first appearance become items; gold answers follow their site.
    let gold: BTreeMap<&str, &str> = GOLD
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(','))
        .collect();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut sites: Vec<&str> = Vec::new();
    // The first half of the ratings were given under guideline version 1, the rest under
    // version 2, so the quality report can compare agreement before and after the revision.
    let mut annotations = String::from("item,annotator,advisory,guideline_version\n");
    let ratings = LABELS.lines().skip(1).count();
    for (row, line) in LABELS.lines().skip(1).enumerate() {
        let mut fields = line.split(',');
        let (Some(site), Some(worker), Some(label)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let n = *index.entry(site).or_insert_with(|| {
            sites.push(site);
            sites.len() - 1
        });
        let version = if row < ratings / 2 { 1 } else { 2 };
        annotations.push_str(&format!(
            "demo-{n:05},mturk-{worker},{},{version}\n",
            label.trim()
        ));
    }
    let mut items = String::new();
    for (n, site) in sites.iter().enumerate() {
        items.push_str(&catalog_item(n, gold.get(site).copied()).to_string());
        items.push('\n');
    }
    for n in sites.len()..sites.len() + FRESH_ITEMS {
        items.push_str(&catalog_item(n, None).to_string());
        items.push('\n');
    }
    let import = |kind, name: &'static str, bytes: String, format| {
        import_file(
            &store,
            project.id,
            kind,
            name,
            std::io::Cursor::new(bytes.into_bytes()),
            format,
            OnConflict::Error,
            None,
            |_| {},
        )
    };
    use concord_formats::items::RecordFormat;
    import(
        ImportKind::Items,
        "demo-items.jsonl",
        items,
        RecordFormat::Jsonl,
    )
    .await
    .context("importing the demo items")?;
    import(
        ImportKind::Annotations,
        "gal_adult_content2.csv",
        annotations,
        RecordFormat::Csv,
    )
    .await
    .context("importing the crowd ratings")?;
    rules_model(&store).await?;
    decide_some_escalations(&store).await?;
    store.close().await;
    Ok(accounts)
}

/// The demo's automated annotator: a rules model (offline) reading the titles, so the
/// Quality page scores a machine next to the crowd.
const DEMO_RULES: &str = r#"{
  "default": {"advisory": "G"},
  "rules": [
    {"name": "night themes", "keywords": ["midnight", "neon", "velvet"], "fields": ["title"],
     "answer": {"advisory": "P"}},
    {"name": "heavy themes", "keywords": ["ember", "static", "salt"], "fields": ["title"],
     "answer": {"advisory": "R"}}
  ]
}"#;

async fn rules_model(store: &Store) -> Result<()> {
    let project = store.project(SLUG).await?;
    let mut new =
        concord_store::NewModelAnnotator::new("baseline", concord_store::ModelKind::Rules);
    new.rules = DEMO_RULES.into();
    let model = store.create_model_annotator(&project, new, None).await?;
    concord_annotators::run_model(store, &model, concord_annotators::RunOptions::default())
        .await
        .context("labelling the demo with its rules model")?;
    Ok(())
}

/// Expert decisions the demo starts with: the rationale, the clause, and whether the expert
/// moves the item one level up from the consensus (overturning it).
const DECISIONS: [(&str, &str, bool); 4] = [
    (
        "The description and lyrics excerpt are explicit throughout; the consensus was right.",
        "Content advisory: X in scope",
        false,
    ),
    (
        "Strong language in every verse: at least one level above what most raters chose.",
        "When in doubt, choose the higher level",
        true,
    ),
    (
        "Mild themes only; the split came from the cover art, which we do not rate.",
        "Rate the item, not the creator's other work",
        false,
    ),
    (
        "Drug references are explicit and repeated, so the item needs the higher rating.",
        "When in doubt, choose the higher level",
        true,
    ),
];

/// Computes the consensus (which escalates the split items) and has the expert decide the
/// first few in the queue, one of them promoted to gold and one added as a guideline example.
async fn decide_some_escalations(store: &Store) -> Result<()> {
    let project = store.project(SLUG).await?;
    let run = concord_qa::run_consensus(store, &project, None, None, &|_: &str| {})
        .await
        .context("computing the demo's consensus")?;
    let expert = store.user_by_name("eli").await?;
    let waiting = store
        .escalations(project.id, EscalationStatus::Open, expert.id, 4)
        .await?;
    let scale = ["G", "P", "R", "X"];
    for (n, (escalation, (rationale, clause, higher))) in waiting.iter().zip(DECISIONS).enumerate()
    {
        let consensus = store.item_consensus(escalation.item_id).await?;
        let agreed = consensus
            .iter()
            .find(|c| c.question == "advisory")
            .and_then(|c| c.label.as_ref())
            .and_then(|l| l.as_str())
            .and_then(|code| scale.iter().position(|s| *s == code))
            .unwrap_or(1);
        let level = if higher { (agreed + 1).min(3) } else { agreed };
        let decision = concord_store::NewAdjudication {
            answer: json!({"advisory": scale[level]}),
            rationale: rationale.into(),
            guideline_clause: clause.into(),
            promote_to_gold: n == 0,
            example_scope: (n == 1).then_some(ExampleScope::InScope),
            example_category: (n == 1).then(|| scale[level].to_string()),
        };
        store
            .adjudicate(project.id, escalation.item_id, expert.id, decision)
            .await
            .context("recording the demo's expert decisions")?;
    }
    println!(
        "Consensus computed ({}): {} items escalated to the QA-expert queue, {} of them decided by eli.",
        run.method,
        run.escalated,
        waiting.len()
    );
    Ok(())
}

async fn guidelines(store: &Store, project_id: ProjectId) -> Result<()> {
    let example = |category: &str, scope, text: &str| GuidelineExample {
        category: category.into(),
        scope,
        text: text.into(),
    };
    let first = "# Content advisory\n\nRate who the item is suitable for, from what you hear and \
        read: **G** general audience, **P** parental guidance, **R** restricted, **X** sexually \
        explicit.\n\nRate the item, not the creator's other work. When in doubt between two \
        levels, choose the higher one and say why in the rationale.\n";
    let mut examples = vec![
        example(
            "X",
            ExampleScope::InScope,
            "A track whose lyrics describe sex explicitly.",
        ),
        example(
            "X",
            ExampleScope::OutOfScope,
            "A love song with a suggestive title only.",
        ),
        example(
            "R",
            ExampleScope::InScope,
            "A podcast episode with repeated strong swearing.",
        ),
    ];
    let note = "First version";
    store
        .save_guideline_draft(project_id, first, &examples, note, None)
        .await?;
    store
        .publish_guideline(project_id, Some(note), None)
        .await?;
    let second = format!(
        "{first}\n## Context\n\nEducational, news and documentary context lowers the rating by at \
         most one level; mark the context flag. Satire and parody are rated as if meant.\n"
    );
    examples.push(example(
        "R",
        ExampleScope::OutOfScope,
        "A news episode quoting a slur once to report on it (rate P, mark news).",
    ));
    let note = "Context rule: educational, news and documentary framing";
    store
        .save_guideline_draft(project_id, &second, &examples, note, None)
        .await?;
    store
        .publish_guideline(project_id, Some(note), None)
        .await?;
    Ok(())
}
