//! Automated annotators: configure, enable / disable and start runs of a project's models,
//! from the JSON API and from the project's *Automated annotators* page alike (both call
//! the steps here, which call the same store functions as `concord model`). Running a model
//! is `concord-annotators`' (the only crate that calls a model server).

pub(crate) mod api;
pub(crate) mod pages;

use crate::AppState;
use crate::error::{AppError, AppResult};
use concord_annotators::{RunOptions, job_message, run_model};
use concord_store::UserId;
use concord_store::{Job, JobKind, ModelAnnotator, ModelKind, NewModelAnnotator, Project};
use serde_json::json;

/// Checks a configuration the way `concord model add` does (a rules file against the
/// project's schema first, so a bad file changes nothing), then stores it.
pub(crate) async fn add_model(
    state: &AppState,
    project: &Project,
    new: NewModelAnnotator,
    actor: UserId,
) -> AppResult<ModelAnnotator> {
    if new.kind == ModelKind::Rules {
        let schema = state.store.project_schema(project).await?;
        concord_annotators::rules::RulesModel::parse(&new.rules, &schema.definition)
            .map_err(|e| AppError::bad_request(e.to_string()))?;
    }
    Ok(state
        .store
        .create_model_annotator(project, new, Some(actor))
        .await?)
}

/// Starts a run of the model as a background job; its row shows done, failures, tokens
/// and cost.
pub(crate) async fn start_run(
    state: &AppState,
    project: &Project,
    name: &str,
    actor: UserId,
) -> AppResult<Job> {
    let model = state.store.model_annotator(project.id, name).await?;
    let job = state
        .store
        .create_job(
            JobKind::ModelRun,
            Some(project.id),
            Some(actor),
            &format!("model {} labelling", model.name),
        )
        .await?;
    let store = state.store.clone();
    let job_id = job.id;
    tokio::spawn(async move {
        let options = RunOptions {
            job_id: Some(job_id),
            ..RunOptions::default()
        };
        let outcome = match run_model(&store, &model, options).await {
            Ok(run) => Ok(json!({"run": run.id, "counts": run.counts,
                                 "summary": job_message(&run.counts)})),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = store.finish_job(job_id, outcome).await {
            tracing::error!(job = job_id, error = %e, "could not record the model run's end");
        }
    });
    Ok(job)
}
