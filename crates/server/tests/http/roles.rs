//! Who may call what. Every entry of the API route table is called by every kind of caller
//! (nobody, a non-member, each project role, an administrator) and must answer as its
//! `access` column says. An allowed caller must succeed, which also proves that the
//! documented route exists in the router with the documented method.

use crate::on_every_backend;
use crate::support::{PASSWORD, TestApp, text};
use concord_server::API_ROUTES;
use concord_store::ItemId;
use concord_store::{Id, LabelSchema, Project, Role};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ITEMS: &str = concat!(
    r#"{"id":"t1","item_type":"track","title":"Harbour Lights"}"#,
    "\n",
    r#"{"id":"e1","item_type":"episode","title":"Night Shift"}"#,
    "\n",
);

/// One kind of caller: a token (none for an anonymous caller), and what it is.
struct Caller {
    label: &'static str,
    token: Option<String>,
    /// The role in the project (`Admin` for a global administrator).
    role: Option<Role>,
    is_admin: bool,
}

/// The project every route is called on, with one member per role, a non-member, an
/// administrator, a published guideline, two items and a job.
struct World {
    project: Project,
    item_id: ItemId,
    /// An item nobody labels in this test, so every allowed expert may adjudicate it.
    unlabelled_item_id: Id,
    job_id: Id,
    /// An open calibration round.
    round_id: Id,
    callers: Vec<Caller>,
}

/// The release the release routes read.
const RELEASE: &str = "r1";

/// The automated annotator the model routes act on.
const MODEL: &str = "baseline";

/// A rules file for the catalog-safety schema.
const MODEL_RULES: &str = r#"{"default": {"decision": "NOT_VIOLATING", "severity": "S0"},
  "rules": [{"name": "lights", "keywords": ["lights"], "answer": {"decision": "BORDERLINE", "severity": "S2"}}]}"#;

/// A member whose membership the member routes change.
const SPARE: &str = "spare";

async fn world(app: &TestApp) -> World {
    let project = app.project("catalog").await;
    let mut callers = vec![Caller {
        label: "anonymous",
        token: None,
        role: None,
        is_admin: false,
    }];
    let outsider = app.person("outsider").await;
    callers.push(Caller {
        label: "non-member",
        token: Some(app.token(&outsider).await),
        role: None,
        is_admin: false,
    });
    for role in [
        Role::Annotator,
        Role::QaAnalyst,
        Role::QaExpert,
        Role::ProjectManager,
    ] {
        let user = app.member(&project, role.as_str(), role).await;
        callers.push(Caller {
            label: role.as_str(),
            token: Some(app.token(&user).await),
            role: Some(role),
            is_admin: false,
        });
    }
    let admin = app.admin("root").await;
    callers.push(Caller {
        label: "administrator",
        token: Some(app.token(&admin).await),
        role: Some(Role::Admin),
        is_admin: true,
    });
    app.member(&project, SPARE, Role::Annotator).await;

    app.store
        .save_guideline_draft(project.id, "# Rules\n", &[], "", None)
        .await
        .unwrap();
    app.store
        .publish_guideline(project.id, None, None)
        .await
        .unwrap();
    app.import_items(project.id, ITEMS).await;
    let item_id = app
        .store
        .item_by_external_id(project.id, "t1")
        .await
        .unwrap()
        .id;
    let unlabelled_item_id = app
        .store
        .item_by_external_id(project.id, "e1")
        .await
        .unwrap()
        .id;
    // A consensus run and a release, for the release routes.
    app.store
        .save_consensus(
            project.id,
            concord_store::ConsensusWrite {
                method: "mv".into(),
                annotations: 0,
                summary: json!({}),
                items: Vec::new(),
                annotators: Vec::new(),
                escalations: Vec::new(),
                job_id: None,
            },
            None,
        )
        .await
        .unwrap();
    app.store
        .create_release(project.id, RELEASE, "", json!({}), None)
        .await
        .unwrap();
    let mut model = concord_store::NewModelAnnotator::new(MODEL, concord_store::ModelKind::Rules);
    model.rules = MODEL_RULES.into();
    app.store
        .create_model_annotator(&project, model, None)
        .await
        .unwrap();
    // An open calibration round (no hold, so the queue routes are unchanged), for the
    // calibration routes.
    let round_id = app
        .store
        .open_calibration_round(
            &project,
            concord_store::NewCalibrationRound {
                name: "Roles".into(),
                item_ids: vec![item_id],
                threshold: 0.8,
                hold_until_verdict: false,
                repeats: None,
            },
            None,
        )
        .await
        .unwrap()
        .id;
    let job_id = app
        .store
        .create_job(
            concord_store::JobKind::ImportItems,
            Some(project.id),
            None,
            "a job",
        )
        .await
        .unwrap()
        .id;
    World {
        project,
        item_id,
        unlabelled_item_id: unlabelled_item_id.get(),
        job_id,
        round_id,
        callers,
    }
}

