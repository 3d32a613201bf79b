//! A model account's turn in the queue: its answer stored with what it was made with and its
//! run's counters, and its next item leased, in one transaction.
//!
//! A person submits, then asks for the next item when they are ready; a model run goes on
//! at once, so the two writes and the run's bookkeeping would be three durable commits per
//! label, one after another. Here they are one. A run also works in several lanes, each
//! holding a lease of its own (a person holds one), so that the single writer commits the
//! lanes' turns together: on a disk that syncs slowly, labels per second grow with the lanes.

use super::lease::{Found, lease_next};
use super::submit::{Submitted, ThenLease, submit_in};
use super::{Lease, NextItem, QueueContext, Submission, SubmitContext, SubmitOutcome};
use crate::annotators::{
    ModelLabel, ModelProvenance, ModelRunCounts, add_to_run, insert_model_label,
};
use crate::conn::{Columns, Conn, stmt};
use crate::error::{Result, StoreError};
use crate::model::{AccountKind, Id, Project, User};
use crate::{Dialect, Store};
use std::sync::Arc;

/// A model's valid answer and what it cost.
#[derive(Debug, Clone)]
pub struct ModelAnswer {
    pub submission: Submission,
    pub provenance: ModelProvenance,
    pub run_id: Id,
    /// Added to the run's counters (`labelled` is counted here, once per stored answer).
    pub counts: ModelRunCounts,
    /// Lease the model's next item in the same commit (a run's last answer does not).
    pub then_lease: bool,
}

/// What a model's turn did: its answer stored, and what the queue has for it next (when
/// the turn asked).
#[derive(Debug)]
pub struct ModelTurn {
    pub submitted: SubmitOutcome,
    pub next: Option<NextItem>,
}

/// One model turn inside its transaction: the answer submitted, its provenance and the run's
/// counters stored, then (when asked) the model's next lease.
async fn model_turn_in(
    c: &mut Conn<'_>,
    dialect: Dialect,
    context: &SubmitContext,
    answer: &ModelAnswer,
) -> Result<(SubmitOutcome, Option<Found>)> {
    let then = if answer.then_lease {
        ThenLease::Yes
    } else {
        ThenLease::No
    };
    let Submitted {
        outcome: submitted,
        lease_start,
    } = submit_in(c, dialect, context, &answer.submission, then).await?;
    let label = ModelLabel {
        annotation_id: submitted.annotation_id,
        provenance: answer.provenance.clone(),
    };
    insert_model_label(c, &label).await?;
    let counts = ModelRunCounts {
        labelled: i64::from(!submitted.replayed),
        ..answer.counts
    };
    add_to_run(c, answer.run_id, &counts).await?;
    let found = if answer.then_lease {
        Some(lease_next(c, dialect, &context.queue, lease_start).await?)
    } else {
        None
    };
    Ok((submitted, found))
}

impl Store {
    /// Stores a model's answer (with its provenance and its run's counters) and leases the
    /// model's next item, in one commit (one durable commit per label instead of three). A replayed answer (the same idempotency key, after
    /// a restarted run) stores nothing new and counts no label.
    pub async fn submit_model_answer(
        &self,
        project: &Project,
        account: &User,
        answer: ModelAnswer,
    ) -> Result<ModelTurn> {
        if account.kind != AccountKind::Model {
            return Err(StoreError::invalid(format!(
                "{} is not a model account: only a model's answers come with provenance",
                account.username
            )));
        }
        let queue = QueueContext::for_model_lane(project, account)?;
        let context = Arc::new(
            self.submit_context(project, queue, &answer.submission)
                .await?,
        );
        let answer = Arc::new(answer);
        let dialect = self.dialect();
        let (submitted, found) = self
            .write_retrying(move |mut c| {
                let (context, answer) = (context.clone(), answer.clone());
                Box::pin(async move { model_turn_in(&mut c, dialect, &context, &answer).await })
            })
            .await
            .map_err(|e| {
                if e.is_unique_violation() {
                    StoreError::conflict(
                        "this answer is being stored by another run; retry to get its result",
                    )
                } else {
                    e
                }
            })?;
        let next = match found {
            Some(found) => Some(self.served(project, found).await?),
            None => None,
        };
        Ok(ModelTurn { submitted, next })
    }
}

impl Store {
    /// A new lease for one of a model run's lanes, even while the model holds others.
    pub async fn lease_model_item(&self, project: &Project, account: &User) -> Result<NextItem> {
        self.lease_for(project, QueueContext::for_model_lane(project, account)?)
            .await
    }

    /// The live leases an account holds, oldest first: a stopped model run's, answered first
    /// by the next run.
    pub async fn held_leases(&self, project: &Project, account: &User) -> Result<Vec<Lease>> {
        let now = self.database_now().await?;
        let rows = self
            .read_rows(
                stmt(
                    "SELECT id, item_id, purpose, expires_at FROM assignments \
             WHERE project_id = $1 AND user_id = $2 AND status = 'leased' AND expires_at > $3 \
             ORDER BY id",
                )
                .bind(project.id)
                .bind(account.id)
                .bind(now),
            )
            .await?;
        let mut leases = Vec::with_capacity(rows.len());
        for row in &rows {
            leases.push(Lease {
                assignment_id: row.col("id")?,
                item: self.item(project.id, row.col("item_id")?).await?,
                purpose: row.col("purpose")?,
                expires_at: row.col("expires_at")?,
                resumed: true,
                // A model account is never in a calibration round.
                calibration: false,
            });
        }
        Ok(leases)
    }
}
