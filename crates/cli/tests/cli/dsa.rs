//! `concord dsa export`: statements of reasons from adjudicated decisions, as JSON and CSV,
//! each checked against the Transparency Database's allowed values; a decision that cannot
//! make a valid statement names its item and field, and nothing is written.

use crate::support::{concord, stderr, stdout};
use concord_store::{
    AccountKind, LabelSchema, NewAdjudication, NewProject, NewUser, Role, Store, StoreOptions,
};
use serde_json::{Value, json};

const ITEMS: &str = concat!(
    r#"{"id":"trk-1","item_type":"track","title":"Night drive","markets":["DE","FR","US"],"language":"en","release_date":"2021-04-02"}"#,
    "\n",
    r#"{"id":"trk-2","item_type":"track","title":"Sunday choir","markets":["SE"]}"#,
    "\n",
    r#"{"id":"trk-3","item_type":"track","title":"Cover art","markets":["US"]}"#,
    "\n",
    r#"{"id":"trk-4","item_type":"track","title":"No clause"}"#,
    "\n",
);

/// A catalog-safety project with decisions on trk-1 (removal for hate, 2026-01-10), trk-2
/// (S0, no action), trk-3 (removal, US only) and, when `unclear` is set, trk-4 (removal
/// without a guideline clause, which no statement can carry).
fn database(dir: &tempfile::TempDir, unclear: bool) -> String {
    let url = dir.path().join("dsa.db").display().to_string();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open(StoreOptions::new(
            &url,
            concord_qa::gold_accuracy_upper_bound,
        ))
        .await
        .unwrap();
        let project = store
            .create_project(
                NewProject {
                    slug: "cat".into(),
                    name: "Catalog".into(),
                    description: String::new(),
                    schema: LabelSchema::catalog_safety(),
                },
                None,
            )
            .await
            .unwrap();
        concord_store::import_file(
            &store,
            project.id,
            concord_store::ImportKind::Items,
            "items.jsonl",
            std::io::Cursor::new(ITEMS.as_bytes().to_vec()),
            concord_formats::items::RecordFormat::Jsonl,
            concord_store::OnConflict::Error,
            None,
            |_| {},
        )
        .await
        .unwrap();
        let eli = store
            .create_user(
                NewUser {
                    username: "eli".into(),
                    display_name: None,
                    password: None,
                    is_admin: false,
                    kind: AccountKind::Human,
                },
                None,
            )
            .await
            .unwrap();
        store
            .set_member(project.id, "eli", Role::QaExpert, None)
            .await
            .unwrap();
        let mut decisions = vec![
            (
                "trk-1",
                json!({"decision": "VIOLATING", "category": ["DG.HATE"], "severity": "S3"}),
                "Hate 2.1 dehumanising a protected group",
            ),
            (
                "trk-2",
                json!({"decision": "NOT_VIOLATING", "severity": "S0"}),
                "Hate 2.4 quoted for criticism",
            ),
            (
                "trk-3",
                json!({"decision": "VIOLATING", "category": ["DG.VIOL"], "severity": "S4"}),
                "Violence 1.1",
            ),
        ];
        if unclear {
            decisions.push((
                "trk-4",
                json!({"decision": "VIOLATING", "category": ["DC.SCAM"], "severity": "S3"}),
                "",
            ));
        }
        for (item, answer, clause) in decisions {
            let item = store.item_by_external_id(project.id, item).await.unwrap();
            let decision = NewAdjudication {
                answer,
                rationale: format!("Decided on {clause:?}: the lyrics say so."),
                guideline_clause: clause.into(),
                promote_to_gold: false,
                example_scope: None,
                example_category: None,
            };
            store
                .adjudicate(project.id, item.id, eli.id, decision)
                .await
                .unwrap();
        }
    });
    url
}

fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        / 86_400;
    concord_qa::date_of(days * 86_400_000)
}

#[test]
fn decisions_become_valid_statements_as_json_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let url = database(&dir, false);
    let day = today();
    let out = concord(&[
        "dsa",
        "export",
        "cat",
        "--from",
        &day,
        "--to",
        &day,
        "--database-url",
        &url,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 statements from 3 decisions (1 without a restriction, 1 on items not offered in the EU/EEA)"),
        "{}",
        stderr(&out)
    );
    let statements: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let s = &statements[0];
    assert_eq!(
        s["decision_visibility"],
        json!(["DECISION_VISIBILITY_CONTENT_REMOVED"])
    );
    assert_eq!(s["decision_ground"], "DECISION_GROUND_INCOMPATIBLE_CONTENT");
    assert_eq!(
        s["incompatible_content_ground"],
        "Hate 2.1 dehumanising a protected group"
    );
    assert_eq!(
        s["category"],
        "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH"
    );
    assert_eq!(s["territorial_scope"], json!(["DE", "FR"]));
    assert_eq!(s["content_date"], "2021-04-02");
    assert_eq!(s["application_date"], day);
    assert_eq!(s["content_language"], "EN");
    assert_eq!(s["automated_detection"], "No");
    assert_eq!(s["automated_decision"], "AUTOMATED_DECISION_NOT_AUTOMATED");
    assert!(s["puid"].as_str().unwrap().starts_with("concord-cat-"));

    let csv_path = dir.path().join("sor.csv");
    let out = concord(&[
        "dsa",
        "export",
        "cat",
        "--from",
        &day,
        "--to",
        &day,
        "--format",
        "csv",
        "--out",
        csv_path.to_str().unwrap(),
        "--database-url",
        &url,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("puid,decision_visibility,")
    );
    assert_eq!(lines.count(), 1);

    // A period without decisions: an empty, valid export.
    let out = concord(&[
        "dsa",
        "export",
        "cat",
        "--from",
        "2021-01-01",
        "--to",
        "2021-01-31",
        "--database-url",
        &url,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "[]");
}

#[test]
fn a_decision_that_cannot_make_a_valid_statement_names_item_and_field_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = database(&dir, true);
    let day = today();
    let path = dir.path().join("sor.json");
    let out = concord(&[
        "dsa",
        "export",
        "cat",
        "--from",
        &day,
        "--to",
        &day,
        "--out",
        path.to_str().unwrap(),
        "--database-url",
        &url,
    ]);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(message.contains("item trk-4 (concord-cat-"), "{message}");
    assert!(
        message.contains("field incompatible_content_ground: is required"),
        "{message}"
    );
    assert!(!path.exists(), "nothing is written");
    let out = concord(&[
        "dsa",
        "export",
        "cat",
        "--from",
        "2026-02-30",
        "--to",
        &day,
        "--database-url",
        &url,
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("\"2026-02-30\" is not a date"),
        "{}",
        stderr(&out)
    );
}
