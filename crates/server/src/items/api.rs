//! Items: JSON API routes (under `/api/v1`).

use crate::AppState;
use crate::access::{ProjectAccess, need, project_access};
use crate::auth::Auth;
use crate::error::{AppError, AppResult};
use crate::items::ItemQuery;
use crate::items::imports::{self, ImportRequest};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use concord_formats::items::{ExportWriter, RecordFormat};
use concord_store::ItemId;
use concord_store::{ImportKind, NewAnnotation, OnConflict, Permission};
use serde::Deserialize;
use serde_json::{Value, json};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/projects/{slug}/items", get(list_items))
        .route("/projects/{slug}/items/{id}", get(get_item))
        .route(
            "/projects/{slug}/items/{id}/annotations",
            get(item_annotations).post(add_annotation),
        )
        .route("/projects/{slug}/items/bulk/priority", post(bulk_priority))
        .route("/projects/{slug}/items/bulk/rereview", post(bulk_rereview))
        .route("/projects/{slug}/items/bulk/gold", post(bulk_gold))
        .route("/projects/{slug}/imports", post(start_import))
        .route("/projects/{slug}/imports/foreign", post(foreign_import))
        .route("/projects/{slug}/export", get(export))
}

async fn list_items(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::BrowseItems>,
    Query(q): Query<ItemQuery>,
) -> AppResult<Json<Value>> {
    let page = state.store.items_page(project.id, &q.filter()?).await?;
    Ok(Json(json!(page)))
}

#[derive(Deserialize)]
struct BulkPriority {
    item_ids: Vec<ItemId>,
    priority: i64,
}

#[derive(Deserialize)]
struct BulkRereview {
    item_ids: Vec<ItemId>,
    username: String,
}

#[derive(Deserialize)]
struct BulkGold {
    item_ids: Vec<ItemId>,
}

async fn bulk_priority(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::ManageAnnotators>,
    Json(body): Json<BulkPriority>,
) -> AppResult<Json<Value>> {
    let action = concord_store::BulkAction::SetPriority(body.priority);
    let done = state
        .store
        .bulk_items(project.id, body.item_ids, action, auth.user.id)
        .await?;
    Ok(Json(json!(done)))
}

async fn bulk_rereview(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::ManageAnnotators>,
    Json(body): Json<BulkRereview>,
) -> AppResult<Json<Value>> {
    let action = crate::items::bulk::rereviewer(&state, &project, &body.username).await?;
    let done = state
        .store
        .bulk_items(project.id, body.item_ids, action, auth.user.id)
        .await?;
    Ok(Json(json!(done)))
}

async fn bulk_gold(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::Adjudicate>,
    Json(body): Json<BulkGold>,
) -> AppResult<Json<Value>> {
    let action = concord_store::BulkAction::MarkGold;
    let done = state
        .store
        .bulk_items(project.id, body.item_ids, action, auth.user.id)
        .await?;
    Ok(Json(json!(done)))
}

async fn get_item(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::BrowseItems>,
    Path((_, id)): Path<(String, ItemId)>,
) -> AppResult<Json<Value>> {
    Ok(Json(
        json!({"item": state.store.item(project.id, id).await?}),
    ))
}

async fn item_annotations(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::ReadAnnotations>,
    Path((_, id)): Path<(String, ItemId)>,
) -> AppResult<Json<Value>> {
    let item = state.store.item(project.id, id).await?;
    Ok(Json(
        json!({"annotations": state.store.item_annotations(item.id).await?}),
    ))
}

async fn add_annotation(
    State(state): State<AppState>,
    auth: Auth,
    Path((slug, id)): Path<(String, ItemId)>,
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

/// Another tool's export as the body: a dry run answers the report (200); a real import
/// answers it once everything is written (201), or refuses the file with it (422).
async fn foreign_import(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::ImportItems>,
    Query(q): Query<crate::items::foreign::ForeignQuery>,
    body: axum::body::Bytes,
) -> AppResult<(StatusCode, Json<Value>)> {
    let report = crate::items::foreign::import(&state, &project, auth.user.id, &q, &body).await?;
    let status = match report.written {
        true => StatusCode::CREATED,
        false => StatusCode::OK,
    };
    Ok((status, Json(json!({"report": report}))))
}

async fn start_import(
    State(state): State<AppState>,
    ProjectAccess { auth, project, .. }: ProjectAccess<need::ImportItems>,
    Query(q): Query<ImportQuery>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> AppResult<(StatusCode, Json<Value>)> {
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

#[derive(Deserialize)]
struct ExportQuery {
    format: Option<String>,
}

/// Streams the export: rows leave as they are read, so memory stays flat.
async fn export(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::ReadAnnotations>,
    Query(q): Query<ExportQuery>,
) -> AppResult<Response> {
    if q.format.as_deref() == Some("parquet") {
        let writer = concord_formats::parquet::ExportParquetWriter::new(
            Vec::with_capacity(1 << 16),
            concord_formats::parquet::ROWS_PER_GROUP,
        )
        .map_err(AppError::internal)?;
        return Ok(crate::streaming::download(
            state.store.export(project.id),
            writer,
            crate::streaming::PARQUET_CONTENT_TYPE,
            &format!("{}-export.parquet", project.slug),
        ));
    }
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
