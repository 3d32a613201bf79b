//! Finding the item a lease takes: the candidate queries (a person's walk from their place,
//! ordinary, a model's cursor, gold) and the search that runs them for one annotator.

use super::QueueContext;
use super::lease::{Found, LeaseTime, bump_served, insert_lease};
use crate::conn::{self, Columns, Conn, Stmt, stmt};
use crate::error::Result;
use crate::ids::ItemId;
use crate::model::{AssignmentPurpose, Id};
use crate::queue_rules::gold_due;
use crate::{Backend, Dialect};

/// What a lease searches with: who asks, their progress row and excluded categories.
pub(super) struct CandidateSearch<'a> {
    pub(super) dialect: Dialect,
    pub(super) ctx: &'a QueueContext,
    pub(super) progress: &'a conn::Row,
    pub(super) excluded: &'a [String],
}

/// A candidate item, and where the person's next walk of the queue may start.
pub(super) struct NextCandidate {
    pub(super) row: conn::Row,
    pub(super) walk: Option<PersonWalk>,
}

impl From<conn::Row> for NextCandidate {
    fn from(row: conn::Row) -> Self {
        NextCandidate { row, walk: None }
    }
}

/// A person's place in the queue's order `priority DESC, prelabel_severity DESC, id`:
/// while the project's `queue_epoch + reopen_epoch` is still `epoch`, every ordinary item
/// before it is closed or was had by them. Their next lease walks from here (inclusive)
/// instead of from the top, where it passed every item they labelled that still waits for
/// others' labels: one probe each, 9 ms a lease after a lone annotator's 5,392 labels.
///
/// Items only move before a place when a change moves one of the epochs: imports and
/// priority or gold changes (`queue_epoch`), slots given back, items reopened and
/// pre-labels raising severity (`reopen_epoch`). Excluded categories are never walked
/// from a place (their items before it were not checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PersonWalk {
    pub(super) priority: i64,
    pub(super) severity: i64,
    pub(super) item_id: Id,
    pub(super) epoch: i64,
}

impl PersonWalk {
    /// The top of the queue: before every item.
    fn top(epoch: i64) -> Self {
        PersonWalk {
            priority: i64::MAX,
            severity: i64::MAX,
            item_id: 0,
            epoch,
        }
    }

    /// The place remembered in the progress row, when it was found under `epoch`.
    fn remembered(progress: &conn::Row, epoch: i64) -> Result<Option<Self>> {
        let (Some(priority), Some(severity), Some(item_id), Some(at)) = (
            progress.col::<Option<i64>>("walk_priority")?,
            progress.col::<Option<i64>>("walk_severity")?,
            progress.col::<Option<Id>>("walk_item_id")?,
            progress.col::<Option<i64>>("walk_epoch")?,
        ) else {
            return Ok(None);
        };
        Ok((at == epoch).then_some(PersonWalk {
            priority,
            severity,
            item_id,
            epoch,
        }))
    }
}

