//! Server-rendered pages. Every handler authenticates with the session cookie
//! ([`PageAuth`]), checks the project role, and renders a template.

use crate::AppState;
use crate::auth::{Auth, PageAuth, project_access, require_admin, safe_next, session_cookie};
use crate::error::{AppError, AppResult};
use axum::Router;
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use concord_store::{
    ExampleScope, GuidelineExample, ItemFilter, ItemState, LabelSchema, LoginCheck, NewProject,
    NewUser, Permission, Project, Role, item_types,
};
use minijinja::{Value, context};
use serde::Deserialize;
use std::net::SocketAddr;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/", get(projects_page))
        .route("/projects", post(create_project))
        .route("/p/{slug}", get(project_page))
        .route("/p/{slug}/settings", get(settings_page).post(save_settings))
        .route("/p/{slug}/schema", post(save_schema))
        .route("/p/{slug}/members", post(set_member))
        .route("/p/{slug}/members/remove", post(remove_member))
        .route(
            "/p/{slug}/guidelines",
            get(guidelines_page).post(save_guidelines),
        )
        .route("/p/{slug}/guidelines/edit", get(guideline_editor))
        .route(
            "/p/{slug}/guidelines/v/{version}",
            get(guideline_version_page),
        )
        .route("/p/{slug}/guidelines/diff", get(guideline_diff))
        .route("/p/{slug}/items", get(items_page))
        .route("/p/{slug}/items/{id}", get(item_page))
        .route("/p/{slug}/import", get(import_page))
        .route("/p/{slug}/jobs/{id}", get(job_fragment))
        .route("/account", get(account_page))
        .route("/account/tokens", post(create_token))
        .route("/account/tokens/{id}/revoke", post(revoke_token))
        .route("/account/password", post(change_password))
        .route("/admin/users", get(users_page).post(create_user))
        .merge(crate::work_pages::routes())
        .merge(crate::qa_pages::routes())
}

pub(crate) fn render(state: &AppState, name: &str, ctx: Value) -> AppResult<Html<String>> {
    Ok(Html(state.templates.get_template(name)?.render(ctx)?))
}

/// The context every signed-in page has.
pub(crate) fn base(auth: &Auth) -> Value {
    context! { user => auth.user, csrf => auth.csrf }
}

pub(crate) fn capabilities(role: Role) -> Value {
    context! {
        role => role.as_str(),
        role_label => role.label(),
        browse => role.allows(Permission::BrowseItems),
        read_annotations => role.allows(Permission::ReadAnnotations),
        edit_guidelines => role.allows(Permission::EditGuidelines),
        edit_schema => role.allows(Permission::EditSchema),
        manage_members => role.allows(Permission::ManageMembers),
        import => role.allows(Permission::ImportItems),
        settings => role.allows(Permission::EditSettings),
        annotate => role.allows(Permission::Annotate),
        manage_annotators => role.allows(Permission::ManageAnnotators),
        adjudicate => role.allows(Permission::Adjudicate),
        create_releases => role.allows(Permission::CreateReleases),
    }
}

pub fn error_page(state: &AppState, status: StatusCode, message: &str) -> Response {
    let ctx = context! { status => status.as_u16(), reason => status.canonical_reason(), message };
    match state
        .templates
        .get_template("error.html")
        .and_then(|t| t.render(ctx))
    {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "error page failed to render");
            (status, message.to_owned()).into_response()
        }
    }
}