/// What the `access` column promises a caller.
#[derive(Debug, PartialEq)]
enum Expect {
    /// Success (2xx).
    Allowed,
    /// 401: no credentials.
    Unauthenticated,
    /// 403: known, but not allowed.
    Forbidden,
    /// 404 or 403: a project the caller is not a member of is not revealed.
    Hidden,
}

/// The roles named in an `access` entry such as `"qa_analyst, project_manager, admin"`.
fn roles_in(access: &str) -> Vec<Role> {
    let list = access.trim_end_matches(" of the job's project");
    list.split(',')
        .map(|name| {
            Role::parse(name.trim())
                .unwrap_or_else(|| panic!("access {access:?} names an unknown role {name:?}"))
        })
        .collect()
}

fn expected(path: &str, access: &str, caller: &Caller) -> Expect {
    if access == "anyone" {
        return Expect::Allowed;
    }
    if caller.token.is_none() {
        return Expect::Unauthenticated;
    }
    match access {
        "signed in" => return Expect::Allowed,
        "administrator" if caller.is_admin => return Expect::Allowed,
        "administrator" => return Expect::Forbidden,
        _ => {}
    }
    let Some(role) = caller.role else {
        if path == "/sql" {
            // Outside any project: a caller with no role that may query is refused.
            return Expect::Forbidden;
        }
        assert!(
            path.contains("{slug}") || path.starts_with("/jobs/"),
            "{path}: access {access:?} is neither global nor about a project"
        );
        return Expect::Hidden;
    };
    let allowed = access == "member" || roles_in(access).contains(&role);
    if allowed {
        Expect::Allowed
    } else {
        Expect::Forbidden
    }
}

fn fill(path: &str, world: &World) -> String {
    let id = if path.starts_with("/jobs/") {
        world.job_id
    } else if path.ends_with("/adjudication") {
        world.unlabelled_item_id
    } else {
        world.item_id.get()
    };
    path.replace("{slug}", &world.project.slug)
        .replace("{id}", &id.to_string())
        .replace("{version}", "1")
        .replace("{username}", SPARE)
        .replace("{name}", RELEASE)
        .replace("{other}", RELEASE)
        .replace("{model}", MODEL)
        .replace("{round}", &world.round_id.to_string())
}

