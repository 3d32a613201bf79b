//! Serving an item under a lease: expired leases reclaimed, a held lease or re-review
//! first, the daily cap, the next candidate, gold mixed in, and the lease taken.

use super::candidates::{CandidateSearch, NextCandidate, PersonWalk};
use super::{DAY_MS, Lease, NextItem, QueueContext, now_in, return_slot};
use crate::conn::{self, Columns, Conn, Stmt, stmt};
use crate::db::pg_clock_ms;
use crate::error::{Result, parse_json};
use crate::ids::{ItemId, ProjectId, UserId};
use crate::items::item_returning;
use crate::model::{AssignmentPurpose, AssignmentStatus, Id, Project, User};
use crate::{Backend, Dialect, Store};
use std::sync::Arc;

impl Store {
    /// Serves the next item to an annotator (or the one they already hold), reserving it
    /// under a lease. See the module documentation for how overlap holds across servers.
    pub async fn next_item(&self, project: &Project, user: &User) -> Result<NextItem> {
        self.lease_for(project, QueueContext::new(project, user)?)
            .await
    }

    /// A lease transaction for this annotator and what it found, as they are told it.
    pub(super) async fn lease_for(
        &self,
        project: &Project,
        context: QueueContext,
    ) -> Result<NextItem> {
        let context = Arc::new(context);
        let dialect = self.dialect();
        let found = self
            .write_retrying(move |mut c| {
                let context = context.clone();
                Box::pin(async move { lease_next(&mut c, dialect, &context, None).await })
            })
            .await?;
        self.served(project, found).await
    }

    /// What a lease transaction found, as the annotator is told it.
    pub(super) async fn served(&self, project: &Project, found: Found) -> Result<NextItem> {
        match found {
            Found::Leased {
                assignment_id,
                item_id,
                purpose,
                expires_at,
                resumed,
                row,
            } => {
                let item = match row {
                    Some(row) => crate::items::item_from_row(&row)?,
                    None => self.item(project.id, ItemId(item_id)).await?,
                };
                Ok(NextItem::Leased(Box::new(Lease {
                    assignment_id,
                    item,
                    purpose,
                    expires_at,
                    resumed,
                    calibration: purpose == AssignmentPurpose::Calibration,
                })))
            }
            Found::Paused(reason) => Ok(NextItem::Paused { reason }),
            Found::CapReached(cap) => Ok(NextItem::CapReached { cap }),
            Found::Empty => Ok(NextItem::Empty),
        }
    }
}

pub(super) enum Found {
    Leased {
        assignment_id: Id,
        item_id: Id,
        purpose: AssignmentPurpose,
        expires_at: i64,
        resumed: bool,
        /// The item as the lease's own update returned it, when there was one (saves
        /// the request a read of its own).
        row: Option<conn::Row>,
    },
    Paused(String),
    CapReached(i64),
    Empty,
}

/// The progress columns a lease reads, spliced into both statements at compile time (the
/// hot path builds no SQL text).
macro_rules! progress_for_lease_columns {
    () => {
        "paused, paused_reason, day, done_today, daily_cap, served_total, gold_served, \
         excluded_categories, cursor_priority, cursor_item_id, cursor_epoch, calibration_hold, \
         walk_priority, walk_severity, walk_item_id, walk_epoch"
    };
}

pub(super) use progress_for_lease_columns;

/// PostgreSQL: whether any lease of the project has expired by `$clock` (an SQL
/// expression), and the project's walk epoch, as columns beside the progress row's.
macro_rules! pg_lease_checks {
    ($project:literal, $clock:literal) => {
        concat!(
            "(SELECT queue_epoch + reopen_epoch FROM projects WHERE id = ",
            $project,
            ") AS project_walk_epoch, \
             (CASE WHEN EXISTS (SELECT 1 FROM assignments WHERE project_id = ",
            $project,
            " AND status = 'leased' AND expires_at <= ",
            $clock,
            ") THEN 1 ELSE 0 END)::bigint AS any_expired"
        )
    };
}
pub(super) use pg_lease_checks;

