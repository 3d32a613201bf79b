//! Storing an answer from the queue: a retried key replayed, the annotation written, the
//! item's overlap settled, a model's pre-label recorded, and the annotator's progress and
//! pause rule counted.

use super::lease::{
    LeaseStart, lease_next, pg_lease_checks, progress_for_lease_columns, sqlite_progress_read,
};
use super::{
    AnswerKind, DAY_MS, GoldFeedback, NextItem, QueueContext, Submission, SubmitContext,
    SubmitOutcome, now_in, parse_gold,
};
use crate::answer::{matches_gold, same_answer};
use crate::audit::AuditEvent;
use crate::conn::{self, Columns, Conn, Param, Stmt, stmt};
use crate::db::pg_clock_ms;
use crate::error::{Result, StoreError, json_text, parse_json};
use crate::ids::{ItemId, UserId};
use crate::model::{
    AssignmentPurpose, AssignmentStatus, AuditAction, Id, ItemState, Project, User,
};
use crate::queue_rules::{
    GoldFeedbackMode, ModelVote, OverlapStep, answer_categories, decide_overlap_assisted,
    high_severity_threshold, severity_index, should_pause,
};
use crate::schema::LabelSchema;
use crate::{Backend, Dialect, Store, audit};
use serde_json::Value;
use std::sync::Arc;

impl Store {
    /// Stores a submission for an item served to this annotator. A submission after the
    /// lease expired is stored and flagged late; a retried key returns the first result.
    pub async fn submit(
        &self,
        project: &Project,
        user: &User,
        submission: Submission,
    ) -> Result<SubmitOutcome> {
        let queue = QueueContext::new(project, user)?;
        let context = Arc::new(self.submit_context(project, queue, &submission).await?);
        let submission = Arc::new(submission);
        let dialect = self.dialect();
        self.write_retrying(move |mut c| {
            let (context, submission) = (context.clone(), submission.clone());
            Box::pin(async move {
                let submitted =
                    submit_in(&mut c, dialect, &context, &submission, ThenLease::No).await?;
                Ok(submitted.outcome)
            })
        })
        .await
        .map_err(same_key_raced)
    }

    /// Stores a submission and leases the annotator's next item in the same transaction:
    /// what the label page does after every answer. One request and one durable commit
    /// instead of two. A retried key returns the first result and the lease the annotator
    /// holds (or a new one); a refused submission leases nothing.
    pub async fn submit_and_next(
        &self,
        project: &Project,
        user: &User,
        submission: Submission,
    ) -> Result<(SubmitOutcome, NextItem)> {
        let queue = QueueContext::new(project, user)?;
        let context = Arc::new(self.submit_context(project, queue, &submission).await?);
        let submission = Arc::new(submission);
        let dialect = self.dialect();
        let (outcome, found) = self
            .write_retrying(move |mut c| {
                let (context, submission) = (context.clone(), submission.clone());
                Box::pin(async move {
                    let submitted =
                        submit_in(&mut c, dialect, &context, &submission, ThenLease::Yes).await?;
                    let start = submitted.lease_start;
                    let found = lease_next(&mut c, dialect, &context.queue, start).await?;
                    Ok((submitted.outcome, found))
                })
            })
            .await
            .map_err(same_key_raced)?;
        Ok((outcome, self.served(project, found).await?))
    }

    /// What every submission is checked and stored with: the project's schema (the answer
    /// checked against it before anything is written) and the annotator's queue context.
    pub(super) async fn submit_context(
        &self,
        project: &Project,
        queue: QueueContext,
        submission: &Submission,
    ) -> Result<SubmitContext> {
        let version = self.project_schema(project).await?;
        check_submission(&version.definition, submission)?;
        Ok(SubmitContext {
            queue,
            version,
            gold_accuracy_bound: self.inner.gold_accuracy_bound,
        })
    }
}

/// The same key raced itself on PostgreSQL: the request that committed holds the answer.
fn same_key_raced(e: StoreError) -> StoreError {
    if e.is_unique_violation() {
        StoreError::conflict(
            "this submission is being stored by another request; retry to get its result",
        )
    } else {
        e
    }
}

/// Checks a submission against the schema before anything is written.
fn check_submission(schema: &LabelSchema, s: &Submission) -> Result<()> {
    let key = s.idempotency_key.trim();
    if key.len() < 8 || key.len() > 128 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(StoreError::invalid(
            "idempotency_key must be 8 to 128 printable characters, generated once per answer",
        ));
    }
    match s.kind {
        AnswerKind::Label => schema
            .validate_answer(&s.answer)
            .map_err(StoreError::Invalid)?,
        // An unsure answer may carry a best guess: only the codes given are checked.
        AnswerKind::Unsure => schema
            .validate_partial_answer(&s.answer)
            .map_err(StoreError::Invalid)?,
    }
    if s.kind == AnswerKind::Label
        && schema.rationale == "required"
        && s.rationale.trim().is_empty()
    {
        return Err(StoreError::invalid("this project asks for a rationale"));
    }
    if schema.rationale == "off" && !s.rationale.trim().is_empty() {
        return Err(StoreError::invalid(
            "this project's schema has no rationale field",
        ));
    }
    if let Some(flag) = s.flags.iter().find(|f| !schema.context_flags.contains(f)) {
        return Err(StoreError::invalid(format!(
            "{flag:?} is not a context flag of this project's schema"
        )));
    }
    if s.time_spent_ms.is_some_and(|t| t < 0) {
        return Err(StoreError::invalid("time_spent_ms cannot be negative"));
    }
    Ok(())
}

