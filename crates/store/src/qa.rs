//! The QA loop's records: what a consensus run reads (every label with its annotator and
//! guideline version), what it writes back in one transaction (per-item consensus,
//! per-annotator quality, the run's report, new escalations), the QA-expert queue, and
//! adjudications with their precedent search. No statistics here: `concord-qa` computes.

use crate::audit::AuditEvent;
use crate::error::{Result, StoreError, json_text, parse_json};
use crate::items::like_pattern;
use crate::model::AuditAction;
use crate::model::{ExampleScope, GuidelineExample, Id};
use crate::schema::LabelSchema;
use crate::{Store, audit};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// Who gave labels in a project.
#[derive(Debug, Clone, Serialize)]
pub struct AnnotatorFact {
    pub id: Id,
    pub username: String,
    /// `human` or `model` (the automated annotator is scored, not counted in consensus).
    pub kind: String,
}

/// One label as the consensus run sees it: the latest answer of an annotator on an item.
#[derive(Debug, Clone, Copy)]
pub struct LabelFact<'a> {
    pub item_id: Id,
    pub annotator_id: Id,
    /// Index into [`LabelFacts::annotators`].
    pub annotator_index: u32,
    pub annotator: &'a AnnotatorFact,
    /// `label` or `unsure`.
    pub kind: &'a str,
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
    pub kinds: Vec<String>,
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
            item_id: self.item_id[row],
            annotator_id: annotator.id,
            annotator_index: self.annotator[row],
            annotator,
            kind: &self.kinds[self.kind[row] as usize],
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
        item_id: Id,
        annotator: &AnnotatorFact,
        kind: &str,
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
        let kind_index = match self.kinds.iter().position(|k| k == kind) {
            Some(i) => i,
            None => {
                self.kinds.push(kind.to_owned());
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
        self.item_id.push(item_id);
        self.annotator.push(annotator_index as u32);
        self.kind.push(kind_index as u32);
        self.answer.push(answer_index as u32);
        self.guideline_version.push(guideline_version);
        self.created_at.push(created_at);
    }
}

/// Interns strings to dense indexes, keeping the first-seen order.
#[derive(Default)]
struct TextIndex {
    index: std::collections::HashMap<String, u32>,
    texts: Vec<String>,
}

impl TextIndex {
    fn intern(&mut self, text: String) -> u32 {
        if let Some(&i) = self.index.get(&text) {
            return i;
        }
        let i = self.texts.len() as u32;
        self.index.insert(text.clone(), i);
        self.texts.push(text);
        i
    }
}

/// What the run needs of an item.
#[derive(Debug, Clone, Serialize)]
pub struct ItemFact {
    pub id: Id,
    pub external_id: String,
    pub title: String,
    pub state: String,
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
}

/// A consensus result for one item and question.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ItemConsensus {
    pub item_id: Id,
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
    pub item_id: Id,
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

fn content_digest(
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
    pub user_id: Id,
    pub question: String,
    pub labels: i64,
    pub agreement: Option<f64>,
    pub skill: Option<f64>,
    /// `{classes: [...], counts: [[...]]}`: rows the consensus, columns the annotator's label.
    pub confusion: Value,
}

/// An escalation the run opens.
#[derive(Debug, Clone, Serialize)]
pub struct NewEscalation {
    pub item_id: Id,
    /// `[{rule, question, detail}]`.
    pub reasons: Value,
    /// 2 urgent, 1 high, 0 normal.
    pub priority: i64,
    pub priority_reason: String,
    pub sla_ms: i64,
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
    pub project_id: Id,
    pub job_id: Option<Id>,
    pub method: String,
    pub annotations: i64,
    pub items: i64,
    pub escalated: i64,
    pub summary: Value,
    pub created_by: Option<String>,
    pub created_at: i64,
}

/// An entry of the QA-expert queue.
#[derive(Debug, Clone, Serialize)]
pub struct Escalation {
    pub id: Id,
    pub project_id: Id,
    pub item_id: Id,
    pub external_id: String,
    pub title: String,
    pub item_type: String,
    pub reasons: Value,
    pub priority: i64,
    pub priority_reason: String,
    pub status: String,
    pub opened_at: i64,
    pub due_at: i64,
    pub resolved_at: Option<i64>,
    pub resolved_by: Option<String>,
    pub adjudication_id: Option<Id>,
    /// The viewer labelled this item, so may not adjudicate it.
    pub viewer_labelled: bool,
}

/// An expert's decision as submitted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewAdjudication {
    pub answer: Value,
    pub rationale: String,
    #[serde(default)]
    pub guideline_clause: String,
    #[serde(default)]
    pub promote_to_gold: bool,
    /// Add the item as an example of `example_category` in the guideline draft.
    #[serde(default)]
    pub example_scope: Option<ExampleScope>,
    #[serde(default)]
    pub example_category: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Adjudication {
    pub id: Id,
    pub project_id: Id,
    pub item_id: Id,
    pub external_id: String,
    pub title: String,
    pub expert_id: Id,
    pub expert: String,
    pub answer: Value,
    pub rationale: String,
    pub guideline_clause: String,
    pub guideline_version: Option<i64>,
    pub promoted_to_gold: bool,
    pub example_scope: Option<String>,
    pub example_category: Option<String>,
    pub consensus_before: Option<Value>,
    pub overturned: bool,
    pub supersedes: Option<Id>,
    /// A later decision on the same item replaced this one.
    pub superseded: bool,
    pub created_at: i64,
}

/// A label given under an older guideline version that names a category whose guidance
/// changed: a candidate for re-review.
#[derive(Debug, Clone, Serialize)]
pub struct RevisionCandidate {
    pub item_id: Id,
    pub external_id: String,
    pub title: String,
    pub annotator_id: Id,
    pub annotator: String,
    pub guideline_version: i64,
    pub answer: Value,
}

