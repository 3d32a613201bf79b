//! Moving in from another tool: a Label Studio export or a Toloka TSV (read by
//! `concord_formats::foreign`) mapped onto the project's schema and written all or nothing.
//!
//! [`plan`] is the mapping, pure: source fields → questions (the mapping file's `fields`,
//! else the question of the same key; a text field becomes the rationale), source values →
//! option codes (the mapping's `values`, else the code or the option's label, any case; a
//! rating is the n-th step of an ordinal scale), source users → user names (the mapping's
//! `users`, else the email or worker id itself; a bare number becomes `label-studio-N`). It
//! says what maps, what does not and why. [`Store::import_foreign`] writes the plan in one
//! transaction, or nothing when anything does not map or on a dry run.

use crate::audit::{self, AuditEvent};
use crate::conn::{Columns, Conn, stmt};
use crate::error::{Result, StoreError, json_text, parse_json};
use crate::ids::{ProjectId, UserId};
use crate::model::{AuditAction, Id, ItemType, Project};
use crate::schema::{LabelSchema, Question, QuestionKind};
use crate::{Store, predictions::class_question};
use concord_formats::foreign::{Mapping, SourceExport, SourceValue, ValueKind};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// How much of the schema an imported answer must give: a label or a gold answer answers
/// every required question; a prediction answers the one question predictions are about.
#[derive(Clone, Copy)]
enum AnswerCheck {
    Whole,
    Partial,
}