/// Whether the annotator's next lease follows a submission in the same transaction.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ThenLease {
    No,
    Yes,
}

/// A submission's outcome, and what it read that a lease following it can start from.
pub(super) struct Submitted {
    pub(super) outcome: SubmitOutcome,
    /// Only after a fresh production answer that left the annotator working: a replay, a
    /// calibration answer or a pause leaves the lease to read for itself.
    pub(super) lease_start: Option<LeaseStart>,
}

impl From<SubmitOutcome> for Submitted {
    fn from(outcome: SubmitOutcome) -> Self {
        Submitted {
            outcome,
            lease_start: None,
        }
    }
}

/// A submission, in named steps: a retried key is answered from what was stored; else the
/// annotation is written against the open assignment, the item settled, a model's
/// pre-label recorded, and the annotator's progress counted (with the pause rule).
pub(super) async fn submit_in(
    c: &mut Conn<'_>,
    dialect: Dialect,
    ctx: &SubmitContext,
    s: &Submission,
    then: ThenLease,
) -> Result<Submitted> {
    let key = s.idempotency_key.trim();
    let (now, stored) = clock_and_stored_under_key(c, dialect, ctx.user_id, key).await?;
    if let Some(stored) = stored {
        return replay(c, ctx, s, &stored).await.map(Submitted::from);
    }

    let a = match open_assignment(c, dialect, ctx, s).await {
        Ok(a) => a,
        // A retried calibration answer: its assignment is no longer open.
        Err(refused) => {
            return match replay_calibration(c, s, ctx.user_id, key).await? {
                Some(outcome) => Ok(outcome.into()),
                None => Err(refused),
            };
        }
    };
    if a.col::<AssignmentPurpose>("purpose")? == AssignmentPurpose::Calibration {
        return submit_calibration(c, dialect, ctx, s, &a, now)
            .await
            .map(Submitted::from);
    }
    store_answer(c, dialect, ctx, s, &a, now, then).await
}

/// A production answer (a label, a gold or a re-review item) stored against its open
/// assignment `a`: the annotation written, the item settled, and the progress counted.
async fn store_answer(
    c: &mut Conn<'_>,
    dialect: Dialect,
    ctx: &SubmitContext,
    s: &Submission,
    a: &conn::Row,
    now: i64,
    then: ThenLease,
) -> Result<Submitted> {
    let assignment_id: Id = a.col("id")?;
    let purpose: AssignmentPurpose = a.col("purpose")?;
    let counts = a.col::<i64>("counts_toward_overlap")? != 0;
    let (leased, late) = lease_state(a, now)?;
    let (gold_correct, gold_answer) = score_against_gold(a, s)?;

    let written = NewAnnotation {
        key: s.idempotency_key.trim(),
        late,
        gold_correct,
        now,
    };
    let annotation_id = insert_annotation(c, dialect, ctx, s, &written, assignment_id).await?;
    let settled = match purpose {
        AssignmentPurpose::Label => follow_up_label(c, ctx, s, a, counts, leased, now).await?,
        _ => None,
    };
    let with_count = WithCount { settled, then };
    let counted = count_submission(c, dialect, ctx, s, a, &written, with_count).await?;

    let gold = match (gold_correct, ctx.settings.gold_feedback) {
        (Some(correct), GoldFeedbackMode::Immediate) => Some(GoldFeedback {
            correct,
            expected: gold_answer,
        }),
        _ => None,
    };
    let outcome = SubmitOutcome {
        annotation_id,
        late,
        replayed: false,
        gold,
        paused: counted.paused,
        calibration: false,
    };
    Ok(Submitted {
        outcome,
        lease_start: counted.lease_start,
    })
}

/// Whether the assignment was still leased, and whether the answer came late (the lease
/// lapsed or was never taken).
fn lease_state(a: &conn::Row, now: i64) -> Result<(bool, bool)> {
    let leased = a.col::<AssignmentStatus>("status")? == AssignmentStatus::Leased;
    let expires_at: Option<i64> = a.col("expires_at")?;
    Ok((leased, !leased || expires_at.is_none_or(|e| e <= now)))
}

