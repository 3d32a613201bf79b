//! The pages in a real browser: `e2e/tests/*.test.mjs` (Node's test runner, playwright-core,
//! the system Chromium) against a `concord serve` holding a fixture catalog.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{skip_unless_required, stderr, stdout};

const CHROMIUM: &str = "/usr/bin/chromium";
const PROJECT: &str = "catalog-review";
const PROJECT_NAME: &str = "Catalog review";
const IMPORT_PROJECT: &str = "upload-sandbox";
const MANAGER: (&str, &str) = ("mara", "mara-e2e-password");
const ANNOTATOR: (&str, &str) = ("ana", "ana-e2e-password");
const ADMIN: (&str, &str) = ("admin", "admin-e2e-password");
/// The work-queue project and its two annotators (nobody else takes work there).
const QUEUE_PROJECT: &str = "queue-review";
const LABELLERS: [(&str, &str); 2] = [("lena", "lena-e2e-password"), ("omar", "omar-e2e-password")];
/// A second queue project where one annotator skips and escalates.
const SKIP_PROJECT: &str = "skip-review";
const SKIPPER: (&str, &str) = ("ines", "ines-e2e-password");
/// The QA project: imported labels, consensus computed by `concord consensus`, and its
/// expert.
const QA_PROJECT: &str = "qa-review";
const EXPERT: (&str, &str) = ("eli", "eli-e2e-password");
/// The automated-annotators project: items, a manager, no model yet.
const MODEL_PROJECT: &str = "model-review";
/// Ends a hung suite; Playwright's own steps time out after 30 s each.
const SUITE_TIMEOUT: Duration = Duration::from_secs(600);

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../e2e")
}

/// Why the suite cannot run on this machine, if it cannot.
fn missing_prerequisite() -> Option<String> {
    if !Path::new(CHROMIUM).exists() {
        return Some(format!(
            "{CHROMIUM} is missing; apt-get install -y chromium"
        ));
    }
    if !e2e_dir().join("node_modules").is_dir() {
        return Some("e2e/node_modules is missing; run `npm ci` in e2e/".into());
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node is not on the PATH".into());
    }
    None
}

