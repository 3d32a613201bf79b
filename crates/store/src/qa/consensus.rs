//! What a consensus run reads (every latest label with its annotator and guideline version)
//! and writes back in one transaction: per-item consensus, per-annotator quality, the run's
//! report and its escalations.

use super::bulk::*;
use super::escalations::*;
use crate::audit::AuditEvent;
use crate::conn::{Columns, Conn, stmt};
use crate::error::{Result, StoreError, json_text, parse_json};
use crate::ids::{ItemId, ProjectId, UserId};
use crate::model::AuditAction;
use crate::model::{AccountKind, AnswerKind, Id, ItemState};
use crate::{Store, audit};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who gave labels in a project.
#[derive(Debug, Clone, Serialize)]
pub struct AnnotatorFact {
    pub id: Id,
    pub username: String,
    /// The automated annotator is scored, not counted in consensus.
    pub kind: AccountKind,
}

/// One label as the consensus run sees it: the latest answer of an annotator on an item.
#[derive(Debug, Clone, Copy)]
pub struct LabelFact<'a> {
    pub item_id: ItemId,
    pub annotator_id: UserId,
    /// Index into [`LabelFacts::annotators`].
    pub annotator_index: u32,
    pub annotator: &'a AnnotatorFact,
    pub kind: AnswerKind,
    /// Index into [`LabelFacts::answers`]: equal answers share one index.
    pub answer_index: u32,
    pub answer: &'a Value,
    /// The guideline version number the annotator worked under.
    pub guideline_version: Option<i64>,
    pub created_at: i64,
}

/// The latest labels of a project, column by column, in item order. A million labels
/// carry a few dozen distinct answers, so each distinct answer (and annotator, and kind)
/// is stored and parsed once and the rows hold indexes.
#[derive(Debug, Clone, Default)]
pub struct LabelFacts {
    item_id: Vec<Id>,
    annotator: Vec<u32>,
    kind: Vec<u32>,
    answer: Vec<u32>,
    guideline_version: Vec<Option<i64>>,
    created_at: Vec<i64>,
    pub annotators: Vec<AnnotatorFact>,
    pub kinds: Vec<AnswerKind>,
    pub answers: Vec<Value>,
}

impl LabelFacts {
    pub fn len(&self) -> usize {
        self.item_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.item_id.is_empty()
    }

    /// The `row`-th label (`row < len()`).
    pub fn get(&self, row: usize) -> LabelFact<'_> {
        let annotator = &self.annotators[self.annotator[row] as usize];
        LabelFact {
            item_id: ItemId(self.item_id[row]),
            annotator_id: UserId(annotator.id),
            annotator_index: self.annotator[row],
            annotator,
            kind: self.kinds[self.kind[row] as usize],
            answer_index: self.answer[row],
            answer: &self.answers[self.answer[row] as usize],
            guideline_version: self.guideline_version[row],
            created_at: self.created_at[row],
        }
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = LabelFact<'_>> + '_ {
        (0..self.len()).map(|row| self.get(row))
    }

    /// Appends a label (tests and callers outside the store build inputs this way).
    pub fn push(
        &mut self,
        item_id: ItemId,
        annotator: &AnnotatorFact,
        kind: AnswerKind,
        answer: Value,
        guideline_version: Option<i64>,
        created_at: i64,
    ) {
        let annotator_index = match self.annotators.iter().position(|a| a.id == annotator.id) {
            Some(i) => i,
            None => {
                self.annotators.push(annotator.clone());
                self.annotators.len() - 1
            }
        };
        let kind_index = match self.kinds.iter().position(|&k| k == kind) {
            Some(i) => i,
            None => {
                self.kinds.push(kind);
                self.kinds.len() - 1
            }
        };
        let answer_index = match self.answers.iter().position(|a| *a == answer) {
            Some(i) => i,
            None => {
                self.answers.push(answer);
                self.answers.len() - 1
            }
        };
        self.item_id.push(item_id.get());
        self.annotator.push(annotator_index as u32);
        self.kind.push(kind_index as u32);
        self.answer.push(answer_index as u32);
        self.guideline_version.push(guideline_version);
        self.created_at.push(created_at);
    }
}

impl LabelFacts {
    /// The row of `annotator` on the item whose rows start at `item_start` (the item being
    /// read): an existing row when the annotator corrected an earlier label, else a new one.
    fn row_of(&mut self, item_start: usize, item_id: ItemId, annotator: u32) -> usize {
        match self.annotator[item_start..]
            .iter()
            .position(|&a| a == annotator)
        {
            Some(offset) => item_start + offset,
            None => {
                self.item_id.push(item_id.get());
                self.annotator.push(annotator);
                self.kind.push(0);
                self.answer.push(0);
                self.guideline_version.push(None);
                self.created_at.push(0);
                self.item_id.len() - 1
            }
        }
    }

    fn shrink_to_fit(&mut self) {
        self.item_id.shrink_to_fit();
        self.annotator.shrink_to_fit();
        self.kind.shrink_to_fit();
        self.answer.shrink_to_fit();
        self.guideline_version.shrink_to_fit();
        self.created_at.shrink_to_fit();
    }
}

/// Interns strings to dense indexes, keeping the first-seen order.
#[derive(Default)]
pub(super) struct TextIndex {
    index: std::collections::HashMap<String, u32>,
    texts: Vec<String>,
}

impl TextIndex {
    /// The distinct texts of `texts` (runs of equal texts are common), indexed in sorted
    /// order, so that keys by index sort as keys by text in the database's binary order.
    fn in_order<'t>(texts: impl Iterator<Item = &'t str>) -> Self {
        let mut distinct: Vec<&str> = Vec::new();
        for text in texts {
            if distinct.last() != Some(&text) && !distinct.contains(&text) {
                distinct.push(text);
            }
        }
        distinct.sort_unstable();
        let mut index = TextIndex::default();
        for text in distinct {
            index.intern(text);
        }
        index
    }

    fn get(&self, text: &str) -> Option<u32> {
        self.index.get(text).copied()
    }

    fn intern(&mut self, text: &str) -> u32 {
        if let Some(&i) = self.index.get(text) {
            return i;
        }
        let i = self.texts.len() as u32;
        self.index.insert(text.to_owned(), i);
        self.texts.push(text.to_owned());
        i
    }
}