// ---------------------------------------------------------------- login

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn login_page(
    State(state): State<AppState>,
    Query(q): Query<NextQuery>,
) -> AppResult<Html<String>> {
    render(
        &state,
        "login.html",
        context! { next => safe_next(q.next.as_deref()) },
    )
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<LoginForm>,
) -> AppResult<Response> {
    let next = safe_next(form.next.as_deref());
    let outcome = state
        .store
        .login(form.username.trim(), &form.password, &peer.ip().to_string())
        .await?;
    let retry = |status: StatusCode, error: &str| -> AppResult<Response> {
        let html = render(
            &state,
            "login.html",
            context! { next, error, username => form.username.trim() },
        )?;
        Ok((status, html).into_response())
    };
    match outcome {
        LoginCheck::Ok(user) => {
            let (token, _) = state
                .store
                .create_session(user.id, state.config.session_ttl_ms)
                .await?;
            let cookie = session_cookie(
                &token,
                state.config.session_ttl_ms / 1000,
                state.config.secure_cookies,
            );
            Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response())
        }
        LoginCheck::BadCredentials => {
            retry(StatusCode::UNAUTHORIZED, "Wrong user name or password.")
        }
        LoginCheck::RateLimited => retry(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed attempts. Wait 15 minutes and try again.",
        ),
    }
}

async fn logout(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> AppResult<Response> {
    if let Some(token) = crate::auth::cookie_value(&headers, crate::auth::SESSION_COOKIE) {
        state.store.delete_session(token).await?;
    }
    let cookie = session_cookie("", 0, state.config.secure_cookies);
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response())
}

// ---------------------------------------------------------------- projects

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
    PageAuth(auth): PageAuth,
    Path(slug): Path<String>,
) -> AppResult<Html<String>> {
    let (project, role) =
        project_access(&state, &auth.user, &slug, Permission::ViewProject).await?;
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

// ---------------------------------------------------------------- settings

async fn settings_page(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
    Path(slug): Path<String>,
) -> AppResult<Html<String>> {
    let (project, role) =
        project_access(&state, &auth.user, &slug, Permission::EditSettings).await?;
    settings_view(&state, &auth, project, role, None, None).await
}

async fn settings_view(
    state: &AppState,
    auth: &Auth,
    project: Project,
    role: Role,
    error: Option<String>,
    schema_text: Option<String>,
) -> AppResult<Html<String>> {
    let members = state.store.members(project.id).await?;
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
            error, audit, ..base(auth)
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
    PageAuth(auth): PageAuth,
    Path(slug): Path<String>,
    Form(form): Form<SettingsForm>,
) -> AppResult<Response> {
    let (project, role) =
        project_access(&state, &auth.user, &slug, Permission::EditSettings).await?;
    let settings = match serde_json::from_str(&form.settings) {
        Ok(value) => value,
        Err(e) => {
            let error = format!("Settings are not valid JSON: {e}");
            return Ok(
                settings_view(&state, &auth, project, role, Some(error), None)
                    .await?
                    .into_response(),
            );
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
            Ok(
                settings_view(&state, &auth, project, role, Some(error), None)
                    .await?
                    .into_response(),
            )
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
    PageAuth(auth): PageAuth,
    Path(slug): Path<String>,
    Form(form): Form<SchemaForm>,
) -> AppResult<Response> {
    let (project, role) = project_access(&state, &auth.user, &slug, Permission::EditSchema).await?;
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
    PageAuth(auth): PageAuth,
    Path(slug): Path<String>,
    Form(form): Form<MemberForm>,
) -> AppResult<Redirect> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::ManageMembers).await?;
    let role = Role::from_input(&form.role).map_err(AppError::bad_request)?;
    state
        .store
        .set_member(project.id, form.username.trim(), role, Some(auth.user.id))
        .await?;
    Ok(Redirect::to(&format!("/p/{slug}/settings#members")))
}

async fn remove_member(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
    Path(slug): Path<String>,
    Form(form): Form<MemberForm>,
) -> AppResult<Redirect> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::ManageMembers).await?;
    state
        .store
        .remove_member(project.id, form.username.trim(), Some(auth.user.id))
        .await?;
    Ok(Redirect::to(&format!("/p/{slug}/settings#members")))
}

// ---------------------------------------------------------------- guidelines

