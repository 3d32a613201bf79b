//! The JSON API under `/api/v1`. Authenticated by API token (or the page session, with its
//! CSRF header). Every route checks the caller's role in the project.

use crate::AppState;
use crate::auth::{Auth, project_access, require_admin};
use crate::error::{AppError, AppResult};
use crate::imports::{self, ImportRequest};
use crate::pages::ItemQuery;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use concord_formats::items::{ExportWriter, RecordFormat};
use concord_store::{
    GuidelineExample, ImportKind, LabelSchema, NewAnnotation, NewProject, NewUser, OnConflict,
    Permission, Role, Submission,
};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/openapi.json",
            get(|| async { Json(crate::openapi::document()) }),
        )
        .route("/me", get(me))
        .route("/users", get(list_users).post(create_user))
        .route("/projects", get(list_projects).post(create_project))
        .route("/projects/{slug}", get(get_project).patch(update_project))
        .route("/projects/{slug}/members", get(list_members))
        .route(
            "/projects/{slug}/members/{username}",
            put(set_member).delete(remove_member),
        )
        .route("/projects/{slug}/schema", get(current_schema))
        .route("/projects/{slug}/schema/versions", get(schema_versions))
        .route("/projects/{slug}/schema/draft", put(save_schema_draft))
        .route("/projects/{slug}/schema/publish", post(publish_schema))
        .route("/projects/{slug}/guidelines", get(guideline_versions))
        .route(
            "/projects/{slug}/guidelines/draft",
            put(save_guideline_draft),
        )
        .route(
            "/projects/{slug}/guidelines/publish",
            post(publish_guideline),
        )
        .route(
            "/projects/{slug}/guidelines/{version}",
            get(guideline_version),
        )
        .route("/projects/{slug}/items", get(list_items))
        .route("/projects/{slug}/items/{id}", get(get_item))
        .route(
            "/projects/{slug}/items/{id}/annotations",
            get(item_annotations).post(add_annotation),
        )
        .route("/projects/{slug}/imports", post(start_import))
        .route("/projects/{slug}/jobs", get(project_jobs))
        .route("/projects/{slug}/export", get(export))
        .route("/projects/{slug}/audit", get(audit_log))
        .route("/jobs/{id}", get(get_job))
        .route("/projects/{slug}/queue/next", post(queue_next))
        .route("/projects/{slug}/queue/submit", post(queue_submit))
        .route("/projects/{slug}/queue/skip", post(queue_skip))
        .route("/projects/{slug}/queue/mine", get(queue_mine))
        .route("/projects/{slug}/queue/team", get(queue_team))
        .route(
            "/projects/{slug}/annotators/{username}/resume",
            post(resume_annotator),
        )
        .route(
            "/projects/{slug}/annotators/{username}/limits",
            put(set_annotator_limits),
        )
        .route("/projects/{slug}/assignments", post(assign_again))
        .route("/projects/{slug}/consensus", post(start_consensus))
        .route("/projects/{slug}/quality", get(quality))
        .route("/projects/{slug}/escalations", get(escalations))
        .route("/projects/{slug}/items/{id}/consensus", get(item_consensus))
        .route("/projects/{slug}/items/{id}/adjudication", post(adjudicate))
        .route("/projects/{slug}/precedents", get(precedents))
        .route(
            "/projects/{slug}/releases",
            get(list_releases).post(create_release),
        )
        .route("/projects/{slug}/releases/{name}", get(get_release))
        .route("/projects/{slug}/releases/{name}/items", get(release_items))
        .route(
            "/projects/{slug}/releases/{name}/labels",
            get(release_labels),
        )
        .route(
            "/projects/{slug}/releases/{name}/diff/{other}",
            get(diff_releases),
        )
}

async fn me(auth: Auth) -> Json<Value> {
    Json(json!({"user": auth.user}))
}

async fn list_users(State(state): State<AppState>, auth: Auth) -> AppResult<Json<Value>> {
    require_admin(&auth.user)?;
    Ok(Json(json!({"users": state.store.list_users().await?})))
}

#[derive(Deserialize)]
struct NewUserBody {
    username: String,
    display_name: Option<String>,
    password: Option<String>,
    #[serde(default)]
    admin: bool,
    #[serde(default = "human")]
    kind: String,
}

