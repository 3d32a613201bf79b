//! Catalog items and migrated annotations: streaming readers (CSV, JSONL) with errors that
//! name file, line and field, and the writers used by export.
//!
//! JSONL items follow the catalog item model (`id`, `item_type`, `title`, `creators`,
//! `text`, `preview_url`, `source_ids`, …); keys that are not first-class columns are kept in
//! `metadata`. CSV items have one column per field; list fields accept `;`-separated values
//! or JSON, and any column concord does not know lands in `metadata.extra`.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::fmt;
use std::io::{BufRead, Read, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemType {
    Track,
    Episode,
    Audiobook,
    Chapter,
}

pub fn item_types() -> [&'static str; 4] {
    ["track", "episode", "audiobook", "chapter"]
}

impl ItemType {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemType::Track => "track",
            ItemType::Episode => "episode",
            ItemType::Audiobook => "audiobook",
            ItemType::Chapter => "chapter",
        }
    }
    pub fn parse(text: &str) -> Option<ItemType> {
        match text.trim().to_ascii_lowercase().as_str() {
            "track" => Some(ItemType::Track),
            "episode" => Some(ItemType::Episode),
            "audiobook" => Some(ItemType::Audiobook),
            "chapter" => Some(ItemType::Chapter),
            _ => None,
        }
    }
}

/// One catalog item as read from a file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CatalogItem {
    pub external_id: String,
    pub item_type: ItemType,
    pub title: String,
    pub creators: Value,
    pub metadata: Value,
    pub text: Value,
    pub media_url: Option<String>,
    pub priority: i64,
    pub gold_answer: Option<Value>,
}

/// An existing annotation from another tool. `answer` maps question keys to the raw value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnnotationRecord {
    pub item: String,
    pub annotator: String,
    pub answer: Map<String, Value>,
    pub rationale: String,
    pub time_spent_ms: Option<i64>,
    /// The guideline version (number) the label was given under, when the source knows it.
    pub guideline_version: Option<i64>,
    /// When the label was given (ms since the epoch), when the source knows it.
    pub created_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    Csv,
    Jsonl,
}

impl RecordFormat {
    /// From a file name or a media type; CSV unless it says JSON.
    pub fn guess(name: &str) -> RecordFormat {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".jsonl")
            || lower.ends_with(".ndjson")
            || lower.ends_with(".json")
            || lower.contains("json")
        {
            RecordFormat::Jsonl
        } else {
            RecordFormat::Csv
        }
    }
}

/// A record that could not be read: where, which field, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordError {
    pub file: String,
    pub line: u64,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(
                f,
                "{}:{}: field {}: {}",
                self.file, self.line, field, self.message
            ),
            None => write!(f, "{}:{}: {}", self.file, self.line, self.message),
        }
    }
}

impl std::error::Error for RecordError {}

const MAX_ID_LEN: usize = 200;

/// Normalises an ISRC (strip a leading `ISRC`, spaces and hyphens; upper-case) and checks
/// its shape `CC OOO YY SSSSS`. There is no check digit.
pub fn normalise_isrc(raw: &str) -> Option<String> {
    let mut code: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .to_ascii_uppercase();
    if let Some(rest) = code.strip_prefix("ISRC") {
        code = rest.to_owned();
    }
    let b = code.as_bytes();
    let ok = b.len() == 12
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..5]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && b[5..].iter().all(u8::is_ascii_digit);
    ok.then_some(code)
}

struct Ctx<'a> {
    file: &'a str,
    line: u64,
}

impl Ctx<'_> {
    fn err(&self, field: Option<&str>, message: impl Into<String>) -> RecordError {
        RecordError {
            file: self.file.to_owned(),
            line: self.line,
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }
}

fn check_url(ctx: &Ctx, field: &str, url: &str) -> Result<(), RecordError> {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://"))
        || url.contains(char::is_whitespace)
    {
        return Err(ctx.err(Some(field), format!("{url:?} is not an http(s) URL")));
    }
    Ok(())
}