impl CandidateSearch<'_> {
    /// The next ordinary item for the annotator: from a model's cursor when it holds
    /// (`model_epoch`), from a person's place when `walk_epoch` is given, else from the top
    /// of the queue.
    pub(super) async fn next_item(
        &self,
        c: &mut Conn<'_>,
        model_epoch: Option<i64>,
        walk_epoch: Option<i64>,
    ) -> Result<Option<NextCandidate>> {
        if let Some(epoch) = model_epoch
            && let Some(found) = self.after_model_cursor(c, epoch).await?
        {
            return Ok(Some(found.into()));
        }
        if let Some(epoch) = walk_epoch {
            let from = PersonWalk::remembered(self.progress, epoch)?;
            let walked = self
                .walk_from(c, from.unwrap_or_else(|| PersonWalk::top(epoch)))
                .await?;
            if walked.is_some() {
                return Ok(walked);
            }
            // Nothing after the place, or (PostgreSQL) every candidate the walk looked at
            // is locked by another lease in flight: the search below skips and waits as
            // before. On SQLite a walk from the top that found nothing is the answer.
            if from.is_none() && self.dialect.0 == Backend::Sqlite {
                return Ok(None);
            }
        }
        let ordinary = candidate_sql(
            self.dialect,
            Candidate::for_account(self.ctx.is_model),
            self.excluded.len(),
        );
        let found = c.fetch_optional(self.bind_excluded(&ordinary)).await?;
        if found.is_none() && self.dialect.0 == Backend::Postgres && !self.ctx.is_model {
            // Everything left may only be locked by other annotators' leases in flight: wait
            // for them rather than say "empty" while a slot is about to remain free.
            let waiting = ordinary.replace(" SKIP LOCKED", "");
            let found = c.fetch_optional(self.bind_excluded(&waiting)).await?;
            return Ok(found.map(NextCandidate::from));
        }
        Ok(found.map(NextCandidate::from))
    }

    /// A person's next item at or after `from` in the queue's order, and their next place:
    /// the first candidate there, whether this lease takes it or (PostgreSQL) another
    /// lease in flight holds it locked. `None` when there is none, or when every candidate
    /// of that first one's band is locked (the search from the top takes over).
    async fn walk_from(&self, c: &mut Conn<'_>, from: PersonWalk) -> Result<Option<NextCandidate>> {
        for range in WalkRange::ALL {
            let mut query = stmt(person_walk_sql(self.dialect, range))
                .bind(self.ctx.project_id)
                .bind(self.ctx.user_id)
                .bind(from.priority);
            if range != WalkRange::LowerPriorities {
                query = query.bind(from.severity);
            }
            if range == WalkRange::Band {
                query = query.bind(from.item_id);
            }
            let Some(row) = c.fetch_optional(query).await? else {
                continue;
            };
            if row.col::<Option<Id>>("id")?.is_none() {
                return Ok(None);
            }
            let walk = PersonWalk {
                priority: row.col("walk_priority")?,
                severity: row.col("walk_severity")?,
                item_id: row.col("walk_item_id")?,
                epoch: from.epoch,
            };
            return Ok(Some(NextCandidate {
                row,
                walk: Some(walk),
            }));
        }
        Ok(None)
    }

    /// A model's next item after its cursor, when the cursor was set under `epoch`.
    async fn after_model_cursor(&self, c: &mut Conn<'_>, epoch: i64) -> Result<Option<conn::Row>> {
        let progress = self.progress;
        let (Some(cursor_epoch), Some(priority), Some(after)) = (
            progress.col::<Option<i64>>("cursor_epoch")?,
            progress.col::<Option<i64>>("cursor_priority")?,
            progress.col::<Option<Id>>("cursor_item_id")?,
        ) else {
            return Ok(None);
        };
        if cursor_epoch != epoch {
            return Ok(None);
        }
        let (project_id, user_id) = (self.ctx.project_id, self.ctx.user_id);
        let same = candidate_sql(self.dialect, Candidate::ForModelAfterCursor, 0);
        let found = c
            .fetch_optional(
                stmt(same.as_str())
                    .bind(project_id)
                    .bind(user_id)
                    .bind(priority)
                    .bind(after),
            )
            .await?;
        if found.is_some() {
            return Ok(found);
        }
        let below = candidate_sql(self.dialect, Candidate::ForModelBelowCursor, 0);
        c.fetch_optional(
            stmt(below.as_str())
                .bind(project_id)
                .bind(user_id)
                .bind(priority),
        )
        .await
    }

    /// A gold item leased instead of the candidate, when the project's gold rate says one
    /// is due and there is one left for this annotator.
    pub(super) async fn gold_due(
        &self,
        c: &mut Conn<'_>,
        time: LeaseTime,
    ) -> Result<Option<Found>> {
        let ctx = self.ctx;
        let served: i64 = self.progress.col("served_total")?;
        let gold_served: i64 = self.progress.col("gold_served")?;
        if !gold_due(
            ctx.settings.gold_rate,
            served,
            gold_served,
            ctx.user_id.get() ^ (ctx.project_id.get() << 32),
        ) {
            return Ok(None);
        }
        let gold_sql = candidate_sql(self.dialect, Candidate::Gold, self.excluded.len());
        let Some(gold) = c.fetch_optional(self.bind_excluded(&gold_sql)).await? else {
            return Ok(None);
        };
        let item_id: ItemId = gold.col("id")?;
        let assignment_id =
            insert_lease(c, ctx, item_id, AssignmentPurpose::Gold, false, time).await?;
        bump_served(c, ctx.project_id, ctx.user_id, true, None).await?;
        Ok(Some(Found::Leased {
            assignment_id,
            item_id: item_id.get(),
            purpose: AssignmentPurpose::Gold,
            expires_at: time.expires_at,
            resumed: false,
            row: None,
        }))
    }

    /// A candidate query bound to the project, the annotator and the excluded categories.
    fn bind_excluded(&self, sql: &str) -> Stmt {
        let mut query = stmt(sql).bind(self.ctx.project_id).bind(self.ctx.user_id);
        for code in self.excluded {
            query = query.bind(like_pattern(code));
        }
        query
    }
}