/// On a gold item, whether the label matches the gold answer (`None` when not scored),
/// and the gold answer.
fn score_against_gold(a: &conn::Row, s: &Submission) -> Result<(Option<bool>, Value)> {
    let is_gold = a.col::<i64>("is_gold")? != 0;
    let gold_answer = parse_gold(a.col("gold_answer")?)?;
    let gold_correct = (is_gold && s.kind == AnswerKind::Label && !gold_answer.is_null())
        .then(|| matches_gold(&s.answer, &gold_answer));
    Ok((gold_correct, gold_answer))
}

/// What a production label sets going: the item settled (when it counts toward the
/// overlap), a model's pre-label recorded, or a person's retest scheduled. The item's
/// update is returned rather than run: it goes with the progress update (on PostgreSQL in
/// one statement, one round trip for both).
async fn follow_up_label(
    c: &mut Conn<'_>,
    ctx: &SubmitContext,
    s: &Submission,
    a: &conn::Row,
    counts: bool,
    leased: bool,
    now: i64,
) -> Result<Option<Stmt>> {
    let settled = if counts {
        Some(settle_item(c, ctx, s, a, leased, now).await?)
    } else {
        None
    };
    if s.kind == AnswerKind::Label {
        if ctx.is_model {
            record_prelabel(c, ctx, s).await?;
        } else {
            schedule_retest(c, ctx, s.item_id, now).await?;
        }
    }
    Ok(settled)
}

/// A calibration item's answer goes to its round, never to the production labels: no
/// overlap, consensus or gold is touched; the person's progress (time, exposure) counts it.
async fn submit_calibration(
    c: &mut Conn<'_>,
    dialect: Dialect,
    ctx: &SubmitContext,
    s: &Submission,
    a: &conn::Row,
    now: i64,
) -> Result<SubmitOutcome> {
    let round_id = open_round_of(c, a).await?;
    let key = s.idempotency_key.trim();
    let answer_id = insert_calibration_answer(c, ctx, s, round_id, now).await?;
    c.execute(
        stmt("UPDATE assignments SET status = 'submitted', finished_at = $1 WHERE id = $2")
            .bind(now)
            .bind(a.col::<Id>("id")?),
    )
    .await?;
    let written = NewAnnotation {
        key,
        late: false,
        gold_correct: None,
        now,
    };
    let no_lease = WithCount {
        settled: None,
        then: ThenLease::No,
    };
    let paused = count_submission(c, dialect, ctx, s, a, &written, no_lease)
        .await?
        .paused;
    Ok(SubmitOutcome {
        annotation_id: answer_id,
        late: false,
        replayed: false,
        gold: None,
        paused,
        calibration: true,
    })
}

/// The round of a calibration assignment, which must still be open.
async fn open_round_of(c: &mut Conn<'_>, a: &conn::Row) -> Result<Id> {
    let round_id: Id = a
        .col::<Option<Id>>("calibration_round_id")?
        .ok_or_else(|| StoreError::Corrupt("a calibration assignment without a round".into()))?;
    let open = c
        .fetch_optional(
            stmt("SELECT 1 AS open FROM calibration_rounds WHERE id = $1 AND status = 'open'")
                .bind(round_id),
        )
        .await?
        .is_some();
    if !open {
        return Err(StoreError::conflict(
            "this calibration round has closed; the answer was not stored",
        ));
    }
    Ok(round_id)
}

async fn insert_calibration_answer(
    c: &mut Conn<'_>,
    ctx: &SubmitContext,
    s: &Submission,
    round_id: Id,
    now: i64,
) -> Result<Id> {
    c.insert_id(
        stmt(
            "INSERT INTO calibration_answers (round_id, item_id, user_id, kind, answer, \
               rationale, guideline_version_id, time_spent_ms, idempotency_key, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(round_id)
        .bind(s.item_id)
        .bind(ctx.user_id)
        .bind(s.kind.as_str())
        .bind(json_text(&s.answer))
        .bind(s.rationale.trim())
        .bind(s.guideline_version_id)
        .bind(s.time_spent_ms)
        .bind(s.idempotency_key.trim())
        .bind(now),
    )
    .await
}

/// A retry of a stored calibration answer: answered with what the first request stored.
async fn replay_calibration(
    c: &mut Conn<'_>,
    s: &Submission,
    user_id: UserId,
    key: &str,
) -> Result<Option<SubmitOutcome>> {
    let Some(row) = c
        .fetch_optional(
            stmt(
                "SELECT id, item_id, kind, answer FROM calibration_answers \
                 WHERE user_id = $1 AND idempotency_key = $2",
            )
            .bind(user_id)
            .bind(key),
        )
        .await?
    else {
        return Ok(None);
    };
    require_same_submission(&row, s)?;
    Ok(Some(SubmitOutcome {
        annotation_id: row.col("id")?,
        late: false,
        replayed: true,
        gold: None,
        paused: false,
        calibration: true,
    }))
}

/// Test–retest: a drawn share of a person's labels is served to them again, after the
/// project's delay, as an ordinary-looking item (the lease does not say it is a retest).
async fn schedule_retest(
    c: &mut Conn<'_>,
    ctx: &SubmitContext,
    item_id: ItemId,
    now: i64,
) -> Result<()> {
    let plan = &ctx.settings.retest;
    if !plan.drawn(ctx.user_id, item_id) {
        return Ok(());
    }
    c.execute(
        stmt(
            "INSERT INTO assignments (project_id, item_id, user_id, purpose, status, \
               counts_toward_overlap, available_at) VALUES ($1, $2, $3, 'retest', 'assigned', 0, $4)",
        )
        .bind(ctx.project_id)
        .bind(item_id)
        .bind(ctx.user_id)
        .bind(now + plan.delay_ms()),
    )
    .await?;
    Ok(())
}

/// What the new annotation records besides the submission itself.
struct NewAnnotation<'a> {
    key: &'a str,
    late: bool,
    gold_correct: Option<bool>,
    now: i64,
}