/// What the run needs of an item.
#[derive(Debug, Clone, Serialize)]
pub struct ItemFact {
    pub id: Id,
    pub external_id: String,
    pub title: String,
    pub state: ItemState,
    pub is_gold: bool,
    pub gold_answer: Option<Value>,
    pub escalation_reason: Option<String>,
    /// An expert has decided it (escalation rules no longer apply).
    pub adjudicated: bool,
    /// It is waiting in the expert queue already.
    pub open_escalation: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ConsensusInput {
    pub labels: LabelFacts,
    pub items: Vec<ItemFact>,
    /// (item, model account) → the confidence the automated annotator stated with its
    /// label, where it gave one.
    pub model_confidence: std::collections::HashMap<(ItemId, UserId), f64>,
}

/// A consensus result for one item and question.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ItemConsensus {
    pub item_id: ItemId,
    pub question: String,
    /// A code, a list of codes (multi-label), or null when undecided.
    pub label: Option<Value>,
    /// `{code: probability}`.
    pub posterior: Value,
    pub confidence: Option<f64>,
    pub agreement: Option<f64>,
    pub n_labels: i64,
    pub tied: bool,
}

/// A consensus result as a run writes it: the JSON already as text, so a million rows do
/// not each hold a parsed object.
#[derive(Debug, Clone, PartialEq)]
pub struct NewItemConsensus {
    pub item_id: ItemId,
    pub question: String,
    /// JSON text of the label, or None when undecided.
    pub label: Option<String>,
    /// JSON text `{code: probability}`.
    pub posterior: String,
    pub confidence: Option<f64>,
    pub agreement: Option<f64>,
    pub n_labels: i64,
    pub tied: bool,
}

impl NewItemConsensus {
    /// A fingerprint of what the row says, to skip rewriting rows a run did not change.
    fn digest(&self) -> i64 {
        content_digest(
            self.label.as_deref(),
            &self.posterior,
            self.confidence,
            self.agreement,
            self.n_labels,
            self.tied,
        )
    }
}

pub(super) fn content_digest(
    label: Option<&str>,
    posterior: &str,
    confidence: Option<f64>,
    agreement: Option<f64>,
    n_labels: i64,
    tied: bool,
) -> i64 {
    // FNV-1a: stored in the database, so it must not change between builds (std's
    // hasher may).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    };
    feed(label.unwrap_or("\u{0}null").as_bytes());
    feed(posterior.as_bytes());
    feed(&confidence.map_or(u64::MAX, f64::to_bits).to_le_bytes());
    feed(&agreement.map_or(u64::MAX, f64::to_bits).to_le_bytes());
    feed(&n_labels.to_le_bytes());
    feed(&[u8::from(tied)]);
    hash as i64
}

/// An annotator's quality on one question, against the consensus.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AnnotatorQuality {
    pub user_id: UserId,
    pub question: String,
    pub labels: i64,
    pub agreement: Option<f64>,
    pub skill: Option<f64>,
    /// `{classes: [...], counts: [[...]]}`: rows the consensus, columns the annotator's label.
    pub confusion: Value,
}

/// Everything one run writes.
#[derive(Debug, Clone)]
pub struct ConsensusWrite {
    pub method: String,
    pub annotations: i64,
    pub summary: Value,
    pub items: Vec<NewItemConsensus>,
    pub annotators: Vec<AnnotatorQuality>,
    pub escalations: Vec<NewEscalation>,
    pub job_id: Option<Id>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConsensusRun {
    pub id: Id,
    pub project_id: ProjectId,
    pub job_id: Option<Id>,
    pub method: String,
    pub annotations: i64,
    pub items: i64,
    pub escalated: i64,
    pub summary: Value,
    pub created_by: Option<String>,
    pub created_at: i64,
}

pub(super) fn run_from_row(row: &impl Columns) -> Result<ConsensusRun> {
    Ok(ConsensusRun {
        id: row.col("id")?,
        project_id: row.col("project_id")?,
        job_id: row.col("job_id")?,
        method: row.col("method")?,
        annotations: row.col("annotations")?,
        items: row.col("items")?,
        escalated: row.col("escalated")?,
        summary: parse_json(&row.col::<String>("summary")?, "consensus summary")?,
        created_by: row.col("author")?,
        created_at: row.col("created_at")?,
    })
}

/// Replaces the project's per-item consensus with `rows`, writing only the rows whose
/// content changed and removing those the run no longer has; returns (written, removed).
/// A row's `run_id` is thus the run that last changed it.
pub(super) async fn write_item_consensus(
    c: &mut Conn<'_>,
    dialect: crate::Dialect,
    project_id: ProjectId,
    run_id: Id,
    rows: &[NewItemConsensus],
) -> Result<(u64, u64)> {
    let digests = row_digests(rows);
    let mut questions = TextIndex::in_order(rows.iter().map(|row| row.question.as_str()));
    let stored = stored_digests(c, dialect, project_id, &mut questions).await?;
    let Comparison { mut changed, gone } = compare_with_stored(rows, &digests, &questions, stored);
    // Most rows changed (e.g. new labels moved every posterior): replacing the project's
    // rows is cheaper than updating each in place.
    let replace_all = changed.len() * 2 > rows.len();
    let removed = gone.len() as u64;
    let gone = if replace_all {
        changed = rows.iter().zip(digests).collect();
        c.execute(stmt("DELETE FROM item_consensus WHERE project_id = $1").bind(project_id))
            .await?;
        Vec::new()
    } else {
        gone
    };
    delete_consensus_rows(c, dialect, &gone).await?;
    let target = ConsensusTarget {
        project_id,
        run_id,
        // Nothing of the project's is left to conflict with after a replacement.
        upsert: !replace_all,
    };
    upsert_consensus_rows(c, dialect, target, &changed).await?;
    Ok((changed.len() as u64, removed))
}

/// Each row's digest, the rows split among the machine's cores (FNV reads a byte at a
/// time: a rerun over a million items digests ≈ 100 MB of posteriors).
fn row_digests(rows: &[NewItemConsensus]) -> Vec<i64> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let piece = rows.len().div_ceil(threads).max(4096);
    let mut digests = vec![0i64; rows.len()];
    std::thread::scope(|scope| {
        for (rows, out) in rows.chunks(piece).zip(digests.chunks_mut(piece)) {
            scope.spawn(move || {
                for (row, digest) in rows.iter().zip(out) {
                    *digest = row.digest();
                }
            });
        }
    });
    digests
}

/// A stored consensus row's key and digest: (question index, item, digest).
type StoredDigest = (u32, ItemId, i64);

