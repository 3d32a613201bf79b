//! `concord aggregate`: the written files, gold scoring, tie rules, skill weights and the
//! errors for bad options.

use serde_json::Value;

use crate::support::{concord, stderr, stdout, write};

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