/// The database clock, and the annotation this annotator stored under this idempotency
/// key, if any. On PostgreSQL one round trip brings both.
async fn clock_and_stored_under_key(
    c: &mut Conn<'_>,
    dialect: Dialect,
    user_id: UserId,
    key: &str,
) -> Result<(i64, Option<conn::Row>)> {
    macro_rules! stored_columns {
        () => {
            "a.id, a.item_id, a.is_late, a.gold_correct, a.answer, a.kind, i.gold_answer"
        };
    }
    match dialect.0 {
        Backend::Sqlite => {
            let stored = c
                .fetch_optional(
                    stmt(concat!(
                        "SELECT ",
                        stored_columns!(),
                        " FROM annotations a JOIN items i ON i.id = a.item_id \
                         WHERE a.annotator_id = $1 AND a.idempotency_key = $2"
                    ))
                    .bind(user_id)
                    .bind(key),
                )
                .await?;
            Ok((now_in(c, dialect).await?, stored))
        }
        Backend::Postgres => {
            let row = c
                .fetch_one(
                    stmt(concat!(
                        "SELECT ",
                        pg_clock_ms!(),
                        " AS now, ",
                        stored_columns!(),
                        " FROM (SELECT 1) AS clock \
                         LEFT JOIN annotations a \
                           ON a.annotator_id = $1 AND a.idempotency_key = $2 \
                         LEFT JOIN items i ON i.id = a.item_id"
                    ))
                    .bind(user_id)
                    .bind(key),
                )
                .await?;
            let now = row.col("now")?;
            let stored = row.col::<Option<Id>>("id")?.is_some().then_some(row);
            Ok((now, stored))
        }
    }
}

/// What is stored under a retried key (`item_id`, `kind`, `answer`, `id`) must be this
/// submission: another item is a conflict, another answer `KeyReused` with the stored one.
fn require_same_submission(row: &conn::Row, s: &Submission) -> Result<()> {
    if row.col::<ItemId>("item_id")? != s.item_id {
        return Err(StoreError::conflict(
            "this idempotency key was already used for another item",
        ));
    }
    let stored_answer: Value = parse_json(&row.col::<String>("answer")?, "answer")?;
    let stored_kind: AnswerKind = row.col("kind")?;
    if stored_kind != s.kind || !same_answer(&stored_answer, &s.answer) {
        return Err(StoreError::KeyReused {
            annotation_id: row.col("id")?,
            stored_answer,
            stored_kind,
        });
    }
    Ok(())
}

/// A retry: answer with what the first request stored, if it is the same answer.
async fn replay(
    c: &mut Conn<'_>,
    ctx: &SubmitContext,
    s: &Submission,
    row: &conn::Row,
) -> Result<SubmitOutcome> {
    require_same_submission(row, s)?;
    let gold = match (
        row.col::<Option<i64>>("gold_correct")?,
        ctx.settings.gold_feedback,
    ) {
        (Some(correct), GoldFeedbackMode::Immediate) => Some(GoldFeedback {
            correct: correct != 0,
            expected: parse_gold(row.col("gold_answer")?)?,
        }),
        _ => None,
    };
    let paused = c
        .fetch_optional(
            stmt("SELECT paused FROM annotator_progress WHERE project_id = $1 AND user_id = $2")
                .bind(ctx.project_id)
                .bind(ctx.user_id),
        )
        .await?
        .map(|r| r.col::<i64>("paused"))
        .transpose()?
        .unwrap_or(0)
        != 0;
    Ok(SubmitOutcome {
        annotation_id: row.col("id")?,
        late: row.col::<i64>("is_late")? != 0,
        replayed: true,
        gold,
        paused,
        calibration: false,
    })
}