/// Builds an item from a JSON object (a JSONL line, or a CSV row converted to one).
fn item_from_object(ctx: &Ctx, mut object: Map<String, Value>) -> Result<CatalogItem, RecordError> {
    let id_key = if object.contains_key("id") {
        "id"
    } else {
        "external_id"
    };
    let external_id = match object.remove(id_key) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(_)) => return Err(ctx.err(Some("id"), "is empty")),
        Some(_) => return Err(ctx.err(Some("id"), "must be a string")),
        None => return Err(ctx.err(Some("id"), "is missing")),
    };
    object.remove("external_id");
    if external_id.len() > MAX_ID_LEN {
        return Err(ctx.err(
            Some("id"),
            format!("is longer than {MAX_ID_LEN} characters"),
        ));
    }
    let item_type = match object.remove("item_type") {
        Some(Value::String(s)) => ItemType::parse(&s).ok_or_else(|| {
            ctx.err(
                Some("item_type"),
                format!("{s:?} is not one of track, episode, audiobook, chapter"),
            )
        })?,
        Some(_) => return Err(ctx.err(Some("item_type"), "must be a string")),
        None => return Err(ctx.err(Some("item_type"), "is missing")),
    };
    let title = match object.remove("title") {
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        Some(Value::String(_)) | None => return Err(ctx.err(Some("title"), "is missing or empty")),
        Some(_) => return Err(ctx.err(Some("title"), "must be a string")),
    };
    let creators = match object.remove("creators") {
        None | Some(Value::Null) => Value::Array(vec![]),
        Some(Value::Array(list)) => {
            for (i, c) in list.iter().enumerate() {
                let ok = c
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| !n.is_empty());
                if !ok {
                    return Err(ctx.err(
                        Some("creators"),
                        format!("creator {} needs a non-empty \"name\"", i + 1),
                    ));
                }
            }
            Value::Array(list)
        }
        Some(_) => return Err(ctx.err(Some("creators"), "must be a list of {name, role}")),
    };
    let text = match object.remove("text") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::Object(text)) => {
            check_transcript(ctx, text.get("transcript"))?;
            Value::Object(text)
        }
        Some(_) => return Err(ctx.err(Some("text"), "must be an object")),
    };
    let media_url = match object
        .remove("preview_url")
        .or_else(|| object.remove("media_url"))
    {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => {
            check_url(ctx, "preview_url", &s)?;
            Some(s)
        }
        Some(_) => return Err(ctx.err(Some("preview_url"), "must be a string")),
    };
    object.remove("media_url");
    let priority = match object.remove("priority") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| ctx.err(Some("priority"), "must be a whole number"))?,
        Some(Value::String(s)) if s.trim().is_empty() => 0,
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| ctx.err(Some("priority"), format!("{s:?} is not a whole number")))?,
        Some(_) => return Err(ctx.err(Some("priority"), "must be a whole number")),
    };
    let gold_answer = match object
        .remove("gold")
        .or_else(|| object.remove("gold_answer"))
    {
        None | Some(Value::Null) => None,
        Some(Value::Object(answer)) if answer.is_empty() => None,
        Some(Value::Object(answer)) => Some(Value::Object(answer)),
        Some(_) => return Err(ctx.err(Some("gold"), "must be an answer object")),
    };
    if let Some(markets) = object.get("markets") {
        let ok = markets.as_array().is_some_and(|list| {
            list.iter().all(|m| {
                m.as_str()
                    .is_some_and(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
            })
        });
        if !ok {
            return Err(ctx.err(
                Some("markets"),
                "must be a list of ISO 3166-1 alpha-2 codes such as \"GB\"",
            ));
        }
    }
    if let Some(explicit) = object.get("explicit") {
        let ok = matches!(
            explicit.as_str(),
            Some("explicit" | "edited" | "not_explicit" | "unknown")
        );
        if !ok {
            return Err(ctx.err(
                Some("explicit"),
                "must be explicit, edited, not_explicit or unknown",
            ));
        }
    }
    if let Some(Value::Object(ids)) = object.get_mut("source_ids")
        && let Some(raw) = ids.get("isrc")
    {
        let raw = raw.as_str().unwrap_or_default().to_owned();
        let code = normalise_isrc(&raw).ok_or_else(|| {
            ctx.err(
                Some("source_ids.isrc"),
                format!("{raw:?} is not a well-formed ISRC (CC-OOO-YY-SSSSS)"),
            )
        })?;
        ids.insert("isrc".into(), Value::String(code));
    }
    if let Some(cover) = object.get("cover_art_ref").and_then(Value::as_str)
        && !cover.is_empty()
    {
        check_url(ctx, "cover_art_ref", cover)?;
    }
    Ok(CatalogItem {
        external_id,
        item_type,
        title,
        creators,
        metadata: Value::Object(object),
        text,
        media_url,
        priority,
        gold_answer,
    })
}

fn check_transcript(ctx: &Ctx, transcript: Option<&Value>) -> Result<(), RecordError> {
    let Some(transcript) = transcript else {
        return Ok(());
    };
    if transcript.is_null() {
        return Ok(());
    }
    let Some(segments) = transcript.as_array() else {
        return Err(ctx.err(Some("text.transcript"), "must be a list of segments"));
    };
    let mut previous_start = i64::MIN;
    for (i, seg) in segments.iter().enumerate() {
        let start = seg.get("start_ms").and_then(Value::as_i64);
        let end = seg.get("end_ms").and_then(Value::as_i64);
        let text = seg.get("text").and_then(Value::as_str);
        match (start, end, text) {
            (Some(s), Some(e), Some(_)) if s < e && s >= previous_start => previous_start = s,
            (Some(_), Some(_), Some(_)) => {
                return Err(ctx.err(
                    Some("text.transcript"),
                    format!(
                        "segment {} is out of order or has start_ms >= end_ms",
                        i + 1
                    ),
                ));
            }
            _ => {
                return Err(ctx.err(
                    Some("text.transcript"),
                    format!("segment {} needs start_ms, end_ms and text", i + 1),
                ));
            }
        }
    }
    Ok(())
}