/// What a rerun writes: the rows to write with their digests, and the stored (item,
/// question) rows to delete, sorted.
struct Comparison<'r> {
    changed: Vec<(&'r NewItemConsensus, i64)>,
    gone: Vec<(ItemId, String)>,
}

/// The rows whose digest differs from the stored one or that have none stored (with their
/// digests), and the stored (item, question) rows the run no longer has, sorted. Both sides
/// are walked once in (question, item) order: a rerun over a million items looked each
/// up in a hash map, and its removals were a quarter of the writer's time.
fn compare_with_stored<'r>(
    rows: &'r [NewItemConsensus],
    digests: &[i64],
    questions: &TextIndex,
    mut stored: Vec<StoredDigest>,
) -> Comparison<'r> {
    let mut keys: Vec<(u32, ItemId, u32)> = Vec::with_capacity(rows.len());
    let mut last: Option<(&str, u32)> = None;
    for (index, row) in rows.iter().enumerate() {
        let question = match last {
            Some((text, q)) if text == row.question => q,
            _ => {
                let q = questions.get(&row.question).unwrap_or(u32::MAX);
                last = Some((row.question.as_str(), q));
                q
            }
        };
        keys.push((question, row.item_id, index as u32));
    }
    if !keys.is_sorted() {
        keys.sort_unstable();
    }
    if !stored.is_sorted_by_key(|&(q, item, _)| (q, item)) {
        stored.sort_unstable_by_key(|&(q, item, _)| (q, item));
    }
    let mut changed = Vec::new();
    let mut gone = Vec::new();
    let mut stored = stored.into_iter().peekable();
    for (question, item_id, index) in keys {
        let row = &rows[index as usize];
        let digest = digests[index as usize];
        let mut same = false;
        while let Some(&(q, item, stored_digest)) = stored.peek() {
            if (q, item) > (question, item_id) {
                break;
            }
            stored.next();
            if (q, item) == (question, item_id) {
                same = stored_digest == digest;
                break;
            }
            gone.push((item, questions.texts[q as usize].clone()));
        }
        if !same {
            changed.push((row, digest));
        }
    }
    gone.extend(stored.map(|(q, item, _)| (item, questions.texts[q as usize].clone())));
    gone.sort_unstable();
    Comparison { changed, gone }
}

/// The digest of every stored consensus row, keyed by question index (`questions`
/// learns the questions the run no longer has) and item, in (question, item) order as
/// the `item_consensus_project` index holds them.
async fn stored_digests(
    c: &mut Conn<'_>,
    dialect: crate::Dialect,
    project_id: ProjectId,
    questions: &mut TextIndex,
) -> Result<Vec<StoredDigest>> {
    let mut stored = Vec::new();
    // SQLite: one statement stepped in place, the question's text borrowed (a rerun over a
    // million items read 667k digests through JSON pages in ≈ 0.2 s more).
    if let Conn::Sqlite(conn) = c {
        let mut last: Option<(String, u32)> = None;
        for_each_project_row(
            conn,
            "SELECT item_id, question, digest FROM item_consensus WHERE project_id = ?1 \
             ORDER BY question, item_id",
            project_id,
            |row| {
                let text = text_column(row, 1)?;
                let question = match &last {
                    Some((seen, q)) if seen == text => *q,
                    _ => {
                        let q = questions.intern(text);
                        last = Some((text.to_owned(), q));
                        q
                    }
                };
                stored.push((question, ItemId(row.get(0)?), row.get(2)?));
                Ok(())
            },
        )?;
        return Ok(stored);
    }
    let sql = format!(
        "SELECT {} FROM (SELECT item_id, question, digest FROM item_consensus \
           WHERE project_id = $1 AND (question, item_id) > ($2, $3) \
           ORDER BY question, item_id LIMIT {PAGE_ROWS}) page",
        dialect.json_rows("item_id, question, digest", "question, item_id")
    );
    let page_key = |row: &(ItemId, String, i64)| (row.1.clone(), row.0);
    for_each_question_page(c, &sql, project_id, page_key, |page| {
        for (item_id, question, digest) in page {
            stored.push((questions.intern(&question), item_id, digest));
        }
        Ok(())
    })
    .await?;
    Ok(stored)
}

/// Deletes the given (item, question) consensus rows.
async fn delete_consensus_rows(
    c: &mut Conn<'_>,
    dialect: crate::Dialect,
    gone: &[(ItemId, String)],
) -> Result<()> {
    for chunk in gone.chunks(PARAMS_PER_STATEMENT / 2) {
        let mut sql =
            String::from("DELETE FROM item_consensus WHERE (item_id, question) IN (VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            sql += &format!(
                "({}, {})",
                dialect.param(2 * i + 1),
                dialect.param(2 * i + 2)
            );
        }
        sql.push(')');
        let mut query = stmt(&sql);
        for (item_id, question) in chunk {
            query = query.bind(*item_id).bind(question.clone());
        }
        c.execute(query).await?;
    }
    Ok(())
}

/// Where changed consensus rows go: the run that changed them, and whether a row of the
/// same (item, question) may already be there.
#[derive(Clone, Copy)]
struct ConsensusTarget {
    project_id: ProjectId,
    run_id: Id,
    upsert: bool,
}

async fn upsert_consensus_rows(
    c: &mut Conn<'_>,
    dialect: crate::Dialect,
    target: ConsensusTarget,
    changed: &[(&NewItemConsensus, i64)],
) -> Result<()> {
    // long: a row writer's declaration — the statement, then one line per column for its
    // type, its JSON and its bind.
    let ConsensusTarget {
        project_id,
        run_id,
        upsert,
    } = target;
    let on_conflict = " ON CONFLICT (item_id, question) DO UPDATE SET project_id = excluded.project_id, \
         run_id = excluded.run_id, label = excluded.label, posterior = excluded.posterior, \
         confidence = excluded.confidence, agreement = excluded.agreement, \
         n_labels = excluded.n_labels, tied = excluded.tied, digest = excluded.digest";
    insert_rows(
        c,
        dialect,
        &format!(
            "INSERT INTO item_consensus (project_id, run_id, item_id, question, label, posterior, \
               confidence, agreement, n_labels, tied, digest) SELECT {project_id}, {run_id}, * FROM ("
        ),
        &format!(") AS new WHERE true{}", if upsert { on_conflict } else { "" }),
        changed,
        RowWriter {
            types: &[
                "bigint",
                "text",
                "text",
                "text",
                "double precision",
                "double precision",
                "bigint",
                "bigint",
                "bigint",
            ],
            to_json: &|(row, digest)| {
                serde_json::json!([
                    row.item_id,
                    row.question,
                    row.label,
                    row.posterior,
                    row.confidence,
                    row.agreement,
                    row.n_labels,
                    i64::from(row.tied),
                    digest
                ])
            },
            bind: &|query, (row, digest)| {
                query
                    .bind(row.item_id)
                    .bind(row.question.as_str())
                    .bind(row.label.as_deref())
                    .bind(row.posterior.as_str())
                    .bind(row.confidence)
                    .bind(row.agreement)
                    .bind(row.n_labels)
                    .bind(i64::from(row.tied))
                    .bind(*digest)
            },
        },
    )
    .await?;
    Ok(())
}

