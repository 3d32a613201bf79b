//! Calibration rounds: a batch of a project's items served to every annotator and QA expert
//! ahead of their production work. The experts' answers form the key; `concord-qa` computes
//! each annotator's agreement with it and the verdict, and the store records the verdicts and
//! holds those who did not pass from production work until a QA analyst releases them.
//!
//! A round's answers live in `calibration_answers`, never in `annotations`: they are not
//! production labels, so no consensus run, release or export can read them by accident.

use crate::Store;
use crate::audit::{self, AuditEvent};
use crate::conn::{self, Columns, Conn, stmt};
use crate::error::{Result, StoreError, parse_json};
use crate::ids::ItemId;
use crate::ids::{ProjectId, UserId};
use crate::model::{AnswerKind, AuditAction, Id, Project, Role};
use crate::qa_settings::check_calibration_threshold;
use crate::vocabulary::{CalibrationPart, CalibrationVerdict, RoundStatus};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;

/// The most items a round may hold: every participant answers all of them.
pub const MAX_CALIBRATION_ITEMS: usize = 500;

/// A round as a QA analyst asks for it.
#[derive(Debug, Clone)]
pub struct NewCalibrationRound {
    pub name: String,
    /// Items of the project, in the order they are served.
    pub item_ids: Vec<ItemId>,
    pub threshold: f64,
    pub hold_until_verdict: bool,
    /// The round this one repeats.
    pub repeats: Option<Id>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CalibrationRound {
    pub id: Id,
    pub project_id: ProjectId,
    pub name: String,
    pub threshold: f64,
    pub hold_until_verdict: bool,
    pub guideline_version_id: Option<Id>,
    /// The number of that guideline version.
    pub guideline_version: Option<i64>,
    pub repeats: Option<Id>,
    pub status: RoundStatus,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub closed_at: Option<i64>,
    pub items: i64,
    pub annotators: i64,
    pub experts: i64,
    /// Answers given so far, by everyone.
    pub answers: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CalibrationItem {
    pub item_id: ItemId,
    pub external_id: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CalibrationParticipant {
    pub user_id: UserId,
    pub username: String,
    pub display_name: String,
    pub part: CalibrationPart,
    /// Items of the round this person answered.
    pub answered: i64,
    pub verdict: Option<CalibrationVerdict>,
    pub score: Option<f64>,
    /// Held from production work by this round now.
    pub held: bool,
    pub released_by: Option<String>,
    pub released_at: Option<i64>,
}

/// One answer given in a round.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationAnswer {
    pub user_id: UserId,
    pub username: String,
    pub part: CalibrationPart,
    pub item_id: ItemId,
    pub kind: AnswerKind,
    pub answer: Value,
}

/// An annotator's outcome, computed by `concord-qa` when the round closes.
#[derive(Debug, Clone, Serialize)]
pub struct RoundVerdict {
    pub user_id: UserId,
    pub verdict: CalibrationVerdict,
    /// The lowest share of answers equal to the key over the questions.
    pub score: Option<f64>,
}

const ROUND_COLUMNS: &str = "r.id, r.project_id, r.name, r.threshold, r.hold_until_verdict, \
     r.guideline_version_id, g.version AS guideline_version, r.repeats, r.status, \
     u.username AS created_by, r.created_at, r.closed_at, \
     (SELECT COUNT(*) FROM calibration_items ci WHERE ci.round_id = r.id) AS items, \
     (SELECT COUNT(*) FROM calibration_participants p WHERE p.round_id = r.id AND p.part = 'annotator') AS annotators, \
     (SELECT COUNT(*) FROM calibration_participants p WHERE p.round_id = r.id AND p.part = 'expert') AS experts, \
     (SELECT COUNT(*) FROM calibration_answers a WHERE a.round_id = r.id) AS answers";

const ROUND_FROM: &str = "FROM calibration_rounds r \
     LEFT JOIN guideline_versions g ON g.id = r.guideline_version_id \
     LEFT JOIN users u ON u.id = r.created_by";

fn round_from_row(row: &conn::Row) -> Result<CalibrationRound> {
    Ok(CalibrationRound {
        id: row.col("id")?,
        project_id: row.col("project_id")?,
        name: row.col("name")?,
        threshold: row.col::<Option<f64>>("threshold")?.unwrap_or_default(),
        hold_until_verdict: row.col::<i64>("hold_until_verdict")? != 0,
        guideline_version_id: row.col("guideline_version_id")?,
        guideline_version: row.col("guideline_version")?,
        repeats: row.col("repeats")?,
        status: row.col("status")?,
        created_by: row.col("created_by")?,
        created_at: row.col("created_at")?,
        closed_at: row.col("closed_at")?,
        items: row.col("items")?,
        annotators: row.col("annotators")?,
        experts: row.col("experts")?,
        answers: row.col("answers")?,
    })
}

/// Who takes part: human, enabled members; annotators are measured, QA experts give the key.
struct Participants {
    annotators: Vec<UserId>,
    experts: Vec<UserId>,
}

impl NewCalibrationRound {
    /// Checks what the analyst asked for; the message names the field.
    fn check(&mut self) -> Result<()> {
        self.name = self.name.trim().to_owned();
        if self.name.is_empty() || self.name.chars().count() > 200 {
            return Err(StoreError::invalid(
                "name: give the round a name of 1 to 200 characters",
            ));
        }
        check_calibration_threshold(self.threshold, "threshold").map_err(StoreError::Invalid)?;
        if self.item_ids.is_empty() {
            return Err(StoreError::invalid(
                "items: a calibration round needs at least one item",
            ));
        }
        if self.item_ids.len() > MAX_CALIBRATION_ITEMS {
            return Err(StoreError::invalid(format!(
                "items: a calibration round holds at most {MAX_CALIBRATION_ITEMS} items ({} given)",
                self.item_ids.len()
            )));
        }
        let mut seen = HashSet::new();
        if let Some(twice) = self.item_ids.iter().find(|id| !seen.insert(**id)) {
            return Err(StoreError::invalid(format!(
                "items: item {twice} is listed twice"
            )));
        }
        Ok(())
    }
}

impl Store {
    /// Opens a round: its items are assigned to every annotator and QA expert of the project
    /// (served before any other work), and with `hold_until_verdict` its annotators get no
    /// production work until they pass. One round is open per project at a time.
    pub async fn open_calibration_round(
        &self,
        project: &Project,
        mut new: NewCalibrationRound,
        actor: Option<UserId>,
    ) -> Result<CalibrationRound> {
        new.check()?;
        let (project_id, guideline) = (project.id, project.current_guideline_version_id);
        let new = Arc::new(new);
        let round_id = self
            .write_native(move |mut c| {
                let new = new.clone();
                Box::pin(async move {
                    let c = &mut c;
                    refuse_second_open_round(c, project_id).await?;
                    if let Some(repeated) = new.repeats {
                        require_round(c, project_id, repeated).await?;
                    }
                    require_project_items(c, project_id, &new.item_ids).await?;
                    let who = participants(c, project_id).await?;
                    let round_id = insert_round(c, project_id, guideline, &new, actor).await?;
                    assign_round(c, project_id, round_id, &new.item_ids, &who).await?;
                    if new.hold_until_verdict {
                        for user in &who.annotators {
                            set_hold(c, project_id, *user, Some(round_id)).await?;
                        }
                    }
                    audit::record_in(
                        c,
                        AuditEvent {
                            actor,
                            project: Some(project_id),
                            action: AuditAction::Create,
                            entity: "calibration_round",
                            entity_id: Some(round_id),
                            before: None,
                            after: audit::snapshot(&json!({
                                "name": new.name, "items": new.item_ids.len(),
                                "threshold": new.threshold,
                                "hold_until_verdict": new.hold_until_verdict,
                                "repeats": new.repeats,
                                "annotators": who.annotators.len(), "experts": who.experts.len(),
                            })),
                        },
                    )
                    .await?;
                    Ok(round_id)
                })
            })
            .await?;
        self.calibration_round(project_id, round_id).await
    }

    /// The project's rounds, newest first.
    pub async fn calibration_rounds(&self, project_id: ProjectId) -> Result<Vec<CalibrationRound>> {
        self.read_native(move |mut c| {
            Box::pin(async move {
                let rows = c
                    .fetch_all(
                        stmt(format!(
                            "SELECT {ROUND_COLUMNS} {ROUND_FROM} WHERE r.project_id = $1 \
                             ORDER BY r.id DESC"
                        ))
                        .bind(project_id),
                    )
                    .await?;
                rows.iter().map(round_from_row).collect()
            })
        })
        .await
    }

    pub async fn calibration_round(
        &self,
        project_id: ProjectId,
        round_id: Id,
    ) -> Result<CalibrationRound> {
        self.read_native(move |mut c| {
            Box::pin(async move {
                let row = c
                    .fetch_optional(
                        stmt(format!(
                            "SELECT {ROUND_COLUMNS} {ROUND_FROM} \
                             WHERE r.project_id = $1 AND r.id = $2"
                        ))
                        .bind(project_id)
                        .bind(round_id),
                    )
                    .await?;
                match row {
                    Some(row) => round_from_row(&row),
                    None => Err(StoreError::not_found(format!(
                        "calibration round {round_id}"
                    ))),
                }
            })
        })
        .await
    }

    /// A round's items in the order they are served.
    pub async fn calibration_items(&self, round_id: Id) -> Result<Vec<CalibrationItem>> {
        self.read_native(move |mut c| {
            Box::pin(async move {
                let rows = c
                    .fetch_all(
                        stmt(
                            "SELECT i.id, i.external_id, i.title FROM calibration_items ci \
                             JOIN items i ON i.id = ci.item_id WHERE ci.round_id = $1 \
                             ORDER BY ci.position",
                        )
                        .bind(round_id),
                    )
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(CalibrationItem {
                            item_id: row.col("id")?,
                            external_id: row.col("external_id")?,
                            title: row.col("title")?,
                        })
                    })
                    .collect()
            })
        })
        .await
    }