pub(crate) fn examples_by_category(examples: &[GuidelineExample]) -> Vec<Value> {
    let mut categories: Vec<&str> = examples.iter().map(|e| e.category.as_str()).collect();
    categories.sort_unstable();
    categories.dedup();
    categories
        .into_iter()
        .map(|category| {
            let of = |scope| {
                examples
                    .iter()
                    .filter(|e| e.category == category && e.scope == scope)
                    .map(|e| e.text.clone())
                    .collect::<Vec<_>>()
            };
            context! { category, in_scope => of(ExampleScope::InScope), out_of_scope => of(ExampleScope::OutOfScope) }
        })
        .collect()
}

async fn guidelines_page(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
    Path(slug): Path<String>,
) -> AppResult<Html<String>> {
    let (project, role) =
        project_access(&state, &auth.user, &slug, Permission::ViewProject).await?;
    let versions = state.store.guideline_versions(project.id).await?;
    let current = versions
        .iter()
        .find(|v| Some(v.id) == project.current_guideline_version_id)
        .cloned();
    let examples = current
        .as_ref()
        .map(|c| examples_by_category(&c.examples))
        .unwrap_or_default();
    render(
        &state,
        "guidelines.html",
        context! { project, can => capabilities(role), versions, shown => current, examples, is_current => true, ..base(&auth) },
    )
}

async fn guideline_version_page(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
    Path((slug, version)): Path<(String, i64)>,
) -> AppResult<Html<String>> {
    let (project, role) =
        project_access(&state, &auth.user, &slug, Permission::ViewProject).await?;
    let versions = state.store.guideline_versions(project.id).await?;
    let shown = versions
        .iter()
        .find(|v| v.version == version)
        .cloned()
        .ok_or_else(|| AppError::not_found(format!("guideline version {version} not found")))?;
    let examples = examples_by_category(&shown.examples);
    let is_current = Some(shown.id) == project.current_guideline_version_id;
    render(
        &state,
        "guidelines.html",
        context! { project, can => capabilities(role), versions, shown, examples, is_current, ..base(&auth) },
    )
}

async fn guideline_editor(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
    Path(slug): Path<String>,
) -> AppResult<Html<String>> {
    let (project, role) =
        project_access(&state, &auth.user, &slug, Permission::EditGuidelines).await?;
    let versions = state.store.guideline_versions(project.id).await?;
    // Edit the draft if there is one, else start from the newest version.
    let start = versions.first().cloned();
    let is_draft = start
        .as_ref()
        .is_some_and(|v| v.status == concord_store::VersionStatus::Draft);
    let body = start.as_ref().map(|v| v.body.clone()).unwrap_or_default();
    let examples = start
        .as_ref()
        .map(|v| v.examples.clone())
        .unwrap_or_default();
    let change_note = if is_draft {
        start.as_ref().map(|v| v.change_note.clone())
    } else {
        None
    };
    editor_view(
        &state,
        &auth,
        project,
        role,
        body,
        examples,
        change_note.unwrap_or_default(),
        None,
    )
    .await
    .map(|(_, html)| html)
}

#[allow(clippy::too_many_arguments)]
async fn editor_view(
    state: &AppState,
    auth: &Auth,
    project: Project,
    role: Role,
    body: String,
    examples: Vec<GuidelineExample>,
    change_note: String,
    error: Option<String>,
) -> AppResult<(StatusCode, Html<String>)> {
    let schema = state.store.current_schema(project.id).await?;
    let categories: Vec<Value> = schema
        .definition
        .questions
        .iter()
        .flat_map(|q| q.options.iter().map(move |o| (q, o)))
        .filter(|(q, _)| q.kind == concord_store::QuestionKind::Multi || q.key == "category")
        .map(|(_, o)| context! { value => o.value, label => o.label })
        .collect();
    let versions = state.store.guideline_versions(project.id).await?;
    let draft = versions
        .iter()
        .find(|v| v.status == concord_store::VersionStatus::Draft)
        .cloned();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let html = render(
        state,
        "guideline_edit.html",
        context! {
            project, can => capabilities(role), body, examples, change_note, error, categories, draft,
            ..base(auth)
        },
    )?;
    Ok((status, html))
}

