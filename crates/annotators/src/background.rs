//! `concord serve` runs the enabled models in the background: each pass gives every enabled
//! model a job (its progress row shows done, failures, tokens and cost) that labels what the
//! queue has for it, then waits before looking again (imports bring new items).

use crate::run::{RunOptions, job_message, run_model};
use concord_store::{JobKind, Store};
use serde_json::json;
use std::time::Duration;

/// Runs forever (until the task is dropped), one pass every `every`.
pub async fn run_enabled_models(store: Store, every: Duration) {
    loop {
        if let Err(e) = one_pass(&store).await {
            tracing::warn!(error = %e, "automated annotators: a pass failed");
        }
        tokio::time::sleep(every).await;
    }
}

async fn one_pass(store: &Store) -> Result<(), concord_store::StoreError> {
    for model in store.enabled_model_annotators().await? {
        // Nothing to label: no job row for an idle model.
        if store
            .model_backlog(model.project_id, model.user_id, None, 1)
            .await?
            .is_empty()
        {
            continue;
        }
        let job = store
            .create_job(
                JobKind::ModelRun,
                Some(model.project_id),
                None,
                &format!("model {} labelling", model.name),
            )
            .await?;
        let options = RunOptions {
            job_id: Some(job.id),
            ..RunOptions::default()
        };
        let outcome = match run_model(store, &model, options).await {
            Ok(run) => Ok(json!({
                "model": model.name,
                "run": run.id,
                "counts": run.counts,
                "summary": job_message(&run.counts),
            })),
            Err(e) => {
                tracing::warn!(model = %model.name, error = %e, "model run stopped");
                Err(e.to_string())
            }
        };
        store.finish_job(job.id, outcome).await?;
    }
    Ok(())
}