    /// A round's participants (annotators, then experts, by user name) with their progress,
    /// verdict and hold.
    pub async fn calibration_participants(
        &self,
        project_id: ProjectId,
        round_id: Id,
    ) -> Result<Vec<CalibrationParticipant>> {
        self.read_native(move |mut c| {
            Box::pin(async move {
                let rows = c
                    .fetch_all(
                        stmt(
                            "SELECT p.user_id, u.username, u.display_name, p.part, p.verdict, \
                                    p.score, p.released_at, rb.username AS released_by, \
                                    (SELECT COUNT(*) FROM calibration_answers a \
                                      WHERE a.round_id = p.round_id AND a.user_id = p.user_id) AS answered, \
                                    (SELECT COUNT(*) FROM annotator_progress ap \
                                      WHERE ap.project_id = $1 AND ap.user_id = p.user_id \
                                        AND ap.calibration_hold = p.round_id) AS held \
                             FROM calibration_participants p \
                             JOIN users u ON u.id = p.user_id \
                             LEFT JOIN users rb ON rb.id = p.released_by \
                             WHERE p.round_id = $2 ORDER BY p.part, u.username",
                        )
                        .bind(project_id)
                        .bind(round_id),
                    )
                    .await?;
                rows.iter().map(participant_from_row).collect()
            })
        })
        .await
    }