/// SQLite: the annotator's progress row with the pause rule's and the lease's columns, and
/// whether any lease of the project has expired by `now`. A lease reads it, and so does an
/// answer that a lease follows (after its count).
pub(super) fn sqlite_progress_read(project_id: ProjectId, user_id: UserId, now: i64) -> Stmt {
    stmt(concat!(
        "SELECT window_gold_answered, window_gold_correct, ",
        progress_for_lease_columns!(),
        ", EXISTS (SELECT 1 FROM assignments WHERE project_id = $1 AND status = 'leased' \
           AND expires_at <= $3) AS any_expired \
         FROM annotator_progress WHERE project_id = $1 AND user_id = $2"
    ))
    .bind(project_id)
    .bind(user_id)
    .bind(now)
}

/// What a submission hands to the lease that follows it in the same transaction: the clock
/// it read and the progress row its count returned, with the lease's columns and checks
/// (`any_expired`, and on PostgreSQL `project_walk_epoch`). The row is already locked on
/// PostgreSQL by the count's update, so the lease need not read or lock it again.
pub(super) struct LeaseStart {
    pub(super) now: i64,
    pub(super) progress: conn::Row,
}

/// The annotator's progress row, created if missing, with the lease's columns. On
/// PostgreSQL the upsert also locks it: one queue request per annotator at a time, across
/// servers.
macro_rules! progress_upsert {
    () => {
        concat!(
            "INSERT INTO annotator_progress (project_id, user_id) VALUES ($1, $2) \
             ON CONFLICT (project_id, user_id) DO UPDATE SET day = annotator_progress.day \
             RETURNING ",
            progress_for_lease_columns!()
        )
    };
}

/// SQLite: the annotator's progress row for a lease ([`sqlite_progress_read`]), created
/// on first use. The single writer serialises queue requests already, so the row is only
/// read (an upsert would rewrite it).
async fn sqlite_progress_for_lease(
    c: &mut Conn<'_>,
    project_id: ProjectId,
    user_id: UserId,
    now: i64,
) -> Result<conn::Row> {
    let read = || sqlite_progress_read(project_id, user_id, now);
    if let Some(row) = c.fetch_optional(read()).await? {
        return Ok(row);
    }
    c.execute(
        stmt(
            "INSERT INTO annotator_progress (project_id, user_id) VALUES ($1, $2) \
             ON CONFLICT (project_id, user_id) DO NOTHING",
        )
        .bind(project_id)
        .bind(user_id),
    )
    .await?;
    c.fetch_one(read()).await
}

/// The database clock and the annotator's progress row (created on first use, locked on
/// PostgreSQL), with expired leases reclaimed first.
async fn clock_and_progress(
    c: &mut Conn<'_>,
    dialect: Dialect,
    ctx: &QueueContext,
) -> Result<(i64, conn::Row)> {
    match dialect.0 {
        Backend::Sqlite => {
            let now = now_in(c, dialect).await?;
            let progress = sqlite_progress_for_lease(c, ctx.project_id, ctx.user_id, now).await?;
            LeaseStart { now, progress }.reclaiming(c, ctx).await
        }
        // Each statement is a round trip to the database, which costs both processes more
        // CPU than the statement itself: the clock, the check for expired leases and the
        // progress row come back from one. The progress row is locked before the reclaim
        // here: another request of the same annotator waits for it either way, and the
        // reclaim's rows are checked again under their own locks. (A late submission of the
        // same annotator's expired lease, holding the item and waiting for this row, can now
        // deadlock with a reclaim of that item; PostgreSQL undoes one and it is retried.)
        Backend::Postgres => {
            let progress = c
                .fetch_one(
                    stmt(concat!(
                        "WITH clock AS (SELECT ",
                        pg_clock_ms!(),
                        " AS now), progress AS (",
                        progress_upsert!(),
                        ") SELECT progress.*, clock.now, ",
                        pg_lease_checks!("$1", "clock.now"),
                        " FROM progress, clock"
                    ))
                    .bind(ctx.project_id)
                    .bind(ctx.user_id),
                )
                .await?;
            let now = progress.col("now")?;
            LeaseStart { now, progress }.reclaiming(c, ctx).await
        }
    }
}

