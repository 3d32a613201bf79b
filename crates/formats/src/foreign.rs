//! Exports of other annotation tools, read as they are: a Label Studio JSON export (tasks
//! with `data`, `annotations[].result[]`, `predictions[]`) and a Toloka / Crowd-Kit TSV
//! (`INPUT:*`, `OUTPUT:*`, `GOLDEN:*`, `ASSIGNMENT:*` columns).
//!
//! The readers keep the source's own field names and values ([`SourceExport`]); turning them
//! into a project's questions and codes is the store's import, guided by a [`Mapping`].
//! Errors name the file, the task or line, and the field; a file with any bad record gives
//! nothing.

use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

use crate::items::parse_time;

/// Which tool an export comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    LabelStudio,
    Toloka,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::LabelStudio => "label_studio",
            Source::Toloka => "toloka",
        }
    }
}

impl std::str::FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "label_studio" | "labelstudio" => Ok(Source::LabelStudio),
            "toloka" | "crowd_kit" | "crowdkit" => Ok(Source::Toloka),
            other => Err(format!("unknown source '{other}' (label-studio, toloka)")),
        }
    }
}

/// The control a value came from; it decides how a value maps to a question's option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    /// Label Studio `choices`, a Toloka `OUTPUT:` column.
    Choices,
    /// Label Studio span `labels` (several per annotation, merged).
    Labels,
    /// Label Studio `rating`: the n-th step of an ordinal scale.
    Rating,
    /// Label Studio `textarea`: free text (a rationale unless mapped).
    Text,
}

/// The values one source field holds in one annotation (or prediction, or gold answer).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceValue {
    pub field: String,
    pub kind: ValueKind,
    pub values: Vec<String>,
}

/// A task (Label Studio) or an input row's item (Toloka).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceItem {
    /// Where it was read, for messages: `task 3 (id 17)` or `line 4`.
    pub place: String,
    pub id: String,
    /// Label Studio's `data`, Toloka's `INPUT:` columns without the prefix.
    pub data: Map<String, Value>,
    /// Toloka's `GOLDEN:` answers (empty when the item is not gold).
    pub gold: Vec<SourceValue>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceAnnotation {
    pub place: String,
    pub item: String,
    /// The source's user: Label Studio's `completed_by` (an email or an id), Toloka's worker id.
    pub user: String,
    pub values: Vec<SourceValue>,
    pub created_at: Option<i64>,
    pub time_spent_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourcePrediction {
    pub place: String,
    pub item: String,
    pub model: String,
    pub score: Option<f64>,
    pub values: Vec<SourceValue>,
}

/// Everything an export holds, in the source's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceExport {
    pub source: Source,
    pub file: String,
    pub items: Vec<SourceItem>,
    pub annotations: Vec<SourceAnnotation>,
    pub predictions: Vec<SourcePrediction>,
    /// Records left out on purpose (a cancelled annotation, a rejected assignment), with why.
    pub skipped: Vec<(String, String)>,
}

/// How source fields, values and users become the project's; anything not named here is
/// mapped automatically when the names match (see the store's import).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// The data field (Label Studio) or `INPUT:` name (Toloka) that is the item's id.
    #[serde(default)]
    pub item_id: Option<String>,
    /// The catalog item type of new items (`track`, `episode`, `audiobook`, `chapter`).
    #[serde(default)]
    pub item_type: Option<String>,
    /// The data field that is the item's title.
    #[serde(default)]
    pub title: Option<String>,
    /// Source field → question key, `rationale`, or `ignore`.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Source field → (source value → option code).
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// Source user → concord user name.
    #[serde(default)]
    pub users: BTreeMap<String, String>,
}

/// A file that could not be read: where, which field, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {place}: field {field}: {message}")]
pub struct ForeignError {
    pub file: String,
    pub place: String,
    pub field: String,
    pub message: String,
}