    /// Every answer of a round, by person and item.
    pub async fn calibration_answers(&self, round_id: Id) -> Result<Vec<CalibrationAnswer>> {
        self.read_native(move |mut c| {
            Box::pin(async move {
                let rows = c
                    .fetch_all(
                        stmt(
                            "SELECT a.user_id, u.username, p.part, a.item_id, a.kind, a.answer \
                             FROM calibration_answers a \
                             JOIN calibration_participants p \
                               ON p.round_id = a.round_id AND p.user_id = a.user_id \
                             JOIN users u ON u.id = a.user_id \
                             WHERE a.round_id = $1 ORDER BY u.username, a.item_id",
                        )
                        .bind(round_id),
                    )
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(CalibrationAnswer {
                            user_id: row.col("user_id")?,
                            username: row.col("username")?,
                            part: row.col("part")?,
                            item_id: row.col("item_id")?,
                            kind: row.col("kind")?,
                            answer: parse_json(&row.col::<String>("answer")?, "answer")?,
                        })
                    })
                    .collect()
            })
        })
        .await
    }

    /// Items for a new round when the analyst names none: adjudicated and gold items first
    /// (their answers are settled), then labelled ones, in a fixed pseudo-random order.
    pub async fn calibration_sample(
        &self,
        project_id: ProjectId,
        count: usize,
    ) -> Result<Vec<ItemId>> {
        let count = count.min(MAX_CALIBRATION_ITEMS) as i64;
        self.read_native(move |mut c| {
            Box::pin(async move {
                let rows = c
                    .fetch_all(
                        stmt(
                            "SELECT id FROM items WHERE project_id = $1 \
                             ORDER BY CASE WHEN state = 'adjudicated' OR is_gold = 1 THEN 0 \
                                           WHEN state = 'labelled' THEN 1 ELSE 2 END, \
                                      (id * 2654435761) % 1000003, id \
                             LIMIT $2",
                        )
                        .bind(project_id)
                        .bind(count),
                    )
                    .await?;
                rows.iter().map(|row| row.col("id")).collect()
            })
        })
        .await
    }

    /// The ids of the project's items with these external ids, in the order given; an
    /// unknown one is an error naming it.
    pub async fn item_ids_by_external(
        &self,
        project_id: ProjectId,
        external_ids: &[String],
    ) -> Result<Vec<ItemId>> {
        let wanted: Arc<Vec<String>> = Arc::new(external_ids.to_vec());
        self.read_native(move |mut c| {
            Box::pin(async move {
                let mut ids = Vec::with_capacity(wanted.len());
                for external in wanted.iter() {
                    let row = c
                        .fetch_optional(
                            stmt("SELECT id FROM items WHERE project_id = $1 AND external_id = $2")
                                .bind(project_id)
                                .bind(external.as_str()),
                        )
                        .await?;
                    match row {
                        Some(row) => ids.push(row.col("id")?),
                        None => {
                            return Err(StoreError::invalid(format!(
                                "items: no item {external:?} in this project"
                            )));
                        }
                    }
                }
                Ok(ids)
            })
        })
        .await
    }

    /// Closes an open round with the verdicts `concord-qa` computed (one per annotator of the
    /// round): unanswered items are withdrawn, annotators who passed are free for production
    /// work and those who did not are held until a QA analyst releases them.
    pub async fn close_calibration_round(
        &self,
        project_id: ProjectId,
        round_id: Id,
        verdicts: Vec<RoundVerdict>,
        actor: Option<UserId>,
    ) -> Result<CalibrationRound> {
        let verdicts = Arc::new(verdicts);
        let dialect = self.dialect();
        self.write_native(move |mut c| {
            let verdicts = verdicts.clone();
            Box::pin(async move {
                let c = &mut c;
                require_closable(c, project_id, round_id, &verdicts).await?;
                let now = crate::queue::now_in(c, dialect).await?;
                for v in verdicts.iter() {
                    record_verdict(c, project_id, round_id, v).await?;
                }
                mark_round_closed(c, round_id, now, actor).await?;
                audit::record_in(
                    c,
                    AuditEvent {
                        actor,
                        project: Some(project_id),
                        action: AuditAction::Update,
                        entity: "calibration_round",
                        entity_id: Some(round_id),
                        before: audit::snapshot(&json!({"status": "open"})),
                        after: audit::snapshot(&json!({"status": "closed", "verdicts": *verdicts})),
                    },
                )
                .await?;
                Ok(())
            })
        })
        .await?;
        self.calibration_round(project_id, round_id).await
    }

    /// Releases an annotator this round holds (by its verdict, or while it is open) for
    /// production work. Refused when this round does not hold them.
    pub async fn release_from_calibration(
        &self,
        project_id: ProjectId,
        round_id: Id,
        user_id: UserId,
        actor: Option<UserId>,
    ) -> Result<()> {
        let dialect = self.dialect();
        self.write_native(move |mut c| {
            Box::pin(async move {
                let c = &mut c;
                require_held_by(c, project_id, round_id, user_id).await?;
                let now = crate::queue::now_in(c, dialect).await?;
                set_hold(c, project_id, user_id, None).await?;
                c.execute(
                    stmt(
                        "UPDATE calibration_participants SET released_by = $1, released_at = $2 \
                         WHERE round_id = $3 AND user_id = $4",
                    )
                    .bind(actor)
                    .bind(now)
                    .bind(round_id)
                    .bind(user_id),
                )
                .await?;
                audit::record_in(
                    c,
                    AuditEvent {
                        actor,
                        project: Some(project_id),
                        action: AuditAction::Resume,
                        entity: "calibration_hold",
                        entity_id: Some(user_id.get()),
                        before: audit::snapshot(&json!({"round_id": round_id})),
                        after: None,
                    },
                )
                .await?;
                Ok(())
            })
        })
        .await
    }
}