/// What an import found, how it maps and what does not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForeignReport {
    pub source: &'static str,
    pub file: String,
    pub dry_run: bool,
    /// True once everything is in the project (never on a dry run).
    pub written: bool,
    pub items: ItemCounts,
    pub annotations: usize,
    /// Annotations the project already holds from an earlier import (same item, annotator
    /// and answer): not written again, so importing a file twice adds nothing.
    pub annotations_existing: usize,
    pub annotators: Vec<AnnotatorMap>,
    pub predictions: usize,
    /// Predictions already stored with the same label and score: not written again.
    pub predictions_existing: usize,
    pub models: Vec<String>,
    pub fields: Vec<FieldMap>,
    /// Source fields left out, and why (their values are not imported).
    pub ignored: Vec<Ignored>,
    /// What stops the import: a value, annotator or answer that does not map.
    pub not_mapped: Vec<NotMapped>,
    /// Records the source itself marks as not counting (cancelled, rejected).
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ItemCounts {
    pub found: usize,
    pub new: usize,
    pub existing: usize,
    pub gold: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnnotatorMap {
    pub source: String,
    pub annotator: String,
    pub annotations: usize,
}

/// Where a source field goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "to", content = "question", rename_all = "snake_case")]
pub enum Target {
    Question(String),
    Rationale,
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldMap {
    pub field: String,
    pub kind: ValueKind,
    pub target: Target,
    /// Each source value met, the code it maps to, and how often.
    pub values: Vec<ValueMap>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValueMap {
    pub value: String,
    pub code: String,
    pub count: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ignored {
    pub field: String,
    pub reason: String,
}

/// One reason the import cannot be written, with where it first happens and how often.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotMapped {
    pub first: String,
    pub field: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub reason: String,
    pub count: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub place: String,
    pub reason: String,
}

/// A new item, ready to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedItem {
    pub external_id: String,
    pub item_type: ItemType,
    pub title: String,
    pub text: Value,
    pub metadata: Value,
    pub media_url: Option<String>,
    pub gold: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedAnnotation {
    pub item: String,
    pub annotator: String,
    pub answer: Value,
    pub rationale: String,
    pub created_at: Option<i64>,
    pub time_spent_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedPrediction {
    pub item: String,
    pub model: String,
    pub label: String,
    pub score: f64,
}

/// The report and, when nothing stops it, the rows to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub report: ForeignReport,
    pub items: Vec<PlannedItem>,
    pub annotations: Vec<PlannedAnnotation>,
    pub predictions: Vec<PlannedPrediction>,
}

impl Plan {
    /// The error a real import gives when something does not map: the first reason, where.
    pub fn refusal(&self) -> Option<StoreError> {
        let first = self.report.not_mapped.first()?;
        let value = first
            .value
            .as_ref()
            .map(|v| format!("{v:?} "))
            .unwrap_or_default();
        let more = match self.report.not_mapped.len() {
            1 => String::new(),
            n => format!(" (and {} more reasons; see the dry run)", n - 1),
        };
        Some(StoreError::invalid(format!(
            "{}: {}: field {}: {value}{}{more}; nothing was imported",
            self.report.file, first.first, first.field, first.reason
        )))
    }
}

/// Collects the not-mapped reasons, one entry per (field, value, reason).
#[derive(Default)]
struct Problems {
    list: Vec<NotMapped>,
    index: HashMap<(String, Option<String>, String), usize>,
}

impl Problems {
    fn add(&mut self, place: &str, field: &str, value: Option<&str>, reason: String) {
        let key = (field.to_owned(), value.map(str::to_owned), reason);
        match self.index.get(&key) {
            Some(&i) => self.list[i].count += 1,
            None => {
                self.index.insert(key.clone(), self.list.len());
                self.list.push(NotMapped {
                    first: place.to_owned(),
                    field: key.0,
                    value: key.1,
                    reason: key.2,
                    count: 1,
                });
            }
        }
    }
}

/// How one source field resolves, decided once per field.
struct FieldPlan {
    kind: ValueKind,
    target: Target,
    values: BTreeMap<String, (String, usize)>,
}

struct Mapper<'a> {
    schema: &'a LabelSchema,
    mapping: &'a Mapping,
    fields: BTreeMap<String, FieldPlan>,
    ignored: Vec<Ignored>,
    problems: Problems,
}

impl<'a> Mapper<'a> {
    fn question(&self, key: &str) -> Option<&'a Question> {
        self.schema.questions.iter().find(|q| q.key == key)
    }

    /// Where a field goes: the mapping, else a question of the same key, else (text) the
    /// rationale, else nowhere.
    fn target(&mut self, field: &str, kind: ValueKind, place: &str) -> Target {
        if let Some(plan) = self.fields.get(field) {
            return plan.target.clone();
        }
        let target = match self.mapping.fields.get(field).map(String::as_str) {
            Some("rationale") => Target::Rationale,
            Some("ignore") => {
                self.ignored.push(Ignored {
                    field: field.to_owned(),
                    reason: "ignored by the mapping".into(),
                });
                Target::Ignored
            }
            Some(key) => match self.question(key) {
                Some(q) => Target::Question(q.key.clone()),
                None => {
                    let reason = format!(
                        "the mapping sends it to {key:?}, which is not a question of the schema"
                    );
                    self.problems.add(place, field, None, reason);
                    Target::Ignored
                }
            },
            None => match self
                .schema
                .questions
                .iter()
                .find(|q| q.key.eq_ignore_ascii_case(field))
            {
                Some(q) => Target::Question(q.key.clone()),
                None if kind == ValueKind::Text => Target::Rationale,
                None => {
                    self.ignored.push(Ignored {
                        field: field.to_owned(),
                        reason: "no question of that name; map it under `fields` to import it"
                            .into(),
                    });
                    Target::Ignored
                }
            },
        };
        self.fields.insert(
            field.to_owned(),
            FieldPlan {
                kind,
                target: target.clone(),
                values: BTreeMap::new(),
            },
        );
        target
    }

    /// The option code a source value stands for.
    fn code(
        &self,
        field: &str,
        kind: ValueKind,
        question: &Question,
        value: &str,
    ) -> Result<String, String> {
        let is_option = |code: &str| question.options.iter().any(|o| o.value == code);
        if let Some(code) = self.mapping.values.get(field).and_then(|m| m.get(value)) {
            return match is_option(code) {
                true => Ok(code.clone()),
                false => Err(format!(
                    "the mapping gives {code:?}, which is not an option of {:?}",
                    question.key
                )),
            };
        }
        let value = value.trim();
        if let Some(o) = question
            .options
            .iter()
            .find(|o| o.value.eq_ignore_ascii_case(value) || o.label.eq_ignore_ascii_case(value))
        {
            return Ok(o.value.clone());
        }
        if kind == ValueKind::Rating
            && question.kind == QuestionKind::Ordinal
            && let Ok(n) = value.parse::<usize>()
            && (1..=question.options.len()).contains(&n)
        {
            return Ok(question.options[n - 1].value.clone());
        }
        let options: Vec<&str> = question.options.iter().map(|o| o.value.as_str()).collect();
        Err(format!(
            "is not an option of {:?} ({}); map it under `values.{field}`",
            question.key,
            options.join(", ")
        ))
    }

    /// An answer (and rationale) from one record's source values; `None` when a value
    /// does not map (recorded as a problem).
    fn answer(
        &mut self,
        place: &str,
        values: &[SourceValue],
        check: AnswerCheck,
    ) -> Option<(Value, String)> {
        let mut answer = Map::new();
        let mut rationale: Vec<String> = Vec::new();
        let mut ok = true;
        for value in values {
            let question = match self.target(&value.field, value.kind, place) {
                Target::Ignored => continue,
                Target::Rationale => {
                    rationale.extend(
                        value
                            .values
                            .iter()
                            .filter(|t| !t.trim().is_empty())
                            .cloned(),
                    );
                    continue;
                }
                Target::Question(key) => match self.question(&key) {
                    Some(q) => q,
                    None => continue,
                },
            };
            let (codes, all_mapped) = self.codes(place, value, question);
            ok &= all_mapped;
            ok &= self.put_codes(place, &value.field, question, codes, &mut answer);
        }
        if !ok {
            return None;
        }
        let answer = self.checked(place, Value::Object(answer), check)?;
        Some((answer, rationale.join("\n")))
    }

    /// The option codes of one source value, each once, tallied for the report; false when
    /// any of them does not map (recorded as a problem; the others are still given).
    fn codes(
        &mut self,
        place: &str,
        value: &SourceValue,
        question: &Question,
    ) -> (Vec<String>, bool) {
        let mut codes = Vec::new();
        let mut all_mapped = true;
        for raw in &value.values {
            match self.code(&value.field, value.kind, question, raw) {
                Ok(code) => {
                    if let Some(plan) = self.fields.get_mut(&value.field) {
                        plan.values
                            .entry(raw.clone())
                            .or_insert((code.clone(), 0))
                            .1 += 1;
                    }
                    if !codes.contains(&code) {
                        codes.push(code);
                    }
                }
                Err(reason) => {
                    self.problems.add(place, &value.field, Some(raw), reason);
                    all_mapped = false;
                }
            }
        }
        (codes, all_mapped)
    }

    /// Puts a question's codes into the answer: added to a multiple-choice list, else the one
    /// code; false (recorded as a problem) when a single-answer question gets several.
    fn put_codes(
        &mut self,
        place: &str,
        field: &str,
        question: &Question,
        mut codes: Vec<String>,
        answer: &mut Map<String, Value>,
    ) -> bool {
        let entry = match question.kind {
            QuestionKind::Multi => {
                let mut all: Vec<Value> = match answer.remove(&question.key) {
                    Some(Value::Array(before)) => before,
                    _ => Vec::new(),
                };
                for code in codes.into_iter().map(Value::String) {
                    if !all.contains(&code) {
                        all.push(code);
                    }
                }
                Value::Array(all)
            }
            _ if codes.len() > 1 => {
                let reason = format!(
                    "{} values for the single-answer question {:?}",
                    codes.len(),
                    question.key
                );
                self.problems.add(place, field, None, reason);
                return false;
            }
            _ => match codes.pop() {
                Some(code) => Value::String(code),
                None => return true,
            },
        };
        answer.insert(question.key.clone(), entry);
        true
    }

    /// The answer when it satisfies the schema (whole or partly, per `check`); else `None`,
    /// recorded as a problem.
    fn checked(&mut self, place: &str, answer: Value, check: AnswerCheck) -> Option<Value> {
        let checked = match check {
            AnswerCheck::Whole => self.schema.validate_answer(&answer),
            AnswerCheck::Partial => self.schema.validate_partial_answer(&answer),
        };
        if let Err(reason) = checked {
            self.problems.add(place, "answer", None, reason);
            return None;
        }
        Some(answer)
    }

    fn into_fields(self) -> (Vec<FieldMap>, Vec<Ignored>, Problems) {
        let fields = self
            .fields
            .into_iter()
            .map(|(field, plan)| FieldMap {
                field,
                kind: plan.kind,
                target: plan.target,
                values: plan
                    .values
                    .into_iter()
                    .map(|(value, (code, count))| ValueMap { value, code, count })
                    .collect(),
            })
            .collect();
        (fields, self.ignored, self.problems)
    }
}

/// The user name a source user becomes.
fn annotator(mapping: &Mapping, source: &str) -> std::result::Result<String, String> {
    let name = match mapping.users.get(source) {
        Some(name) => name.clone(),
        None if source.bytes().all(|b| b.is_ascii_digit()) => format!("label-studio-{source}"),
        None => source.to_owned(),
    };
    match crate::accounts::valid_username(&name) {
        true => Ok(name),
        false => Err(format!(
            "{name:?} is not a valid user name (1–64 letters, digits or _ - . @); map it under `users`"
        )),
    }
}

/// Data keys that fill catalog fields; everything else is kept as metadata.
const TEXT_KEYS: [(&str, &str); 4] = [
    ("text", "description"),
    ("description", "description"),
    ("lyrics_excerpt", "lyrics_excerpt"),
    ("transcript", "transcript"),
];
const MEDIA_KEYS: [&str; 4] = ["preview_url", "audio", "url", "media_url"];

fn new_item(
    export: &SourceExport,
    item: &concord_formats::foreign::SourceItem,
    mapping: &Mapping,
    item_type: Option<ItemType>,
    problems: &mut Problems,
) -> Option<PlannedItem> {
    let mut data = item.data.clone();
    let item_type = new_item_type(item, &mut data, item_type, problems)?;
    if let Some(field) = &mapping.item_id {
        data.remove(field);
    }
    data.remove("id");
    let title_key = mapping.title.clone().unwrap_or_else(|| "title".into());
    let title = match data.remove(&title_key) {
        Some(Value::String(t)) if !t.trim().is_empty() => t,
        _ => item.id.clone(),
    };
    let text = take_text_fields(&mut data);
    let media_url = take_media_url(&mut data);
    Some(PlannedItem {
        external_id: item.id.clone(),
        item_type,
        title,
        text: Value::Object(text),
        metadata: source_metadata(export, data),
        media_url,
        gold: None,
    })
}

/// The mapping's item type, else the item's own `item_type` (taken out of its data); `None`
/// (recorded as a problem) when neither gives one.
fn new_item_type(
    item: &concord_formats::foreign::SourceItem,
    data: &mut Map<String, Value>,
    item_type: Option<ItemType>,
    problems: &mut Problems,
) -> Option<ItemType> {
    if item_type.is_some() {
        return item_type;
    }
    let own = data
        .remove("item_type")
        .as_ref()
        .and_then(Value::as_str)
        .and_then(ItemType::parse);
    if own.is_none() {
        let reason = "new items need a type: give the mapping's item_type (or --item-type)".into();
        problems.add(&item.place, "item_type", None, reason);
    }
    own
}

/// The catalog's text fields, taken out of the item's data.
fn take_text_fields(data: &mut Map<String, Value>) -> Map<String, Value> {
    let mut text = Map::new();
    for (key, to) in TEXT_KEYS {
        if let Some(Value::String(t)) = data.remove(key) {
            text.insert(to.to_owned(), Value::String(t));
        }
    }
    text
}

/// The first web address among the media keys; each media key is taken out of the data
/// until one is found.
fn take_media_url(data: &mut Map<String, Value>) -> Option<String> {
    MEDIA_KEYS.iter().find_map(|k| match data.remove(*k) {
        Some(Value::String(u)) if u.starts_with("http") => Some(u),
        _ => None,
    })
}

/// Where the item comes from, and the data nothing else took.
fn source_metadata(export: &SourceExport, data: Map<String, Value>) -> Value {
    let mut metadata = Map::new();
    metadata.insert(
        "source".into(),
        serde_json::json!({"tool": export.source.as_str(), "file": export.file}),
    );
    if !data.is_empty() {
        metadata.insert("extra".into(), Value::Object(data));
    }
    Value::Object(metadata)
}

/// What the project already holds of an export's records, so that importing the same file
/// again writes nothing twice.
#[derive(Debug, Clone, Default)]
pub struct AlreadyStored {
    /// Items' external ids.
    pub items: HashSet<String>,
    /// (model, item) → the stored prediction's label and score.
    pub predictions: HashMap<(String, String), (String, f64)>,
    /// Imported annotations: (item, annotator, [`answer_key`]).
    pub annotations: HashSet<(String, String, String)>,
}

/// An answer's canonical text: its questions in order, each value as
/// [`crate::answer::value_key`] (lists as sets) or else its JSON.
pub fn answer_key(answer: &Value) -> String {
    let Value::Object(fields) = answer else {
        return answer.to_string();
    };
    let mut keys: Vec<&String> = fields.keys().collect();
    keys.sort();
    keys.into_iter()
        .map(|k| {
            let value = &fields[k];
            let text = crate::answer::value_key(value).unwrap_or_else(|| value.to_string());
            format!("{k}={text}")
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// Maps an export onto a schema, leaving out what the project already holds (`stored`).
pub fn plan(
    schema: &LabelSchema,
    export: &SourceExport,
    mapping: &Mapping,
    stored: &AlreadyStored,
) -> Plan {
    // long: one pass per kind of record (items, annotations, predictions), then the report.
    let mut mapper = Mapper {
        schema,
        mapping,
        fields: BTreeMap::new(),
        ignored: Vec::new(),
        problems: Problems::default(),
    };
    let item_type = match mapping.item_type.as_deref() {
        None => None,
        Some(t) => match ItemType::parse(t) {
            Some(t) => Some(t),
            None => {
                let reason =
                    format!("{t:?} is not an item type (track, episode, audiobook, chapter)");
                mapper
                    .problems
                    .add("the mapping", "item_type", None, reason);
                None
            }
        },
    };
    let mut counts = ItemCounts {
        found: export.items.len(),
        ..ItemCounts::default()
    };
    let mut items = Vec::new();
    for item in &export.items {
        if stored.items.contains(&item.id) {
            counts.existing += 1;
            continue;
        }
        let gold = match item.gold.is_empty() {
            true => None,
            false => mapper
                .answer(&item.place, &item.gold, AnswerCheck::Whole)
                .map(|(answer, _)| answer),
        };
        if let Some(mut planned) = new_item(export, item, mapping, item_type, &mut mapper.problems)
        {
            counts.new += 1;
            counts.gold += gold.is_some() as usize;
            planned.gold = gold;
            items.push(planned);
        }
    }
    let mut annotations = Vec::new();
    let mut annotations_existing = 0;
    let mut annotators: BTreeMap<String, AnnotatorMap> = BTreeMap::new();
    for a in &export.annotations {
        let name = match annotator(mapping, &a.user) {
            Ok(name) => name,
            Err(reason) => {
                mapper
                    .problems
                    .add(&a.place, "annotator", Some(&a.user), reason);
                continue;
            }
        };
        let Some((answer, rationale)) = mapper.answer(&a.place, &a.values, AnswerCheck::Whole)
        else {
            continue;
        };
        let key = (a.item.clone(), name.clone(), answer_key(&answer));
        if stored.annotations.contains(&key) {
            annotations_existing += 1;
            continue;
        }
        annotators
            .entry(a.user.clone())
            .or_insert_with(|| AnnotatorMap {
                source: a.user.clone(),
                annotator: name.clone(),
                annotations: 0,
            })
            .annotations += 1;
        annotations.push(PlannedAnnotation {
            item: a.item.clone(),
            annotator: name,
            answer,
            rationale,
            created_at: a.created_at,
            time_spent_ms: a.time_spent_ms,
        });
    }
    let class = class_question(schema);
    let mut predictions = Vec::new();
    let mut predictions_existing = 0;
    let mut models = Vec::new();
    for p in &export.predictions {
        let Some(class) = class else {
            let reason =
                "the schema has no single-choice or ordinal question for predictions".into();
            mapper.problems.add(&p.place, "predictions", None, reason);
            continue;
        };
        let Some(score) = p.score.filter(|s| (0.0..=1.0).contains(s)) else {
            let reason = "a prediction needs a score between 0 and 1".into();
            mapper.problems.add(&p.place, "score", None, reason);
            continue;
        };
        let Some((answer, _)) = mapper.answer(&p.place, &p.values, AnswerCheck::Partial) else {
            continue;
        };
        let Some(label) = answer.get(&class.key).and_then(Value::as_str) else {
            let reason = format!(
                "no value for {:?}, the question predictions answer",
                class.key
            );
            mapper.problems.add(&p.place, "result", None, reason);
            continue;
        };
        if let Some((stored_label, stored_score)) =
            stored.predictions.get(&(p.model.clone(), p.item.clone()))
        {
            // The same prediction again (a file imported twice) is left out; a different
            // one would silently replace what was evaluated, so it is refused.
            if stored_label == label && (stored_score - score).abs() < 1e-9 {
                predictions_existing += 1;
                continue;
            }
            let reason = format!(
                "item {:?} already has another prediction from {:?}",
                p.item, p.model
            );
            mapper.problems.add(&p.place, "model_version", None, reason);
            continue;
        }
        if !models.contains(&p.model) {
            models.push(p.model.clone());
        }
        predictions.push(PlannedPrediction {
            item: p.item.clone(),
            model: p.model.clone(),
            label: label.to_owned(),
            score,
        });
    }
    let (fields, ignored, problems) = mapper.into_fields();
    Plan {
        report: ForeignReport {
            source: export.source.as_str(),
            file: export.file.clone(),
            dry_run: true,
            written: false,
            items: counts,
            annotations: annotations.len(),
            annotations_existing,
            annotators: annotators.into_values().collect(),
            predictions: predictions.len(),
            predictions_existing,
            models,
            fields,
            ignored,
            not_mapped: problems.list,
            skipped: export
                .skipped
                .iter()
                .map(|(place, reason)| Skipped {
                    place: place.clone(),
                    reason: reason.clone(),
                })
                .collect(),
        },
        items,
        annotations,
        predictions,
    }
}

impl Store {
    /// Maps an export onto the project's schema and, unless `dry_run`, writes its new items,
    /// annotations (source `import`; unknown annotators become accounts without a password
    /// and annotators of the project) and predictions in one transaction. Anything that does
    /// not map refuses the whole file, naming the first reason; nothing is written.
    pub async fn import_foreign(
        &self,
        project: &Project,
        export: &SourceExport,
        mapping: &Mapping,
        dry_run: bool,
        actor: Option<UserId>,
    ) -> Result<ForeignReport> {
        let schema = self.project_schema(project).await?;
        let stored = self.already_stored(project.id).await?;
        let mut plan = plan(&schema.definition, export, mapping, &stored);
        plan.report.dry_run = dry_run;
        if dry_run {
            return Ok(plan.report);
        }
        if let Some(refusal) = plan.refusal() {
            return Err(refusal);
        }
        let mut report = self
            .write_import(project.id, schema.id, plan, actor)
            .await?;
        self.refresh_statistics("items").await;
        self.refresh_statistics("annotations").await;
        report.written = true;
        Ok(report)
    }

    /// What the project holds already of any export's records.
    async fn already_stored(&self, project_id: ProjectId) -> Result<AlreadyStored> {
        Ok(AlreadyStored {
            items: self.project_external_ids(project_id).await?,
            predictions: self.stored_predictions(project_id).await?,
            annotations: self.imported_annotation_keys(project_id).await?,
        })
    }

    /// Writes the plan's rows, moves the queue on and logs the import, in one transaction;
    /// gives back the plan's report.
    async fn write_import(
        &self,
        project_id: ProjectId,
        schema_version_id: Id,
        plan: Plan,
        actor: Option<UserId>,
    ) -> Result<ForeignReport> {
        let now = self.dialect().now_ms();
        let Plan {
            report,
            items,
            annotations,
            predictions,
        } = plan;
        // Shared, not copied, by each run of the write (it may run more than once).
        let (items, annotations, predictions) = (
            std::sync::Arc::new(items),
            std::sync::Arc::new(annotations),
            std::sync::Arc::new(predictions),
        );
        let audit_after = serde_json::json!({
            "file": report.file, "source": report.source, "items": report.items.new,
            "annotations": report.annotations, "predictions": report.predictions,
        });
        self.write_conn(move |mut c| {
            let predictions = predictions.clone();
            let items = items.clone();
            let audit_after = audit_after.clone();
            let annotations = annotations.clone();
            Box::pin(async move {
                let c = &mut c;
                let rows = PlanRows {
                    project_id,
                    schema_version_id,
                    now,
                };
                write_plan(c, &rows, &items, &annotations, &predictions).await?;
                record_import(c, project_id, actor, &audit_after).await
            })
        })
        .await?;
        Ok(report)
    }

    async fn project_external_ids(&self, project_id: ProjectId) -> Result<HashSet<String>> {
        let rows = self
            .read_rows(stmt("SELECT external_id FROM items WHERE project_id = $1").bind(project_id))
            .await?;
        rows.iter().map(|r| r.col("external_id")).collect()
    }

    async fn stored_predictions(
        &self,
        project_id: ProjectId,
    ) -> Result<HashMap<(String, String), (String, f64)>> {
        let rows = self
            .read_rows(
                stmt(
                    "SELECT p.model, i.external_id, p.label, p.score FROM model_predictions p \
             JOIN items i ON i.id = p.item_id WHERE p.project_id = $1",
                )
                .bind(project_id),
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    (r.col("model")?, r.col("external_id")?),
                    (r.col("label")?, r.col("score")?),
                ))
            })
            .collect()
    }

    /// Every imported annotation of the project as (item, annotator, answer key).
    async fn imported_annotation_keys(
        &self,
        project_id: ProjectId,
    ) -> Result<HashSet<(String, String, String)>> {
        let rows = self
            .read_rows(
                stmt(
                    "SELECT i.external_id, u.username, a.answer FROM annotations a \
             JOIN items i ON i.id = a.item_id JOIN users u ON u.id = a.annotator_id \
             WHERE a.project_id = $1 AND a.source = 'import'",
                )
                .bind(project_id),
            )
            .await?;
        rows.iter()
            .map(|r| {
                let answer: Value = parse_json(&r.col::<String>("answer")?, "answer")?;
                Ok((
                    r.col("external_id")?,
                    r.col("username")?,
                    answer_key(&answer),
                ))
            })
            .collect()
    }
}

/// Where and when the rows of a plan are written.
struct PlanRows {
    project_id: ProjectId,
    schema_version_id: Id,
    now: &'static str,
}

/// Items, then annotators and their labels, then predictions — inside the caller's
/// transaction.
async fn write_plan(
    c: &mut Conn<'_>,
    rows: &PlanRows,
    items: &[PlannedItem],
    annotations: &[PlannedAnnotation],
    predictions: &[PlannedPrediction],
) -> Result<()> {
    insert_items(c, rows.project_id, items).await?;
    let ids = item_ids(c, rows.project_id).await?;
    let labelled = insert_annotations(c, rows, annotations, &ids).await?;
    complete_labelled(c, labelled).await?;
    insert_predictions(c, rows.project_id, predictions, &ids).await
}

async fn insert_items(
    c: &mut Conn<'_>,
    project_id: ProjectId,
    items: &[PlannedItem],
) -> Result<()> {
    for item in items {
        c.execute(
            stmt(
                "INSERT INTO items (project_id, external_id, item_type, title, creators, metadata, \
               text_fields, media_url, priority, is_gold, gold_answer) \
             VALUES ($1, $2, $3, $4, '[]', $5, $6, $7, 0, $8, $9)",
            )
            .bind(project_id)
            .bind(&item.external_id)
            .bind(item.item_type.as_str())
            .bind(&item.title)
            .bind(json_text(&item.metadata))
            .bind(json_text(&item.text))
            .bind(item.media_url.as_deref())
            .bind(item.gold.is_some() as i64)
            .bind(item.gold.as_ref().map(json_text)),
        )
        .await?;
    }
    Ok(())
}

/// Every item of the project by external id (the new ones included).
async fn item_ids(c: &mut Conn<'_>, project_id: ProjectId) -> Result<HashMap<String, Id>> {
    let mut ids: HashMap<String, Id> = HashMap::new();
    for row in c
        .fetch_all(stmt("SELECT id, external_id FROM items WHERE project_id = $1").bind(project_id))
        .await?
    {
        ids.insert(row.col("external_id")?, row.col("id")?);
    }
    Ok(ids)
}

fn item_id(ids: &HashMap<String, Id>, external: &str) -> Result<Id> {
    ids.get(external)
        .copied()
        .ok_or_else(|| StoreError::invalid(format!("no item {external:?} in this project")))
}

/// The annotations, their annotators enrolled on first sight; gives how many labels each
/// item got.
async fn insert_annotations(
    c: &mut Conn<'_>,
    rows: &PlanRows,
    annotations: &[PlannedAnnotation],
    ids: &HashMap<String, Id>,
) -> Result<BTreeMap<Id, i64>> {
    let now = rows.now;
    let mut users: HashMap<String, Id> = HashMap::new();
    let mut labelled: BTreeMap<Id, i64> = BTreeMap::new();
    for a in annotations {
        let user_id = match users.get(&a.annotator) {
            Some(id) => *id,
            None => {
                let id = enrol(c, rows.project_id, &a.annotator).await?;
                users.insert(a.annotator.clone(), id);
                id
            }
        };
        let item = item_id(ids, &a.item)?;
        c.execute(
            stmt(format!(
                "INSERT INTO annotations (project_id, item_id, annotator_id, answer, rationale, \
               time_spent_ms, schema_version_id, source, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'import', COALESCE($8, {now}))"
            ))
            .bind(rows.project_id)
            .bind(item)
            .bind(user_id)
            .bind(json_text(&a.answer))
            .bind(&a.rationale)
            .bind(a.time_spent_ms)
            .bind(rows.schema_version_id)
            .bind(a.created_at),
        )
        .await?;
        *labelled.entry(item).or_default() += 1;
    }
    Ok(labelled)
}

/// Imported labels complete their items, as a file import of annotations does.
async fn complete_labelled(c: &mut Conn<'_>, labelled: BTreeMap<Id, i64>) -> Result<()> {
    for (item, n) in labelled {
        c.execute(
            stmt(
                "UPDATE items SET labels_count = labels_count + $1, open = 0, \
               state = CASE WHEN state IN ('queued', 'in_progress') THEN 'labelled' ELSE state END \
             WHERE id = $2",
            )
            .bind(n)
            .bind(item),
        )
        .await?;
    }
    Ok(())
}

async fn insert_predictions(
    c: &mut Conn<'_>,
    project_id: ProjectId,
    predictions: &[PlannedPrediction],
    ids: &HashMap<String, Id>,
) -> Result<()> {
    for p in predictions {
        c.execute(
            stmt(
                "INSERT INTO model_predictions (project_id, model, item_id, label, score) \
             VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(project_id)
            .bind(&p.model)
            .bind(item_id(ids, &p.item)?)
            .bind(&p.label)
            .bind(p.score),
        )
        .await?;
    }
    Ok(())
}

/// The import moves every model's queue on, and goes in the log.
async fn record_import(
    c: &mut Conn<'_>,
    project_id: ProjectId,
    actor: Option<UserId>,
    audit_after: &Value,
) -> Result<()> {
    crate::queue::queue_reordered(c, project_id).await?;
    let event = AuditEvent {
        actor,
        project: Some(project_id),
        action: AuditAction::Import,
        entity: "foreign_export",
        entity_id: None,
        before: None,
        after: audit::snapshot(audit_after),
    };
    audit::record_in(c, event).await
}

/// The user's id, creating the account (no password) and the project membership if needed.
async fn enrol(c: &mut Conn<'_>, project_id: ProjectId, username: &str) -> Result<Id> {
    c.execute(
        stmt(
            "INSERT INTO users (username, display_name) SELECT $1, $2 \
         WHERE NOT EXISTS (SELECT 1 FROM users WHERE username = $3)",
        )
        .bind(username)
        .bind(username)
        .bind(username),
    )
    .await?;
    let id: Id = c
        .fetch_one(stmt("SELECT id FROM users WHERE username = $1").bind(username))
        .await?
        .col("id")?;
    c.execute(
        stmt(
            "INSERT INTO memberships (project_id, user_id, role) VALUES ($1, $2, 'annotator') \
         ON CONFLICT (project_id, user_id) DO NOTHING",
        )
        .bind(project_id)
        .bind(id),
    )
    .await?;
    Ok(id)
}
