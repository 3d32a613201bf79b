//! Calibration rounds: page routes. The list with the form that opens a round, and a round's
//! page: progress, the report, the verdicts, and the close, repeat and release actions.

use crate::AppState;
use crate::access::{ProjectPage, need};
use crate::auth::Auth;
use crate::error::{AppError, AppResult};
use crate::views::{base, capabilities, render};
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use concord_qa::calibration::{self, RoundItems, RoundRequest};
use concord_store::{Id, Project, Role};
use minijinja::context;
use serde::Deserialize;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/p/{slug}/calibration", get(rounds_page).post(open_round))
        .route("/p/{slug}/calibration/{round}", get(round_page))
        .route("/p/{slug}/calibration/{round}/close", post(close_round))
        .route("/p/{slug}/calibration/{round}/repeat", post(repeat_round))
        .route(
            "/p/{slug}/calibration/{round}/release/{username}",
            post(release_annotator),
        )
}

async fn rounds_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::ManageAnnotators>,
) -> AppResult<Response> {
    rounds_view(&state, &auth, &project, role, None).await
}

/// The list of rounds and the opening form, with an error from that form when there was one.
async fn rounds_view(
    state: &AppState,
    auth: &Auth,
    project: &Project,
    role: Role,
    error: Option<(StatusCode, String, OpenForm)>,
) -> AppResult<Response> {
    let rounds = state.store.calibration_rounds(project.id).await?;
    let revised = rounds
        .first()
        .is_some_and(|r| r.guideline_version_id != project.current_guideline_version_id);
    let settings = &project.settings.qa.calibration;
    let (status, message, form) = match error {
        Some((status, message, form)) => (status, Some(message), form),
        None => (
            StatusCode::OK,
            None,
            OpenForm {
                threshold: settings.threshold.to_string(),
                hold_until_verdict: settings.hold_until_verdict.then(|| "on".into()),
                sample: "20".into(),
                ..OpenForm::default()
            },
        ),
    };
    let html = render(
        state,
        "calibration.html",
        context! {
            project, can => capabilities(role), rounds, revised, settings, error => message,
            form => context! {
                name => form.name, items => form.items, sample => form.sample,
                threshold => form.threshold, hold => form.hold_until_verdict.is_some(),
            },
            ..base(auth)
        },
    )?;
    Ok((status, html).into_response())
}

/// The opening form: external ids one per line (or separated by commas), or else a sample
/// size.
#[derive(Debug, Default, Deserialize)]
struct OpenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    items: String,
    #[serde(default)]
    sample: String,
    #[serde(default)]
    threshold: String,
    #[serde(default)]
    hold_until_verdict: Option<String>,
}

impl OpenForm {
    fn request(&self) -> Result<RoundRequest, AppError> {
        let ids: Vec<String> = self
            .items
            .split(['\n', ','])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let items = if !ids.is_empty() {
            RoundItems::External(ids)
        } else {
            let count = self.sample.trim().parse::<usize>().map_err(|_| {
                AppError::bad_request(
                    "items: list external ids, or give a number of items to sample",
                )
            })?;
            RoundItems::Sample(count)
        };
        let threshold = self
            .threshold
            .trim()
            .parse::<f64>()
            .map_err(|_| AppError::bad_request("threshold: give a share such as 0.8"))?;
        Ok(RoundRequest {
            name: self.name.clone(),
            items,
            threshold: Some(threshold),
            hold_until_verdict: Some(self.hold_until_verdict.is_some()),
        })
    }
}

async fn open_round(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::ManageAnnotators>,
    Path(slug): Path<String>,
    Form(form): Form<OpenForm>,
) -> AppResult<Response> {
    let opened = match form.request() {
        Ok(request) => calibration::open_round(&state.store, &project, request, Some(auth.user.id))
            .await
            .map_err(AppError::from),
        Err(e) => Err(e),
    };
    match opened {
        Ok(round) => {
            Ok(Redirect::to(&format!("/p/{slug}/calibration/{}", round.id)).into_response())
        }
        Err(e) if e.status.is_client_error() => {
            rounds_view(
                &state,
                &auth,
                &project,
                role,
                Some((e.status, e.message, form)),
            )
            .await
        }
        Err(e) => Err(e),
    }
}

async fn round_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::ManageAnnotators>,
    Path((_, round)): Path<(String, Id)>,
) -> AppResult<Response> {
    round_view(&state, &auth, &project, role, round, None).await
}

async fn round_view(
    state: &AppState,
    auth: &Auth,
    project: &Project,
    role: Role,
    round: Id,
    error: Option<AppError>,
) -> AppResult<Response> {
    let report = calibration::round_report(&state.store, project, round).await?;
    let items = state.store.calibration_items(round).await?;
    let status = error.as_ref().map_or(StatusCode::OK, |e| e.status);
    let html: Html<String> = render(
        state,
        "calibration_round.html",
        context! {
            project, can => capabilities(role), report, items,
            error => error.map(|e| e.message),
            ..base(auth)
        },
    )?;
    Ok((status, html).into_response())
}

/// A round action's outcome: back to the round (or the new one), or the round's page with
/// the error when the request was refused.
async fn after_action<T>(
    state: &AppState,
    page: (&Auth, &Project, Role, Id),
    outcome: Result<T, AppError>,
    to: impl FnOnce(T) -> String,
) -> AppResult<Response> {
    let (auth, project, role, round) = page;
    match outcome {
        Ok(value) => Ok(Redirect::to(&to(value)).into_response()),
        Err(e) if e.status.is_client_error() => {
            round_view(state, auth, project, role, round, Some(e)).await
        }
        Err(e) => Err(e),
    }
}

async fn close_round(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::ManageAnnotators>,
    Path((slug, round)): Path<(String, Id)>,
) -> AppResult<Response> {
    let outcome = calibration::close_round(&state.store, &project, round, Some(auth.user.id))
        .await
        .map_err(AppError::from);
    after_action(&state, (&auth, &project, role, round), outcome, |_| {
        format!("/p/{slug}/calibration/{round}#verdicts")
    })
    .await
}

async fn repeat_round(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::ManageAnnotators>,
    Path((slug, round)): Path<(String, Id)>,
) -> AppResult<Response> {
    let outcome = calibration::repeat_round(&state.store, &project, round, Some(auth.user.id))
        .await
        .map_err(AppError::from);
    after_action(&state, (&auth, &project, role, round), outcome, |new| {
        format!("/p/{slug}/calibration/{}", new.id)
    })
    .await
}

async fn release_annotator(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::ManageAnnotators>,
    Path((slug, round, username)): Path<(String, Id, String)>,
) -> AppResult<Response> {
    let outcome = async {
        let annotator = state.store.user_by_name(&username).await?;
        state
            .store
            .release_from_calibration(project.id, round, annotator.id, Some(auth.user.id))
            .await?;
        Ok::<_, AppError>(())
    }
    .await;
    after_action(&state, (&auth, &project, role, round), outcome, |_| {
        format!("/p/{slug}/calibration/{round}#verdicts")
    })
    .await
}