fn human() -> String {
    "human".into()
}

async fn create_user(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<NewUserBody>,
) -> AppResult<(StatusCode, Json<Value>)> {
    require_admin(&auth.user)?;
    let user = state
        .store
        .create_user(
            NewUser {
                username: body.username,
                display_name: body.display_name,
                password: body.password,
                is_admin: body.admin,
                kind: body.kind,
            },
            Some(auth.user.id),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"user": user}))))
}

async fn list_projects(State(state): State<AppState>, auth: Auth) -> AppResult<Json<Value>> {
    let projects: Vec<Value> = state
        .store
        .projects_for(&auth.user)
        .await?
        .into_iter()
        .map(|(p, role)| json!({"project": p, "role": role}))
        .collect();
    Ok(Json(json!({"projects": projects})))
}

#[derive(Deserialize)]
struct NewProjectBody {
    slug: String,
    name: String,
    #[serde(default)]
    description: String,
    schema: Option<LabelSchema>,
}

async fn create_project(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<NewProjectBody>,
) -> AppResult<(StatusCode, Json<Value>)> {
    require_admin(&auth.user)?;
    let project = state
        .store
        .create_project(
            NewProject {
                slug: body.slug,
                name: body.name,
                description: body.description,
                schema: body.schema.unwrap_or_else(LabelSchema::catalog_safety),
            },
            Some(auth.user.id),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"project": project}))))
}

async fn get_project(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
) -> AppResult<Json<Value>> {
    let (project, role) =
        project_access(&state, &auth.user, &slug, Permission::ViewProject).await?;
    Ok(Json(json!({"project": project, "role": role})))
}

#[derive(Deserialize)]
struct ProjectPatch {
    name: Option<String>,
    description: Option<String>,
    settings: Option<Value>,
}

async fn update_project(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
    Json(patch): Json<ProjectPatch>,
) -> AppResult<Json<Value>> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::EditSettings).await?;
    let updated = state
        .store
        .update_project(
            project.id,
            patch.name.as_deref().unwrap_or(&project.name),
            patch.description.as_deref().unwrap_or(&project.description),
            patch.settings.unwrap_or(project.settings),
            Some(auth.user.id),
        )
        .await?;
    Ok(Json(json!({"project": updated})))
}

async fn list_members(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
) -> AppResult<Json<Value>> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::ManageMembers).await?;
    Ok(Json(
        json!({"members": state.store.members(project.id).await?}),
    ))
}

#[derive(Deserialize)]
struct RoleBody {
    role: String,
}

async fn set_member(
    State(state): State<AppState>,
    auth: Auth,
    Path((slug, username)): Path<(String, String)>,
    Json(body): Json<RoleBody>,
) -> AppResult<Json<Value>> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::ManageMembers).await?;
    let role = Role::from_input(&body.role).map_err(AppError::bad_request)?;
    state
        .store
        .set_member(project.id, &username, role, Some(auth.user.id))
        .await?;
    Ok(Json(
        json!({"members": state.store.members(project.id).await?}),
    ))
}

async fn remove_member(
    State(state): State<AppState>,
    auth: Auth,
    Path((slug, username)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::ManageMembers).await?;
    state
        .store
        .remove_member(project.id, &username, Some(auth.user.id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn current_schema(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
) -> AppResult<Json<Value>> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::ViewProject).await?;
    Ok(Json(
        json!({"schema": state.store.current_schema(project.id).await?}),
    ))
}

async fn schema_versions(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
) -> AppResult<Json<Value>> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::ViewProject).await?;
    Ok(Json(
        json!({"versions": state.store.schema_versions(project.id).await?}),
    ))
}

#[derive(Deserialize)]
struct SchemaDraft {
    definition: LabelSchema,
    #[serde(default)]
    change_note: String,
}

async fn save_schema_draft(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
    Json(body): Json<SchemaDraft>,
) -> AppResult<Json<Value>> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::EditSchema).await?;
    let draft = state
        .store
        .save_schema_draft(
            project.id,
            &body.definition,
            &body.change_note,
            Some(auth.user.id),
        )
        .await?;
    Ok(Json(json!({"version": draft})))
}

#[derive(Deserialize, Default)]
struct PublishBody {
    change_note: Option<String>,
}