/// A platform command on the test database, with cheap password hashing.
fn platform(db: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(args)
        .arg("--database-url")
        .arg(db)
        .env("CONCORD_TEST_FAST_PASSWORD_HASH", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the concord binary runs");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        writeln!(input, "{text}").unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "concord {args:?}: {}", stderr(&out));
    out
}

/// `concord serve` on a free port; killed when dropped, however the test ends.
struct Server {
    child: Child,
    url: String,
    database: PathBuf,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    fn start(db: &Path, log: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_concord"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url"])
            .arg(db)
            .env("CONCORD_TEST_FAST_PASSWORD_HASH", "1")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("concord serve starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "concord serve did not report its address: {line:?}\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        };
        Server {
            url: url.to_owned(),
            database: db.to_owned(),
            child,
            _stdout: stdout,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fixture catalog in one project, an empty one for uploads, and an administrator,
/// a project manager of both and an annotator of the first. Returns the number of items.
fn prepare_database(db: &Path) -> usize {
    for ((user, password), admin) in [(ADMIN, true), (MANAGER, false), (ANNOTATOR, false)] {
        let mut args = vec!["user", "add", user, "--password-stdin"];
        if admin {
            args.push("--admin");
        }
        platform(db, &args, Some(password));
    }
    for (slug, name) in [(PROJECT, PROJECT_NAME), (IMPORT_PROJECT, "Upload sandbox")] {
        let create = [
            "project",
            "create",
            slug,
            "--name",
            name,
            "--manager",
            MANAGER.0,
        ];
        platform(db, &create, None);
    }
    platform(
        db,
        &[
            "project",
            "member",
            PROJECT,
            ANNOTATOR.0,
            "--role",
            "annotator",
        ],
        None,
    );
    for labeller in LABELLERS {
        platform(
            db,
            &["user", "add", labeller.0, "--password-stdin"],
            Some(labeller.1),
        );
    }
    let settings = e2e_dir().join("fixtures/queue-settings.json");
    platform(
        db,
        &[
            "project",
            "create",
            QUEUE_PROJECT,
            "--name",
            "Queue review",
            "--manager",
            MANAGER.0,
            "--settings",
            settings.to_str().unwrap(),
        ],
        None,
    );
    for labeller in LABELLERS {
        let args = [
            "project",
            "member",
            QUEUE_PROJECT,
            labeller.0,
            "--role",
            "annotator",
        ];
        platform(db, &args, None);
    }
    let queue = e2e_dir().join("fixtures/queue.jsonl");
    platform(
        db,
        &["import", QUEUE_PROJECT, queue.to_str().unwrap()],
        None,
    );
    platform(
        db,
        &["user", "add", SKIPPER.0, "--password-stdin"],
        Some(SKIPPER.1),
    );
    platform(
        db,
        &[
            "project",
            "create",
            SKIP_PROJECT,
            "--name",
            "Skip review",
            "--manager",
            MANAGER.0,
        ],
        None,
    );
    let member = [
        "project",
        "member",
        SKIP_PROJECT,
        SKIPPER.0,
        "--role",
        "annotator",
    ];
    platform(db, &member, None);
    let skip_items = e2e_dir().join("fixtures/skip.jsonl");
    platform(
        db,
        &["import", SKIP_PROJECT, skip_items.to_str().unwrap()],
        None,
    );
    prepare_qa_project(db);
    prepare_model_project(db);
    let catalog = e2e_dir().join("fixtures/catalog.jsonl");
    let items = std::fs::read_to_string(&catalog).unwrap().lines().count();
    let out = platform(db, &["import", PROJECT, catalog.to_str().unwrap()], None);
    let added = format!("{items} added");
    assert!(stdout(&out).contains(&added), "{}", stdout(&out));
    items
}

/// The automated-annotators project: three items a rules model will label, and no model.
fn prepare_model_project(db: &Path) {
    let create = [
        "project",
        "create",
        MODEL_PROJECT,
        "--name",
        "Model review",
        "--manager",
        MANAGER.0,
    ];
    platform(db, &create, None);
    let items = e2e_dir().join("fixtures/models.jsonl");
    platform(
        db,
        &["import", MODEL_PROJECT, items.to_str().unwrap()],
        None,
    );
}

fn model_item_count() -> usize {
    let items = e2e_dir().join("fixtures/models.jsonl");
    std::fs::read_to_string(items).unwrap().lines().count()
}

/// The QA project as an analyst finds it after `concord consensus`: one item escalated.
fn prepare_qa_project(db: &Path) {
    let fixture = |name: &str| e2e_dir().join("fixtures").join(name);
    platform(
        db,
        &["user", "add", EXPERT.0, "--password-stdin"],
        Some(EXPERT.1),
    );
    let settings = fixture("qa-settings.json");
    let create = [
        "project",
        "create",
        QA_PROJECT,
        "--name",
        "QA review",
        "--manager",
        MANAGER.0,
        "--settings",
        settings.to_str().unwrap(),
    ];
    platform(db, &create, None);
    let member = [
        "project",
        "member",
        QA_PROJECT,
        EXPERT.0,
        "--role",
        "qa_expert",
    ];
    platform(db, &member, None);
    let items = fixture("qa-items.jsonl");
    platform(db, &["import", QA_PROJECT, items.to_str().unwrap()], None);
    let labels = fixture("qa-labels.jsonl");
    let import = [
        "import",
        QA_PROJECT,
        labels.to_str().unwrap(),
        "--kind",
        "annotations",
    ];
    platform(db, &import, None);
    let out = platform(db, &["consensus", QA_PROJECT], None);
    assert!(
        stdout(&out).contains("escalated 1 item(s)"),
        "{}",
        stdout(&out)
    );
}

/// Runs `node --test` on every `e2e/tests/*.test.mjs`; returns whether it passed and
/// what it printed.
fn run_suite(server: &Server, items: usize, dir: &tempfile::TempDir) -> (bool, String) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(e2e_dir().join("tests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".test.mjs"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no e2e/tests/*.test.mjs");
    let output = dir.path().join("node-output.txt");
    let log = std::fs::File::create(&output).unwrap();
    let mut node = Command::new("node")
        .arg("--test")
        .args(&files)
        .current_dir(e2e_dir())
        .env("CONCORD_E2E_BASE_URL", &server.url)
        .env("CONCORD_E2E_PROJECT", PROJECT)
        .env("CONCORD_E2E_PROJECT_NAME", PROJECT_NAME)
        .env("CONCORD_E2E_IMPORT_PROJECT", IMPORT_PROJECT)
        .env("CONCORD_E2E_ITEM_COUNT", items.to_string())
        .env("CONCORD_E2E_MANAGER", MANAGER.0)
        .env("CONCORD_E2E_MANAGER_PASSWORD", MANAGER.1)
        .env("CONCORD_E2E_ANNOTATOR", ANNOTATOR.0)
        .env("CONCORD_E2E_ANNOTATOR_PASSWORD", ANNOTATOR.1)
        .env("CONCORD_E2E_ADMIN", ADMIN.0)
        .env("CONCORD_E2E_ADMIN_PASSWORD", ADMIN.1)
        .env("CONCORD_E2E_CHROMIUM", CHROMIUM)
        .env("CONCORD_E2E_QUEUE_PROJECT", QUEUE_PROJECT)
        .env("CONCORD_E2E_LABELLER_1", LABELLERS[0].0)
        .env("CONCORD_E2E_LABELLER_1_PASSWORD", LABELLERS[0].1)
        .env("CONCORD_E2E_LABELLER_2", LABELLERS[1].0)
        .env("CONCORD_E2E_LABELLER_2_PASSWORD", LABELLERS[1].1)
        .env("CONCORD_E2E_SKIP_PROJECT", SKIP_PROJECT)
        .env("CONCORD_E2E_SKIPPER", SKIPPER.0)
        .env("CONCORD_E2E_SKIPPER_PASSWORD", SKIPPER.1)
        .env("CONCORD_E2E_QA_PROJECT", QA_PROJECT)
        .env("CONCORD_E2E_EXPERT", EXPERT.0)
        .env("CONCORD_E2E_EXPERT_PASSWORD", EXPERT.1)
        .env("CONCORD_E2E_MODEL_PROJECT", MODEL_PROJECT)
        .env(
            "CONCORD_E2E_MODEL_ITEM_COUNT",
            model_item_count().to_string(),
        )
        // The restart scenario runs its own `concord serve` on the same database.
        .env("CONCORD_E2E_BINARY", env!("CARGO_BIN_EXE_concord"))
        .env("CONCORD_E2E_DATABASE", &server.database)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("node runs");
    let started = Instant::now();
    let passed = loop {
        if let Some(status) = node.try_wait().unwrap() {
            break status.success();
        }
        if started.elapsed() > SUITE_TIMEOUT {
            let _ = node.kill();
            let _ = node.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut printed = std::fs::read_to_string(&output).unwrap_or_default();
    if started.elapsed() > SUITE_TIMEOUT {
        printed.push_str(&format!("\n(stopped after {SUITE_TIMEOUT:?})\n"));
    }
    (passed, printed)
}

#[test]
fn browser_end_to_end_suite_passes() {
    if let Some(reason) = missing_prerequisite() {
        skip_unless_required("browser suite", &reason);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("e2e.db");
    let items = prepare_database(&db);
    let server_log = dir.path().join("server.log");
    let server = Server::start(&db, &server_log);
    let (passed, printed) = run_suite(&server, items, &dir);
    drop(server);
    assert!(
        passed,
        "the browser suite failed:\n{printed}\n--- server log (last 40 lines) ---\n{}",
        tail(
            &std::fs::read_to_string(&server_log).unwrap_or_default(),
            40
        )
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
