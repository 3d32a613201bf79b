//! Guidelines: page routes.

use super::examples_by_category;
use crate::AppState;
use crate::access::{ProjectPage, need};
use crate::auth::Auth;
use crate::error::{AppError, AppResult};
use crate::views::{base, capabilities, render};
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use concord_store::{ExampleScope, GuidelineExample, Project, Role};
use minijinja::{Value, context};
use serde::Deserialize;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
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
}

async fn guidelines_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::ViewProject>,
) -> AppResult<Html<String>> {
    let versions = state.store.guideline_versions(project.id).await?;
    let schema = state.store.current_schema(project.id).await?.definition;
    let current = versions
        .iter()
        .find(|v| Some(v.id) == project.current_guideline_version_id)
        .cloned();
    let examples = current
        .as_ref()
        .map(|c| examples_by_category(&c.examples, &schema))
        .unwrap_or_default();
    render(
        &state,
        "guidelines.html",
        context! { project, can => capabilities(role), versions, shown => current, examples, is_current => true, ..base(&auth) },
    )
}

async fn guideline_version_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::ViewProject>,
    Path((_, version)): Path<(String, i64)>,
) -> AppResult<Html<String>> {
    let versions = state.store.guideline_versions(project.id).await?;
    let shown = versions
        .iter()
        .find(|v| v.version == version)
        .cloned()
        .ok_or_else(|| AppError::not_found(format!("guideline version {version} not found")))?;
    let schema = state.store.current_schema(project.id).await?.definition;
    let examples = examples_by_category(&shown.examples, &schema);
    let is_current = Some(shown.id) == project.current_guideline_version_id;
    render(
        &state,
        "guidelines.html",
        context! { project, can => capabilities(role), versions, shown, examples, is_current, ..base(&auth) },
    )
}

async fn guideline_editor(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::EditGuidelines>,
    Query(shown): Query<EditorQuery>,
) -> AppResult<Html<String>> {
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
        shown.saved.is_some(),
    )
    .await
    .map(|(_, html)| html)
}

/// `?saved=1`: the editor was reached right after saving the draft.
#[derive(Deserialize)]
struct EditorQuery {
    saved: Option<String>,
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
    just_saved: bool,
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
    let saved_at = match &draft {
        Some(d) => state.store.guideline_draft_saved_at(d.id).await?,
        None => None,
    };
    let just_saved = just_saved && draft.is_some() && error.is_none();
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
            saved_at, just_saved, ..base(auth)
        },
    )?;
    Ok((status, html))
}

/// What the guideline editor posts: repeated `example_category` / `example_scope` /
/// `example_text` fields, one of each per example row.
struct EditorForm {
    body: String,
    change_note: String,
    action: String,
    examples: Vec<GuidelineExample>,
}

impl EditorForm {
    fn parse(fields: &[(String, String)]) -> EditorForm {
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
        EditorForm {
            // Browsers submit a textarea with CRLF line ends; stored text (and so the diff)
            // uses LF.
            body: field("body").replace("\r\n", "\n"),
            change_note: field("change_note"),
            action: field("action"),
            examples,
        }
    }
}

/// The editor posts repeated `example_category` / `example_scope` / `example_text` fields.
async fn save_guidelines(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::EditGuidelines>,
    Path(slug): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let form = EditorForm::parse(&fields);
    let (body, change_note, action, examples) =
        (form.body, form.change_note, form.action, form.examples);
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
        if result.is_ok() {
            crate::calibration::after_guideline_published(&state, &slug, auth.user.id).await;
        }
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
                false,
            );
            Ok(view.await?.into_response())
        }
    }
}

/// Both versions to compare; without them the page offers a chooser.
#[derive(Deserialize)]
struct DiffQuery {
    from: Option<i64>,
    to: Option<i64>,
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
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::ViewProject>,
    Query(q): Query<DiffQuery>,
) -> AppResult<Html<String>> {
    let versions = state.store.guideline_versions(project.id).await?;
    let (Some(from), Some(to)) = (q.from, q.to) else {
        // The newest two versions are the likely question: preselect them.
        let suggest_to = versions.first().map(|v| v.version);
        let suggest_from = versions.get(1).map(|v| v.version);
        return render(
            &state,
            "guideline_diff.html",
            context! { project, can => capabilities(role), versions, choose => true, suggest_from, suggest_to, ..base(&auth) },
        );
    };
    let from = state.store.guideline_version(project.id, from).await?;
    let to = state.store.guideline_version(project.id, to).await?;
    let body = diff_lines(&from.body, &to.body);
    let examples = diff_lines(&examples_text(&from.examples), &examples_text(&to.examples));
    let changed = body.iter().chain(examples.iter()).any(|l| {
        l.get_attr("tag")
            .ok()
            .and_then(|t| t.as_str().map(|s| s != "same"))
            .unwrap_or(false)
    });
    render(
        &state,
        "guideline_diff.html",
        context! { project, can => capabilities(role), from, to, body, examples, changed, versions, ..base(&auth) },
    )
}