/// A round closes while open, with exactly one verdict for each of its annotators.
async fn require_closable(
    c: &mut Conn<'_>,
    project_id: ProjectId,
    round_id: Id,
    verdicts: &[RoundVerdict],
) -> Result<()> {
    let status = require_round(c, project_id, round_id).await?;
    if status != RoundStatus::Open {
        return Err(StoreError::conflict(format!(
            "calibration round {round_id} is already closed"
        )));
    }
    let annotators = round_annotators(c, round_id).await?;
    let judged: HashSet<UserId> = verdicts.iter().map(|v| v.user_id).collect();
    if judged != annotators || judged.len() != verdicts.len() {
        return Err(StoreError::invalid(
            "a round closes with exactly one verdict for each of its annotators",
        ));
    }
    Ok(())
}

/// Unanswered calibration items are withdrawn and the round is closed.
async fn mark_round_closed(
    c: &mut Conn<'_>,
    round_id: Id,
    now: i64,
    actor: Option<UserId>,
) -> Result<()> {
    c.execute(
        stmt(
            "UPDATE assignments SET status = 'expired', finished_at = $1 \
             WHERE calibration_round_id = $2 \
               AND (status = 'assigned' OR status = 'leased')",
        )
        .bind(now)
        .bind(round_id),
    )
    .await?;
    c.execute(
        stmt(
            "UPDATE calibration_rounds SET status = 'closed', closed_at = $1, \
             closed_by = $2 WHERE id = $3",
        )
        .bind(now)
        .bind(actor)
        .bind(round_id),
    )
    .await?;
    Ok(())
}