/// The latest open assignment of this item to this annotator, with the item's counts.
async fn open_assignment(
    c: &mut Conn<'_>,
    dialect: Dialect,
    ctx: &SubmitContext,
    s: &Submission,
) -> Result<conn::Row> {
    // The item's counts are read here and written back in `settle_item`: on PostgreSQL the
    // row is locked until commit, or a concurrent lease's `slots_taken + 1` would be lost and
    // the item served past its overlap. (SQLite's single writer serialises this already.)
    let lock = match dialect.0 {
        Backend::Postgres => " FOR UPDATE OF i",
        Backend::Sqlite => "",
    };
    // There is one, or a few after retests: the latest is picked here rather than by
    // `ORDER BY … LIMIT 1`, and the statuses are spelled out with OR, because on SQLite both
    // made every submission build a temporary B-tree (a three-value IN list is one too).
    let mut assignments = c
        .fetch_all(
            stmt(format!(
                "SELECT s.id, s.purpose, s.status, s.expires_at, s.counts_toward_overlap, \
           s.calibration_round_id, \
           i.is_gold, i.gold_answer, i.needed, i.labels_count, i.slots_taken, i.state, i.open, \
           i.prelabel_severity \
         FROM assignments s JOIN items i ON i.id = s.item_id \
         WHERE s.project_id = $1 AND s.item_id = $2 AND s.user_id = $3 \
           AND (s.status = 'leased' OR s.status = 'expired' OR s.status = 'skipped' \
                OR (s.status = 'assigned' AND s.purpose = 'calibration')){lock}"
            ))
            .bind(ctx.project_id)
            .bind(s.item_id)
            .bind(ctx.user_id),
        )
        .await?;
    let mut latest = None;
    for (index, row) in assignments.iter().enumerate() {
        let id: Id = row.col("id")?;
        if latest.is_none_or(|(_, best)| id > best) {
            latest = Some((index, id));
        }
    }
    match latest {
        Some((index, _)) => Ok(assignments.swap_remove(index)),
        None => Err(StoreError::conflict(format!(
            "item {} was not served to you (or you already answered it); \
             ask for the next item first",
            s.item_id
        ))),
    }
}