/// The editor posts repeated `example_category` / `example_scope` / `example_text` fields.
async fn save_guidelines(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
    Path(slug): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let (project, role) =
        project_access(&state, &auth.user, &slug, Permission::EditGuidelines).await?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let all = |name: &str| {
        fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    // Browsers submit a textarea with CRLF line ends; stored text (and so the diff) uses LF.
    let body = field("body").replace("\r\n", "\n");
    let change_note = field("change_note");
    let action = field("action");
    let mut examples = Vec::new();
    for ((category, scope), text) in all("example_category")
        .into_iter()
        .zip(all("example_scope"))
        .zip(all("example_text"))
    {
        if category.trim().is_empty() && text.trim().is_empty() {
            continue; // an empty row of the editor
        }
        let scope = if scope == "out_of_scope" {
            ExampleScope::OutOfScope
        } else {
            ExampleScope::InScope
        };
        examples.push(GuidelineExample {
            category: category.trim().to_owned(),
            scope,
            text: text.trim().to_owned(),
        });
    }
    let mut result = state
        .store
        .save_guideline_draft(
            project.id,
            &body,
            &examples,
            &change_note,
            Some(auth.user.id),
        )
        .await;
    if result.is_ok() && action == "publish" {
        result = state
            .store
            .publish_guideline(project.id, Some(&change_note), Some(auth.user.id))
            .await;
    }
    match result {
        Ok(version) if version.status == concord_store::VersionStatus::Published => Ok(
            Redirect::to(&format!("/p/{slug}/guidelines/v/{}", version.version)).into_response(),
        ),
        Ok(_) => Ok(Redirect::to(&format!("/p/{slug}/guidelines/edit?saved=1")).into_response()),
        Err(e) => {
            let error = AppError::from(e).message;
            let view = editor_view(
                &state,
                &auth,
                project,
                role,
                body,
                examples,
                change_note,
                Some(error),
            );
            Ok(view.await?.into_response())
        }
    }
}

#[derive(Deserialize)]
struct DiffQuery {
    from: i64,
    to: i64,
}

fn diff_lines(old: &str, new: &str) -> Vec<Value> {
    let diff = similar::TextDiff::from_lines(old, new);
    diff.iter_all_changes()
        .map(|change| {
            let tag = match change.tag() {
                similar::ChangeTag::Equal => "same",
                similar::ChangeTag::Delete => "removed",
                similar::ChangeTag::Insert => "added",
            };
            context! { tag, text => change.value().trim_end_matches('\n') }
        })
        .collect()
}

fn examples_text(examples: &[GuidelineExample]) -> String {
    let mut lines: Vec<String> = examples
        .iter()
        .map(|e| {
            let scope = match e.scope {
                ExampleScope::InScope => "in scope",
                ExampleScope::OutOfScope => "out of scope",
            };
            format!("{} ({scope}): {}\n", e.category, e.text)
        })
        .collect();
    lines.sort();
    lines.concat()
}

async fn guideline_diff(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
    Path(slug): Path<String>,
    Query(q): Query<DiffQuery>,
) -> AppResult<Html<String>> {
    let (project, role) =
        project_access(&state, &auth.user, &slug, Permission::ViewProject).await?;
    let from = state.store.guideline_version(project.id, q.from).await?;
    let to = state.store.guideline_version(project.id, q.to).await?;
    let body = diff_lines(&from.body, &to.body);
    let examples = diff_lines(&examples_text(&from.examples), &examples_text(&to.examples));
    let changed = body.iter().chain(examples.iter()).any(|l| {
        l.get_attr("tag")
            .ok()
            .and_then(|t| t.as_str().map(|s| s != "same"))
            .unwrap_or(false)
    });
    let versions = state.store.guideline_versions(project.id).await?;
    render(
        &state,
        "guideline_diff.html",
        context! { project, can => capabilities(role), from, to, body, examples, changed, versions, ..base(&auth) },
    )
}

// ---------------------------------------------------------------- items

#[derive(Deserialize, Default)]
pub struct ItemQuery {
    #[serde(rename = "type")]
    pub item_type: Option<String>,
    pub state: Option<String>,
    pub q: Option<String>,
    pub gold: Option<String>,
    pub min_priority: Option<String>,
    pub after: Option<i64>,
    pub limit: Option<i64>,
}

impl ItemQuery {
    pub fn filter(&self) -> AppResult<ItemFilter> {
        let nonempty = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let item_type = nonempty(&self.item_type);
        if let Some(t) = &item_type
            && !item_types().contains(&t.as_str())
        {
            return Err(AppError::bad_request(format!("unknown item type {t:?}")));
        }
        let state = nonempty(&self.state);
        if let Some(s) = &state
            && ItemState::parse(s).is_none()
        {
            return Err(AppError::bad_request(format!("unknown item state {s:?}")));
        }
        let gold = match nonempty(&self.gold).as_deref() {
            None => None,
            Some("yes" | "true" | "1") => Some(true),
            Some("no" | "false" | "0") => Some(false),
            Some(other) => {
                return Err(AppError::bad_request(format!(
                    "gold must be yes or no, not {other:?}"
                )));
            }
        };
        let min_priority = match nonempty(&self.min_priority) {
            None => None,
            Some(p) => Some(p.parse().map_err(|_| {
                AppError::bad_request(format!("min_priority {p:?} is not a number"))
            })?),
        };
        Ok(ItemFilter {
            item_type,
            state,
            min_priority,
            gold,
            text: nonempty(&self.q),
            after: self.after,
            limit: self.limit.unwrap_or(50),
        })
    }
}

async fn items_page(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
    Path(slug): Path<String>,
    Query(q): Query<ItemQuery>,
) -> AppResult<Html<String>> {
    let (project, role) =
        project_access(&state, &auth.user, &slug, Permission::BrowseItems).await?;
    let filter = q.filter()?;
    let page = state.store.items_page(project.id, &filter).await?;
    // The query string for "next page" keeps the filters.
    let mut keep = Vec::new();
    for (key, value) in [
        ("type", &filter.item_type),
        ("state", &filter.state),
        ("q", &filter.text),
        ("gold", &q.gold),
        ("min_priority", &q.min_priority),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            keep.push(format!("{key}={}", crate::auth::urlencode(v)));
        }
    }
    let filters_qs = keep.join("&");
    let states: Vec<&str> = ItemState::ALL.iter().map(|s| s.as_str()).collect();
    render(
        &state,
        "items.html",
        context! {
            project, can => capabilities(role), page, filters_qs, types => item_types(), states,
            f => context! { item_type => filter.item_type, state => filter.state, q => filter.text, gold => q.gold, min_priority => q.min_priority },
            first_page => filter.after.is_none(),
            ..base(&auth)
        },
    )
}