impl LeaseStart {
    /// The clock and the progress row, after expired leases gave their slots back.
    async fn reclaiming(self, c: &mut Conn<'_>, ctx: &QueueContext) -> Result<(i64, conn::Row)> {
        if self.progress.col::<i64>("any_expired")? != 0 {
            reclaim_expired_leases(c, ctx.project_id, self.now).await?;
        }
        Ok((self.now, self.progress))
    }
}

/// What an annotator held by a calibration round is told when their round's items are done.
const CALIBRATION_HOLD: &str = "waiting for calibration: production work starts when you \
     pass the calibration round or a QA analyst releases you";

/// When a lease starts and ends, by the database clock.
#[derive(Clone, Copy)]
pub(super) struct LeaseTime {
    pub(super) now: i64,
    pub(super) expires_at: i64,
}

/// A lease, in named steps: reclaim expired leases, then the paused check, a lease already
/// held or a re-review (a retest, a calibration item), the daily cap, the calibration hold,
/// a candidate, gold mixed in, and the lease taken. `start` is what a submission in the same
/// transaction already read; without it the clock and progress row are read here.
pub(super) async fn lease_next(
    c: &mut Conn<'_>,
    dialect: Dialect,
    ctx: &QueueContext,
    start: Option<LeaseStart>,
) -> Result<Found> {
    let (now, progress) = match start {
        Some(start) => start.reclaiming(c, ctx).await?,
        None => clock_and_progress(c, dialect, ctx).await?,
    };
    if progress.col::<i64>("paused")? != 0 {
        let reason: Option<String> = progress.col("paused_reason")?;
        return Ok(Found::Paused(reason.unwrap_or_else(|| "paused".into())));
    }

    let held = held_assignment(c, ctx, now).await?;
    if let Some(row) = &held
        && row.col::<AssignmentStatus>("status")? == AssignmentStatus::Leased
    {
        return resumed_lease(row);
    }

    if let Some(cap) = cap_reached(&progress, ctx, now / DAY_MS)? {
        return Ok(Found::CapReached(cap));
    }

    let time = LeaseTime {
        now,
        expires_at: now + ctx.settings.lease_seconds * 1000,
    };
    if let Some(row) = held {
        return lease_assigned(c, ctx, &row, time).await;
    }
    if progress.col::<Option<Id>>("calibration_hold")?.is_some() {
        return Ok(Found::Paused(CALIBRATION_HOLD.into()));
    }

    let excluded = excluded_categories(c, ctx, &progress, now).await?;
    let model_epoch = model_epoch(c, ctx, &excluded).await?;
    let walk_epoch = walk_epoch(c, dialect, ctx, &progress, &excluded).await?;
    let search = CandidateSearch {
        dialect,
        ctx,
        progress: &progress,
        excluded: &excluded,
    };
    let Some(candidate) = search.next_item(c, model_epoch, walk_epoch).await? else {
        return Ok(Found::Empty);
    };
    if let Some(gold) = search.gold_due(c, time).await? {
        return Ok(gold);
    }
    take_lease(c, dialect, ctx, candidate, model_epoch, time).await
}

/// The lease this annotator already holds, served again (a reload, a second tab).
fn resumed_lease(row: &conn::Row) -> Result<Found> {
    Ok(Found::Leased {
        assignment_id: row.col("id")?,
        item_id: row.col("item_id")?,
        purpose: row.col("purpose")?,
        expires_at: row.col("expires_at")?,
        resumed: true,
        row: None,
    })
}