/// Reads items one at a time; memory does not grow with the file.
pub struct ItemReader<R: Read> {
    file: String,
    inner: Inner<R>,
}

enum Inner<R: Read> {
    Jsonl {
        lines: std::io::BufReader<R>,
        line: u64,
        buf: String,
    },
    Csv {
        reader: csv::Reader<R>,
        headers: Vec<String>,
        record: csv::StringRecord,
    },
}

impl<R: Read> ItemReader<R> {
    pub fn new(
        file: impl Into<String>,
        input: R,
        format: RecordFormat,
    ) -> Result<Self, RecordError> {
        let file = file.into();
        let inner = match format {
            RecordFormat::Jsonl => Inner::Jsonl {
                lines: std::io::BufReader::with_capacity(1 << 16, input),
                line: 0,
                buf: String::new(),
            },
            RecordFormat::Csv => {
                let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(input);
                let headers = reader
                    .headers()
                    .map_err(|e| csv_error(&file, e))?
                    .iter()
                    .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
                    .collect::<Vec<_>>();
                let headers = flatten_nested_headers(&file, headers)?;
                if !headers.iter().any(|h| h == "id" || h == "external_id") {
                    return Err(RecordError {
                        file,
                        line: 1,
                        field: Some("id".into()),
                        message: "the header has no id (or external_id) column".into(),
                    });
                }
                Inner::Csv {
                    reader,
                    headers,
                    record: csv::StringRecord::new(),
                }
            }
        };
        Ok(ItemReader { file, inner })
    }
}

/// The text fields and source ids a CSV column may name by their JSONL path.
const NESTED_COLUMNS: [(&str, &[&str]); 2] = [
    ("text", &["description", "lyrics_excerpt", "transcript"]),
    ("source_ids", &["isrc", "upc", "ean", "rss_guid", "isbn"]),
];

/// CSV columns named like the JSONL paths (`text.lyrics_excerpt`, `source_ids.isrc`) are the
/// same fields as their short names. A dotted name that is no such path, or a field given
/// twice, is refused naming the column: it would otherwise land in metadata unnoticed.
fn flatten_nested_headers(file: &str, headers: Vec<String>) -> Result<Vec<String>, RecordError> {
    let refuse = |column: &str, message: String| RecordError {
        file: file.to_owned(),
        line: 1,
        field: Some(column.to_owned()),
        message,
    };
    let mut flat: Vec<String> = Vec::with_capacity(headers.len());
    for header in headers {
        let name = match header.split_once('.') {
            None => header.clone(),
            Some((parent, field)) => {
                let known = NESTED_COLUMNS
                    .iter()
                    .find(|(p, _)| *p == parent)
                    .filter(|(_, fields)| fields.contains(&field));
                if known.is_none() {
                    let paths: Vec<String> = NESTED_COLUMNS
                        .iter()
                        .flat_map(|(p, fields)| fields.iter().map(move |f| format!("{p}.{f}")))
                        .collect();
                    return Err(refuse(
                        &header,
                        format!(
                            "column {header:?} is not a field of a catalog item; nested \
                             columns are {}",
                            paths.join(", ")
                        ),
                    ));
                }
                field.to_owned()
            }
        };
        if !name.is_empty() && flat.contains(&name) {
            return Err(refuse(
                &header,
                format!("column {header:?} gives {name:?} a second time"),
            ));
        }
        flat.push(name);
    }
    Ok(flat)
}

fn csv_error(file: &str, e: csv::Error) -> RecordError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("the row has {len} fields but the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "the row is not valid UTF-8".to_owned(),
        _ => e.to_string(),
    };
    RecordError {
        file: file.to_owned(),
        line,
        field: None,
        message,
    }
}

/// `Name (role); Other Name (role)` or a JSON list.
fn parse_creators(ctx: &Ctx, text: &str) -> Result<Value, RecordError> {
    let text = text.trim();
    if text.starts_with('[') {
        return serde_json::from_str(text)
            .map_err(|e| ctx.err(Some("creators"), format!("is not a JSON list: {e}")));
    }
    let mut list = Vec::new();
    for part in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, role) = match part.rsplit_once('(') {
            Some((name, role)) if role.ends_with(')') => {
                (name.trim(), role.trim_end_matches(')').trim())
            }
            _ => (part, "artist"),
        };
        list.push(json!({"name": name, "role": role}));
    }
    Ok(Value::Array(list))
}

