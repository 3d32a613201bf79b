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

/// `concord calibration`: a round opened from a file of external ids, listed and reported
/// (no key before the experts answer, so it cannot close yet), one open round at a time, and
/// a release refused for someone the round does not hold.
#[test]
fn calibration_rounds_open_list_and_report_from_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("calibration.db");
    let db = db.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--database-url", db]);
        concord(&all)
    };
    let ok = |args: &[&str]| {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    ok(&["project", "create", "cal", "--name", "Calibration"]);
    let items = write(
        &dir,
        "items.jsonl",
        b"{\"id\":\"a\",\"item_type\":\"track\",\"title\":\"A\"}\n{\"id\":\"b\",\"item_type\":\"track\",\"title\":\"B\"}\n",
    );
    ok(&["import", "cal", items.to_str().unwrap()]);
    for (name, role) in [("ann", "annotator"), ("exp", "qa_expert")] {
        ok(&["user", "add", name]);
        ok(&["project", "member", "cal", name, "--role", role]);
    }
    let list = write(&dir, "round.txt", b"# the onboarding batch\nb\n\na\n");
    let opened = ok(&[
        "calibration",
        "open",
        "cal",
        "--name",
        "Onboarding",
        "--items",
        list.to_str().unwrap(),
        "--threshold",
        "0.75",
    ]);
    assert!(
        opened.starts_with("round 1 \"Onboarding\": open · 2 items · 1 annotators, 1 experts"),
        "{opened}"
    );
    assert!(opened.contains("threshold 0.75"), "{opened}");
    assert!(ok(&["calibration", "list", "cal"]).contains("\"Onboarding\": open"));

    let report = ok(&["calibration", "report", "cal", "1"]);
    assert!(
        report.contains("ann") && report.contains("0 of 2"),
        "{report}"
    );
    assert!(report.contains("no key yet"), "{report}");
    let json: Value =
        serde_json::from_str(&ok(&["calibration", "report", "cal", "1", "--json"])).unwrap();
    assert_eq!(json["round"]["items"], 2);
    assert_eq!(
        json["participants"][0]["held"], true,
        "held until the verdict by default"
    );

    let close = run(&["calibration", "close", "cal", "1"]);
    assert!(!close.status.success());
    assert!(stderr(&close).contains("no key yet"), "{}", stderr(&close));
    let second = run(&[
        "calibration",
        "open",
        "cal",
        "--name",
        "Again",
        "--sample",
        "1",
    ]);
    assert!(
        stderr(&second).contains("still open"),
        "{}",
        stderr(&second)
    );
    let unknown = run(&[
        "calibration",
        "open",
        "cal",
        "--name",
        "X",
        "--items",
        write(&dir, "bad.txt", b"zz\n").to_str().unwrap(),
    ]);
    assert!(
        stderr(&unknown).contains("no item \"zz\""),
        "{}",
        stderr(&unknown)
    );
    let release = run(&["calibration", "release", "cal", "1", "exp"]);
    assert!(!release.status.success());
    assert!(
        stderr(&release).contains("not held"),
        "{}",
        stderr(&release)
    );
    ok(&["calibration", "release", "cal", "1", "ann"]);
}