/// The annotation, and its assignment marked submitted with it (one statement on
/// PostgreSQL).
async fn insert_annotation(
    c: &mut Conn<'_>,
    dialect: Dialect,
    ctx: &SubmitContext,
    s: &Submission,
    new: &NewAnnotation<'_>,
    assignment_id: Id,
) -> Result<Id> {
    let insert = stmt(
        "INSERT INTO annotations (project_id, item_id, annotator_id, answer, rationale, flags, \
           guideline_version_id, schema_version_id, time_spent_ms, idempotency_key, is_late, \
           kind, gold_correct, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(ctx.project_id)
    .bind(s.item_id)
    .bind(ctx.user_id)
    .bind(json_text(&s.answer))
    .bind(s.rationale.trim())
    .bind(json_text(&s.flags))
    .bind(s.guideline_version_id)
    .bind(ctx.version.id)
    .bind(s.time_spent_ms)
    .bind(new.key)
    .bind(new.late as i64)
    .bind(s.kind.as_str())
    .bind(new.gold_correct.map(i64::from))
    .bind(new.now);
    // The statement's text is spliced at compile time, as everywhere on the hot path.
    macro_rules! mark_submitted {
        ($annotation_id:literal) => {
            concat!(
                "UPDATE assignments SET status = 'submitted', annotation_id = ",
                $annotation_id,
                ", finished_at = $1 WHERE id = $2"
            )
        };
    }
    let mark = |sql: &'static str| stmt(sql).bind(new.now).bind(assignment_id);
    match dialect.0 {
        Backend::Sqlite => {
            let annotation_id = c.insert_id(insert).await?;
            c.execute(mark(mark_submitted!("$3")).bind(annotation_id))
                .await?;
            Ok(annotation_id)
        }
        Backend::Postgres => {
            let marked = mark(mark_submitted!("(SELECT id FROM annotation)"))
                .push_sql(" RETURNING annotation_id")
                .after_steps(vec![("annotation", insert.push_sql(" RETURNING id"))]);
            c.fetch_one(marked).await?.col("annotation_id")
        }
    }
}

/// A model's label is the item's automated pre-label: it orders the queue by severity and
/// tells which categories are in play.
async fn record_prelabel(c: &mut Conn<'_>, ctx: &SubmitContext, s: &Submission) -> Result<()> {
    let severity = severity_index(ctx.schema(), &s.answer).unwrap_or(-1);
    // A higher severity moves an open item forward in the queue's order.
    super::reopened(
        c,
        s.item_id,
        "prelabel_severity < $2 AND open = 1 AND is_gold = 0",
        &[severity],
    )
    .await?;
    c.execute(
        stmt("UPDATE items SET prelabel_severity = $1, prelabel_categories = $2 WHERE id = $3")
            .bind(severity)
            .bind(json_text(&answer_categories(ctx.schema(), &s.answer)))
            .bind(s.item_id),
    )
    .await?;
    Ok(())
}

/// What goes with the progress count: the item's update still to run (on PostgreSQL in the
/// same statement), and whether a lease follows (the count then returns the lease's columns).
struct WithCount {
    settled: Option<Stmt>,
    then: ThenLease,
}

/// What counting a submission left: whether the annotator is paused, and where a lease in
/// the same transaction starts.
struct Counted {
    paused: bool,
    lease_start: Option<LeaseStart>,
}

/// Progress: counts, time, high-severity time and gold; then the pause rule.
async fn count_submission(
    c: &mut Conn<'_>,
    dialect: Dialect,
    ctx: &SubmitContext,
    s: &Submission,
    a: &conn::Row,
    new: &NewAnnotation<'_>,
    with: WithCount,
) -> Result<Counted> {
    let threshold = high_severity_threshold(ctx.schema(), &ctx.settings);
    let severity =
        severity_index(ctx.schema(), &s.answer).max(Some(a.col::<i64>("prelabel_severity")?));
    let high = matches!((severity, threshold), (Some(v), Some(t)) if v >= t);
    let spent = s.time_spent_ms.unwrap_or(0);
    if high && !ctx.is_model {
        count_exposure(c, ctx, s, new.now / DAY_MS, spent).await?;
    }
    let (answered, correct) = match new.gold_correct {
        Some(ok) => (1, ok as i64),
        None => (0, 0),
    };
    let counts = SubmissionCounts {
        now: new.now,
        spent,
        high_severity_spent: if high { spent } else { 0 },
        gold_answered: answered,
        gold_correct: correct,
    };
    let then = with.then;
    let Some(progress) = add_to_progress(c, dialect, ctx, &counts, with).await? else {
        return Ok(Counted {
            paused: false,
            lease_start: None,
        });
    };
    let paused = apply_pause_rule(c, ctx, &progress, answered > 0, new.now).await?;
    // A pause rewrote the row just read: the lease reads it again and is told so.
    let lease_start = (then == ThenLease::Yes && !paused).then_some(LeaseStart {
        now: new.now,
        progress,
    });
    Ok(Counted {
        paused,
        lease_start,
    })
}

/// A person's high-severity label counts toward their exposure in each category it names,
/// for today (the queue's exposure budgets read it).
async fn count_exposure(
    c: &mut Conn<'_>,
    ctx: &SubmitContext,
    s: &Submission,
    day: i64,
    spent: i64,
) -> Result<()> {
    for category in answer_categories(ctx.schema(), &s.answer) {
        c.execute(
            stmt(
                "INSERT INTO exposure_days (project_id, user_id, day, category, items, time_ms) \
                 VALUES ($1, $2, $3, $4, 1, $5) \
                 ON CONFLICT (project_id, user_id, day, category) DO UPDATE SET \
                   items = exposure_days.items + 1, time_ms = exposure_days.time_ms + $5",
            )
            .bind(ctx.project_id)
            .bind(ctx.user_id)
            .bind(day)
            .bind(category)
            .bind(spent),
        )
        .await?;
    }
    Ok(())
}

/// What one submission adds to the annotator's progress row.
struct SubmissionCounts {
    now: i64,
    spent: i64,
    high_severity_spent: i64,
    gold_answered: i64,
    gold_correct: i64,
}

/// Adds a submission to the progress row; returns the columns the pause rule reads, and
/// the lease's when one follows. The item's update (`with.settled`) runs in the same
/// statement on PostgreSQL.
async fn add_to_progress(
    c: &mut Conn<'_>,
    dialect: Dialect,
    ctx: &SubmitContext,
    counts: &SubmissionCounts,
    with: WithCount,
) -> Result<Option<conn::Row>> {
    // long: one statement spelled for both back ends (SQLite reads the row back instead of
    // RETURNING), each with and without the lease's columns, as compile-time text for the
    // hot path.
    macro_rules! count_submission {
        () => {
            "UPDATE annotator_progress SET \
               done_today = CASE WHEN day = $1 THEN done_today + 1 ELSE 1 END, day = $2, \
               done_total = done_total + 1, time_total_ms = time_total_ms + $3, \
               high_severity_ms = high_severity_ms + $4, \
               gold_answered = gold_answered + $5, gold_correct = gold_correct + $6, \
               window_gold_answered = window_gold_answered + $7, \
               window_gold_correct = window_gold_correct + $8 \
             WHERE project_id = $9 AND user_id = $10"
        };
    }
    macro_rules! pause_columns {
        () => {
            "window_gold_answered, window_gold_correct, paused"
        };
    }
    // The lease's columns include `paused`.
    macro_rules! pause_and_lease_columns {
        () => {
            concat!(
                "window_gold_answered, window_gold_correct, ",
                progress_for_lease_columns!()
            )
        };
    }
    let day = counts.now / DAY_MS;
    let count = |sql: &'static str| {
        stmt(sql)
            .bind(day)
            .bind(day)
            .bind(counts.spent)
            .bind(counts.high_severity_spent)
            .bind(counts.gold_answered)
            .bind(counts.gold_correct)
            .bind(counts.gold_answered)
            .bind(counts.gold_correct)
            .bind(ctx.project_id)
            .bind(ctx.user_id)
    };
    match dialect.0 {
        // As for the lease's item: no temporary B-tree for a RETURNING row on SQLite.
        Backend::Sqlite => {
            if let Some(settled) = with.settled {
                c.execute(settled).await?;
            }
            c.execute(count(count_submission!())).await?;
            let read_back = match with.then {
                ThenLease::No => stmt(concat!(
                    "SELECT ",
                    pause_columns!(),
                    " FROM annotator_progress WHERE project_id = $1 AND user_id = $2"
                ))
                .bind(ctx.project_id)
                .bind(ctx.user_id),
                ThenLease::Yes => sqlite_progress_read(ctx.project_id, ctx.user_id, counts.now),
            };
            c.fetch_optional(read_back).await
        }
        Backend::Postgres => {
            let update = match with.then {
                ThenLease::No => count(concat!(
                    count_submission!(),
                    " RETURNING ",
                    pause_columns!()
                )),
                ThenLease::Yes => count(concat!(
                    count_submission!(),
                    " RETURNING ",
                    pause_and_lease_columns!(),
                    ", ",
                    pg_lease_checks!("$9", "$11")
                ))
                .bind(counts.now),
            };
            let update = match with.settled {
                Some(settled) => update.after_steps(vec![("settled", settled)]),
                None => update,
            };
            c.fetch_optional(update).await
        }
    }
}