fn error(file: &str, place: &str, field: &str, message: impl Into<String>) -> ForeignError {
    ForeignError {
        file: file.to_owned(),
        place: place.to_owned(),
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Reads a mapping file (JSON).
pub fn read_mapping(file: &str, bytes: &[u8]) -> Result<Mapping, ForeignError> {
    serde_json::from_slice(bytes).map_err(|e| {
        error(
            file,
            &format!("line {}", e.line()),
            "mapping",
            e.to_string(),
        )
    })
}

/// Reads an export of `source`.
pub fn read_export(
    source: Source,
    file: &str,
    bytes: &[u8],
    mapping: &Mapping,
) -> Result<SourceExport, ForeignError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let export = match source {
        Source::LabelStudio => read_label_studio(file, bytes, mapping)?,
        Source::Toloka => read_toloka(file, bytes, mapping)?,
    };
    if export.items.is_empty() {
        return Err(error(file, "the file", "items", "no tasks in the file"));
    }
    Ok(export)
}

// ------------------------------------------------------------------ Label Studio

fn read_label_studio(
    file: &str,
    bytes: &[u8],
    mapping: &Mapping,
) -> Result<SourceExport, ForeignError> {
    let tasks: Vec<Value> = match serde_json::from_slice(bytes) {
        Ok(Value::Array(tasks)) => tasks,
        Ok(_) => {
            return Err(error(
                file,
                "the file",
                "tasks",
                "a Label Studio JSON export is an array of tasks",
            ));
        }
        Err(e) => {
            return Err(error(
                file,
                &format!("line {}", e.line()),
                "json",
                e.to_string(),
            ));
        }
    };
    let mut export = SourceExport {
        source: Source::LabelStudio,
        file: file.to_owned(),
        items: Vec::new(),
        annotations: Vec::new(),
        predictions: Vec::new(),
        skipped: Vec::new(),
    };
    let mut seen = std::collections::HashMap::new();
    for (n, task) in tasks.iter().enumerate() {
        let Value::Object(task) = task else {
            return Err(error(
                file,
                &format!("task {}", n + 1),
                "task",
                "is not an object",
            ));
        };
        let place = match task.get("id") {
            Some(id) => format!("task {} (id {})", n + 1, scalar_text(id)),
            None => format!("task {}", n + 1),
        };
        let data = match task.get("data") {
            Some(Value::Object(data)) => data.clone(),
            _ => return Err(error(file, &place, "data", "missing or not an object")),
        };
        let id = task_id(file, &place, task, &data, mapping)?;
        if let Some(first) = seen.insert(id.clone(), place.clone()) {
            return Err(error(
                file,
                &place,
                "id",
                format!("item {id:?} appears twice (first in {first})"),
            ));
        }
        for (k, annotation) in array(file, &place, task, "annotations")?.iter().enumerate() {
            let at = format!("{place}, annotation {}", k + 1);
            if annotation.get("was_cancelled").and_then(Value::as_bool) == Some(true) {
                export
                    .skipped
                    .push((at, "cancelled in Label Studio".into()));
                continue;
            }
            export
                .annotations
                .push(ls_annotation(file, &at, &id, annotation)?);
        }
        for (k, prediction) in array(file, &place, task, "predictions")?.iter().enumerate() {
            let at = format!("{place}, prediction {}", k + 1);
            export
                .predictions
                .push(ls_prediction(file, &at, &id, prediction)?);
        }
        export.items.push(SourceItem {
            place,
            id,
            data,
            gold: Vec::new(),
        });
    }
    Ok(export)
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The item id: the mapping's data field, else `data.id` / `data.item_id`, else the task id.
fn task_id(
    file: &str,
    place: &str,
    task: &Map<String, Value>,
    data: &Map<String, Value>,
    mapping: &Mapping,
) -> Result<String, ForeignError> {
    let candidate = match &mapping.item_id {
        Some(field) => Some((
            field.as_str(),
            data.get(field).ok_or_else(|| {
                error(
                    file,
                    place,
                    &format!("data.{field}"),
                    "missing (the mapping's item_id)",
                )
            })?,
        )),
        None => ["id", "item_id"]
            .into_iter()
            .find_map(|k| data.get(k).map(|v| (k, v)))
            .or_else(|| task.get("id").map(|v| ("id", v))),
    };
    let Some((field, value)) = candidate else {
        return Err(error(file, place, "id", "the task has no id"));
    };
    let id = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    if id.is_empty() {
        return Err(error(
            file,
            place,
            field,
            "the item id is empty or not text",
        ));
    }
    Ok(id)
}

fn array<'a>(
    file: &str,
    place: &str,
    object: &'a Map<String, Value>,
    key: &str,
) -> Result<&'a [Value], ForeignError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(values)) => Ok(values),
        Some(_) => Err(error(file, place, key, "is not a list")),
    }
}

