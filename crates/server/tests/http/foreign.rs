//! Moving in from another tool over HTTP: `POST /api/v1/projects/{slug}/imports/foreign`
//! (dry run, real import, refusal with the report) and the import page's form.

use crate::on_every_backend;
use crate::support::{TestApp, error_message, json, text};
use concord_store::Role;
use reqwest::{Method, StatusCode};
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/foreign")
        .join(name);
    std::fs::read(path).unwrap()
}

async fn post(app: &TestApp, token: &str, query: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let path = format!("/api/v1/projects/moving/imports/foreign?{query}");
    json(
        app.bearer(token, Method::POST, &path)
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn item_count(app: &TestApp, token: &str) -> usize {
    let (status, page) = json(
        app.bearer(token, Method::GET, "/api/v1/projects/moving/items")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().len()
}

async fn an_export_is_checked_then_imported_whole_through_the_api(app: TestApp) {
    let project = app.project("moving").await;
    let pm = app.member(&project, "pm", Role::ProjectManager).await;
    let pm = app.token(&pm).await;
    let annotator = app.member(&project, "ann", Role::Annotator).await;
    let annotator = app.token(&annotator).await;
    let ls = fixture("label_studio.json");

    let query = "source=label-studio&item_type=track&dry_run=true&filename=ls.json";
    let (status, body) = post(&app, &annotator, query, ls.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let (status, body) = post(&app, &pm, query, ls.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let report = &body["report"];
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["written"], false);
    assert_eq!(report["items"]["new"], 3);
    assert_eq!(report["annotations"], 5);
    assert_eq!(report["predictions"], 1);
    assert_eq!(report["not_mapped"], serde_json::json!([]));
    let decision = report["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "decision")
        .unwrap();
    assert_eq!(
        decision["target"],
        serde_json::json!({"to": "question", "question": "decision"})
    );
    assert_eq!(item_count(&app, &pm).await, 0, "a dry run writes nothing");

    // A mapping that sends a value nowhere valid: refused with the report, nothing written.
    let bad_mapping = r#"{"values": {"decision": {"Violating": "MAYBE"}}}"#;
    let refused = format!(
        "source=label_studio&item_type=track&filename=ls.json&mapping={}",
        urlencode(bad_mapping)
    );
    let (status, body) = post(&app, &pm, &refused, ls.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        error_message(&body).contains("task 1 (id 11), annotation 1: field decision"),
        "{body}"
    );
    assert_eq!(
        body["error"]["report"]["not_mapped"][0]["value"],
        "Violating"
    );
    assert_eq!(item_count(&app, &pm).await, 0);

    let (status, body) = post(&app, &pm, "source=label_studio&item_type=track", ls).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["report"]["written"], true);
    assert_eq!(item_count(&app, &pm).await, 3);

    // A file that does not read names its line and field, and changes nothing.
    let (status, body) = post(
        &app,
        &pm,
        "source=toloka&item_type=episode&filename=t.tsv",
        b"INPUT:id\tOUTPUT:decision\nx\tVIOLATING\n".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        error_message(&body),
        "t.tsv: line 1: field ASSIGNMENT:worker_id: missing: every row needs the worker who answered"
    );
    assert_eq!(item_count(&app, &pm).await, 3);
}

async fn the_import_page_checks_an_export_and_shows_what_maps(app: TestApp) {
    let project = app.project("moving").await;
    app.member(&project, "pm", Role::ProjectManager).await;
    let browser = app.sign_in("pm").await;
    let (status, page) = text(browser.get("/p/moving/import").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"id="foreign-form""#), "{page}");
    let (status, fragment) = text(
        browser
            .request(Method::POST, "/p/moving/import/foreign?source=toloka&item_type=episode&dry_run=true&filename=toloka.tsv")
            .header("X-CSRF-Token", &browser.csrf)
            .body(fixture("toloka.tsv"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{fragment}");
    assert!(
        fragment.contains("Everything maps: the import would succeed."),
        "{fragment}"
    );
    assert!(
        fragment.contains("w1f3a → w1f3a (2 annotations)"),
        "{fragment}"
    );
    assert!(
        fragment.contains("line 6: assignment rejected in Toloka"),
        "{fragment}"
    );
    // Without the CSRF token the page refuses the write.
    let status = browser
        .request(
            Method::POST,
            "/p/moving/import/foreign?source=toloka&item_type=episode",
        )
        .body(fixture("toloka.tsv"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, fragment) = text(
        browser
            .request(Method::POST, "/p/moving/import/foreign?source=toloka&item_type=episode&dry_run=false&filename=toloka.tsv")
            .header("X-CSRF-Token", &browser.csrf)
            .body(fixture("toloka.tsv"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{fragment}");
    assert!(fragment.contains("<h3>Imported</h3>"), "{fragment}");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

on_every_backend!(
    an_export_is_checked_then_imported_whole_through_the_api,
    the_import_page_checks_an_export_and_shows_what_maps,
);
