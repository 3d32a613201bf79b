//! Items: import jobs.

use crate::AppState;
use crate::error::{AppError, AppResult};
use axum::body::Body;
use concord_formats::items::RecordFormat;
use concord_store::{
    FileProgress, Id, ImportKind, Job, JobKind, OnConflict, Store, StoreError, import_file,
};
use concord_store::{ProjectId, UserId};
use futures_util::StreamExt;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

pub struct ImportRequest {
    pub project_id: ProjectId,
    pub actor: UserId,
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
    let (upload, size) = save_upload(state, body).await?;
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
    tokio::spawn(run_import_job(
        state.store.clone(),
        request,
        job.id,
        upload,
        size,
    ));
    Ok(job)
}

/// Streams the request body to a temporary file (removed when dropped), within the size
/// limit; returns it with its size.
async fn save_upload(state: &AppState, body: Body) -> AppResult<(TempUpload, u64)> {
    let name = format!(
        "concord-upload-{}-{}.part",
        std::process::id(),
        rand_suffix()
    );
    let upload = TempUpload(state.config.upload_dir.join(name));
    let mut file = tokio::fs::File::create(&upload.0)
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
    if size == 0 {
        return Err(AppError::bad_request("the file is empty"));
    }
    Ok((upload, size))
}

/// The job itself: imports the saved file, reporting progress, and records how it ended.
async fn run_import_job(
    store: Store,
    request: ImportRequest,
    job_id: Id,
    upload: TempUpload,
    size: u64,
) {
    let (progress_tx, progress_rx) = tokio::sync::watch::channel(FileProgress::default());
    let reporter = tokio::spawn(report_progress(store.clone(), job_id, progress_rx));
    let outcome = match std::fs::File::open(&upload.0) {
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
        Err(e) => Err(StoreError::Invalid(format!("the upload vanished: {e}"))),
    };
    drop(upload);
    // The reporter sleeps between its writes: stop it instead of waiting out the sleep,
    // which held the end of every job up by up to half a second. The outcome's own
    // progress write below comes after any write the reporter had started.
    reporter.abort();
    let _ = reporter.await;
    if let Err(e) = finish_import_job(&store, job_id, size, outcome).await {
        tracing::error!(job = job_id, error = %e, "could not record the end of a job");
    }
}

/// Writes the reader's progress to the job row, at most four times a second.
async fn report_progress(
    store: Store,
    job_id: Id,
    mut progress_rx: tokio::sync::watch::Receiver<FileProgress>,
) {
    while progress_rx.changed().await.is_ok() {
        let p = *progress_rx.borrow_and_update();
        let message = format!("{} records read and checked", p.records);
        let _ = store
            .job_progress(job_id, p.bytes as i64, None, &message)
            .await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A published import's outcome, or the error that rejected the file (a database error is
/// logged, not shown).
async fn finish_import_job(
    store: &Store,
    job_id: Id,
    size: u64,
    outcome: concord_store::Result<concord_store::ImportOutcome>,
) -> concord_store::Result<()> {
    match outcome {
        Ok(outcome) => {
            let _ = store
                .job_progress(job_id, size as i64, None, "published")
                .await;
            let result = serde_json::to_value(outcome).unwrap_or_default();
            store.finish_job(job_id, Ok(result)).await
        }
        Err(e) => {
            tracing::info!(job = job_id, error = %e, "import rejected");
            let message = match e {
                StoreError::Database(_) => {
                    tracing::error!(job = job_id, error = %e, "import failed");
                    "the import failed on a database error; see the server log".to_owned()
                }
                other => other.to_string(),
            };
            store.finish_job(job_id, Err(message)).await
        }
    }
}

fn rand_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}-{:x}", rand::random::<u64>())
}
