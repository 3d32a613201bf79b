//! Automated annotators over HTTP: the project's *Automated annotators* page adds a rules
//! model (a bad rules file is refused, naming it), runs it and counts its labels; after a
//! consensus run the Quality page, the feedback report and the JSON quality report score
//! it like a person.

use crate::on_every_backend;
use crate::support::{Browser, TestApp, json, location, section, text};
use concord_store::{NewAnnotation, Project, Role};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::{Duration, Instant};

/// Two titles the rules call threats (t1, t3) and two they do not (t2, t4).
const ITEMS: &str = concat!(
    r#"{"id":"t1","item_type":"track","title":"I will kill you"}"#,
    "\n",
    r#"{"id":"t2","item_type":"track","title":"Harbour Lights"}"#,
    "\n",
    r#"{"id":"t3","item_type":"track","title":"Kill you softly"}"#,
    "\n",
    r#"{"id":"t4","item_type":"track","title":"Night Shift"}"#,
    "\n",
);

const RULES: &str = r#"{"default": {"decision": "NOT_VIOLATING", "severity": "S0"},
  "rules": [{"name": "threats", "keywords": ["kill you"],
             "answer": {"decision": "VIOLATING", "category": ["DG.VIOL"], "severity": "S3"}}]}"#;

/// The models page, once it contains `needle`.
async fn wait_for(manager: &Browser, needle: &str) -> String {
    let started = Instant::now();
    loop {
        let (status, page) = text(manager.get("/p/catalog/models").send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        if page.contains(needle) {
            return page;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the page never showed {needle:?}:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A rules model added and run through the page, as a project manager does it.
async fn rules_model_through_the_page(app: &TestApp) -> (Project, Browser) {
    let project = app.project("catalog").await;
    app.import_items(project.id, ITEMS).await;
    app.member(&project, "priya", Role::ProjectManager).await;
    let manager = app.sign_in("priya").await;
    let (_, home) = text(manager.get("/p/catalog").send().await.unwrap()).await;
    assert!(
        home.contains(r#"href="/p/catalog/models""#),
        "the project navigation links it"
    );
    let (status, page) = text(manager.get("/p/catalog/models").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("No automated annotator yet"), "{page}");

    let bad = [
        ("name", "rules"),
        ("kind", "rules"),
        ("rules", "{\"default\": "),
    ];
    let (status, page) = text(manager.submit("/p/catalog/models", &bad).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        section(&page, "id=\"model-error\"", "</p>").contains("rules file"),
        "{page}"
    );
    assert!(
        app.store
            .model_annotators(project.id)
            .await
            .unwrap()
            .is_empty(),
        "nothing changed"
    );

    let good = [("name", "rules"), ("kind", "rules"), ("rules", RULES)];
    let added = manager.submit("/p/catalog/models", &good).await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&added), "/p/catalog/models#model-rules");
    let run = manager.submit("/p/catalog/models/rules/run", &[]).await;
    assert_eq!(run.status(), StatusCode::SEE_OTHER);
    wait_for(&manager, r#"class="labels" data-count="4""#).await;
    let page = wait_for(&manager, "4 labelled, 0 failed").await;
    let row = section(&page, r#"id="model-rules""#, "</tr>");
    assert!(
        row.contains("enabled") && row.contains("catalog.rules"),
        "{row}"
    );
    (project, manager)
}

async fn the_models_page_adds_a_rules_model_runs_it_and_counts_its_labels(app: TestApp) {
    let (project, manager) = rules_model_through_the_page(&app).await;
    let disabled = manager.submit("/p/catalog/models/rules/disable", &[]).await;
    assert_eq!(disabled.status(), StatusCode::SEE_OTHER);
    let model = app
        .store
        .model_annotator(project.id, "rules")
        .await
        .unwrap();
    assert!(
        !model.enabled,
        "the same store record the CLI and the API change"
    );
    // A second run finds nothing left: the model never labels an item twice.
    manager.submit("/p/catalog/models/rules/run", &[]).await;
    let page = wait_for(&manager, "0 labelled, 0 failed").await;
    assert!(page.contains(r#"class="labels" data-count="4""#), "{page}");

    app.member(&project, "annika", Role::Annotator).await;
    let annotator = app.sign_in("annika").await;
    let (status, page) = text(annotator.get("/p/catalog/models").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    let (_, home) = text(annotator.get("/p/catalog").send().await.unwrap()).await;
    assert!(
        !home.contains(r#"href="/p/catalog/models""#),
        "no link for an annotator"
    );
}

async fn the_quality_page_and_the_feedback_report_score_the_model_like_a_person(app: TestApp) {
    let (project, _) = rules_model_through_the_page(&app).await;
    // The people: t1 and t4 violate, t2 and t3 do not. The rules agree on t1 and t2 only.
    let mut people = Vec::new();
    for name in ["annika", "bertil"] {
        people.push(app.member(&project, name, Role::Annotator).await);
    }
    for (external, decision, severity) in [
        ("t1", "VIOLATING", "S3"),
        ("t2", "NOT_VIOLATING", "S0"),
        ("t3", "NOT_VIOLATING", "S0"),
        ("t4", "VIOLATING", "S3"),
    ] {
        let item = app
            .store
            .item_by_external_id(project.id, external)
            .await
            .unwrap();
        for who in &people {
            let answer = json!({"decision": decision, "severity": severity});
            let new = NewAnnotation {
                item_id: item.id,
                answer,
                ..NewAnnotation::default()
            };
            app.store
                .add_annotation(project.id, who.id, new)
                .await
                .unwrap();
        }
    }
    let analyst = app.member(&project, "quinn", Role::QaAnalyst).await;
    let token = app.token(&analyst).await;
    let start = app.bearer(&token, Method::POST, "/api/v1/projects/catalog/consensus");
    let (status, job) = json(start.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job = app.wait_for_job(&token, job["id"].as_i64().unwrap()).await;
    assert_eq!(job["status"], "succeeded", "{job}");

    let quality = app.bearer(&token, Method::GET, "/api/v1/projects/catalog/quality");
    let (status, body) = json(quality.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let models = body["run"]["summary"]["models"]
        .as_array()
        .expect("the report's models");
    let decision = models[0]["questions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["question"] == "decision")
        .expect("scored on the decision")
        .clone();
    // 2 of 4, 95 % Wilson interval 0.150–0.850.
    assert_eq!(decision["agreement"]["successes"], 2);
    assert_eq!(decision["agreement"]["trials"], 4);
    let ci = decision["agreement"]["ci"].as_array().unwrap();
    assert!((ci[0].as_f64().unwrap() - 0.150036).abs() < 1e-5, "{ci:?}");
    assert!((ci[1].as_f64().unwrap() - 0.849964).abs() < 1e-5, "{ci:?}");
    assert_eq!(
        decision["confusion"]["counts"],
        json!([[1, 0, 1], [0, 0, 0], [1, 0, 1]]),
        "rows: the model's answer (NOT_VIOLATING, BORDERLINE, VIOLATING); columns: consensus"
    );

    let analyst = app.sign_in("quinn").await;
    let (status, page) = text(analyst.get("/p/catalog/quality").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let scores = section(&page, r#"data-model="catalog.rules""#, "</section>");
    let row = section(scores, r#"data-question="decision""#, "</tr>");
    assert!(
        row.contains("50.0 %") && row.contains("[15.0–85.0]") && row.contains("2/4"),
        "{row}"
    );
    assert!(scores.contains("model-confusion"), "{scores}");
    assert!(
        scores.contains("No stated confidence"),
        "rules state none: {scores}"
    );

    let (status, page) = text(analyst.get("/p/catalog/feedback").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let feedback = section(&page, r#"id="feedback-models""#, "</div>");
    assert!(
        feedback.contains("50.0 %") && feedback.contains("[15.0–85.0]"),
        "{feedback}"
    );
    let (_, markdown) = text(
        analyst
            .get("/p/catalog/feedback?format=md")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        markdown.contains("## Automated annotator catalog.rules")
            && markdown.contains("agrees with the consensus 50.0 % [15.0–85.0] (2 of 4)"),
        "{markdown}"
    );
}

on_every_backend!(
    the_models_page_adds_a_rules_model_runs_it_and_counts_its_labels,
    the_quality_page_and_the_feedback_report_score_the_model_like_a_person,
);
