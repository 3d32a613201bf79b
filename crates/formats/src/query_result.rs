//! A query's result (column names and rows of JSON values) written out: CSV for downloads
//! and spreadsheets, an aligned text table for a terminal.

use serde_json::Value;

/// A value as one cell: text as it is, numbers and booleans as written, NULL as empty,
/// anything else (a JSON list or object) as JSON.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// RFC 4180 CSV with a header row.
pub fn csv(columns: &[String], rows: &[Vec<Value>]) -> String {
    let mut writer = csv::WriterBuilder::new().from_writer(Vec::new());
    // Writing to memory cannot fail; a failed record would only shorten the output.
    let _ = writer.write_record(columns);
    for row in rows {
        let _ = writer.write_record(row.iter().map(cell));
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// Columns padded to their widest cell (at most `max_width` characters, longer cells cut
/// with `…`), a rule under the header.
pub fn text_table(columns: &[String], rows: &[Vec<Value>], max_width: usize) -> String {
    let fit = |text: String| -> String {
        let flat = text.replace(['\n', '\r', '\t'], " ");
        if flat.chars().count() > max_width {
            let mut cut: String = flat.chars().take(max_width.saturating_sub(1)).collect();
            cut.push('…');
            cut
        } else {
            flat
        }
    };
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|v| fit(cell(v))).collect())
        .collect();
    let head: Vec<String> = columns.iter().map(|c| fit(c.clone())).collect();
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for row in &body {
        for (i, text) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(text.chars().count());
            }
        }
    }
    let line = |cells: &[String]| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(text, width)| format!("{text:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = line(&head);
    out.push('\n');
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&rule.join("  "));
    out.push('\n');
    for row in &body {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_quotes_what_needs_quoting_and_leaves_null_empty() {
        let columns = vec!["a".to_owned(), "b, c".to_owned()];
        let rows = vec![
            vec![json!("x \"y\""), Value::Null],
            vec![json!(1.5), json!([1])],
        ];
        assert_eq!(
            csv(&columns, &rows),
            "a,\"b, c\"\n\"x \"\"y\"\"\",\n1.5,[1]\n"
        );
    }

    #[test]
    fn a_text_table_aligns_columns_and_cuts_long_cells() {
        let columns = vec!["n".to_owned(), "title".to_owned()];
        let rows = vec![
            vec![json!(10), json!("a very long title")],
            vec![json!(2), Value::Null],
        ];
        assert_eq!(
            text_table(&columns, &rows, 8),
            "n   title\n--  --------\n10  a very …\n2\n"
        );
    }
}