/// The categories this annotator is not served: those they excluded, and (for people) those
/// whose exposure limit they reached today.
async fn excluded_categories(
    c: &mut Conn<'_>,
    ctx: &QueueContext,
    progress: &conn::Row,
    now: i64,
) -> Result<Vec<String>> {
    let mut excluded: Vec<String> = parse_json(
        &progress.col::<String>("excluded_categories")?,
        "excluded categories",
    )?;
    if ctx.settings.exposure.is_on() && !ctx.is_model {
        for spent in exposure_spent(c, ctx, now / DAY_MS).await? {
            if !excluded.contains(&spent) {
                excluded.push(spent);
            }
        }
    }
    Ok(excluded)
}

/// The categories whose exposure limit this annotator has reached today: the queue serves
/// them no item flagged in one (a model's pre-label names its categories).
async fn exposure_spent(c: &mut Conn<'_>, ctx: &QueueContext, day: i64) -> Result<Vec<String>> {
    let budget = &ctx.settings.exposure;
    let mut spent = Vec::new();
    for row in c
        .fetch_all(
            stmt(
                "SELECT category, items, time_ms FROM exposure_days \
                 WHERE project_id = $1 AND user_id = $2 AND day = $3",
            )
            .bind(ctx.project_id)
            .bind(ctx.user_id)
            .bind(day),
        )
        .await?
    {
        let category: String = row.col("category")?;
        let used = budget
            .limit_for(&category)
            .used(row.col("items")?, row.col("time_ms")?);
        if used.is_some_and(|share| share >= 1.0) {
            spent.push(category);
        }
    }
    Ok(spent)
}

/// Expired leases give their slots back (whichever request comes first does it).
async fn reclaim_expired_leases(c: &mut Conn<'_>, project_id: ProjectId, now: i64) -> Result<()> {
    // A calibration item must be answered: its lapsed lease goes back to the person.
    c.execute(
        stmt(
            "UPDATE assignments SET status = 'assigned', leased_at = NULL, expires_at = NULL \
             WHERE project_id = $1 AND status = 'leased' AND expires_at <= $2 \
               AND purpose = 'calibration'",
        )
        .bind(project_id)
        .bind(now),
    )
    .await?;
    let expired = c
        .fetch_all(
            stmt(
                "UPDATE assignments SET status = 'expired', finished_at = $1 \
         WHERE project_id = $2 AND status = 'leased' AND expires_at <= $3 \
         RETURNING item_id, counts_toward_overlap",
            )
            .bind(now)
            .bind(project_id)
            .bind(now),
        )
        .await?;
    for row in &expired {
        if row.col::<i64>("counts_toward_overlap")? != 0 {
            return_slot(c, row.col("item_id")?).await?;
        }
    }
    Ok(())
}

/// A lease already held (reload, second tab), a deliberate re-review or a retest whose
/// delay has passed, which come first. Leased before assigned, then the oldest. An
/// annotator holds a handful of these at most, so they are ordered here: on SQLite
/// `ORDER BY` built a temporary B-tree per request.
async fn held_assignment(
    c: &mut Conn<'_>,
    ctx: &QueueContext,
    now: i64,
) -> Result<Option<conn::Row>> {
    let mut held = None;
    for row in c
        .fetch_all(
            stmt(
                "SELECT id, item_id, purpose, status, expires_at FROM assignments \
         WHERE project_id = $1 AND user_id = $2 AND status IN ('leased', 'assigned') \
           AND (available_at IS NULL OR available_at <= $3)",
            )
            .bind(ctx.project_id)
            .bind(ctx.user_id)
            .bind(now),
        )
        .await?
    {
        if !ctx.resume_held && row.col::<AssignmentStatus>("status")? == AssignmentStatus::Leased {
            continue;
        }
        let rank = (
            row.col::<AssignmentStatus>("status")? != AssignmentStatus::Leased,
            row.col::<Id>("id")?,
        );
        if held.as_ref().is_none_or(|(best, _)| rank < *best) {
            held = Some((rank, row));
        }
    }
    Ok(held.map(|(_, row)| row))
}

