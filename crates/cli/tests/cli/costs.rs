//! `concord consensus` with costs of disagreement: the cost-weighted α and AC2 and the
//! consensus's expected cost, per question with costs; a bad matrix is refused by name.

use crate::support::{concord, stderr, stdout, write};

const ITEMS: &str = r#"{"id":"it_1","item_type":"track","title":"Harbour lamps"}
{"id":"it_2","item_type":"episode","title":"Quiet signal"}
{"id":"it_3","item_type":"track","title":"Copper meadow"}
"#;

const LABELS: &str = "item,annotator,decision,severity
it_1,ana,VIOLATING,S3
it_1,ben,VIOLATING,S3
it_1,cyd,NOT_VIOLATING,S0
it_2,ana,NOT_VIOLATING,S0
it_2,ben,NOT_VIOLATING,S0
it_2,cyd,NOT_VIOLATING,S0
it_3,ana,BORDERLINE,S2
it_3,ben,VIOLATING,S3
it_3,cyd,BORDERLINE,S1
";

#[test]
fn consensus_prints_cost_weighted_agreement_and_refuses_a_bad_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("costs.db");
    let db = db.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--database-url", db]);
        concord(&all)
    };
    let bad = write(
        &dir,
        "bad.json",
        br#"{"qa": {"costs": {"decision": {"classes": ["NOT_VIOLATING", "VIOLATING"], "matrix": [[1, 1], [1, 0]]}}}}"#,
    );
    let out = run(&[
        "project",
        "create",
        "costs",
        "--name",
        "C",
        "--settings",
        bad.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("qa.costs.decision") && err.contains("diagonal"),
        "{err}"
    );

    let good = write(
        &dir,
        "good.json",
        br#"{"qa": {"method": "mv", "costs": {"decision": {"classes": ["NOT_VIOLATING", "BORDERLINE", "VIOLATING"], "matrix": [[0, 1, 4], [1, 0, 1], [10, 1, 0]]}}}}"#,
    );
    let out = run(&[
        "project",
        "create",
        "costs",
        "--name",
        "C",
        "--settings",
        good.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let items = write(&dir, "items.jsonl", ITEMS.as_bytes());
    assert!(
        run(&["import", "costs", items.to_str().unwrap()])
            .status
            .success()
    );
    let labels = write(&dir, "labels.csv", LABELS.as_bytes());
    let out = run(&[
        "import",
        "costs",
        "--kind",
        "annotations",
        labels.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = run(&["consensus", "costs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    // Both single-answer questions have costs (decision from the settings, severity by
    // default); their sections list the cost-weighted figures.
    for question in ["decision (single", "severity (ordinal"] {
        let section = text
            .split("\n\n")
            .find(|s| s.starts_with(question))
            .unwrap_or_else(|| panic!("{question} in {text}"));
        assert!(
            section.contains("α, cost distance")
                && section.contains("Gwet's AC2, cost weights")
                && section.contains("expected cost"),
            "{section}"
        );
    }
}
