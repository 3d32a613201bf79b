//! The conformance cases (`tests/conformance/`) through the binary: `concord case check` on
//! every family, and each case rebuilt as the files a user would give `concord agreement`
//! and `concord aggregate`.

use std::path::{Path, PathBuf};

use concord_formats::conformance::{Case, agreement_flags, case_file};
use serde_json::Value;

use crate::support::{assert_family_passes, concord, conformance_dir, stderr, stdout, write};

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