fn csv_row_to_object(
    ctx: &Ctx,
    headers: &[String],
    record: &csv::StringRecord,
) -> Result<Map<String, Value>, RecordError> {
    let mut object = Map::new();
    let mut text = Map::new();
    let mut source_ids = Map::new();
    let mut extra = Map::new();
    for (header, value) in headers.iter().zip(record.iter()) {
        if value.is_empty() {
            continue;
        }
        let h = header.as_str();
        match h {
            "id" | "external_id" | "item_type" | "title" | "language" | "explicit"
            | "release_date" | "preview_url" | "media_url" | "cover_art_ref" | "priority" => {
                object.insert(h.to_owned(), Value::String(value.to_owned()));
            }
            "creators" => {
                object.insert("creators".into(), parse_creators(ctx, value)?);
            }
            "markets" => {
                let list = value
                    .split([';', ',', ' ', '|'])
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_owned()))
                    .collect();
                object.insert("markets".into(), Value::Array(list));
            }
            "duration_ms" => {
                let n: u64 = value.trim().parse().map_err(|_| {
                    ctx.err(
                        Some("duration_ms"),
                        format!("{value:?} is not a whole number"),
                    )
                })?;
                object.insert("duration_ms".into(), Value::from(n));
            }
            "description" | "lyrics_excerpt" => {
                text.insert(h.to_owned(), Value::String(value.to_owned()));
            }
            "transcript" => {
                let parsed: Value = serde_json::from_str(value).map_err(|e| {
                    ctx.err(
                        Some("transcript"),
                        format!("is not a JSON list of segments: {e}"),
                    )
                })?;
                text.insert("transcript".into(), parsed);
            }
            "isrc" | "upc" | "ean" | "rss_guid" | "isbn" => {
                source_ids.insert(h.to_owned(), Value::String(value.to_owned()));
            }
            "gold" | "gold_answer" | "metadata" | "parent" => {
                let parsed: Value = serde_json::from_str(value)
                    .map_err(|e| ctx.err(Some(h), format!("is not valid JSON: {e}")))?;
                if h == "metadata" {
                    let Value::Object(map) = parsed else {
                        return Err(ctx.err(Some("metadata"), "must be a JSON object"));
                    };
                    for (k, v) in map {
                        object.entry(k).or_insert(v);
                    }
                } else {
                    object.insert(h.to_owned(), parsed);
                }
            }
            _ => {
                extra.insert(h.to_owned(), Value::String(value.to_owned()));
            }
        }
    }
    if !text.is_empty() {
        object.insert("text".into(), Value::Object(text));
    }
    if !source_ids.is_empty() {
        object.insert("source_ids".into(), Value::Object(source_ids));
    }
    if !extra.is_empty() {
        object.insert("extra".into(), Value::Object(extra));
    }
    Ok(object)
}

impl<R: Read> ItemReader<R> {
    /// Reads up to `n` records and parses them on all cores, in file order. An empty batch
    /// means the end of the file; an error is the earliest bad line of the batch.
    pub fn next_batch(&mut self, n: usize) -> Result<Vec<(u64, CatalogItem)>, RecordError> {
        self.next_batch_with(n, |line, item| (line, item))
    }

    /// [`ItemReader::next_batch`], with `prepare` applied to each item on the same parallel
    /// pass (an importer turns items into the rows it stores while they are still warm).
    pub fn next_batch_with<T, F>(&mut self, n: usize, prepare: F) -> Result<Vec<T>, RecordError>
    where
        T: Send,
        F: Fn(u64, CatalogItem) -> T + Sync,
    {
        use rayon::prelude::*;
        let prepare = &prepare;
        let file = self.file.as_str();
        match &mut self.inner {
            Inner::Jsonl { lines, line, buf } => {
                let mut raw: Vec<(u64, String)> = Vec::with_capacity(n);
                while raw.len() < n {
                    buf.clear();
                    *line += 1;
                    match lines.read_line(buf) {
                        Ok(0) => break,
                        Ok(_) => {
                            if !buf.trim().is_empty() {
                                raw.push((*line, std::mem::take(buf)));
                            }
                        }
                        Err(e) => {
                            let message = if e.kind() == std::io::ErrorKind::InvalidData {
                                "the line is not valid UTF-8".to_owned()
                            } else {
                                e.to_string()
                            };
                            return Err(RecordError {
                                file: file.to_owned(),
                                line: *line,
                                field: None,
                                message,
                            });
                        }
                    }
                }
                raw.par_iter()
                    .map(|(line, text)| {
                        let ctx = Ctx { file, line: *line };
                        let object = object_from_line(&ctx, text)?;
                        item_from_object(&ctx, object).map(|item| prepare(*line, item))
                    })
                    .collect()
            }
            Inner::Csv {
                reader, headers, ..
            } => {
                let mut raw: Vec<csv::StringRecord> = Vec::with_capacity(n);
                while raw.len() < n {
                    let mut record = csv::StringRecord::new();
                    match reader.read_record(&mut record) {
                        Ok(false) => break,
                        Ok(true) => raw.push(record),
                        Err(e) => return Err(csv_error(file, e)),
                    }
                }
                let headers = &*headers;
                raw.par_iter()
                    .map(|record| {
                        let line = record.position().map(|p| p.line()).unwrap_or(0);
                        let ctx = Ctx { file, line };
                        csv_row_to_object(&ctx, headers, record)
                            .and_then(|object| item_from_object(&ctx, object))
                            .map(|item| prepare(line, item))
                    })
                    .collect()
            }
        }
    }
}

type Object = Map<String, Value>;
/// Turns a CSV row into the object a JSONL line would hold.
type RowToObject = fn(&Ctx, &[String], &csv::StringRecord) -> Result<Object, RecordError>;