/// A minimal valid request for a route (query and body), so that an allowed caller succeeds.
fn request_for(method: &str, path: &str, n: usize) -> (String, Option<Vec<u8>>) {
    let body = |value: Value| Some(serde_json::to_vec(&value).unwrap());
    match (method, path) {
        ("post", "/users") => (
            String::new(),
            body(json!({"username": format!("made-{n}"), "password": PASSWORD})),
        ),
        ("post", "/projects") => (
            String::new(),
            body(json!({"slug": format!("made-{n}"), "name": "Made"})),
        ),
        ("put", "/users/{username}/disabled") => (String::new(), body(json!({"disabled": false}))),
        ("patch", "/projects/{slug}") => (String::new(), body(json!({"description": "patched"}))),
        ("put", "/projects/{slug}/members/{username}") => {
            (String::new(), body(json!({"role": "qa_analyst"})))
        }
        ("put", "/projects/{slug}/schema/draft") => (
            String::new(),
            body(json!({"definition": LabelSchema::catalog_safety(), "change_note": "same"})),
        ),
        ("put", "/projects/{slug}/guidelines/draft") => (
            String::new(),
            body(json!({"body": "# Rules\n\nMore.\n", "change_note": "more"})),
        ),
        ("post", "/projects/{slug}/schema/publish" | "/projects/{slug}/guidelines/publish") => (
            String::new(),
            body(json!({"change_note": "published again"})),
        ),
        ("post", "/projects/{slug}/items/{id}/annotations") => (
            String::new(),
            body(json!({"answer": {"decision": "NOT_VIOLATING", "severity": "S0"}})),
        ),
        ("post", "/projects/{slug}/imports") => (
            "?format=jsonl&on_conflict=skip".into(),
            Some(ITEMS.as_bytes().to_vec()),
        ),
        ("post", "/projects/{slug}/imports/foreign") => (
            "?source=toloka&item_type=track&dry_run=true".into(),
            Some(b"INPUT:id\tOUTPUT:decision\tOUTPUT:severity\tASSIGNMENT:worker_id\nt1\tNOT_VIOLATING\tS0\tw1\n".to_vec()),
        ),
        ("post", "/projects/{slug}/queue/submit") => (
            String::new(),
            body(
                json!({"item_id": 1, "answer": {"decision": "NOT_VIOLATING", "severity": "S0"},
                        "idempotency_key": format!("role-test-{n}")}),
            ),
        ),
        ("post", "/projects/{slug}/queue/skip") => (
            String::new(),
            body(json!({"item_id": 1, "reason": "role test"})),
        ),
        ("post", "/projects/{slug}/items/bulk/priority") => {
            (String::new(), body(json!({"item_ids": [1], "priority": 3})))
        }
        ("post", "/projects/{slug}/items/bulk/rereview") => (
            String::new(),
            body(json!({"item_ids": [1], "username": SPARE})),
        ),
        ("post", "/projects/{slug}/items/bulk/gold") => {
            (String::new(), body(json!({"item_ids": [1]})))
        }
        ("post", "/projects/{slug}/queue/undo") => {
            (String::new(), body(json!({"annotation_id": 1})))
        }
        ("post", "/projects/{slug}/queue/correct") => (
            String::new(),
            body(json!({"item_id": 1, "supersedes": 1,
                        "answer": {"decision": "NOT_VIOLATING", "severity": "S0"}})),
        ),
        ("post", "/projects/{slug}/assignments") => (
            String::new(),
            body(json!({"item_id": 1, "username": SPARE, "purpose": "rereview"})),
        ),
        ("post", "/projects/{slug}/models") => (
            String::new(),
            body(json!({"name": format!("made-{n}"), "kind": "rules", "rules": MODEL_RULES})),
        ),
        ("post", "/projects/{slug}/predictions/{model}") => (
            String::new(),
            Some(format!("item,model,label,score\nt1,{MODEL},NOT_VIOLATING,0.5\n").into_bytes()),
        ),
        ("post", "/projects/{slug}/predictions/{model}/sample") => {
            (String::new(), body(json!({"size": 1, "bands": 2})))
        }
        ("post", "/projects/{slug}/releases") => {
            (String::new(), body(json!({"name": format!("made-{n}")})))
        }
        ("post", "/projects/{slug}/items/{id}/adjudication") => (
            String::new(),
            body(
                json!({"answer": {"decision": "NOT_VIOLATING", "severity": "S0"},
                        "rationale": "role test"}),
            ),
        ),
        ("post", "/projects/{slug}/calibration") => (
            String::new(),
            body(json!({"name": format!("made-{n}"), "sample": 1, "hold_until_verdict": false})),
        ),
        ("post", "/projects/{slug}/calibration/{round}/release") => {
            (String::new(), body(json!({"username": SPARE})))
        }
        ("get", "/projects/{slug}/releases/{name}/labels") => ("?format=jsonl".into(), None),
        ("get", "/projects/{slug}/dsa/statements") => ("?from=2020-01-01&to=2030-12-31".into(), None),
        ("post", "/sql") => (
            String::new(),
            body(json!({"query": "SELECT state, count(*) AS n FROM items GROUP BY state"})),
        ),
        ("post", "/projects/{slug}/sql/saved") => (
            String::new(),
            body(json!({"name": format!("made-{n}"), "query": "SELECT 1 AS one"})),
        ),
        ("get" | "delete", _) => (String::new(), None),
        _ => (String::new(), body(json!({}))),
    }
}