/// The run's own row; returns its id and time.
async fn insert_run(
    c: &mut Conn<'_>,
    dialect: crate::Dialect,
    project_id: ProjectId,
    run: &ConsensusWrite,
    actor: Option<UserId>,
) -> Result<(Id, i64)> {
    let now = dialect.now_ms();
    let items_count = run
        .items
        .iter()
        .map(|i| i.item_id)
        .collect::<rustc_hash::FxHashSet<_>>()
        .len() as i64;
    let row = c
        .fetch_one(
            stmt(format!(
                "INSERT INTO consensus_runs (project_id, job_id, method, annotations, items, \
           escalated, summary, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, 0, $6, $7, {now}) RETURNING id, created_at"
            ))
            .bind(project_id)
            .bind(run.job_id)
            .bind(&run.method)
            .bind(run.annotations)
            .bind(items_count)
            .bind(json_text(&run.summary))
            .bind(actor),
        )
        .await?;
    Ok((row.col("id")?, row.col("created_at")?))
}

/// The project's per-annotator results become this run's.
async fn replace_annotator_quality(
    c: &mut Conn<'_>,
    dialect: crate::Dialect,
    project_id: ProjectId,
    run_id: Id,
    annotators: &[AnnotatorQuality],
) -> Result<()> {
    c.execute(stmt("DELETE FROM annotator_quality WHERE project_id = $1").bind(project_id))
        .await?;
    insert_rows(
        c,
        dialect,
        &format!(
            "INSERT INTO annotator_quality (project_id, run_id, user_id, question, labels, \
             agreement, skill, confusion) SELECT {project_id}, {run_id}, * FROM ("
        ),
        ") AS new",
        annotators,
        RowWriter {
            types: &[
                "bigint",
                "text",
                "bigint",
                "double precision",
                "double precision",
                "text",
            ],
            to_json: &|a| {
                serde_json::json!([
                    a.user_id,
                    a.question,
                    a.labels,
                    a.agreement,
                    a.skill,
                    json_text(&a.confusion)
                ])
            },
            bind: &|query, a| {
                query
                    .bind(a.user_id)
                    .bind(a.question.as_str())
                    .bind(a.labels)
                    .bind(a.agreement)
                    .bind(a.skill)
                    .bind(json_text(&a.confusion))
            },
        },
    )
    .await?;
    Ok(())
}

/// Opens the run's escalations and moves their items to the expert queue; returns how many
/// opened. Items adjudicated or already waiting are skipped, so a rerun never queues an
/// item twice.
async fn open_escalations(
    c: &mut Conn<'_>,
    dialect: crate::Dialect,
    (project_id, run_id, created_at): (Id, Id, i64),
    escalations: &[NewEscalation],
) -> Result<i64> {
    let opened = insert_rows(
        c,
        dialect,
        "WITH new (item_id, reasons, priority, priority_reason, due_at, expected_cost) AS (",
        &format!(
            ") INSERT INTO escalations (project_id, item_id, reasons, priority, \
               priority_reason, status, opened_at, due_at, run_id, expected_cost) \
             SELECT i.project_id, i.id, new.reasons, new.priority, new.priority_reason, \
                    'open', {created_at}, new.due_at, {run_id}, new.expected_cost \
             FROM new JOIN items i ON i.id = new.item_id \
             WHERE i.project_id = {project_id} \
               AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.item_id = i.id AND e.status = 'open') \
               AND NOT EXISTS (SELECT 1 FROM adjudications d WHERE d.item_id = i.id)"
        ),
        escalations,
        RowWriter {
            types: &["bigint", "text", "bigint", "text", "bigint", "double precision"],
            to_json: &|e| {
                serde_json::json!([
                    e.item_id,
                    json_text(&e.reasons),
                    e.priority,
                    e.priority_reason,
                    created_at + e.sla_ms,
                    e.expected_cost
                ])
            },
            bind: &|query, e| {
                query
                    .bind(e.item_id)
                    .bind(json_text(&e.reasons))
                    .bind(e.priority)
                    .bind(e.priority_reason.as_str())
                    .bind(created_at + e.sla_ms)
                    .bind(e.expected_cost)
            },
        },
    )
    .await? as i64;
    mark_escalated(c, run_id, created_at, opened).await?;
    Ok(opened)
}

/// The items a run escalated leave the queue, and the run records how many it opened.
async fn mark_escalated(c: &mut Conn<'_>, run_id: Id, now: i64, opened: i64) -> Result<()> {
    c.execute(
        stmt(
            "UPDATE items SET state = 'escalated', open = 0, updated_at = $1 \
         WHERE id IN (SELECT item_id FROM escalations WHERE run_id = $2)",
        )
        .bind(now)
        .bind(run_id),
    )
    .await?;
    c.execute(
        stmt("UPDATE consensus_runs SET escalated = $1 WHERE id = $2")
            .bind(opened)
            .bind(run_id),
    )
    .await?;
    Ok(())
}

pub(super) fn item_consensus_from_row(row: &impl Columns) -> Result<ItemConsensus> {
    let label: Option<String> = row.col("label")?;
    Ok(ItemConsensus {
        item_id: row.col("item_id")?,
        question: row.col("question")?,
        label: label
            .map(|l| parse_json(&l, "consensus label"))
            .transpose()?,
        posterior: parse_json(&row.col::<String>("posterior")?, "posterior")?,
        confidence: row.col("confidence")?,
        agreement: row.col("agreement")?,
        n_labels: row.col("n_labels")?,
        tied: row.col::<i64>("tied")? != 0,
    })
}