/// Pauses the annotator when their gold record since the last resume shows them below the
/// project's threshold ([`should_pause`]: the interval's upper bound, checked only after a
/// gold answer). True when paused afterwards.
async fn apply_pause_rule(
    c: &mut Conn<'_>,
    ctx: &SubmitContext,
    progress: &conn::Row,
    answered_gold: bool,
    now: i64,
) -> Result<bool> {
    let paused = progress.col::<i64>("paused")? != 0;
    let window_answered: i64 = progress.col("window_gold_answered")?;
    let window_correct: i64 = progress.col("window_gold_correct")?;
    let bound = ctx.gold_accuracy_bound;
    if paused
        || !answered_gold
        || !should_pause(&ctx.settings, bound, window_correct, window_answered)
    {
        return Ok(paused);
    }
    pause(c, ctx, window_correct, window_answered, now).await?;
    Ok(true)
}

async fn pause(
    c: &mut Conn<'_>,
    ctx: &SubmitContext,
    window_correct: i64,
    window_answered: i64,
    now: i64,
) -> Result<()> {
    let reason = format!(
        "gold accuracy {window_correct}/{window_answered} on the last {window_answered} gold \
         items is below the project's {:.0}% even at its most favourable (95% bound {:.0}%); \
         a QA analyst can resume you",
        ctx.settings.pause_below * 100.0,
        (ctx.gold_accuracy_bound)(window_correct.max(0) as u64, window_answered.max(0) as u64)
            * 100.0
    );
    c.execute(
        stmt(
            "UPDATE annotator_progress SET paused = 1, paused_reason = $1, paused_at = $2 \
             WHERE project_id = $3 AND user_id = $4",
        )
        .bind(&reason)
        .bind(now)
        .bind(ctx.project_id)
        .bind(ctx.user_id),
    )
    .await?;
    audit::record_in(
        c,
        AuditEvent {
            actor: None,
            project: Some(ctx.project_id),
            action: AuditAction::Pause,
            entity: "annotator",
            entity_id: Some(ctx.user_id.get()),
            before: None,
            after: audit::snapshot(&serde_json::json!({"reason": reason})),
        },
    )
    .await?;
    Ok(())
}

/// Overlap accounting and the item's state after a counted submission: the update of the
/// item's row, for the caller to run.
async fn settle_item(
    c: &mut Conn<'_>,
    ctx: &SubmitContext,
    s: &Submission,
    a: &conn::Row,
    slot_still_held: bool,
    now: i64,
) -> Result<Stmt> {
    let state: ItemState = a.col("state")?;
    let labels = a.col::<i64>("labels_count")? + 1;
    let needed = a
        .col::<Option<i64>>("needed")?
        .unwrap_or_else(|| ctx.settings.initial_needed(s.item_id));
    // A late submission whose slot went back to the queue takes a slot again: the work is
    // kept even if that puts the item over its overlap.
    let slots = a.col::<i64>("slots_taken")? + i64::from(!slot_still_held);
    let next = next_item_state(c, ctx, s, state, labels, needed).await?;
    let open = next.state == ItemState::InProgress && slots < next.needed
        || next.state == ItemState::Queued;
    let counts = ItemCounts {
        labels,
        slots,
        now,
        state_changed: next.state != state,
        open_changed: open != (a.col::<i64>("open")? != 0),
        open,
    };
    if counts.open_changed && open {
        // A raised overlap (or a late submission) reopened it: it may lie before places
        // people remembered in the queue's order.
        super::reopened(c, s.item_id, "is_gold = 0", &[]).await?;
    }
    Ok(item_counts_update(s.item_id, &next, &counts))
}