/// Search of the precedent library. Every field narrows; empty fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PrecedentFilter {
    /// Substring of the rationale, clause, item title or external id.
    #[serde(default)]
    pub text: Option<String>,
    /// A code that appears anywhere in the decided answer (category, decision, severity).
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub clause: Option<String>,
    #[serde(default)]
    pub overturned: Option<bool>,
    #[serde(default)]
    pub limit: Option<i64>,
}

const ADJUDICATION_SELECT: &str = "SELECT a.*, i.external_id, i.title, u.username AS expert, \
     g.version AS guideline_version, \
     (SELECT COUNT(*) FROM adjudications later WHERE later.supersedes = a.id) AS superseded_count \
     FROM adjudications a JOIN items i ON i.id = a.item_id JOIN users u ON u.id = a.expert_id \
     LEFT JOIN guideline_versions g ON g.id = a.guideline_version_id";

fn adjudication_from_row(row: &AnyRow) -> Result<Adjudication> {
    let consensus: Option<String> = row.try_get("consensus_before")?;
    Ok(Adjudication {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        item_id: row.try_get("item_id")?,
        external_id: row.try_get("external_id")?,
        title: row.try_get("title")?,
        expert_id: row.try_get("expert_id")?,
        expert: row.try_get("expert")?,
        answer: parse_json(&row.try_get::<String, _>("answer")?, "adjudication answer")?,
        rationale: row.try_get("rationale")?,
        guideline_clause: row.try_get("guideline_clause")?,
        guideline_version: row.try_get("guideline_version")?,
        promoted_to_gold: row.try_get::<i64, _>("promoted_to_gold")? != 0,
        example_scope: row.try_get("example_scope")?,
        example_category: row.try_get("example_category")?,
        consensus_before: consensus
            .map(|c| parse_json(&c, "consensus before adjudication"))
            .transpose()?,
        overturned: row.try_get::<i64, _>("overturned")? != 0,
        supersedes: row.try_get("supersedes")?,
        superseded: row.try_get::<i64, _>("superseded_count")? > 0,
        created_at: row.try_get("created_at")?,
    })
}

fn escalation_from_row(row: &AnyRow) -> Result<Escalation> {
    Ok(Escalation {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        item_id: row.try_get("item_id")?,
        external_id: row.try_get("external_id")?,
        title: row.try_get("title")?,
        item_type: row.try_get("item_type")?,
        reasons: parse_json(&row.try_get::<String, _>("reasons")?, "escalation reasons")?,
        priority: row.try_get("priority")?,
        priority_reason: row.try_get("priority_reason")?,
        status: row.try_get("status")?,
        opened_at: row.try_get("opened_at")?,
        due_at: row.try_get("due_at")?,
        resolved_at: row.try_get("resolved_at")?,
        resolved_by: row.try_get("resolver")?,
        adjudication_id: row.try_get("adjudication_id")?,
        viewer_labelled: row.try_get::<i64, _>("viewer_labelled")? != 0,
    })
}

fn run_from_row(row: &AnyRow) -> Result<ConsensusRun> {
    Ok(ConsensusRun {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        job_id: row.try_get("job_id")?,
        method: row.try_get("method")?,
        annotations: row.try_get("annotations")?,
        items: row.try_get("items")?,
        escalated: row.try_get("escalated")?,
        summary: parse_json(&row.try_get::<String, _>("summary")?, "consensus summary")?,
        created_by: row.try_get("author")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Parameters per multi-row statement (SQLite allows 32,766, PostgreSQL 65,535).
const PARAMS_PER_STATEMENT: usize = 3_200;

/// Rows per page of a bulk read (a page travels as one JSON text of a few megabytes).
pub(crate) const PAGE_ROWS: usize = 50_000;

/// Runs a query selecting one packed page ([`crate::Dialect::json_rows`]) and parses it.
pub(crate) async fn packed_page<'e, T, E>(query: AnyQuery<'_>, executor: E) -> Result<Vec<T>>
where
    T: serde::de::DeserializeOwned,
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let text: Option<String> = query.fetch_one(executor).await?.try_get(0)?;
    match text {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| StoreError::invalid(format!("a packed page of rows did not parse: {e}"))),
        None => Ok(Vec::new()),
    }
}

/// Runs a packed-page query over a project's per-question rows, keyed by (question, item):
/// `sql` takes the project as `$1` and the last key read as `$2, $3` (a row-value keyset,
/// `(question, item_id) > ($2, $3)`), and `each` receives every page in order.
pub(crate) async fn for_each_question_page<T: serde::de::DeserializeOwned>(
    c: &mut AnyConnection,
    sql: &str,
    project_id: Id,
    key: impl Fn(&T) -> (String, Id),
    mut each: impl FnMut(Vec<T>) -> Result<()>,
) -> Result<()> {
    let (mut after_question, mut after_item) = (String::new(), 0 as Id);
    loop {
        let page: Vec<T> = packed_page(
            sqlx::query(sql)
                .bind(project_id)
                .bind(after_question.clone())
                .bind(after_item),
            &mut *c,
        )
        .await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        (after_question, after_item) = key(last);
        each(page)?;
    }
}

pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Rows per packed PostgreSQL write (one JSON parameter of a few megabytes).
const PACKED_WRITE_ROWS: usize = 20_000;

/// How a batch of rows is written: the PostgreSQL type of each column (for the packed
/// form), each row as a JSON array (PostgreSQL), and each row's values bound in order
/// (SQLite).
struct RowWriter<'a, T> {
    types: &'a [&'a str],
    to_json: &'a (dyn Fn(&T) -> Value + Sync),
    bind: &'a (dyn for<'q> Fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q> + Sync),
}

