//! The work queue over HTTP: blind items, acknowledged submissions, idempotent retries,
//! gold feedback, skips, and the team view with resume.

use crate::on_every_backend;
use crate::support::{TestApp, call};
use concord_store::ItemId;
use concord_store::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ITEMS: &str = concat!(
    r#"{"id":"g1","item_type":"track","title":"Gold Track","gold":{"decision":"VIOLATING","severity":"S3"}}"#,
    "\n",
    r#"{"id":"t1","item_type":"track","title":"Plain One","priority":2}"#,
    "\n",
    r#"{"id":"t2","item_type":"track","title":"Plain Two","priority":1}"#,
    "\n",
);

/// The catalog project with ITEMS, overlap 2, gold served first, and a pause after one gold
/// answer when even its interval's upper bound is below 85 % (one wrong answer: 79 %).
async fn catalog_with_gold_first(app: &TestApp) -> concord_store::Project {
    let project = app.project("catalog").await;
    app.store
        .update_project(
            project.id,
            "Catalog",
            "",
            json!({"queue": {"overlap": 2, "gold_rate": 1.0, "pause_min_gold": 1, "pause_below": 0.85}}),
            None,
        )
        .await
        .unwrap();
    app.import_items(project.id, ITEMS).await;
    project
}

async fn an_annotator_labels_blind_through_the_api_and_an_analyst_sees_the_team(app: TestApp) {
    let project = catalog_with_gold_first(&app).await;
    let ann = app.member(&project, "ann", Role::Annotator).await;
    let analyst = app.member(&project, "analyst", Role::QaAnalyst).await;
    let (ann, analyst) = (app.token(&ann).await, app.token(&analyst).await);

    let (status, next) = call(&app, &ann, Method::POST, "/queue/next", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{next}");
    assert_eq!(next["status"], "leased");
    let item = &next["item"];
    for hidden in ["state", "is_gold", "gold_answer", "priority"] {
        assert!(
            item.get(hidden).is_none(),
            "{hidden} must not reach the annotator: {item}"
        );
    }
    assert_eq!(
        item["title"], "Gold Track",
        "gold rate 1: the gold item comes first"
    );
    let item_id = item["id"].as_i64().unwrap();

    let submit = json!({"item_id": item_id, "answer": {"decision": "NOT_VIOLATING", "severity": "S0"},
                        "idempotency_key": "http-key-0001", "time_spent_ms": 4200});
    let (status, first) = call(&app, &ann, Method::POST, "/queue/submit", submit.clone()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["outcome"]["gold"]["correct"], false);
    assert_eq!(
        first["outcome"]["paused"], true,
        "one wrong gold answer: the 95 % bound (79 %) is below 85 %"
    );
    let (_, again) = call(&app, &ann, Method::POST, "/queue/submit", submit).await;
    assert_eq!(again["outcome"]["replayed"], true);
    assert_eq!(
        again["outcome"]["annotation_id"],
        first["outcome"]["annotation_id"]
    );

    let (_, paused) = call(&app, &ann, Method::POST, "/queue/next", json!({})).await;
    assert_eq!(paused["status"], "paused");
    let (status, _) = call(&app, &ann, Method::GET, "/queue/team", json!({})).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "annotators do not see the team"
    );
    let (status, team) = call(&app, &analyst, Method::GET, "/queue/team", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let me = team["annotators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["username"] == "ann")
        .unwrap();
    assert_eq!(me["paused"], true);
    assert_eq!(me["gold"]["trials"], 1);
    // Gold planning: ±0.10 at 95 % with 0/1 measured (p = 0 needs 16 answers in all),
    // one answered this week: 1/7 a day, so 15 more take 105 days.
    let plan = &me["gold_plan"];
    assert_eq!(plan["target_half_width"], 0.1, "{plan}");
    assert_eq!(
        (&plan["needed_total"], &plan["still_needed"]),
        (&json!(16), &json!(15)),
        "{plan}"
    );
    assert!(
        (plan["eta_days"].as_f64().unwrap() - 105.0).abs() < 1e-9,
        "{plan}"
    );
    let (status, _) = call(
        &app,
        &analyst,
        Method::POST,
        "/annotators/ann/resume",
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (_, next) = call(&app, &ann, Method::POST, "/queue/next", json!({})).await;
    assert_eq!(next["item"]["title"], "Plain One");
    let (status, skipped) = call(
        &app,
        &ann,
        Method::POST,
        "/queue/skip",
        json!({"item_id": next["item"]["id"], "reason": "audio missing"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{skipped}");
    let (_, mine) = call(&app, &ann, Method::GET, "/queue/mine", json!({})).await;
    assert_eq!(mine["annotations"].as_array().unwrap().len(), 1);
    assert_eq!(mine["progress"]["done_today"], 1);
    let (_, team) = call(&app, &analyst, Method::GET, "/queue/team", json!({})).await;
    let queue = &team["queue"];
    assert_eq!(
        (&queue["labels"], &queue["skips"], &queue["live_leases"]),
        (&json!(1), &json!(1), &json!(0)),
        "{queue}"
    );

    let (status, bad) = call(
        &app,
        &ann,
        Method::POST,
        "/queue/submit",
        json!({"item_id": item_id, "answer": {}, "idempotency_key": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
}

/// `queue/submit?next=true`: the outcome and the next item, blind, in one reply; a retry
/// gets the same outcome and the lease already held; a refused answer leases nothing; the
/// last answer's reply says the queue is empty.
async fn an_answer_can_bring_the_next_item_in_the_same_reply(app: TestApp) {
    let project = app.project("catalog").await;
    let tracks: String = (1..=3)
        .map(|n| format!("{{\"id\":\"t{n}\",\"item_type\":\"track\",\"title\":\"Track {n}\"}}\n"))
        .collect();
    app.import_items(project.id, &tracks).await;
    let ann = app.member(&project, "ann", Role::Annotator).await;
    let ann = app.token(&ann).await;
    let answer = |item: &Value, key: &str| {
        json!({"item_id": item["id"], "answer": {"decision": "NOT_VIOLATING", "severity": "S0"},
               "idempotency_key": key})
    };
    let with_next = |body: Value| call(&app, &ann, Method::POST, "/queue/submit?next=true", body);

    let (_, first) = call(&app, &ann, Method::POST, "/queue/next", json!({})).await;
    let first = first["item"].clone();
    let (status, reply) = with_next(answer(&first, "one-trip-0001")).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["outcome"]["replayed"], false, "{reply}");
    assert_eq!(reply["next"]["status"], "leased", "{reply}");
    let second = reply["next"]["item"].clone();
    assert_ne!(second["id"], first["id"]);
    assert!(second.get("is_gold").is_none(), "blind: {second}");
    assert_eq!(reply["next"]["resumed"], false);

    let (_, retried) = with_next(answer(&first, "one-trip-0001")).await;
    assert_eq!(retried["outcome"]["replayed"], true, "{retried}");
    assert_eq!(
        retried["outcome"]["annotation_id"],
        reply["outcome"]["annotation_id"]
    );
    assert_eq!(retried["next"]["item"]["id"], second["id"], "{retried}");
    assert_eq!(retried["next"]["resumed"], true, "the lease already held");

    let refused_answer = json!({"item_id": second["id"], "answer": {"decision": "MAYBE"},
                                "idempotency_key": "one-trip-0002"});
    let (status, refused) = with_next(refused_answer).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let (_, held) = call(&app, &ann, Method::POST, "/queue/next", json!({})).await;
    assert_eq!(
        (&held["item"]["id"], &held["resumed"]),
        (&second["id"], &json!(true)),
        "a refused answer changes nothing: {held}"
    );

    let (_, reply) = with_next(answer(&second, "one-trip-0003")).await;
    let third = reply["next"]["item"].clone();
    let (_, last) = call(
        &app,
        &ann,
        Method::POST,
        "/queue/submit",
        answer(&third, "one-trip-0004"),
    )
    .await;
    assert!(last.get("next").is_none(), "not asked for: {last}");
    assert_eq!(
        store_count(&app, project.id).await,
        3,
        "three answers stored once each"
    );
    let (_, empty) = call(&app, &ann, Method::POST, "/queue/next", json!({})).await;
    assert_eq!(empty["status"], "empty", "{empty}");
}

async fn store_count(app: &TestApp, project: concord_store::ProjectId) -> i64 {
    app.store.count_annotations(project).await.unwrap()
}

on_every_backend!(
    an_answer_can_bring_the_next_item_in_the_same_reply,
    an_annotator_labels_blind_through_the_api_and_an_analyst_sees_the_team,
    the_label_fragment_is_blind_and_the_team_page_resumes_and_limits,
    labels_go_through_the_queue_and_outside_it_only_corrections_and_overrides,
    a_retried_key_with_another_answer_is_refused_with_the_stored_answer,
    an_annotator_undoes_their_last_answer_by_correcting_it,
    the_dashboard_and_the_api_show_what_dynamic_overlap_saved,
);

const ANSWER_S0: &str = r#"{"decision": "NOT_VIOLATING", "severity": "S0"}"#;

async fn direct(app: &TestApp, token: &str, item: i64, body: Value) -> (StatusCode, Value) {
    call(
        app,
        token,
        Method::POST,
        &format!("/items/{item}/annotations"),
        body,
    )
    .await
}

/// The permission matrix of the direct route, and that it keeps the queue's rules: an
/// annotator never adds a label the queue did not serve (an item of overlap 1 is not labelled
/// twice), corrects only their own, and an override is recorded as one, takes no overlap slot
/// and is never served to its author afterwards.
async fn labels_go_through_the_queue_and_outside_it_only_corrections_and_overrides(app: TestApp) {
    let project = app.project("catalog").await;
    app.store
        .update_project(
            project.id,
            "Catalog",
            "",
            json!({"queue": {"overlap": 1}}),
            None,
        )
        .await
        .unwrap();
    app.import_items(project.id, ITEMS).await;
    let mut tokens = std::collections::HashMap::new();
    for (name, role) in [
        ("ann", Role::Annotator),
        ("other", Role::Annotator),
        ("analyst", Role::QaAnalyst),
        ("expert", Role::QaExpert),
        ("pm", Role::ProjectManager),
    ] {
        let user = app.member(&project, name, role).await;
        tokens.insert(name, app.token(&user).await);
    }
    let answer: Value = serde_json::from_str(ANSWER_S0).unwrap();
    let t2 = app
        .store
        .item_by_external_id(project.id, "t2")
        .await
        .unwrap()
        .id;

    // Outside the queue, without `supersedes`: only roles that may override.
    for (who, allowed) in [
        ("ann", false),
        ("other", false),
        ("analyst", false),
        ("expert", true),
        ("pm", true),
    ] {
        let (status, body) = direct(&app, &tokens[who], t2.get(), json!({"answer": answer})).await;
        if allowed {
            assert_eq!(status, StatusCode::CREATED, "{who}: {body}");
            assert_eq!(body["annotation"]["source"], "override", "{who}: {body}");
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN, "{who}: {body}");
            assert!(
                body["error"]["message"].as_str().unwrap().contains("queue"),
                "{who}: {body}"
            );
        }
    }
    // The overrides took no slot: t2 (overlap 1) is still served to one annotator, and to
    // no one who overrode it.
    let t2_now = app.store.item(project.id, t2).await.unwrap();
    assert_eq!(
        t2_now.state,
        concord_store::ItemState::Queued,
        "overrides are not overlap votes"
    );

    // The annotator labels through the queue: every item once, overlap 1.
    let mut served = Vec::new();
    loop {
        let (status, next) =
            call(&app, &tokens["ann"], Method::POST, "/queue/next", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{next}");
        if next["status"] != "leased" {
            break;
        }
        let id = next["item"]["id"].as_i64().unwrap();
        let key = format!("ann-queue-{id}");
        let (status, done) = call(
            &app,
            &tokens["ann"],
            Method::POST,
            "/queue/submit",
            json!({"item_id": id, "answer": answer, "idempotency_key": key}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{done}");
        served.push((id, done["outcome"]["annotation_id"].as_i64().unwrap()));
    }
    assert!(
        served.iter().any(|(id, _)| *id == t2.get()),
        "t2, overridden twice, is still served: {served:?}"
    );
    let mut ids: Vec<i64> = served.iter().map(|(id, _)| *id).collect();
    ids.dedup();
    assert_eq!(ids.len(), served.len(), "every item once: {served:?}");
    // Overlap 1 is reached: the second annotator is served nothing and cannot go around it.
    let (_, next) = call(
        &app,
        &tokens["other"],
        Method::POST,
        "/queue/next",
        json!({}),
    )
    .await;
    assert_eq!(next["status"], "empty", "{next}");
    let (first_item, first_annotation) = served[0];
    let (status, _) = direct(
        &app,
        &tokens["other"],
        first_item,
        json!({"answer": answer}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Nor can they "correct" a label that is not theirs.
    let (status, body) = direct(
        &app,
        &tokens["other"],
        first_item,
        json!({"answer": answer, "supersedes": first_annotation}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // The author corrects their own label: recorded as a correction, the count unchanged.
    let before = app
        .store
        .item(project.id, ItemId(first_item))
        .await
        .unwrap();
    let corrected = json!({"decision": "VIOLATING", "severity": "S3"});
    let (status, body) = direct(
        &app,
        &tokens["ann"],
        first_item,
        json!({"answer": corrected, "supersedes": first_annotation}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["annotation"]["source"], "correction");
    assert_eq!(body["annotation"]["supersedes"], first_annotation);
    let after = app
        .store
        .item(project.id, ItemId(first_item))
        .await
        .unwrap();
    assert_eq!(after.state, before.state);

    // An expert who overrode t2 is never served t2 by the queue; one who had an item through
    // the queue answers it there (or corrects), not with a second label.
    let mut expert_served = Vec::new();
    loop {
        let (_, next) = call(
            &app,
            &tokens["expert"],
            Method::POST,
            "/queue/next",
            json!({}),
        )
        .await;
        if next["status"] != "leased" {
            break;
        }
        let id = next["item"]["id"].as_i64().unwrap();
        expert_served.push(id);
        let (status, body) = direct(&app, &tokens["expert"], id, json!({"answer": answer})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        call(
            &app,
            &tokens["expert"],
            Method::POST,
            "/queue/skip",
            json!({"item_id": id, "reason": "test"}),
        )
        .await;
    }
    assert!(!expert_served.contains(&t2.get()), "{expert_served:?}");
}

async fn a_retried_key_with_another_answer_is_refused_with_the_stored_answer(app: TestApp) {
    let project = catalog_with_gold_first(&app).await;
    let ann = app.member(&project, "ann", Role::Annotator).await;
    let expert = app.member(&project, "expert", Role::QaExpert).await;
    let (ann, expert) = (app.token(&ann).await, app.token(&expert).await);
    let (_, next) = call(&app, &ann, Method::POST, "/queue/next", json!({})).await;
    let item_id = next["item"]["id"].as_i64().unwrap();
    let first: Value = serde_json::from_str(ANSWER_S0).unwrap();
    let submit = |answer: &Value| json!({"item_id": item_id, "answer": answer, "idempotency_key": "retry-key-0001"});
    let (status, stored) = call(&app, &ann, Method::POST, "/queue/submit", submit(&first)).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    // The same answer again, keys in another order: a replay.
    let reordered = json!({"severity": "S0", "decision": "NOT_VIOLATING"});
    let (status, again) = call(
        &app,
        &ann,
        Method::POST,
        "/queue/submit",
        submit(&reordered),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["outcome"]["replayed"], true);
    // Another answer under the same key: 409, the stored answer in the body, nothing written.
    let other = json!({"decision": "VIOLATING", "severity": "S3"});
    let (status, refused) = call(&app, &ann, Method::POST, "/queue/submit", submit(&other)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["stored"]["answer"], first, "{refused}");
    assert_eq!(
        refused["error"]["stored"]["annotation_id"],
        stored["outcome"]["annotation_id"]
    );
    let labels = app.store.item_annotations(ItemId(item_id)).await.unwrap();
    assert_eq!(labels.len(), 1, "the refused answer was not stored");

    // The direct route keeps the same rule.
    let direct_body =
        |answer: &Value| json!({"answer": answer, "idempotency_key": "override-key-01"});
    let (status, body) = direct(&app, &expert, item_id, direct_body(&first)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = direct(&app, &expert, item_id, direct_body(&first)).await;
    assert!(status.is_success(), "{body}");
    let (status, body) = direct(&app, &expert, item_id, direct_body(&other)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["stored"]["answer"], first, "{body}");
}

/// The pages: the label page's fragment is blind and says why the queue stopped; the team page
/// is for analysts and managers only, and its forms resume a paused annotator and set limits.
async fn the_label_fragment_is_blind_and_the_team_page_resumes_and_limits(app: TestApp) {
    let project = catalog_with_gold_first(&app).await;
    app.member(&project, "ann", Role::Annotator).await;
    app.member(&project, "analyst", Role::QaAnalyst).await;
    let ann = app.sign_in("ann").await;
    let analyst = app.sign_in("analyst").await;

    let (status, page) =
        crate::support::text(ann.get("/p/catalog/label").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("data-question=\"decision\""),
        "schema controls are on the page"
    );
    let next = |who: &crate::support::Browser| {
        who.request(Method::POST, "/p/catalog/label/next")
            .header("X-CSRF-Token", &who.csrf)
            .send()
    };
    let (status, fragment) = crate::support::text(next(&ann).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{fragment}");
    assert!(fragment.contains("Gold Track") && fragment.contains("data-status=\"leased\""));
    for hidden in ["VIOLATING", "is_gold", "priority", "queued"] {
        assert!(
            !fragment.contains(hidden),
            "the fragment must not reveal {hidden}: {fragment}"
        );
    }
    let item_id: i64 = fragment
        .split("data-item-id=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|id| id.parse().ok())
        .expect("the fragment names its item");

    // The page sends an answer and gets the next item's fragment in the same reply; a
    // refusal comes as JSON with its message (the page shows it and keeps the answer).
    let answer = |body: Value| {
        ann.request(Method::POST, "/p/catalog/label/submit")
            .header("X-CSRF-Token", &ann.csrf)
            .json(&body)
            .send()
    };
    let refused = answer(json!({"item_id": item_id, "answer": {"decision": "MAYBE"},
                                "idempotency_key": "page-spec-0000"}))
    .await
    .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused: Value = refused.json().await.unwrap();
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MAYBE"),
        "{refused}"
    );
    // A wrong gold answer pauses ann (its 95 % bound is below 85 %): the fragment that comes
    // back with the outcome says so, and so does the next ask.
    let saved = answer(
        json!({"item_id": item_id, "answer": {"decision": "NOT_VIOLATING", "severity": "S0"},
               "idempotency_key": "page-spec-0001"}),
    )
    .await
    .unwrap();
    assert_eq!(saved.status(), StatusCode::OK);
    let saved: Value = saved.json().await.unwrap();
    assert_eq!(saved["outcome"]["gold"]["correct"], false, "{saved}");
    let arrived = saved["next_html"].as_str().unwrap();
    assert!(arrived.contains("data-status=\"paused\""), "{arrived}");
    let (_, fragment) = crate::support::text(next(&ann).await.unwrap()).await;
    assert!(fragment.contains("data-status=\"paused\""), "{fragment}");

    // Only analysts and managers see the team page.
    let (status, _) = crate::support::text(ann.get("/p/catalog/team").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, team) =
        crate::support::text(analyst.get("/p/catalog/team").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(team.contains("paused") && team.contains("Resume"), "{team}");
    assert!(
        team.contains("Gold still needed")
            && team.contains("15 <span class=\"muted small\">of 16 for ±0.1"),
        "the gold plan is on the team page: {team}"
    );

    let resumed = analyst.submit("/p/catalog/team/ann/resume", &[]).await;
    assert_eq!(resumed.status(), StatusCode::SEE_OTHER);
    let (_, fragment) = crate::support::text(next(&ann).await.unwrap()).await;
    assert!(
        fragment.contains("data-status=\"leased\""),
        "resumed: {fragment}"
    );

    let bad = analyst
        .submit(
            "/p/catalog/team/ann/limits",
            &[("daily_cap", "lots"), ("excluded_categories", "")],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let message = crate::support::text(bad).await.1;
    assert!(
        message.contains("daily cap:")
            && message.contains("lots")
            && message.contains("is not a whole number"),
        "the error names the field: {message}"
    );
    let unknown = analyst
        .submit(
            "/p/catalog/team/ann/limits",
            &[("daily_cap", "5"), ("excluded_categories", "NOT.A.CODE")],
        )
        .await;
    assert_eq!(
        unknown.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown category refused"
    );
    let saved = analyst
        .submit(
            "/p/catalog/team/ann/limits",
            &[
                ("daily_cap", "5"),
                ("excluded_categories", "DG.SELF, DG.HATE"),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let progress = app
        .store
        .annotator_progress(project.id, app.store.user_by_name("ann").await.unwrap().id)
        .await
        .unwrap();
    assert_eq!(progress.daily_cap, Some(5));
    assert_eq!(progress.excluded_categories, vec!["DG.SELF", "DG.HATE"]);

    let (status, mine) =
        crate::support::text(ann.get("/p/catalog/my-work").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        mine.contains("Gold Track") && mine.contains("did not match"),
        "{mine}"
    );
}

/// Undo over the API and from the label page: the author reopens their latest answer and
/// corrects it; nobody else can, and an adjudicated item is settled (409 naming why).
async fn an_annotator_undoes_their_last_answer_by_correcting_it(app: TestApp) {
    let project = app.project("catalog").await;
    app.import_items(
        project.id,
        &ITEMS.lines().skip(1).collect::<Vec<_>>().join("\n"),
    )
    .await;
    let ann = app.member(&project, "ann", Role::Annotator).await;
    let bob = app.member(&project, "bob", Role::Annotator).await;
    let expert = app.member(&project, "expert", Role::QaExpert).await;
    let (ann_token, bob_token) = (app.token(&ann).await, app.token(&bob).await);

    let (_, next) = call(&app, &ann_token, Method::POST, "/queue/next", json!({})).await;
    let item_id = next["item"]["id"].as_i64().unwrap();
    let (status, saved) = call(
        &app,
        &ann_token,
        Method::POST,
        "/queue/submit",
        json!({"item_id": item_id, "answer": {"decision": "VIOLATING", "severity": "S3"},
               "idempotency_key": "undo-0001"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    let answer_id = saved["outcome"]["annotation_id"].as_i64().unwrap();

    let undo = json!({"annotation_id": answer_id});
    let (status, refused) = call(&app, &bob_token, Method::POST, "/queue/undo", undo.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "only the author: {refused}");
    let (status, opened) = call(&app, &ann_token, Method::POST, "/queue/undo", undo).await;
    assert_eq!(status, StatusCode::OK, "{opened}");
    assert_eq!(opened["item"]["id"], item_id);
    assert!(
        opened["item"].get("state").is_none(),
        "the item stays blind"
    );
    assert_eq!(opened["answer"]["answer"]["severity"], "S3");

    let (status, corrected) = call(
        &app,
        &ann_token,
        Method::POST,
        "/queue/correct",
        json!({"item_id": item_id, "supersedes": answer_id, "idempotency_key": "undo-0002",
               "answer": {"decision": "NOT_VIOLATING", "severity": "S0"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{corrected}");
    assert_eq!(corrected["annotation"]["supersedes"], answer_id);
    assert_eq!(corrected["annotation"]["source"], "correction");
    let corrected_id = corrected["outcome"]["annotation_id"].as_i64().unwrap();
    let history = app.store.item_annotations(ItemId(item_id)).await.unwrap();
    assert_eq!(history.len(), 2, "the undone answer stays in the history");

    // The label page: the undo fragment shows the item with the answer to correct.
    let browser = app.sign_in("ann").await;
    let undo_page = |id: i64| {
        let id = id.to_string();
        browser
            .request(Method::POST, "/p/catalog/label/undo")
            .header("X-CSRF-Token", &browser.csrf)
            .form(&[("annotation_id", id)])
            .send()
    };
    let (status, fragment) = crate::support::text(undo_page(corrected_id).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{fragment}");
    assert!(
        fragment.contains("data-status=\"correcting\"")
            && fragment.contains(&format!("data-supersedes=\"{corrected_id}\""))
            && fragment.contains("NOT_VIOLATING"),
        "{fragment}"
    );

    // Once an expert decided the item, the answer is settled.
    app.store
        .adjudicate(
            project.id,
            ItemId(item_id),
            expert.id,
            concord_store::NewAdjudication {
                answer: json!({"decision": "VIOLATING", "severity": "S2"}),
                rationale: "Threat".into(),
                ..concord_store::NewAdjudication::default()
            },
        )
        .await
        .unwrap();
    let (status, fragment) = crate::support::text(undo_page(corrected_id).await.unwrap()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        fragment.contains("data-undo-refused") && fragment.contains("adjudicated"),
        "{fragment}"
    );
    assert_eq!(
        app.store
            .item_annotations(ItemId(item_id))
            .await
            .unwrap()
            .len(),
        2
    );
}

/// Dynamic overlap's savings on the dashboard and in the quality API: two annotators who
/// agree on both plain items stop them at two labels of three.
async fn the_dashboard_and_the_api_show_what_dynamic_overlap_saved(app: TestApp) {
    let project = app.project("catalog").await;
    app.store
        .update_project(
            project.id,
            "Catalog",
            "",
            json!({"queue": {"dynamic": true, "min_overlap": 2, "overlap": 3}}),
            None,
        )
        .await
        .unwrap();
    app.import_items(project.id, &ITEMS[ITEMS.find("{\"id\":\"t1\"").unwrap()..])
        .await;
    let mut tokens = Vec::new();
    for name in ["ann", "ben"] {
        let user = app.member(&project, name, Role::Annotator).await;
        tokens.push(app.token(&user).await);
    }
    let analyst = app.member(&project, "analyst", Role::QaAnalyst).await;
    for (n, token) in tokens.iter().enumerate() {
        for k in 0..2 {
            let (status, next) = call(&app, token, Method::POST, "/queue/next", json!({})).await;
            assert_eq!(next["status"], "leased", "{status} {next}");
            let submit = json!({"item_id": next["item"]["id"],
                                "answer": {"decision": "NOT_VIOLATING", "severity": "S0"},
                                "idempotency_key": format!("saving-{n}-{k}")});
            let (status, body) = call(&app, token, Method::POST, "/queue/submit", submit).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    let token = app.token(&analyst).await;
    let (status, quality) = call(&app, &token, Method::GET, "/quality", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{quality}");
    let savings = &quality["overlap_savings"];
    assert_eq!(
        (
            &savings["fixed_overlap"],
            &savings["early_items"],
            &savings["labels_used"],
            &savings["labels_saved"]
        ),
        (&json!(3), &json!(2), &json!(4), &json!(2)),
        "{savings}"
    );
    assert_eq!(savings["confirmed_later"]["trials"], 0, "{savings}");

    let browser = app.sign_in("analyst").await;
    let (status, page) =
        crate::support::text(browser.get("/p/catalog/dashboard").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("id=\"overlap-saved\" data-value=\"2\"")
            && page.contains("id=\"overlap-early\" data-value=\"2\""),
        "{page}"
    );
}
