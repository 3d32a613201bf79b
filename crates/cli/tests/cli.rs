//! End-to-end specification of the `concord` binary: every test runs the real
//! executable on real files, the way a user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use concord_formats::conformance::{Case, agreement_flags, case_file};
use serde_json::Value;

fn concord(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(args)
        .output()
        .expect("the concord binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance/cases")
}

fn write(dir: &tempfile::TempDir, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

const AGREEMENT_FAMILIES: [&str; 5] = [
    "krippendorff_alpha",
    "fleiss_kappa",
    "cohen_kappa",
    "two_coder_coefficients",
    "irrcac",
];

fn agreement_cases() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for family in AGREEMENT_FAMILIES.iter().chain(["crowdkit_metric"].iter()) {
        for entry in std::fs::read_dir(conformance_dir().join(family)).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let case: Value = serde_json::from_str(&text).unwrap();
            let metric = case["metric"].as_str().unwrap();
            if *family != "crowdkit_metric" || metric == "krippendorff_alpha" {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// `concord case check` on a conformance family: exit 0 and "N passed, 0 failed".
fn assert_family_passes(family: &str) {
    let out = concord(&[
        "case",
        "check",
        conformance_dir().join(family).to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{family}:\n{text}{}", stderr(&out));
    assert!(text.trim_end().ends_with(" 0 failed"), "{family}: {text}");
}

#[test]
fn every_agreement_conformance_family_passes_through_concord_case_check() {
    for family in AGREEMENT_FAMILIES {
        assert_family_passes(family);
    }
}

#[test]
fn the_alpha_cases_of_crowdkit_metric_pass_through_concord_case_run() {
    for path in agreement_cases()
        .iter()
        .filter(|p| p.to_string_lossy().contains("crowdkit_metric"))
    {
        let out = concord(&["case", "run", path.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        let printed: Value = serde_json::from_str(&stdout(&out)).unwrap();
        let case = Case::from_json(&std::fs::read_to_string(path).unwrap()).unwrap();
        let problems =
            concord_formats::conformance::compare(&case, printed["result"].as_object().unwrap());
        assert!(problems.is_empty(), "{}: {problems:?}", case.id);
        assert_eq!(printed["id"], case.id);
    }
}

/// The user's path: the case's triples as a CSV (JSONL for sets) through
/// `concord agreement --format json` with the equivalent flags.
#[test]
fn every_agreement_case_gives_the_reference_value_through_concord_agreement() {
    let dir = tempfile::tempdir().unwrap();
    let cases = agreement_cases();
    assert!(
        cases.len() >= 97,
        "expected the agreement cases, found {}",
        cases.len()
    );
    for path in cases {
        let case = Case::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let (format, contents) = case_file(&case);
        let ext = if format == concord_formats::Format::Jsonl {
            "jsonl"
        } else {
            "csv"
        };
        let file = write(&dir, &format!("{}.{ext}", case.id), contents.as_bytes());
        let (flags, _) = agreement_flags(&case).unwrap();
        let mut args = vec![
            "agreement".to_string(),
            file.to_string_lossy().into_owned(),
            "--format".into(),
            "json".into(),
        ];
        args.extend(flags);
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = concord(&arg_refs);
        assert!(out.status.success(), "{}: {}", case.id, stderr(&out));
        let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
        let metric = &report["metrics"][0];
        let expected_value = case
            .expected
            .get("value")
            .or_else(|| case.expected.get("fleiss"))
            .unwrap();
        let tolerance = case
            .tolerance
            .get("abs")
            .and_then(Value::as_f64)
            .unwrap_or(1e-9);
        match expected_value.as_f64() {
            Some(v) => {
                let got = metric["value"]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{}: no value in {metric}", case.id));
                assert!(
                    (got - v).abs() <= tolerance,
                    "{}: expected {v}, got {got}",
                    case.id
                );
            }
            None => {
                assert!(
                    metric["value"].is_null(),
                    "{}: expected undefined, got {}",
                    case.id,
                    metric["value"]
                );
                assert!(
                    metric["undefined"].as_str().is_some_and(|r| !r.is_empty()),
                    "{}: no reason",
                    case.id
                );
            }
        }
        let se_tol = case
            .tolerance
            .get("se_ci_p_abs")
            .and_then(Value::as_f64)
            .unwrap_or(tolerance);
        if let Some(se) = case
            .expected
            .get("se")
            .or_else(|| case.expected.get("ase"))
            .and_then(Value::as_f64)
        {
            let got = metric["se"].as_f64().unwrap();
            assert!(
                (got - se).abs() <= se_tol,
                "{}: se expected {se}, got {got}",
                case.id
            );
        }
        if let Some(ci) = case.expected.get("ci95").and_then(Value::as_array) {
            for (i, bound) in ci.iter().enumerate() {
                let got = metric["ci"][i].as_f64().unwrap();
                assert!(
                    (got - bound.as_f64().unwrap()).abs() <= se_tol,
                    "{}: ci[{i}] {got} vs {bound}",
                    case.id
                );
            }
        }
    }
}

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

fn aggregation_cases() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(conformance_dir().join("crowdkit_aggregation"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn every_aggregation_and_metric_conformance_case_passes_through_concord_case_check() {
    for family in ["crowdkit_aggregation", "crowdkit_metric"] {
        assert_family_passes(family);
    }
}

/// The user's path for consensus: the case as files through `concord aggregate --format json`.
#[test]
fn every_aggregation_case_gives_the_reference_labels_through_concord_aggregate() {
    let dir = tempfile::tempdir().unwrap();
    for path in aggregation_cases() {
        let case = Case::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let (format, contents) = case_file(&case);
        let ext = if format == concord_formats::Format::Jsonl {
            "jsonl"
        } else {
            "csv"
        };
        let file = write(&dir, &format!("{}.{ext}", case.id), contents.as_bytes());
        let mut args = vec![
            "aggregate".to_string(),
            file.to_string_lossy().into_owned(),
            "--format".into(),
            "json".into(),
        ];
        args.extend(concord_formats::conformance::aggregation_flags(&case).unwrap());
        if let Some(gold) = &case.gold {
            let gold_path = write(
                &dir,
                &format!("{}-known.csv", case.id),
                concord_formats::conformance::gold_file(gold).as_bytes(),
            );
            args.push("--known".into());
            args.push(gold_path.to_string_lossy().into_owned());
        }
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = concord(&arg_refs);
        assert!(out.status.success(), "{}: {}", case.id, stderr(&out));
        let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
        if case.metric == "mace" {
            continue; // RNG-dependent labels; the accuracy contract is checked by `case check`.
        }
        let expected = case.expected["labels"].as_object().unwrap();
        for item in report["items"].as_array().unwrap() {
            let name = item["item"].as_str().unwrap();
            let want = &expected[name];
            let got = if want.is_array() {
                let mut got: Vec<String> = item["labels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect();
                got.sort();
                let mut want: Vec<String> = want
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect();
                want.sort();
                assert_eq!(got, want, "{}: {name}", case.id);
                continue;
            } else {
                item["label"].as_str().unwrap().to_string()
            };
            let want = match want {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(got, want, "{}: item {name}", case.id);
        }
    }
}

#[test]
fn aggregate_writes_items_and_annotators_and_scores_against_gold() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("item,annotator,label\n");
    for i in 0..30 {
        let truth = if i % 3 == 0 { "spam" } else { "ham" };
        let wrong = if truth == "spam" { "ham" } else { "spam" };
        csv.push_str(&format!(
            "{i},good1,{truth}\n{i},good2,{truth}\n{i},noisy,{}\n",
            if i % 2 == 0 { wrong } else { truth }
        ));
    }
    let file = write(&dir, "votes.csv", csv.as_bytes());
    let gold = write(
        &dir,
        "gold.csv",
        b"item,label\n0,spam\n1,ham\n2,ham\n3,spam\n99,ham\n",
    );
    let items = dir.path().join("items.jsonl");
    let annotators = dir.path().join("annotators.csv");
    let out = concord(&[
        "aggregate",
        file.to_str().unwrap(),
        "--method",
        "ds",
        "--gold",
        gold.to_str().unwrap(),
        "--out",
        items.to_str().unwrap(),
        "--annotators",
        annotators.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("accuracy on gold: 1.0000 over 4 items"),
        "{text}"
    );
    assert!(
        text.contains("1 gold rows name items without annotations"),
        "{text}"
    );
    assert!(text.contains("class priors: ham"), "{text}");
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(&items)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["item"], "0");
    assert_eq!(first["label"], "spam");
    assert_eq!(first["gold"], "spam");
    assert!(
        first["posterior"]["spam"].as_f64().unwrap() > 0.9,
        "{first}"
    );
    let annotators = std::fs::read_to_string(&annotators).unwrap();
    assert!(
        annotators.starts_with(
            "annotator,ratings,skill,accuracy_vs_consensus,accuracy_on_gold,confusion\n"
        )
    );
    assert!(
        annotators
            .lines()
            .any(|l| l.starts_with("noisy,30,") && l.contains(",0.5,")),
        "{annotators}"
    );
}

#[test]
fn aggregate_rejects_bad_options_and_bad_gold_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "votes.csv",
        b"item,annotator,label\n1,a,x\n1,b,y\n1,c,z\n",
    );
    let out = concord(&["aggregate", file.to_str().unwrap(), "--method", "kos"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("binary"), "{}", stderr(&out));
    let out = concord(&["aggregate", file.to_str().unwrap(), "--method", "nope"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown method 'nope'"),
        "{}",
        stderr(&out)
    );
    let gold = write(&dir, "gold.csv", b"item,label\n1,x\n1,q\n");
    let out = concord(&[
        "aggregate",
        file.to_str().unwrap(),
        "--gold",
        gold.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("gold.csv") && err.contains("line 3") && err.contains("'q'"),
        "{err}"
    );
}

#[test]
fn majority_vote_ties_follow_the_chosen_rule() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "tie.csv",
        b"item,annotator,label\n1,a,10\n1,b,9\n2,a,1\n2,b,1\n",
    );
    let run = |tie: &str| -> Value {
        let out = concord(&[
            "aggregate",
            file.to_str().unwrap(),
            "--method",
            "mv",
            "--tie",
            tie,
            "--format",
            "json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str(&stdout(&out)).unwrap()
    };
    // Numeric labels sort numerically: 9 before 10.
    assert_eq!(run("first")["items"][0]["label"], "9");
    assert_eq!(run("first")["ties"], 1);
    assert!(run("undecided")["items"][0]["label"].is_null());
    assert_eq!(run("undecided")["undecided"], 1);
    let random = run("random")["items"][0]["label"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(random == "9" || random == "10");
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

fn gold_accuracy(dataset: &str, extra: &[&str]) -> f64 {
    let dir = data_dir().join(dataset);
    let labels = dir.join("labels.csv");
    let gold = dir.join("gold.csv");
    let mut args = vec![
        "aggregate",
        labels.to_str().unwrap(),
        "--gold",
        gold.to_str().unwrap(),
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = concord(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    report["gold"]["label_accuracy"].as_f64().unwrap()
}

#[test]
fn dawid_skene_beats_majority_vote_on_the_bluebirds() {
    // Welinder et al. (2010): 39 annotators of very different reliability on 108 images.
    let mv = gold_accuracy("welinder_bluebirds", &["--method", "mv"]);
    let ds = gold_accuracy(
        "welinder_bluebirds",
        &["--method", "ds", "--iterations", "50", "--tol=-inf"],
    );
    assert!((mv - 0.7593).abs() < 1e-3, "majority vote {mv}");
    assert!(ds > 0.89, "Dawid–Skene {ds}");
}

#[test]
fn consensus_on_the_adult_content_set_matches_the_recorded_figures() {
    // metadata.json: majority vote 0.7598 with random tie-breaking over 333 gold items.
    let mv = gold_accuracy("gal_adult_content2", &["--method", "mv"]);
    assert!((mv - 0.7598).abs() < 0.01, "majority vote {mv}");
    let ds = gold_accuracy("gal_adult_content2", &["--method", "ds"]);
    assert!(ds >= mv, "Dawid–Skene {ds} vs majority vote {mv}");
}

#[test]
fn skill_weights_can_outvote_the_majority() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "votes.csv",
        b"item,annotator,label\n1,expert,unsafe\n1,a,safe\n1,b,safe\n",
    );
    let skills = write(&dir, "skills.csv", b"annotator,skill\nexpert,3\na,1\nb,1\n");
    let label = |extra: &[&str]| -> String {
        let mut args = vec![
            "aggregate",
            file.to_str().unwrap(),
            "--method",
            "mv",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let out = concord(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str::<Value>(&stdout(&out)).unwrap()["items"][0]["label"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(label(&[]), "safe");
    assert_eq!(label(&["--skills", skills.to_str().unwrap()]), "unsafe");
}

/// The pages in a real browser: `e2e/tests/*.test.mjs` (Node's test runner, playwright-core,
/// the system Chromium) against a `concord serve` holding a fixture catalog.
mod browser {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Child, ChildStdout, Stdio};
    use std::time::{Duration, Instant};

    const CHROMIUM: &str = "/usr/bin/chromium";
    const PROJECT: &str = "catalog-review";
    const PROJECT_NAME: &str = "Catalog review";
    const IMPORT_PROJECT: &str = "upload-sandbox";
    const MANAGER: (&str, &str) = ("mara", "mara-e2e-password");
    const ANNOTATOR: (&str, &str) = ("ana", "ana-e2e-password");
    const ADMIN: (&str, &str) = ("admin", "admin-e2e-password");
    /// The work-queue project and its two annotators (nobody else takes work there).
    const QUEUE_PROJECT: &str = "queue-review";
    const LABELLERS: [(&str, &str); 2] =
        [("lena", "lena-e2e-password"), ("omar", "omar-e2e-password")];
    /// A second queue project where one annotator skips and escalates.
    const SKIP_PROJECT: &str = "skip-review";
    const SKIPPER: (&str, &str) = ("ines", "ines-e2e-password");
    /// The QA project: imported labels, consensus computed by `concord consensus`, and its
    /// expert.
    const QA_PROJECT: &str = "qa-review";
    const EXPERT: (&str, &str) = ("eli", "eli-e2e-password");
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
        let catalog = e2e_dir().join("fixtures/catalog.jsonl");
        let items = std::fs::read_to_string(&catalog).unwrap().lines().count();
        let out = platform(db, &["import", PROJECT, catalog.to_str().unwrap()], None);
        let added = format!("{items} added");
        assert!(stdout(&out).contains(&added), "{}", stdout(&out));
        items
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
            if std::env::var_os("CONCORD_REQUIRE_ALL_SUITES").is_some() {
                panic!(
                    "the browser suite must run when CONCORD_REQUIRE_ALL_SUITES is set: {reason}"
                );
            }
            eprintln!("skipped: browser suite ({reason})");
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
}

/// Two `concord serve` processes on one database (a SQLite file; a PostgreSQL schema): the
/// overlap holds across processes, so it rests on the database, not on a lock inside a server.
mod two_servers {
    use super::*;
    use concord_store::{
        LabelSchema, NewProject, NewUser, PasswordCost, Role, Store, StoreOptions,
    };
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Stdio};
    use std::sync::Arc;

    struct Server {
        child: Child,
        url: String,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn serve(url: &str, schema: Option<&str>) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_concord"));
        command.args(["serve", "--listen", "127.0.0.1:0", "--database-url", url]);
        if let Some(schema) = schema {
            command.args(["--database-schema", schema]);
        }
        let mut child = command
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("concord serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("concord serve said {line:?}"))
            .trim_end_matches('/')
            .to_owned();
        Server { child, url }
    }

    #[test]
    fn sixty_four_annotators_on_two_server_processes_on_one_sqlite_file_never_exceed_the_overlap() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("race.db");
        race(file.to_str().unwrap(), None);
    }

    #[test]
    fn sixty_four_annotators_on_two_server_processes_on_postgresql_never_exceed_the_overlap() {
        let Ok(url) = std::env::var("CONCORD_TEST_POSTGRES_URL") else {
            if std::env::var_os("CONCORD_REQUIRE_ALL_SUITES").is_some() {
                panic!(
                    "CONCORD_TEST_POSTGRES_URL is required when CONCORD_REQUIRE_ALL_SUITES is set"
                );
            }
            eprintln!(
                "skipped: two server processes on PostgreSQL (set CONCORD_TEST_POSTGRES_URL)"
            );
            return;
        };
        let schema = format!("cli_two_servers_{}", std::process::id());
        race(&url, Some(&schema));
    }

    /// 20 items × overlap 2 = 40 slots; 64 annotators, alternating between two server
    /// processes, ask for work at once behind a barrier.
    fn race(url: &str, schema: Option<&str>) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let mut options = StoreOptions::new(url);
        options.pg_schema = schema.map(str::to_owned);
        options.password_cost = PasswordCost::Fast;
        let store = runtime.block_on(Store::open(options)).unwrap();

        let (project_id, tokens) = runtime.block_on(async {
            let project = store
                .create_project(
                    NewProject {
                        slug: "race".into(),
                        name: "Race".into(),
                        description: String::new(),
                        schema: LabelSchema::catalog_safety(),
                    },
                    None,
                )
                .await
                .unwrap();
            store
                .update_project(
                    project.id,
                    "Race",
                    "",
                    serde_json::json!({"queue": {"overlap": 2}}),
                    None,
                )
                .await
                .unwrap();
            let items: String = (0..20)
                .map(|i| {
                    format!("{{\"id\":\"t{i}\",\"item_type\":\"track\",\"title\":\"Track {i}\"}}\n")
                })
                .collect();
            concord_store::import_file(
                &store,
                project.id,
                concord_store::ImportKind::Items,
                "items.jsonl",
                std::io::Cursor::new(items.into_bytes()),
                concord_formats::items::RecordFormat::Jsonl,
                concord_store::OnConflict::Error,
                None,
                |_| {},
            )
            .await
            .unwrap();
            let mut tokens = Vec::new();
            for n in 0..64 {
                let name = format!("racer{n:02}");
                let user = store
                    .create_user(
                        NewUser {
                            username: name.clone(),
                            display_name: None,
                            password: None,
                            is_admin: false,
                            kind: "human".into(),
                        },
                        None,
                    )
                    .await
                    .unwrap();
                store
                    .set_member(project.id, &name, Role::Annotator, None)
                    .await
                    .unwrap();
                tokens.push(store.create_api_token(user.id, "race").await.unwrap().0);
            }
            (project.id, tokens)
        });

        let servers = [serve(url, schema), serve(url, schema)];
        let bases: Vec<String> = servers
            .iter()
            .map(|s| format!("{}/api/v1/projects/race/queue/next", s.url))
            .collect();
        let served: Vec<(usize, Value)> = runtime.block_on(async {
            let client = reqwest::Client::new();
            let barrier = Arc::new(tokio::sync::Barrier::new(tokens.len()));
            let mut tasks = Vec::new();
            for (n, token) in tokens.into_iter().enumerate() {
                let (client, barrier) = (client.clone(), barrier.clone());
                // Alternate the annotators between the two processes.
                let url = bases[n % 2].clone();
                tasks.push(tokio::spawn(async move {
                    barrier.wait().await;
                    let response = client.post(url).bearer_auth(token).send().await.unwrap();
                    assert!(response.status().is_success(), "{}", response.status());
                    (n % 2, response.json::<Value>().await.unwrap())
                }));
            }
            let mut served = Vec::new();
            for task in tasks {
                served.push(task.await.unwrap());
            }
            served
        });
        drop(servers);

        let mut per_item = std::collections::HashMap::<i64, usize>::new();
        let mut by_server = [0, 0];
        for (server, body) in &served {
            if body["status"] == "leased" {
                *per_item
                    .entry(body["item"]["id"].as_i64().unwrap())
                    .or_default() += 1;
                by_server[*server] += 1;
            } else {
                assert_eq!(body["status"], "empty", "{body}");
            }
        }
        let integrity = runtime.block_on(store.queue_integrity(project_id)).unwrap();
        if let Some(schema) = schema {
            runtime.block_on(store.drop_schema(schema)).unwrap();
        }
        assert!(
            per_item.values().all(|&n| n <= 2),
            "an item went past its overlap: {per_item:?}"
        );
        assert_eq!(
            per_item.values().sum::<usize>(),
            40,
            "every one of the 40 slots is taken"
        );
        assert!(
            by_server.iter().all(|&n| n > 0),
            "both processes served work: {by_server:?}"
        );
        assert_eq!(integrity.items_over_overlap, 0, "the database agrees");
    }
}

#[test]
fn demo_builds_a_database_with_every_role_and_real_crowd_ratings_and_never_overwrites_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let db_arg = db.to_str().unwrap();
    let demo = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_concord"))
            .args(["demo", "--database", db_arg, "--no-serve"])
            .args(extra)
            .env("CONCORD_TEST_FAST_PASSWORD_HASH", "1")
            .output()
            .unwrap()
    };
    let built = demo(&[]);
    assert!(built.status.success(), "{}", stderr(&built));
    let printed = stdout(&built);
    for (user, role) in [
        ("admin", "administrator"),
        ("priya", "Project manager"),
        ("quinn", "QA analyst"),
        ("eli", "QA expert"),
        ("ana", "Annotator"),
    ] {
        let line = printed
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{user} ")))
            .unwrap_or_else(|| panic!("{user} is not listed:\n{printed}"));
        assert!(line.contains(&format!("({role})")), "{line}");
    }
    let projects = concord(&["project", "list", "--database-url", db_arg]);
    assert!(
        stdout(&projects).contains("catalog-safety\tCatalog safety review\t11100 items"),
        "11,040 rated items from gal_adult_content2 and 60 fresh ones: {}",
        stdout(&projects)
    );

    assert!(
        printed.contains("items escalated to the QA-expert queue, 4 of them decided by eli"),
        "{printed}"
    );
    release_matches_the_engine_run_independently(&dir, db_arg);

    // Run again: the database is kept, and no new passwords are made up.
    let again = demo(&[]);
    assert!(again.status.success());
    assert!(
        stdout(&again).contains("serving it as it is"),
        "{}",
        stdout(&again)
    );
    assert!(
        !stdout(&again).contains("priya "),
        "no accounts are reprinted"
    );

    let reset = demo(&["--reset"]);
    assert!(reset.status.success(), "{}", stderr(&reset));
    let new_password = |out: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with("priya "))
            .map(str::to_owned)
    };
    assert_ne!(
        new_password(&printed),
        new_password(&stdout(&reset)),
        "--reset builds a new demo"
    );
}

/// A release of the demo, checked by an independent path: its exported labels run through
/// `concord agreement` and `concord aggregate` give the α in the release's QA summary and
/// the release's final labels (wherever no expert decided otherwise).
fn release_matches_the_engine_run_independently(dir: &tempfile::TempDir, db: &str) {
    let ok = |out: Output| {
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let created = ok(concord(&[
        "release",
        "create",
        "catalog-safety",
        "v1",
        "--database-url",
        db,
    ]));
    assert!(created.contains("11040 items"), "{created}");
    let bad = concord(&[
        "release",
        "create",
        "catalog-safety",
        "v1",
        "--database-url",
        db,
    ]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("already exists"), "{}", stderr(&bad));

    let labels = dir.path().join("advisory.csv");
    let items = dir.path().join("items.jsonl");
    let export = |extra: &[&str]| {
        let mut args = vec![
            "release",
            "export",
            "catalog-safety",
            "v1",
            "--database-url",
            db,
        ];
        args.extend_from_slice(extra);
        ok(concord(&args))
    };
    export(&[
        "--labels",
        "--question",
        "advisory",
        "--format",
        "csv",
        "--out",
        labels.to_str().unwrap(),
    ]);
    export(&["--out", items.to_str().unwrap()]);
    let listed = ok(concord(&[
        "release",
        "list",
        "catalog-safety",
        "--database-url",
        db,
    ]));
    assert!(listed.starts_with("v1\t11040 items\tds"), "{listed}");

    let summary: Value = {
        let out = ok(concord(&[
            "consensus",
            "catalog-safety",
            "--json",
            "--database-url",
            db,
        ]));
        serde_json::from_str(&out).unwrap()
    };
    let advisory = summary["questions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["key"] == "advisory")
        .unwrap();
    let alpha_in_report = advisory["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == "krippendorff_alpha")
        .unwrap()["figure"]["value"]
        .as_f64()
        .unwrap();
    let agreement: Value = serde_json::from_str(&ok(concord(&[
        "agreement",
        labels.to_str().unwrap(),
        "--level",
        "ordinal",
        "--categories",
        "G,P,R,X",
        "--metric",
        "alpha",
        "--format",
        "json",
    ])))
    .unwrap();
    let alpha_from_file = agreement["metrics"][0]["value"].as_f64().unwrap();
    assert!(
        (alpha_in_report - alpha_from_file).abs() < 1e-9,
        "report {alpha_in_report} vs concord agreement {alpha_from_file}"
    );

    let aggregated: Value = serde_json::from_str(&ok(concord(&[
        "aggregate",
        labels.to_str().unwrap(),
        "--method",
        "ds",
        "--format",
        "json",
    ])))
    .unwrap();
    let by_item: std::collections::HashMap<&str, &str> = aggregated["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["item"].as_str().unwrap(),
                i["label"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let text = std::fs::read_to_string(&items).unwrap();
    let (mut compared, mut adjudicated) = (0, 0);
    for line in text.lines() {
        let item: Value = serde_json::from_str(line).unwrap();
        if item["adjudicated"] == true {
            adjudicated += 1;
            continue;
        }
        compared += 1;
        assert_eq!(
            Some(&item["label"]["advisory"].as_str().unwrap()),
            by_item.get(item["item"].as_str().unwrap()),
            "{line}"
        );
    }
    assert_eq!((compared, adjudicated), (11036, 4));
}

/// concord's own cases (tests/conformance/concord, made with the pinned reference packages):
/// every param and result field the conformance README names, through `concord case check`.
#[test]
fn concords_own_conformance_cases_pass_through_concord_case_check() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance/concord");
    let out = concord(&["case", "check", dir.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let summary = text.lines().last().unwrap_or_default();
    let passed: usize = summary
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed >= 22, "{text}");
    assert!(summary.ends_with(" 0 failed"), "{text}");
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

/// Every SQLite URL spelling opens (and creates) the same file as the bare path, and a
/// failure's cause is said once.
#[test]
fn sqlite_urls_in_every_spelling_open_the_same_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("spelled.db");
    let absolute = format!("sqlite://{}", db.display());
    let out = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(["user", "add", "ana", "--database-url", &absolute])
        .env("CONCORD_TEST_FAST_PASSWORD_HASH", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(db.exists());
    for url in [format!("sqlite:{}", db.display()), db.display().to_string()] {
        let out = concord(&["user", "list", "--database-url", &url]);
        assert!(out.status.success(), "{url}: {}", stderr(&out));
        assert!(stdout(&out).contains("ana"), "{url}: {}", stdout(&out));
    }
    let relative = Command::new(env!("CARGO_BIN_EXE_concord"))
        .current_dir(dir.path())
        .args(["user", "list", "--database-url", "sqlite://spelled.db"])
        .output()
        .unwrap();
    assert!(relative.status.success(), "{}", stderr(&relative));
    assert!(stdout(&relative).contains("ana"));
    let missing = format!("sqlite://{}/no/such/dir/x.db", dir.path().display());
    let out = concord(&["user", "list", "--database-url", &missing]);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert_eq!(
        message.matches("unable to open database file").count(),
        1,
        "{message}"
    );
}