/// The daily cap (the annotator's own, else the project's), when today's work reached it.
fn cap_reached(progress: &conn::Row, ctx: &QueueContext, today: i64) -> Result<Option<i64>> {
    let day: i64 = progress.col("day")?;
    let done_today = if day == today {
        progress.col::<i64>("done_today")?
    } else {
        0
    };
    let cap = progress
        .col::<Option<i64>>("daily_cap")?
        .or(ctx.settings.daily_cap);
    Ok(cap.filter(|cap| done_today >= *cap))
}

/// Leases a re-review or retest assignment; it never counts toward overlap.
async fn lease_assigned(
    c: &mut Conn<'_>,
    ctx: &QueueContext,
    row: &conn::Row,
    time: LeaseTime,
) -> Result<Found> {
    let id: Id = row.col("id")?;
    c.execute(
        stmt(
            "UPDATE assignments SET status = 'leased', leased_at = $1, expires_at = $2 WHERE id = $3",
        )
        .bind(time.now)
        .bind(time.expires_at)
        .bind(id),
    )
    .await?;
    bump_served(c, ctx.project_id, ctx.user_id, false, None).await?;
    Ok(Found::Leased {
        assignment_id: id,
        item_id: row.col("item_id")?,
        purpose: row.col("purpose")?,
        expires_at: time.expires_at,
        resumed: false,
        row: None,
    })
}

/// The project's queue epoch, when a model account may resume from its cursor.
///
/// A model account labels every item, so everything it has had stays among its
/// candidates: walking them from the top made its k-th lease skip k items. It resumes
/// after the last item it was served instead, while nothing has entered the order since
/// (the project's queue epoch) and no exclusion hides items from it. What is served is
/// the same: every item before the cursor was had or not a candidate when the cursor was
/// set, and only an import (which moves the epoch) can change that.
async fn model_epoch(
    c: &mut Conn<'_>,
    ctx: &QueueContext,
    excluded: &[String],
) -> Result<Option<i64>> {
    if !ctx.is_model || !excluded.is_empty() {
        return Ok(None);
    }
    let row = c
        .fetch_one(stmt("SELECT queue_epoch FROM projects WHERE id = $1").bind(ctx.project_id))
        .await?;
    Ok(Some(row.col::<i64>("queue_epoch")?))
}

/// The project's `queue_epoch + reopen_epoch`, when a person may walk the queue from
/// their remembered place (see [`super::candidates::PersonWalk`]): not with excluded
/// categories, whose items before that place were never checked.
async fn walk_epoch(
    c: &mut Conn<'_>,
    dialect: Dialect,
    ctx: &QueueContext,
    progress: &conn::Row,
    excluded: &[String],
) -> Result<Option<i64>> {
    if ctx.is_model || !excluded.is_empty() {
        return Ok(None);
    }
    match dialect.0 {
        // Read with the clock and the progress row, in the same round trip, unless this
        // transaction reclaimed expired leases since (which moves the epoch).
        Backend::Postgres if progress.col::<i64>("any_expired")? == 0 => {
            Ok(Some(progress.col("project_walk_epoch")?))
        }
        _ => {
            let row = c
                .fetch_one(
                    stmt("SELECT queue_epoch + reopen_epoch AS epoch FROM projects WHERE id = $1")
                        .bind(ctx.project_id),
                )
                .await?;
            Ok(Some(row.col("epoch")?))
        }
    }
}