async fn publish_schema(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
    body: Option<Json<PublishBody>>,
) -> AppResult<Json<Value>> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::EditSchema).await?;
    let note = body.and_then(|Json(b)| b.change_note);
    let version = state
        .store
        .publish_schema(project.id, note.as_deref(), Some(auth.user.id))
        .await?;
    Ok(Json(json!({"version": version})))
}

async fn guideline_versions(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
) -> AppResult<Json<Value>> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::ViewProject).await?;
    Ok(Json(json!({
        "current_version_id": project.current_guideline_version_id,
        "versions": state.store.guideline_versions(project.id).await?,
    })))
}

async fn guideline_version(
    State(state): State<AppState>,
    auth: Auth,
    Path((slug, version)): Path<(String, i64)>,
) -> AppResult<Json<Value>> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::ViewProject).await?;
    Ok(Json(
        json!({"version": state.store.guideline_version(project.id, version).await?}),
    ))
}

#[derive(Deserialize)]
struct GuidelineDraft {
    body: String,
    #[serde(default)]
    examples: Vec<GuidelineExample>,
    #[serde(default)]
    change_note: String,
}

async fn save_guideline_draft(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
    Json(draft): Json<GuidelineDraft>,
) -> AppResult<Json<Value>> {
    let (project, _) =
        project_access(&state, &auth.user, &slug, Permission::EditGuidelines).await?;
    let version = state
        .store
        .save_guideline_draft(
            project.id,
            &draft.body,
            &draft.examples,
            &draft.change_note,
            Some(auth.user.id),
        )
        .await?;
    Ok(Json(json!({"version": version})))
}

async fn publish_guideline(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
    body: Option<Json<PublishBody>>,
) -> AppResult<Json<Value>> {
    let (project, _) =
        project_access(&state, &auth.user, &slug, Permission::EditGuidelines).await?;
    let note = body.and_then(|Json(b)| b.change_note);
    let version = state
        .store
        .publish_guideline(project.id, note.as_deref(), Some(auth.user.id))
        .await?;
    Ok(Json(json!({"version": version})))
}

async fn list_items(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
    Query(q): Query<ItemQuery>,
) -> AppResult<Json<Value>> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::BrowseItems).await?;
    let page = state.store.items_page(project.id, &q.filter()?).await?;
    Ok(Json(json!(page)))
}

async fn get_item(
    State(state): State<AppState>,
    auth: Auth,
    Path((slug, id)): Path<(String, i64)>,
) -> AppResult<Json<Value>> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::BrowseItems).await?;
    Ok(Json(
        json!({"item": state.store.item(project.id, id).await?}),
    ))
}

async fn item_annotations(
    State(state): State<AppState>,
    auth: Auth,
    Path((slug, id)): Path<(String, i64)>,
) -> AppResult<Json<Value>> {
    let (project, _) =
        project_access(&state, &auth.user, &slug, Permission::ReadAnnotations).await?;
    let item = state.store.item(project.id, id).await?;
    Ok(Json(
        json!({"annotations": state.store.item_annotations(item.id).await?}),
    ))
}

async fn add_annotation(
    State(state): State<AppState>,
    auth: Auth,
    Path((slug, id)): Path<(String, i64)>,
    Json(mut body): Json<NewAnnotation>,
) -> AppResult<(StatusCode, Json<Value>)> {
    // One write path for labels: the queue. Outside it a person may only correct their own
    // label (the store checks that `supersedes` is theirs), or override with a role allowed
    // to; both are recorded as such.
    let needed = match body.supersedes {
        Some(_) => Permission::Annotate,
        None => Permission::OverrideLabels,
    };
    let (project, _) = project_access(&state, &auth.user, &slug, needed)
        .await
        .map_err(|e| match (e.status, body.supersedes) {
            (StatusCode::FORBIDDEN, None) => AppError::forbidden(
                "labels come through the queue (POST …/queue/submit); outside it you may \
                 correct your own label by naming it in `supersedes`, and only a QA expert or \
                 project manager may add an override",
            ),
            _ => e,
        })?;
    body.item_id = id;
    if body.guideline_version_id.is_none() {
        body.guideline_version_id = project.current_guideline_version_id;
    }
    let annotation = state
        .store
        .add_annotation(project.id, auth.user.id, body)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"annotation": annotation}))))
}

