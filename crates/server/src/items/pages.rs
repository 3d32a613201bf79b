//! Items: page routes.

use super::*;
use crate::AppState;
use crate::access::{ProjectPage, need};
use crate::error::AppResult;
use crate::views::{base, capabilities, render};
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::{get, post};
use concord_store::ItemId;
use concord_store::{BulkAction, ItemState, Permission, StoreError, item_types};
use minijinja::context;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/p/{slug}/items", get(items_page))
        .route("/p/{slug}/items/bulk", post(bulk_page))
        .route("/p/{slug}/items/{id}", get(item_page))
        .route("/p/{slug}/import", get(import_page))
        .route(
            "/p/{slug}/import/foreign",
            axum::routing::post(foreign_import),
        )
}

async fn items_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::BrowseItems>,
    Query(q): Query<ItemQuery>,
) -> AppResult<Html<String>> {
    let filter = q.filter()?;
    let page = state.store.items_page(project.id, &filter).await?;
    // The query string for "next page" keeps the filters.
    let mut keep = Vec::new();
    let state_filter = filter.state.map(|s| s.as_str().to_owned());
    for (key, value) in [
        ("type", &filter.item_type),
        ("state", &state_filter),
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
    // Who a bulk re-review may go to: the members who annotate.
    let rereviewers: Vec<String> = if role.allows(Permission::ManageAnnotators) {
        state
            .store
            .members(project.id)
            .await?
            .into_iter()
            .filter(|m| m.role.allows(Permission::Annotate))
            .map(|m| m.username)
            .collect()
    } else {
        Vec::new()
    };
    // Where the bulk form comes back to: this very view.
    let mut back = filters_qs.clone();
    if let Some(after) = filter.after {
        back += &format!("{}after={after}", if back.is_empty() { "" } else { "&" });
    }
    render(
        &state,
        "items.html",
        context! {
            project, can => capabilities(role), page, filters_qs, types => item_types(), states,
            rereviewers, back,
            f => context! { item_type => filter.item_type, state => filter.state, q => filter.text, gold => q.gold, min_priority => q.min_priority },
            first_page => filter.after.is_none(),
            ..base(&auth)
        },
    )
}

async fn item_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::BrowseItems>,
    Path((_, id)): Path<(String, ItemId)>,
) -> AppResult<Html<String>> {
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

async fn import_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::ImportItems>,
) -> AppResult<Html<String>> {
    let jobs = state.store.project_jobs(project.id, 10).await?;
    render(
        &state,
        "import.html",
        context! { project, can => capabilities(role), jobs, item_types => item_types(), ..base(&auth) },
    )
}

/// The import page's "from another tool" form: the file as the body, the report (or the
/// reason nothing was imported) as a fragment for the page.
async fn foreign_import(
    State(state): State<AppState>,
    ProjectPage { auth, project, .. }: ProjectPage<need::ImportItems>,
    Query(q): Query<super::foreign::ForeignQuery>,
    body: axum::body::Bytes,
) -> AppResult<Html<String>> {
    let (report, error) =
        match super::foreign::import(&state, &project, auth.user.id, &q, &body).await {
            Ok(report) => (Some(serde_json::json!(report)), None),
            Err(e) => {
                let report = e.details.as_ref().and_then(|d| d.get("report")).cloned();
                (report, Some(e.message))
            }
        };
    render(
        &state,
        "_foreign_report.html",
        context! { project, report, error },
    )
}

/// The item browser's bulk form: `action`, the selected `item`s, `priority` or `username`,
/// and `back` (the list's query string). Without `confirm=yes` it shows what will change
/// (how many items, which, from what to what); with it, it applies the change.
async fn bulk_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::BrowseItems>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<(StatusCode, Html<String>)> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let mut ids = Vec::new();
    for (_, value) in fields.iter().filter(|(k, _)| k == "item") {
        ids.push(
            value
                .parse::<ItemId>()
                .map_err(|_| AppError::bad_request(format!("item: {value:?} is not an item id")))?,
        );
    }
    let (action_word, priority, username) = (field("action"), field("priority"), field("username"));
    let action = match action_word.as_str() {
        "set_priority" => BulkAction::SetPriority(priority.parse().map_err(|_| {
            AppError::bad_request(format!("priority: {priority:?} is not a whole number"))
        })?),
        "rereview" if username.is_empty() => {
            return Err(AppError::bad_request(
                "username: choose who re-reviews the items",
            ));
        }
        "rereview" => bulk::rereviewer(&state, &project, &username).await?,
        "mark_gold" => BulkAction::MarkGold,
        other => {
            return Err(AppError::bad_request(format!(
                "action must be set_priority, rereview or mark_gold, not {other:?}"
            )));
        }
    };
    let action = bulk::allowed(role, action)?;
    let description = match &action {
        BulkAction::SetPriority(p) => format!("set the priority to {p}"),
        BulkAction::Rereview { .. } => format!("assign for re-review to {username}"),
        BulkAction::MarkGold => {
            "mark as gold, with the adjudicated answer (else the consensus) as gold answer".into()
        }
    };
    let back = field("back");
    let mut outcome = None;
    let mut error = None;
    if ids.is_empty() {
        error = Some("Select at least one item on the list first.".to_owned());
    } else if field("confirm") == "yes" {
        match state
            .store
            .bulk_items(project.id, ids.clone(), action, auth.user.id)
            .await
        {
            Ok(done) => outcome = Some(done),
            Err(StoreError::Invalid(message) | StoreError::NotFound(message)) => {
                error = Some(message)
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut items = Vec::new();
    for id in &ids {
        match state.store.item(project.id, *id).await {
            Ok(item) => items.push(item),
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let html = render(
        &state,
        "items_bulk.html",
        context! {
            project, can => capabilities(role), items, description, error,
            done => outcome.is_some(), action => action_word, priority, username, back,
            ..base(&auth)
        },
    )?;
    Ok((status, html))
}