/// Leases the candidate found: an assignment, the item's slot (for a person) and the
/// annotator's served count (and their place in the queue's order).
async fn take_lease(
    c: &mut Conn<'_>,
    dialect: Dialect,
    ctx: &QueueContext,
    found: NextCandidate,
    model_epoch: Option<i64>,
    time: LeaseTime,
) -> Result<Found> {
    let NextCandidate {
        row: candidate,
        walk,
    } = found;
    let candidate = &candidate;
    let item_id: Id = candidate.col("id")?;
    let counts = !ctx.is_model;
    let person_place = walk.map(QueuePlace::Person);
    if counts && dialect.0 == Backend::Postgres {
        return take_slot_in_one_statement(c, ctx, candidate, person_place, time).await;
    }
    let assignment_id = insert_lease(
        c,
        ctx,
        ItemId(item_id),
        AssignmentPurpose::Label,
        counts,
        time,
    )
    .await?;
    let place = match model_epoch {
        Some(epoch) => Some(QueuePlace::Model(ModelCursor {
            priority: candidate.col("priority")?,
            item_id: ItemId(item_id),
            epoch,
        })),
        None => person_place,
    };
    let row = if counts {
        Some(take_slot(c, ctx, candidate, time.now).await?)
    } else {
        None
    };
    bump_served(c, ctx.project_id, ctx.user_id, false, place).await?;
    Ok(Found::Leased {
        assignment_id,
        item_id,
        purpose: AssignmentPurpose::Label,
        expires_at: time.expires_at,
        resumed: false,
        row,
    })
}

/// Takes a slot of the candidate's overlap and reads the item back as it is now.
async fn take_slot(
    c: &mut Conn<'_>,
    ctx: &QueueContext,
    candidate: &conn::Row,
    now: i64,
) -> Result<conn::Row> {
    c.execute(slot_update(ctx, candidate, now)?).await?;
    // SQLite collects RETURNING rows in a temporary B-tree built per statement; a read of
    // the row just written (its page is in the cache) costs less.
    c.fetch_one(
        stmt(concat!(
            "SELECT ",
            item_returning!(),
            " FROM items WHERE id = $1"
        ))
        .bind(candidate.col::<Id>("id")?),
    )
    .await
}

/// A person's lease on PostgreSQL: the assignment, the served count and the item's slot
/// written by one statement (one round trip instead of three), which returns the item as
/// it is now and the new assignment's id.
async fn take_slot_in_one_statement(
    c: &mut Conn<'_>,
    ctx: &QueueContext,
    candidate: &conn::Row,
    place: Option<QueuePlace>,
    time: LeaseTime,
) -> Result<Found> {
    let item_id: Id = candidate.col("id")?;
    let lease = lease_insert(ctx, ItemId(item_id), AssignmentPurpose::Label, true, time)
        .push_sql(" RETURNING id");
    let row = c
        .fetch_one(
            slot_update(ctx, candidate, time.now)?
                .push_sql(concat!(
                    " RETURNING ",
                    item_returning!(),
                    ", (SELECT id FROM lease) AS assignment_id"
                ))
                .after_steps(vec![
                    ("lease", lease),
                    (
                        "served",
                        served_update(ctx.project_id, ctx.user_id, false, place),
                    ),
                ]),
        )
        .await?;
    Ok(Found::Leased {
        assignment_id: row.col("assignment_id")?,
        item_id,
        purpose: AssignmentPurpose::Label,
        expires_at: time.expires_at,
        resumed: false,
        row: Some(row),
    })
}

