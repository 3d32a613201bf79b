//! Releases: JSON API routes (under `/api/v1`).

use crate::AppState;
use crate::access::{ProjectAccess, need};
use crate::error::{AppError, AppResult};
use crate::streaming::PARQUET_CONTENT_TYPE;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use concord_formats::items::RecordFormat;
use concord_formats::parquet::{
    ROWS_PER_GROUP, ReleaseItemParquetWriter, ReleaseLabelParquetWriter, release_metadata,
};
use serde::Deserialize;
use serde_json::{Value, json};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
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
        .route("/projects/{slug}/dsa/statements", get(dsa_statements))
}

#[derive(Deserialize)]
struct DsaQuery {
    from: String,
    to: String,
    #[serde(default = "dsa_json")]
    format: String,
}

fn dsa_json() -> String {
    "json".into()
}

impl From<concord_qa::dsa::DsaError> for AppError {
    fn from(error: concord_qa::dsa::DsaError) -> Self {
        use concord_qa::dsa::DsaError;
        match error {
            DsaError::Store(e) => e.into(),
            DsaError::Request(message) => AppError::bad_request(message),
            DsaError::Invalid(invalid) => {
                let mut details = serde_json::Map::new();
                details.insert("item".into(), json!(invalid.item));
                details.insert("field".into(), json!(invalid.field));
                AppError {
                    details: Some(details),
                    ..AppError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("{invalid}; no statements were exported"),
                    )
                }
            }
        }
    }
}

/// The period's statements of reasons as a JSON array or a CSV file, every one valid.
async fn dsa_statements(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::CreateReleases>,
    Query(q): Query<DsaQuery>,
) -> AppResult<Response> {
    use concord_formats::dsa::{StatementFormat, write_statements};
    let format: StatementFormat = q.format.parse().map_err(AppError::bad_request)?;
    let export = concord_qa::dsa::dsa_statements(&state.store, &project, &q.from, &q.to).await?;
    let bytes =
        write_statements(Vec::new(), &export.statements, format).map_err(AppError::internal)?;
    let (content_type, extension) = match format {
        StatementFormat::Json => ("application/json", "json"),
        StatementFormat::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    let filename = format!("dsa-{}-{}-{}.{extension}", project.slug, q.from, q.to);
    Response::builder()
        .header(axum::http::header::CONTENT_TYPE, content_type)
        .header(
            axum::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        )
        .body(axum::body::Body::from(bytes))
        .map_err(AppError::internal)
}

async fn list_releases(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::ReadAnnotations>,
) -> AppResult<Json<Value>> {
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
    ProjectAccess { auth, project, .. }: ProjectAccess<need::CreateReleases>,
    Json(body): Json<NewReleaseBody>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let release = concord_qa::create_release(
        &state.store,
        &project,
        &body.name,
        &body.description,
        Some(auth.user.id),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!(release))))
}

async fn get_release(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::ReadAnnotations>,
    Path((_, name)): Path<(String, String)>,
) -> AppResult<Json<Value>> {
    Ok(Json(json!(state.store.release(project.id, &name).await?)))
}

#[derive(Deserialize)]
struct ReleaseFileQuery {
    format: Option<String>,
    question: Option<String>,
}

async fn release_items(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::ReadAnnotations>,
    Path((_, name)): Path<(String, String)>,
    Query(q): Query<ReleaseFileQuery>,
) -> AppResult<Response> {
    let release = state.store.release(project.id, &name).await?;
    if q.format.as_deref() == Some("parquet") {
        let writer = ReleaseItemParquetWriter::new(
            Vec::with_capacity(1 << 16),
            state.store.answer_columns(project.id).await?,
            release_metadata(&release).map_err(AppError::internal)?,
            ROWS_PER_GROUP,
        )
        .map_err(AppError::internal)?;
        return Ok(crate::streaming::download(
            state.store.release_items(&release),
            writer,
            PARQUET_CONTENT_TYPE,
            &format!("{}-{}-items.parquet", project.slug, release.name),
        ));
    }
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

/// The individual labels: JSONL records, Parquet rows (every question), or
/// `item,annotator,label` CSV of one question.
async fn release_labels(
    State(state): State<AppState>,
    ProjectAccess { project, .. }: ProjectAccess<need::ReadAnnotations>,
    Path((_, name)): Path<(String, String)>,
    Query(q): Query<ReleaseFileQuery>,
) -> AppResult<Response> {
    let release = state.store.release(project.id, &name).await?;
    if q.format.as_deref() == Some("parquet") {
        let writer = ReleaseLabelParquetWriter::new(
            Vec::with_capacity(1 << 16),
            state.store.answer_columns(project.id).await?,
            release_metadata(&release).map_err(AppError::internal)?,
            ROWS_PER_GROUP,
        )
        .map_err(AppError::internal)?;
        return Ok(crate::streaming::download(
            state.store.release_labels(&release),
            writer,
            PARQUET_CONTENT_TYPE,
            &format!("{}-{}-labels.parquet", project.slug, release.name),
        ));
    }
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
    ProjectAccess { project, .. }: ProjectAccess<need::ReadAnnotations>,
    Path((_, name, other)): Path<(String, String, String)>,
) -> AppResult<Json<Value>> {
    let from = state.store.release(project.id, &name).await?;
    let to = state.store.release(project.id, &other).await?;
    Ok(Json(json!(state.store.diff_releases(&from, &to).await?)))
}