/// Runs `head SOURCE tail` over `rows` in chunks, SOURCE being a row source with the
/// writer's columns; returns the rows affected. On SQLite SOURCE is `VALUES (…), (…)` of
/// bound parameters; on PostgreSQL the chunk travels as one JSON parameter unpacked by
/// `json_array_elements`, because a statement of thousands of parameters spends its time
/// in PostgreSQL's parser and planner (35 s for 666,668 consensus rows; packed, a few).
async fn insert_rows<T>(
    c: &mut AnyConnection,
    dialect: crate::Dialect,
    head: &str,
    tail: &str,
    rows: &[T],
    writer: RowWriter<'_, T>,
) -> Result<u64> {
    let per_row = writer.types.len();
    let mut affected = 0;
    if dialect.is_postgres() {
        let columns: Vec<String> = writer
            .types
            .iter()
            .enumerate()
            .map(|(i, ty)| format!("(value->>{i})::{ty}"))
            .collect();
        let sql = format!(
            "{head}SELECT {} FROM json_array_elements($1::json) AS packed(value){tail}",
            columns.join(", ")
        );
        for chunk in rows.chunks(PACKED_WRITE_ROWS) {
            let packed: Vec<Value> = chunk.iter().map(|row| (writer.to_json)(row)).collect();
            affected += sqlx::query(&sql)
                .bind(json_text(&packed))
                .execute(&mut *c)
                .await?
                .rows_affected();
        }
        return Ok(affected);
    }
    for chunk in rows.chunks((PARAMS_PER_STATEMENT / per_row).max(1)) {
        let mut sql = String::with_capacity(head.len() + tail.len() + chunk.len() * per_row * 4);
        sql.push_str(head);
        sql.push_str("VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            for k in 1..=per_row {
                if k > 1 {
                    sql.push_str(", ");
                }
                sql.push_str(&dialect.param(i * per_row + k));
            }
            sql.push(')');
        }
        sql.push_str(tail);
        let mut query = sqlx::query(&sql);
        for row in chunk {
            query = (writer.bind)(query, row);
        }
        affected += query.execute(&mut *c).await?.rows_affected();
    }
    Ok(affected)
}

/// Replaces the project's per-item consensus with `rows`, writing only the rows whose
/// content changed and removing those the run no longer has; returns (written, removed).
/// A row's `run_id` is thus the run that last changed it.
async fn write_item_consensus(
    c: &mut AnyConnection,
    dialect: crate::Dialect,
    project_id: Id,
    run_id: Id,
    rows: &[NewItemConsensus],
) -> Result<(u64, u64)> {
    // Keyed by (question index, item): questions are a handful of strings.
    let mut questions: Vec<String> = Vec::new();
    let mut question_index = |question: &str| -> u32 {
        match questions.iter().position(|q| q == question) {
            Some(i) => i as u32,
            None => {
                questions.push(question.to_owned());
                questions.len() as u32 - 1
            }
        }
    };
    let mut stored: std::collections::HashMap<(u32, Id), i64> = Default::default();
    let sql = format!(
        "SELECT {} FROM (SELECT item_id, question, digest FROM item_consensus \
           WHERE project_id = $1 AND (question, item_id) > ($2, $3) \
           ORDER BY question, item_id LIMIT {PAGE_ROWS}) page",
        dialect.json_rows("item_id, question, digest", "question, item_id")
    );
    let page_key = |row: &(Id, String, i64)| (row.1.clone(), row.0);
    for_each_question_page(c, &sql, project_id, page_key, |page| {
        for (item_id, question, digest) in page {
            stored.insert((question_index(&question), item_id), digest);
        }
        Ok(())
    })
    .await?;
    let mut changed: Vec<(&NewItemConsensus, i64)> = Vec::new();
    for row in rows {
        let digest = row.digest();
        if stored.remove(&(question_index(&row.question), row.item_id)) != Some(digest) {
            changed.push((row, digest));
        }
    }
    // Most rows changed (e.g. new labels moved every posterior): replacing the project's
    // rows is cheaper than updating each in place.
    let replace_all = changed.len() * 2 > rows.len();
    let removed = stored.len() as u64;
    if replace_all {
        stored.clear();
        changed = rows.iter().map(|row| (row, row.digest())).collect();
        sqlx::query("DELETE FROM item_consensus WHERE project_id = $1")
            .bind(project_id)
            .execute(&mut *c)
            .await?;
    }
    // What is left was not produced by this run (the item lost its labels for a question).
    let mut gone: Vec<(Id, String)> = stored
        .into_keys()
        .map(|(question, item_id)| (item_id, questions[question as usize].clone()))
        .collect();
    gone.sort_unstable();
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
        let mut query = sqlx::query(&sql);
        for (item_id, question) in chunk {
            query = query.bind(*item_id).bind(question.clone());
        }
        query.execute(&mut *c).await?;
    }
    let upsert = " ON CONFLICT (item_id, question) DO UPDATE SET project_id = excluded.project_id, \
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
        // Nothing of the project's is left to conflict with after a replacement.
        &format!(") AS new WHERE true{}", if replace_all { "" } else { upsert }),
        &changed,
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
    Ok((changed.len() as u64, removed))
}

impl Store {
    /// Every item of the project and the latest answer of every annotator on each (a
    /// correction replaces what it supersedes), in item order.
    pub async fn consensus_input(&self, project_id: Id) -> Result<ConsensusInput> {
        let labels = self.latest_labels(project_id).await?;
        let dialect = self.dialect();
        // Two id lists instead of two EXISTS per item: adjudicated items are few, waiting
        // ones at most one per item.
        let mut adjudicated: Vec<Id> = Vec::new();
        for row in sqlx::query("SELECT DISTINCT item_id FROM adjudications WHERE project_id = $1")
            .bind(project_id)
            .fetch_all(self.pool())
            .await?
        {
            adjudicated.push(row.try_get(0)?);
        }
        adjudicated.sort_unstable();
        let waiting_sql = format!(
            "SELECT {} FROM (SELECT item_id FROM escalations WHERE project_id = $1 AND status = 'open') page",
            dialect.json_rows("item_id", "item_id")
        );
        let waiting: Vec<(Id,)> =
            packed_page(sqlx::query(&waiting_sql).bind(project_id), self.pool()).await?;
        let mut waiting: Vec<Id> = waiting.into_iter().map(|(id,)| id).collect();
        waiting.sort_unstable();
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
        let mut items = Vec::new();
        let mut after: Id = 0;
        loop {
            let page: Vec<ItemRow> =
                packed_page(sqlx::query(&sql).bind(project_id).bind(after), self.pool()).await?;
            let Some(last) = page.last() else { break };
            after = last.0;
            for (id, external_id, title, state, is_gold, gold, escalation_reason) in page {
                items.push(ItemFact {
                    id,
                    external_id,
                    title,
                    state,
                    is_gold: is_gold != 0,
                    gold_answer: gold.map(|g| parse_json(&g, "gold answer")).transpose()?,
                    escalation_reason,
                    adjudicated: adjudicated.binary_search(&id).is_ok(),
                    open_escalation: waiting.binary_search(&id).is_ok(),
                });
            }
        }
        Ok(ConsensusInput { labels, items })
    }