#[derive(Deserialize)]
struct ImportQuery {
    #[serde(default = "items_kind")]
    kind: String,
    format: Option<String>,
    #[serde(default = "error_conflict")]
    on_conflict: String,
    filename: Option<String>,
}

fn items_kind() -> String {
    "items".into()
}
fn error_conflict() -> String {
    "error".into()
}

async fn start_import(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
    Query(q): Query<ImportQuery>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> AppResult<(StatusCode, Json<Value>)> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::ImportItems).await?;
    let kind = match q.kind.as_str() {
        "items" => ImportKind::Items,
        "annotations" => ImportKind::Annotations,
        other => {
            return Err(AppError::bad_request(format!(
                "kind must be items or annotations, not {other:?}"
            )));
        }
    };
    let on_conflict = OnConflict::parse(&q.on_conflict).ok_or_else(|| {
        AppError::bad_request(format!(
            "on_conflict must be error, skip or update, not {:?}",
            q.on_conflict
        ))
    })?;
    let filename = q.filename.clone().unwrap_or_else(|| "upload".into());
    let format = match q.format.as_deref() {
        Some("csv") => RecordFormat::Csv,
        Some("jsonl") => RecordFormat::Jsonl,
        Some(other) => {
            return Err(AppError::bad_request(format!(
                "format must be csv or jsonl, not {other:?}"
            )));
        }
        None => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if content_type.contains("json") {
                RecordFormat::Jsonl
            } else {
                RecordFormat::guess(&filename)
            }
        }
    };
    let request = ImportRequest {
        project_id: project.id,
        actor: auth.user.id,
        kind,
        format,
        on_conflict,
        filename,
    };
    let job = imports::start(&state, request, body).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"job": job}))))
}

async fn project_jobs(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
) -> AppResult<Json<Value>> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::ImportItems).await?;
    Ok(Json(
        json!({"jobs": state.store.project_jobs(project.id, 50).await?}),
    ))
}

async fn get_job(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> AppResult<Json<Value>> {
    let job = state.store.job(id).await?;
    let Some(project_id) = job.project_id else {
        require_admin(&auth.user)?;
        return Ok(Json(json!({"job": job})));
    };
    let role = state.store.role_in(&auth.user, project_id).await?;
    match role {
        // Consensus runs are the analysts' jobs; imports belong to whoever may import.
        Some(role)
            if role.allows(if job.kind == "consensus" {
                Permission::ReadAnnotations
            } else {
                Permission::ImportItems
            }) =>
        {
            Ok(Json(json!({"job": job})))
        }
        Some(_) => Err(AppError::forbidden(
            "your role in this project does not allow this",
        )),
        None => Err(AppError::not_found(format!("job {id} not found"))),
    }
}

#[derive(Deserialize)]
struct ExportQuery {
    format: Option<String>,
}

/// Streams the export: rows leave as they are read, so memory stays flat.
async fn export(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
    Query(q): Query<ExportQuery>,
) -> AppResult<Response> {
    let (project, _) =
        project_access(&state, &auth.user, &slug, Permission::ReadAnnotations).await?;
    let (format, content_type, ext) =
        crate::streaming::file_format(q.format.as_deref()).map_err(AppError::bad_request)?;
    let receiver = state.store.export(project.id);
    let writer = ExportWriter::new(Vec::with_capacity(1 << 16), format);
    Ok(crate::streaming::download(
        receiver,
        writer,
        content_type,
        &format!("{}-export.{ext}", project.slug),
    ))
}

async fn audit_log(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
) -> AppResult<Json<Value>> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::ManageMembers).await?;
    Ok(Json(
        json!({"entries": state.store.audit_log(Some(project.id), 200).await?}),
    ))
}

// ---------------------------------------------------------------- the work queue

/// What the annotator's client needs to show the next item: the item (blind), the lease
/// expiry, and the versions to record with the answer.
/// The answer to "next item". A served item is serialised straight from the lease: through
/// a `Value` tree its JSON fields were copied twice more per request.
#[derive(serde::Serialize)]
#[serde(untagged)]
pub(crate) enum NextItemBody {
    Leased(Box<LeasedItemBody>),
    Other(Value),
}

