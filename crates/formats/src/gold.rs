//! Gold / known answers: (item, label) rows in CSV, TSV or JSONL. An item may have
//! several acceptable answers (one row each).

use std::path::Path;

use concord_stats::AnnotationTable;
use concord_stats::aggregate::Known;

use crate::{Format, ReadError};

const ITEM_NAMES: [&str; 5] = ["item", "task", "item_id", "task_id", "unit"];
const LABEL_NAMES: [&str; 6] = ["label", "answer", "gold", "true_label", "truth", "value"];

/// Gold answers resolved against a table's items and values.
pub struct GoldFile {
    pub known: Known,
    /// Gold rows whose item is not in the annotations (ignored).
    pub unknown_items: usize,
    pub rows: usize,
}

/// Read a gold file against `table`. A label that is not one of the table's values is an
/// error with its line; items absent from the annotations are counted and skipped.
pub fn read_gold(path: &Path, table: &AnnotationTable) -> Result<GoldFile, ReadError> {
    let display = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ReadError::Io {
        path: display.clone(),
        source,
    })?;
    read_gold_from_bytes(&display, &bytes, Format::from_path(path), table)
}

pub fn read_gold_from_bytes(
    name: &str,
    bytes: &[u8],
    format: Format,
    table: &AnnotationTable,
) -> Result<GoldFile, ReadError> {
    let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)).map_err(
        |_| ReadError::File {
            path: name.to_string(),
            message: "invalid UTF-8".into(),
        },
    )?;
    let mut known = Known::default();
    let mut unknown_items = 0;
    let mut rows = 0;
    let mut resolve = |line_no: u64, item: &str, label: &str| -> Result<(), ReadError> {
        rows += 1;
        let Some(item_id) = table.items().get(item) else {
            unknown_items += 1;
            return Ok(());
        };
        let value = table
            .values()
            .find_label(label)
            .ok_or_else(|| ReadError::Line {
                path: name.to_string(),
                line: line_no,
                field: Some("label".into()),
                message: format!(
                    "label '{label}' is not among the annotations' labels ({})",
                    table.values().names().join(", ")
                ),
            })?;
        known.answers.push((item_id, value));
        Ok(())
    };
    match format {
        Format::Jsonl => {
            for (index, line) in text.lines().enumerate() {
                let line_no = index as u64 + 1;
                if line.trim().is_empty() {
                    continue;
                }
                let bad = |message: String| ReadError::Line {
                    path: name.to_string(),
                    line: line_no,
                    field: None,
                    message,
                };
                let value: serde_json::Value =
                    serde_json::from_str(line).map_err(|e| bad(format!("invalid JSON: {e}")))?;
                let get = |names: &[&str], what: &str| -> Result<String, ReadError> {
                    let v = names.iter().find_map(|n| value.get(*n)).ok_or_else(|| {
                        ReadError::Line {
                            path: name.to_string(),
                            line: line_no,
                            field: Some(what.into()),
                            message: format!("missing key '{what}'"),
                        }
                    })?;
                    Ok(match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                };
                resolve(
                    line_no,
                    &get(&ITEM_NAMES, "item")?,
                    &get(&LABEL_NAMES, "label")?,
                )?;
            }
        }
        Format::Csv | Format::Tsv => {
            let delimiter = if format == Format::Tsv { '\t' } else { ',' };
            let mut lines = text.lines().enumerate();
            let Some((_, header)) = lines.next() else {
                return Err(ReadError::File {
                    path: name.to_string(),
                    message: "empty file".into(),
                });
            };
            let header: Vec<String> = split_csv_line(header, delimiter)
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .collect();
            let find = |names: &[&str], what: &str| {
                header
                    .iter()
                    .position(|h| names.contains(&h.as_str()))
                    .ok_or_else(|| ReadError::Line {
                        path: name.to_string(),
                        line: 1,
                        field: None,
                        message: format!(
                            "missing column '{what}' (accepted: {})",
                            names.join(", ")
                        ),
                    })
            };
            let (item_col, label_col) = (find(&ITEM_NAMES, "item")?, find(&LABEL_NAMES, "label")?);
            for (index, line) in lines {
                let line_no = index as u64 + 1;
                if line.trim().is_empty() {
                    continue;
                }
                let fields = split_csv_line(line, delimiter);
                if fields.len() != header.len() {
                    return Err(ReadError::Line {
                        path: name.to_string(),
                        line: line_no,
                        field: None,
                        message: format!(
                            "expected {} fields as in the header, found {}",
                            header.len(),
                            fields.len()
                        ),
                    });
                }
                resolve(line_no, fields[item_col].trim(), fields[label_col].trim())?;
            }
        }
    }
    Ok(GoldFile {
        known,
        unknown_items,
        rows,
    })
}

/// Split one CSV line with RFC 4180 quotes (no embedded newlines in gold files).
fn split_csv_line(line: &str, delimiter: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if in_quotes && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => in_quotes = !in_quotes,
            c if c == delimiter && !in_quotes => out.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    out.push(field);
    out
}
