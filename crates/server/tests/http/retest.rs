//! Test–retest over HTTP: retests served blind through the queue, the report in the API
//! and on its page, for the roles that read annotations.

use crate::on_every_backend;
use crate::support::{TestApp, call, text};
use concord_store::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

fn tracks(count: usize) -> String {
    (1..=count)
        .map(|n| {
            format!("{{\"id\":\"t{n:03}\",\"item_type\":\"track\",\"title\":\"Track {n}\"}}\n")
        })
        .collect()
}

/// Labels everything the queue serves to `token`, answering `decision` unless the item's
/// title is in `change` (then the other decision); returns the titles served.
async fn label_all(app: &TestApp, token: &str, round: &str, change: &[&str]) -> Vec<String> {
    let mut titles = Vec::new();
    loop {
        let (status, next) = call(app, token, Method::POST, "/queue/next", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{next}");
        if next["status"] != "leased" {
            return titles;
        }
        let item = &next["item"];
        for hidden in ["purpose", "state", "is_gold"] {
            assert!(
                item.get(hidden).is_none() && next.get(hidden).is_none(),
                "{hidden} leaks: {next}"
            );
        }
        let title = item["title"].as_str().unwrap().to_owned();
        let decision = if change.contains(&title.as_str()) {
            "VIOLATING"
        } else {
            "NOT_VIOLATING"
        };
        let submit = json!({"item_id": item["id"], "answer": {"decision": decision, "severity": "S0"},
                            "idempotency_key": format!("{round}-answer-{}-{}", item["id"], titles.len())});
        let (status, body) = call(app, token, Method::POST, "/queue/submit", submit).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        titles.push(title);
    }
}

async fn retests_come_back_blind_and_the_report_shows_each_annotators_consistency(app: TestApp) {
    let project = app.project("catalog").await;
    app.store
        .update_project(
            project.id,
            "Catalog",
            "",
            json!({"queue": {"overlap": 1, "retest": {"rate": 0.5, "delay_hours": 0}}}),
            None,
        )
        .await
        .unwrap();
    app.import_items(project.id, &tracks(30)).await;
    let ann = app.member(&project, "ann", Role::Annotator).await;
    let analyst = app.member(&project, "analyst", Role::QaAnalyst).await;
    let (ann, analyst_token) = (app.token(&ann).await, app.token(&analyst).await);

    // With no delay, each drawn label's retest is served straight after it.
    let served = label_all(&app, &ann, "first", &[]).await;
    let twice: Vec<&String> = served
        .iter()
        .enumerate()
        .filter(|(i, t)| served[..*i].contains(t))
        .map(|(_, t)| t)
        .collect();
    assert!(
        !twice.is_empty() && twice.len() < 30,
        "some items come back: {served:?}"
    );
    assert_eq!(served.len(), 30 + twice.len());

    let (status, _) = call(&app, &ann, Method::GET, "/retest", json!({})).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "annotators do not read the report"
    );
    let (status, body) = call(&app, &analyst_token, Method::GET, "/retest", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["plan"]["rate"], 0.5);
    let report = &body["report"];
    assert_eq!(report["counts"]["answered"], twice.len());
    let decision = report["questions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["key"] == "decision")
        .unwrap();
    assert_eq!(decision["project"]["pairs"], twice.len());
    assert_eq!(
        decision["project"]["same"],
        twice.len(),
        "the same answer every time"
    );
    assert_eq!(decision["project"]["percent"]["value"], 1.0);
    assert_eq!(decision["annotators"][0]["annotator"], "ann");

    let browser = app.sign_in("analyst").await;
    let (status, page) = text(browser.get("/p/catalog/retest").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("50.0 %") && page.contains("data-annotator=\"ann\""),
        "{page}"
    );
    assert!(page.contains(&format!("{} answered", twice.len())));
    let (_, quality) = text(browser.get("/p/catalog/quality").send().await.unwrap()).await;
    assert!(
        quality.contains("/p/catalog/retest"),
        "the quality page links to it"
    );
}

async fn the_report_page_says_how_to_turn_retests_on_when_they_are_off(app: TestApp) {
    let project = app.project("catalog").await;
    app.member(&project, "pm", Role::ProjectManager).await;
    let browser = app.sign_in("pm").await;
    let (status, page) = text(browser.get("/p/catalog/retest").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Retests are off") && page.contains("queue.retest.rate"),
        "{page}"
    );
    assert!(page.contains("No answered retests on this question yet"));
}

on_every_backend!(
    retests_come_back_blind_and_the_report_shows_each_annotators_consistency,
    the_report_page_says_how_to_turn_retests_on_when_they_are_off,
);