    /// The latest label of every annotator on every item of the project, streamed in item
    /// order: rows are never held as driver rows, answers are parsed once per distinct text.
    async fn latest_labels(&self, project_id: Id) -> Result<LabelFacts> {
        let versions: std::collections::HashMap<Id, i64> =
            sqlx::query("SELECT id, version FROM guideline_versions WHERE project_id = $1")
                .bind(project_id)
                .fetch_all(self.pool())
                .await?
                .iter()
                .map(|row| Ok((row.try_get("id")?, row.try_get("version")?)))
                .collect::<Result<_>>()?;
        let mut facts = LabelFacts::default();
        let mut annotator_index: std::collections::HashMap<Id, u32> = Default::default();
        let mut annotator_ids: Vec<Id> = Vec::new();
        let mut kinds = TextIndex::default();
        let mut answers = TextIndex::default();
        // Rows of the current item start here; a later row of the same annotator on the
        // same item (a correction) replaces the earlier one in place.
        let mut item_start = 0usize;
        let sql = format!(
            "SELECT {} FROM (SELECT id, item_id, annotator_id, kind, answer, guideline_version_id, created_at \
               FROM annotations WHERE project_id = $1 AND (item_id, id) > ($2, $3) \
               ORDER BY item_id, id LIMIT {PAGE_ROWS}) page",
            self.dialect().json_rows(
                "id, item_id, annotator_id, kind, answer, guideline_version_id, created_at",
                "item_id, id"
            )
        );
        type LabelRow = (Id, Id, Id, String, String, Option<Id>, i64);
        let (mut after_item, mut after_id): (Id, Id) = (0, 0);
        loop {
            let page: Vec<LabelRow> = packed_page(
                sqlx::query(&sql)
                    .bind(project_id)
                    .bind(after_item)
                    .bind(after_id),
                self.pool(),
            )
            .await?;
            let Some(last) = page.last() else { break };
            (after_item, after_id) = (last.1, last.0);
            for (_, item_id, annotator_id, kind, answer, version_id, created_at) in page {
                let kind = kinds.intern(kind);
                let answer = answers.intern(answer);
                let guideline_version = version_id.and_then(|v| versions.get(&v).copied());
                let annotator = *annotator_index.entry(annotator_id).or_insert_with(|| {
                    annotator_ids.push(annotator_id);
                    annotator_ids.len() as u32 - 1
                });
                if facts.item_id.last() != Some(&item_id) {
                    item_start = facts.item_id.len();
                }
                let row = match facts.annotator[item_start..]
                    .iter()
                    .position(|&a| a == annotator)
                {
                    Some(offset) => item_start + offset,
                    None => {
                        facts.item_id.push(item_id);
                        facts.annotator.push(annotator);
                        facts.kind.push(0);
                        facts.answer.push(0);
                        facts.guideline_version.push(None);
                        facts.created_at.push(0);
                        facts.item_id.len() - 1
                    }
                };
                facts.kind[row] = kind;
                facts.answer[row] = answer;
                facts.guideline_version[row] = guideline_version;
                facts.created_at[row] = created_at;
            }
        }
        facts.kinds = kinds.texts;
        facts.answers = answers
            .texts
            .iter()
            .map(|text| parse_json(text, "annotation answer"))
            .collect::<Result<_>>()?;
        let mut users: std::collections::HashMap<Id, AnnotatorFact> = Default::default();
        for chunk in annotator_ids.chunks(500) {
            let params: Vec<String> = (1..=chunk.len()).map(|k| format!("${k}")).collect();
            let sql = format!(
                "SELECT id, username, kind FROM users WHERE id IN ({})",
                params.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(self.pool()).await? {
                let id: Id = row.try_get("id")?;
                users.insert(
                    id,
                    AnnotatorFact {
                        id,
                        username: row.try_get("username")?,
                        kind: row.try_get("kind")?,
                    },
                );
            }
        }
        facts.annotators = annotator_ids
            .iter()
            .map(|id| {
                users
                    .remove(id)
                    .ok_or_else(|| StoreError::invalid(format!("annotation by unknown user {id}")))
            })
            .collect::<Result<_>>()?;
        facts.item_id.shrink_to_fit();
        facts.annotator.shrink_to_fit();
        facts.kind.shrink_to_fit();
        facts.answer.shrink_to_fit();
        facts.guideline_version.shrink_to_fit();
        facts.created_at.shrink_to_fit();
        Ok(facts)
    }

    /// Stores a run in one transaction: the report, the project's per-item and
    /// per-annotator results (replacing the previous run's), and the new escalations (an
    /// item already waiting or already adjudicated is left alone).
    pub async fn save_consensus(
        &self,
        project_id: Id,
        run: ConsensusWrite,
        actor: Option<Id>,
    ) -> Result<ConsensusRun> {
        let dialect = self.dialect();
        let now = dialect.now_ms();
        let (id, rewritten, opened) = self
            .write(move |c| {
                Box::pin(async move {
                    let items_count = run
                        .items
                        .iter()
                        .map(|i| i.item_id)
                        .collect::<std::collections::HashSet<_>>()
                        .len() as i64;
                    let row = sqlx::query(&format!(
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
                    .bind(actor)
                    .fetch_one(&mut *c)
                    .await?;
                    let run_id: Id = row.try_get("id")?;
                    let created_at: i64 = row.try_get("created_at")?;

                    let (written, removed) =
                        write_item_consensus(c, dialect, project_id, run_id, &run.items).await?;
                    tracing::debug!(written, removed, "item consensus rows changed");

                    sqlx::query("DELETE FROM annotator_quality WHERE project_id = $1")
                        .bind(project_id)
                        .execute(&mut *c)
                        .await?;
                    insert_rows(
                        c,
                        dialect,
                        &format!(
                            "INSERT INTO annotator_quality (project_id, run_id, user_id, question, labels, \
                             agreement, skill, confusion) SELECT {project_id}, {run_id}, * FROM ("
                        ),
                        ") AS new",
                        &run.annotators,
                        RowWriter {
                            types: &["bigint", "text", "bigint", "double precision", "double precision", "text"],
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

                    // Items adjudicated or already waiting are skipped, so a rerun never
                    // queues an item twice.
                    let opened = insert_rows(
                        c,
                        dialect,
                        "WITH new (item_id, reasons, priority, priority_reason, due_at) AS (",
                        &format!(
                            ") INSERT INTO escalations (project_id, item_id, reasons, priority, \
                               priority_reason, status, opened_at, due_at, run_id) \
                             SELECT i.project_id, i.id, new.reasons, new.priority, new.priority_reason, \
                                    'open', {created_at}, new.due_at, {run_id} \
                             FROM new JOIN items i ON i.id = new.item_id \
                             WHERE i.project_id = {project_id} \
                               AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.item_id = i.id AND e.status = 'open') \
                               AND NOT EXISTS (SELECT 1 FROM adjudications d WHERE d.item_id = i.id)"
                        ),
                        &run.escalations,
                        RowWriter {
                            types: &["bigint", "text", "bigint", "text", "bigint"],
                            to_json: &|e| {
                                serde_json::json!([
                                    e.item_id,
                                    json_text(&e.reasons),
                                    e.priority,
                                    e.priority_reason,
                                    created_at + e.sla_ms
                                ])
                            },
                            bind: &|query, e| {
                                query
                                    .bind(e.item_id)
                                    .bind(json_text(&e.reasons))
                                    .bind(e.priority)
                                    .bind(e.priority_reason.as_str())
                                    .bind(created_at + e.sla_ms)
                            },
                        },
                    )
                    .await? as i64;
                    sqlx::query(
                        "UPDATE items SET state = 'escalated', open = 0, updated_at = $1 \
                         WHERE id IN (SELECT item_id FROM escalations WHERE run_id = $2)",
                    )
                    .bind(created_at)
                    .bind(run_id)
                    .execute(&mut *c)
                    .await?;
                    sqlx::query("UPDATE consensus_runs SET escalated = $1 WHERE id = $2")
                        .bind(opened)
                        .bind(run_id)
                        .execute(&mut *c)
                        .await?;
                    audit::record(
c,
AuditEvent {
actor,
project: Some(project_id),
action: AuditAction::Run,
entity: "consensus",
entity_id: Some(run_id),
before: None,
after: audit::snapshot(&serde_json::json!({"method": run.method, "escalated": opened})),
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
        let row = sqlx::query(
            "SELECT r.*, u.username AS author FROM consensus_runs r \
             LEFT JOIN users u ON u.id = r.created_by WHERE r.id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::not_found(format!("consensus run {id}")))?;
        run_from_row(&row)
    }

    /// The project's most recent run, if any.
    pub async fn latest_consensus_run(&self, project_id: Id) -> Result<Option<ConsensusRun>> {
        let row = sqlx::query(
            "SELECT r.*, u.username AS author FROM consensus_runs r \
             LEFT JOIN users u ON u.id = r.created_by WHERE r.project_id = $1 \
             ORDER BY r.id DESC LIMIT 1",
        )
        .bind(project_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    /// Past runs, newest first, without their reports' bulk.
    pub async fn consensus_runs(&self, project_id: Id, limit: i64) -> Result<Vec<ConsensusRun>> {
        let rows = sqlx::query(
            "SELECT r.id, r.project_id, r.job_id, r.method, r.annotations, r.items, r.escalated, \
                    '{}' AS summary, u.username AS author, r.created_at \
             FROM consensus_runs r LEFT JOIN users u ON u.id = r.created_by \
             WHERE r.project_id = $1 ORDER BY r.id DESC LIMIT $2",
        )
        .bind(project_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// The latest consensus of an item, per question.
    pub async fn item_consensus(&self, item_id: Id) -> Result<Vec<ItemConsensus>> {
        let rows = sqlx::query("SELECT * FROM item_consensus WHERE item_id = $1 ORDER BY question")
            .bind(item_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(item_consensus_from_row).collect()
    }

    /// The latest consensus of every item of a project.
    pub async fn project_consensus(&self, project_id: Id) -> Result<Vec<ItemConsensus>> {
        let rows = sqlx::query(
            "SELECT * FROM item_consensus WHERE project_id = $1 ORDER BY item_id, question",
        )
        .bind(project_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(item_consensus_from_row).collect()
    }

    /// The latest per-annotator quality of a project, with names.
    pub async fn annotator_quality(
        &self,
        project_id: Id,
    ) -> Result<Vec<(String, AnnotatorQuality)>> {
        let rows = sqlx::query(
            "SELECT q.*, u.username FROM annotator_quality q JOIN users u ON u.id = q.user_id \
             WHERE q.project_id = $1 ORDER BY u.username, q.question",
        )
        .bind(project_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("username")?,
                    AnnotatorQuality {
                        user_id: row.try_get("user_id")?,
                        question: row.try_get("question")?,
                        labels: row.try_get("labels")?,
                        agreement: row.try_get("agreement")?,
                        skill: row.try_get("skill")?,
                        confusion: parse_json(
                            &row.try_get::<String, _>("confusion")?,
                            "confusion",
                        )?,
                    },
                ))
            })
            .collect()
    }

    /// The QA-expert queue: open escalations, most urgent first, then oldest due date
    /// (`status` "resolved" lists the resolved ones, newest first). `viewer` marks the items
    /// the viewer labelled.
    pub async fn escalations(
        &self,
        project_id: Id,
        status: &str,
        viewer: Id,
        limit: i64,
    ) -> Result<Vec<Escalation>> {
        let order = if status == "open" {
            "e.priority DESC, e.due_at, e.id"
        } else {
            "e.resolved_at DESC, e.id DESC"
        };
        let rows = sqlx::query(&format!(
            "{ESCALATION_SELECT} WHERE e.project_id = $2 AND e.status = $3 ORDER BY {order} LIMIT $4"
        ))
        .bind(viewer)
        .bind(project_id)
        .bind(status)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(escalation_from_row).collect()
    }

    /// Counts of the queue: (open, overdue, resolved).
    pub async fn escalation_counts(&self, project_id: Id) -> Result<(i64, i64, i64)> {
        let now = self.dialect().now_ms();
        let row = sqlx::query(&format!(
            "SELECT \
               COALESCE(SUM(CASE WHEN status = 'open' THEN 1 ELSE 0 END), 0) AS open, \
               COALESCE(SUM(CASE WHEN status = 'open' AND due_at < {now} THEN 1 ELSE 0 END), 0) AS overdue, \
               COALESCE(SUM(CASE WHEN status = 'resolved' THEN 1 ELSE 0 END), 0) AS resolved \
             FROM escalations WHERE project_id = $1"
        ))
        .bind(project_id)
        .fetch_one(self.pool())
        .await?;
        Ok((
            row.try_get("open")?,
            row.try_get("overdue")?,
            row.try_get("resolved")?,
        ))
    }

    /// The item's escalations, newest first.
    pub async fn item_escalations(&self, item_id: Id, viewer: Id) -> Result<Vec<Escalation>> {
        let rows = sqlx::query(&format!(
            "{ESCALATION_SELECT} WHERE e.item_id = $2 ORDER BY e.id DESC"
        ))
        .bind(viewer)
        .bind(item_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(escalation_from_row).collect()
    }

    /// Records an expert's decision: checks the expert did not label the item and the
    /// answer fits the project's current schema, resolves the open escalation, marks the
    /// item adjudicated, and — when asked — promotes it to gold and adds it as an example of
    /// a category to the guideline draft. Earlier decisions stay, superseded.
    pub async fn adjudicate(
        &self,
        project_id: Id,
        item_id: Id,
        expert_id: Id,
        decision: NewAdjudication,
    ) -> Result<Adjudication> {
        let rationale = decision.rationale.trim().to_owned();
        if rationale.is_empty() {
            return Err(StoreError::invalid(
                "rationale: say why (it is what makes the decision a precedent)",
            ));
        }
        let schema: LabelSchema = self.current_schema(project_id).await?.definition;
        schema
            .validate_answer(&decision.answer)
            .map_err(|e| StoreError::invalid(format!("answer: {e}")))?;
        let example = match (decision.example_scope, decision.example_category.as_deref()) {
            (Some(scope), Some(category)) if !category.trim().is_empty() => {
                let known = schema
                    .questions
                    .iter()
                    .any(|q| q.options.iter().any(|o| o.value == category.trim()));
                if !known {
                    return Err(StoreError::invalid(format!(
                        "example_category: {category:?} is not a code of the label schema"
                    )));
                }
                Some((scope, category.trim().to_owned()))
            }
            (Some(_), _) => {
                return Err(StoreError::invalid(
                    "example_category: name the category the example illustrates",
                ));
            }
            (None, _) => None,
        };
        let now = self.dialect().now_ms();
        let id = self
            .write(move |c| {
                Box::pin(async move {
                    let item = sqlx::query("SELECT id, title, external_id FROM items WHERE id = $1 AND project_id = $2")
                        .bind(item_id)
                        .bind(project_id)
                        .fetch_optional(&mut *c)
                        .await?
                        .ok_or_else(|| StoreError::not_found(format!("item {item_id}")))?;
                    let title: String = item.try_get("title")?;
                    let labelled = sqlx::query(
                        "SELECT COUNT(*) AS n FROM annotations WHERE item_id = $1 AND annotator_id = $2",
                    )
                    .bind(item_id)
                    .bind(expert_id)
                    .fetch_one(&mut *c)
                    .await?;
                    if labelled.try_get::<i64, _>("n")? > 0 {
                        return Err(StoreError::conflict(
                            "you labelled this item, so another expert must adjudicate it",
                        ));
                    }
                    let consensus = consensus_labels(c, item_id).await?;
                    let overturned = consensus.as_object().is_some_and(|labels| {
                        labels.iter().any(|(question, label)| {
                            !label.is_null() && decision.answer.get(question).is_some_and(|given| !same_answer(given, label))
                        })
                    });
                    let previous: Option<Id> = sqlx::query(
                        "SELECT MAX(id) AS id FROM adjudications WHERE item_id = $1",
                    )
                    .bind(item_id)
                    .fetch_one(&mut *c)
                    .await?
                    .try_get("id")?;
                    let guideline: Option<Id> = sqlx::query(
                        "SELECT current_guideline_version_id AS g FROM projects WHERE id = $1",
                    )
                    .bind(project_id)
                    .fetch_one(&mut *c)
                    .await?
                    .try_get("g")?;
                    let row = sqlx::query(&format!(
                        "INSERT INTO adjudications (project_id, item_id, expert_id, answer, rationale, \
                           guideline_clause, guideline_version_id, promoted_to_gold, example_scope, \
                           example_category, consensus_before, overturned, supersedes, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, {now}) \
                         RETURNING id, created_at"
                    ))
                    .bind(project_id)
                    .bind(item_id)
                    .bind(expert_id)
                    .bind(json_text(&decision.answer))
                    .bind(&rationale)
                    .bind(decision.guideline_clause.trim())
                    .bind(guideline)
                    .bind(i64::from(decision.promote_to_gold))
                    .bind(example.as_ref().map(|(scope, _)| match scope {
                        ExampleScope::InScope => "in",
                        ExampleScope::OutOfScope => "out",
                    }))
                    .bind(example.as_ref().map(|(_, category)| category.clone()))
                    .bind((!consensus.as_object().is_some_and(|o| o.is_empty())).then(|| json_text(&consensus)))
                    .bind(i64::from(overturned))
                    .bind(previous)
                    .fetch_one(&mut *c)
                    .await?;
                    let id: Id = row.try_get("id")?;
                    let at: i64 = row.try_get("created_at")?;
                    sqlx::query(
                        "UPDATE escalations SET status = 'resolved', resolved_at = $1, resolved_by = $2, \
                           adjudication_id = $3 WHERE item_id = $4 AND status = 'open'",
                    )
                    .bind(at)
                    .bind(expert_id)
                    .bind(id)
                    .bind(item_id)
                    .execute(&mut *c)
                    .await?;
                    sqlx::query(
                        "UPDATE items SET state = 'adjudicated', open = 0, updated_at = $1 WHERE id = $2",
                    )
                    .bind(at)
                    .bind(item_id)
                    .execute(&mut *c)
                    .await?;
                    if decision.promote_to_gold {
                        sqlx::query("UPDATE items SET is_gold = 1, gold_answer = $1 WHERE id = $2")
                            .bind(json_text(&decision.answer))
                            .bind(item_id)
                            .execute(&mut *c)
                            .await?;
                    }
                    if let Some((scope, category)) = example {
                        let text = format!("{title} — {rationale} (adjudication #{id})");
                        crate::guidelines::add_example_to_draft(
                            c,
                            project_id,
                            GuidelineExample { category, scope, text },
                            Some(expert_id),
                        )
                        .await?;
                    }
                    audit::record(
c,
AuditEvent {
actor: Some(expert_id),
project: Some(project_id),
action: AuditAction::Adjudicate,
entity: "item",
entity_id: Some(item_id),
before: None,
after: audit::snapshot(&serde_json::json!({
                            "adjudication": id,
                            "answer": decision.answer,
                            "overturned": overturned,
                            "promote_to_gold": decision.promote_to_gold,
                        })),
},
)
                    .await?;
                    Ok(id)
                })
            })
            .await?;
        self.adjudication(id).await
    }

    pub async fn adjudication(&self, id: Id) -> Result<Adjudication> {
        let row = sqlx::query(&format!("{ADJUDICATION_SELECT} WHERE a.id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::not_found(format!("adjudication {id}")))?;
        adjudication_from_row(&row)
    }

    /// Every decision on an item, newest first (the first is the one in force).
    pub async fn item_adjudications(&self, item_id: Id) -> Result<Vec<Adjudication>> {
        let rows = sqlx::query(&format!(
            "{ADJUDICATION_SELECT} WHERE a.item_id = $1 ORDER BY a.id DESC"
        ))
        .bind(item_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(adjudication_from_row).collect()
    }

    /// The precedent library: decisions in force (not superseded), newest first.
    pub async fn precedents(
        &self,
        project_id: Id,
        filter: &PrecedentFilter,
    ) -> Result<Vec<Adjudication>> {
        let like = self.dialect().ilike();
        let mut sql = format!(
            "{ADJUDICATION_SELECT} WHERE a.project_id = $1 \
             AND NOT EXISTS (SELECT 1 FROM adjudications later WHERE later.supersedes = a.id)"
        );
        let mut binds: Vec<String> = Vec::new();
        let mut next = 2;
        if let Some(text) = filter
            .text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let columns = [
                "a.rationale",
                "a.guideline_clause",
                "i.title",
                "i.external_id",
            ];
            let tests: Vec<String> = columns
                .iter()
                .map(|column| {
                    binds.push(like_pattern(text));
                    next += 1;
                    format!("{column} {like} ${} ESCAPE '\\'", next - 1)
                })
                .collect();
            sql += &format!(" AND ({})", tests.join(" OR "));
        }
        if let Some(code) = filter
            .code
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            // Codes sit in the JSON answer as quoted strings.
            sql += &format!(" AND a.answer LIKE ${next} ESCAPE '\\'");
            binds.push(like_pattern(&format!("\"{code}\"")));
            next += 1;
        }
        if let Some(clause) = filter
            .clause
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            sql += &format!(" AND a.guideline_clause {like} ${next} ESCAPE '\\'");
            binds.push(like_pattern(clause));
        }
        if let Some(overturned) = filter.overturned {
            sql += &format!(" AND a.overturned = {}", i64::from(overturned));
        }
        sql += &format!(
            " ORDER BY a.id DESC LIMIT {}",
            filter.limit.unwrap_or(200).clamp(1, 1000)
        );
        let mut query = sqlx::query(&sql).bind(project_id);
        for value in binds {
            query = query.bind(value);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(adjudication_from_row).collect()
    }

    /// The latest human labels given under a guideline version older than `before_version`
    /// that name any of `codes`, oldest item first.
    pub async fn labels_under_older_versions(
        &self,
        project_id: Id,
        before_version: i64,
        codes: &[String],
        limit: i64,
    ) -> Result<Vec<RevisionCandidate>> {
        if codes.is_empty() {
            return Ok(Vec::new());
        }
        let tests: Vec<String> = (0..codes.len())
            .map(|k| format!("a.answer LIKE ${} ESCAPE '\\'", k + 3))
            .collect();
        let sql = format!(
            "SELECT a.item_id, i.external_id, i.title, a.annotator_id, u.username, g.version, a.answer \
             FROM annotations a JOIN guideline_versions g ON g.id = a.guideline_version_id \
             JOIN items i ON i.id = a.item_id JOIN users u ON u.id = a.annotator_id \
             WHERE a.project_id = $1 AND g.version < $2 AND u.kind = 'human' AND a.kind = 'label' \
               AND NOT EXISTS (SELECT 1 FROM annotations later WHERE later.item_id = a.item_id \
                               AND later.annotator_id = a.annotator_id AND later.id > a.id) \
               AND ({}) ORDER BY a.item_id, a.id LIMIT {}",
            tests.join(" OR "),
            limit.clamp(1, 10_000)
        );
        let mut query = sqlx::query(&sql).bind(project_id).bind(before_version);
        for code in codes {
            query = query.bind(like_pattern(&format!("\"{code}\"")));
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| {
                Ok(RevisionCandidate {
                    item_id: row.try_get("item_id")?,
                    external_id: row.try_get("external_id")?,
                    title: row.try_get("title")?,
                    annotator_id: row.try_get("annotator_id")?,
                    annotator: row.try_get("username")?,
                    guideline_version: row.try_get("version")?,
                    answer: parse_json(&row.try_get::<String, _>("answer")?, "annotation answer")?,
                })
            })
            .collect()
    }

    /// Queues a re-review of each (item, annotator) pair, skipping pairs that already wait
    /// for one; returns how many were queued. One transaction, one audit entry.
    pub async fn queue_rereviews(
        &self,
        project_id: Id,
        pairs: Vec<(Id, Id)>,
        reason: &str,
        actor: Option<Id>,
    ) -> Result<usize> {
        let reason = reason.to_owned();
        self.write(move |c| {
            Box::pin(async move {
                let mut queued = 0usize;
                for (item_id, user_id) in &pairs {
                    let done = sqlx::query(
                        "INSERT INTO assignments (project_id, item_id, user_id, purpose, status, \
                           counts_toward_overlap, created_by) \
                         SELECT $1, i.id, $2, 'rereview', 'assigned', 0, $3 FROM items i \
                         WHERE i.id = $4 AND i.project_id = $5 \
                           AND NOT EXISTS (SELECT 1 FROM assignments w WHERE w.item_id = i.id \
                                           AND w.user_id = $6 AND w.purpose = 'rereview' \
                                           AND w.status IN ('assigned', 'leased'))",
                    )
                    .bind(project_id)
                    .bind(*user_id)
                    .bind(actor)
                    .bind(*item_id)
                    .bind(project_id)
                    .bind(*user_id)
                    .execute(&mut *c)
                    .await?;
                    queued += done.rows_affected() as usize;
                }
                audit::record(
c,
AuditEvent {
actor,
project: Some(project_id),
action: AuditAction::QueueRereviews,
entity: "assignment",
entity_id: None,
before: None,
after: audit::snapshot(&serde_json::json!({"queued": queued, "asked": pairs.len(), "reason": reason})),
},
)
                .await?;
                Ok(queued)
            })
        })
        .await
    }

    /// Annotations per UTC day (day number since the epoch), oldest first.
    pub async fn labels_per_day(&self, project_id: Id) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query(
            "SELECT created_at / 86400000 AS day, COUNT(*) AS n FROM annotations \
             WHERE project_id = $1 GROUP BY created_at / 86400000 ORDER BY day",
        )
        .bind(project_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("day")?, r.try_get("n")?)))
            .collect()
    }

    /// Annotations per annotator, most first, with the account kind (`human` / `model`).
    pub async fn labels_per_annotator(
        &self,
        project_id: Id,
        limit: i64,
    ) -> Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT u.username, u.kind, COUNT(*) AS n FROM annotations a \
             JOIN users u ON u.id = a.annotator_id WHERE a.project_id = $1 \
             GROUP BY u.username, u.kind ORDER BY n DESC, u.username LIMIT $2",
        )
        .bind(project_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("username")?, r.try_get("kind")?, r.try_get("n")?)))
            .collect()
    }

    /// Share of adjudications that overturned the consensus, and how many there are.
    pub async fn adjudication_counts(&self, project_id: Id) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(a.overturned), 0) AS BIGINT) AS overturned FROM adjudications a \
             WHERE a.project_id = $1 \
               AND NOT EXISTS (SELECT 1 FROM adjudications later WHERE later.supersedes = a.id)",
        )
        .bind(project_id)
        .fetch_one(self.pool())
        .await?;
        Ok((row.try_get("n")?, row.try_get("overturned")?))
    }
}

const ESCALATION_SELECT: &str = "SELECT e.*, i.external_id, i.title, i.item_type, r.username AS resolver, \
     CASE WHEN EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = e.item_id AND a.annotator_id = $1) \
          THEN 1 ELSE 0 END AS viewer_labelled \
     FROM escalations e JOIN items i ON i.id = e.item_id LEFT JOIN users r ON r.id = e.resolved_by";

fn item_consensus_from_row(row: &AnyRow) -> Result<ItemConsensus> {
    let label: Option<String> = row.try_get("label")?;
    Ok(ItemConsensus {
        item_id: row.try_get("item_id")?,
        question: row.try_get("question")?,
        label: label
            .map(|l| parse_json(&l, "consensus label"))
            .transpose()?,
        posterior: parse_json(&row.try_get::<String, _>("posterior")?, "posterior")?,
        confidence: row.try_get("confidence")?,
        agreement: row.try_get("agreement")?,
        n_labels: row.try_get("n_labels")?,
        tied: row.try_get::<i64, _>("tied")? != 0,
    })
}

/// `{question: label}` of an item's current consensus.
async fn consensus_labels(c: &mut AnyConnection, item_id: Id) -> Result<Value> {
    let rows = sqlx::query("SELECT question, label FROM item_consensus WHERE item_id = $1")
        .bind(item_id)
        .fetch_all(&mut *c)
        .await?;
    let mut labels = serde_json::Map::new();
    for row in &rows {
        let label: Option<String> = row.try_get("label")?;
        labels.insert(
            row.try_get("question")?,
            label
                .map(|l| parse_json(&l, "consensus label"))
                .transpose()?
                .unwrap_or(Value::Null),
        );
    }
    Ok(Value::Object(labels))
}

/// Answers compare as sets for lists (multi-label order does not matter).
fn same_answer(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            let mut x: Vec<String> = x.iter().map(|v| v.to_string()).collect();
            let mut y: Vec<String> = y.iter().map(|v| v.to_string()).collect();
            x.sort();
            y.sort();
            x == y
        }
        _ => a == b,
    }
}