/// A JSONL line parsed into an object, or the error naming its line.
fn object_from_line(ctx: &Ctx, text: &str) -> Result<Map<String, Value>, RecordError> {
    match serde_json::from_str::<Value>(text.trim()) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ctx.err(None, "the line is not a JSON object")),
        Err(e) => Err(ctx.err(None, format!("invalid JSON: {e}"))),
    }
}

impl<R: Read> Inner<R> {
    /// The next record as a JSON object with the line it starts on; CSV rows are turned into
    /// objects by `from_row`. `None` at the end of the file.
    fn next_object(
        &mut self,
        file: &str,
        from_row: RowToObject,
    ) -> Option<Result<(u64, Object), RecordError>> {
        match self {
            Inner::Jsonl { lines, line, buf } => loop {
                buf.clear();
                *line += 1;
                match lines.read_line(buf) {
                    Ok(0) => return None,
                    Ok(_) => {}
                    Err(e) => {
                        let message = if e.kind() == std::io::ErrorKind::InvalidData {
                            "the line is not valid UTF-8".to_owned()
                        } else {
                            e.to_string()
                        };
                        return Some(Err(RecordError {
                            file: file.to_owned(),
                            line: *line,
                            field: None,
                            message,
                        }));
                    }
                }
                if buf.trim().is_empty() {
                    continue;
                }
                let ctx = Ctx { file, line: *line };
                return Some(object_from_line(&ctx, buf).map(|object| (*line, object)));
            },
            Inner::Csv {
                reader,
                headers,
                record,
            } => match reader.read_record(record) {
                Ok(false) => None,
                Ok(true) => {
                    let line = record.position().map(|p| p.line()).unwrap_or(0);
                    let ctx = Ctx { file, line };
                    Some(from_row(&ctx, headers, record).map(|object| (line, object)))
                }
                Err(e) => Some(Err(csv_error(file, e))),
            },
        }
    }
}

impl<R: Read> Iterator for ItemReader<R> {
    /// The line the item started on, and the item.
    type Item = Result<(u64, CatalogItem), RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        let file = self.file.as_str();
        let next = self.inner.next_object(file, csv_row_to_object)?;
        Some(next.and_then(|(line, object)| {
            item_from_object(&Ctx { file, line }, object).map(|item| (line, item))
        }))
    }
}

/// Reads migrated annotations: CSV with `item`, `annotator` and one column per question (or
/// an `answer` JSON column), or JSONL `{"item", "annotator", "answer": {...}}`.
pub struct AnnotationReader<R: Read> {
    file: String,
    inner: Inner<R>,
}

impl<R: Read> AnnotationReader<R> {
    pub fn new(
        file: impl Into<String>,
        input: R,
        format: RecordFormat,
    ) -> Result<Self, RecordError> {
        let file = file.into();
        let inner = match format {
            RecordFormat::Jsonl => Inner::Jsonl {
                lines: std::io::BufReader::with_capacity(1 << 16, input),
                line: 0,
                buf: String::new(),
            },
            RecordFormat::Csv => {
                let mut reader = csv::ReaderBuilder::new().from_reader(input);
                let headers = reader
                    .headers()
                    .map_err(|e| csv_error(&file, e))?
                    .iter()
                    .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
                    .collect::<Vec<_>>();
                for needed in ["item", "annotator"] {
                    if !headers.iter().any(|h| h == needed) {
                        return Err(RecordError {
                            file,
                            line: 1,
                            field: Some(needed.into()),
                            message: format!("the header has no {needed} column"),
                        });
                    }
                }
                Inner::Csv {
                    reader,
                    headers,
                    record: csv::StringRecord::new(),
                }
            }
        };
        Ok(AnnotationReader { file, inner })
    }
}