#[derive(serde::Serialize)]
pub(crate) struct LeasedItemBody {
    status: &'static str,
    item: concord_store::BlindItem,
    expires_at: i64,
    resumed: bool,
    guideline_version_id: Option<i64>,
    schema_version_id: Option<i64>,
}

pub(crate) fn next_item_body(
    project: &concord_store::Project,
    next: concord_store::NextItem,
) -> NextItemBody {
    use concord_store::NextItem;
    match next {
        NextItem::Leased(lease) => NextItemBody::Leased(Box::new(LeasedItemBody {
            status: "leased",
            expires_at: lease.expires_at,
            resumed: lease.resumed,
            item: lease.item.into(),
            guideline_version_id: project.current_guideline_version_id,
            schema_version_id: project.current_schema_version_id,
        })),
        NextItem::Paused { reason } => {
            NextItemBody::Other(json!({"status": "paused", "reason": reason}))
        }
        NextItem::CapReached { cap } => {
            NextItemBody::Other(json!({"status": "cap_reached", "cap": cap}))
        }
        NextItem::Empty => NextItemBody::Other(json!({"status": "empty"})),
    }
}

async fn queue_next(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
) -> AppResult<Json<NextItemBody>> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::Annotate).await?;
    let next = state.store.next_item(&project, &auth.user).await?;
    Ok(Json(next_item_body(&project, next)))
}

async fn queue_submit(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
    Json(mut body): Json<Submission>,
) -> AppResult<Json<Value>> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::Annotate).await?;
    if body.guideline_version_id.is_none() {
        body.guideline_version_id = project.current_guideline_version_id;
    }
    let outcome = state.store.submit(&project, &auth.user, body).await?;
    Ok(Json(json!({"outcome": outcome})))
}

#[derive(Deserialize)]
struct SkipBody {
    item_id: i64,
    reason: String,
}

async fn queue_skip(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
    Json(body): Json<SkipBody>,
) -> AppResult<Json<Value>> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::Annotate).await?;
    state
        .store
        .skip(&project, &auth.user, body.item_id, &body.reason)
        .await?;
    Ok(Json(json!({"skipped": body.item_id})))
}

async fn queue_mine(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
) -> AppResult<Json<Value>> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::Annotate).await?;
    let work = state.store.my_work(&project, auth.user.id, 200).await?;
    let progress = state
        .store
        .annotator_progress(project.id, auth.user.id)
        .await
        .ok()
        .as_ref()
        .map(crate::progress_view::progress_json);
    Ok(Json(json!({"progress": progress, "annotations": work})))
}

async fn queue_team(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
) -> AppResult<Json<Value>> {
    let (project, _) =
        project_access(&state, &auth.user, &slug, Permission::ManageAnnotators).await?;
    Ok(Json(json!({
        "annotators": crate::progress_view::team_json(&state.store.team_progress(project.id).await?),
        "queue": state.store.queue_overview(project.id).await?,
    })))
}

async fn resume_annotator(
    State(state): State<AppState>,
    auth: Auth,
    Path((slug, username)): Path<(String, String)>,
) -> AppResult<Json<Value>> {
    let (project, _) =
        project_access(&state, &auth.user, &slug, Permission::ManageAnnotators).await?;
    let annotator = state.store.user_by_name(&username).await?;
    state
        .store
        .resume_annotator(project.id, annotator.id, auth.user.id)
        .await?;
    Ok(Json(json!({"resumed": username})))
}

#[derive(Deserialize)]
struct LimitsBody {
    daily_cap: Option<i64>,
    #[serde(default)]
    excluded_categories: Vec<String>,
}

async fn set_annotator_limits(
    State(state): State<AppState>,
    auth: Auth,
    Path((slug, username)): Path<(String, String)>,
    Json(body): Json<LimitsBody>,
) -> AppResult<Json<Value>> {
    let (project, _) =
        project_access(&state, &auth.user, &slug, Permission::ManageAnnotators).await?;
    let annotator = state.store.user_by_name(&username).await?;
    state
        .store
        .set_annotator_limits(
            project.id,
            annotator.id,
            body.daily_cap,
            body.excluded_categories,
            auth.user.id,
        )
        .await?;
    Ok(Json(
        json!({"progress": crate::progress_view::progress_json(&state.store.annotator_progress(project.id, annotator.id).await?)}),
    ))
}

