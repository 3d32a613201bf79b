//! Items: moving in from another tool (a Label Studio export, a Toloka TSV) — the step the
//! API and the import page share.

use crate::AppState;
use crate::error::{AppError, AppResult};
use concord_formats::foreign::{Mapping, Source, read_export, read_mapping};
use concord_store::UserId;
use concord_store::{ForeignReport, Project};
use serde::Deserialize;

/// The query of a foreign import: the file itself is the request body.
#[derive(Deserialize, Default)]
pub struct ForeignQuery {
    /// `label_studio` (or `label-studio`) or `toloka`.
    pub source: String,
    #[serde(default)]
    pub dry_run: Option<String>,
    pub item_type: Option<String>,
    /// The mapping as JSON text (the file `--mapping` takes).
    pub mapping: Option<String>,
    pub filename: Option<String>,
}

impl ForeignQuery {
    pub fn dry_run(&self) -> bool {
        matches!(self.dry_run.as_deref(), Some("true" | "1" | "on" | "yes"))
    }
}

/// Reads and maps the body; a real import that would not map everything is refused with
/// the report attached (`error.report`), and nothing is written.
pub async fn import(
    state: &AppState,
    project: &Project,
    actor: UserId,
    query: &ForeignQuery,
    body: &[u8],
) -> AppResult<ForeignReport> {
    let source: Source = query.source.parse().map_err(AppError::bad_request)?;
    let mut mapping = match query.mapping.as_deref().filter(|m| !m.trim().is_empty()) {
        Some(text) => read_mapping("mapping", text.as_bytes())
            .map_err(|e| AppError::bad_request(e.to_string()))?,
        None => Mapping::default(),
    };
    if let Some(item_type) = query.item_type.as_deref().filter(|t| !t.is_empty()) {
        mapping.item_type = Some(item_type.to_owned());
    }
    if body.is_empty() {
        return Err(AppError::bad_request("the file is empty"));
    }
    let file = query.filename.clone().unwrap_or_else(|| "upload".into());
    let export = read_export(source, &file, body, &mapping)
        .map_err(|e| AppError::bad_request(e.to_string()))?;
    let report = state
        .store
        .import_foreign(project, &export, &mapping, true, Some(actor))
        .await?;
    if query.dry_run() {
        return Ok(report);
    }
    if !report.not_mapped.is_empty() {
        let first = &report.not_mapped[0];
        let mut details = serde_json::Map::new();
        details.insert(
            "report".into(),
            serde_json::to_value(&report).map_err(AppError::internal)?,
        );
        let message = format!(
            "{file}: {}: field {}: {}; nothing was imported",
            first.first, first.field, first.reason
        );
        return Err(AppError {
            details: Some(details),
            ..AppError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, message)
        });
    }
    Ok(state
        .store
        .import_foreign(project, &export, &mapping, false, Some(actor))
        .await?)
}