fn annotation_from_object(
    ctx: &Ctx,
    mut object: Map<String, Value>,
) -> Result<AnnotationRecord, RecordError> {
    let mut text_field = |key: &str| match object.remove(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(ctx.err(Some(key), "is missing or empty")),
    };
    let item = text_field("item")?;
    let annotator = text_field("annotator")?;
    let rationale = match object.remove("rationale") {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    let time_spent_ms = match object.remove("time_spent_ms") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.trim().parse().map_err(|_| {
            ctx.err(
                Some("time_spent_ms"),
                format!("{s:?} is not a whole number"),
            )
        })?),
        Some(_) => return Err(ctx.err(Some("time_spent_ms"), "must be a whole number")),
    };
    let guideline_version = match object.remove("guideline_version") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(value) => {
            let text = match &value {
                Value::String(s) => s.trim().trim_start_matches(['v', 'V']).to_owned(),
                other => other.to_string(),
            };
            match text.parse::<i64>() {
                Ok(v) if v >= 1 => Some(v),
                _ => {
                    return Err(ctx.err(
                        Some("guideline_version"),
                        format!("{value} is not a version number (1, 2, … or v1, v2, …)"),
                    ));
                }
            }
        }
    };
    let created_at = match object.remove("created_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::Number(n)) => Some(n.as_i64().ok_or_else(|| {
            ctx.err(Some("created_at"), "must be milliseconds since 1970 or a UTC date")
        })?),
        Some(Value::String(s)) => Some(parse_time(s.trim()).ok_or_else(|| {
            ctx.err(
                Some("created_at"),
                format!(
                    "{s:?} is not a time (milliseconds since 1970, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)"
                ),
            )
        })?),
        Some(_) => return Err(ctx.err(Some("created_at"), "must be a time")),
    };
    let answer = match object.remove("answer") {
        Some(Value::Object(answer)) => answer,
        Some(Value::String(s)) if s.trim_start().starts_with('{') => match serde_json::from_str(&s)
        {
            Ok(Value::Object(answer)) => answer,
            _ => return Err(ctx.err(Some("answer"), "is not a JSON object")),
        },
        Some(_) => return Err(ctx.err(Some("answer"), "must be an object of question keys")),
        None => object.into_iter().filter(|(_, v)| !v.is_null()).collect(),
    };
    if answer.is_empty() {
        return Err(ctx.err(Some("answer"), "the row answers no question"));
    }
    Ok(AnnotationRecord {
        item,
        annotator,
        answer,
        rationale,
        time_spent_ms,
        guideline_version,
        created_at,
    })
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (UTC); `None` for anything else.
pub fn parse_utc_day(date: &str) -> Option<i64> {
    let b = date.as_bytes();
    let shaped = b.len() == 10 && b[4] == b'-' && b[7] == b'-';
    parse_time(date)
        .filter(|_| shaped)
        .map(|ms| ms.div_euclid(86_400_000))
}

/// Milliseconds since 1970 from digits, `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS[.fff][Z]` (UTC).
pub fn parse_time(text: &str) -> Option<i64> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t.trim_end_matches('Z'))),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let mut ms = days * 86_400_000;
    if let Some(time) = time {
        let mut hms = time.split(':');
        let hours: i64 = hms.next()?.parse().ok()?;
        let minutes: i64 = hms.next()?.parse().ok()?;
        let seconds: f64 = hms.next().unwrap_or("0").parse().ok()?;
        if !(0..24).contains(&hours)
            || !(0..60).contains(&minutes)
            || !(0.0..61.0).contains(&seconds)
        {
            return None;
        }
        ms += hours * 3_600_000 + minutes * 60_000 + (seconds * 1000.0).round() as i64;
    }
    Some(ms)
}

#[cfg(test)]
mod time_tests {
    use super::parse_time;

    #[test]
    fn times_read_as_utc_milliseconds() {
        assert_eq!(parse_time("2026-11-23"), Some(1_795_392_000_000));
        assert_eq!(parse_time("2026-11-23T01:00:00Z"), Some(1_795_395_600_000));
        assert_eq!(parse_time("1795392000000"), Some(1_795_392_000_000));
        assert_eq!(
            super::parse_utc_day("2026-11-23"),
            Some(1_795_392_000_000 / 86_400_000)
        );
        assert_eq!(super::parse_utc_day("1795392000000"), None);
        assert_eq!(super::parse_utc_day("2026-11-23T01:00:00Z"), None);
        assert_eq!(parse_time("2026-13-01"), None);
        assert_eq!(parse_time("yesterday"), None);
    }
}

/// A CSV row of migrated annotations: every non-empty cell under its header.
fn plain_row(
    _: &Ctx,
    headers: &[String],
    record: &csv::StringRecord,
) -> Result<Map<String, Value>, RecordError> {
    Ok(headers
        .iter()
        .zip(record.iter())
        .filter(|(_, v)| !v.is_empty())
        .map(|(h, v)| (h.clone(), Value::String(v.to_owned())))
        .collect())
}

impl<R: Read> Iterator for AnnotationReader<R> {
    type Item = Result<(u64, AnnotationRecord), RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        let file = self.file.as_str();
        let next = self.inner.next_object(file, plain_row)?;
        Some(next.and_then(|(line, object)| {
            annotation_from_object(&Ctx { file, line }, object).map(|a| (line, a))
        }))
    }
}

