//! The QA loop over HTTP: a consensus job started through the API escalates what the rules
//! say; the rules page validates what a manager types; an expert adjudicates through the
//! pages (names hidden, an empty rationale refused) and the decision is precedent.

use crate::on_every_backend;
use crate::support::{TestApp, error_message, json, location, text};
use concord_store::{ItemId, UserId};
use concord_store::{NewAnnotation, Role};
use reqwest::{Method, StatusCode};
use serde_json::json;

const ITEMS: &str = concat!(
    r#"{"id":"t1","item_type":"track","title":"Harbour Lights"}"#,
    "\n",
    r#"{"id":"t2","item_type":"track","title":"Night Shift"}"#,
    "\n",
);

async fn a_consensus_job_escalates_and_an_expert_decides_through_the_pages(app: TestApp) {
    let project = app.project("catalog").await;
    app.import_items(project.id, ITEMS).await;
    let t1 = app
        .store
        .item_by_external_id(project.id, "t1")
        .await
        .unwrap()
        .id;
    let t2 = app
        .store
        .item_by_external_id(project.id, "t2")
        .await
        .unwrap()
        .id;
    let annika = app.member(&project, "annika", Role::Annotator).await;
    let bertil = app.member(&project, "bertil", Role::Annotator).await;
    let expert = app.member(&project, "eli", Role::QaExpert).await;
    let analyst = app.member(&project, "quinn", Role::QaAnalyst).await;
    app.member(&project, "priya", Role::ProjectManager).await;
    let label = |who: UserId, item: ItemId, decision: &str, severity: &str, rationale: &str| {
        let store = app.store.clone();
        let rationale = rationale.to_owned();
        let answer = json!({"decision": decision, "severity": severity});
        async move {
            store
                .add_annotation(
                    project.id,
                    who,
                    NewAnnotation {
                        item_id: item,
                        answer,
                        rationale,
                        ..NewAnnotation::default()
                    },
                )
                .await
                .unwrap();
        }
    };
    label(
        annika.id,
        t1,
        "VIOLATING",
        "S3",
        "threatens a named neighbour",
    )
    .await;
    label(
        bertil.id,
        t1,
        "NOT_VIOLATING",
        "S0",
        "reads as a figure of speech",
    )
    .await;
    label(annika.id, t2, "NOT_VIOLATING", "S0", "").await;
    label(bertil.id, t2, "NOT_VIOLATING", "S0", "").await;
    label(expert.id, t2, "NOT_VIOLATING", "S0", "").await;

    // The analyst starts the job through the API; it escalates the split item only.
    let token = app.token(&analyst).await;
    let (status, job) = json(
        app.bearer(&token, Method::POST, "/api/v1/projects/catalog/consensus")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job = app.wait_for_job(&token, job["id"].as_i64().unwrap()).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"]["escalated"], 1);
    let (_, queue) = json(
        app.bearer(&token, Method::GET, "/api/v1/projects/catalog/escalations")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let queue = queue["escalations"].as_array().unwrap().clone();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0]["item_id"], t1.get());
    let rules: Vec<&str> = queue[0]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"low_agreement"), "{rules:?}");
    // Severity has no cost matrix of its own, so it costs the levels apart: S0 against S3
    // leaves the consensus an expected cost that ranks the expert queue.
    assert!(
        queue[0]["expected_cost"].as_f64().is_some_and(|c| c > 0.0),
        "{}",
        queue[0]
    );
    let (_, quality) = json(
        app.bearer(&token, Method::GET, "/api/v1/projects/catalog/quality")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(quality["escalations"]["open"], 1);
    let severity = quality["run"]["summary"]["questions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["key"] == "severity")
        .unwrap()
        .clone();
    assert_eq!(severity["items"], 2);
    assert_eq!(severity["costs"]["source"], "ordinal_default", "{severity}");
    assert_eq!(severity["costs"]["matrix"][0][3], 3.0, "{severity}");
    assert!(
        severity["costs"]["alpha"].get("value").is_some(),
        "{severity}"
    );
    let quinn = app.sign_in("quinn").await;
    let (status, page) = text(quinn.get("/p/catalog/quality").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Krippendorff") && page.contains("id=\"question-severity\""));
    assert!(
        page.contains("Cost of disagreement")
            && page.contains("data-cost-source=\"ordinal_default\""),
        "{page}"
    );
    let (status, page) = text(quinn.get("/p/catalog/escalations").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("Expected cost") && page.contains("class=\"expected-cost\""),
        "{page}"
    );
    let (status, page) = text(quinn.get("/p/catalog/dashboard").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("id=\"chart-volume\"")
            && page.contains("data-label=\"annika\" data-value=\"2\""),
        "{page}"
    );

    // The manager edits the rules; bad input is refused with the field's name.
    let priya = app.sign_in("priya").await;
    let form = |min_posterior: &'static str, urgent: &'static str| {
        vec![
            ("method", "mv"),
            ("target_alpha", "0.8"),
            ("min_posterior", min_posterior),
            ("min_agreement", ""),
            ("on_unsure", "on"),
            ("severity_at_or_above", "S3"),
            ("min_labels", "2"),
            ("urgent_categories", urgent),
            ("high_categories", "IL.LAW"),
            ("sla_hours_urgent", "2"),
            ("sla_hours_high", "12"),
            ("sla_hours_normal", "48"),
        ]
    };
    let (status, page) = text(
        priya
            .submit("/p/catalog/escalation-rules", &form("lots", "DG.CHILD"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains("minimum posterior: &quot;lots&quot; is not a number"),
        "{page}"
    );
    let (status, page) = text(
        priya
            .submit("/p/catalog/escalation-rules", &form("0.6", "DG.KIDS"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("&quot;DG.KIDS&quot; is not a code"), "{page}");
    let (status, page) = text(
        priya
            .submit("/p/catalog/escalation-rules", &form("0.6", "DG.CHILD"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let saved = app
        .store
        .project("catalog")
        .await
        .unwrap()
        .settings
        .into_json();
    assert_eq!(saved["qa"]["escalation"]["min_posterior"], 0.6);
    assert_eq!(saved["qa"]["escalation"]["on_tie"], false);
    assert_eq!(saved["qa"]["escalation"]["sla_hours_urgent"], 2);
    let (status, _) = text(
        quinn
            .get("/p/catalog/escalation-rules")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "analysts do not edit the rules"
    );

    // The expert's page hides annotator names; annotators cannot open it.
    let eli = app.sign_in("eli").await;
    let (status, page) = text(
        eli.get(&format!("/p/catalog/adjudicate/{t1}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("threatens a named neighbour") && page.contains("Annotator A"));
    assert!(
        !page.contains("annika") && !page.contains("bertil"),
        "names are hidden"
    );
    let annika_browser = app.sign_in("annika").await;
    let (status, _) = text(
        annika_browser
            .get(&format!("/p/catalog/adjudicate/{t1}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let path = format!("/p/catalog/adjudicate/{t1}");
    let (status, page) = text(
        eli.submit(
            &path,
            &[
                ("q.decision", "VIOLATING"),
                ("q.severity", "S3"),
                ("rationale", " "),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("rationale: say why"), "{page}");
    assert_eq!(
        app.store.item(project.id, t1).await.unwrap().state,
        concord_store::ItemState::Escalated
    );
    let response = eli
        .submit(
            &path,
            &[
                ("q.decision", "VIOLATING"),
                ("q.severity", "S3"),
                ("q.category", "DG.VIOL"),
                ("rationale", "A threat against a named person, with a place"),
                ("guideline_clause", "§2.1 credible threats"),
                ("example_scope", "in_scope"),
                ("example_category", "DG.VIOL"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let next = location(&response);
    assert_eq!(next, format!("/p/catalog/escalations?done={t1}"));
    let (_, page) = text(eli.get(&next).send().await.unwrap()).await;
    assert!(
        page.contains("Decision recorded") && page.contains("Nothing is waiting"),
        "{page}"
    );
    let (_, library) = text(
        eli.get("/p/catalog/precedents?code=DG.VIOL")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        library.contains("A threat against a named person"),
        "{library}"
    );
    let (_, none) = text(
        eli.get("/p/catalog/precedents?q=figure+of+speech")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(none.contains("No precedent matches"));

    // Feedback: bertil's labels were overturned; the report says so on the page and in
    // Markdown; annotators read only their own.
    let (status, page) = text(
        quinn
            .get("/p/catalog/feedback/bertil")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("id=\"overturned\"") && page.contains("A threat against a named person"),
        "{page}"
    );
    let (status, md) = text(
        quinn
            .get("/p/catalog/feedback?format=md")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(md.starts_with("# Feedback: Project catalog\n"), "{md}");
    let (status, csv) = text(
        quinn
            .get("/p/catalog/feedback/bertil?format=csv")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        csv.contains("overturned,decision,NOT_VIOLATING,VIOLATING,1,t1,"),
        "{csv}"
    );
    let (status, _) = text(
        annika_browser
            .get("/p/catalog/feedback/bertil")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = text(
        annika_browser
            .get("/p/catalog/feedback/annika")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Through the API: the item's history, and an expert who labelled an item is refused.
    let eli_token = app.token(&expert).await;
    let (_, history) = json(
        app.bearer(
            &eli_token,
            Method::GET,
            &format!("/api/v1/projects/catalog/items/{t1}/consensus"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(history["state"], "adjudicated");
    assert_eq!(
        history["adjudications"][0]["guideline_clause"],
        "§2.1 credible threats"
    );
    let (status, body) = json(
        app.bearer(&eli_token, Method::POST, &format!("/api/v1/projects/catalog/items/{t2}/adjudication"))
            .json(&json!({"answer": {"decision": "NOT_VIOLATING", "severity": "S0"}, "rationale": "fine"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(error_message(&body).contains("you labelled this item"));

    // A release: the decision wins over the consensus; the labels CSV is item,annotator,label.
    let (status, release) = json(
        app.bearer(&token, Method::POST, "/api/v1/projects/catalog/releases")
            .json(&json!({"name": "2026-11-v1", "description": "first"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{release}");
    assert_eq!(release["items"], 2);
    assert_eq!(release["summary"]["adjudications"], 1);
    assert_eq!(release["summary"]["overturn_rate"], 1.0);
    let (status, items) = text(
        app.bearer(
            &token,
            Method::GET,
            "/api/v1/projects/catalog/releases/2026-11-v1/items?format=jsonl",
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let first: serde_json::Value = serde_json::from_str(items.lines().next().unwrap()).unwrap();
    assert_eq!(first["item"], "t1");
    assert_eq!(first["source"], "adjudicated");
    assert_eq!(first["label"]["severity"], "S3");
    release_downloads_as_parquet(&app, &token, items.lines().count()).await;
    let (status, csv) = text(
        app.bearer(
            &token,
            Method::GET,
            "/api/v1/projects/catalog/releases/2026-11-v1/labels?format=csv&question=severity",
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(csv.lines().count(), 1 + 5, "{csv}");
    assert!(csv.starts_with("item,annotator,label\nt1,a"), "{csv}");
    let (status, body) = json(
        app.bearer(
            &token,
            Method::GET,
            "/api/v1/projects/catalog/releases/2026-11-v1/labels?format=csv",
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_message(&body).contains("add question="), "{body}");
    let (status, page) = text(quinn.get("/p/catalog/releases").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"release-2026-11-v1\""), "{page}");
    let (status, page) = text(
        quinn
            .submit("/p/catalog/releases", &[("name", "2026-11-v1")])
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(page.contains("already exists"), "{page}");
}

/// The release of the spec above as Parquet downloads: typed rows, the expert's decision, the
/// QA summary in the footer; the labels one row each, as many as the JSONL has.
async fn release_downloads_as_parquet(app: &TestApp, token: &str, jsonl_items: usize) {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let download = |what: &str| {
        app.bearer(
            token,
            Method::GET,
            &format!("/api/v1/projects/catalog/releases/2026-11-v1/{what}"),
        )
        .send()
    };
    let response = download("items?format=parquet").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.apache.parquet"
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("catalog-2026-11-v1-items.parquet")
    );
    let reader = SerializedFileReader::new(response.bytes().await.unwrap()).unwrap();
    let rows: Vec<serde_json::Value> = reader
        .get_row_iter(None)
        .unwrap()
        .map(|row| row.unwrap().to_json_value())
        .collect();
    assert_eq!(rows.len(), jsonl_items);
    assert_eq!(rows[0]["item"], "t1");
    assert_eq!(rows[0]["source"], "adjudicated");
    assert_eq!(rows[0]["adjudicated"], true);
    assert_eq!(rows[0]["label"]["severity"], "S3");
    assert!(rows[0]["n_labels"].is_i64(), "{}", rows[0]);
    let summary = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == "concord.qa_summary"))
        .and_then(|k| k.value.clone())
        .unwrap();
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["adjudications"], 1);

    let (_, labels) = text(download("labels?format=jsonl").await.unwrap()).await;
    let response = download("labels?format=parquet").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let reader = SerializedFileReader::new(response.bytes().await.unwrap()).unwrap();
    assert_eq!(
        reader.metadata().file_metadata().num_rows() as usize,
        labels.lines().count()
    );

    let (status, body) = json(download("items?format=xlsx").await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_message(&body).contains("jsonl, csv or parquet"),
        "{body}"
    );
}

async fn a_new_guideline_version_lists_labels_in_changed_categories_and_queues_rereviews(
    app: TestApp,
) {
    use concord_store::{ExampleScope, GuidelineExample};
    let project = app.project("catalog").await;
    app.import_items(project.id, ITEMS).await;
    let t1 = app
        .store
        .item_by_external_id(project.id, "t1")
        .await
        .unwrap()
        .id;
    let t2 = app
        .store
        .item_by_external_id(project.id, "t2")
        .await
        .unwrap()
        .id;
    let annika = app.member(&project, "annika", Role::Annotator).await;
    app.member(&project, "priya", Role::ProjectManager).await;
    let example = |category: &str, text: &str| GuidelineExample {
        category: category.into(),
        scope: ExampleScope::InScope,
        text: text.into(),
    };
    app.store
        .save_guideline_draft(
            project.id,
            "# Rules\n",
            &[example("DG.HATE", "Slurs"), example("DC.SPAM", "Reuploads")],
            "",
            None,
        )
        .await
        .unwrap();
    let v1 = app
        .store
        .publish_guideline(project.id, None, None)
        .await
        .unwrap();
    for (item, category) in [(t1, "DG.HATE"), (t2, "DC.SPAM")] {
        app.store
            .add_annotation(
                project.id,
                annika.id,
                NewAnnotation {
                    item_id: item,
                    answer: json!({"decision": "VIOLATING", "severity": "S3", "category": [category]}),
                    guideline_version_id: Some(v1.id),
                    ..NewAnnotation::default()
                },
            )
            .await
            .unwrap();
    }
    app.store
        .save_guideline_draft(
            project.id,
            "# Rules\n",
            &[
                example(
                    "DG.HATE",
                    "Slurs, unless reclaimed by the speaker's own group",
                ),
                example("DC.SPAM", "Reuploads"),
            ],
            "Reclaimed slurs",
            None,
        )
        .await
        .unwrap();
    app.store
        .publish_guideline(project.id, Some("Reclaimed slurs"), None)
        .await
        .unwrap();

    let priya = app.sign_in("priya").await;
    let (status, page) = text(
        priya
            .get("/p/catalog/guidelines/revision")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("examples changed: DG.HATE"), "{page}");
    let table = crate::support::section(
        &page,
        "table class=\"list small\" id=\"candidates\"",
        "</table>",
    );
    assert!(
        table.contains("Harbour Lights") && !table.contains("Night Shift"),
        "{table}"
    );
    let form = [
        ("chosen", "1"),
        ("from", "1"),
        ("to", "2"),
        ("category", "DG.HATE"),
    ];
    let (status, page) = text(priya.submit("/p/catalog/guidelines/revision", &form).await).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("Queued 1 re-review(s); 0 were already waiting."),
        "{page}"
    );
    let (_, page) = text(priya.submit("/p/catalog/guidelines/revision", &form).await).await;
    assert!(
        page.contains("Queued 0 re-review(s); 1 were already waiting."),
        "{page}"
    );
    // The annotator is served the item again.
    match app.store.next_item(&project, &annika).await.unwrap() {
        concord_store::NextItem::Leased(lease) => assert_eq!(lease.item.id, t1),
        other => panic!("expected the re-review, got {other:?}"),
    }
    let annika_browser = app.sign_in("annika").await;
    let (status, _) = text(
        annika_browser
            .submit("/p/catalog/guidelines/revision", &form)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

on_every_backend!(
    a_new_guideline_version_lists_labels_in_changed_categories_and_queues_rereviews,
    a_consensus_job_escalates_and_an_expert_decides_through_the_pages
);