fn ls_annotation(
    file: &str,
    place: &str,
    item: &str,
    annotation: &Value,
) -> Result<SourceAnnotation, ForeignError> {
    let Value::Object(annotation) = annotation else {
        return Err(error(file, place, "annotation", "is not an object"));
    };
    let user = match annotation.get("completed_by") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        Some(Value::Object(user)) => match (user.get("email"), user.get("id")) {
            (Some(Value::String(email)), _) if !email.is_empty() => email.clone(),
            (_, Some(Value::Number(id))) => id.to_string(),
            _ => {
                return Err(error(
                    file,
                    place,
                    "completed_by",
                    "has neither email nor id",
                ));
            }
        },
        _ => return Err(error(file, place, "completed_by", "missing")),
    };
    let created_at = match annotation.get("created_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(parse_time(s.trim()).ok_or_else(|| {
            error(
                file,
                place,
                "created_at",
                format!("{s:?} is not a UTC time"),
            )
        })?),
        Some(_) => return Err(error(file, place, "created_at", "is not a time")),
    };
    let time_spent_ms = match annotation.get("lead_time") {
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|s| *s >= 0.0)
            .map(|s| (s * 1000.0).round() as i64),
        _ => None,
    };
    Ok(SourceAnnotation {
        place: place.to_owned(),
        item: item.to_owned(),
        user,
        values: ls_results(file, place, annotation)?,
        created_at,
        time_spent_ms,
    })
}

fn ls_prediction(
    file: &str,
    place: &str,
    item: &str,
    prediction: &Value,
) -> Result<SourcePrediction, ForeignError> {
    let Value::Object(prediction) = prediction else {
        return Err(error(file, place, "prediction", "is not an object"));
    };
    let model = match prediction.get("model_version") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        _ => "label-studio".to_owned(),
    };
    let score = match prediction.get("score") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(_) => return Err(error(file, place, "score", "is not a number")),
    };
    Ok(SourcePrediction {
        place: place.to_owned(),
        item: item.to_owned(),
        model,
        score,
        values: ls_results(file, place, prediction)?,
    })
}