/// One exported item with every annotation on it (history included, oldest first). JSON
/// documents stay as the text the database holds: export never rebuilds them.
#[derive(Debug, Clone, Serialize)]
pub struct ExportRecord {
    pub id: String,
    pub item_type: String,
    pub title: String,
    pub state: String,
    pub priority: i64,
    pub is_gold: bool,
    pub creators: Box<RawValue>,
    pub metadata: Box<RawValue>,
    pub text: Box<RawValue>,
    pub media_url: Option<String>,
    pub gold_answer: Option<Box<RawValue>>,
    pub annotations: Vec<ExportAnnotation>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportAnnotation {
    pub id: i64,
    pub annotator: String,
    pub answer: Box<RawValue>,
    pub rationale: String,
    pub flags: Box<RawValue>,
    pub guideline_version: Option<i64>,
    pub time_spent_ms: Option<i64>,
    pub supersedes: Option<i64>,
    pub is_late: bool,
    pub created_at: i64,
}

/// Stored JSON text as a raw value; text that is not JSON (never written by concord)
/// becomes a JSON string so the export stays valid.
pub fn raw_json(text: String) -> Box<RawValue> {
    RawValue::from_string(text)
        .unwrap_or_else(|e| serde_json::value::to_raw_value(&e.to_string()).unwrap_or_default())
}

/// Writes export records as JSONL (one item per line) or CSV (one row per annotation;
/// an item without annotations gets one row with empty annotation columns).
pub struct ExportWriter<W: Write> {
    out: W,
    format: RecordFormat,
    wrote_header: bool,
    scratch: Vec<u8>,
}

const CSV_HEADER: &[&str] = &[
    "item",
    "item_type",
    "title",
    "state",
    "priority",
    "is_gold",
    "annotation_id",
    "annotator",
    "answer",
    "rationale",
    "flags",
    "guideline_version",
    "time_spent_ms",
    "supersedes",
    "is_late",
    "created_at",
];

impl<W: Write> ExportWriter<W> {
    pub fn new(out: W, format: RecordFormat) -> Self {
        ExportWriter {
            out,
            format,
            wrote_header: false,
            scratch: Vec::with_capacity(4096),
        }
    }

    pub fn write(&mut self, record: &ExportRecord) -> std::io::Result<()> {
        match self.format {
            RecordFormat::Jsonl => {
                self.scratch.clear();
                serde_json::to_writer(&mut self.scratch, record)?;
                self.scratch.push(b'\n');
                self.out.write_all(&self.scratch)
            }
            RecordFormat::Csv => {
                let mut csv = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(&mut self.scratch);
                if !self.wrote_header {
                    csv.write_record(CSV_HEADER)?;
                    self.wrote_header = true;
                }
                let gold = if record.is_gold { "1" } else { "0" };
                let priority = record.priority.to_string();
                let base = [
                    record.id.as_str(),
                    record.item_type.as_str(),
                    record.title.as_str(),
                    record.state.as_str(),
                    priority.as_str(),
                    gold,
                ];
                if record.annotations.is_empty() {
                    let mut row: Vec<&str> = base.to_vec();
                    row.extend(std::iter::repeat_n("", CSV_HEADER.len() - base.len()));
                    csv.write_record(&row)?;
                }
                for a in &record.annotations {
                    let fields = [
                        a.id.to_string(),
                        a.annotator.clone(),
                        a.answer.get().to_owned(),
                        a.rationale.clone(),
                        a.flags.get().to_owned(),
                        a.guideline_version
                            .map(|v| v.to_string())
                            .unwrap_or_default(),
                        a.time_spent_ms.map(|v| v.to_string()).unwrap_or_default(),
                        a.supersedes.map(|v| v.to_string()).unwrap_or_default(),
                        if a.is_late { "1".into() } else { "0".into() },
                        a.created_at.to_string(),
                    ];
                    let mut row: Vec<&str> = base.to_vec();
                    row.extend(fields.iter().map(String::as_str));
                    csv.write_record(&row)?;
                }
                csv.flush()?;
                drop(csv);
                self.out.write_all(&self.scratch)?;
                self.scratch.clear();
                Ok(())
            }
        }
    }

    /// The bytes written so far (for streaming into a response), leaving the writer empty.
    pub fn take_output(&mut self) -> W
    where
        W: Default,
    {
        std::mem::take(&mut self.out)
    }

