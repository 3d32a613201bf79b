//! Projects: JSON API routes (under `/api/v1`).

use crate::AppState;
use crate::access::{ProjectAccess, need};
use crate::auth::{Auth, require_admin};
use crate::error::{AppError, AppResult};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use concord_store::{LabelSchema, NewProject, Permission, Role};
use serde::Deserialize;
use serde_json::{Value, json};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
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
        .route("/projects/{slug}/jobs", get(project_jobs))
        .route("/projects/{slug}/audit", get(audit_log))
        .route("/jobs/{id}", get(get_job))
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
    ProjectAccess { project, role, .. }: ProjectAccess<need::ViewProject>,
) -> AppResult<Json<Value>> {
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
    ProjectAccess { auth, project, .. }: ProjectAccess<need::EditSettings>,
    Json(patch): Json<ProjectPatch>,
) -> AppResult<Json<Value>> {
    let updated = state
        .store
        .update_project(
            project.id,
            patch.name.as_deref().unwrap_or(&project.name),
            patch.description.as_deref().unwrap_or(&project.description),
            patch
                .settings
                .unwrap_or_else(|| project.settings.into_json()),
            Some(auth.user.id),
        )
        .await?;
    Ok(Json(json!({"project": updated})))
}

async fn list_members(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::ManageMembers>,
) -> AppResult<Json<Value>> {
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
    ProjectAccess { auth, project, .. }: ProjectAccess<need::ManageMembers>,
    Path((_, username)): Path<(String, String)>,
    Json(body): Json<RoleBody>,
) -> AppResult<Json<Value>> {
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
    ProjectAccess { auth, project, .. }: ProjectAccess<need::ManageMembers>,
    Path((_, username)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    state
        .store
        .remove_member(project.id, &username, Some(auth.user.id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn current_schema(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::ViewProject>,
) -> AppResult<Json<Value>> {
    Ok(Json(
        json!({"schema": state.store.current_schema(project.id).await?}),
    ))
}

async fn schema_versions(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::ViewProject>,
) -> AppResult<Json<Value>> {
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
    ProjectAccess { auth, project, .. }: ProjectAccess<need::EditSchema>,
    Json(body): Json<SchemaDraft>,
) -> AppResult<Json<Value>> {
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

/// The body of a publish request (schema or guideline), optional as a whole.
#[derive(Deserialize, Default)]
pub(crate) struct PublishBody {
    pub change_note: Option<String>,
}

async fn publish_schema(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::EditSchema>,
    body: Option<Json<PublishBody>>,
) -> AppResult<Json<Value>> {
    let note = body.and_then(|Json(b)| b.change_note);
    let version = state
        .store
        .publish_schema(project.id, note.as_deref(), Some(auth.user.id))
        .await?;
    Ok(Json(json!({"version": version})))
}

async fn project_jobs(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::ImportItems>,
) -> AppResult<Json<Value>> {
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
            if role.allows(if job.kind == concord_store::JobKind::Consensus {
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

async fn audit_log(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::ManageMembers>,
) -> AppResult<Json<Value>> {
    Ok(Json(
        json!({"entries": state.store.audit_log(Some(project.id), 200).await?}),
    ))
}
