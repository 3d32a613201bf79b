//! `concord import --from label-studio|toloka`: moving in from another tool. A dry run
//! reports what maps and writes nothing; a real import writes items, labels and predictions
//! at once; a file with anything that does not map changes nothing.

use crate::support::{concord, stderr, stdout, write};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Output;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/foreign")
        .join(name)
        .display()
        .to_string()
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

struct Db {
    _dir: tempfile::TempDir,
    url: String,
}

impl Db {
    fn new(projects: &[&str]) -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("moving.db").display().to_string();
        let db = Db { _dir: dir, url };
        for slug in projects {
            ok(db.run(&["project", "create", slug, "--name", slug]));
        }
        db
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--database-url", self.url.as_str()]);
        concord(&all)
    }

    /// The project's export, one JSON record per item.
    fn export(&self, project: &str) -> Vec<Value> {
        ok(self.run(&["export", project, "--format", "jsonl"]))
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

#[test]
fn a_label_studio_export_is_reported_by_a_dry_run_then_imported_whole() {
    let db = Db::new(&["ls"]);
    let file = fixture("label_studio.json");
    let dry = ok(db.run(&[
        "import",
        "ls",
        &file,
        "--from",
        "label-studio",
        "--item-type",
        "track",
        "--dry-run",
    ]));
    for expected in [
        "3 items (3 new, 0 already in the project, 0 gold), 5 annotations by 2 annotators, 1 predictions (clf-v2)",
        "ana@example.com → ana@example.com (3 annotations)",
        "7 → label-studio-7 (2 annotations)",
        "decision (choices) → question decision",
        "\"Violating\" → VIOLATING ×3",
        "\"NOT_VIOLATING\" → NOT_VIOLATING ×1",
        "\"Hate against protected groups\" → DG.HATE ×1",
        "\"4\" → S3 ×1",
        "comment (text) → rationale",
        "not imported: field mood: no question of that name",
        "skipped: task 2 (id 12), annotation 3: cancelled in Label Studio",
        "dry run: nothing written; the import would succeed",
    ] {
        assert!(dry.contains(expected), "missing {expected:?} in:\n{dry}");
    }
    assert!(db.export("ls").is_empty(), "a dry run writes nothing");

    let done = ok(db.run(&[
        "import",
        "ls",
        &file,
        "--from",
        "label-studio",
        "--item-type",
        "track",
        "--json",
    ]));
    let report: Value = serde_json::from_str(&done).unwrap();
    assert_eq!(report["written"], true);
    let items = db.export("ls");
    assert_eq!(items.len(), 3);
    let first = &items[0];
    assert_eq!(first["id"], "trk-001");
    assert_eq!(first["title"], "Night drive");
    assert_eq!(first["state"], "labelled");
    assert_eq!(first["media_url"], "https://media.example.com/trk-001.mp3");
    let labels = first["annotations"].as_array().unwrap();
    assert_eq!(labels.len(), 2);
    assert_eq!(labels[0]["annotator"], "ana@example.com");
    assert_eq!(
        labels[0]["answer"],
        serde_json::json!({"decision": "VIOLATING", "category": ["DG.HATE", "DG.HARASS"], "severity": "S3"})
    );
    assert_eq!(labels[0]["rationale"], "Threat aimed at a group.");
    assert_eq!(labels[0]["time_spent_ms"], 12_500);
    assert_eq!(labels[1]["annotator"], "label-studio-7");

    // The same file again adds nothing: its items, labels and prediction are already here.
    let again = ok(db.run(&[
        "import",
        "ls",
        &file,
        "--from",
        "label-studio",
        "--item-type",
        "track",
    ]));
    assert!(
        again.contains("already imported (left out): 5 annotations, 1 predictions"),
        "{again}"
    );
    let after = db.export("ls");
    assert_eq!(after, items, "nothing was written twice");
    // The prediction is the model's, as `concord model predictions import` would store it:
    // the one predicted item is the whole sample.
    let sample = ok(db.run(&[
        "model",
        "predictions",
        "sample",
        "ls",
        "clf-v2",
        "--size",
        "5",
    ]));
    assert!(sample.contains("of clf-v2: 1 items"), "{sample}");
}

#[test]
fn a_label_studio_value_that_does_not_map_refuses_the_whole_file() {
    let db = Db::new(&["ls"]);
    let text = std::fs::read_to_string(fixture("label_studio.json"))
        .unwrap()
        .replace("\"choices\": [\"Borderline\"]", "\"choices\": [\"Maybe\"]");
    let dir = tempfile::tempdir().unwrap();
    let bad = write(&dir, "bad.json", text.as_bytes());
    let bad = bad.to_str().unwrap();
    let dry = ok(db.run(&[
        "import",
        "ls",
        bad,
        "--from",
        "label-studio",
        "--item-type",
        "track",
        "--dry-run",
    ]));
    assert!(
        dry.contains("does not map: task 3 (id 13), annotation 1: field decision: \"Maybe\" is not an option of \"decision\""),
        "{dry}"
    );
    assert!(dry.contains("would be refused"), "{dry}");
    let out = db.run(&[
        "import",
        "ls",
        bad,
        "--from",
        "label-studio",
        "--item-type",
        "track",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("task 3 (id 13), annotation 1: field decision: \"Maybe\""),
        "{}",
        stderr(&out)
    );
    assert!(db.export("ls").is_empty(), "nothing from the file appears");
    // A mapping names the value, and the file imports.
    let mapping = write(
        &dir,
        "mapping.json",
        br#"{"item_type": "track", "values": {"decision": {"Maybe": "BORDERLINE"}}, "users": {"7": "ben"}}"#,
    );
    let done = ok(db.run(&[
        "import",
        "ls",
        bad,
        "--from",
        "label-studio",
        "--mapping",
        mapping.to_str().unwrap(),
    ]));
    assert!(done.contains("7 → ben"), "{done}");
    assert_eq!(db.export("ls").len(), 3);
}

#[test]
fn a_toloka_tsv_imports_items_gold_and_workers_labels() {
    let db = Db::new(&["tk"]);
    let file = fixture("toloka.tsv");
    let dry = ok(db.run(&[
        "import",
        "tk",
        &file,
        "--from",
        "toloka",
        "--item-type",
        "episode",
        "--dry-run",
    ]));
    for expected in [
        "3 items (3 new, 0 already in the project, 1 gold), 6 annotations by 3 annotators, 0 predictions",
        "w1f3a → w1f3a (2 annotations)",
        "skipped: line 6: assignment rejected in Toloka",
        "would succeed",
    ] {
        assert!(dry.contains(expected), "missing {expected:?} in:\n{dry}");
    }
    assert!(db.export("tk").is_empty());
    ok(db.run(&[
        "import",
        "tk",
        &file,
        "--from",
        "toloka",
        "--item-type",
        "episode",
    ]));
    let items = db.export("tk");
    assert_eq!(items.len(), 3);
    assert_eq!(items[1]["title"], "Fight night");
    assert_eq!(items[1]["annotations"].as_array().unwrap().len(), 2);
    assert_eq!(items[2]["is_gold"], true);
    assert_eq!(
        items[2]["gold_answer"],
        serde_json::json!({"decision": "VIOLATING", "severity": "S3"})
    );
}

#[test]
fn a_bad_toloka_tsv_changes_nothing() {
    let db = Db::new(&["tk"]);
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("toloka.tsv")).unwrap();
    // The fourth data row loses its last field.
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let cut = lines[4].rfind('\t').unwrap();
    lines[4].truncate(cut);
    let bad = write(&dir, "bad.tsv", lines.join("\n").as_bytes());
    let out = db.run(&[
        "import",
        "tk",
        bad.to_str().unwrap(),
        "--from",
        "toloka",
        "--item-type",
        "episode",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("bad.tsv: line 5: field row: 13 fields, the header has 14"),
        "{}",
        stderr(&out)
    );
    assert!(db.export("tk").is_empty());
    // Without an item type, new items cannot be made: reported, and refused.
    let out = db.run(&["import", "tk", &fixture("toloka.tsv"), "--from", "toloka"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("field item_type"), "{}", stderr(&out));
    assert!(db.export("tk").is_empty());
}
