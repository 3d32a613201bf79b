//! Projects: page routes.

use crate::AppState;
use crate::access::{ProjectPage, need};
use crate::auth::{Auth, PageAuth, require_admin};
use crate::error::{AppError, AppResult};
use crate::views::{ListQuery, base, capabilities, render};
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use concord_store::{LabelSchema, NewProject, Permission, Project, Role};
use minijinja::{Value, context};
use serde::Deserialize;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(projects_page))
        .route("/projects", post(create_project))
        .route("/p/{slug}", get(project_page))
        .route("/p/{slug}/settings", get(settings_page).post(save_settings))
        .route("/p/{slug}/schema", post(save_schema))
        .route("/p/{slug}/members", post(set_member))
        .route("/p/{slug}/members/remove", post(remove_member))
        .route("/p/{slug}/jobs/{id}", get(job_fragment))
}

async fn projects_page(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
) -> AppResult<Html<String>> {
    let projects: Vec<Value> = state
        .store
        .projects_for(&auth.user)
        .await?
        .into_iter()
        .map(|(p, role)| context! { project => p, role => role.map(|r| r.label()) })
        .collect();
    render(
        &state,
        "projects.html",
        context! { projects, ..base(&auth) },
    )
}

#[derive(Deserialize)]
struct NewProjectForm {
    slug: String,
    name: String,
    #[serde(default)]
    description: String,
}

async fn create_project(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
    Form(form): Form<NewProjectForm>,
) -> AppResult<Redirect> {
    require_admin(&auth.user)?;
    let project = state
        .store
        .create_project(
            NewProject {
                slug: form.slug.trim().to_owned(),
                name: form.name,
                description: form.description,
                schema: LabelSchema::catalog_safety(),
            },
            Some(auth.user.id),
        )
        .await?;
    Ok(Redirect::to(&format!("/p/{}/settings", project.slug)))
}

async fn project_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::ViewProject>,
) -> AppResult<Html<String>> {
    let (counts, total, annotations, jobs) = if role.allows(Permission::BrowseItems) {
        let counts = state.store.item_state_counts(project.id).await?;
        let total: i64 = counts.iter().map(|(_, n)| n).sum();
        let annotations = state.store.count_annotations(project.id).await?;
        let jobs = state.store.project_jobs(project.id, 5).await?;
        (counts, total, annotations, jobs)
    } else {
        (Vec::new(), 0, 0, Vec::new())
    };
    let guideline = match project.current_guideline_version_id {
        Some(id) => Some(state.store.guideline_by_id(id).await?),
        None => None,
    };
    let schema = state.store.current_schema(project.id).await?;
    render(
        &state,
        "project.html",
        context! {
            project, can => capabilities(role), counts, total, annotations, jobs, guideline, schema,
            ..base(&auth)
        },
    )
}

async fn settings_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::EditSettings>,
    Query(list): Query<ListQuery>,
) -> AppResult<Html<String>> {
    settings_view(&state, &auth, project, role, None, None, list).await
}

async fn settings_view(
    state: &AppState,
    auth: &Auth,
    project: Project,
    role: Role,
    error: Option<String>,
    schema_text: Option<String>,
    list: ListQuery,
) -> AppResult<Html<String>> {
    let members = state
        .store
        .members_page(project.id, &list.request())
        .await?;
    let pager = list.pager(&members);
    let members = members.rows;
    let versions = state.store.schema_versions(project.id).await?;
    let editing = versions.first().cloned();
    let schema_text = schema_text.unwrap_or_else(|| {
        editing
            .as_ref()
            .and_then(|v| serde_json::to_string_pretty(&v.definition).ok())
            .unwrap_or_default()
    });
    let settings_text = serde_json::to_string_pretty(&project.settings).unwrap_or_default();
    let roles: Vec<Value> = Role::ALL
        .iter()
        .map(|r| context! { value => r.as_str(), label => r.label() })
        .collect();
    let audit = state.store.audit_log(Some(project.id), 20).await?;
    render(
        state,
        "settings.html",
        context! {
            project, can => capabilities(role), members, versions, schema_text, settings_text, roles,
            error, audit, pager, ..base(auth)
        },
    )
}

