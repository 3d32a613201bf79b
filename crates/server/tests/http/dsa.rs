//! DSA statements of reasons over HTTP: `GET /api/v1/projects/{slug}/dsa/statements` as
//! JSON and CSV, the refusal naming item and field, and the releases page's form.

use crate::on_every_backend;
use crate::support::{TestApp, error_message, json, text};
use concord_store::{NewAdjudication, Role};
use reqwest::{Method, StatusCode};
use serde_json::json;

const ITEMS: &str = concat!(
    r#"{"id":"t1","item_type":"track","title":"Night drive","markets":["AT","BR"],"release_date":"2020"}"#,
    "\n",
    r#"{"id":"t2","item_type":"track","title":"No clause"}"#,
    "\n",
);

async fn statements_are_exported_for_a_period_and_a_misfit_is_named(app: TestApp) {
    let project = app.project("catalog").await;
    app.import_items(project.id, ITEMS).await;
    let pm = app.member(&project, "pm", Role::ProjectManager).await;
    let pm = app.token(&pm).await;
    let annotator = app.member(&project, "ann", Role::Annotator).await;
    let annotator = app.token(&annotator).await;
    let eli = app.member(&project, "eli", Role::QaExpert).await;
    let decide = |item: &'static str, clause: &'static str| {
        let store = app.store.clone();
        let (project_id, eli_id) = (project.id, eli.id);
        async move {
            let item = store.item_by_external_id(project_id, item).await.unwrap();
            let decision = NewAdjudication {
                answer: json!({"decision": "VIOLATING", "category": ["IL.IP"], "severity": "S3"}),
                rationale: "Another narrator's reading uploaded under a new name.".into(),
                guideline_clause: clause.into(),
                promote_to_gold: false,
                example_scope: None,
                example_category: None,
            };
            store
                .adjudicate(project_id, item.id, eli_id, decision)
                .await
                .unwrap();
        }
    };
    decide("t1", "IP 3.2 re-uploaded narration").await;
    let period = "from=2020-01-01&to=2099-12-31";
    let get = |token: &str, query: String| {
        app.bearer(
            token,
            Method::GET,
            &format!("/api/v1/projects/catalog/dsa/statements?{query}"),
        )
        .send()
    };
    let (status, body) = json(get(&annotator, period.into()).await.unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let (status, body) = json(get(&pm, period.into()).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let s = &body[0];
    assert_eq!(s["decision_ground"], "DECISION_GROUND_ILLEGAL_CONTENT");
    assert_eq!(
        s["illegal_content_legal_ground"],
        "IP 3.2 re-uploaded narration"
    );
    assert_eq!(
        s["category"],
        "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS"
    );
    assert_eq!(s["territorial_scope"], json!(["AT"]));
    assert_eq!(s["content_date"], "2020-01-01");

    let response = get(&pm, format!("{period}&format=csv")).await.unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let (status, csv) = text(response).await;
    assert_eq!(status, StatusCode::OK);
    assert!(csv.starts_with("puid,decision_visibility,"), "{csv}");
    assert_eq!(csv.lines().count(), 2);

    decide("t2", "").await;
    let (status, body) = json(get(&pm, period.into()).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["item"], "t2");
    assert_eq!(body["error"]["field"], "illegal_content_legal_ground");
    assert!(
        error_message(&body).contains("no statements were exported"),
        "{body}"
    );

    let (status, body) = json(
        get(&pm, "from=2026-13-01&to=2026-12-31".into())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let browser = app.sign_in("pm").await;
    let (status, page) = text(browser.get("/p/catalog/releases").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(r#"action="/api/v1/projects/catalog/dsa/statements""#),
        "{page}"
    );
}

on_every_backend!(statements_are_exported_for_a_period_and_a_misfit_is_named);
