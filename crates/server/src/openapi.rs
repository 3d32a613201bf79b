//! The OpenAPI document for `/api/v1`, generated from one table of routes. A test walks the
//! table against the running router, so the document cannot drift from what is served.

use serde_json::{Map, Value, json};

/// One API operation: method, path (axum syntax), summary, who may call it.
pub struct ApiRoute {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub access: &'static str,
}

macro_rules! routes {
    ($(($m:literal, $p:literal, $s:literal, $a:literal)),* $(,)?) => {
        &[$(ApiRoute { method: $m, path: $p, summary: $s, access: $a }),*]
    };
}

pub const API_ROUTES: &[ApiRoute] = routes![
    ("get", "/openapi.json", "This document", "anyone"),
    ("get", "/me", "The caller's account", "signed in"),
    ("get", "/users", "List users", "administrator"),
    (
        "post",
        "/users",
        "Create a user (body: username, display_name, password, admin, kind human|model)",
        "administrator"
    ),
    (
        "put",
        "/users/{username}/disabled",
        "Disable or enable an account (body: disabled); a disabled user cannot sign in or use tokens",
        "administrator"
    ),
    (
        "get",
        "/projects",
        "Projects the caller belongs to (all for an administrator), with the caller's role",
        "signed in"
    ),
    (
        "post",
        "/projects",
        "Create a project (body: slug, name, description, optional label schema)",
        "administrator"
    ),
    ("get", "/projects/{slug}", "A project", "member"),
    (
        "patch",
        "/projects/{slug}",
        "Change name, description or settings",
        "project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/members",
        "Members and their roles",
        "project_manager, admin"
    ),
    (
        "put",
        "/projects/{slug}/members/{username}",
        "Add a member or change their role (body: role)",
        "project_manager, admin"
    ),
    (
        "delete",
        "/projects/{slug}/members/{username}",
        "Remove a member",
        "project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/schema",
        "The current published label schema",
        "member"
    ),
    (
        "get",
        "/projects/{slug}/schema/versions",
        "Every label schema version, newest first",
        "member"
    ),
    (
        "put",
        "/projects/{slug}/schema/draft",
        "Save the label schema draft (body: definition, change_note)",
        "project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/schema/publish",
        "Publish the draft; it becomes immutable and current (body: change_note)",
        "project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/guidelines",
        "Every guideline version, newest first",
        "member"
    ),
    (
        "put",
        "/projects/{slug}/guidelines/draft",
        "Save the guideline draft (body: body markdown, examples, change_note)",
        "project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/guidelines/publish",
        "Publish the guideline draft (body: change_note; required after version 1)",
        "project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/guidelines/{version}",
        "One guideline version",
        "member"
    ),
    (
        "get",
        "/projects/{slug}/items",
        "Items, keyset-paged by id (query: type, state, q, gold, min_priority, after, limit ≤ 500)",
        "qa_analyst, qa_expert, project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/items/bulk/priority",
        "Set the priority of many items at once (body: item_ids ≤ 500, priority); all or nothing, one audit entry per item; answers the items changed",
        "qa_analyst, project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/items/bulk/rereview",
        "Assign many items for re-review to one member who annotates (body: item_ids ≤ 500, username); one assignment and audit entry per item",
        "qa_analyst, project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/items/bulk/gold",
        "Mark many items gold with their settled answer: the latest adjudication, else the consensus of every question (body: item_ids ≤ 500); items with neither are refused by id and nothing changes",
        "qa_expert, project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/items/{id}",
        "One item",
        "qa_analyst, qa_expert, project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/items/{id}/annotations",
        "Every annotation on an item, corrections included",
        "qa_analyst, qa_expert, project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/items/{id}/annotations",
        "A label outside the queue: a correction of your own label (`supersedes`, any role that annotates) or an override (QA expert, project manager); recorded with its source (body: answer, rationale, flags, time_spent_ms, supersedes, idempotency_key); a reused key with another answer is 409 with the stored answer",
        "qa_expert, project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/imports",
        "Upload a CSV or JSONL file of items or annotations as the request body; starts a job (query: kind items|annotations, format csv|jsonl, on_conflict error|skip|update, filename)",
        "project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/dsa/statements",
        "DSA statements of reasons (EU Transparency Database record format) for the decisions in force made in a period, each checked against the allowed values; a decision that cannot make a valid statement is 422 naming the item and field (query: from, to as YYYY-MM-DD, format json|csv)",
        "qa_analyst, project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/imports/foreign",
        "Another tool's export as the request body, mapped onto the schema: items, annotations and predictions all or nothing (query: source label_studio|toloka, dry_run, item_type, mapping as JSON, filename); answers the report of what maps and what does not (200 dry run, 201 written, 422 refused with error.report)",
        "project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/jobs",
        "Recent jobs with progress",
        "project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/models",
        "The project's automated annotators with their last run (labelled, failures, tokens, cost)",
        "project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/models",
        "Configure an automated annotator: name, kind openai|rules, base_url, model, api_key_env (the variable's name, never the key), temperature, max_concurrency, rate_per_minute, timeout_ms, prompt_template, rules, price_in_per_1k, price_out_per_1k",
        "project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/models/{model}/enable",
        "Let `concord serve` run this model",
        "project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/models/{model}/disable",
        "Stop `concord serve` from running this model",
        "project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/models/{model}/run",
        "Label the queue with this model now, as a background job",
        "project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/predictions",
        "Models with imported predictions",
        "qa_analyst, qa_expert, project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/predictions/{model}",
        "Import the model's predictions: the body is a CSV (item,model,label,score) or JSONL file; all or nothing, errors name line and field",
        "project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/predictions/{model}/sample",
        "Draw a stratified review sample (predicted class x score band; body: size, bands, seed); sampled items are served first",
        "project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/predictions/{model}/report",
        "Precision and recall per class from the latest sample's human labels (inverse-probability weights, 95 % intervals)",
        "qa_analyst, qa_expert, project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/queue/model-assist",
        "Human labels model-assisted overlap has saved (items, labels_saved)",
        "qa_analyst, qa_expert, project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/export",
        "Items with their annotations, streamed (query: format jsonl|csv)",
        "qa_analyst, qa_expert, project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/audit",
        "The project's audit log, newest first",
        "project_manager, admin"
    ),
    (
        "get",
        "/jobs/{id}",
        "A job's status and progress (a consensus job: also QA analysts and experts)",
        "project_manager, admin of the job's project"
    ),
    (
        "post",
        "/projects/{slug}/queue/next",
        "Lease the next item (blind: no state, gold flag or other labels); returns the lease held if any; status leased|paused|cap_reached|empty",
        "member"
    ),
    (
        "post",
        "/projects/{slug}/queue/submit",
        "Submit an answer for a leased item (body: item_id, kind label|unsure, answer, rationale, flags, time_spent_ms, idempotency_key); acknowledged after commit; a repeated key returns the first result. With ?next=true the reply also holds `next`, the caller's next item (as queue/next answers), leased in the same transaction: one request per answer instead of two",
        "member"
    ),
    (
        "post",
        "/projects/{slug}/queue/undo",
        "Undo, first step: check that your answer (body: annotation_id) is your latest in the project and its item neither adjudicated nor released; returns the item (blind) and the answer to correct; writes nothing (409 naming why it cannot be undone)",
        "member"
    ),
    (
        "post",
        "/projects/{slug}/queue/correct",
        "Undo, second step: the corrected answer (body: item_id, answer, rationale, flags, time_spent_ms, supersedes = the undone annotation, idempotency_key) replaces your latest one; both stay in the history and it counts once (409 as for undo)",
        "member"
    ),
    (
        "post",
        "/projects/{slug}/queue/skip",
        "Give a leased item back (body: item_id, reason)",
        "member"
    ),
    (
        "get",
        "/projects/{slug}/queue/mine",
        "The caller's own annotations, gold feedback and counts",
        "member"
    ),
    (
        "get",
        "/projects/{slug}/queue/team",
        "Annotators' progress, gold accuracy with Wilson interval, pauses, queue counts",
        "qa_analyst, project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/annotators/{username}/resume",
        "Resume a paused annotator",
        "qa_analyst, project_manager, admin"
    ),
    (
        "put",
        "/projects/{slug}/annotators/{username}/limits",
        "Set an annotator's daily cap and excluded categories",
        "qa_analyst, project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/assignments",
        "Create a rereview or retest assignment (body: item_id, username, purpose)",
        "qa_analyst, project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/consensus",
        "Start a consensus run (background job): consensus, agreement report, escalations",
        "qa_analyst, qa_expert, project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/quality",
        "The latest consensus run with its quality report, annotator quality, queue counts",
        "qa_analyst, qa_expert, project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/exposure",
        "Exposure budgets: the limits in force and each annotator's high-severity labels and minutes per category on a day (query: date YYYY-MM-DD, default today), with the share of the limit used and near / reached",
        "qa_analyst, project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/retest",
        "Test–retest: the retest plan, counts, and each question's intra-rater consistency (α and percent agreement with 95 % intervals) for the project and each annotator",
        "qa_analyst, qa_expert, project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/calibration",
        "Calibration rounds, newest first, and the settings new rounds take (settings.qa.calibration)",
        "qa_analyst, project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/calibration",
        "Open a calibration round (body: name, items [external ids] or sample [count], threshold, hold_until_verdict); its items are assigned to every annotator and QA expert, served before other work; 201",
        "qa_analyst, project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/calibration/{round}",
        "A round's report: participants and progress, the experts' key, each annotator's agreement with the key (share with Wilson 95 % interval, α) and with the group per question and category, and the verdicts",
        "qa_analyst, project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/calibration/{round}/close",
        "Close an open round: unanswered items are withdrawn, each annotator gets pass / retrain / incomplete, and those who did not pass are held from production work",
        "qa_analyst, project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/calibration/{round}/repeat",
        "Open a repeat of a round (same items and threshold, under the current guideline); 201",
        "qa_analyst, project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/calibration/{round}/release",
        "Release an annotator the round holds for production work (body: username)",
        "qa_analyst, project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/escalations",
        "The QA-expert queue (query: status open|resolved, limit), most urgent first",
        "qa_analyst, qa_expert, project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/items/{id}/consensus",
        "An item's consensus per question, escalations and adjudication history",
        "qa_analyst, qa_expert, project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/items/{id}/adjudication",
        "Record an expert decision (body: answer, rationale, guideline_clause, promote_to_gold, example_scope, example_category)",
        "qa_expert, project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/precedents",
        "The precedent library (query: text, code, clause, overturned, limit)",
        "member"
    ),
    (
        "get",
        "/projects/{slug}/releases",
        "Dataset releases, newest first",
        "qa_analyst, qa_expert, project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/releases",
        "Freeze the final labels as a named, immutable release (body: name, description)",
        "qa_analyst, project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/releases/{name}",
        "A release with its QA summary",
        "qa_analyst, qa_expert, project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/releases/{name}/items",
        "A release's items, streamed (query: format jsonl|csv)",
        "qa_analyst, qa_expert, project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/releases/{name}/labels",
        "A release's individual labels, streamed (query: format jsonl|csv, question; CSV is item,annotator,label)",
        "qa_analyst, qa_expert, project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/releases/{name}/diff/{other}",
        "What changed from release name to release other",
        "qa_analyst, qa_expert, project_manager, admin"
    ),
    (
        "post",
        "/sql",
        "Run one read-only query over the documented views of the projects where the caller may query (body: query, project, limit); a failed query is a 400 with the database's message and position",
        "qa_analyst, project_manager, admin"
    ),
    (
        "get",
        "/sql/views",
        "The documented views and their columns (docs/sql.md)",
        "signed in"
    ),
    (
        "get",
        "/projects/{slug}/sql/saved",
        "The project's saved queries (name, query, author)",
        "qa_analyst, project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/sql/saved",
        "Save a query, or replace the one of that name (body: name, query)",
        "qa_analyst, project_manager, admin"
    ),
    (
        "get",
        "/projects/{slug}/sql/saved/{name}",
        "One saved query",
        "qa_analyst, project_manager, admin"
    ),
    (
        "post",
        "/projects/{slug}/sql/saved/{name}/run",
        "Run a saved query over this project (body: optional limit)",
        "qa_analyst, project_manager, admin"
    ),
    (
        "delete",
        "/projects/{slug}/sql/saved/{name}",
        "Delete a saved query",
        "qa_analyst, project_manager, admin"
    ),
];

pub fn document() -> Value {
    let mut paths = Map::new();
    for route in API_ROUTES {
        let params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| {
                let schema = if name == "id" || name == "version" {
                    json!({"type": "integer"})
                } else {
                    json!({"type": "string"})
                };
                json!({"name": name, "in": "path", "required": true, "schema": schema})
            })
            .collect();
        let mut op = json!({
            "summary": route.summary,
            "description": format!("Allowed for: {}.", route.access),
            "parameters": params,
            "responses": {
                "200": {"description": "Success (201 on creation, 202 for a started job, 204 on removal)"},
                "4XX": {"description": "The request is wrong or not allowed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        });
        if route.access != "anyone" {
            op["security"] = json!([{"token": []}, {"session": []}]);
        }
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        entry[route.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "concord API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Annotation quality platform. Authenticate with `Authorization: Bearer <token>` (create tokens on the account page or with `concord user token`). Requests made with the page session must send the session's CSRF token as `X-CSRF-Token`.",
            "license": {"name": "Apache-2.0"},
        },
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": crate::auth::SESSION_COOKIE},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "object", "properties": {
                        "status": {"type": "integer"}, "message": {"type": "string"}}}},
                },
            },
        },
    })
}