impl Store {
    /// Every item of the project and the latest answer of every annotator on each (a
    /// correction replaces what it supersedes), in item order.
    ///
    /// The labels and the items are read side by side, each on a connection of its own (on
    /// SQLite, each on a blocking thread): they were the run's two longest reads, one after
    /// the other, while the other core waited.
    pub async fn consensus_input(&self, project_id: ProjectId) -> Result<ConsensusInput> {
        let (labels, (items, model_confidence)) = tokio::try_join!(
            self.latest_labels(project_id),
            self.item_facts_and_confidences(project_id),
        )?;
        Ok(ConsensusInput {
            labels,
            items,
            model_confidence,
        })
    }

    /// The items part of [`Store::consensus_input`].
    async fn item_facts_and_confidences(
        &self,
        project_id: ProjectId,
    ) -> Result<(
        Vec<ItemFact>,
        std::collections::HashMap<(ItemId, UserId), f64>,
    )> {
        let dialect = self.dialect();
        let started = std::time::Instant::now();
        let (adjudicated, waiting) = self.adjudicated_and_waiting(project_id).await?;
        let marks = ItemMarks {
            adjudicated,
            waiting,
        };
        let items = self
            .read(move |mut c| {
                Box::pin(async move { item_facts(&mut c, dialect, project_id, &marks).await })
            })
            .await?;
        let model_confidence = self.model_confidences(project_id).await?;
        tracing::debug!(
            items = items.len(),
            seconds = started.elapsed().as_secs_f64(),
            "consensus input: items read"
        );
        Ok((items, model_confidence))
    }

    /// The ids, sorted, of the project's adjudicated items and of those waiting for an
    /// expert: two id lists instead of two EXISTS per item (adjudicated items are few,
    /// waiting ones at most one per item).
    async fn adjudicated_and_waiting(&self, project_id: ProjectId) -> Result<(Vec<Id>, Vec<Id>)> {
        let mut adjudicated: Vec<Id> = Vec::new();
        for row in self
            .read_rows(
                stmt("SELECT DISTINCT item_id FROM adjudications WHERE project_id = $1")
                    .bind(project_id),
            )
            .await?
        {
            adjudicated.push(row.col("item_id")?);
        }
        adjudicated.sort_unstable();
        let waiting_sql = format!(
            "SELECT {} FROM (SELECT item_id FROM escalations WHERE project_id = $1 AND status = 'open') page",
            self.dialect().json_rows("item_id", "item_id")
        );
        let waiting: Vec<(Id,)> = self
            .read_packed_page(stmt(&waiting_sql).bind(project_id))
            .await?;
        let mut waiting: Vec<Id> = waiting.into_iter().map(|(id,)| id).collect();
        waiting.sort_unstable();
        Ok((adjudicated, waiting))
    }

    /// The latest label of every annotator on every item of the project, streamed in item
    /// order: rows are never held as driver rows, answers are parsed once per distinct text.
    /// The latest answer of every annotator on each item of the project (a correction
    /// replaces what it supersedes), in item order: the labels part of
    /// [`Store::consensus_input`], for reports that need nothing else.
    pub async fn latest_label_facts(&self, project_id: ProjectId) -> Result<LabelFacts> {
        self.latest_labels(project_id).await
    }

    /// External id and title of these items of the project (unknown ids are left out).
    pub async fn item_names(
        &self,
        project_id: ProjectId,
        ids: &[ItemId],
    ) -> Result<std::collections::HashMap<ItemId, (String, String)>> {
        let ids: Vec<ItemId> = ids.to_vec();
        self.read_native(move |mut c| {
            Box::pin(async move {
                let mut names = std::collections::HashMap::new();
                for id in ids {
                    if names.contains_key(&id) {
                        continue;
                    }
                    let row = c
                        .fetch_optional(
                            crate::conn::stmt(
                                "SELECT external_id, title FROM items \
                                 WHERE project_id = $1 AND id = $2",
                            )
                            .bind(project_id)
                            .bind(id),
                        )
                        .await?;
                    if let Some(row) = row {
                        names.insert(id, (row.col("external_id")?, row.col("title")?));
                    }
                }
                Ok(names)
            })
        })
        .await
    }

    async fn latest_labels(&self, project_id: ProjectId) -> Result<LabelFacts> {
        let versions = self.guideline_version_numbers(project_id).await?;
        let folder = LabelFolder::new(versions);
        let dialect = self.dialect();
        let started = std::time::Instant::now();
        let folder = self
            .read(move |mut c| {
                Box::pin(async move { fold_labels(&mut c, dialect, project_id, folder).await })
            })
            .await?;
        tracing::debug!(
            seconds = started.elapsed().as_secs_f64(),
            "consensus input: labels folded"
        );
        let (mut facts, annotator_ids) = folder.finish()?;
        facts.annotators = self.annotator_facts(&annotator_ids).await?;
        facts.shrink_to_fit();
        Ok(facts)
    }

    /// Guideline version id → its number, for the project.
    async fn guideline_version_numbers(
        &self,
        project_id: ProjectId,
    ) -> Result<std::collections::HashMap<Id, i64>> {
        self.read_rows(
            stmt("SELECT id, version FROM guideline_versions WHERE project_id = $1")
                .bind(project_id),
        )
        .await?
        .iter()
        .map(|row| Ok((row.col("id")?, row.col("version")?)))
        .collect()
    }