/// `result[]`: each region's `from_name`, `type` and values, merged per field.
fn ls_results(
    file: &str,
    place: &str,
    object: &Map<String, Value>,
) -> Result<Vec<SourceValue>, ForeignError> {
    let mut values: Vec<SourceValue> = Vec::new();
    for (r, result) in array(file, place, object, "result")?.iter().enumerate() {
        let field_path = format!("result[{r}]");
        let Some(field) = result.get("from_name").and_then(Value::as_str) else {
            return Err(error(
                file,
                place,
                &format!("{field_path}.from_name"),
                "missing",
            ));
        };
        let kind_name = result.get("type").and_then(Value::as_str).unwrap_or("");
        let value = result.get("value").cloned().unwrap_or(Value::Null);
        let (kind, found) = match kind_name {
            "choices" => (ValueKind::Choices, texts(value.get("choices"))),
            "taxonomy" => (ValueKind::Choices, taxonomy(value.get("taxonomy"))),
            "rating" => (
                ValueKind::Rating,
                value.get("rating").map(|v| vec![scalar_text(v)]),
            ),
            "textarea" => (ValueKind::Text, texts(value.get("text"))),
            // Span labels of any media: `labels`, `rectanglelabels`, `hypertextlabels`, …
            t if t.ends_with("labels") => (ValueKind::Labels, texts(value.get(t))),
            other => {
                return Err(error(
                    file,
                    place,
                    &format!("{field_path}.type"),
                    format!(
                        "result type {other:?} is not read (choices, labels, rating, textarea)"
                    ),
                ));
            }
        };
        let Some(found) = found else {
            return Err(error(
                file,
                place,
                &format!("{field_path}.value"),
                format!("a {kind_name} result without its values"),
            ));
        };
        match values.iter_mut().find(|v| v.field == field) {
            Some(existing) => existing.values.extend(found),
            None => values.push(SourceValue {
                field: field.to_owned(),
                kind,
                values: found,
            }),
        }
    }
    Ok(values)
}

fn texts(value: Option<&Value>) -> Option<Vec<String>> {
    match value? {
        Value::Array(values) => values
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Value::String(s) => Some(vec![s.clone()]),
        _ => None,
    }
}

/// A taxonomy answer is a list of paths; the leaf is the value.
fn taxonomy(value: Option<&Value>) -> Option<Vec<String>> {
    value?
        .as_array()?
        .iter()
        .map(|path| path.as_array()?.last()?.as_str().map(str::to_owned))
        .collect()
}

// ------------------------------------------------------------------ Toloka / Crowd-Kit TSV

const ITEM_ID_NAMES: [&str; 5] = ["id", "item", "item_id", "task_id", "task"];

/// The columns of a Toloka TSV, by role.
struct TolokaColumns {
    input: Vec<(usize, String)>,
    output: Vec<(usize, String)>,
    golden: Vec<(usize, String)>,
    item: usize,
    worker: usize,
    status: Option<usize>,
    started: Option<usize>,
    submitted: Option<usize>,
}

fn toloka_columns(
    file: &str,
    header: &[String],
    mapping: &Mapping,
) -> Result<TolokaColumns, ForeignError> {
    let mut columns = TolokaColumns {
        input: Vec::new(),
        output: Vec::new(),
        golden: Vec::new(),
        item: 0,
        worker: usize::MAX,
        status: None,
        started: None,
        submitted: None,
    };
    for (i, name) in header.iter().enumerate() {
        let name = name.trim();
        let Some((prefix, rest)) = name.split_once(':') else {
            continue;
        };
        let rest = rest.to_owned();
        match prefix {
            "INPUT" => columns.input.push((i, rest)),
            "OUTPUT" => columns.output.push((i, rest)),
            "GOLDEN" => columns.golden.push((i, rest)),
            "ASSIGNMENT" => match rest.as_str() {
                "worker_id" => columns.worker = i,
                "status" => columns.status = Some(i),
                "started" => columns.started = Some(i),
                "submitted" => columns.submitted = Some(i),
                _ => {}
            },
            _ => {}
        }
    }
    let header_error = |field: &str, message: String| error(file, "line 1", field, message);
    if columns.worker == usize::MAX {
        return Err(header_error(
            "ASSIGNMENT:worker_id",
            "missing: every row needs the worker who answered".into(),
        ));
    }
    if columns.output.is_empty() {
        return Err(header_error(
            "OUTPUT",
            "no OUTPUT: column, so no answers".into(),
        ));
    }
    columns.item = match &mapping.item_id {
        Some(name) => columns
            .input
            .iter()
            .find(|(_, n)| n == name)
            .map(|(i, _)| *i)
            .ok_or_else(|| {
                header_error(
                    &format!("INPUT:{name}"),
                    "missing (the mapping's item_id)".into(),
                )
            })?,
        None => match ITEM_ID_NAMES
            .iter()
            .find_map(|want| columns.input.iter().find(|(_, n)| n == want))
        {
            Some((i, _)) => *i,
            None if columns.input.len() == 1 => columns.input[0].0,
            None => {
                return Err(header_error(
                    "INPUT",
                    format!(
                        "no INPUT: column is the item's id ({}); name one with the mapping's item_id",
                        ITEM_ID_NAMES.join(", ")
                    ),
                ));
            }
        },
    };
    Ok(columns)
}