fn like_pattern(code: &str) -> String {
    let mut out = String::from("%\"");
    for ch in code.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push_str("\"%");
    out
}

/// Which kind of item a lease looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Candidate {
    /// An open ordinary item, for a person: a slot of its overlap.
    Ordinary,
    /// Any ordinary item not yet adjudicated, for a model account: models label in parallel
    /// and do not take the people's slots.
    ForModel,
    /// [`Candidate::ForModel`] after the model's cursor: of the cursor's priority (`$3`),
    /// after its item (`$4`).
    ForModelAfterCursor,
    /// [`Candidate::ForModel`] after the model's cursor: of a lower priority than `$3`.
    ForModelBelowCursor,
    /// An open gold item.
    Gold,
}

impl Candidate {
    fn for_account(is_model: bool) -> Candidate {
        if is_model {
            Candidate::ForModel
        } else {
            Candidate::Ordinary
        }
    }
}

/// The query for the next item of a kind that this annotator (`$2`) has never had, in
/// project `$1`, outside the categories `$3…` they are excluded from.
fn candidate_sql(dialect: Dialect, kind: Candidate, excluded_categories: usize) -> String {
    // The cursor holds only while no category is excluded (their queries take `$3`, `$4`).
    debug_assert!(
        excluded_categories == 0
            || !matches!(
                kind,
                Candidate::ForModelAfterCursor | Candidate::ForModelBelowCursor
            )
    );
    let mut exclusions = String::new();
    for n in 0..excluded_categories {
        exclusions += &format!(" AND i.prelabel_categories NOT LIKE ${} ESCAPE '\\'", n + 3);
    }
    // On PostgreSQL `OFFSET 0` keeps "never had it" a probe of the `assignments_once` index
    // per candidate, whatever the planner's statistics say. Without it the check became an
    // anti join, and while `assignments` had no statistics yet (its first minute, before the
    // autovacuum daemon looked at it) the plan read the annotator's every assignment by a
    // scan of the table and compared each candidate with all of them: 11 ms a lease for an
    // annotator with 577 labels, growing with every label. SQLite probes the index anyway.
    let (fence, lock) = match dialect.0 {
        Backend::Postgres => (" OFFSET 0", " FOR UPDATE OF i SKIP LOCKED"),
        Backend::Sqlite => ("", ""),
    };
    let never_had = format!(
        "NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.user_id = $2{fence})"
    );
    match kind {
        Candidate::Ordinary => format!(
            "SELECT i.id, i.needed, i.slots_taken, i.state FROM items i \
             WHERE i.project_id = $1 AND i.open = 1 AND i.is_gold = 0 AND {never_had}{exclusions} \
             ORDER BY i.priority DESC, i.prelabel_severity DESC, i.id LIMIT 1{lock}"
        ),
        // Not locked: a model's lease does not count toward an overlap (and a lock skipped
        // would break the cursor's promise that nothing before it is left).
        Candidate::ForModel => format!(
            "SELECT i.id, i.needed, i.priority FROM items i WHERE i.project_id = $1 \
               AND i.is_gold = 0 AND i.state <> 'adjudicated' AND {never_had}{exclusions} \
             ORDER BY i.priority DESC, i.id LIMIT 1"
        ),
        Candidate::ForModelAfterCursor => format!(
            "SELECT i.id, i.needed, i.priority FROM items i WHERE i.project_id = $1 \
               AND i.priority = $3 AND i.id > $4 \
               AND i.is_gold = 0 AND i.state <> 'adjudicated' AND {never_had} \
             ORDER BY i.id LIMIT 1"
        ),
        Candidate::ForModelBelowCursor => format!(
            "SELECT i.id, i.needed, i.priority FROM items i WHERE i.project_id = $1 \
               AND i.priority < $3 \
               AND i.is_gold = 0 AND i.state <> 'adjudicated' AND {never_had} \
             ORDER BY i.priority DESC, i.id LIMIT 1"
        ),
        // Not locked: a gold item's lease does not count toward an overlap.
        Candidate::Gold => format!(
            "SELECT i.id FROM items i WHERE i.project_id = $1 AND i.open = 1 AND i.is_gold = 1 \
               AND {never_had}{exclusions} \
             ORDER BY i.priority DESC, i.prelabel_severity DESC, i.id LIMIT 1"
        ),
    }
}