/// Where an item goes after a counted submission.
struct NextState {
    state: ItemState,
    /// Why it was escalated, when it was.
    reason: Option<&'static str>,
    /// Its overlap, one more when the votes asked for another label.
    needed: i64,
    /// Human labels the item was not asked for because a confident model agreed.
    assist_saved: i64,
}

/// An unsure answer escalates; an item with its overlap (or, under model-assisted overlap,
/// any item) is decided by the votes and the model's; otherwise the item keeps collecting
/// labels. Items past collecting keep their state.
async fn next_item_state(
    c: &mut Conn<'_>,
    ctx: &SubmitContext,
    s: &Submission,
    state: ItemState,
    labels: i64,
    needed: i64,
) -> Result<NextState> {
    let mut next = NextState {
        state,
        reason: None,
        needed,
        assist_saved: 0,
    };
    let collecting = matches!(state, ItemState::Queued | ItemState::InProgress);
    let assist = ctx.settings.model_assist.enabled;
    if collecting && s.kind == AnswerKind::Unsure {
        next.state = ItemState::Escalated;
        next.reason = Some("unsure");
    } else if collecting && (labels >= needed || assist) {
        let answers = counted_answers(c, s.item_id).await?;
        let model = if assist {
            model_vote(c, ctx, s.item_id).await?
        } else {
            None
        };
        let step = decide_overlap_assisted(
            &ctx.settings,
            ctx.schema(),
            needed,
            &answers,
            model.as_ref(),
        );
        next.state = ItemState::InProgress;
        match step {
            OverlapStep::Wait => {}
            OverlapStep::Done => {
                next.state = ItemState::Labelled;
                next.assist_saved = (needed - labels).max(0);
            }
            OverlapStep::Need(more) => next.needed = more,
            OverlapStep::Escalate(reason) => {
                next.state = ItemState::Escalated;
                next.reason = Some(reason.as_str());
            }
        }
    } else if collecting {
        next.state = ItemState::InProgress;
    }
    Ok(next)
}

/// The item's latest model label and its score, for model-assisted overlap.
async fn model_vote(
    c: &mut Conn<'_>,
    ctx: &SubmitContext,
    item_id: ItemId,
) -> Result<Option<ModelVote>> {
    let row = c
        .fetch_optional(
            stmt(
                "SELECT a.answer, ml.confidence FROM annotations a \
                 JOIN users u ON u.id = a.annotator_id \
                 LEFT JOIN model_labels ml ON ml.annotation_id = a.id \
                 WHERE a.item_id = $1 AND u.kind = 'model' ORDER BY a.id DESC LIMIT 1",
            )
            .bind(item_id),
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let answer = parse_json::<Value>(&row.col::<String>("answer")?, "answer")?;
    let confidence: Option<f64> = row.col("confidence")?;
    Ok(Some(ModelVote::from_label(
        ctx.schema(),
        answer,
        confidence,
    )))
}

/// The labels submitted on the item's counted slots.
async fn counted_answers(c: &mut Conn<'_>, item_id: ItemId) -> Result<Vec<Value>> {
    c.fetch_all(
        stmt(
            "SELECT a.answer FROM assignments s JOIN annotations a ON a.id = s.annotation_id \
             WHERE s.item_id = $1 AND s.counts_toward_overlap = 1 AND s.status = 'submitted' \
               AND a.kind = 'label'",
        )
        .bind(item_id),
    )
    .await?
    .iter()
    .map(|row| parse_json::<Value>(&row.col::<String>("answer")?, "answer"))
    .collect()
}

/// The item's counts after a submission, and which indexed columns change.
struct ItemCounts {
    labels: i64,
    slots: i64,
    now: i64,
    state_changed: bool,
    open_changed: bool,
    open: bool,
}

fn item_counts_update(item_id: ItemId, next: &NextState, counts: &ItemCounts) -> Stmt {
    // `state` and `open` are written only when they change: each is a column of an index on
    // `items`, and most submissions change neither.
    let mut sql = String::from(
        "UPDATE items SET labels_count = $1, slots_taken = $2, needed = $3, updated_at = $4",
    );
    if next.assist_saved > 0 {
        sql += &format!(", assist_saved = {}", next.assist_saved);
    }
    let mut update = Vec::with_capacity(3);
    if counts.state_changed {
        sql += ", state = $5";
        update.push(Param::from(next.state.as_str()));
    }
    if counts.open_changed {
        sql += &format!(", open = ${}", 5 + update.len());
        update.push(Param::from(counts.open as i64));
    }
    if let Some(reason) = next.reason {
        sql += &format!(", escalation_reason = ${}", 5 + update.len());
        update.push(Param::from(reason));
    }
    sql += &format!(" WHERE id = ${}", 5 + update.len());
    let mut query = stmt(sql)
        .bind(counts.labels)
        .bind(counts.slots)
        .bind(next.needed)
        .bind(counts.now);
    for value in update {
        query = query.bind(value);
    }
    query.bind(item_id)
}