async fn item_page(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
    Path((slug, id)): Path<(String, i64)>,
) -> AppResult<Html<String>> {
    let (project, role) =
        project_access(&state, &auth.user, &slug, Permission::BrowseItems).await?;
    let item = state.store.item(project.id, id).await?;
    let (annotations, consensus, adjudications, escalations) =
        if role.allows(Permission::ReadAnnotations) {
            (
                state.store.item_annotations(item.id).await?,
                state.store.item_consensus(item.id).await?,
                state.store.item_adjudications(item.id).await?,
                state.store.item_escalations(item.id, auth.user.id).await?,
            )
        } else {
            Default::default()
        };
    render(
        &state,
        "item.html",
        context! {
            project, can => capabilities(role), item, annotations, consensus, adjudications,
            escalations, ..base(&auth)
        },
    )
}

// ---------------------------------------------------------------- import and jobs

async fn import_page(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
    Path(slug): Path<String>,
) -> AppResult<Html<String>> {
    let (project, role) =
        project_access(&state, &auth.user, &slug, Permission::ImportItems).await?;
    let jobs = state.store.project_jobs(project.id, 10).await?;
    render(
        &state,
        "import.html",
        context! { project, can => capabilities(role), jobs, ..base(&auth) },
    )
}

async fn job_fragment(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
    Path((slug, id)): Path<(String, i64)>,
) -> AppResult<Html<String>> {
    let (project, _) = project_access(&state, &auth.user, &slug, Permission::ImportItems).await?;
    let job = state.store.job(id).await?;
    if job.project_id != Some(project.id) {
        return Err(AppError::not_found(format!("job {id} not found")));
    }
    render(&state, "job.html", context! { project, job })
}

