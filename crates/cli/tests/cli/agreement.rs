//! `concord agreement`: the default report, the options, and what a bad file says.

use std::path::Path;

use serde_json::Value;

use crate::support::{concord, stderr, stdout, write};

#[test]
fn default_report_lists_the_standard_coefficients_with_interpretation() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "labels.csv",
        b"worker,task,label\na,1,x\nb,1,x\nc,1,y\na,2,y\nb,2,y\nc,2,y\na,3,x\nb,3,x\nc,3,x\na,4,z\nb,4,y\n",
    );
    let out = concord(&["agreement", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for expected in [
        "Percent agreement",
        "Krippendorff's α",
        "Fleiss' κ (generalised)",
        "Gwet's AC1",
        "Brennan–Prediger",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    assert!(
        text.contains("11 ratings · 4 items · 3 annotators"),
        "{text}"
    );
    assert!(
        text.contains("unreliable") || text.contains("reliable"),
        "{text}"
    );
    assert!(
        !text.contains("Cohen"),
        "Cohen only with two annotators:\n{text}"
    );
}

#[test]
fn cohen_is_in_the_default_set_with_exactly_two_annotators() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "two.csv",
        b"item,annotator,label\n1,a,x\n1,b,x\n2,a,y\n2,b,x\n3,a,y\n3,b,y\n",
    );
    let out = concord(&["agreement", file.to_str().unwrap(), "--format", "json"]);
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let names: Vec<&str> = report["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["metric"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"cohen_kappa"), "{names:?}");
}

#[test]
fn a_single_category_is_reported_as_undefined_with_a_reason_and_exit_zero() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "same.csv",
        b"item,annotator,label\n1,a,x\n1,b,x\n2,a,x\n2,b,x\n",
    );
    let out = concord(&[
        "agreement",
        file.to_str().unwrap(),
        "--metric",
        "alpha",
        "--metric",
        "fleiss",
    ]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("undefined"), "{text}");
    assert!(text.contains("0/0"), "{text}");
}

fn assert_fails_with(file_contents: &[u8], extra: &[&str], needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "bad.csv", file_contents);
    let mut args = vec!["agreement", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = concord(&args);
    assert!(!out.status.success(), "should fail: {}", stdout(&out));
    let err = stderr(&out);
    assert!(
        stdout(&out).is_empty(),
        "nothing computed from a bad file: {}",
        stdout(&out)
    );
    for needle in needles {
        assert!(err.contains(needle), "expected '{needle}' in: {err}");
    }
}

#[test]
fn bad_input_is_a_clear_error_naming_file_line_and_field() {
    assert_fails_with(
        b"item,annotator\n1,a\n",
        &[],
        &["bad.csv", "missing column 'label'"],
    );
    assert_fails_with(
        b"item,annotator,label\n1,a,x\n2,b\n",
        &[],
        &["bad.csv", "line 3", "expected 3 fields"],
    );
    assert_fails_with(
        b"item,annotator,label\n1,a,x\n,b,y\n",
        &[],
        &["line 3", "field 'item'", "empty item id"],
    );
    assert_fails_with(
        b"item,annotator,label\n1,a,x\n2,b,\xff\xfe\n",
        &[],
        &["line 3", "field 'label'", "invalid UTF-8"],
    );
    assert_fails_with(
        b"item,annotator,label\n1,a,x\n1,b,y\n2,a,q\n",
        &["--categories", "x,y"],
        &["line 4", "field 'label'", "'q'", "declared categories"],
    );
    assert_fails_with(
        b"item,annotator,label\n1,a,1\n1,b,two\n",
        &["--label-type", "int"],
        &["line 3", "'two'"],
    );
    assert_fails_with(b"item,annotator,label\n", &[], &["no annotations"]);
}