    /// Writes the CSV header even when there were no records.
    pub fn finish(mut self) -> std::io::Result<W> {
        if self.format == RecordFormat::Csv && !self.wrote_header {
            let mut csv = csv::Writer::from_writer(&mut self.out);
            csv.write_record(CSV_HEADER)?;
            csv.flush()?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str, format: RecordFormat) -> Result<Vec<CatalogItem>, RecordError> {
        ItemReader::new("items", text.as_bytes(), format)?
            .map(|r| r.map(|(_, item)| item))
            .collect()
    }

    #[test]
    fn a_jsonl_item_in_the_catalog_model_keeps_every_field() {
        let line = r#"{"item_type":"track","id":"trk_0001","title":"Ships That Never Came","creators":[{"name":"Mira Calloway-Tesh","role":"artist"}],"language":"en","markets":["DE","US"],"duration_ms":214000,"explicit":"not_explicit","preview_url":null,"text":{"lyrics_excerpt":"Neon on the harbour wall"},"source_ids":{"isrc":"xx-c0n-25-00017"},"priority":3}"#;
        let items = read_all(line, RecordFormat::Jsonl).unwrap();
        let item = &items[0];
        assert_eq!(item.external_id, "trk_0001");
        assert_eq!(item.item_type, ItemType::Track);
        assert_eq!(item.priority, 3);
        assert_eq!(item.metadata["source_ids"]["isrc"], "XXC0N2500017");
        assert_eq!(item.metadata["markets"], json!(["DE", "US"]));
        assert_eq!(item.text["lyrics_excerpt"], "Neon on the harbour wall");
    }

    #[test]
    fn csv_items_map_columns_to_the_model_and_keep_unknown_columns() {
        let csv = "id,item_type,title,creators,markets,description,isrc,shelf\n\
                   ep1,episode,\"Harbour, Nights\",Ana Ruiz (host); Bo (guest),GB;IE,A show,,A3\n";
        let items = read_all(csv, RecordFormat::Csv).unwrap();
        assert_eq!(items[0].title, "Harbour, Nights");
        assert_eq!(items[0].creators[1], json!({"name": "Bo", "role": "guest"}));
        assert_eq!(items[0].metadata["markets"], json!(["GB", "IE"]));
        assert_eq!(items[0].metadata["extra"]["shelf"], "A3");
        assert_eq!(items[0].text["description"], "A show");
    }

    #[test]
    fn csv_columns_named_like_the_jsonl_paths_are_the_same_fields() {
        let csv = "id,item_type,title,text.lyrics_excerpt,source_ids.isrc\nt1,track,One,Neon lights,XXC0N2500017\n";
        let items = read_all(csv, RecordFormat::Csv).unwrap();
        assert_eq!(items[0].text["lyrics_excerpt"], "Neon lights");
        assert_eq!(items[0].metadata["source_ids"]["isrc"], "XXC0N2500017");
        assert!(
            items[0].metadata.get("extra").is_none(),
            "{:?}",
            items[0].metadata
        );
    }

    #[test]
    fn an_unknown_dotted_column_or_a_field_given_twice_is_refused_naming_the_column() {
        for (csv, column) in [
            (
                "id,item_type,title,text.lyrics\nt1,track,One,x\n",
                "text.lyrics",
            ),
            (
                "id,item_type,title,isrc,source_ids.isrc\nt1,track,One,a,b\n",
                "source_ids.isrc",
            ),
        ] {
            let err = read_all(csv, RecordFormat::Csv).unwrap_err();
            assert_eq!(err.line, 1, "{err}");
            assert_eq!(err.field.as_deref(), Some(column), "{err}");
        }
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let text = "{\"id\":\"a\",\"item_type\":\"track\",\"title\":\"x\"}\n\n{\"id\":\"b\",\"item_type\":\"song\",\"title\":\"y\"}\n";
        let err = read_all(text, RecordFormat::Jsonl).unwrap_err();
        assert_eq!(err.line, 3);
        assert_eq!(err.field.as_deref(), Some("item_type"));
        assert_eq!(
            err.to_string(),
            "items:3: field item_type: \"song\" is not one of track, episode, audiobook, chapter"
        );

        let csv = "id,item_type,title,isrc\na,track,T,XX-C0N-25-0001\n";
        let err = read_all(csv, RecordFormat::Csv).unwrap_err();
        assert_eq!(
            (err.line, err.field.as_deref()),
            (2, Some("source_ids.isrc"))
        );

        let csv = "id,item_type,title\na,track\n";
        let err = read_all(csv, RecordFormat::Csv).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(
            err.message.contains("2 fields but the header has 3"),
            "{}",
            err.message
        );
    }

    #[test]
    fn isrc_normalisation_follows_iso_3901() {
        assert_eq!(
            normalise_isrc("ISRC XX-C0N-25-00017").as_deref(),
            Some("XXC0N2500017")
        );
        assert_eq!(normalise_isrc("XXC0N25000170"), None);
        assert_eq!(normalise_isrc("1XC0N2500017"), None);
    }

    #[test]
    fn annotations_from_csv_use_question_columns() {
        let csv = "item,annotator,decision,severity,rationale\nt1,ana,VIOLATING,S3,clear threat\n";
        let rows: Vec<_> = AnnotationReader::new("a.csv", csv.as_bytes(), RecordFormat::Csv)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let (line, record) = &rows[0];
        assert_eq!(*line, 2);
        assert_eq!(record.answer["decision"], "VIOLATING");
        assert_eq!(record.rationale, "clear threat");
    }

    #[test]
    fn export_csv_has_one_row_per_annotation() {
        let record = ExportRecord {
            id: "t1".into(),
            item_type: "track".into(),
            title: "A, B".into(),
            state: "labelled".into(),
            priority: 0,
            is_gold: false,
            creators: raw_json("[]".into()),
            metadata: raw_json("{}".into()),
            text: raw_json("{}".into()),
            media_url: None,
            gold_answer: None,
            annotations: vec![ExportAnnotation {
                id: 7,
                annotator: "ana".into(),
                answer: raw_json(r#"{"decision":"VIOLATING"}"#.into()),
                rationale: String::new(),
                flags: raw_json("[]".into()),
                guideline_version: Some(1),
                time_spent_ms: None,
                supersedes: None,
                is_late: false,
                created_at: 5,
            }],
        };
        let mut writer = ExportWriter::new(Vec::new(), RecordFormat::Csv);
        writer.write(&record).unwrap();
        let out = String::from_utf8(writer.finish().unwrap()).unwrap();
        let lines: Vec<_> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[1].starts_with("t1,track,\"A, B\",labelled,0,0,7,ana,"),
            "{}",
            lines[1]
        );
    }
}