// ---------------------------------------------------------------- account and users

async fn account_page(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
) -> AppResult<Html<String>> {
    account_view(&state, &auth, None, None, None).await
}

async fn account_view(
    state: &AppState,
    auth: &Auth,
    new_token: Option<String>,
    error: Option<String>,
    notice: Option<&str>,
) -> AppResult<Html<String>> {
    let tokens = state.store.list_api_tokens(auth.user.id).await?;
    render(
        state,
        "account.html",
        context! { tokens, new_token, error, notice, ..base(auth) },
    )
}

#[derive(Deserialize)]
struct TokenForm {
    name: String,
}

async fn create_token(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
    Form(form): Form<TokenForm>,
) -> AppResult<Html<String>> {
    match state.store.create_api_token(auth.user.id, &form.name).await {
        Ok((secret, _)) => account_view(&state, &auth, Some(secret), None, None).await,
        Err(e) => account_view(&state, &auth, None, Some(AppError::from(e).message), None).await,
    }
}

async fn revoke_token(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
    Path(id): Path<i64>,
) -> AppResult<Redirect> {
    state.store.revoke_api_token(auth.user.id, id).await?;
    Ok(Redirect::to("/account"))
}

#[derive(Deserialize)]
struct PasswordForm {
    current: String,
    new: String,
}

async fn change_password(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<PasswordForm>,
) -> AppResult<Response> {
    match state
        .store
        .login(&auth.user.username, &form.current, &peer.ip().to_string())
        .await?
    {
        LoginCheck::Ok(_) => {}
        _ => {
            let view = account_view(
                &state,
                &auth,
                None,
                Some("The current password is wrong.".into()),
                None,
            );
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, view.await?).into_response());
        }
    }
    if let Err(e) = state
        .store
        .set_password(&auth.user.username, form.new, Some(auth.user.id))
        .await
    {
        let view = account_view(&state, &auth, None, Some(AppError::from(e).message), None);
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, view.await?).into_response());
    }
    // Changing the password ended every session, this one included.
    Ok(Redirect::to("/login").into_response())
}

async fn users_page(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
) -> AppResult<Html<String>> {
    require_admin(&auth.user)?;
    users_view(&state, &auth, None, None).await
}

async fn users_view(
    state: &AppState,
    auth: &Auth,
    error: Option<String>,
    notice: Option<String>,
) -> AppResult<Html<String>> {
    let users = state.store.list_users().await?;
    render(
        state,
        "users.html",
        context! { users, error, notice, ..base(auth) },
    )
}

#[derive(Deserialize)]
struct NewUserForm {
    username: String,
    #[serde(default)]
    display_name: String,
    password: String,
    #[serde(default)]
    admin: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

async fn create_user(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
    Form(form): Form<NewUserForm>,
) -> AppResult<Response> {
    require_admin(&auth.user)?;
    let new = NewUser {
        username: form.username.trim().to_owned(),
        display_name: Some(form.display_name),
        password: Some(form.password),
        is_admin: form.admin.is_some(),
        kind: form.kind.unwrap_or_else(|| "human".into()),
    };
    match state.store.create_user(new, Some(auth.user.id)).await {
        Ok(user) => Ok(users_view(
            &state,
            &auth,
            None,
            Some(format!("Created {}.", user.username)),
        )
        .await?
        .into_response()),
        Err(e) => {
            let view = users_view(&state, &auth, Some(AppError::from(e).message), None);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, view.await?).into_response())
        }
    }
}
