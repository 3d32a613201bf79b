//! Items: import jobs through the API, the keyset-paged listing and its filters, the item
//! page's handling of untrusted text and media, annotations and the streamed export.

use crate::on_every_backend;
use crate::support::{Browser, TestApp, error_message, json, section, text};
use concord_store::Role;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Seven items: three tracks, two episodes, an audiobook and a chapter, one of them gold.
const ITEMS: &str = concat!(
    r#"{"id":"t1","item_type":"track","title":"Harbour Lights","priority":3,"text":{"description":"Win big at https://scam.example/win now <b>free</b>"},"preview_url":"https://media.example/t1.mp3"}"#,
    "\n",
    r#"{"id":"t2","item_type":"track","title":"Harbour Walls","priority":5,"gold":{"decision":"NOT_VIOLATING","severity":"S0"}}"#,
    "\n",
    r#"{"id":"e1","item_type":"episode","title":"Night Shift","priority":1}"#,
    "\n",
    r#"{"id":"e2","item_type":"episode","title":"Morning Harbour"}"#,
    "\n",
    r#"{"id":"a1","item_type":"audiobook","title":"The Long Road","priority":2}"#,
    "\n",
    r#"{"id":"c1","item_type":"chapter","title":"Chapter One","priority":4}"#,
    "\n",
    r#"{"id":"t3","item_type":"track","title":"Quiet Rooms"}"#,
    "\n",
);

const ALL: [&str; 7] = ["t1", "t2", "e1", "e2", "a1", "c1", "t3"];

const VIOLATING: &str = r#"{"decision":"VIOLATING","category":["DG.HATE"],"severity":"S3"}"#;

struct Team {
    /// A project manager's token (imports, listings, export).
    pm: String,
    annotator: String,
    expert: String,
}

async fn team(app: &TestApp) -> Team {
    let project = app.project("catalog").await;
    let pm = app.member(&project, "pm", Role::ProjectManager).await;
    let annotator = app.member(&project, "ann", Role::Annotator).await;
    let expert = app.member(&project, "expert", Role::QaExpert).await;
    Team {
        pm: app.token(&pm).await,
        annotator: app.token(&annotator).await,
        expert: app.token(&expert).await,
    }
}

/// Uploads a file to the import endpoint; returns the status and the answer.
async fn upload(app: &TestApp, token: &str, query: &str, file: &str) -> (StatusCode, Value) {
    json(
        app.bearer(
            token,
            Method::POST,
            &format!("/api/v1/projects/catalog/imports?{query}"),
        )
        .body(file.to_owned())
        .send()
        .await
        .unwrap(),
    )
    .await
}

/// Imports `file` and waits for the job to succeed.
async fn import(app: &TestApp, token: &str, query: &str, file: &str) -> Value {
    let (status, body) = upload(app, token, query, file).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let job = app
        .wait_for_job(token, body["job"]["id"].as_i64().unwrap())
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    job
}