/// Only the round that holds a person may release them.
async fn require_held_by(
    c: &mut Conn<'_>,
    project_id: ProjectId,
    round_id: Id,
    user_id: UserId,
) -> Result<()> {
    let hold = c
        .fetch_optional(
            stmt(
                "SELECT calibration_hold FROM annotator_progress \
                 WHERE project_id = $1 AND user_id = $2",
            )
            .bind(project_id)
            .bind(user_id),
        )
        .await?
        .map(|row| row.col::<Option<Id>>("calibration_hold"))
        .transpose()?
        .flatten();
    if hold == Some(round_id) {
        return Ok(());
    }
    Err(StoreError::conflict(match hold {
        Some(other) => {
            format!("user {user_id} is held by calibration round {other}, not {round_id}")
        }
        None => format!("user {user_id} is not held by a calibration round"),
    }))
}

fn participant_from_row(row: &conn::Row) -> Result<CalibrationParticipant> {
    let verdict = row
        .col::<Option<String>>("verdict")?
        .map(|word| CalibrationVerdict::from_stored(&word, "verdict"))
        .transpose()?;
    Ok(CalibrationParticipant {
        user_id: row.col("user_id")?,
        username: row.col("username")?,
        display_name: row.col("display_name")?,
        part: row.col("part")?,
        answered: row.col("answered")?,
        verdict,
        score: row.col("score")?,
        held: row.col::<i64>("held")? > 0,
        released_by: row.col("released_by")?,
        released_at: row.col("released_at")?,
    })
}