#[derive(Deserialize)]
struct SettingsForm {
    name: String,
    #[serde(default)]
    description: String,
    settings: String,
}

async fn save_settings(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::EditSettings>,
    Path(slug): Path<String>,
    Form(form): Form<SettingsForm>,
) -> AppResult<Response> {
    let settings = match serde_json::from_str(&form.settings) {
        Ok(value) => value,
        Err(e) => {
            let error = format!("Settings are not valid JSON: {e}");
            return Ok(settings_view(
                &state,
                &auth,
                project,
                role,
                Some(error),
                None,
                ListQuery::default(),
            )
            .await?
            .into_response());
        }
    };
    match state
        .store
        .update_project(
            project.id,
            &form.name,
            &form.description,
            settings,
            Some(auth.user.id),
        )
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/p/{slug}/settings")).into_response()),
        Err(e) => {
            let error = AppError::from(e).message;
            Ok(settings_view(
                &state,
                &auth,
                project,
                role,
                Some(error),
                None,
                ListQuery::default(),
            )
            .await?
            .into_response())
        }
    }
}

#[derive(Deserialize)]
struct SchemaForm {
    definition: String,
    #[serde(default)]
    change_note: String,
    action: String,
}

async fn save_schema(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::EditSchema>,
    Path(slug): Path<String>,
    Form(form): Form<SchemaForm>,
) -> AppResult<Response> {
    let schema: LabelSchema = match serde_json::from_str(&form.definition) {
        Ok(schema) => schema,
        Err(e) => {
            let error = format!("The schema is not valid: {e}");
            let view = settings_view(
                &state,
                &auth,
                project,
                role,
                Some(error),
                Some(form.definition),
                ListQuery::default(),
            );
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, view.await?).into_response());
        }
    };
    let mut result = state
        .store
        .save_schema_draft(project.id, &schema, &form.change_note, Some(auth.user.id))
        .await;
    if result.is_ok() && form.action == "publish" {
        result = state
            .store
            .publish_schema(project.id, Some(&form.change_note), Some(auth.user.id))
            .await;
    }
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/p/{slug}/settings#schema")).into_response()),
        Err(e) => {
            let error = AppError::from(e).message;
            let view = settings_view(
                &state,
                &auth,
                project,
                role,
                Some(error),
                Some(form.definition),
                ListQuery::default(),
            );
            Ok((StatusCode::UNPROCESSABLE_ENTITY, view.await?).into_response())
        }
    }
}

#[derive(Deserialize)]
struct MemberForm {
    username: String,
    #[serde(default)]
    role: String,
}

async fn set_member(
    State(state): State<AppState>,
    ProjectPage { auth, project, .. }: ProjectPage<need::ManageMembers>,
    Path(slug): Path<String>,
    Form(form): Form<MemberForm>,
) -> AppResult<Redirect> {
    let role = Role::from_input(&form.role).map_err(AppError::bad_request)?;
    state
        .store
        .set_member(project.id, form.username.trim(), role, Some(auth.user.id))
        .await?;
    Ok(Redirect::to(&format!("/p/{slug}/settings#members")))
}

async fn remove_member(
    State(state): State<AppState>,
    ProjectPage { auth, project, .. }: ProjectPage<need::ManageMembers>,
    Path(slug): Path<String>,
    Form(form): Form<MemberForm>,
) -> AppResult<Redirect> {
    state
        .store
        .remove_member(project.id, form.username.trim(), Some(auth.user.id))
        .await?;
    Ok(Redirect::to(&format!("/p/{slug}/settings#members")))
}

async fn job_fragment(
    State(state): State<AppState>,
    ProjectPage { project, .. }: ProjectPage<need::ImportItems>,
    Path((_, id)): Path<(String, i64)>,
) -> AppResult<Html<String>> {
    let job = state.store.job(id).await?;
    if job.project_id != Some(project.id) {
        return Err(AppError::not_found(format!("job {id} not found")));
    }
    render(&state, "job.html", context! { project, job })
}
