//! `concord retest` and `concord exposure`: the plans a project's settings name, reported
//! from the terminal (the queue fills them; the store and HTTP suites label through it).

use crate::support::{concord, stderr, stdout, write};
use serde_json::Value;

#[test]
fn retest_and_exposure_report_the_projects_plans_and_refuse_a_bad_date() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("programme.db");
    let db = db.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--database-url", db]);
        concord(&all)
    };
    let settings = write(
        &dir,
        "settings.json",
        br#"{"queue": {"retest": {"rate": 0.05, "delay_hours": 48}, "exposure": {"daily": {"items": 40}, "categories": {"DG.SELF": {"minutes": 20}}}}}"#,
    );
    let out = run(&[
        "project",
        "create",
        "programme",
        "--name",
        "Programme",
        "--settings",
        settings.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = run(&["retest", "programme"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("retests on programme: 5.0 % of each annotator's labels, after 48 h"),
        "{text}"
    );
    assert!(
        text.contains("0 scheduled, 0 waiting for their delay, 0 answered"),
        "{text}"
    );
    assert!(text.contains("no answered retests yet"), "{text}");
    let report: Value =
        serde_json::from_str(&stdout(&run(&["retest", "programme", "--json"]))).unwrap();
    assert_eq!(report["counts"]["scheduled"], 0);
    assert!(
        report["questions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["key"] == "severity")
    );

    let out = run(&["exposure", "programme", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let exposure: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(exposure["budget"]["daily"]["items"], 40);
    assert_eq!(exposure["budget"]["categories"]["DG.SELF"]["minutes"], 20.0);
    assert_eq!(exposure["standings"], serde_json::json!([]));
    let out = run(&["exposure", "programme", "--date", "2026-12-06"]);
    assert!(stdout(&out).contains("no high-severity labels on that day"));
    let out = run(&["exposure", "programme", "--date", "06/12/2026"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--date must be YYYY-MM-DD"),
        "{}",
        stderr(&out)
    );
}