#[test]
fn quoted_csv_and_jsonl_read_like_plain_csv() {
    let dir = tempfile::tempdir().unwrap();
    let plain = write(
        &dir,
        "plain.csv",
        b"item,annotator,label\n1,a,x\n1,b,x\n2,a,y\n2,b,x\n3,a,y\n3,b,y\n",
    );
    let quoted = write(
        &dir,
        "quoted.csv",
        b"item,annotator,label\n\"1\",a,x\n1,\"b\",x\n2,a,\"y\"\n2,b,x\n3,a,y\n3,b,y\n",
    );
    let jsonl = write(
        &dir,
        "lines.jsonl",
        b"{\"item\":1,\"annotator\":\"a\",\"label\":\"x\"}\n{\"item\":1,\"annotator\":\"b\",\"label\":\"x\"}\n{\"item\":2,\"annotator\":\"a\",\"label\":\"y\"}\n{\"item\":2,\"annotator\":\"b\",\"label\":\"x\"}\n{\"item\":3,\"annotator\":\"a\",\"label\":\"y\"}\n{\"item\":3,\"annotator\":\"b\",\"label\":\"y\"}\n",
    );
    let value = |p: &Path| -> Value {
        let out = concord(&[
            "agreement",
            p.to_str().unwrap(),
            "--format",
            "json",
            "--metric",
            "alpha",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str::<Value>(&stdout(&out)).unwrap()["metrics"][0]["value"].clone()
    };
    assert_eq!(value(&plain), value(&quoted));
    assert_eq!(value(&plain), value(&jsonl));
}

#[test]
fn the_bootstrap_is_seeded_and_the_same_on_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("item,annotator,label\n");
    for i in 0..60 {
        for (a, shift) in [("a", 0), ("b", i % 3), ("c", i % 5)] {
            csv.push_str(&format!("{i},{a},{}\n", (i + shift) % 4));
        }
    }
    let file = write(&dir, "boot.csv", csv.as_bytes());
    let run = |threads: &str| -> Value {
        let out = concord(&[
            "agreement",
            file.to_str().unwrap(),
            "--metric",
            "alpha",
            "--bootstrap",
            "300",
            "--seed",
            "9",
            "--threads",
            threads,
            "--format",
            "json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str::<Value>(&stdout(&out)).unwrap()["metrics"][0].clone()
    };
    let one = run("1");
    let two = run("2");
    assert_eq!(one["bootstrap"], two["bootstrap"]);
    let ci = one["bootstrap"]["ci"].as_array().unwrap();
    let value = one["value"].as_f64().unwrap();
    assert!(
        ci[0].as_f64().unwrap() <= value && value <= ci[1].as_f64().unwrap(),
        "{one}"
    );
}

#[test]
fn all_pairs_are_written_with_their_shared_item_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("item,annotator,label\n");
    for i in 0..12 {
        csv.push_str(&format!("{i},a,{}\n{i},b,{}\n", i % 2, i % 2));
        if i < 5 {
            csv.push_str(&format!("{i},c,{}\n", (i + 1) % 2));
        }
    }
    let file = write(&dir, "pairs.csv", csv.as_bytes());
    let out_file = dir.path().join("out.csv");
    let out = concord(&[
        "agreement",
        file.to_str().unwrap(),
        "--pairs",
        "--min-shared",
        "5",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let written = std::fs::read_to_string(&out_file).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(
        lines[0],
        "annotator_a,annotator_b,shared_items,kappa,se,ci_low,ci_high,undefined"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("a,b,12,1,")),
        "{written}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("a,c,5,-0.923")),
        "{written}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("b,c,5,-0.923")),
        "{written}"
    );
    assert_eq!(lines.len(), 4, "{written}");
}

#[test]
fn per_category_alpha_and_per_item_files_are_produced() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "cats.csv",
        b"item,annotator,label\n1,a,x\n1,b,x\n2,a,y\n2,b,z\n3,a,z\n3,b,z\n",
    );
    let items = dir.path().join("items.csv");
    let out = concord(&[
        "agreement",
        file.to_str().unwrap(),
        "--by-category",
        "--items",
        items.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let categories: Vec<&str> = report["by_category"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["category"].as_str().unwrap())
        .collect();
    assert_eq!(categories, ["x", "y", "z"]);
    let per_item = std::fs::read_to_string(items).unwrap();
    assert!(
        per_item.contains("2,2,y,0.5,0,0.6931471805599453"),
        "{per_item}"
    );
}

/// Ordered levels and weights on text labels need a declared order: an error saying so
/// without it, the declared order with it — never the alphabetical one.
#[test]
fn ordered_agreement_on_text_labels_needs_the_declared_order() {
    let dir = tempfile::tempdir().unwrap();
    // Declared order none < mild < severe; alphabetically mild < none < severe.
    let file = write(
        &dir,
        "severity.csv",
        b"item,annotator,label\n1,a,none\n1,b,mild\n2,a,severe\n2,b,severe\n3,a,none\n3,b,none\n4,a,mild\n4,b,severe\n",
    );
    let path = file.to_str().unwrap();
    for flags in [
        &["--metric", "alpha", "--level", "ordinal"][..],
        &["--metric", "alpha", "--level", "interval"][..],
        &["--metric", "gwet", "--weights", "linear"][..],
    ] {
        let mut args = vec!["agreement", path, "--label-type", "category"];
        args.extend_from_slice(flags);
        let out = concord(&args);
        assert!(!out.status.success(), "{flags:?}: {}", stdout(&out));
        let message = stderr(&out);
        assert!(
            message.contains("order of the labels") && message.contains("--categories"),
            "{flags:?}: {message}"
        );
    }
    let declared = |categories: &str| {
        let out = concord(&[
            "agreement",
            path,
            "--label-type",
            "category",
            "--metric",
            "alpha",
            "--level",
            "interval",
            "--categories",
            categories,
            "--format",
            "json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let printed: Value = serde_json::from_str(&stdout(&out)).unwrap();
        printed.to_string()
    };
    assert_ne!(
        declared(r#"["none","mild","severe"]"#),
        declared(r#"["mild","none","severe"]"#),
        "the declared order is the one used"
    );
    // Nominal α needs no order.
    let out = concord(&[
        "agreement",
        path,
        "--label-type",
        "category",
        "--metric",
        "alpha",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}