async fn items_page(app: &TestApp, token: &str, query: &str) -> (StatusCode, Value) {
    json(
        app.bearer(
            token,
            Method::GET,
            &format!("/api/v1/projects/catalog/items?{query}"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await
}

/// External ids of a listing, in order.
fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page of items: {page}"))
        .iter()
        .map(|i| i["external_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every item of a filtered listing, walking the pages `limit` at a time.
async fn walk(app: &TestApp, token: &str, filters: &str, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after: Option<i64> = None;
    let mut last_id = i64::MIN;
    for _ in 0..100 {
        let mut query = format!("{filters}&limit={limit}");
        if let Some(after) = after {
            query += &format!("&after={after}");
        }
        let (status, page) = items_page(app, token, &query).await;
        assert_eq!(status, StatusCode::OK, "{query}: {page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit, "{query}: {page}");
        for item in items {
            let id = item["id"].as_i64().unwrap();
            assert!(id > last_id, "{query}: ids are not ascending: {page}");
            last_id = id;
        }
        seen.extend(ids(&page));
        match page["next_after"].as_i64() {
            Some(next) => {
                assert_eq!(items.len(), limit, "{query}: a short page has a next page");
                assert_eq!(Some(next), items.last().and_then(|i| i["id"].as_i64()));
                after = Some(next);
            }
            None => return seen,
        }
    }
    panic!("the listing {filters} never ended");
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

async fn an_import_runs_as_a_job_and_reports_its_counts(app: TestApp) {
    let team = team(&app).await;
    let (status, body) = upload(&app, &team.pm, "format=jsonl&filename=items.jsonl", ITEMS).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["job"]["kind"], "import_items", "{body}");
    let id = body["job"]["id"].as_i64().expect("the job has an id");
    let job = app.wait_for_job(&team.pm, id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        job["result"],
        json!({"read": 7, "inserted": 7, "updated": 0, "skipped": 0})
    );
    assert_eq!(walk(&app, &team.pm, "", 50).await, ALL);

    // The same file again, skipping what is there, changes nothing.
    let job = import(&app, &team.pm, "format=jsonl&on_conflict=skip", ITEMS).await;
    assert_eq!(
        job["result"],
        json!({"read": 7, "inserted": 0, "updated": 0, "skipped": 7})
    );
    // The project's job list has both.
    let (status, body) = json(
        app.bearer(&team.pm, Method::GET, "/api/v1/projects/catalog/jobs")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["jobs"].as_array().unwrap().len(), 2, "{body}");
}

async fn a_bad_file_fails_its_job_naming_line_and_field_and_imports_nothing(app: TestApp) {
    let team = team(&app).await;
    let bad = concat!(
        r#"{"id":"x1","item_type":"track","title":"Fine"}"#,
        "\n",
        r#"{"id":"x2","item_type":"episode","title":"Also fine"}"#,
        "\n",
        r#"{"id":"x3","item_type":"song","title":"Not a type"}"#,
        "\n",
        r#"{"id":"x4","item_type":"track","title":"Never read"}"#,
        "\n",
    );
    let (status, body) = upload(&app, &team.pm, "format=jsonl&filename=bad.jsonl", bad).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let job = app
        .wait_for_job(&team.pm, body["job"]["id"].as_i64().unwrap())
        .await;
    assert_eq!(job["status"], "failed", "{job}");
    let message = job["message"].as_str().unwrap();
    assert!(message.contains("bad.jsonl:3"), "{message}");
    assert!(message.contains("item_type"), "{message}");
    assert!(message.contains("song"), "{message}");
    let (status, page) = items_page(&app, &team.pm, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&page), Vec::<String>::new(), "{page}");
    assert_eq!(page["next_after"], Value::Null);
}

async fn an_empty_upload_or_an_unknown_format_is_refused_before_any_job(app: TestApp) {
    let team = team(&app).await;
    let (status, body) = upload(&app, &team.pm, "format=jsonl", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(error_message(&body).contains("empty"), "{body}");
    let (status, body) = upload(&app, &team.pm, "format=xlsx", ITEMS).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(error_message(&body).contains("xlsx"), "{body}");
    let (_, body) = json(
        app.bearer(&team.pm, Method::GET, "/api/v1/projects/catalog/jobs")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["jobs"], json!([]));
}

async fn items_are_listed_in_keyset_pages_with_filters(app: TestApp) {
    let team = team(&app).await;
    import(&app, &team.pm, "format=jsonl", ITEMS).await;

    // Pages of three: 3 + 3 + 1, each starting after the last id of the one before.
    let (status, first) = items_page(&app, &team.pm, "limit=3").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(ids(&first), ["t1", "t2", "e1"]);
    let next = first["next_after"].as_i64().expect("a next page");
    let (_, second) = items_page(&app, &team.pm, &format!("limit=3&after={next}")).await;
    assert_eq!(ids(&second), ["e2", "a1", "c1"]);
    let next = second["next_after"].as_i64().expect("a third page");
    let (_, third) = items_page(&app, &team.pm, &format!("limit=3&after={next}")).await;
    assert_eq!(ids(&third), ["t3"]);
    assert_eq!(third["next_after"], Value::Null);
    // A page that is exactly full has no next page.
    let (_, exact) = items_page(&app, &team.pm, "limit=7").await;
    assert_eq!(exact["next_after"], Value::Null, "{exact}");

    for (filters, expected) in [
        ("type=episode", set(&["e1", "e2"])),
        ("type=track", set(&["t1", "t2", "t3"])),
        ("q=harbour", set(&["t1", "t2", "e2"])),
        ("q=HARBOUR&type=track", set(&["t1", "t2"])),
        ("q=c1", set(&["c1"])),
        ("gold=yes", set(&["t2"])),
        ("gold=no", set(&["t1", "e1", "e2", "a1", "c1", "t3"])),
        ("min_priority=3", set(&["t1", "t2", "c1"])),
        ("state=queued", set(&ALL)),
        ("state=labelled", set(&[])),
        ("q=100%25", set(&[])),
    ] {
        for limit in [1, 2, 50] {
            let got = walk(&app, &team.pm, filters, limit).await;
            let unique: BTreeSet<String> = got.iter().cloned().collect();
            assert_eq!(unique.len(), got.len(), "{filters} limit={limit}: {got:?}");
            assert_eq!(unique, expected, "{filters} limit={limit}");
        }
    }

    for bad in ["type=song", "state=done", "gold=maybe", "min_priority=high"] {
        let (status, body) = items_page(&app, &team.pm, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

/// Decodes the few entities the templates write, to read text the way a browser shows it.
fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

async fn open_item_page(app: &TestApp, browser: &Browser, external_id: &str) -> String {
    let project = app.store.project("catalog").await.unwrap();
    let item = app
        .store
        .item_by_external_id(project.id, external_id)
        .await
        .unwrap();
    let (status, page) = text(
        browser
            .get(&format!("/p/catalog/items/{}", item.id))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page
}

async fn item_text_is_shown_as_text_and_media_waits_for_the_user(app: TestApp) {
    let team = team(&app).await;
    import(&app, &team.pm, "format=jsonl", ITEMS).await;
    let browser = app.sign_in("pm").await;
    let page = open_item_page(&app, &browser, "t1").await;

    let description = section(&page, "<h2>Description</h2>", "</section>");
    // The markup in the text is escaped, and the URL stays text: no link, no markup.
    assert!(!description.contains("<b>"), "{description}");
    assert!(!description.contains("<a"), "{description}");
    assert!(!page.contains("href=\"https://scam.example"), "{page}");
    assert!(
        unescape(description).contains("Win big at https://scam.example/win now <b>free</b>"),
        "{description}"
    );

    // The preview URL is only in the button's data attribute; nothing on the page loads it.
    let readable = unescape(&page);
    let url = "https://media.example/t1.mp3";
    let places: Vec<&str> = readable
        .match_indices(url)
        .map(|(at, _)| {
            let before = &readable[..at];
            let attribute_start = before.rfind(' ').map_or(0, |n| n + 1);
            &readable[attribute_start..at]
        })
        .collect();
    assert_eq!(places, ["data-load-media=\""], "{page}");
    for tag in ["<audio", "<video", "<iframe", "<img", "<source", "<embed"] {
        assert!(!readable.contains(tag), "{tag} on the item page:\n{page}");
    }
    assert!(!readable.contains("src=\"http"), "{page}");
}

async fn annotate(app: &TestApp, token: &str, item: i64, body: Value) -> (StatusCode, Value) {
    json(
        app.bearer(
            token,
            Method::POST,
            &format!("/api/v1/projects/catalog/items/{item}/annotations"),
        )
        .json(&body)
        .send()
        .await
        .unwrap(),
    )
    .await
}

async fn item_id(app: &TestApp, external_id: &str) -> i64 {
    let project = app.store.project("catalog").await.unwrap();
    (app.store
        .item_by_external_id(project.id, external_id)
        .await
        .unwrap()
        .id)
        .get()
}

async fn annotations_are_checked_against_the_schema_and_idempotent(app: TestApp) {
    let team = team(&app).await;
    import(&app, &team.pm, "format=jsonl", ITEMS).await;
    let t1 = item_id(&app, "t1").await;
    let answer: Value = serde_json::from_str(VIOLATING).unwrap();

    let (status, body) = annotate(
        &app,
        &team.expert,
        t1,
        json!({"answer": answer, "rationale": "slur in the title", "idempotency_key": "ann-t1-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let first = body["annotation"].clone();
    assert_eq!(first["item_id"], t1);
    assert_eq!(first["annotator"], "expert");
    assert_eq!(first["answer"], answer);

    // A retry with the same key returns the stored annotation instead of adding one.
    let (status, body) = annotate(
        &app,
        &team.expert,
        t1,
        json!({"answer": answer, "rationale": "slur in the title", "idempotency_key": "ann-t1-1"}),
    )
    .await;
    assert!(status.is_success(), "{status}: {body}");
    assert_eq!(body["annotation"]["id"], first["id"]);

    for (wrong, question) in [
        (json!({"decision": "MAYBE", "severity": "S3"}), "decision"),
        (json!({"decision": "VIOLATING"}), "severity"),
        (
            json!({"decision": "VIOLATING", "category": ["DG.NOPE"], "severity": "S3"}),
            "category",
        ),
        (
            json!({"decision": "VIOLATING", "severity": "S3", "mood": "grumpy"}),
            "mood",
        ),
    ] {
        let (status, body) = annotate(&app, &team.pm, t1, json!({"answer": wrong})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{wrong}: {body}");
        assert!(
            error_message(&body).contains(&format!("\"{question}\"")),
            "{wrong}: {body}"
        );
    }

    // An annotator labels through the queue; outside it only a correction of their own.
    let (status, body) = annotate(&app, &team.annotator, t1, json!({"answer": answer})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let (status, body) = annotate(&app, &team.pm, 999_999, json!({"answer": answer})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (status, body) = json(
        app.bearer(
            &team.expert,
            Method::GET,
            &format!("/api/v1/projects/catalog/items/{t1}/annotations"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stored = body["annotations"].as_array().unwrap();
    assert_eq!(stored.len(), 1, "{body}");
    assert_eq!(stored[0]["id"], first["id"]);
}

async fn exports_stream_every_item_with_its_annotations(app: TestApp) {
    let team = team(&app).await;
    import(&app, &team.pm, "format=jsonl", ITEMS).await;
    let answer: Value = serde_json::from_str(VIOLATING).unwrap();
    let (t1, t2) = (item_id(&app, "t1").await, item_id(&app, "t2").await);
    for (token, item) in [(&team.pm, t1), (&team.expert, t1), (&team.pm, t2)] {
        let (status, body) = annotate(&app, token, item, json!({"answer": answer})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    let response = app
        .bearer(
            &team.expert,
            Method::GET,
            "/api/v1/projects/catalog/export?format=jsonl",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/x-ndjson");
    let (_, jsonl) = text(response).await;
    let records: Vec<Value> = jsonl
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is a JSON record"))
        .collect();
    let exported: Vec<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(exported, ALL);
    let annotations = |id: &str| -> Vec<Value> {
        records.iter().find(|r| r["id"] == id).unwrap()["annotations"]
            .as_array()
            .unwrap()
            .clone()
    };
    let on_t1 = annotations("t1");
    assert_eq!(on_t1.len(), 2);
    assert_eq!(on_t1[0]["annotator"], "pm");
    assert_eq!(on_t1[1]["annotator"], "expert");
    assert!(on_t1.iter().all(|a| a["answer"] == answer));
    assert_eq!(annotations("t2").len(), 1);
    assert_eq!(annotations("e1").len(), 0);

    let response = app
        .bearer(
            &team.pm,
            Method::GET,
            "/api/v1/projects/catalog/export?format=csv",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert_eq!(
        response.headers()[CONTENT_DISPOSITION],
        "attachment; filename=\"catalog-export.csv\""
    );
    let (_, csv) = text(response).await;
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("item,item_type,title,"), "{csv}");
    // A row per annotation, and one for each item without any: 2 + 1 + 5, plus the header.
    assert_eq!(lines.len(), 1 + 2 + 1 + 5, "{csv}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("t1,")).count(), 2);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("t2,") && l.contains("DG.HATE"))
    );

    let (status, body) = json(
        app.bearer(
            &team.pm,
            Method::GET,
            "/api/v1/projects/catalog/export?format=xml",
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// Big enough that the export leaves in many chunks.
async fn a_large_export_streams_every_item(app: TestApp) {
    let team = team(&app).await;
    let count = 3000;
    let mut csv = String::from("id,item_type,title,description\n");
    for n in 1..=count {
        csv += &format!(
            "item-{n:05},track,Title {n},{}\n",
            "lyrics ".repeat(20).trim()
        );
    }
    let job = import(&app, &team.pm, "format=csv&filename=big.csv", &csv).await;
    assert_eq!(job["result"]["inserted"], count);

    let (status, jsonl) = text(
        app.bearer(
            &team.pm,
            Method::GET,
            "/api/v1/projects/catalog/export?format=jsonl",
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(jsonl.len() > 4 * 65_536, "only {} bytes", jsonl.len());
    let ids: Vec<String> = jsonl
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).expect("a whole JSON record");
            record["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let expected: Vec<String> = (1..=count).map(|n| format!("item-{n:05}")).collect();
    assert_eq!(ids, expected);

    let (status, csv) = text(
        app.bearer(
            &team.pm,
            Method::GET,
            "/api/v1/projects/catalog/export?format=csv",
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(csv.lines().count(), count + 1);
    assert_eq!(csv.lines().filter(|l| l.starts_with("item,")).count(), 1);
}

on_every_backend!(
    an_import_runs_as_a_job_and_reports_its_counts,
    a_bad_file_fails_its_job_naming_line_and_field_and_imports_nothing,
    an_empty_upload_or_an_unknown_format_is_refused_before_any_job,
    items_are_listed_in_keyset_pages_with_filters,
    item_text_is_shown_as_text_and_media_waits_for_the_user,
    annotations_are_checked_against_the_schema_and_idempotent,
    exports_stream_every_item_with_its_annotations,
    a_large_export_streams_every_item,
    bulk_actions_go_through_a_confirmation_on_the_page_and_one_call_in_the_api,
);

/// Bulk actions: the API takes one call per action (roles checked), the item browser shows
/// what will change before it changes it, and gold needs a settled answer.
async fn bulk_actions_go_through_a_confirmation_on_the_page_and_one_call_in_the_api(app: TestApp) {
    let team = team(&app).await;
    let project = app.store.project("catalog").await.unwrap();
    app.import_items(project.id, ITEMS).await;
    let id_of = |external: &'static str| {
        let store = app.store.clone();
        async move {
            store
                .item_by_external_id(project.id, external)
                .await
                .unwrap()
                .id
        }
    };
    let (t1, e1, t3) = (id_of("t1").await, id_of("e1").await, id_of("t3").await);
    let bulk = |token: &str, action: &str, body: Value| {
        app.bearer(
            token,
            Method::POST,
            &format!("/api/v1/projects/catalog/items/bulk/{action}"),
        )
        .json(&body)
        .send()
    };

    let (status, _) = json(
        bulk(
            &team.annotator,
            "priority",
            json!({"item_ids": [t1], "priority": 9}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "annotators cannot");
    let (status, done) = json(
        bulk(
            &team.pm,
            "priority",
            json!({"item_ids": [t1, e1], "priority": 9}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["items"].as_array().unwrap().len(), 2);
    let (_, page) = items_page(&app, &team.pm, "min_priority=9").await;
    assert_eq!(ids(&page), ["t1", "e1"]);

    let (status, refused) = json(
        bulk(&team.expert, "gold", json!({"item_ids": [e1, t3]}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        error_message(&refused).contains("e1") && error_message(&refused).contains("t3"),
        "names the items without a settled answer: {refused}"
    );

    let (status, done) = json(
        bulk(
            &team.pm,
            "rereview",
            json!({"item_ids": [t3], "username": "ann"}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let (status, refused) = json(
        bulk(
            &team.pm,
            "rereview",
            json!({"item_ids": [t3], "username": "nobody"}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");

    // The page: the first post shows what will change and changes nothing; confirming does.
    let pm = app.sign_in("pm").await;
    let (status, list) = text(pm.get("/p/catalog/items?type=track").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        list.contains("data-select-all") && list.contains("name=\"back\" value=\"type=track\""),
        "{list}"
    );
    let (t1s, t3s) = (t1.to_string(), t3.to_string());
    let form = [
        ("action", "set_priority"),
        ("priority", "4"),
        ("item", t1s.as_str()),
        ("item", t3s.as_str()),
        ("back", "type=track"),
    ];
    let (status, confirm) = text(pm.submit("/p/catalog/items/bulk", &form).await).await;
    assert_eq!(status, StatusCode::OK, "{confirm}");
    assert!(
        confirm.contains("set the priority to 4")
            && confirm.contains("2 items")
            && confirm.contains("Harbour Lights"),
        "{confirm}"
    );
    assert_eq!(
        app.store.item(project.id, t1).await.unwrap().priority,
        9,
        "not yet"
    );
    let mut confirmed = form.to_vec();
    confirmed.push(("confirm", "yes"));
    let (status, done) = text(pm.submit("/p/catalog/items/bulk", &confirmed).await).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(
        done.contains("data-bulk-done") && done.contains("2 items changed"),
        "{done}"
    );
    assert_eq!(app.store.item(project.id, t1).await.unwrap().priority, 4);
    assert_eq!(app.store.item(project.id, t3).await.unwrap().priority, 4);
    let audit = app.store.audit_log(Some(project.id), 50).await.unwrap();
    let priority_entries = audit
        .iter()
        .filter(|e| e.entity == "item" && e.after.as_ref().is_some_and(|a| a["priority"] == 4))
        .count();
    assert_eq!(priority_entries, 2, "one audit entry per item");
}
