//! Versioned guidelines through the API, their history and diff pages, and sanitised
//! rendering of whatever markdown an author writes.

use crate::on_every_backend;
use crate::support::{Browser, TestApp, error_message, json, section, text};
use concord_store::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const V1: &str = "# Catalog rules\n\nKeep this line.\nHate speech is S3.\n";
const V2: &str = "# Catalog rules\n\nKeep this line.\nHate speech against protected groups is S3.\nScams are S2.\n";

/// A project with a manager who edits guidelines (token) and an annotator who reads them
/// (browser).
async fn setup(app: &TestApp) -> (String, Browser) {
    let project = app.project("catalog").await;
    let pm = app.member(&project, "pm", Role::ProjectManager).await;
    app.member(&project, "ann", Role::Annotator).await;
    let token = app.token(&pm).await;
    let reader = app.sign_in("ann").await;
    (token, reader)
}

async fn put_draft(
    app: &TestApp,
    token: &str,
    body: &str,
    note: Option<&str>,
) -> (StatusCode, Value) {
    let mut draft = json!({"body": body});
    if let Some(note) = note {
        draft["change_note"] = json!(note);
    }
    json(
        app.bearer(
            token,
            Method::PUT,
            "/api/v1/projects/catalog/guidelines/draft",
        )
        .json(&draft)
        .send()
        .await
        .unwrap(),
    )
    .await
}

async fn publish(app: &TestApp, token: &str, note: Option<&str>) -> (StatusCode, Value) {
    let request = app.bearer(
        token,
        Method::POST,
        "/api/v1/projects/catalog/guidelines/publish",
    );
    let request = match note {
        Some(note) => request.json(&json!({"change_note": note})),
        None => request,
    };
    json(request.send().await.unwrap()).await
}

async fn guidelines_are_published_as_versions_and_later_ones_need_a_note(app: TestApp) {
    let (token, reader) = setup(&app).await;

    let (status, body) = put_draft(&app, &token, V1, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"]["status"], "draft");
    let (status, body) = publish(&app, &token, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"]["version"], 1);
    assert_eq!(body["version"]["status"], "published");

    let (status, body) = put_draft(&app, &token, V2, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"]["version"], 2);
    let (status, body) = publish(&app, &token, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(error_message(&body).contains("note"), "{body}");
    let (status, body) = publish(&app, &token, Some("   ")).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a blank note: {body}"
    );

    let (status, body) = publish(&app, &token, Some("Name the protected groups; add scams")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"]["version"], 2);
    let v2_id = body["version"]["id"].clone();

    let (status, body) = json(
        app.bearer(&token, Method::GET, "/api/v1/projects/catalog/guidelines")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["current_version_id"], v2_id);
    let versions = body["versions"].as_array().unwrap();
    let listed: Vec<(i64, &str, &str)> = versions
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["status"].as_str().unwrap(),
                v["change_note"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (2, "published", "Name the protected groups; add scams"),
            (1, "published", "First version"),
        ]
    );
    let (status, body) = json(
        app.bearer(&token, Method::GET, "/api/v1/projects/catalog/guidelines/1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"]["body"], V1);

    // The reader's page shows the current version and both in the history.
    let (status, page) = text(reader.get("/p/catalog/guidelines").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("version 2"), "{page}");
    assert!(page.contains("Scams are S2."), "{page}");
    assert!(page.contains("/p/catalog/guidelines/v/1"), "{page}");
}

async fn the_diff_page_shows_added_and_removed_lines(app: TestApp) {
    let (token, reader) = setup(&app).await;
    put_draft(&app, &token, V1, None).await;
    assert_eq!(publish(&app, &token, None).await.0, StatusCode::OK);
    put_draft(&app, &token, V2, Some("Name the groups")).await;
    assert_eq!(publish(&app, &token, None).await.0, StatusCode::OK);

    let (status, page) = text(
        reader
            .get("/p/catalog/guidelines/diff?from=1&to=2")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let diff = section(
        &page,
        "<pre class=\"diff\" role=\"region\" aria-label=\"Text changes\" tabindex=\"0\">",
        "</pre>",
    );
    assert!(
        diff.contains("<span class=\"removed\">- Hate speech is S3.</span>"),
        "{diff}"
    );
    assert!(
        diff.contains("<span class=\"added\">+ Hate speech against protected groups is S3.</span>"),
        "{diff}"
    );
    assert!(
        diff.contains("<span class=\"added\">+ Scams are S2.</span>"),
        "{diff}"
    );
    assert!(
        diff.contains("<span class=\"same\">  Keep this line.</span>"),
        "{diff}"
    );
    assert!(!diff.contains("- Keep this line."), "{diff}");
    assert!(!diff.contains("+ Keep this line."), "{diff}");

    let (status, _) = text(
        reader
            .get("/p/catalog/guidelines/diff?from=1&to=9")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn guideline_markdown_is_rendered_without_scripts_or_handlers(app: TestApp) {
    let (token, reader) = setup(&app).await;
    let body = "# Safe heading\n\n\
                <script>alert('guideline')</script>\n\n\
                <img src=\"x.png\" onerror=\"alert('img')\">\n\n\
                <a href=\"javascript:alert('link')\">click</a> and <b onclick=\"alert('b')\">bold</b>\n\n\
                [a markdown link](javascript:alert('md'))\n";
    put_draft(&app, &token, body, None).await;
    assert_eq!(publish(&app, &token, None).await.0, StatusCode::OK);

    let (status, page) = text(reader.get("/p/catalog/guidelines").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let rendered = section(&page, "<div class=\"markdown\">", "</div>");
    assert!(rendered.contains("<h1>Safe heading</h1>"), "{rendered}");
    assert!(rendered.contains("<b>bold</b>"), "{rendered}");
    assert!(rendered.contains(">a markdown link</a>"), "{rendered}");
    assert!(!rendered.contains("<script"), "{rendered}");
    for gone in ["onerror", "onclick", "javascript:", "alert("] {
        assert!(!page.contains(gone), "{gone} survived:\n{rendered}");
    }
}

on_every_backend!(
    guidelines_are_published_as_versions_and_later_ones_need_a_note,
    the_diff_page_shows_added_and_removed_lines,
    guideline_markdown_is_rendered_without_scripts_or_handlers,
);
