//! Background jobs (imports now; consensus runs later). Their state and progress live in
//! the database so that any server behind the load balancer can report them.

use crate::Store;
use crate::conn::{Columns, stmt};
use crate::error::{Result, StoreError, json_text};
use crate::ids::{ProjectId, UserId};
use crate::model::{Id, Job, JobKind};
use serde_json::Value;

fn job_from_row(row: &impl Columns) -> Result<Job> {
    let result: Option<String> = row.col("result")?;
    Ok(Job {
        id: row.col("id")?,
        kind: row.col("kind")?,
        project_id: row.col("project_id")?,
        status: row.col("status")?,
        progress_done: row.col("progress_done")?,
        progress_total: row.col("progress_total")?,
        message: row.col("message")?,
        result: result.and_then(|r| serde_json::from_str(&r).ok()),
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
        finished_at: row.col("finished_at")?,
    })
}

/// A running job that has not reported progress for this long is taken to have died with
/// its server.
const STALE_AFTER_MS: i64 = 10 * 60 * 1000;

impl Store {
    pub async fn create_job(
        &self,
        kind: JobKind,
        project_id: Option<ProjectId>,
        actor: Option<UserId>,
        message: &str,
    ) -> Result<Job> {
        let message = message.to_owned();
        let id = self
            .write_conn(move |mut c| {
                let message = message.clone();
                Box::pin(async move {
                    let c = &mut c;
                    let row = c
                        .fetch_one(
                            stmt(
                                "INSERT INTO jobs (kind, project_id, status, message, created_by) \
                         VALUES ($1, $2, 'running', $3, $4) RETURNING id",
                            )
                            .bind(kind.as_str())
                            .bind(project_id)
                            .bind(message)
                            .bind(actor),
                        )
                        .await?;
                    row.col::<Id>("id")
                })
            })
            .await?;
        self.job(id).await
    }

    pub async fn job_progress(
        &self,
        id: Id,
        done: i64,
        total: Option<i64>,
        message: &str,
    ) -> Result<()> {
        let now = self.dialect().now_ms();
        let message = message.to_owned();
        self.write_conn(move |mut c| {
            let message = message.clone();
            Box::pin(async move {
                let c = &mut c;
                let statement = stmt(format!(
                    "UPDATE jobs SET progress_done = $1, progress_total = COALESCE($2, progress_total), \
                     message = $3, updated_at = {now} WHERE id = $4"
                ))
                .bind(done)
                .bind(total)
                .bind(message)
                .bind(id);
                c.execute(statement)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Ends a job: `Ok(result)` succeeded, `Err(message)` failed.
    pub async fn finish_job(
        &self,
        id: Id,
        outcome: std::result::Result<Value, String>,
    ) -> Result<()> {
        let now = self.dialect().now_ms();
        self.write_conn(move |mut c| {
            let outcome = outcome.clone();
            Box::pin(async move {
                let c = &mut c;
                let (status, message, result) = match &outcome {
                    Ok(result) => ("succeeded", "done".to_owned(), Some(json_text(result))),
                    Err(message) => ("failed", message.clone(), None),
                };
                let statement = stmt(format!(
                    "UPDATE jobs SET status = $1, message = $2, result = $3, updated_at = {now}, \
                     finished_at = {now} WHERE id = $4"
                ))
                .bind(status)
                .bind(message)
                .bind(result)
                .bind(id);
                c.execute(statement).await?;
                Ok(())
            })
        })
        .await
    }

    pub async fn job(&self, id: Id) -> Result<Job> {
        let row = self
            .read_optional(stmt("SELECT * FROM jobs WHERE id = $1").bind(id))
            .await?
            .ok_or_else(|| StoreError::not_found(format!("job {id}")))?;
        job_from_row(&row)
    }

    pub async fn project_jobs(&self, project_id: ProjectId, limit: i64) -> Result<Vec<Job>> {
        let rows = self
            .read_rows(
                stmt("SELECT * FROM jobs WHERE project_id = $1 ORDER BY id DESC LIMIT $2")
                    .bind(project_id)
                    .bind(limit),
            )
            .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Marks jobs whose server stopped reporting as failed (run at start).
    pub async fn fail_stale_jobs(&self) -> Result<u64> {
        let now = self.dialect().now_ms();
        self.write_conn(move |mut c| {
            Box::pin(async move {
                let c = &mut c;
                let statement = stmt(format!(
                    "UPDATE jobs SET status = 'failed', message = 'the server running this job stopped', \
                     finished_at = {now} WHERE status IN ('queued', 'running') AND updated_at < {now} - $1"
                ))
                .bind(STALE_AFTER_MS);
                let done = c.execute(statement)
                .await?;
                Ok(done)
            })
        })
        .await
    }
}
