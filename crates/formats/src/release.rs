//! Dataset release files: one record per item (final label, soft labels, agreement) as JSONL
//! or CSV, and the individual labels of one question as `item,annotator,label` CSV — the file
//! `concord agreement` and `concord aggregate` read, so a release can be checked independently.

use crate::items::RecordFormat;
use serde::Serialize;
use serde_json::Value;
use std::io::Write;

/// One item of a release.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReleaseItem {
    pub item: String,
    /// `{question: final value}`.
    pub label: Value,
    /// `adjudicated` or the consensus method's key.
    pub source: String,
    pub adjudicated: bool,
    /// `{question: {code: probability}}`.
    pub soft_label: Value,
    /// `{question: share of agreeing label pairs}`.
    pub agreement: Value,
    pub n_labels: i64,
    pub guideline_versions: Vec<i64>,
    pub is_gold: bool,
}

/// One individual label of a release (the latest answer of an annotator on an item).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReleaseLabel {
    pub item: String,
    /// A stable pseudonym (`a` + the account number): releases leave the building.
    pub annotator: String,
    pub automated: bool,
    /// `label` or `unsure`.
    pub kind: String,
    pub answer: Value,
    pub guideline_version: Option<i64>,
}

/// How a question's answer is stored in a typed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerShape {
    /// One code (single-choice and ordinal questions).
    Code,
    /// A list of codes (multi-label questions).
    Codes,
}

/// A question as the columns of a typed (Parquet) release file: its key, answer shape and
/// classes in the schema's order (the soft label's fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerColumn {
    pub key: String,
    pub shape: AnswerShape,
    pub classes: Vec<String>,
}

/// A value as one CSV cell: codes as they are, lists as JSON, nothing as empty.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Writes release items; CSV columns are fixed by the questions given at the start.
pub struct ReleaseItemWriter<W: Write> {
    out: W,
    format: RecordFormat,
    questions: Vec<String>,
    wrote_header: bool,
}

impl<W: Write> ReleaseItemWriter<W> {
    pub fn new(out: W, format: RecordFormat, questions: Vec<String>) -> Self {
        ReleaseItemWriter {
            out,
            format,
            questions,
            wrote_header: false,
        }
    }

    fn header(&self) -> Vec<String> {
        let mut header: Vec<String> = [
            "item",
            "source",
            "adjudicated",
            "is_gold",
            "n_labels",
            "guideline_versions",
        ]
        .map(String::from)
        .to_vec();
        for q in &self.questions {
            header.push(q.clone());
            header.push(format!("{q}.soft"));
            header.push(format!("{q}.agreement"));
        }
        header
    }

    fn write_header(&mut self) -> std::io::Result<()> {
        if self.format == RecordFormat::Csv && !self.wrote_header {
            let header = self.header();
            let mut csv = csv::Writer::from_writer(&mut self.out);
            csv.write_record(&header)?;
            csv.flush()?;
        }
        self.wrote_header = true;
        Ok(())
    }

    pub fn write(&mut self, item: &ReleaseItem) -> std::io::Result<()> {
        self.write_header()?;
        match self.format {
            RecordFormat::Jsonl => {
                serde_json::to_writer(&mut self.out, item)?;
                self.out.write_all(b"\n")
            }
            RecordFormat::Csv => {
                let mut row = vec![
                    item.item.clone(),
                    item.source.clone(),
                    u8::from(item.adjudicated).to_string(),
                    u8::from(item.is_gold).to_string(),
                    item.n_labels.to_string(),
                    item.guideline_versions
                        .iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join("|"),
                ];
                for q in &self.questions {
                    row.push(cell(item.label.get(q)));
                    row.push(cell(item.soft_label.get(q)));
                    row.push(cell(item.agreement.get(q)));
                }
                let mut csv = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(&mut self.out);
                csv.write_record(&row)?;
                csv.flush()
            }
        }
    }

    /// Writes the CSV header even for an empty release; returns the output.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.write_header()?;
        self.out.flush()?;
        Ok(self.out)
    }

    /// The bytes written so far (for streaming into a response).
    pub fn take_output(&mut self) -> W
    where
        W: Default,
    {
        std::mem::take(&mut self.out)
    }
}

