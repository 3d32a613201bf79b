//! The project's *Automated annotators* page: its models with what they have done (labels,
//! failures, tokens and cost, the last run's progress, recent failures with the raw text),
//! and the forms to add one, enable or disable it and start a run. For whoever may change
//! the project's settings, like the API and `concord model`.

use super::{add_model, start_run};
use crate::AppState;
use crate::access::{ProjectPage, need};
use crate::auth::Auth;
use crate::error::AppResult;
use crate::views::{ListQuery, base, capabilities, render};
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use concord_store::{ModelKind, NewModelAnnotator, Project, Role};
use minijinja::context;
use serde::Deserialize;

/// Failures shown per model.
const RECENT_FAILURES: i64 = 5;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/p/{slug}/models", get(models_page).post(add_model_form))
        .route("/p/{slug}/models/{model}/enable", post(enable))
        .route("/p/{slug}/models/{model}/disable", post(disable))
        .route("/p/{slug}/models/{model}/run", post(run))
}

async fn models_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::EditSettings>,
    Query(list): Query<ListQuery>,
) -> AppResult<Html<String>> {
    models_view(&state, &auth, project, role, list, None).await
}

/// The page, with the add form's error when there is one.
async fn models_view(
    state: &AppState,
    auth: &Auth,
    project: Project,
    role: Role,
    list: ListQuery,
    error: Option<String>,
) -> AppResult<Html<String>> {
    let found: Vec<_> = state
        .store
        .model_annotators(project.id)
        .await?
        .into_iter()
        .filter(|m| list.matches(&[&m.name, &m.username, m.kind.as_str(), &m.model]))
        .collect();
    let (shown, pager) = list.page(found);
    let mut models = Vec::new();
    for model in shown {
        let totals = state.store.model_totals(model.id).await?;
        let last_run = state
            .store
            .model_runs(model.id, 1)
            .await?
            .into_iter()
            .next();
        let failures = state
            .store
            .recent_model_failures(model.id, RECENT_FAILURES)
            .await?;
        models.push(context! { model, totals, last_run, failures });
    }
    render(
        state,
        "models.html",
        context! { project, can => capabilities(role), models, pager, error, ..base(auth) },
    )
}

/// The add form, as typed: numbers are parsed here so a bad one is named.
#[derive(Deserialize)]
struct ModelForm {
    name: String,
    kind: String,
    #[serde(default)]
    base_url: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    api_key_env: String,
    #[serde(default)]
    temperature: String,
    #[serde(default)]
    max_concurrency: String,
    #[serde(default)]
    rate_per_minute: String,
    #[serde(default)]
    timeout_seconds: String,
    #[serde(default)]
    prompt: String,
    #[serde(default)]
    rules: String,
    #[serde(default)]
    price_in: String,
    #[serde(default)]
    price_out: String,
}

/// A number field: empty is `None`; anything else must parse, or the error names the field.
fn number<T: std::str::FromStr>(field: &str, text: &str) -> Result<Option<T>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("{field}: {text:?} is not a number"))
}

impl ModelForm {
    /// The configuration the form describes, with the CLI's defaults for empty fields.
    fn configuration(&self) -> Result<NewModelAnnotator, String> {
        let kind = match self.kind.as_str() {
            "openai" => ModelKind::OpenAi,
            "rules" => ModelKind::Rules,
            other => return Err(format!("kind {other:?} must be openai or rules")),
        };
        let mut new = NewModelAnnotator::new(self.name.trim(), kind);
        new.base_url = self.base_url.trim().to_owned();
        new.model = self.model.trim().to_owned();
        new.api_key_env = self.api_key_env.trim().to_owned();
        new.temperature = number("temperature", &self.temperature)?.unwrap_or(new.temperature);
        new.max_concurrency =
            number("max concurrency", &self.max_concurrency)?.unwrap_or(new.max_concurrency);
        new.rate_per_minute = number("rate per minute", &self.rate_per_minute)?;
        if let Some(seconds) = number::<f64>("timeout", &self.timeout_seconds)? {
            new.timeout_ms = (seconds * 1000.0).round() as i64;
        }
        new.prompt_template = self.prompt.clone();
        new.rules = self.rules.clone();
        new.price_in_per_1k = number("price in", &self.price_in)?.unwrap_or(0.0);
        new.price_out_per_1k = number("price out", &self.price_out)?.unwrap_or(0.0);
        Ok(new)
    }
}

async fn add_model_form(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::EditSettings>,
    Form(form): Form<ModelForm>,
) -> AppResult<Response> {
    let added = match form.configuration() {
        Ok(new) => add_model(&state, &project, new, auth.user.id)
            .await
            .map_err(|e| e.message),
        Err(message) => Err(message),
    };
    match added {
        Ok(model) => {
            let to = format!("/p/{}/models#model-{}", project.slug, model.name);
            Ok(Redirect::to(&to).into_response())
        }
        Err(message) => {
            let view = models_view(
                &state,
                &auth,
                project,
                role,
                ListQuery::default(),
                Some(message),
            )
            .await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, view).into_response())
        }
    }
}

async fn enable(
    State(state): State<AppState>,
    page: ProjectPage<need::EditSettings>,
    Path((_, name)): Path<(String, String)>,
) -> AppResult<Redirect> {
    set_enabled(&state, page, &name, true).await
}

async fn disable(
    State(state): State<AppState>,
    page: ProjectPage<need::EditSettings>,
    Path((_, name)): Path<(String, String)>,
) -> AppResult<Redirect> {
    set_enabled(&state, page, &name, false).await
}

async fn set_enabled(
    state: &AppState,
    ProjectPage { auth, project, .. }: ProjectPage<need::EditSettings>,
    name: &str,
    enabled: bool,
) -> AppResult<Redirect> {
    let model = state
        .store
        .set_model_enabled(project.id, name, enabled, Some(auth.user.id))
        .await?;
    Ok(Redirect::to(&format!(
        "/p/{}/models#model-{}",
        project.slug, model.name
    )))
}

async fn run(
    State(state): State<AppState>,
    ProjectPage { auth, project, .. }: ProjectPage<need::EditSettings>,
    Path((_, name)): Path<(String, String)>,
) -> AppResult<Redirect> {
    start_run(&state, &project, &name, auth.user.id).await?;
    Ok(Redirect::to(&format!(
        "/p/{}/models#model-{name}",
        project.slug
    )))
}