    /// Who the given annotators are, in the order given.
    async fn annotator_facts(&self, annotator_ids: &[Id]) -> Result<Vec<AnnotatorFact>> {
        let mut users: std::collections::HashMap<Id, AnnotatorFact> = Default::default();
        for chunk in annotator_ids.chunks(500) {
            let params: Vec<String> = (1..=chunk.len()).map(|k| format!("${k}")).collect();
            let sql = format!(
                "SELECT id, username, kind FROM users WHERE id IN ({})",
                params.join(", ")
            );
            let mut query = stmt(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in self.read_rows(query).await? {
                let id: Id = row.col("id")?;
                users.insert(
                    id,
                    AnnotatorFact {
                        id,
                        username: row.col("username")?,
                        kind: row.col("kind")?,
                    },
                );
            }
        }
        annotator_ids
            .iter()
            .map(|id| {
                users
                    .remove(id)
                    .ok_or_else(|| StoreError::invalid(format!("annotation by unknown user {id}")))
            })
            .collect()
    }

    /// Stores a run in one transaction: the report, the project's per-item and
    /// per-annotator results (replacing the previous run's), and the new escalations (an
    /// item already waiting or already adjudicated is left alone).
    pub async fn save_consensus(
        &self,
        project_id: ProjectId,
        run: ConsensusWrite,
        actor: Option<UserId>,
    ) -> Result<ConsensusRun> {
        let dialect = self.dialect();
        // Shared, not copied, by each run of the write (it may run more than once).
        let run = std::sync::Arc::new(run);
        let (id, rewritten, opened) = self
            .write_conn(move |mut c| {
                let run = run.clone();
                Box::pin(async move {
                    let c = &mut c;
                    let (run_id, created_at) =
                        insert_run(c, dialect, project_id, &run, actor).await?;
                    let (written, removed) =
                        write_item_consensus(c, dialect, project_id, run_id, &run.items).await?;
                    tracing::debug!(written, removed, "item consensus rows changed");
                    replace_annotator_quality(c, dialect, project_id, run_id, &run.annotators)
                        .await?;
                    let opened = open_escalations(
                        c,
                        dialect,
                        (project_id.get(), run_id, created_at),
                        &run.escalations,
                    )
                    .await?;
                    audit::record_in(
                        c,
                        AuditEvent {
                            actor,
                            project: Some(project_id),
                            action: AuditAction::Run,
                            entity: "consensus",
                            entity_id: Some(run_id),
                            before: None,
                            after: audit::snapshot(
                                &serde_json::json!({"method": run.method, "escalated": opened}),
                            ),
                        },
                    )
                    .await?;
                    Ok((run_id, written + removed, opened))
                })
            })
            .await?;
        // Big changes leave PostgreSQL's planner statistics behind (see imports).
        if rewritten > 10_000 {
            self.refresh_statistics("item_consensus").await;
        }
        if opened > 10_000 {
            self.refresh_statistics("escalations").await;
            self.refresh_statistics("items").await;
        }
        self.consensus_run(id).await
    }

    pub async fn consensus_run(&self, id: Id) -> Result<ConsensusRun> {
        let row = self
            .read_optional(
                stmt(
                    "SELECT r.*, u.username AS author FROM consensus_runs r \
             LEFT JOIN users u ON u.id = r.created_by WHERE r.id = $1",
                )
                .bind(id),
            )
            .await?
            .ok_or_else(|| StoreError::not_found(format!("consensus run {id}")))?;
        run_from_row(&row)
    }

    /// The project's most recent run, if any.
    pub async fn latest_consensus_run(
        &self,
        project_id: ProjectId,
    ) -> Result<Option<ConsensusRun>> {
        let row = self
            .read_optional(
                stmt(
                    "SELECT r.*, u.username AS author FROM consensus_runs r \
             LEFT JOIN users u ON u.id = r.created_by WHERE r.project_id = $1 \
             ORDER BY r.id DESC LIMIT 1",
                )
                .bind(project_id),
            )
            .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    /// Past runs, newest first, without their reports' bulk.
    pub async fn consensus_runs(
        &self,
        project_id: ProjectId,
        limit: i64,
    ) -> Result<Vec<ConsensusRun>> {
        let statement = stmt(
            "SELECT r.id, r.project_id, r.job_id, r.method, r.annotations, r.items, r.escalated, \
                    '{}' AS summary, u.username AS author, r.created_at \
             FROM consensus_runs r LEFT JOIN users u ON u.id = r.created_by \
             WHERE r.project_id = $1 ORDER BY r.id DESC LIMIT $2",
        )
        .bind(project_id)
        .bind(limit);
        let rows = self.read_rows(statement).await?;
        rows.iter().map(run_from_row).collect()
    }

    /// The latest consensus of an item, per question.
    pub async fn item_consensus(&self, item_id: ItemId) -> Result<Vec<ItemConsensus>> {
        let rows = self
            .read_rows(
                stmt("SELECT * FROM item_consensus WHERE item_id = $1 ORDER BY question")
                    .bind(item_id),
            )
            .await?;
        rows.iter().map(item_consensus_from_row).collect()
    }

    /// The latest consensus of every item of a project.
    /// The label the latest run decided for each (item, question) that has one: what the
    /// feedback reports compare with (a narrower read than [`Store::project_consensus`]).
    pub async fn consensus_labels(
        &self,
        project_id: ProjectId,
    ) -> Result<Vec<(Id, String, Value)>> {
        self.read_native(move |mut c| {
            Box::pin(async move {
                let rows = c
                    .fetch_all(
                        crate::conn::stmt(
                            "SELECT item_id, question, label FROM item_consensus \
                             WHERE project_id = $1 AND label IS NOT NULL",
                        )
                        .bind(project_id),
                    )
                    .await?;
                let mut parsed: std::collections::HashMap<String, Value> = Default::default();
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    let text: String = row.col("label")?;
                    // A run decides a few distinct labels: each is parsed once.
                    let label = match parsed.get(&text) {
                        Some(label) => label.clone(),
                        None => {
                            let label: Value = parse_json(&text, "consensus label")?;
                            parsed.insert(text, label.clone());
                            label
                        }
                    };
                    out.push((row.col("item_id")?, row.col("question")?, label));
                }
                Ok(out)
            })
        })
        .await
    }

    pub async fn project_consensus(&self, project_id: ProjectId) -> Result<Vec<ItemConsensus>> {
        let rows = self
            .read_rows(
                stmt(
                    "SELECT * FROM item_consensus WHERE project_id = $1 ORDER BY item_id, question",
                )
                .bind(project_id),
            )
            .await?;
        rows.iter().map(item_consensus_from_row).collect()
    }

    /// The latest per-annotator quality of a project, with names.
    pub async fn annotator_quality(
        &self,
        project_id: ProjectId,
    ) -> Result<Vec<(String, AnnotatorQuality)>> {
        let statement = stmt(
            "SELECT q.*, u.username FROM annotator_quality q JOIN users u ON u.id = q.user_id \
             WHERE q.project_id = $1 ORDER BY u.username, q.question",
        )
        .bind(project_id);
        let rows = self.read_rows(statement).await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.col("username")?,
                    AnnotatorQuality {
                        user_id: row.col("user_id")?,
                        question: row.col("question")?,
                        labels: row.col("labels")?,
                        agreement: row.col("agreement")?,
                        skill: row.col("skill")?,
                        confusion: parse_json(&row.col::<String>("confusion")?, "confusion")?,
                    },
                ))
            })
            .collect()
    }
}

