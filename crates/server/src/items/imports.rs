//! Items: import jobs.

use crate::AppState;
use crate::error::{AppError, AppResult};
use axum::body::Body;
use concord_formats::items::RecordFormat;
use concord_store::{FileProgress, Id, ImportKind, Job, JobKind, OnConflict, import_file};
use futures_util::StreamExt;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

pub struct ImportRequest {
    pub project_id: Id,
    pub actor: Id,
    pub kind: ImportKind,
    pub format: RecordFormat,
    pub on_conflict: OnConflict,
    pub filename: String,
}

/// Removes the upload when the job is done with it, however it ends.
struct TempUpload(PathBuf);

impl Drop for TempUpload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Saves the body and starts the job; returns the job as created.
pub async fn start(state: &AppState, request: ImportRequest, body: Body) -> AppResult<Job> {
    let name = format!(
        "concord-upload-{}-{}.part",
        std::process::id(),
        rand_suffix()
    );
    let path = state.config.upload_dir.join(name);
    let upload = TempUpload(path.clone());
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(AppError::internal)?;
    let mut stream = body.into_data_stream();
    let mut size: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| AppError::bad_request(format!("the upload was interrupted: {e}")))?;
        size += chunk.len() as u64;
        if size > state.config.max_upload_bytes {
            return Err(AppError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the file is larger than the limit of {} bytes",
                    state.config.max_upload_bytes
                ),
            ));
        }
        file.write_all(&chunk).await.map_err(AppError::internal)?;
    }
    file.sync_all().await.map_err(AppError::internal)?;
    drop(file);
    if size == 0 {
        return Err(AppError::bad_request("the file is empty"));
    }

    let (what, job_kind) = match request.kind {
        ImportKind::Items => ("items", JobKind::ImportItems),
        ImportKind::Annotations => ("annotations", JobKind::ImportAnnotations),
    };
    let job = state
        .store
        .create_job(
            job_kind,
            Some(request.project_id),
            Some(request.actor),
            &format!("importing {what} from {}", request.filename),
        )
        .await?;
    state
        .store
        .job_progress(job.id, 0, Some(size as i64), "reading the file")
        .await?;
    let store = state.store.clone();
    let job_id = job.id;
    tokio::spawn(async move {
        let _upload = upload;
        let (progress_tx, mut progress_rx) = tokio::sync::watch::channel(FileProgress::default());
        let reporter_store = store.clone();
        let reporter = tokio::spawn(async move {
            while progress_rx.changed().await.is_ok() {
                let p = *progress_rx.borrow_and_update();
                let message = format!("{} records read and checked", p.records);
                let _ = reporter_store
                    .job_progress(job_id, p.bytes as i64, None, &message)
                    .await;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        let outcome = match std::fs::File::open(&path) {
            Ok(input) => {
                import_file(
                    &store,
                    request.project_id,
                    request.kind,
                    &request.filename,
                    input,
                    request.format,
                    request.on_conflict,
                    Some(request.actor),
                    move |p| {
                        let _ = progress_tx.send(p);
                    },
                )
                .await
            }
            Err(e) => Err(concord_store::StoreError::Invalid(format!(
                "the upload vanished: {e}"
            ))),
        };
        // The reporter sleeps between its writes: stop it instead of waiting out the sleep,
        // which held the end of every job up by up to half a second. The outcome's own
        // progress write below comes after any write the reporter had started.
        reporter.abort();
        let _ = reporter.await;
        let finished = match outcome {
            Ok(outcome) => {
                let _ = store
                    .job_progress(job_id, size as i64, None, "published")
                    .await;
                store
                    .finish_job(
                        job_id,
                        Ok(serde_json::to_value(outcome).unwrap_or_default()),
                    )
                    .await
            }
            Err(e) => {
                tracing::info!(job = job_id, error = %e, "import rejected");
                let message = match e {
                    concord_store::StoreError::Database(_) => {
                        tracing::error!(job = job_id, error = %e, "import failed");
                        "the import failed on a database error; see the server log".to_owned()
                    }
                    other => other.to_string(),
                };
                store.finish_job(job_id, Err(message)).await
            }
        };
        if let Err(e) = finished {
            tracing::error!(job = job_id, error = %e, "could not record the end of a job");
        }
    });
    Ok(job)
}

fn rand_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}-{:x}", rand::random::<u64>())
}
