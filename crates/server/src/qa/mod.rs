//! The QA loop: consensus runs, quality, escalations, adjudication, precedents, feedback and the guideline revision loop.

pub(crate) mod api;
pub(crate) mod pages;

use crate::AppState;
use crate::error::AppResult;
use concord_store::UserId;
use concord_store::{Job, Project};
use serde_json::json;

/// Starts a consensus run as a background job; the job row reports progress to any server.
pub async fn start_consensus_job(
    state: &AppState,
    project: Project,
    actor: UserId,
) -> AppResult<Job> {
    let job = state
        .store
        .create_job(
            concord_store::JobKind::Consensus,
            Some(project.id),
            Some(actor),
            "computing consensus and agreement",
        )
        .await?;
    let store = state.store.clone();
    let job_id = job.id;
    tokio::spawn(async move {
        let (progress_tx, mut progress_rx) = tokio::sync::watch::channel(String::new());
        let reporter_store = store.clone();
        let reporter = tokio::spawn(async move {
            let mut step = 0;
            while progress_rx.changed().await.is_ok() {
                step += 1;
                let message = progress_rx.borrow_and_update().clone();
                let _ = reporter_store
                    .job_progress(job_id, step, Some(4), &message)
                    .await;
            }
        });
        let progress = move |message: &str| {
            let _ = progress_tx.send(message.to_owned());
        };
        let outcome =
            concord_qa::run_consensus(&store, &project, Some(actor), Some(job_id), &progress).await;
        drop(progress);
        let _ = reporter.await;
        let finished = match outcome {
            Ok(run) => {
                let _ = store.job_progress(job_id, 4, Some(4), "stored").await;
                store
                    .finish_job(
                        job_id,
                        Ok(json!({"run": run.id, "items": run.items, "escalated": run.escalated})),
                    )
                    .await
            }
            Err(e) => {
                tracing::error!(job = job_id, error = %e, "consensus run failed");
                store.finish_job(job_id, Err(e.to_string())).await
            }
        };
        if let Err(e) = finished {
            tracing::error!(job = job_id, error = %e, "could not record the end of a job");
        }
    });
    Ok(job)
}
