//! Calibration rounds over HTTP: opened by a QA analyst, served first through the queue to
//! annotators and QA experts, reported with verdicts, closed, holds released, repeated after
//! a guideline revision — through the API and the pages.

use crate::on_every_backend;
use crate::support::{TestApp, call, location, text};
use concord_store::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const TRACKS: &str = "{\"id\":\"t1\",\"item_type\":\"track\",\"title\":\"Track 1\"}\n\
{\"id\":\"t2\",\"item_type\":\"track\",\"title\":\"Track 2\"}\n\
{\"id\":\"t3\",\"item_type\":\"track\",\"title\":\"Track 3\"}\n\
{\"id\":\"t4\",\"item_type\":\"track\",\"title\":\"Track 4\"}\n";

/// Answers every calibration item the queue serves to `token`: VIOLATING unless the title is
/// in `otherwise`. Returns how many were answered; stops at the first production item (left
/// leased) or when nothing is served.
async fn answer_round(app: &TestApp, token: &str, otherwise: &[&str]) -> (usize, Value) {
    let mut answered = 0;
    loop {
        let (status, next) = call(app, token, Method::POST, "/queue/next", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{next}");
        if next["status"] != "leased" {
            return (answered, next);
        }
        let title = next["item"]["title"].as_str().unwrap().to_owned();
        let announced = next["calibration"] == true;
        let decision = if otherwise.contains(&title.as_str()) {
            "NOT_VIOLATING"
        } else {
            "VIOLATING"
        };
        let submit = json!({"item_id": next["item"]["id"],
                            "answer": {"decision": decision, "severity": "S2"},
                            "idempotency_key": format!("calibration-{token}-{answered}")});
        let (status, outcome) = call(app, token, Method::POST, "/queue/submit", submit).await;
        assert_eq!(status, StatusCode::OK, "{outcome}");
        if outcome["outcome"]["calibration"] != true {
            assert!(
                !announced,
                "a production item is not announced as calibration: {next}"
            );
            return (answered, outcome);
        }
        assert!(announced, "a calibration item says so: {next}");
        answered += 1;
    }
}

struct Team {
    analyst: String,
    expert: String,
    good: String,
    weak: String,
}

async fn team(app: &TestApp) -> Team {
    let project = app.project("catalog").await;
    app.import_items(project.id, TRACKS).await;
    let mut tokens = Vec::new();
    for (name, role) in [
        ("analyst", Role::QaAnalyst),
        ("expert", Role::QaExpert),
        ("good", Role::Annotator),
        ("weak", Role::Annotator),
    ] {
        let user = app.member(&project, name, role).await;
        tokens.push(app.token(&user).await);
    }
    let mut tokens = tokens.into_iter();
    let mut next = || tokens.next().unwrap();
    Team {
        analyst: next(),
        expert: next(),
        good: next(),
        weak: next(),
    }
}

async fn a_round_runs_from_opening_to_verdicts_holds_and_release(app: TestApp) {
    let team = team(&app).await;
    let (status, _) = call(&app, &team.good, Method::GET, "/calibration", json!({})).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "annotators do not manage rounds"
    );
    let (status, body) = call(
        &app,
        &team.analyst,
        Method::POST,
        "/calibration",
        json!({"name": "Onboarding", "items": ["t1", "t2", "t3"], "threshold": 0.6}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let round = body["round"]["id"].as_i64().unwrap();
    assert_eq!(body["round"]["annotators"], 2);
    assert_eq!(body["round"]["experts"], 1);
    let (status, bad) = call(
        &app,
        &team.analyst,
        Method::POST,
        "/calibration",
        json!({"name": "Both", "items": ["t1"], "sample": 3}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");

    // The key: t1 and t2 VIOLATING, t3 NOT_VIOLATING.
    assert_eq!(answer_round(&app, &team.expert, &["Track 3"]).await.0, 3);
    let (answered, after) = answer_round(&app, &team.good, &["Track 3"]).await;
    assert_eq!(answered, 3);
    assert_eq!(after["status"], "paused", "held until the verdict: {after}");
    assert!(after["reason"].as_str().unwrap().contains("calibration"));
    assert_eq!(
        answer_round(&app, &team.weak, &["Track 1", "Track 2", "Track 3"])
            .await
            .0,
        3
    );

    let path = format!("/calibration/{round}");
    let (status, body) = call(&app, &team.analyst, Method::GET, &path, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let report = &body["report"];
    assert_eq!(report["keyed_items"], 3);
    let verdict_of = |report: &Value, who: &str| {
        report["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["annotator"] == who)
            .unwrap()
            .clone()
    };
    assert_eq!(verdict_of(report, "good")["verdict"], "pass");
    let weak = verdict_of(report, "weak");
    assert_eq!(weak["verdict"], "retrain");
    assert_eq!(weak["below_threshold"], json!(["decision"]));
    let decision = &report["questions"][0];
    assert_eq!(decision["key"], "decision");
    let weak_row = decision["annotators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["annotator"] == "weak")
        .unwrap();
    assert_eq!(
        (
            weak_row["with_key"]["same"].clone(),
            weak_row["with_key"]["compared"].clone()
        ),
        (json!(1), json!(3))
    );
    assert!(
        weak_row["with_key"]["percent"]["ci"].is_array(),
        "{weak_row}"
    );

    // The page, as the analyst sees it; closing it there applies the verdicts.
    let browser = app.sign_in("analyst").await;
    let (status, page) = text(
        browser
            .get(&format!("/p/catalog/calibration/{round}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("data-verdict=\"retrain\" data-annotator=\"weak\""),
        "{page}"
    );
    assert!(page.contains("provisional"));
    let closed = browser
        .submit(
            &format!("/p/catalog/calibration/{round}/close"),
            &[("confirm", "on")],
        )
        .await;
    assert_eq!(closed.status(), StatusCode::SEE_OTHER);
    assert!(location(&closed).ends_with("#verdicts"));
    let (_, next) = call(&app, &team.good, Method::POST, "/queue/next", json!({})).await;
    assert_eq!(
        next["status"], "leased",
        "a pass frees production work: {next}"
    );
    let (_, next) = call(&app, &team.weak, Method::POST, "/queue/next", json!({})).await;
    assert_eq!(next["status"], "paused", "{next}");
    let (status, again) = call(
        &app,
        &team.analyst,
        Method::POST,
        &format!("{path}/close"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");

    let (_, team_page) = text(browser.get("/p/catalog/team").send().await.unwrap()).await;
    assert!(
        team_page.contains("held for calibration"),
        "the team page shows the hold"
    );
    let released = browser
        .submit(&format!("/p/catalog/calibration/{round}/release/weak"), &[])
        .await;
    assert_eq!(released.status(), StatusCode::SEE_OTHER);
    let (_, next) = call(&app, &team.weak, Method::POST, "/queue/next", json!({})).await;
    assert_eq!(next["status"], "leased", "released: {next}");
    let (status, not_held) = call(
        &app,
        &team.analyst,
        Method::POST,
        &format!("{path}/release"),
        json!({"username": "weak"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{not_held}");

    // Repeat, then a second opening is refused on the page with the reason.
    let (status, repeat) = call(
        &app,
        &team.analyst,
        Method::POST,
        &format!("{path}/repeat"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{repeat}");
    assert_eq!(repeat["round"]["repeats"], round);
    assert_eq!(repeat["round"]["items"], 3);
    let refused = browser
        .submit(
            "/p/catalog/calibration",
            &[
                ("name", "Another"),
                ("items", ""),
                ("sample", "2"),
                ("threshold", "0.8"),
            ],
        )
        .await;
    let (status, page) = text(refused).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        page.contains("still open") && page.contains("role=\"alert\""),
        "{page}"
    );
    let (_, list) = text(browser.get("/p/catalog/calibration").send().await.unwrap()).await;
    assert!(list.contains("Onboarding (repeat)"), "{list}");
}

async fn a_guideline_revision_repeats_the_latest_round_when_the_project_asks(app: TestApp) {
    let team = team(&app).await;
    let project = app.store.project("catalog").await.unwrap();
    app.store
        .update_project(
            project.id,
            "Catalog",
            "",
            json!({"qa": {"calibration": {"repeat_on_revision": true, "threshold": 0.5}}}),
            None,
        )
        .await
        .unwrap();
    let pm = app.member(&project, "pm", Role::ProjectManager).await;
    let pm = app.token(&pm).await;
    let (status, body) = call(
        &app,
        &team.analyst,
        Method::POST,
        "/calibration",
        json!({"name": "Before v2", "sample": 2, "hold_until_verdict": false}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["round"]["threshold"], 0.5, "the project's threshold");
    let round = body["round"]["id"].as_i64().unwrap();
    answer_round(&app, &team.expert, &[]).await;
    let (status, closed) = call(
        &app,
        &team.analyst,
        Method::POST,
        &format!("/calibration/{round}/close"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["report"]["round"]["status"], "closed");
    assert_eq!(closed["report"]["verdicts"][0]["verdict"], "incomplete");

    let (status, _) = call(
        &app,
        &pm,
        Method::PUT,
        "/guidelines/draft",
        json!({"body": "Revised."}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, published) = call(&app, &pm, Method::POST, "/guidelines/publish", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{published}");
    let repeat = &published["calibration_repeat"];
    assert_eq!(repeat["repeats"], round, "{published}");
    assert_eq!(repeat["status"], "open");
    assert!(
        repeat["name"]
            .as_str()
            .unwrap()
            .starts_with("Before v2 (repeat")
    );
    let (_, list) = call(&app, &team.analyst, Method::GET, "/calibration", json!({})).await;
    assert_eq!(list["rounds"].as_array().unwrap().len(), 2);
    assert_eq!(
        list["rounds"][0]["guideline_version_id"],
        list["current_guideline_version_id"]
    );
}

on_every_backend!(
    a_round_runs_from_opening_to_verdicts_holds_and_release,
    a_guideline_revision_repeats_the_latest_round_when_the_project_asks,
);