#[derive(Deserialize)]
struct AssignBody {
    item_id: i64,
    username: String,
    purpose: String,
}

async fn assign_again(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
    Json(body): Json<AssignBody>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let (project, _) =
        project_access(&state, &auth.user, &slug, Permission::ManageAnnotators).await?;
    let annotator = state.store.user_by_name(&body.username).await?;
    let id = state
        .store
        .assign_again(
            project.id,
            body.item_id,
            annotator.id,
            &body.purpose,
            Some(auth.user.id),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"assignment_id": id}))))
}

// ---------------------------------------------------------------- QA loop

async fn start_consensus(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let (project, _) =
        project_access(&state, &auth.user, &slug, Permission::ReadAnnotations).await?;
    let job = crate::qa_pages::start_consensus(&state, project, auth.user.id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!(job))))
}

/// The latest consensus run with its quality report (`run` is null before the first).
async fn quality(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
) -> AppResult<Json<Value>> {
    let (project, _) =
        project_access(&state, &auth.user, &slug, Permission::ReadAnnotations).await?;
    let run = state.store.latest_consensus_run(project.id).await?;
    let annotators: Vec<Value> = state
        .store
        .annotator_quality(project.id)
        .await?
        .into_iter()
        .map(|(name, q)| {
            let mut row = json!(q);
            row["annotator"] = json!(name);
            row
        })
        .collect();
    let (open, overdue, resolved) = state.store.escalation_counts(project.id).await?;
    let (adjudicated, overturned) = state.store.adjudication_counts(project.id).await?;
    Ok(Json(json!({
        "run": run,
        "annotators": annotators,
        "escalations": {"open": open, "overdue": overdue, "resolved": resolved},
        "adjudications": {"total": adjudicated, "overturned": overturned},
    })))
}

#[derive(Deserialize)]
struct EscalationsQuery {
    #[serde(default = "open_status")]
    status: String,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn open_status() -> String {
    "open".into()
}

fn default_limit() -> i64 {
    100
}

async fn escalations(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
    Query(q): Query<EscalationsQuery>,
) -> AppResult<Json<Value>> {
    let (project, _) =
        project_access(&state, &auth.user, &slug, Permission::ReadAnnotations).await?;
    if q.status != "open" && q.status != "resolved" {
        return Err(AppError::bad_request(format!(
            "status must be open or resolved, not {:?}",
            q.status
        )));
    }
    let list = state
        .store
        .escalations(project.id, &q.status, auth.user.id, q.limit.clamp(1, 1000))
        .await?;
    Ok(Json(json!({ "escalations": list })))
}

async fn item_consensus(
    State(state): State<AppState>,
    auth: Auth,
    Path((slug, id)): Path<(String, i64)>,
) -> AppResult<Json<Value>> {
    let (project, _) =
        project_access(&state, &auth.user, &slug, Permission::ReadAnnotations).await?;
    let item = state.store.item(project.id, id).await?;
    Ok(Json(json!({
        "item_id": item.id,
        "state": item.state,
        "consensus": state.store.item_consensus(item.id).await?,
        "escalations": state.store.item_escalations(item.id, auth.user.id).await?,
        "adjudications": state.store.item_adjudications(item.id).await?,
    })))
}

async fn adjudicate(
    State(state): State<AppState>,
    auth: Auth,
    Path((slug, id)): Path<(String, i64)>,
    Json(decision): Json<concord_store::NewAdjudication>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::Adjudicate).await?;
    let adjudication = state
        .store
        .adjudicate(project.id, id, auth.user.id, decision)
        .await?;
    Ok((StatusCode::CREATED, Json(json!(adjudication))))
}

async fn precedents(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
    Query(filter): Query<concord_store::PrecedentFilter>,
) -> AppResult<Json<Value>> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::ViewProject).await?;
    let list = state.store.precedents(project.id, &filter).await?;
    Ok(Json(json!({ "precedents": list })))
}

// ---------------------------------------------------------------- dataset releases

async fn list_releases(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
) -> AppResult<Json<Value>> {
    let (project, _) =
        project_access(&state, &auth.user, &slug, Permission::ReadAnnotations).await?;
    Ok(Json(
        json!({ "releases": state.store.releases(project.id).await? }),
    ))
}

#[derive(Deserialize)]
struct NewReleaseBody {
    name: String,
    #[serde(default)]
    description: String,
}