async fn refuse_second_open_round(c: &mut Conn<'_>, project_id: ProjectId) -> Result<()> {
    let open = c
        .fetch_optional(
            stmt(
                "SELECT id, name FROM calibration_rounds WHERE project_id = $1 AND status = 'open'",
            )
            .bind(project_id),
        )
        .await?;
    match open {
        Some(row) => Err(StoreError::conflict(format!(
            "calibration round {} ({:?}) is still open: close it before opening another",
            row.col::<Id>("id")?,
            row.col::<String>("name")?
        ))),
        None => Ok(()),
    }
}

/// The round's status; not found unless it is a round of this project.
async fn require_round(
    c: &mut Conn<'_>,
    project_id: ProjectId,
    round_id: Id,
) -> Result<RoundStatus> {
    let row = c
        .fetch_optional(
            stmt("SELECT status FROM calibration_rounds WHERE project_id = $1 AND id = $2")
                .bind(project_id)
                .bind(round_id),
        )
        .await?;
    match row {
        Some(row) => row.col("status"),
        None => Err(StoreError::not_found(format!(
            "calibration round {round_id}"
        ))),
    }
}

async fn require_project_items(
    c: &mut Conn<'_>,
    project_id: ProjectId,
    item_ids: &[ItemId],
) -> Result<()> {
    for item_id in item_ids {
        let found = c
            .fetch_optional(
                stmt("SELECT id FROM items WHERE project_id = $1 AND id = $2")
                    .bind(project_id)
                    .bind(*item_id),
            )
            .await?;
        if found.is_none() {
            return Err(StoreError::invalid(format!(
                "items: item {item_id} is not an item of this project"
            )));
        }
    }
    Ok(())
}

async fn participants(c: &mut Conn<'_>, project_id: ProjectId) -> Result<Participants> {
    let mut who = Participants {
        annotators: Vec::new(),
        experts: Vec::new(),
    };
    for row in c
        .fetch_all(
            stmt(
                "SELECT m.user_id, m.role FROM memberships m JOIN users u ON u.id = m.user_id \
                 WHERE m.project_id = $1 AND u.kind = 'human' AND u.disabled = 0 \
                 ORDER BY m.user_id",
            )
            .bind(project_id),
        )
        .await?
    {
        let role = row.col::<String>("role")?;
        match Role::parse(&role) {
            Some(Role::Annotator) => who.annotators.push(row.col("user_id")?),
            Some(Role::QaExpert) => who.experts.push(row.col("user_id")?),
            _ => {}
        }
    }
    if who.experts.is_empty() {
        return Err(StoreError::invalid(
            "a calibration round needs a QA expert in the project: their answers form the key",
        ));
    }
    if who.annotators.is_empty() {
        return Err(StoreError::invalid(
            "a calibration round needs annotators in the project to calibrate",
        ));
    }
    Ok(who)
}

