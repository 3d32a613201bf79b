//! A model's predictions: `item, model, label, score` rows as CSV (with a header, columns in
//! any order, others ignored) or JSONL (one object per line; a file whose first non-blank
//! character is `{` is read as JSONL). Errors name the file, the line and the field; a file
//! with any bad row gives no rows at all.

use serde_json::Value;

/// One prediction and the line it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionRecord {
    pub line: u64,
    pub item: String,
    pub model: String,
    pub label: String,
    pub score: f64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PredictionsError {
    #[error("{file}: {message}")]
    File { file: String, message: String },
    #[error("{file}: line {line}: field {field}: {message}")]
    Line {
        file: String,
        line: u64,
        field: &'static str,
        message: String,
    },
}

const FIELDS: [&str; 4] = ["item", "model", "label", "score"];

/// Reads every prediction of a file, or the first error.
pub fn read_predictions(
    file: &str,
    bytes: &[u8],
) -> Result<Vec<PredictionRecord>, PredictionsError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|_| PredictionsError::File {
        file: file.to_owned(),
        message: "invalid UTF-8".into(),
    })?;
    let rows = if text.trim_start().starts_with('{') {
        read_jsonl(file, text)?
    } else {
        read_csv(file, text)?
    };
    if rows.is_empty() {
        return Err(PredictionsError::File {
            file: file.to_owned(),
            message: "no predictions in the file".into(),
        });
    }
    Ok(rows)
}

fn line_error(
    file: &str,
    line: u64,
    field: &'static str,
    message: impl Into<String>,
) -> PredictionsError {
    PredictionsError::Line {
        file: file.to_owned(),
        line,
        field,
        message: message.into(),
    }
}

/// A record from its four fields as text, each checked.
fn record(file: &str, line: u64, fields: [&str; 4]) -> Result<PredictionRecord, PredictionsError> {
    for (value, name) in fields.iter().zip(FIELDS) {
        if value.trim().is_empty() {
            return Err(line_error(file, line, name, "is empty"));
        }
    }
    let score: f64 = fields[3].trim().parse().map_err(|_| {
        line_error(
            file,
            line,
            "score",
            format!("{:?} is not a number", fields[3]),
        )
    })?;
    if !(0.0..=1.0).contains(&score) {
        return Err(line_error(
            file,
            line,
            "score",
            format!("{score} is not between 0 and 1"),
        ));
    }
    Ok(PredictionRecord {
        line,
        item: fields[0].trim().to_owned(),
        model: fields[1].trim().to_owned(),
        label: fields[2].trim().to_owned(),
        score,
    })
}

fn read_jsonl(file: &str, text: &str) -> Result<Vec<PredictionRecord>, PredictionsError> {
    let mut rows = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index as u64 + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(raw).map_err(|e| PredictionsError::File {
            file: file.to_owned(),
            message: format!("line {line}: invalid JSON: {e}"),
        })?;
        let mut texts: [String; 4] = Default::default();
        for (slot, name) in texts.iter_mut().zip(FIELDS) {
            *slot = match value.get(name) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(_) => {
                    return Err(line_error(file, line, name, "must be a string or a number"));
                }
                None => return Err(line_error(file, line, name, "is missing")),
            };
        }
        rows.push(record(
            file,
            line,
            [&texts[0], &texts[1], &texts[2], &texts[3]],
        )?);
    }
    Ok(rows)
}

fn read_csv(file: &str, text: &str) -> Result<Vec<PredictionRecord>, PredictionsError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| PredictionsError::File {
        file: file.to_owned(),
        message: format!("header: {e}"),
    })?;
    let mut columns = [0usize; 4];
    for (slot, name) in columns.iter_mut().zip(FIELDS) {
        *slot = header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
            .ok_or_else(|| line_error(file, 1, name, "the header has no such column"))?;
    }
    let mut rows = Vec::new();
    for result in reader.records() {
        let record_ = result.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            PredictionsError::File {
                file: file.to_owned(),
                message: format!("line {line}: {e}"),
            }
        })?;
        let line = record_.position().map(|p| p.line()).unwrap_or(0);
        let get = |i: usize| record_.get(columns[i]).unwrap_or("");
        rows.push(record(file, line, [get(0), get(1), get(2), get(3)])?);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_columns_in_any_order_with_line_numbers() {
        let text = "score,item,label,model,extra\n0.9,a,X,m1,z\n0.25,b,Y,m1,z\n";
        let rows = read_predictions("p.csv", text.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[1],
            PredictionRecord {
                line: 3,
                item: "b".into(),
                model: "m1".into(),
                label: "Y".into(),
                score: 0.25
            }
        );
    }

    #[test]
    fn jsonl_is_read_when_the_file_starts_with_an_object() {
        let text = "{\"item\": \"a\", \"model\": \"m\", \"label\": \"X\", \"score\": 1}\n\n\
                    {\"item\": 7, \"model\": \"m\", \"label\": \"Y\", \"score\": 0.5}\n";
        let rows = read_predictions("p.jsonl", text.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[1].line, rows[1].item.as_str()), (3, "7"));
    }

    #[test]
    fn a_bad_row_is_named_by_line_and_field_and_nothing_is_returned() {
        let err = read_predictions("p.csv", b"item,model,label,score\na,m,X,0.5\nb,m,X,1.5\n")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "p.csv: line 3: field score: 1.5 is not between 0 and 1"
        );
        let err = read_predictions("p.csv", b"item,model,label,score\na,m,,0.5\n").unwrap_err();
        assert_eq!(err.to_string(), "p.csv: line 2: field label: is empty");
        let err = read_predictions("p.csv", b"item,label,score\na,X,0.5\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "p.csv: line 1: field model: the header has no such column"
        );
        let err = read_predictions(
            "p.jsonl",
            b"{\"item\": \"a\", \"model\": \"m\", \"score\": 0.1}\n",
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "p.jsonl: line 1: field label: is missing");
        let err = read_predictions("p.csv", b"item,model,label,score\na,m,X,high\n").unwrap_err();
        assert!(err.to_string().contains("field score"), "{err}");
        assert!(read_predictions("p.csv", b"item,model,label,score\n").is_err());
    }
}