async fn create_release(
    State(state): State<AppState>,
    auth: Auth,
    Path(slug): Path<String>,
    Json(body): Json<NewReleaseBody>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let (project, _) =
        project_access(&state, &auth.user, &slug, Permission::CreateReleases).await?;
    let release = concord_qa::create_release(
        &state.store,
        &project,
        &body.name,
        &body.description,
        Some(auth.user.id),
    )
    .await
    .map_err(crate::qa_pages::qa_error)?;
    Ok((StatusCode::CREATED, Json(json!(release))))
}

async fn get_release(
    State(state): State<AppState>,
    auth: Auth,
    Path((slug, name)): Path<(String, String)>,
) -> AppResult<Json<Value>> {
    let (project, _) =
        project_access(&state, &auth.user, &slug, Permission::ReadAnnotations).await?;
    Ok(Json(json!(state.store.release(project.id, &name).await?)))
}

#[derive(Deserialize)]
struct ReleaseFileQuery {
    format: Option<String>,
    question: Option<String>,
}

async fn release_items(
    State(state): State<AppState>,
    auth: Auth,
    Path((slug, name)): Path<(String, String)>,
    Query(q): Query<ReleaseFileQuery>,
) -> AppResult<Response> {
    let (project, _) =
        project_access(&state, &auth.user, &slug, Permission::ReadAnnotations).await?;
    let release = state.store.release(project.id, &name).await?;
    let (format, content_type, ext) =
        crate::streaming::file_format(q.format.as_deref()).map_err(AppError::bad_request)?;
    let questions: Vec<String> = state
        .store
        .current_schema(project.id)
        .await?
        .definition
        .questions
        .iter()
        .map(|q| q.key.clone())
        .collect();
    let writer = concord_formats::release::ReleaseItemWriter::new(
        Vec::with_capacity(1 << 16),
        format,
        questions,
    );
    Ok(crate::streaming::download(
        state.store.release_items(&release),
        writer,
        content_type,
        &format!("{}-{}-items.{ext}", project.slug, release.name),
    ))
}

/// The individual labels: JSONL records, or `item,annotator,label` CSV of one question.
async fn release_labels(
    State(state): State<AppState>,
    auth: Auth,
    Path((slug, name)): Path<(String, String)>,
    Query(q): Query<ReleaseFileQuery>,
) -> AppResult<Response> {
    let (project, _) =
        project_access(&state, &auth.user, &slug, Permission::ReadAnnotations).await?;
    let release = state.store.release(project.id, &name).await?;
    let (format, content_type, ext) =
        crate::streaming::file_format(q.format.as_deref()).map_err(AppError::bad_request)?;
    let schema = state.store.current_schema(project.id).await?.definition;
    let keys: Vec<&str> = schema.questions.iter().map(|q| q.key.as_str()).collect();
    let question = match (&q.question, format) {
        (Some(question), _) if !keys.contains(&question.as_str()) => {
            return Err(AppError::bad_request(format!(
                "question {question:?} is not one of {}",
                keys.join(", ")
            )));
        }
        (None, RecordFormat::Csv) => {
            return Err(AppError::bad_request(format!(
                "a CSV of labels holds one question: add question= ({})",
                keys.join(", ")
            )));
        }
        (question, _) => question.clone(),
    };
    let suffix = question
        .as_deref()
        .map(|q| format!("-{q}"))
        .unwrap_or_default();
    let writer = concord_formats::release::ReleaseLabelWriter::new(
        Vec::with_capacity(1 << 16),
        format,
        question,
    );
    Ok(crate::streaming::download(
        state.store.release_labels(&release),
        writer,
        content_type,
        &format!("{}-{}-labels{suffix}.{ext}", project.slug, release.name),
    ))
}

async fn diff_releases(
    State(state): State<AppState>,
    auth: Auth,
    Path((slug, name, other)): Path<(String, String, String)>,
) -> AppResult<Json<Value>> {
    let (project, _) =
        project_access(&state, &auth.user, &slug, Permission::ReadAnnotations).await?;
    let from = state.store.release(project.id, &name).await?;
    let to = state.store.release(project.id, &other).await?;
    Ok(Json(json!(state.store.diff_releases(&from, &to).await?)))
}