async fn insert_round(
    c: &mut Conn<'_>,
    project_id: ProjectId,
    guideline: Option<Id>,
    new: &NewCalibrationRound,
    actor: Option<UserId>,
) -> Result<Id> {
    c.insert_id(
        stmt(
            "INSERT INTO calibration_rounds (project_id, name, threshold, hold_until_verdict, \
               guideline_version_id, repeats, status, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, 'open', $7)",
        )
        .bind(project_id)
        .bind(new.name.as_str())
        .bind(new.threshold)
        .bind(new.hold_until_verdict as i64)
        .bind(guideline)
        .bind(new.repeats)
        .bind(actor),
    )
    .await
}

/// The round's items, its participants, and an assignment of every item to every one.
async fn assign_round(
    c: &mut Conn<'_>,
    project_id: ProjectId,
    round_id: Id,
    item_ids: &[ItemId],
    who: &Participants,
) -> Result<()> {
    for (position, item_id) in item_ids.iter().enumerate() {
        c.execute(
            stmt("INSERT INTO calibration_items (round_id, item_id, position) VALUES ($1, $2, $3)")
                .bind(round_id)
                .bind(*item_id)
                .bind(position as i64),
        )
        .await?;
    }
    let people = who
        .annotators
        .iter()
        .map(|u| (*u, CalibrationPart::Annotator))
        .chain(who.experts.iter().map(|u| (*u, CalibrationPart::Expert)));
    for (user_id, part) in people {
        c.execute(
            stmt(
                "INSERT INTO calibration_participants (round_id, user_id, part) \
                 VALUES ($1, $2, $3)",
            )
            .bind(round_id)
            .bind(user_id)
            .bind(part.as_str()),
        )
        .await?;
        for item_id in item_ids {
            c.execute(
                stmt(
                    "INSERT INTO assignments (project_id, item_id, user_id, purpose, status, \
                       counts_toward_overlap, calibration_round_id) \
                     VALUES ($1, $2, $3, 'calibration', 'assigned', 0, $4)",
                )
                .bind(project_id)
                .bind(*item_id)
                .bind(user_id)
                .bind(round_id),
            )
            .await?;
        }
    }
    Ok(())
}

async fn round_annotators(c: &mut Conn<'_>, round_id: Id) -> Result<HashSet<UserId>> {
    c.fetch_all(
        stmt(
            "SELECT user_id FROM calibration_participants \
             WHERE round_id = $1 AND part = 'annotator'",
        )
        .bind(round_id),
    )
    .await?
    .iter()
    .map(|row| row.col("user_id"))
    .collect()
}

/// Stores a verdict and applies it: a pass clears any calibration hold, anything else holds.
async fn record_verdict(
    c: &mut Conn<'_>,
    project_id: ProjectId,
    round_id: Id,
    v: &RoundVerdict,
) -> Result<()> {
    c.execute(
        stmt(
            "UPDATE calibration_participants SET verdict = $1, score = $2 \
             WHERE round_id = $3 AND user_id = $4",
        )
        .bind(v.verdict.as_str())
        .bind(v.score)
        .bind(round_id)
        .bind(v.user_id),
    )
    .await?;
    let hold = (v.verdict != CalibrationVerdict::Pass).then_some(round_id);
    set_hold(c, project_id, v.user_id, hold).await
}

/// Sets (or clears) the round that holds an annotator from production work.
async fn set_hold(
    c: &mut Conn<'_>,
    project_id: ProjectId,
    user_id: UserId,
    round: Option<Id>,
) -> Result<()> {
    c.execute(
        stmt(
            "INSERT INTO annotator_progress (project_id, user_id, calibration_hold) \
             VALUES ($1, $2, $3) \
             ON CONFLICT (project_id, user_id) DO UPDATE SET calibration_hold = $3",
        )
        .bind(project_id)
        .bind(user_id)
        .bind(round),
    )
    .await?;
    Ok(())
}
