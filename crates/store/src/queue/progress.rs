//! The annotators' standing in a project: progress, gold tallies, "My work", limits and
//! resuming a paused annotator, and the counts a manager watches.

use super::{DAY_MS, GoldFeedback, parse_gold, settings_of};
use crate::answer::matches_gold;
use crate::audit::AuditEvent;
use crate::conn::{Columns, Conn, Row, stmt};
use crate::error::{Result, StoreError, json_text, parse_json};
use crate::ids::ItemId;
use crate::ids::{ProjectId, UserId};
use crate::model::{AccountKind, AnswerKind, AuditAction, Id, Project};
use crate::paging::{PageRequest, Paged, name_search};
use crate::queue_rules::GoldFeedbackMode;
use crate::{Store, audit};
use serde::Serialize;
use serde_json::Value;

/// An annotator's standing in a project.
#[derive(Debug, Clone, Serialize)]
pub struct AnnotatorProgress {
    pub user_id: UserId,
    pub username: String,
    pub display_name: String,
    pub kind: AccountKind,
    pub done_today: i64,
    pub done_total: i64,
    pub daily_cap: Option<i64>,
    /// Gold answered and answered right; the caller puts an interval on it.
    pub gold: GoldTally,
    pub paused: bool,
    pub paused_reason: Option<String>,
    /// The calibration round holding this annotator from production work.
    pub calibration_hold: Option<Id>,
    pub excluded_categories: Vec<String>,
    pub time_total_ms: i64,
    pub high_severity_ms: i64,
}

/// Gold items an annotator answered, and how many of those as gold says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct GoldTally {
    pub correct: u64,
    pub answered: u64,
    /// Of `answered`, those labelled in the last [`GOLD_RATE_WINDOW_DAYS`] days: the
    /// annotator's recent gold rate, for gold planning.
    pub answered_recently: u64,
}

/// The window of [`GoldTally::answered_recently`], in days.
pub const GOLD_RATE_WINDOW_DAYS: i64 = 7;

/// One of the annotator's own annotations, for "My work".
#[derive(Debug, Clone, Serialize)]
pub struct MyWorkEntry {
    pub annotation_id: Id,
    pub item_id: ItemId,
    pub title: String,
    pub item_type: String,
    pub kind: AnswerKind,
    pub answer: Value,
    pub created_at: i64,
    pub is_late: bool,
    /// Gold result when the item is gold and the feedback may be shown now.
    pub gold: Option<GoldFeedback>,
}

/// What [`Store::queue_integrity`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QueueIntegrity {
    pub annotations: i64,
    /// Items holding more overlap-counting leases and submissions than they need: must be 0.
    pub items_over_overlap: i64,
    /// (item, annotator) pairs with more than one annotation: 0 unless re-review or
    /// test–retest assignments were made.
    pub repeated_item_annotator_pairs: i64,
}

/// Counts a project manager watches.
#[derive(Debug, Clone, Serialize, Default)]
pub struct QueueOverview {
    pub open_items: i64,
    pub live_leases: i64,
    pub escalated_unsure: i64,
    pub escalated_no_agreement: i64,
    pub labels: i64,
    pub skips: i64,
    pub late: i64,
}