/// Puts the project in the state a route needs (a draft to publish, a member to remove).
async fn prepare(app: &TestApp, world: &World, method: &str, path: &str) {
    let project = world.project.id;
    match (method, path) {
        ("delete", "/projects/{slug}/members/{username}")
        | ("post", "/projects/{slug}/items/bulk/rereview") => app
            .store
            .set_member(project, SPARE, Role::Annotator, None)
            .await
            .unwrap(),
        // Predictions to sample, and a sample to report on.
        ("post", "/projects/{slug}/predictions/{model}/sample")
        | ("get", "/projects/{slug}/predictions/{model}/report") => {
            let row = concord_store::PredictionRow {
                line: 2,
                item: "t1".into(),
                model: MODEL.into(),
                label: "NOT_VIOLATING".into(),
                score: 0.5,
            };
            app.store
                .import_predictions(&world.project, MODEL, vec![row])
                .await
                .unwrap();
            let sample = concord_store::NewPredictionSample {
                model: MODEL.into(),
                size: 1,
                bands: 1,
                seed: 1,
                items: vec![concord_store::SampledItem {
                    item_id: world.item_id,
                    stratum: "NOT_VIOLATING | 0.00–1.00".into(),
                    inclusion: 1.0,
                }],
            };
            app.store
                .create_prediction_sample(&world.project, sample)
                .await
                .unwrap();
        }
        // The saved query the saved-query routes read, run and delete (named as the release).
        ("get" | "delete", "/projects/{slug}/sql/saved/{name}")
        | ("post", "/projects/{slug}/sql/saved/{name}/run") => {
            app.store
                .save_query(
                    project,
                    concord_store::NewSavedQuery {
                        name: RELEASE.into(),
                        query: "SELECT count(*) AS n FROM items".into(),
                    },
                    concord_store::UserId(1),
                )
                .await
                .unwrap();
        }
        // Gold needs a settled answer: an adjudication by someone who never labels here.
        ("post", "/projects/{slug}/items/bulk/gold") => {
            let spare = app.store.user_by_name(SPARE).await.unwrap();
            app.store
                .adjudicate(
                    project,
                    world.item_id,
                    spare.id,
                    concord_store::NewAdjudication {
                        answer: json!({"decision": "NOT_VIOLATING", "severity": "S0"}),
                        rationale: "role test".into(),
                        ..concord_store::NewAdjudication::default()
                    },
                )
                .await
                .unwrap();
        }
        ("post", "/projects/{slug}/schema/publish") => {
            app.store
                .save_schema_draft(project, &LabelSchema::catalog_safety(), "again", None)
                .await
                .unwrap();
        }
        ("post", "/projects/{slug}/guidelines/publish") => {
            app.store
                .save_guideline_draft(project, "# Rules\n\nAgain.\n", &[], "again", None)
                .await
                .unwrap();
        }
        _ => {}
    }
}

fn answers_as_expected(status: StatusCode, expect: &Expect) -> bool {
    match expect {
        Expect::Allowed => status.is_success(),
        Expect::Unauthenticated => status == StatusCode::UNAUTHORIZED,
        Expect::Forbidden => status == StatusCode::FORBIDDEN,
        Expect::Hidden => matches!(status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN),
    }
}