/// The project's labels, one row at a time in (item, id) order, into a [`LabelFolder`]:
/// on a native SQLite connection by stepping one statement (no row is copied), elsewhere
/// in packed pages.
async fn fold_labels(
    c: &mut Conn<'_>,
    dialect: crate::Dialect,
    project_id: ProjectId,
    mut folder: LabelFolder,
) -> Result<LabelFolder> {
    if let Conn::Sqlite(conn) = c {
        for_each_project_row(
            conn,
            "SELECT item_id, annotator_id, kind, answer, guideline_version_id, created_at \
             FROM annotations WHERE project_id = ?1 ORDER BY item_id, id",
            project_id,
            |row| {
                folder.push(LabelRow {
                    item_id: row.get(0)?,
                    annotator_id: row.get(1)?,
                    kind: text_column(row, 2)?,
                    answer: text_column(row, 3)?,
                    version_id: row.get(4)?,
                    created_at: row.get(5)?,
                });
                Ok(())
            },
        )?;
        return Ok(folder);
    }
    let sql = format!(
        "SELECT {} FROM (SELECT id, item_id, annotator_id, kind, answer, guideline_version_id, created_at \
           FROM annotations WHERE project_id = $1 AND (item_id, id) > ($2, $3) \
           ORDER BY item_id, id LIMIT {PAGE_ROWS}) page",
        dialect.json_rows(
            "id, item_id, annotator_id, kind, answer, guideline_version_id, created_at",
            "item_id, id"
        )
    );
    type PackedRow = (Id, Id, Id, String, String, Option<Id>, i64);
    let (mut after_item, mut after_id): (Id, Id) = (0, 0);
    loop {
        let page: Vec<PackedRow> = packed_page(
            c,
            stmt(&sql).bind(project_id).bind(after_item).bind(after_id),
        )
        .await?;
        let Some(last) = page.last() else { break };
        (after_item, after_id) = (last.1, last.0);
        for (_, item_id, annotator_id, kind, answer, version_id, created_at) in &page {
            folder.push(LabelRow {
                item_id: *item_id,
                annotator_id: *annotator_id,
                kind,
                answer,
                version_id: *version_id,
                created_at: *created_at,
            });
        }
    }
    Ok(folder)
}

/// The sorted ids of a project's adjudicated items and of those waiting for an expert.
struct ItemMarks {
    adjudicated: Vec<Id>,
    waiting: Vec<Id>,
}

/// One row of `items` as the run reads it.
struct ItemColumns<'r> {
    id: Id,
    external_id: String,
    title: String,
    state: &'r str,
    is_gold: i64,
    gold: Option<&'r str>,
    escalation_reason: Option<String>,
}

impl ItemMarks {
    fn fact(&self, row: ItemColumns<'_>) -> Result<ItemFact> {
        let id = row.id;
        Ok(ItemFact {
            id,
            external_id: row.external_id,
            title: row.title,
            state: ItemState::from_stored(row.state, "items.state")?,
            is_gold: row.is_gold != 0,
            gold_answer: row.gold.map(|g| parse_json(g, "gold answer")).transpose()?,
            escalation_reason: row.escalation_reason,
            adjudicated: self.adjudicated.binary_search(&id).is_ok(),
            open_escalation: self.waiting.binary_search(&id).is_ok(),
        })
    }
}

/// Every item of the project in id order. On SQLite one statement stepped on the native
/// read-only connection (at a million items the JSON pages cost ≈ 0.3 s more); on
/// PostgreSQL packed pages, whose per-row driver cost they avoid.
async fn item_facts(
    c: &mut Conn<'_>,
    dialect: crate::Dialect,
    project_id: ProjectId,
    marks: &ItemMarks,
) -> Result<Vec<ItemFact>> {
    if let Conn::Sqlite(conn) = c {
        return sqlite_item_facts(conn, project_id, marks);
    }
    let mut items = Vec::new();
    let sql = format!(
        "SELECT {} FROM (SELECT id, external_id, title, state, is_gold, gold_answer, escalation_reason \
             FROM items WHERE project_id = $1 AND id > $2 ORDER BY id LIMIT {PAGE_ROWS}) page",
        dialect.json_rows(
            "id, external_id, title, state, is_gold, gold_answer, escalation_reason",
            "id"
        )
    );
    type ItemRow = (
        Id,
        String,
        String,
        String,
        i64,
        Option<String>,
        Option<String>,
    );
    let mut after: Id = 0;
    loop {
        let page: Vec<ItemRow> = packed_page(c, stmt(&sql).bind(project_id).bind(after)).await?;
        let Some(last) = page.last() else { break };
        after = last.0;
        for (id, external_id, title, state, is_gold, gold, escalation_reason) in page {
            items.push(marks.fact(ItemColumns {
                id,
                external_id,
                title,
                state: &state,
                is_gold,
                gold: gold.as_deref(),
                escalation_reason,
            })?);
        }
    }
    Ok(items)
}

/// [`item_facts`] on SQLite's native connection.
fn sqlite_item_facts(
    conn: &mut rusqlite::Connection,
    project_id: ProjectId,
    marks: &ItemMarks,
) -> Result<Vec<ItemFact>> {
    let mut items = Vec::new();
    for_each_project_row(
        conn,
        "SELECT id, external_id, title, state, is_gold, gold_answer, escalation_reason \
         FROM items WHERE project_id = ?1 ORDER BY id",
        project_id,
        |row| {
            // Gold answers are few: owned for the moment they are parsed.
            let gold: Option<String> = row.get(5)?;
            items.push(marks.fact(ItemColumns {
                id: row.get(0)?,
                external_id: row.get(1)?,
                title: row.get(2)?,
                state: text_column(row, 3)?,
                is_gold: row.get(4)?,
                gold: gold.as_deref(),
                escalation_reason: row.get(6)?,
            })?);
            Ok(())
        },
    )?;
    Ok(items)
}