impl Store {
    /// Lets a paused annotator take work again. Their gold window starts afresh, so the
    /// pause rule looks only at gold answered after the resume.
    pub async fn resume_annotator(
        &self,
        project_id: ProjectId,
        user_id: UserId,
        actor: UserId,
    ) -> Result<()> {
        self.write_conn(move |mut c| {
            Box::pin(async move {
                let c = &mut c;
                let changed = c
                    .execute(
                        stmt(
                            "UPDATE annotator_progress SET paused = 0, paused_reason = NULL, \
                       window_gold_answered = 0, window_gold_correct = 0 \
                     WHERE project_id = $1 AND user_id = $2 AND paused = 1",
                        )
                        .bind(project_id)
                        .bind(user_id),
                    )
                    .await?;
                if changed == 0 {
                    return Err(StoreError::conflict("this annotator is not paused"));
                }
                audit::record_in(
                    c,
                    AuditEvent {
                        actor: Some(actor),
                        project: Some(project_id),
                        action: AuditAction::Resume,
                        entity: "annotator",
                        entity_id: Some(user_id.get()),
                        before: audit::snapshot(&serde_json::json!({"paused": true})),
                        after: audit::snapshot(&serde_json::json!({"paused": false})),
                    },
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Sets an annotator's own daily cap (None: the project's) and the categories they are
    /// not served (wellbeing).
    pub async fn set_annotator_limits(
        &self,
        project_id: ProjectId,
        user_id: UserId,
        daily_cap: Option<i64>,
        excluded_categories: Vec<String>,
        actor: UserId,
    ) -> Result<()> {
        if daily_cap.is_some_and(|c| c < 1) {
            return Err(StoreError::invalid(
                "a daily cap must be at least 1 (leave it empty for the project's)",
            ));
        }
        let schema = self.current_schema(project_id).await?;
        let known: Vec<String> = schema
            .definition
            .questions
            .iter()
            .flat_map(|q| q.options.iter().map(|o| o.value.clone()))
            .collect();
        if let Some(bad) = excluded_categories.iter().find(|c| !known.contains(c)) {
            return Err(StoreError::invalid(format!(
                "{bad:?} is not a code of this project's label schema"
            )));
        }
        self.write_conn(move |mut c| {
            let excluded_categories = excluded_categories.clone();
            Box::pin(async move {
                let c = &mut c;
                ensure_progress(c, project_id, user_id).await?;
                let statement = stmt(
                    "UPDATE annotator_progress SET daily_cap = $1, excluded_categories = $2 \
                     WHERE project_id = $3 AND user_id = $4",
                )
                .bind(daily_cap)
                .bind(json_text(&excluded_categories))
                .bind(project_id)
                .bind(user_id);
                c.execute(statement)
                .await?;
                audit::record_in(c,
AuditEvent {
actor: Some(actor),
project: Some(project_id),
action: AuditAction::Update,
entity: "annotator_limits",
entity_id: Some(user_id.get()),
before: None,
after: audit::snapshot(&serde_json::json!({"daily_cap": daily_cap, "excluded_categories": excluded_categories})),
},
)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Every member who annotates (annotators and model accounts, plus anyone with progress),
    /// with their gold tallies.
    pub async fn team_progress(&self, project_id: ProjectId) -> Result<Vec<AnnotatorProgress>> {
        self.progress_of(project_id, None).await
    }

    pub async fn annotator_progress(
        &self,
        project_id: ProjectId,
        user_id: UserId,
    ) -> Result<AnnotatorProgress> {
        self.progress_of(project_id, Some(user_id))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::not_found("this annotator's progress"))
    }

    async fn progress_of(
        &self,
        project_id: ProjectId,
        user_id: Option<UserId>,
    ) -> Result<Vec<AnnotatorProgress>> {
        let one = if user_id.is_some() {
            " AND u.id = $3"
        } else {
            ""
        };
        let sql = format!("SELECT {PROGRESS_COLUMNS} {PROGRESS_FROM}{one} ORDER BY u.username");
        let mut query = stmt(&sql).bind(project_id).bind(project_id);
        if let Some(id) = user_id {
            query = query.bind(id);
        }
        let rows = self.read_rows(query).await?;
        let tallies = self.gold_tallies(project_id, user_id).await?;
        self.progress_rows(&rows, &tallies).await
    }

    /// One page of [`Store::team_progress`] in user-name order, searched by user or display
    /// name (the team page's list): the gold tallies are read for that page's people only.
    pub async fn team_progress_page(
        &self,
        project_id: ProjectId,
        request: &PageRequest,
    ) -> Result<Paged<AnnotatorProgress>> {
        let search = request.pattern();
        let filter = match search {
            Some(_) => name_search(self.dialect().ilike(), 3),
            None => String::new(),
        };
        let count = format!("SELECT COUNT(*) AS n {PROGRESS_FROM}{filter}");
        let mut query = stmt(&count).bind(project_id).bind(project_id);
        if let Some(pattern) = &search {
            query = query.bind(pattern.clone()).bind(pattern.clone());
        }
        let total: i64 = self.read_one(query).await?.col("n")?;
        let at = request.clamped(total.max(0) as u64);
        let next = if search.is_some() { 5 } else { 3 };
        let sql = format!(
            "SELECT {PROGRESS_COLUMNS} {PROGRESS_FROM}{filter} \
             ORDER BY u.username LIMIT ${next} OFFSET ${}",
            next + 1
        );
        let mut query = stmt(&sql).bind(project_id).bind(project_id);
        if let Some(pattern) = &search {
            query = query.bind(pattern.clone()).bind(pattern.clone());
        }
        let rows = self
            .read_rows(query.bind(at.limit as i64).bind(at.offset as i64))
            .await?;
        let people = rows
            .iter()
            .map(|row| row.col("id"))
            .collect::<std::result::Result<Vec<Id>, _>>()?;
        let tallies = self.gold_tallies_of(project_id, &people).await?;
        Ok(Paged::of(self.progress_rows(&rows, &tallies).await?, at))
    }

    /// Progress rows with their gold tallies.
    async fn progress_rows(
        &self,
        rows: &[Row],
        tallies: &std::collections::HashMap<Id, GoldTally>,
    ) -> Result<Vec<AnnotatorProgress>> {
        let today = self.database_now().await? / DAY_MS;
        rows.iter()
            .map(|row| {
                let mut progress = progress_from_row(row, today)?;
                progress.gold = tallies
                    .get(&progress.user_id.get())
                    .copied()
                    .unwrap_or_default();
                Ok(progress)
            })
            .collect()
    }

    /// [`Store::gold_tallies`] of a few annotators (a page of the team).
    async fn gold_tallies_of(
        &self,
        project_id: ProjectId,
        people: &[Id],
    ) -> Result<std::collections::HashMap<Id, GoldTally>> {
        if people.is_empty() {
            return Ok(Default::default());
        }
        let list = (2..people.len() + 2)
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("{GOLD_LABELS} AND a.annotator_id IN ({list}) {GOLD_LABELS_ORDER}");
        let query = people
            .iter()
            .fold(stmt(&sql).bind(project_id), |q, id| q.bind(*id));
        let recent_from = self.database_now().await? - GOLD_RATE_WINDOW_DAYS * DAY_MS;
        tally_gold(&self.read_rows(query).await?, recent_from)
    }

    /// Per annotator: gold items answered, answered as gold says, and answered recently,
    /// over every label on a gold item whatever its way in (queue, import, correction,
    /// override), the latest of each annotator per item, against the item's gold answer as
    /// it is now.
    pub async fn gold_tallies(
        &self,
        project_id: ProjectId,
        user_id: Option<UserId>,
    ) -> Result<std::collections::HashMap<Id, GoldTally>> {
        let one = if user_id.is_some() {
            " AND a.annotator_id = $2"
        } else {
            ""
        };
        let sql = format!("{GOLD_LABELS}{one} {GOLD_LABELS_ORDER}");
        let mut query = stmt(&sql).bind(project_id);
        if let Some(id) = user_id {
            query = query.bind(id);
        }
        let recent_from = self.database_now().await? - GOLD_RATE_WINDOW_DAYS * DAY_MS;
        tally_gold(&self.read_rows(query).await?, recent_from)
    }

    /// The annotator's own annotations, newest first, with gold results where the project's
    /// feedback mode allows showing them now (deferred: from the next UTC day).
    pub async fn my_work(
        &self,
        project: &Project,
        user_id: UserId,
        limit: i64,
    ) -> Result<Vec<MyWorkEntry>> {
        let settings = settings_of(project);
        let rows = self
            .read_rows(
                stmt(
                    "SELECT a.id, a.item_id, i.title, i.item_type, a.kind, a.answer, a.created_at, \
               a.is_late, a.gold_correct, i.gold_answer \
             FROM annotations a JOIN items i ON i.id = a.item_id \
             WHERE a.project_id = $1 AND a.annotator_id = $2 \
             ORDER BY a.id DESC LIMIT $3",
                )
                .bind(project.id)
                .bind(user_id)
                .bind(limit.clamp(1, 500)),
            )
            .await?;
        let today = self.database_now().await? / DAY_MS;
        rows.iter()
            .map(|row| {
                let created_at: i64 = row.col("created_at")?;
                let gold_correct: Option<i64> = row.col("gold_correct")?;
                let may_show = settings.gold_feedback == GoldFeedbackMode::Immediate
                    || created_at / DAY_MS < today;
                let gold = match (gold_correct, may_show) {
                    (Some(correct), true) => {
                        let expected: Option<String> = row.col("gold_answer")?;
                        Some(GoldFeedback {
                            correct: correct != 0,
                            expected: expected
                                .map(|e| parse_json(&e, "gold answer"))
                                .transpose()?
                                .unwrap_or(Value::Null),
                        })
                    }
                    _ => None,
                };
                Ok(MyWorkEntry {
                    annotation_id: row.col("id")?,
                    item_id: row.col("item_id")?,
                    title: row.col("title")?,
                    item_type: row.col("item_type")?,
                    kind: row.col("kind")?,
                    answer: parse_json(&row.col::<String>("answer")?, "answer")?,
                    created_at,
                    is_late: row.col::<i64>("is_late")? != 0,
                    gold,
                })
            })
            .collect()
    }

    /// The queue's invariants, counted from the database itself: for benchmarks and tests that
    /// hammer the queue and then check nothing broke.
    pub async fn queue_integrity(&self, project_id: ProjectId) -> Result<QueueIntegrity> {
        let row = self
            .read_one(
                stmt(
                    "SELECT \
               (SELECT COUNT(*) FROM annotations WHERE project_id = $1) AS annotations, \
               (SELECT COUNT(*) FROM ( \
                  SELECT s.item_id FROM assignments s JOIN items i ON i.id = s.item_id \
                  WHERE s.project_id = $2 AND s.counts_toward_overlap = 1 \
                    AND s.status IN ('leased', 'submitted') \
                  GROUP BY s.item_id, i.needed HAVING COUNT(*) > i.needed) o) AS over_overlap, \
               (SELECT COUNT(*) FROM ( \
                  SELECT item_id FROM annotations WHERE project_id = $3 \
                  GROUP BY item_id, annotator_id HAVING COUNT(*) > 1) t) AS repeated",
                )
                .bind(project_id)
                .bind(project_id)
                .bind(project_id),
            )
            .await?;
        Ok(QueueIntegrity {
            annotations: row.col("annotations")?,
            items_over_overlap: row.col("over_overlap")?,
            repeated_item_annotator_pairs: row.col("repeated")?,
        })
    }

    pub async fn queue_overview(&self, project_id: ProjectId) -> Result<QueueOverview> {
        let now = self.database_now().await?;
        let statement = stmt(
            "SELECT \
               (SELECT COUNT(*) FROM items WHERE project_id = $1 AND open = 1 AND is_gold = 0) AS open_items, \
               (SELECT COUNT(*) FROM assignments \
                  WHERE project_id = $2 AND status = 'leased' AND expires_at > $3) AS live_leases, \
               (SELECT COUNT(*) FROM items WHERE project_id = $4 AND escalation_reason = 'unsure') AS unsure, \
               (SELECT COUNT(*) FROM items \
                  WHERE project_id = $5 AND escalation_reason = 'no_agreement') AS no_agreement, \
               (SELECT COUNT(*) FROM annotations WHERE project_id = $6) AS labels, \
               (SELECT COUNT(*) FROM assignments WHERE project_id = $7 AND status = 'skipped') AS skips, \
               (SELECT COUNT(*) FROM annotations WHERE project_id = $8 AND is_late = 1) AS late",
        )
        .bind(project_id)
        .bind(project_id)
        .bind(now)
        .bind(project_id)
        .bind(project_id)
        .bind(project_id)
        .bind(project_id)
        .bind(project_id);
        let row = self.read_one(statement).await?;
        Ok(QueueOverview {
            open_items: row.col("open_items")?,
            live_leases: row.col("live_leases")?,
            escalated_unsure: row.col("unsure")?,
            escalated_no_agreement: row.col("no_agreement")?,
            labels: row.col("labels")?,
            skips: row.col("skips")?,
            late: row.col("late")?,
        })
    }
}

fn progress_from_row(row: &impl Columns, today: i64) -> Result<AnnotatorProgress> {
    let day: Option<i64> = row.col("day")?;
    let answered: i64 = row.col::<Option<i64>>("gold_answered")?.unwrap_or(0);
    let correct: i64 = row.col::<Option<i64>>("gold_correct")?.unwrap_or(0);
    let gold = GoldTally {
        correct: correct.max(0) as u64,
        answered: answered.max(0) as u64,
        answered_recently: 0,
    };
    let excluded: Option<String> = row.col("excluded_categories")?;
    Ok(AnnotatorProgress {
        user_id: row.col("id")?,
        username: row.col("username")?,
        display_name: row.col("display_name")?,
        kind: row.col("kind")?,
        done_today: if day == Some(today) {
            row.col::<Option<i64>>("done_today")?.unwrap_or(0)
        } else {
            0
        },
        done_total: row.col::<Option<i64>>("done_total")?.unwrap_or(0),
        daily_cap: row.col("daily_cap")?,
        gold,
        paused: row.col::<Option<i64>>("paused")?.unwrap_or(0) != 0,
        paused_reason: row.col("paused_reason")?,
        calibration_hold: row.col("calibration_hold")?,
        excluded_categories: match excluded {
            Some(text) => parse_json(&text, "excluded categories")?,
            None => Vec::new(),
        },
        time_total_ms: row.col::<Option<i64>>("time_total_ms")?.unwrap_or(0),
        high_severity_ms: row.col::<Option<i64>>("high_severity_ms")?.unwrap_or(0),
    })
}

async fn ensure_progress(c: &mut Conn<'_>, project_id: ProjectId, user_id: UserId) -> Result<()> {
    c.execute(
        stmt(
            "INSERT INTO annotator_progress (project_id, user_id) VALUES ($1, $2) \
         ON CONFLICT (project_id, user_id) DO NOTHING",
        )
        .bind(project_id)
        .bind(user_id),
    )
    .await?;
    Ok(())
}

/// The columns of [`AnnotatorProgress`] (without the gold tallies) and the rows they come
/// from: every user with progress here or an annotator's membership (binds: project twice).
const PROGRESS_COLUMNS: &str = "u.id, u.username, u.display_name, u.kind, p.day, p.done_today, \
     p.done_total, p.daily_cap, p.gold_answered, p.gold_correct, p.paused, p.paused_reason, \
     p.calibration_hold, p.excluded_categories, p.time_total_ms, p.high_severity_ms";
const PROGRESS_FROM: &str = "FROM users u \
     LEFT JOIN annotator_progress p ON p.user_id = u.id AND p.project_id = $1 \
     LEFT JOIN memberships m ON m.user_id = u.id AND m.project_id = $2 \
     WHERE (p.user_id IS NOT NULL OR m.role = 'annotator')";

/// Every label on a gold item of the project (bind: project), to be ordered by
/// [`GOLD_LABELS_ORDER`] so that each (item, annotator) run ends with the latest label.
const GOLD_LABELS: &str = "SELECT a.annotator_id, a.item_id, a.answer, a.created_at, i.gold_answer \
     FROM annotations a JOIN items i ON i.id = a.item_id \
     WHERE i.project_id = $1 AND i.is_gold = 1 AND a.kind = 'label'";
const GOLD_LABELS_ORDER: &str = "ORDER BY a.item_id, a.annotator_id, a.id";

/// Per annotator: gold answered, answered as gold says, and answered since `recent_from`,
/// from [`GOLD_LABELS`] rows in order. The last row of each (item, annotator) run is the
/// latest label: corrections win.
fn tally_gold(rows: &[Row], recent_from: i64) -> Result<std::collections::HashMap<Id, GoldTally>> {
    let mut tallies: std::collections::HashMap<Id, GoldTally> = Default::default();
    let mut gold_of_item: Option<(Id, Value)> = None;
    for (index, row) in rows.iter().enumerate() {
        let annotator: Id = row.col("annotator_id")?;
        let item: Id = row.col("item_id")?;
        let superseded = rows.get(index + 1).is_some_and(|next| {
            next.col::<Id>("annotator_id").ok() == Some(annotator)
                && next.col::<Id>("item_id").ok() == Some(item)
        });
        if superseded {
            continue;
        }
        if gold_of_item.as_ref().is_none_or(|(id, _)| *id != item) {
            gold_of_item = Some((item, parse_gold(row.col("gold_answer")?)?));
        }
        let Some((_, gold)) = &gold_of_item else {
            continue;
        };
        if gold.is_null() {
            continue;
        }
        let answer: Value = parse_json(&row.col::<String>("answer")?, "answer")?;
        let tally = tallies.entry(annotator).or_default();
        tally.answered += 1;
        tally.correct += u64::from(matches_gold(&answer, gold));
        let created_at: i64 = row.col("created_at")?;
        tally.answered_recently += u64::from(created_at >= recent_from);
    }
    Ok(tallies)
}