/// Writes release labels: JSONL records, or `item,annotator,label` CSV for one question
/// (human answers only; unsure answers and the automated annotator are left out, as the
/// consensus leaves them out).
pub struct ReleaseLabelWriter<W: Write> {
    out: W,
    format: RecordFormat,
    question: Option<String>,
    wrote_header: bool,
}

impl<W: Write> ReleaseLabelWriter<W> {
    pub fn new(out: W, format: RecordFormat, question: Option<String>) -> Self {
        ReleaseLabelWriter {
            out,
            format,
            question,
            wrote_header: false,
        }
    }

    pub fn write(&mut self, label: &ReleaseLabel) -> std::io::Result<()> {
        match (self.format, &self.question) {
            (RecordFormat::Jsonl, _) => {
                serde_json::to_writer(&mut self.out, label)?;
                self.out.write_all(b"\n")
            }
            (RecordFormat::Csv, question) => {
                let question = question.clone().unwrap_or_default();
                if !self.wrote_header {
                    self.write_header()?;
                }
                let value = label.answer.get(&question);
                if label.automated || label.kind != "label" || value.is_none_or(Value::is_null) {
                    return Ok(());
                }
                let mut csv = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(&mut self.out);
                csv.write_record([label.item.as_str(), label.annotator.as_str(), &cell(value)])?;
                csv.flush()
            }
        }
    }

    fn write_header(&mut self) -> std::io::Result<()> {
        self.wrote_header = true;
        let mut csv = csv::Writer::from_writer(&mut self.out);
        csv.write_record(["item", "annotator", "label"])?;
        csv.flush()
    }

    pub fn finish(mut self) -> std::io::Result<W> {
        if self.format == RecordFormat::Csv && !self.wrote_header {
            self.write_header()?;
        }
        self.out.flush()?;
        Ok(self.out)
    }

    pub fn take_output(&mut self) -> W
    where
        W: Default,
    {
        std::mem::take(&mut self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn items_write_one_column_group_per_question_and_labels_one_question() {
        let item = ReleaseItem {
            item: "t1".into(),
            label: json!({"severity": "S3", "category": ["DG.VIOL", "IL.LAW"]}),
            source: "adjudicated".into(),
            adjudicated: true,
            soft_label: json!({"severity": {"S3": 0.75, "S0": 0.25}}),
            agreement: json!({"severity": 0.5}),
            n_labels: 2,
            guideline_versions: vec![1, 2],
            is_gold: false,
        };
        let mut writer = ReleaseItemWriter::new(
            Vec::new(),
            RecordFormat::Csv,
            vec!["severity".into(), "category".into()],
        );
        writer.write(&item).unwrap();
        let text = String::from_utf8(writer.finish().unwrap()).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "item,source,adjudicated,is_gold,n_labels,guideline_versions,severity,severity.soft,severity.agreement,category,category.soft,category.agreement"
        );
        assert_eq!(
            lines.next().unwrap(),
            r#"t1,adjudicated,1,0,2,1|2,S3,"{""S0"":0.25,""S3"":0.75}",0.5,"[""DG.VIOL"",""IL.LAW""]",,"#
        );

        let mut labels =
            ReleaseLabelWriter::new(Vec::new(), RecordFormat::Csv, Some("severity".into()));
        for (annotator, kind, automated) in [
            ("a1", "label", false),
            ("a2", "unsure", false),
            ("a3", "label", true),
        ] {
            labels
                .write(&ReleaseLabel {
                    item: "t1".into(),
                    annotator: annotator.into(),
                    automated,
                    kind: kind.into(),
                    answer: json!({"severity": "S2"}),
                    guideline_version: Some(1),
                })
                .unwrap();
        }
        let text = String::from_utf8(labels.finish().unwrap()).unwrap();
        assert_eq!(
            text, "item,annotator,label\nt1,a1,S2\n",
            "unsure and automated answers are left out"
        );
    }
}
