//! `concord demo`, and a release of the demo database checked by an independent path.

use std::process::{Command, Output};

use serde_json::Value;

use crate::support::{concord, stderr, stdout};

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
