//! `concord project team`: each annotator's gold record, the gold answers still needed for
//! the project's target interval width, and when at their recent rate.

use serde_json::Value;

use crate::support::{concord, stderr, stdout, write};

const ITEMS: &str = r#"{"id":"g1","item_type":"track","title":"Gold one","gold":{"decision":"VIOLATING","severity":"S3"}}
{"id":"g2","item_type":"track","title":"Gold two","gold":{"decision":"VIOLATING","severity":"S3"}}
{"id":"g3","item_type":"track","title":"Gold three","gold":{"decision":"VIOLATING","severity":"S3"}}
"#;

const LABELS: &str = "item,annotator,decision,severity
g1,ana,NOT_VIOLATING,S0
g2,ana,NOT_VIOLATING,S0
g3,ana,NOT_VIOLATING,S0
g1,ben,VIOLATING,S3
g2,ben,VIOLATING,S3
g3,ben,VIOLATING,S3
";

#[test]
fn project_team_plans_the_gold_each_annotator_still_needs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("team.db");
    let db = db.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--database-url", db]);
        let out = concord(&all);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    run(&["project", "create", "gq", "--name", "Gold"]);
    let items = write(&dir, "items.jsonl", ITEMS.as_bytes());
    run(&["import", "gq", items.to_str().unwrap()]);
    let labels = write(&dir, "labels.csv", LABELS.as_bytes());
    run(&[
        "import",
        "gq",
        "--kind",
        "annotations",
        labels.to_str().unwrap(),
    ]);

    let plans: Vec<Value> = run(&["project", "team", "gq", "--json"])
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let plan = |name: &str| {
        plans
            .iter()
            .find(|p| p["username"] == name)
            .map(|p| p["gold_plan"].clone())
            .unwrap_or_else(|| panic!("{name} in {plans:?}"))
    };
    // 0/3 and 3/3 both need 16 answers for ±0.10 at 95 % (p = 0 or 1: n ≥ 4z²), so 13
    // more; three answered this week is 3/7 a day, so 13 / (3/7) ≈ 30.3 days.
    for (name, successes) in [("ana", 0), ("ben", 3)] {
        let plan = plan(name);
        assert_eq!(plan["accuracy"]["successes"], successes, "{plan}");
        assert_eq!(plan["accuracy"]["trials"], 3, "{plan}");
        assert_eq!(plan["still_needed"], 13, "{plan}");
        let eta = plan["eta_days"].as_f64().unwrap();
        assert!((eta - 13.0 * 7.0 / 3.0).abs() < 1e-9, "{plan}");
    }

    let table = run(&["project", "team", "gq"]);
    let ana = table.lines().find(|l| l.starts_with("ana\t")).unwrap();
    assert!(ana.contains("0/3") && ana.contains("13 (±0.1)"), "{table}");
}