fn read_toloka(file: &str, bytes: &[u8], mapping: &Mapping) -> Result<SourceExport, ForeignError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .has_headers(false)
        .quoting(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = reader.records();
    let header: Vec<String> = match records.next() {
        Some(Ok(record)) => record.iter().map(str::to_owned).collect(),
        Some(Err(e)) => return Err(error(file, "line 1", "header", e.to_string())),
        None => return Err(error(file, "line 1", "header", "the file is empty")),
    };
    let columns = toloka_columns(file, &header, mapping)?;
    let mut export = SourceExport {
        source: Source::Toloka,
        file: file.to_owned(),
        items: Vec::new(),
        annotations: Vec::new(),
        predictions: Vec::new(),
        skipped: Vec::new(),
    };
    let mut item_index = std::collections::HashMap::new();
    for (n, record) in records.enumerate() {
        let line = n as u64 + 2;
        let place = format!("line {line}");
        let record = record.map_err(|e| error(file, &place, "row", e.to_string()))?;
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if record.len() != header.len() {
            return Err(error(
                file,
                &place,
                "row",
                format!("{} fields, the header has {}", record.len(), header.len()),
            ));
        }
        let cell = |i: usize| record.get(i).unwrap_or("").trim();
        // Only submitted or accepted assignments carry an answer that counts.
        if let Some(status) = columns.status.map(&cell)
            && ["rejected", "skipped", "expired"]
                .iter()
                .any(|s| status.eq_ignore_ascii_case(s))
        {
            let reason = format!("assignment {} in Toloka", status.to_ascii_lowercase());
            export.skipped.push((place, reason));
            continue;
        }
        let id = cell(columns.item).to_owned();
        if id.is_empty() {
            return Err(error(
                file,
                &place,
                &header[columns.item],
                "the item id is empty",
            ));
        }
        let worker = cell(columns.worker).to_owned();
        if worker.is_empty() {
            return Err(error(file, &place, "ASSIGNMENT:worker_id", "is empty"));
        }
        let gold = cells_values(&columns.golden, &cell);
        match item_index.get(&id) {
            None => {
                item_index.insert(id.clone(), export.items.len());
                let data = columns
                    .input
                    .iter()
                    .map(|(i, name)| (name.clone(), Value::String(cell(*i).to_owned())))
                    .collect();
                export.items.push(SourceItem {
                    place: place.clone(),
                    id: id.clone(),
                    data,
                    gold,
                });
            }
            Some(&k) => {
                let item = &mut export.items[k];
                if item.gold.is_empty() {
                    item.gold = gold;
                }
            }
        }
        let time = |i: Option<usize>, name: &str| -> Result<Option<i64>, ForeignError> {
            match i.map(&cell).filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(text) => parse_time(text).map(Some).ok_or_else(|| {
                    error(
                        file,
                        &place,
                        &format!("ASSIGNMENT:{name}"),
                        format!("{text:?} is not a UTC time"),
                    )
                }),
            }
        };
        let started = time(columns.started, "started")?;
        let submitted = time(columns.submitted, "submitted")?;
        export.annotations.push(SourceAnnotation {
            place: place.clone(),
            item: id,
            user: worker,
            values: cells_values(&columns.output, &cell),
            created_at: submitted,
            time_spent_ms: match (started, submitted) {
                (Some(a), Some(b)) if b >= a => Some(b - a),
                _ => None,
            },
        });
    }
    Ok(export)
}

