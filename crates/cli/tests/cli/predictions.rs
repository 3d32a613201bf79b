//! `concord model predictions`: import a model's predictions, sample them for review and
//! estimate precision and recall from the humans' labels; `concord model assist`.

use crate::support::{concord, stderr, stdout, write};
use serde_json::Value;
use std::process::Output;

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// Twelve tracks; the model calls 1–6 VIOLATING (0.9) and 7–12 NOT_VIOLATING (0.2); the
/// humans say VIOLATING for 1–5 only. Sampling every item (inclusion 1) makes the estimate
/// the plain ratios: precision VIOLATING 5/6, recall NOT_VIOLATING 6/7, no sampling error.
#[test]
fn predictions_are_imported_sampled_and_scored_against_the_human_labels() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.db").display().to_string();
    let with_db = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--database-url", db.as_str()]);
        concord(&all)
    };
    ok(with_db(&[
        "project",
        "create",
        "preds",
        "--name",
        "Predictions",
    ]));
    let mut items = String::from("id,item_type,title\n");
    let mut predictions = String::from("item,model,label,score\n");
    let mut labels = String::from("item,annotator,decision,severity\n");
    for n in 1..=12 {
        items += &format!("item-{n:02},track,Title {n}\n");
        let (label, score) = if n <= 6 {
            ("VIOLATING", 0.9)
        } else {
            ("NOT_VIOLATING", 0.2)
        };
        predictions += &format!("item-{n:02},clf,{label},{score}\n");
        let (truth, severity) = if n <= 5 {
            ("VIOLATING", "S3")
        } else {
            ("NOT_VIOLATING", "S0")
        };
        labels += &format!("item-{n:02},hana,{truth},{severity}\n");
    }
    let items = write(&dir, "items.csv", items.as_bytes());
    ok(with_db(&["import", "preds", items.to_str().unwrap()]));

    let bad = write(
        &dir,
        "bad.csv",
        b"item,model,label,score\nitem-01,clf,VIOLATING,0.9\nitem-02,clf,MAYBE,0.5\n",
    );
    let out = with_db(&[
        "model",
        "predictions",
        "import",
        "preds",
        "clf",
        bad.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("line 3: field label"),
        "{}",
        stderr(&out)
    );
    let good = write(&dir, "predictions.csv", predictions.as_bytes());
    let imported = ok(with_db(&[
        "model",
        "predictions",
        "import",
        "preds",
        "clf",
        good.to_str().unwrap(),
    ]));
    assert!(imported.contains("12 predictions"), "{imported}");

    let sampled = ok(with_db(&[
        "model",
        "predictions",
        "sample",
        "preds",
        "clf",
        "--size",
        "12",
        "--bands",
        "2",
        "--seed",
        "3",
    ]));
    assert!(sampled.contains("12 items"), "{sampled}");
    assert!(sampled.contains("12 queued for review"), "{sampled}");
    let before = ok(with_db(&["model", "predictions", "report", "preds", "clf"]));
    assert!(before.contains("0 of 12"), "{before}");

    let labels = write(&dir, "labels.csv", labels.as_bytes());
    ok(with_db(&[
        "import",
        "preds",
        labels.to_str().unwrap(),
        "--kind",
        "annotations",
    ]));
    let report: Value = serde_json::from_str(&ok(with_db(&[
        "model",
        "predictions",
        "report",
        "preds",
        "clf",
        "--json",
    ])))
    .unwrap();
    assert_eq!(report["labelled"], 12);
    let class = |name: &str| {
        report["classes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["class"] == name)
            .unwrap()
            .clone()
    };
    let violating = class("VIOLATING");
    let precision = violating["precision"]["estimate"].as_f64().unwrap();
    assert!((precision - 5.0 / 6.0).abs() < 1e-12, "{violating}");
    assert_eq!(violating["precision"]["std_error"], 0.0);
    assert_eq!(violating["recall"]["estimate"], 1.0);
    let recall = class("NOT_VIOLATING")["recall"]["estimate"]
        .as_f64()
        .unwrap();
    assert!((recall - 6.0 / 7.0).abs() < 1e-12);

    let assist = ok(with_db(&["model", "assist", "preds"]));
    assert!(assist.contains("off: 0 human labels saved"), "{assist}");
}