/// The order `priority DESC, prelabel_severity DESC, id` has no single range for "at or
/// after a place" on the `items_queue` index: a person's walk is three ranges of it, each
/// an index range with its own order, tried in turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WalkRange {
    /// The place's band (`$3` priority, `$4` severity) from its item (`$5`).
    Band,
    /// The rest of the place's priority: lower severities.
    RestOfPriority,
    /// Lower priorities.
    LowerPriorities,
}

impl WalkRange {
    const ALL: [WalkRange; 3] = [
        WalkRange::Band,
        WalkRange::RestOfPriority,
        WalkRange::LowerPriorities,
    ];

    fn condition_and_order(self) -> (&'static str, &'static str) {
        match self {
            WalkRange::Band => (
                "i.priority = $3 AND i.prelabel_severity = $4 AND i.id >= $5",
                "i.id",
            ),
            WalkRange::RestOfPriority => (
                "i.priority = $3 AND i.prelabel_severity < $4",
                "i.prelabel_severity DESC, i.id",
            ),
            WalkRange::LowerPriorities => (
                "i.priority < $3",
                "i.priority DESC, i.prelabel_severity DESC, i.id",
            ),
        }
    }
}

/// A person's walk of one range of the queue (see [`walk_sql`]), its text built once per
/// back end: up to three run for every lease.
fn person_walk_sql(dialect: Dialect, range: WalkRange) -> &'static str {
    static SQLITE: std::sync::OnceLock<[String; 3]> = std::sync::OnceLock::new();
    static POSTGRES: std::sync::OnceLock<[String; 3]> = std::sync::OnceLock::new();
    let texts = match dialect.0 {
        Backend::Sqlite => &SQLITE,
        Backend::Postgres => &POSTGRES,
    };
    &texts.get_or_init(|| WalkRange::ALL.map(|range| walk_sql(dialect, range)))[range as usize]
}

