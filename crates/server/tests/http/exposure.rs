//! Exposure budgets over HTTP: an annotator's high-severity labels counted per category,
//! shown to managers in the API and on a page, with the limits in force.

use crate::on_every_backend;
use crate::support::{TestApp, json, text};
use concord_store::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn call(app: &TestApp, token: &str, path: &str) -> (StatusCode, Value) {
    json(
        app.bearer(
            token,
            Method::GET,
            &format!("/api/v1/projects/catalog{path}"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await
}

async fn managers_see_who_is_near_their_exposure_limit(app: TestApp) {
    let project = app.project("catalog").await;
    let settings = json!({"queue": {"overlap": 1, "exposure": {"daily": {"items": 2}}}});
    app.store
        .update_project(project.id, "Catalog", "", settings, None)
        .await
        .unwrap();
    let tracks: String = (1..=3)
        .map(|n| format!("{{\"id\":\"t{n}\",\"item_type\":\"track\",\"title\":\"Track {n}\"}}\n"))
        .collect();
    app.import_items(project.id, &tracks).await;
    let ann = app.member(&project, "ann", Role::Annotator).await;
    let pm = app.member(&project, "pm", Role::ProjectManager).await;
    let (ann, pm_token) = (app.token(&ann).await, app.token(&pm).await);
    let (_, next) = json(
        app.bearer(&ann, Method::POST, "/api/v1/projects/catalog/queue/next")
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let answer = json!({"decision": "VIOLATING", "category": ["DG.SELF"], "severity": "S4"});
    let (status, body) = json(
        app.bearer(&ann, Method::POST, "/api/v1/projects/catalog/queue/submit")
            .json(&json!({"item_id": next["item"]["id"], "answer": answer,
                          "idempotency_key": "exposure-key-1", "time_spent_ms": 120000}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, _) = call(&app, &ann, "/exposure").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "annotators do not see the team's exposure"
    );
    let (status, body) = call(&app, &pm_token, "/exposure").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["budget"]["daily"]["items"], 2);
    let row = &body["standings"][0];
    assert_eq!(row["annotator"], "ann");
    assert_eq!(row["category"], "DG.SELF");
    assert_eq!((&row["items"], &row["minutes"]), (&json!(1), &json!(2.0)));
    assert_eq!(row["status"], "within");
    let (status, body) = call(&app, &pm_token, "/exposure?date=2020-01-01").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["standings"],
        json!([]),
        "another day has its own counts"
    );
    let (status, body) = call(&app, &pm_token, "/exposure?date=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("YYYY-MM-DD")
    );

    let browser = app.sign_in("pm").await;
    let (status, page) = text(browser.get("/p/catalog/exposure").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("data-annotator=\"ann\"") && page.contains("DG.SELF"),
        "{page}"
    );
    assert!(page.contains("2 items"), "the limit in force is shown");
    let (_, team) = text(browser.get("/p/catalog/team").send().await.unwrap()).await;
    assert!(
        team.contains("/p/catalog/exposure"),
        "the team page links to it"
    );
}

on_every_backend!(managers_see_who_is_near_their_exposure_limit);