async fn every_api_route_answers_each_role_as_its_access_says(app: TestApp) {
    let world = world(&app).await;
    let mut failures = Vec::new();
    let mut calls = 0;
    for route in API_ROUTES {
        for caller in &world.callers {
            let expect = expected(route.path, route.access, caller);
            prepare(&app, &world, route.method, route.path).await;
            calls += 1;
            let (query, body) = request_for(route.method, route.path, calls);
            let method = Method::from_bytes(route.method.to_uppercase().as_bytes()).unwrap();
            let url = format!("/api/v1{}{query}", fill(route.path, &world));
            let mut request = app.request(method, &url);
            if let Some(token) = &caller.token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                let content_type = if query.contains("jsonl") {
                    "application/x-ndjson"
                } else {
                    "application/json"
                };
                request = request.header("Content-Type", content_type).body(body);
            }
            let (status, answer) = text(request.send().await.unwrap()).await;
            // These need a state the caller is not in (a lease, a paused annotator): an
            // allowed caller gets past authorisation to the store's 409, which says why.
            let needs_state = [
                "/queue/submit",
                "/queue/skip",
                "/queue/undo",
                "/queue/correct",
                "/resume",
                // One round is open at a time, it has no key to close on, and nobody is
                // held: the store's 409 once past authorisation.
                "/calibration",
                "/calibration/{round}/close",
                "/calibration/{round}/repeat",
                "/calibration/{round}/release",
            ]
            .iter()
            .any(|end| route.path.ends_with(end));
            let conflict_past_auth =
                needs_state && expect == Expect::Allowed && status == StatusCode::CONFLICT;
            if !conflict_past_auth && !answers_as_expected(status, &expect) {
                failures.push(format!(
                    "{} {url} (access: {}) as {}: expected {expect:?}, got {status}: {answer}",
                    route.method.to_uppercase(),
                    route.access,
                    caller.label,
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {calls} calls answered against the route table:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Page routes and the roles that may open them; everybody else who is a member gets 403.
const PAGES: &[(&str, &[&str])] = &[
    (
        "/p/catalog",
        &[
            "annotator",
            "qa_analyst",
            "qa_expert",
            "project_manager",
            "administrator",
        ],
    ),
    (
        "/p/catalog/guidelines",
        &[
            "annotator",
            "qa_analyst",
            "qa_expert",
            "project_manager",
            "administrator",
        ],
    ),
    (
        "/p/catalog/items",
        &[
            "qa_analyst",
            "qa_expert",
            "project_manager",
            "administrator",
        ],
    ),
    (
        "/p/catalog/items/{id}",
        &[
            "qa_analyst",
            "qa_expert",
            "project_manager",
            "administrator",
        ],
    ),
    (
        "/p/catalog/sql?q=SELECT%20count(*)%20FROM%20items",
        &["qa_analyst", "project_manager", "administrator"],
    ),
    ("/p/catalog/settings", &["project_manager", "administrator"]),
    ("/p/catalog/import", &["project_manager", "administrator"]),
    (
        "/p/catalog/guidelines/edit",
        &["project_manager", "administrator"],
    ),
    ("/admin/users", &["administrator"]),
];

async fn pages_answer_each_role_as_the_permission_table_says(app: TestApp) {
    let world = world(&app).await;
    let mut failures = Vec::new();
    for caller in world.callers.iter().filter(|c| c.token.is_some()) {
        let username = match caller.label {
            "non-member" => "outsider",
            "administrator" => "root",
            role => role,
        };
        let browser = app.sign_in(username).await;
        for (page, allowed) in PAGES {
            let path = page.replace("{id}", &world.item_id.to_string());
            let (status, html) = text(browser.get(&path).send().await.unwrap()).await;
            let ok = if allowed.contains(&caller.label) {
                status == StatusCode::OK
            } else if caller.role.is_none() && path.starts_with("/p/") {
                matches!(status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN)
            } else {
                status == StatusCode::FORBIDDEN && html.contains("<html")
            };
            if !ok {
                let excerpt: String = html.chars().take(300).collect();
                failures.push(format!(
                    "GET {path} as {}: {status} {excerpt}",
                    caller.label
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

async fn an_annotator_cannot_change_the_project_through_the_forms(app: TestApp) {
    let project = app.project("catalog").await;
    app.member(&project, "ann", Role::Annotator).await;
    app.person("someone").await;
    let browser = app.sign_in("ann").await;
    let schema = serde_json::to_string(&LabelSchema::catalog_safety()).unwrap();
    let posts: [(&str, Vec<(&str, &str)>); 4] = [
        (
            "/p/catalog/settings",
            vec![
                ("name", "Taken over"),
                ("description", ""),
                ("settings", "{}"),
            ],
        ),
        (
            "/p/catalog/members",
            vec![("username", "someone"), ("role", "project_manager")],
        ),
        (
            "/p/catalog/guidelines",
            vec![
                ("body", "# Mine"),
                ("change_note", "x"),
                ("action", "publish"),
            ],
        ),
        (
            "/p/catalog/schema",
            vec![
                ("definition", &schema),
                ("change_note", "x"),
                ("action", "publish"),
            ],
        ),
    ];
    for (path, fields) in posts {
        let response = browser.submit(path, &fields).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "POST {path}");
    }
    let after = app.store.project("catalog").await.unwrap();
    assert_eq!(after.name, "Project catalog");
    assert_eq!(after.current_guideline_version_id, None);
    assert_eq!(app.store.members(project.id).await.unwrap().len(), 1);
    assert_eq!(
        app.store.schema_versions(project.id).await.unwrap().len(),
        1
    );
}

async fn only_an_administrator_creates_projects_and_sees_users(app: TestApp) {
    let project = app.project("catalog").await;
    app.member(&project, "pm", Role::ProjectManager).await;
    app.admin("root").await;

    let pm = app.sign_in("pm").await;
    let (status, page) = text(pm.get("/admin/users").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    let response = pm
        .submit("/projects", &[("slug", "by-pm"), ("name", "By PM")])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(app.store.project("by-pm").await.is_err(), "created anyway");

    let root = app.sign_in("root").await;
    let (status, page) = text(root.get("/admin/users").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("pm"), "{page}");
    let response = root
        .submit("/projects", &[("slug", "by-root"), ("name", "By root")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(crate::support::location(&response), "/p/by-root/settings");
    assert_eq!(app.store.project("by-root").await.unwrap().name, "By root");
}

on_every_backend!(
    every_api_route_answers_each_role_as_its_access_says,
    pages_answer_each_role_as_the_permission_table_says,
    an_annotator_cannot_change_the_project_through_the_forms,
    only_an_administrator_creates_projects_and_sees_users,
);