/// A person's walk of one range of the queue in project `$1`, for annotator `$2`: the
/// first open ordinary item of the range they never had, as the next place (`walk_*`),
/// and the candidate the lease takes (`id`, …).
fn walk_sql(dialect: Dialect, range: WalkRange) -> String {
    let (condition, order) = range.condition_and_order();
    // One probe of `assignments_once` per candidate, as in `candidate_sql`.
    let fence = match dialect.0 {
        Backend::Postgres => " OFFSET 0",
        Backend::Sqlite => "",
    };
    let never_had = format!(
        "NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.user_id = $2{fence})"
    );
    let base = "i.project_id = $1 AND i.open = 1 AND i.is_gold = 0";
    match dialect.0 {
        // One writer at a time: the first candidate is the one taken.
        Backend::Sqlite => format!(
            "SELECT i.id, i.needed, i.slots_taken, i.state, i.priority, \
               i.priority AS walk_priority, i.prelabel_severity AS walk_severity, \
               i.id AS walk_item_id \
             FROM items i WHERE {base} AND {condition} AND {never_had} \
             ORDER BY {order} LIMIT 1"
        ),
        // The first candidate is the next place even when another lease holds it locked
        // (it may stay open after that lease); the lease takes the first unlocked one of
        // its band from there (a lateral subquery, so its lock is taken in that walk's
        // order and only on the row returned). A row with no `id`: all of them are locked.
        // Both walks are index ranges, planned once (a union of the three ranges in one
        // statement was re-planned for every lease: 0.5 ms of the database's CPU).
        Backend::Postgres => format!(
            "SELECT f.priority AS walk_priority, f.prelabel_severity AS walk_severity, \
               f.id AS walk_item_id, l.id, l.needed, l.slots_taken, l.state, l.priority \
             FROM (SELECT i.id, i.priority, i.prelabel_severity FROM items i \
                   WHERE {base} AND {condition} AND {never_had} \
                   ORDER BY {order} LIMIT 1) f \
             LEFT JOIN LATERAL (SELECT i.id, i.needed, i.slots_taken, i.state, i.priority \
                   FROM items i WHERE {base} AND i.priority = f.priority \
                     AND i.prelabel_severity = f.prelabel_severity AND i.id >= f.id \
                     AND {never_had} \
                   ORDER BY i.id LIMIT 1 FOR UPDATE OF i SKIP LOCKED) l ON true"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::{Candidate, WalkRange, candidate_sql, person_walk_sql};
    use crate::conn::{Columns, stmt};
    use crate::{Store, StoreOptions};

    const KINDS: [Candidate; 5] = [
        Candidate::Ordinary,
        Candidate::ForModel,
        Candidate::ForModelAfterCursor,
        Candidate::ForModelBelowCursor,
        Candidate::Gold,
    ];

    /// Each candidate query's plan, one text per kind and number of excluded categories.
    async fn plans(store: &Store, explain: &str, column: &str) -> Vec<String> {
        let mut plans = Vec::new();
        for kind in KINDS {
            // A model's cursor is used only when no category is excluded for it.
            let cursor = match kind {
                Candidate::ForModelAfterCursor => vec![5i64, 10],
                Candidate::ForModelBelowCursor => vec![5i64],
                _ => Vec::new(),
            };
            let exclusions: &[usize] = if cursor.is_empty() { &[0, 2] } else { &[0] };
            for &excluded in exclusions {
                let sql = format!(
                    "{explain} {}",
                    candidate_sql(store.dialect(), kind, excluded)
                );
                let mut query = stmt(&sql).bind(1i64).bind(2i64);
                for value in &cursor {
                    query = query.bind(*value);
                }
                for _ in 0..excluded {
                    query = query.bind("%\"violence\"%");
                }
                let rows = store.read_rows(query).await.expect("a plan");
                let lines: Vec<String> = rows
                    .iter()
                    .map(|row| row.col::<String>(column).expect("a plan line"))
                    .collect();
                plans.push(format!(
                    "{kind:?}, {excluded} excluded:\n{}",
                    lines.join("\n")
                ));
            }
        }
        // A person's walk from a place: priority 5, severity 3, item 10.
        for range in WalkRange::ALL {
            let sql = format!("{explain} {}", person_walk_sql(store.dialect(), range));
            let mut query = stmt(&sql).bind(1i64).bind(2i64).bind(5i64);
            if range != WalkRange::LowerPriorities {
                query = query.bind(3i64);
            }
            if range == WalkRange::Band {
                query = query.bind(10i64);
            }
            let rows = store.read_rows(query).await.expect("a plan");
            let lines: Vec<String> = rows
                .iter()
                .map(|row| row.col::<String>(column).expect("a plan line"))
                .collect();
            plans.push(format!("PersonWalk {range:?}:\n{}", lines.join("\n")));
        }
        plans
    }

    /// "Never had this item" is checked by a probe of the `assignments_once` index for each
    /// candidate, on both back ends and before any statistics exist: a plan that reads the
    /// annotator's whole history for every lease grows slower with every label.
    #[tokio::test]
    async fn a_lease_checks_each_candidate_by_an_index_probe() {
        let dir = tempfile::tempdir().expect("a scratch folder");
        let path = dir.path().join("plans.db");
        let sqlite = Store::open(StoreOptions::new(
            path.to_string_lossy().to_string(),
            crate::queue_rules::never_pauses,
        ))
        .await
        .expect("a SQLite store");
        for plan in plans(&sqlite, "EXPLAIN QUERY PLAN", "detail").await {
            assert!(
                plan.contains("assignments_once"),
                "SQLite does not probe the index: {plan}"
            );
            // Each range of a person's walk is a range of the queue's index.
            for (range, bounds) in [
                ("Band", "priority=? AND prelabel_severity=? AND id>?"),
                ("RestOfPriority", "priority=? AND prelabel_severity<?"),
                ("LowerPriorities", "priority<?"),
            ] {
                if plan.starts_with(&format!("PersonWalk {range}")) {
                    assert!(
                        plan.contains(&format!(
                            "items_queue (project_id=? AND open=? AND is_gold=? AND {bounds})"
                        )),
                        "the walk's {range} is not a range of the queue's index: {plan}"
                    );
                }
            }
        }

        let Ok(url) = std::env::var("CONCORD_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var("CONCORD_REQUIRE_ALL_SUITES").is_err(),
                "CONCORD_TEST_POSTGRES_URL is required when CONCORD_REQUIRE_ALL_SUITES is set"
            );
            eprintln!("skipped: the candidate plans on PostgreSQL (set CONCORD_TEST_POSTGRES_URL)");
            return;
        };
        let schema = format!("t_{}_candidate_plans", std::process::id());
        let mut options = StoreOptions::new(url, crate::queue_rules::never_pauses);
        options.pg_schema = Some(schema.clone());
        let postgres = Store::open(options).await.expect("a PostgreSQL store");
        let found = plans(&postgres, "EXPLAIN", "QUERY PLAN").await;
        let _ = postgres.drop_schema(&schema).await;
        for plan in found {
            // An anti join is planned from statistics (none yet here): it may scan and
            // compare the annotator's every assignment. A subplan runs per candidate.
            assert!(
                plan.contains("SubPlan") && !plan.contains("Anti Join"),
                "PostgreSQL does not check per candidate: {plan}"
            );
            // Each range of a person's walk starts where it should (on an empty table the
            // planner may take the item key's index for the place's band: it starts at the
            // place too), and the lease's lock walks the first candidate's band from it.
            for (range, bounds) in [
                ("Band", "(id >= '10'::bigint))"),
                (
                    "RestOfPriority",
                    "(priority = '5'::bigint) AND (prelabel_severity < '3'::bigint))",
                ),
                (
                    "LowerPriorities",
                    "(is_gold = 0) AND (priority < '5'::bigint))",
                ),
            ] {
                if plan.starts_with(&format!("PersonWalk {range}")) {
                    assert!(
                        plan.contains(bounds) && plan.contains("(id >= i.id)"),
                        "the walk's {range} does not start at its place: {plan}"
                    );
                }
            }
        }
    }
}