/// SQLite: steps `sql` (the project as `?1`) on a native connection, each row borrowed in
/// place — the bulk reads of a run, which JSON pages made cost a serialisation per row.
fn for_each_project_row(
    conn: &mut rusqlite::Connection,
    sql: &str,
    project_id: ProjectId,
    mut each: impl FnMut(&rusqlite::Row<'_>) -> Result<()>,
) -> Result<()> {
    let mut statement = conn.prepare(sql)?;
    statement.raw_bind_parameter(1, project_id.get())?;
    let mut rows = statement.raw_query();
    while let Some(row) = rows.next()? {
        each(row)?;
    }
    Ok(())
}

/// A text column of a native row, borrowed.
fn text_column<'r>(row: &'r rusqlite::Row<'_>, index: usize) -> rusqlite::Result<&'r str> {
    row.get_ref(index)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// One stored label as the run reads it.
struct LabelRow<'r> {
    item_id: Id,
    annotator_id: Id,
    kind: &'r str,
    answer: &'r str,
    version_id: Option<Id>,
    created_at: i64,
}

/// Labels gathered column-wise as they stream in, each distinct kind and answer text kept
/// once; a later row of the same annotator on the same item (a correction) replaces the
/// earlier one in place.
struct LabelFolder {
    facts: LabelFacts,
    versions: std::collections::HashMap<Id, i64>,
    annotator_index: std::collections::HashMap<Id, u32>,
    annotator_ids: Vec<Id>,
    kinds: TextIndex,
    answers: TextIndex,
    /// Rows of the current item start here.
    item_start: usize,
}

impl LabelFolder {
    fn new(versions: std::collections::HashMap<Id, i64>) -> Self {
        Self {
            facts: LabelFacts::default(),
            versions,
            annotator_index: Default::default(),
            annotator_ids: Vec::new(),
            kinds: TextIndex::default(),
            answers: TextIndex::default(),
            item_start: 0,
        }
    }

    fn push(&mut self, label: LabelRow<'_>) {
        let kind = self.kinds.intern(label.kind);
        let answer = self.answers.intern(label.answer);
        let guideline_version = label
            .version_id
            .and_then(|v| self.versions.get(&v).copied());
        let annotator_ids = &mut self.annotator_ids;
        let annotator = *self
            .annotator_index
            .entry(label.annotator_id)
            .or_insert_with(|| {
                annotator_ids.push(label.annotator_id);
                annotator_ids.len() as u32 - 1
            });
        let facts = &mut self.facts;
        if facts.item_id.last() != Some(&label.item_id) {
            self.item_start = facts.item_id.len();
        }
        let row = facts.row_of(self.item_start, ItemId(label.item_id), annotator);
        facts.kind[row] = kind;
        facts.answer[row] = answer;
        facts.guideline_version[row] = guideline_version;
        facts.created_at[row] = label.created_at;
    }

    /// The facts (annotators still to be looked up) and the annotators' ids in index order.
    fn finish(self) -> Result<(LabelFacts, Vec<Id>)> {
        let mut facts = self.facts;
        facts.kinds = self
            .kinds
            .texts
            .iter()
            .map(|text| AnswerKind::from_stored(text, "annotations.kind"))
            .collect::<Result<_>>()?;
        facts.answers = self
            .answers
            .texts
            .iter()
            .map(|text| parse_json(text, "annotation answer"))
            .collect::<Result<_>>()?;
        Ok((facts, self.annotator_ids))
    }
}

#[cfg(test)]
mod tests {
    use super::{
        Comparison, ItemId, NewItemConsensus, StoredDigest, TextIndex, compare_with_stored,
    };
    use std::collections::HashMap;

    fn row(item: i64, question: &str, posterior: &str) -> NewItemConsensus {
        NewItemConsensus {
            item_id: ItemId(item),
            question: question.into(),
            label: None,
            posterior: posterior.into(),
            confidence: Some(0.5),
            agreement: None,
            n_labels: 2,
            tied: false,
        }
    }

    /// Rows to write as (item, question, digest), and stored rows to delete, sorted.
    type Found = (Vec<(i64, String, i64)>, Vec<(ItemId, String)>);

    /// What the comparison must find, by a lookup of each row in a map of the stored ones:
    /// rows with no stored digest or another one, and stored rows no row has, sorted.
    fn by_lookup(rows: &[NewItemConsensus], stored: &[(&str, i64, i64)]) -> Found {
        let mut map: HashMap<(String, i64), i64> = stored
            .iter()
            .map(|&(q, item, digest)| ((q.to_string(), item), digest))
            .collect();
        let mut changed = Vec::new();
        for row in rows {
            let digest = row.digest();
            if map.remove(&(row.question.clone(), row.item_id.get())) != Some(digest) {
                changed.push((row.item_id.get(), row.question.clone(), digest));
            }
        }
        let mut gone: Vec<(ItemId, String)> =
            map.into_keys().map(|(q, item)| (ItemId(item), q)).collect();
        gone.sort_unstable();
        changed.sort_unstable();
        (changed, gone)
    }

    /// A rerun compares its rows with the stored digests in one ordered walk of both, and
    /// finds exactly what looking each row up finds: rows in schema order (not the
    /// database's text order), stored rows of a question the run no longer has, items
    /// that lost their result, new items, changed digests and a row given twice.
    #[test]
    fn a_rerun_finds_the_changed_and_the_gone_rows_as_a_lookup_of_each_would() {
        let mut rows = Vec::new();
        for item in 1..=40 {
            rows.push(row(item, "severity", &format!("{{\"S{}\":1.0}}", item % 3)));
        }
        for item in (1..=40).rev() {
            rows.push(row(item, "decision", &format!("{{\"V\":{}}}", item % 2)));
        }
        rows.push(row(7, "decision", "{\"V\":9}"));
        let digest_of = |question: &str, item: i64| {
            rows.iter()
                .find(|r| r.question == question && r.item_id.get() == item)
                .map(|r| r.digest())
                .unwrap_or(0)
        };
        let mut stored: Vec<(&str, i64, i64)> = Vec::new();
        for item in 1..=45 {
            // Unchanged except every fifth item's severity; items 41–45 lost their result.
            let severity = if item % 5 == 0 {
                1
            } else {
                digest_of("severity", item)
            };
            stored.push(("severity", item, severity));
            if item % 4 != 0 {
                stored.push(("decision", item, digest_of("decision", item)));
            }
            stored.push(("abandoned", item, 3));
        }
        let expected = by_lookup(&rows, &stored);

        let digests: Vec<i64> = rows.iter().map(|r| r.digest()).collect();
        let mut questions = TextIndex::in_order(rows.iter().map(|r| r.question.as_str()));
        let mut in_database_order = stored.clone();
        in_database_order.sort_by_key(|&(q, item, _)| (q, item));
        let stored_keys: Vec<StoredDigest> = in_database_order
            .iter()
            .map(|&(q, item, digest)| (questions.intern(q), ItemId(item), digest))
            .collect();
        let Comparison { changed, gone } =
            compare_with_stored(&rows, &digests, &questions, stored_keys);
        let mut changed: Vec<(i64, String, i64)> = changed
            .into_iter()
            .map(|(r, digest)| (r.item_id.get(), r.question.clone(), digest))
            .collect();
        changed.sort_unstable();
        assert_eq!((changed, gone), expected);
        assert!(
            expected.0.len() > 10 && expected.1.len() > 45,
            "every case occurs"
        );
    }
}
