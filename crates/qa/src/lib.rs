//! The QA loop between the engine and the store: a consensus run reads a project's labels,
//! computes consensus, agreement and annotator quality with `concord-stats`, applies the
//! project's escalation rules, and writes everything back in one transaction.
//!
//! **No HTTP and no SQL here**: the server and the CLI call [`run_consensus`]; the store
//! does the reading and writing.

pub mod calibration;
pub mod compute;
pub mod dsa;
pub mod feedback;
pub mod gold_plan;
pub mod model_scores;
pub mod overlap;
pub mod release;
pub mod report;
pub mod retest;
pub mod rules;
#[cfg(test)]
mod vocabulary_tests;

pub use compute::{Computed, compute_run, date_of, week_start};
pub use gold_plan::{GoldPlan, gold_accuracy_upper_bound, gold_plan};
pub use overlap::{OverlapReport, overlap_report, overlap_savings};
pub use release::{create_release, release_summary};
pub use report::QualityReport;

use concord_store::UserId;
use concord_store::{ConsensusRun, ConsensusWrite, Id, LabelSchema, Project, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum QaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Compute(#[from] compute::ComputeError),
    #[error("the project's settings: {0}")]
    Settings(String),
    #[error("the consensus computation stopped unexpectedly: {0}")]
    Panicked(String),
}

/// Progress of a run, for a job row or a terminal.
pub trait Progress: Send + Sync {
    fn step(&self, message: &str);
}

impl<F: Fn(&str) + Send + Sync> Progress for F {
    fn step(&self, message: &str) {
        self(message)
    }
}

/// Computes and stores a consensus run for a project.
pub async fn run_consensus(
    store: &Store,
    project: &Project,
    actor: Option<UserId>,
    job_id: Option<Id>,
    progress: &dyn Progress,
) -> Result<ConsensusRun, QaError> {
    let settings = project.settings.qa.clone();
    let schema: LabelSchema = store.current_schema(project.id).await?.definition;
    progress.step("reading the labels");
    let started = std::time::Instant::now();
    let input = store.consensus_input(project.id).await?;
    tracing::info!(
        labels = input.labels.len(),
        seconds = started.elapsed().as_secs_f64(),
        "consensus run: labels read"
    );
    let started = std::time::Instant::now();
    progress.step(&format!(
        "computing consensus and agreement over {} labels",
        input.labels.len()
    ));
    let computed = tokio::task::spawn_blocking(move || compute_run(&schema, &settings, &input))
        .await
        .map_err(|e| QaError::Panicked(e.to_string()))??;
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        "consensus run: computed"
    );
    let started = std::time::Instant::now();
    progress.step(&format!(
        "storing {} item results and {} escalation candidates",
        computed.items.len(),
        computed.escalations.len()
    ));
    let write = ConsensusWrite {
        method: computed.report.method.clone(),
        annotations: computed.annotations as i64,
        summary: serde_json::to_value(&computed.report).unwrap_or_default(),
        items: computed.items,
        annotators: computed.annotators,
        escalations: computed.escalations,
        job_id,
    };
    let run = store.save_consensus(project.id, write, actor).await?;
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        "consensus run: stored"
    );
    Ok(run)
}

/// Reads a stored run's report.
pub fn report_of(run: &ConsensusRun) -> Option<QualityReport> {
    serde_json::from_value(run.summary.clone()).ok()
}