/// Takes a slot of the candidate's overlap.
fn slot_update(ctx: &QueueContext, candidate: &conn::Row, now: i64) -> Result<Stmt> {
    let item_id: Id = candidate.col("id")?;
    let needed = match candidate.col::<Option<i64>>("needed")? {
        Some(n) => n,
        None => ctx.settings.initial_needed(ItemId(item_id)),
    };
    // The candidate was open (and is locked on PostgreSQL): `open` and `state` are set
    // only when this lease changes them, since each costs a write to an index of `items`
    // (the queue's and the browser's), and most leases change neither.
    let fills = candidate.col::<i64>("slots_taken")? + 1 >= needed;
    let starts = candidate.col::<String>("state")? == "queued";
    let set = format!(
        "UPDATE items SET needed = $1, slots_taken = slots_taken + 1, updated_at = $2{}{} \
         WHERE id = $3",
        if fills { ", open = 0" } else { "" },
        if starts {
            ", state = 'in_progress'"
        } else {
            ""
        },
    );
    Ok(stmt(set).bind(needed).bind(now).bind(item_id))
}

/// A new lease of an item to the annotator.
pub(super) async fn insert_lease(
    c: &mut Conn<'_>,
    ctx: &QueueContext,
    item_id: ItemId,
    purpose: AssignmentPurpose,
    counts: bool,
    time: LeaseTime,
) -> Result<Id> {
    c.insert_id(lease_insert(ctx, item_id, purpose, counts, time))
        .await
}

fn lease_insert(
    ctx: &QueueContext,
    item_id: ItemId,
    purpose: AssignmentPurpose,
    counts: bool,
    time: LeaseTime,
) -> Stmt {
    stmt(
        "INSERT INTO assignments (project_id, item_id, user_id, purpose, status, \
           counts_toward_overlap, leased_at, expires_at) \
         VALUES ($1, $2, $3, $4, 'leased', $5, $6, $7)",
    )
    .bind(ctx.project_id)
    .bind(item_id)
    .bind(ctx.user_id)
    .bind(purpose.as_str())
    .bind(counts as i64)
    .bind(time.now)
    .bind(time.expires_at)
}

/// Where a model account's next lease resumes: the item just served, its priority, and the
/// project's queue epoch it was served under.
pub(super) struct ModelCursor {
    priority: i64,
    item_id: ItemId,
    epoch: i64,
}

/// A place in the queue's order remembered for the annotator's next lease.
pub(super) enum QueuePlace {
    Model(ModelCursor),
    Person(PersonWalk),
}

/// Counts a served item; a lease moves the annotator's place in the same statement.
pub(super) async fn bump_served(
    c: &mut Conn<'_>,
    project_id: ProjectId,
    user_id: UserId,
    gold: bool,
    place: Option<QueuePlace>,
) -> Result<()> {
    c.execute(served_update(project_id, user_id, gold, place))
        .await?;
    Ok(())
}

fn served_update(
    project_id: ProjectId,
    user_id: UserId,
    gold: bool,
    place: Option<QueuePlace>,
) -> Stmt {
    let sql = match place {
        None => {
            "UPDATE annotator_progress SET served_total = served_total + 1, \
             gold_served = gold_served + $1 WHERE project_id = $2 AND user_id = $3"
        }
        Some(QueuePlace::Model(_)) => {
            "UPDATE annotator_progress SET served_total = served_total + 1, \
             gold_served = gold_served + $1, cursor_priority = $4, cursor_item_id = $5, \
             cursor_epoch = $6 WHERE project_id = $2 AND user_id = $3"
        }
        Some(QueuePlace::Person(_)) => {
            "UPDATE annotator_progress SET served_total = served_total + 1, \
             gold_served = gold_served + $1, walk_priority = $4, walk_severity = $5, \
             walk_item_id = $6, walk_epoch = $7 WHERE project_id = $2 AND user_id = $3"
        }
    };
    let query = stmt(sql).bind(gold as i64).bind(project_id).bind(user_id);
    match place {
        None => query,
        Some(QueuePlace::Model(cursor)) => query
            .bind(cursor.priority)
            .bind(cursor.item_id)
            .bind(cursor.epoch),
        Some(QueuePlace::Person(walk)) => query
            .bind(walk.priority)
            .bind(walk.severity)
            .bind(walk.item_id)
            .bind(walk.epoch),
    }
}