/// Non-empty cells as source values; a JSON list cell holds several values.
fn cells_values<'a>(
    columns: &[(usize, String)],
    cell: &impl Fn(usize) -> &'a str,
) -> Vec<SourceValue> {
    columns
        .iter()
        .filter_map(|(i, name)| {
            let text = cell(*i);
            if text.is_empty() {
                return None;
            }
            let values = match serde_json::from_str::<Vec<String>>(text) {
                Ok(list) if text.starts_with('[') => list,
                _ => vec![text.to_owned()],
            };
            Some(SourceValue {
                field: name.clone(),
                kind: ValueKind::Choices,
                values,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/foreign")
            .join(name);
        std::fs::read(path).unwrap()
    }

    #[test]
    fn a_label_studio_export_reads_its_tasks_annotations_and_predictions() {
        let export = read_export(
            Source::LabelStudio,
            "ls.json",
            &fixture("label_studio.json"),
            &Mapping::default(),
        )
        .unwrap();
        let ids: Vec<&str> = export.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["trk-001", "trk-002", "trk-003"]);
        assert_eq!(export.annotations.len(), 5);
        assert_eq!(export.skipped.len(), 1, "the cancelled annotation");
        let first = &export.annotations[0];
        assert_eq!(first.user, "ana@example.com");
        assert_eq!(first.time_spent_ms, Some(12_500));
        assert_eq!(first.created_at, Some(1_705_314_030_000));
        let kinds: Vec<(&str, ValueKind)> = first
            .values
            .iter()
            .map(|v| (v.field.as_str(), v.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("decision", ValueKind::Choices),
                ("category", ValueKind::Labels),
                ("severity", ValueKind::Rating),
                ("comment", ValueKind::Text),
            ]
        );
        // Two spans of the same labels field merge into one value list.
        assert_eq!(
            first.values[1].values,
            [
                "Hate against protected groups",
                "Targeted harassment, doxxing"
            ]
        );
        assert_eq!(first.values[2].values, ["4"]);
        // completed_by as a bare id.
        assert_eq!(export.annotations[1].user, "7");
        assert_eq!(export.predictions.len(), 1);
        assert_eq!(export.predictions[0].model, "clf-v2");
        assert_eq!(export.predictions[0].score, Some(0.91));
    }

    #[test]
    fn a_bad_label_studio_export_names_the_task_and_field() {
        let bad = br#"[{"id": 1, "data": {"id": "a"}, "annotations": []},
            {"id": 2, "data": {"id": "b"}, "annotations": [{"completed_by": 3, "result": [
              {"from_name": "decision", "type": "labels", "value": {}}]}]}]"#;
        let err =
            read_export(Source::LabelStudio, "ls.json", bad, &Mapping::default()).unwrap_err();
        assert_eq!(err.place, "task 2 (id 2), annotation 1");
        assert_eq!(err.field, "result[0].value");
        let unknown = br#"[{"id": 1, "data": {"id": "a"}, "annotations": [{"completed_by": 3,
            "result": [{"from_name": "box", "type": "videorectangle", "value": {}}]}]}]"#;
        let err =
            read_export(Source::LabelStudio, "ls.json", unknown, &Mapping::default()).unwrap_err();
        assert_eq!(err.field, "result[0].type");
        assert!(
            err.message.contains("\"videorectangle\" is not read"),
            "{err}"
        );
        let missing_user = br#"[{"id": 1, "data": {"id": "a"}, "annotations": [{"result": []}]}]"#;
        let err = read_export(
            Source::LabelStudio,
            "ls.json",
            missing_user,
            &Mapping::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "ls.json: task 1 (id 1), annotation 1: field completed_by: missing"
        );
        let twice = br#"[{"id": 1, "data": {"id": "a"}}, {"id": 2, "data": {"id": "a"}}]"#;
        let err =
            read_export(Source::LabelStudio, "ls.json", twice, &Mapping::default()).unwrap_err();
        assert!(err.message.contains("first in task 1"), "{err}");
        let not_json = b"[{\"id\": 1,\n \"data\": }]";
        let err = read_export(
            Source::LabelStudio,
            "ls.json",
            not_json,
            &Mapping::default(),
        )
        .unwrap_err();
        assert_eq!(err.place, "line 2");
    }

    #[test]
    fn a_toloka_tsv_reads_inputs_outputs_golden_answers_and_workers() {
        let export = read_export(
            Source::Toloka,
            "toloka.tsv",
            &fixture("toloka.tsv"),
            &Mapping::default(),
        )
        .unwrap();
        let ids: Vec<&str> = export.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["ep-101", "ep-102", "ep-103"]);
        assert_eq!(export.items[0].data["title"], "Morning news");
        let gold = &export.items[2].gold;
        assert_eq!(gold.len(), 2, "{gold:?}");
        assert_eq!(gold[0].values, ["VIOLATING"]);
        assert!(export.items[0].gold.is_empty());
        assert_eq!(export.annotations.len(), 6);
        assert_eq!(export.skipped.len(), 1, "the rejected assignment");
        let a = &export.annotations[0];
        assert_eq!(a.user, "w1f3a");
        assert_eq!(a.values[0].field, "decision");
        assert_eq!(a.time_spent_ms, Some(42_000));
    }

    #[test]
    fn a_bad_toloka_tsv_names_the_line_and_column() {
        let no_worker = b"INPUT:id\tOUTPUT:decision\nx\tVIOLATING\n";
        let err = read_export(Source::Toloka, "t.tsv", no_worker, &Mapping::default()).unwrap_err();
        assert_eq!(
            (err.place.as_str(), err.field.as_str()),
            ("line 1", "ASSIGNMENT:worker_id")
        );
        let ragged =
            b"INPUT:id\tOUTPUT:decision\tASSIGNMENT:worker_id\nx\tVIOLATING\tw1\ny\tVIOLATING\n";
        let err = read_export(Source::Toloka, "t.tsv", ragged, &Mapping::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.tsv: line 3: field row: 2 fields, the header has 3"
        );
        let bad_time = b"INPUT:id\tOUTPUT:decision\tASSIGNMENT:worker_id\tASSIGNMENT:submitted\nx\tV\tw1\tyesterday\n";
        let err = read_export(Source::Toloka, "t.tsv", bad_time, &Mapping::default()).unwrap_err();
        assert_eq!(
            (err.place.as_str(), err.field.as_str()),
            ("line 2", "ASSIGNMENT:submitted")
        );
        let which_id = b"INPUT:a\tINPUT:b\tOUTPUT:decision\tASSIGNMENT:worker_id\nx\ty\tV\tw1\n";
        let err = read_export(Source::Toloka, "t.tsv", which_id, &Mapping::default()).unwrap_err();
        assert!(err.message.contains("item_id"), "{err}");
        let mapping = Mapping {
            item_id: Some("b".into()),
            ..Mapping::default()
        };
        let export = read_export(Source::Toloka, "t.tsv", which_id, &mapping).unwrap();
        assert_eq!(export.items[0].id, "y");
    }

    #[test]
    fn a_mapping_file_refuses_unknown_keys() {
        let err = read_mapping("m.json", br#"{"feilds": {}}"#).unwrap_err();
        assert!(err.message.contains("feilds"), "{err}");
        let mapping = read_mapping(
            "m.json",
            br#"{"item_type": "track", "fields": {"comment": "rationale"}, "users": {"7": "ben"}}"#,
        )
        .unwrap();
        assert_eq!(mapping.users["7"], "ben");
    }
}
