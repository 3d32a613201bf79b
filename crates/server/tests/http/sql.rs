//! Analysts' SQL over HTTP: answers as JSON, failed queries as 400 with the database's
//! message and position (never a 500), saved queries, and the SQL page with its CSV.

use crate::on_every_backend;
use crate::support::{TestApp, error_message, json, text};
use concord_store::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

const ITEMS: &str = concat!(
    r#"{"id":"t1","item_type":"track","title":"Harbour Lights"}"#,
    "\n",
    r#"{"id":"e1","item_type":"episode","title":"Night, Shift"}"#,
    "\n",
);

async fn an_analyst_queries_the_views_and_gets_the_databases_errors(app: TestApp) {
    let project = app.project("catalog").await;
    let other = app.project("other").await;
    app.import_items(project.id, ITEMS).await;
    app.import_items(other.id, ITEMS).await;
    let analyst = app.member(&project, "ana", Role::QaAnalyst).await;
    let token = app.token(&analyst).await;
    let post = |body: serde_json::Value| {
        app.bearer(&token, Method::POST, "/api/v1/sql")
            .json(&body)
            .send()
    };

    let (status, answer) = json(
        post(json!({"query": "SELECT item_type, title FROM items ORDER BY item_id"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["columns"], json!(["item_type", "title"]));
    assert_eq!(
        answer["rows"].as_array().unwrap().len(),
        2,
        "only the analyst's project"
    );
    assert_eq!(answer["truncated"], json!(false));

    let (status, error) = json(
        post(json!({"query": "SELECT title, nonsense FROM items"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert!(error_message(&error).contains("nonsense"), "{error}");
    assert_eq!(error["error"]["position"], json!(14));

    let (status, error) = json(
        post(json!({"query": "SELECT password_hash FROM users"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");

    let (status, _) = json(
        post(json!({"query": "SELECT 1", "project": "other"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a project the analyst may not query"
    );

    let (status, message) = text(
        post(json!({"query": "SELECT 1", "extra": 1}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{message}");
    assert!(message.contains("unknown field `extra`"), "{message}");
}

async fn saved_queries_run_for_anyone_who_may_query_the_project(app: TestApp) {
    let project = app.project("catalog").await;
    app.import_items(project.id, ITEMS).await;
    let analyst = app.member(&project, "ana", Role::QaAnalyst).await;
    let manager = app.member(&project, "pm", Role::ProjectManager).await;
    let (ana, pm) = (app.token(&analyst).await, app.token(&manager).await);
    let (status, saved) = json(
        app.bearer(&ana, Method::POST, "/api/v1/projects/catalog/sql/saved")
            .json(&json!({"name": "by type", "query": "SELECT item_type, count(*) AS n FROM items GROUP BY item_type ORDER BY item_type"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{saved}");
    assert_eq!(saved["author"], json!("ana"));
    let (status, answer) = json(
        app.bearer(
            &pm,
            Method::POST,
            "/api/v1/projects/catalog/sql/saved/by%20type/run",
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["rows"], json!([["episode", 1], ["track", 1]]));
    let (status, list) = json(
        app.bearer(&pm, Method::GET, "/api/v1/projects/catalog/sql/saved")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["saved"][0]["name"], json!("by type"));
}

async fn the_sql_page_shows_results_the_schema_and_a_csv(app: TestApp) {
    let project = app.project("catalog").await;
    app.import_items(project.id, ITEMS).await;
    app.member(&project, "ana", Role::QaAnalyst).await;
    let browser = app.sign_in("ana").await;
    let (status, html) = text(
        browser
            .get("/p/catalog/sql?q=SELECT%20title%20FROM%20items%20ORDER%20BY%20title")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"sql-result\""), "{html}");
    assert!(html.contains("Harbour Lights") && html.contains("Night, Shift"));
    assert!(
        html.contains("id=\"view-latest_annotations\""),
        "the schema is beside the box"
    );

    let (status, html) = text(
        browser
            .get("/p/catalog/sql?q=SELEC%201")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("id=\"sql-error\"") && html.contains("syntax error"),
        "{html}"
    );

    let response = browser
        .get("/p/catalog/sql/result.csv?q=SELECT%20title%20FROM%20items%20ORDER%20BY%20title")
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let (_, csv) = text(response).await;
    assert_eq!(csv, "title\nHarbour Lights\n\"Night, Shift\"\n");

    let saved = browser
        .submit(
            "/p/catalog/sql/saved",
            &[("name", "titles"), ("query", "SELECT title FROM items")],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let (_, html) = text(browser.get("/p/catalog/sql").send().await.unwrap()).await;
    assert!(html.contains("data-saved=\"titles\""), "{html}");
}

on_every_backend!(
    an_analyst_queries_the_views_and_gets_the_databases_errors,
    saved_queries_run_for_anyone_who_may_query_the_project,
    the_sql_page_shows_results_the_schema_and_a_csv,
);
