//! Parquet files of releases (items or individual labels) and of a project's export, written
//! with the `parquet` crate's column writers (no arrow). Records are buffered column-wise and
//! written as one row group every `rows_per_group` records, so memory stays flat whatever the
//! size of the file; pages are compressed with Snappy.
//!
//! Every field keeps its type: codes are strings, multi-label answers lists of strings, counts
//! 64-bit integers, probabilities and agreement doubles, flags booleans, times UTC timestamps.
//! Per-question values are structs with one field per question (`label.severity`), soft labels
//! a struct with one double per class in the schema's order (`soft_label.severity.S3`), so a
//! reader gets the class-probability matrix without parsing anything. Stored JSON documents the
//! platform does not interpret (item metadata, text, raw answers of the export) are strings
//! with Parquet's JSON logical type.

use crate::items::ExportRecord;
use crate::release::{AnswerColumn, AnswerShape, ReleaseItem, ReleaseLabel};
use ::parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as Physical};
use ::parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use ::parquet::file::metadata::KeyValue;
use ::parquet::file::properties::WriterProperties;
use ::parquet::file::writer::SerializedFileWriter;
use ::parquet::schema::types::{Type, TypePtr};
use serde::Serialize;
use serde_json::Value;
use std::io::{self, Write};
use std::sync::Arc;

/// Records per row group: a few tens of MiB of column buffers at most, and row groups large
/// enough for readers to scan efficiently.
pub const ROWS_PER_GROUP: usize = 65_536;

/// The key of the release's description (name, method, run, watermark …) in the metadata.
pub const RELEASE_KEY: &str = "concord.release";
/// The key of the release's QA summary (α with intervals, gold accuracy, rates).
pub const QA_SUMMARY_KEY: &str = "concord.qa_summary";

/// The key-value metadata of a release file: the release record under [`RELEASE_KEY`] and its
/// `summary` field on its own under [`QA_SUMMARY_KEY`]. The author's account name
/// (`created_by`) stays out: release files leave the building.
pub fn release_metadata(release: &impl Serialize) -> io::Result<Vec<(String, String)>> {
    let mut record = serde_json::to_value(release)?;
    let fields = record.as_object_mut();
    let summary = fields
        .and_then(|fields| {
            fields.remove("created_by");
            fields.remove("summary")
        })
        .unwrap_or(Value::Null);
    Ok(vec![
        (RELEASE_KEY.to_owned(), record.to_string()),
        (QA_SUMMARY_KEY.to_owned(), summary.to_string()),
    ])
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn parquet_error(e: ::parquet::errors::ParquetError) -> io::Error {
    io::Error::other(e)
}

// ---------------------------------------------------------------------------------------
// Schema construction.

fn primitive(
    name: &str,
    physical: Physical,
    repetition: Repetition,
    logical: Option<LogicalType>,
) -> io::Result<TypePtr> {
    Type::primitive_type_builder(name, physical)
        .with_repetition(repetition)
        .with_logical_type(logical)
        .build()
        .map(Arc::new)
        .map_err(parquet_error)
}

fn string(name: &str, repetition: Repetition) -> io::Result<TypePtr> {
    primitive(
        name,
        Physical::BYTE_ARRAY,
        repetition,
        Some(LogicalType::String),
    )
}

fn json(name: &str, repetition: Repetition) -> io::Result<TypePtr> {
    primitive(
        name,
        Physical::BYTE_ARRAY,
        repetition,
        Some(LogicalType::Json),
    )
}

fn group(name: &str, repetition: Repetition, fields: Vec<TypePtr>) -> io::Result<TypePtr> {
    Type::group_type_builder(name)
        .with_repetition(repetition)
        .with_fields(fields)
        .build()
        .map(Arc::new)
        .map_err(parquet_error)
}

/// The standard three-level list: `name (LIST) { repeated group list { element } }`.
fn list(name: &str, repetition: Repetition, element: TypePtr) -> io::Result<TypePtr> {
    let repeated = group("list", Repetition::REPEATED, vec![element])?;
    Type::group_type_builder(name)
        .with_repetition(repetition)
        .with_logical_type(Some(LogicalType::List))
        .with_fields(vec![repeated])
        .build()
        .map(Arc::new)
        .map_err(parquet_error)
}

/// One field per question: a code, or a list of codes for multi-label questions.
fn answer_struct(name: &str, questions: &[AnswerColumn]) -> io::Result<TypePtr> {
    let fields = questions
        .iter()
        .map(|q| match q.shape {
            AnswerShape::Code => string(&q.key, Repetition::OPTIONAL),
            AnswerShape::Codes => list(
                &q.key,
                Repetition::OPTIONAL,
                string("element", Repetition::REQUIRED)?,
            ),
        })
        .collect::<io::Result<Vec<_>>>()?;
    group(name, Repetition::REQUIRED, fields)
}

fn message(fields: Vec<TypePtr>) -> io::Result<TypePtr> {
    Type::group_type_builder("schema")
        .with_fields(fields)
        .build()
        .map(Arc::new)
        .map_err(parquet_error)
}

// ---------------------------------------------------------------------------------------
// Column buffers and the file they are written to.

enum Values {
    Bool(Vec<bool>),
    Int64(Vec<i64>),
    Double(Vec<f64>),
    Bytes(Vec<ByteArray>),
}

/// One leaf column of the current row group: its values and Dremel levels.
struct Leaf {
    values: Values,
    def: Vec<i16>,
    rep: Vec<i16>,
    /// Whether the column has definition / repetition levels at all (a required top-level
    /// column has neither).
    has_def: bool,
    has_rep: bool,
}

impl Leaf {
    fn levels(&mut self, def: i16, rep: i16) {
        self.def.push(def);
        self.rep.push(rep);
    }
}

/// A Parquet file being written: the leaves of the row group in progress, in schema order.
struct ColumnarFile<W: Write + Send> {
    writer: SerializedFileWriter<W>,
    leaves: Vec<Leaf>,
    rows: usize,
    rows_per_group: usize,
}

impl<W: Write + Send> ColumnarFile<W> {
    fn new(
        out: W,
        schema: TypePtr,
        metadata: Vec<(String, String)>,
        rows_per_group: usize,
    ) -> io::Result<Self> {
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("concord {}", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(
                metadata
                    .into_iter()
                    .map(|(key, value)| KeyValue::new(key, value))
                    .collect(),
            ))
            .build();
        let writer =
            SerializedFileWriter::new(out, schema, Arc::new(properties)).map_err(parquet_error)?;
        let leaves = writer
            .schema_descr()
            .columns()
            .iter()
            .map(|column| Leaf {
                values: match column.physical_type() {
                    Physical::BOOLEAN => Values::Bool(Vec::new()),
                    Physical::INT64 => Values::Int64(Vec::new()),
                    Physical::DOUBLE => Values::Double(Vec::new()),
                    _ => Values::Bytes(Vec::new()),
                },
                def: Vec::new(),
                rep: Vec::new(),
                has_def: column.max_def_level() > 0,
                has_rep: column.max_rep_level() > 0,
            })
            .collect();
        Ok(ColumnarFile {
            writer,
            leaves,
            rows: 0,
            rows_per_group: rows_per_group.max(1),
        })
    }

    fn str(&mut self, leaf: usize, value: Option<&str>, def: i16, rep: i16) {
        let leaf = &mut self.leaves[leaf];
        if let (Some(value), Values::Bytes(values)) = (value, &mut leaf.values) {
            values.push(ByteArray::from(value.as_bytes().to_vec()));
        }
        leaf.levels(def, rep);
    }

    fn int(&mut self, leaf: usize, value: Option<i64>, def: i16, rep: i16) {
        let leaf = &mut self.leaves[leaf];
        if let (Some(value), Values::Int64(values)) = (value, &mut leaf.values) {
            values.push(value);
        }
        leaf.levels(def, rep);
    }

    fn double(&mut self, leaf: usize, value: Option<f64>, def: i16, rep: i16) {
        let leaf = &mut self.leaves[leaf];
        if let (Some(value), Values::Double(values)) = (value, &mut leaf.values) {
            values.push(value);
        }
        leaf.levels(def, rep);
    }

    fn bool(&mut self, leaf: usize, value: bool) {
        let leaf = &mut self.leaves[leaf];
        if let Values::Bool(values) = &mut leaf.values {
            values.push(value);
        }
        leaf.levels(0, 0);
    }

    /// Ends a record; writes the row group when it is full.
    fn end_row(&mut self) -> io::Result<()> {
        self.rows += 1;
        if self.rows >= self.rows_per_group {
            self.write_group()?;
        }
        Ok(())
    }

    fn write_group(&mut self) -> io::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let mut row_group = self.writer.next_row_group().map_err(parquet_error)?;
        for leaf in &mut self.leaves {
            let Some(mut column) = row_group.next_column().map_err(parquet_error)? else {
                return Err(invalid(
                    "the Parquet schema has fewer columns than written".into(),
                ));
            };
            let def = leaf.has_def.then_some(leaf.def.as_slice());
            let rep = leaf.has_rep.then_some(leaf.rep.as_slice());
            match &mut leaf.values {
                Values::Bool(values) => column.typed::<BoolType>().write_batch(values, def, rep),
                Values::Int64(values) => column.typed::<Int64Type>().write_batch(values, def, rep),
                Values::Double(values) => {
                    column.typed::<DoubleType>().write_batch(values, def, rep)
                }
                Values::Bytes(values) => column
                    .typed::<ByteArrayType>()
                    .write_batch(values, def, rep),
            }
            .map_err(parquet_error)?;
            column.close().map_err(parquet_error)?;
            match &mut leaf.values {
                Values::Bool(values) => values.clear(),
                Values::Int64(values) => values.clear(),
                Values::Double(values) => values.clear(),
                Values::Bytes(values) => values.clear(),
            }
            leaf.def.clear();
            leaf.rep.clear();
        }
        row_group.close().map_err(parquet_error)?;
        self.rows = 0;
        Ok(())
    }

    /// Writes the last row group and the footer; returns the output.
    fn finish(mut self) -> io::Result<W> {
        self.write_group()?;
        self.writer.into_inner().map_err(parquet_error)
    }

    /// The bytes written so far (whole row groups), leaving the output empty.
    fn take_output(&mut self) -> io::Result<W>
    where
        W: Default,
    {
        self.writer.flush()?;
        Ok(std::mem::take(self.writer.inner_mut()))
    }
}

/// Writes one question's answer (`Code`: optional string, max def 1; `Codes`: optional list
/// of required strings, max def 2) into `leaf`, for the record `item` (named in errors).
fn write_answer<W: Write + Send>(
    file: &mut ColumnarFile<W>,
    leaf: usize,
    question: &AnswerColumn,
    value: Option<&Value>,
    item: &str,
) -> io::Result<()> {
    match (question.shape, value) {
        (_, None | Some(Value::Null)) => file.str(leaf, None, 0, 0),
        (AnswerShape::Code, Some(Value::String(code))) => file.str(leaf, Some(code), 1, 0),
        (AnswerShape::Codes, Some(Value::Array(codes))) if codes.is_empty() => {
            file.str(leaf, None, 1, 0)
        }
        (AnswerShape::Codes, Some(Value::Array(codes))) => {
            for (i, code) in codes.iter().enumerate() {
                let Value::String(code) = code else {
                    return Err(invalid(format!(
                        "item {item:?}, question {:?}: {code} is not a code",
                        question.key
                    )));
                };
                file.str(leaf, Some(code), 2, i16::from(i > 0));
            }
        }
        (shape, Some(other)) => {
            return Err(invalid(format!(
                "item {item:?}, question {:?}: {other} is not {}",
                question.key,
                match shape {
                    AnswerShape::Code => "one code",
                    AnswerShape::Codes => "a list of codes",
                }
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Release items.

/// Writes release items, one row per item:
///
/// ```text
/// item: string, source: string, adjudicated: bool, is_gold: bool, n_labels: int64,
/// guideline_versions: list<int64>,
/// label: struct<question: string | list<string>>,
/// soft_label: struct<question: struct<class: double>>   (null when there is no consensus)
/// agreement: struct<question: double>
/// ```
pub struct ReleaseItemParquetWriter<W: Write + Send> {
    file: ColumnarFile<W>,
    questions: Vec<AnswerColumn>,
}

/// Leaves before the per-question ones: item, source, adjudicated, is_gold, n_labels,
/// guideline_versions.element.
const ITEM_LEAVES: usize = 6;

impl<W: Write + Send> ReleaseItemParquetWriter<W> {
    /// `questions` fixes the columns; `metadata` goes into the footer (see [`release_metadata`]).
    pub fn new(
        out: W,
        questions: Vec<AnswerColumn>,
        metadata: Vec<(String, String)>,
        rows_per_group: usize,
    ) -> io::Result<Self> {
        if questions.is_empty() {
            return Err(invalid("a release file needs at least one question".into()));
        }
        if let Some(q) = questions.iter().find(|q| q.classes.is_empty()) {
            return Err(invalid(format!("question {:?} has no classes", q.key)));
        }
        let soft = questions
            .iter()
            .map(|q| {
                let classes = q
                    .classes
                    .iter()
                    .map(|c| primitive(c, Physical::DOUBLE, Repetition::REQUIRED, None))
                    .collect::<io::Result<Vec<_>>>()?;
                group(&q.key, Repetition::OPTIONAL, classes)
            })
            .collect::<io::Result<Vec<_>>>()?;
        let agreement = questions
            .iter()
            .map(|q| primitive(&q.key, Physical::DOUBLE, Repetition::OPTIONAL, None))
            .collect::<io::Result<Vec<_>>>()?;
        let schema = message(vec![
            string("item", Repetition::REQUIRED)?,
            string("source", Repetition::REQUIRED)?,
            primitive("adjudicated", Physical::BOOLEAN, Repetition::REQUIRED, None)?,
            primitive("is_gold", Physical::BOOLEAN, Repetition::REQUIRED, None)?,
            primitive("n_labels", Physical::INT64, Repetition::REQUIRED, None)?,
            list(
                "guideline_versions",
                Repetition::REQUIRED,
                primitive("element", Physical::INT64, Repetition::REQUIRED, None)?,
            )?,
            answer_struct("label", &questions)?,
            group("soft_label", Repetition::REQUIRED, soft)?,
            group("agreement", Repetition::REQUIRED, agreement)?,
        ])?;
        Ok(ReleaseItemParquetWriter {
            file: ColumnarFile::new(out, schema, metadata, rows_per_group)?,
            questions,
        })
    }

    pub fn write(&mut self, item: &ReleaseItem) -> io::Result<()> {
        // Check before writing anything, so a bad record leaves no half row behind.
        self.check(item)?;
        let file = &mut self.file;
        file.str(0, Some(&item.item), 0, 0);
        file.str(1, Some(&item.source), 0, 0);
        file.bool(2, item.adjudicated);
        file.bool(3, item.is_gold);
        file.int(4, Some(item.n_labels), 0, 0);
        if item.guideline_versions.is_empty() {
            file.int(5, None, 0, 0);
        }
        for (i, version) in item.guideline_versions.iter().enumerate() {
            file.int(5, Some(*version), 1, i16::from(i > 0));
        }
        let n = self.questions.len();
        for (q, question) in self.questions.iter().enumerate() {
            write_answer(
                file,
                ITEM_LEAVES + q,
                question,
                item.label.get(&question.key),
                &item.item,
            )?;
        }
        let mut leaf = ITEM_LEAVES + n;
        for question in &self.questions {
            let soft = item
                .soft_label
                .get(&question.key)
                .and_then(Value::as_object);
            for class in &question.classes {
                match soft {
                    // A class the posterior leaves out has probability 0 (only non-zero
                    // probabilities are stored).
                    Some(soft) => {
                        let p = soft.get(class).and_then(Value::as_f64).unwrap_or(0.0);
                        file.double(leaf, Some(p), 1, 0);
                    }
                    None => file.double(leaf, None, 0, 0),
                }
                leaf += 1;
            }
        }
        for question in &self.questions {
            let value = item.agreement.get(&question.key).and_then(Value::as_f64);
            file.double(leaf, value, i16::from(value.is_some()), 0);
            leaf += 1;
        }
        file.end_row()
    }

    /// Every question and soft-label class must be a column and every probability a number.
    fn check(&self, item: &ReleaseItem) -> io::Result<()> {
        for part in [&item.label, &item.soft_label, &item.agreement] {
            if let Some(question) = part
                .as_object()
                .into_iter()
                .flat_map(|fields| fields.keys())
                .find(|key| !self.questions.iter().any(|q| &q.key == *key))
            {
                return Err(invalid(format!(
                    "item {:?}: question {question:?} is in no published schema version",
                    item.item
                )));
            }
        }
        for question in &self.questions {
            match item.soft_label.get(&question.key) {
                None | Some(Value::Null) => {}
                Some(Value::Object(soft)) => {
                    for (class, p) in soft {
                        if !question.classes.contains(class) {
                            return Err(invalid(format!(
                                "item {:?}: the soft label of {:?} names class {class:?}, \
                                 which no published schema version lists",
                                item.item, question.key
                            )));
                        }
                        if !p.is_number() {
                            return Err(invalid(format!(
                                "item {:?}: the soft label of {:?} gives {class:?} {p}, not a number",
                                item.item, question.key
                            )));
                        }
                    }
                }
                Some(other) => {
                    return Err(invalid(format!(
                        "item {:?}: the soft label of {:?} is {other}, not {{class: probability}}",
                        item.item, question.key
                    )));
                }
            }
            match (question.shape, item.label.get(&question.key)) {
                (_, None | Some(Value::Null)) => {}
                (AnswerShape::Code, Some(Value::String(_))) => {}
                (AnswerShape::Codes, Some(Value::Array(codes)))
                    if codes.iter().all(Value::is_string) => {}
                (_, Some(other)) => {
                    return Err(invalid(format!(
                        "item {:?}: the label of {:?} is {other}, which does not fit the question",
                        item.item, question.key
                    )));
                }
            }
        }
        Ok(())
    }

    pub fn finish(self) -> io::Result<W> {
        self.file.finish()
    }

    pub fn take_output(&mut self) -> io::Result<W>
    where
        W: Default,
    {
        self.file.take_output()
    }
}

// ---------------------------------------------------------------------------------------
// Release labels.

/// Writes a release's individual labels, one row per label:
///
/// ```text
/// item: string, annotator: string, automated: bool, kind: string,
/// guideline_version: int64 (nullable), answer: struct<question: string | list<string>>
/// ```
pub struct ReleaseLabelParquetWriter<W: Write + Send> {
    file: ColumnarFile<W>,
    questions: Vec<AnswerColumn>,
}

impl<W: Write + Send> ReleaseLabelParquetWriter<W> {
    pub fn new(
        out: W,
        questions: Vec<AnswerColumn>,
        metadata: Vec<(String, String)>,
        rows_per_group: usize,
    ) -> io::Result<Self> {
        if questions.is_empty() {
            return Err(invalid("a release file needs at least one question".into()));
        }
        let schema = message(vec![
            string("item", Repetition::REQUIRED)?,
            string("annotator", Repetition::REQUIRED)?,
            primitive("automated", Physical::BOOLEAN, Repetition::REQUIRED, None)?,
            string("kind", Repetition::REQUIRED)?,
            primitive(
                "guideline_version",
                Physical::INT64,
                Repetition::OPTIONAL,
                None,
            )?,
            answer_struct("answer", &questions)?,
        ])?;
        Ok(ReleaseLabelParquetWriter {
            file: ColumnarFile::new(out, schema, metadata, rows_per_group)?,
            questions,
        })
    }

    pub fn write(&mut self, label: &ReleaseLabel) -> io::Result<()> {
        for question in &self.questions {
            match (question.shape, label.answer.get(&question.key)) {
                (_, None | Some(Value::Null)) => {}
                (AnswerShape::Code, Some(Value::String(_))) => {}
                (AnswerShape::Codes, Some(Value::Array(codes)))
                    if codes.iter().all(Value::is_string) => {}
                (_, Some(other)) => {
                    return Err(invalid(format!(
                        "item {:?}, annotator {}: the answer to {:?} is {other}, which does not fit the question",
                        label.item, label.annotator, question.key
                    )));
                }
            }
        }
        let file = &mut self.file;
        file.str(0, Some(&label.item), 0, 0);
        file.str(1, Some(&label.annotator), 0, 0);
        file.bool(2, label.automated);
        file.str(3, Some(&label.kind), 0, 0);
        file.int(
            4,
            label.guideline_version,
            i16::from(label.guideline_version.is_some()),
            0,
        );
        for (q, question) in self.questions.iter().enumerate() {
            write_answer(
                file,
                5 + q,
                question,
                label.answer.get(&question.key),
                &label.item,
            )?;
        }
        file.end_row()
    }

    pub fn finish(self) -> io::Result<W> {
        self.file.finish()
    }

    pub fn take_output(&mut self) -> io::Result<W>
    where
        W: Default,
    {
        self.file.take_output()
    }
}

// ---------------------------------------------------------------------------------------
// A project's export.

/// Writes a project's export, one row per item with its annotations as a list of structs:
///
/// ```text
/// id, item_type, title, state: string, priority: int64, is_gold: bool,
/// creators, metadata, text: JSON, media_url: string (nullable), gold_answer: JSON (nullable),
/// annotations: list<struct<id: int64, annotator: string, answer: JSON, rationale: string,
///   flags: JSON, guideline_version, time_spent_ms, supersedes: int64 (nullable),
///   is_late: bool, created_at: timestamp[ms, UTC]>>
/// ```
pub struct ExportParquetWriter<W: Write + Send> {
    file: ColumnarFile<W>,
}

impl<W: Write + Send> ExportParquetWriter<W> {
    pub fn new(out: W, rows_per_group: usize) -> io::Result<Self> {
        let optional_int = |name| primitive(name, Physical::INT64, Repetition::OPTIONAL, None);
        let annotation = group(
            "element",
            Repetition::REQUIRED,
            vec![
                primitive("id", Physical::INT64, Repetition::REQUIRED, None)?,
                string("annotator", Repetition::REQUIRED)?,
                json("answer", Repetition::REQUIRED)?,
                string("rationale", Repetition::REQUIRED)?,
                json("flags", Repetition::REQUIRED)?,
                optional_int("guideline_version")?,
                optional_int("time_spent_ms")?,
                optional_int("supersedes")?,
                primitive("is_late", Physical::BOOLEAN, Repetition::REQUIRED, None)?,
                primitive(
                    "created_at",
                    Physical::INT64,
                    Repetition::REQUIRED,
                    Some(LogicalType::timestamp(true, TimeUnit::MILLIS)),
                )?,
            ],
        )?;
        let schema = message(vec![
            string("id", Repetition::REQUIRED)?,
            string("item_type", Repetition::REQUIRED)?,
            string("title", Repetition::REQUIRED)?,
            string("state", Repetition::REQUIRED)?,
            primitive("priority", Physical::INT64, Repetition::REQUIRED, None)?,
            primitive("is_gold", Physical::BOOLEAN, Repetition::REQUIRED, None)?,
            json("creators", Repetition::REQUIRED)?,
            json("metadata", Repetition::REQUIRED)?,
            json("text", Repetition::REQUIRED)?,
            string("media_url", Repetition::OPTIONAL)?,
            json("gold_answer", Repetition::OPTIONAL)?,
            list("annotations", Repetition::REQUIRED, annotation)?,
        ])?;
        Ok(ExportParquetWriter {
            file: ColumnarFile::new(out, schema, Vec::new(), rows_per_group)?,
        })
    }

    pub fn write(&mut self, record: &ExportRecord) -> io::Result<()> {
        let file = &mut self.file;
        file.str(0, Some(&record.id), 0, 0);
        file.str(1, Some(&record.item_type), 0, 0);
        file.str(2, Some(&record.title), 0, 0);
        file.str(3, Some(&record.state), 0, 0);
        file.int(4, Some(record.priority), 0, 0);
        file.bool(5, record.is_gold);
        file.str(6, Some(record.creators.get()), 0, 0);
        file.str(7, Some(record.metadata.get()), 0, 0);
        file.str(8, Some(record.text.get()), 0, 0);
        let media_url = record.media_url.as_deref();
        file.str(9, media_url, i16::from(media_url.is_some()), 0);
        let gold = record.gold_answer.as_deref().map(|g| g.get());
        file.str(10, gold, i16::from(gold.is_some()), 0);
        // Annotation leaves 11..=20: an empty list is one null entry per leaf (def 0);
        // inside the list, required fields are at def 1 and present optional ones at def 2.
        if record.annotations.is_empty() {
            for leaf in 11..=20 {
                file.levels_only(leaf, 0, 0);
            }
        }
        for (i, a) in record.annotations.iter().enumerate() {
            let rep = i16::from(i > 0);
            let optional = |v: Option<i64>| i16::from(v.is_some()) + 1;
            file.int(11, Some(a.id), 1, rep);
            file.str(12, Some(&a.annotator), 1, rep);
            file.str(13, Some(a.answer.get()), 1, rep);
            file.str(14, Some(&a.rationale), 1, rep);
            file.str(15, Some(a.flags.get()), 1, rep);
            file.int(16, a.guideline_version, optional(a.guideline_version), rep);
            file.int(17, a.time_spent_ms, optional(a.time_spent_ms), rep);
            file.int(18, a.supersedes, optional(a.supersedes), rep);
            file.bool_at(19, a.is_late, 1, rep);
            file.int(20, Some(a.created_at), 1, rep);
        }
        file.end_row()
    }

    pub fn finish(self) -> io::Result<W> {
        self.file.finish()
    }

    pub fn take_output(&mut self) -> io::Result<W>
    where
        W: Default,
    {
        self.file.take_output()
    }
}

impl<W: Write + Send> ColumnarFile<W> {
    /// Levels without a value: a null or an empty list at this leaf.
    fn levels_only(&mut self, leaf: usize, def: i16, rep: i16) {
        self.leaves[leaf].levels(def, rep);
    }

    fn bool_at(&mut self, leaf: usize, value: bool, def: i16, rep: i16) {
        let leaf = &mut self.leaves[leaf];
        if let Values::Bool(values) = &mut leaf.values {
            values.push(value);
        }
        leaf.levels(def, rep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::items::{ExportAnnotation, raw_json};
    use ::parquet::basic::ConvertedType;
    use ::parquet::file::reader::{FileReader, SerializedFileReader};
    use serde_json::json;

    fn questions() -> Vec<AnswerColumn> {
        vec![
            AnswerColumn {
                key: "severity".into(),
                shape: AnswerShape::Code,
                classes: vec!["S0".into(), "S1".into(), "S2".into()],
            },
            AnswerColumn {
                key: "category".into(),
                shape: AnswerShape::Codes,
                classes: vec!["DG.VIOL".into(), "IL.LAW".into()],
            },
        ]
    }

    fn item(n: usize) -> ReleaseItem {
        ReleaseItem {
            item: format!("t{n}"),
            label: json!({"severity": "S1", "category": ["DG.VIOL", "IL.LAW"]}),
            source: "ds".into(),
            adjudicated: false,
            soft_label: json!({"severity": {"S1": 0.75, "S2": 0.25}, "category": {"DG.VIOL": 1.0}}),
            agreement: json!({"severity": 0.5, "category": null}),
            n_labels: 3,
            guideline_versions: vec![1, 2],
            is_gold: n == 0,
        }
    }

    fn read(bytes: Vec<u8>) -> (SerializedFileReader<std::fs::File>, Vec<Value>) {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        let reader = SerializedFileReader::new(file).unwrap();
        let rows = reader
            .get_row_iter(None)
            .unwrap()
            .map(|row| row.unwrap().to_json_value())
            .collect();
        (reader, rows)
    }

    #[test]
    fn release_items_round_trip_with_typed_columns_in_several_row_groups() {
        let metadata = release_metadata(&json!({
            "name": "v1", "method": "ds", "created_by": "priya", "summary": {"gold_accuracy": 0.9}
        }))
        .unwrap();
        let mut writer =
            ReleaseItemParquetWriter::new(Vec::new(), questions(), metadata, 2).unwrap();
        let mut streamed = Vec::new();
        for n in 0..5 {
            let mut record = item(n);
            if n == 3 {
                // Decided by an expert without a consensus: no soft label, no agreement,
                // no categories, no guideline versions.
                record.source = "adjudicated".into();
                record.adjudicated = true;
                record.label = json!({"severity": "S2", "category": []});
                record.soft_label = json!({});
                record.agreement = json!({});
                record.guideline_versions = vec![];
            }
            writer.write(&record).unwrap();
            streamed.extend(writer.take_output().unwrap());
        }
        streamed.extend(writer.finish().unwrap());

        let (reader, rows) = read(streamed);
        let meta = reader.metadata();
        assert_eq!(meta.num_row_groups(), 3, "two items per row group");
        let kv = meta.file_metadata().key_value_metadata().unwrap();
        let value = |key: &str| {
            kv.iter()
                .find(|k| k.key == key)
                .and_then(|k| k.value.clone())
                .unwrap()
        };
        assert_eq!(value(QA_SUMMARY_KEY), r#"{"gold_accuracy":0.9}"#);
        assert_eq!(value(RELEASE_KEY), r#"{"method":"ds","name":"v1"}"#);

        let schema = meta.file_metadata().schema_descr();
        let column = |path: &str| {
            schema
                .columns()
                .iter()
                .find(|c| c.path().string() == path)
                .unwrap_or_else(|| panic!("no column {path}"))
                .clone()
        };
        assert_eq!(column("n_labels").physical_type(), Physical::INT64);
        assert_eq!(column("adjudicated").physical_type(), Physical::BOOLEAN);
        assert_eq!(
            column("soft_label.severity.S0").physical_type(),
            Physical::DOUBLE
        );
        assert_eq!(
            column("agreement.severity").physical_type(),
            Physical::DOUBLE
        );
        assert_eq!(
            column("label.severity").converted_type(),
            ConvertedType::UTF8
        );
        assert_eq!(column("label.category.list.element").max_rep_level(), 1);
        assert_eq!(
            column("guideline_versions.list.element").physical_type(),
            Physical::INT64
        );

        assert_eq!(rows.len(), 5);
        assert_eq!(
            rows[0],
            json!({
                "item": "t0", "source": "ds", "adjudicated": false, "is_gold": true,
                "n_labels": 3, "guideline_versions": [1, 2],
                "label": {"severity": "S1", "category": ["DG.VIOL", "IL.LAW"]},
                "soft_label": {
                    "severity": {"S0": 0.0, "S1": 0.75, "S2": 0.25},
                    "category": {"DG.VIOL": 1.0, "IL.LAW": 0.0}
                },
                "agreement": {"severity": 0.5, "category": null}
            })
        );
        assert_eq!(
            rows[3],
            json!({
                "item": "t3", "source": "adjudicated", "adjudicated": true, "is_gold": false,
                "n_labels": 3, "guideline_versions": [],
                "label": {"severity": "S2", "category": []},
                "soft_label": {"severity": null, "category": null},
                "agreement": {"severity": null, "category": null}
            })
        );
    }

    #[test]
    fn a_record_that_does_not_fit_the_columns_is_refused_and_leaves_no_half_row() {
        let mut writer =
            ReleaseItemParquetWriter::new(Vec::new(), questions(), Vec::new(), 10).unwrap();
        let mut unknown_class = item(1);
        unknown_class.soft_label = json!({"severity": {"S9": 1.0}});
        let e = writer.write(&unknown_class).unwrap_err();
        assert!(e.to_string().contains(r#"names class "S9""#), "{e}");
        let mut unknown_question = item(1);
        unknown_question.label = json!({"mood": "calm"});
        let e = writer.write(&unknown_question).unwrap_err();
        assert!(e.to_string().contains(r#"question "mood""#), "{e}");
        let mut list_for_code = item(2);
        list_for_code.label = json!({"severity": ["S1"]});
        let e = writer.write(&list_for_code).unwrap_err();
        assert!(e.to_string().contains("does not fit the question"), "{e}");
        writer.write(&item(3)).unwrap();
        let (_, rows) = read(writer.finish().unwrap());
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["item"], "t3");
    }

    #[test]
    fn release_labels_have_one_row_per_label_with_the_answer_as_a_struct() {
        let mut writer =
            ReleaseLabelParquetWriter::new(Vec::new(), questions(), Vec::new(), 10).unwrap();
        for (annotator, kind, answer, version) in [
            (
                "a1",
                "label",
                json!({"severity": "S0", "category": ["IL.LAW"]}),
                Some(2),
            ),
            ("a2", "unsure", json!({"severity": "S1"}), None),
        ] {
            writer
                .write(&ReleaseLabel {
                    item: "t1".into(),
                    annotator: annotator.into(),
                    automated: false,
                    kind: kind.into(),
                    answer,
                    guideline_version: version,
                })
                .unwrap();
        }
        let (_, rows) = read(writer.finish().unwrap());
        assert_eq!(
            rows,
            vec![
                json!({"item": "t1", "annotator": "a1", "automated": false, "kind": "label",
                       "guideline_version": 2,
                       "answer": {"severity": "S0", "category": ["IL.LAW"]}}),
                json!({"item": "t1", "annotator": "a2", "automated": false, "kind": "unsure",
                       "guideline_version": null,
                       "answer": {"severity": "S1", "category": null}}),
            ]
        );
    }

    #[test]
    fn an_export_keeps_each_items_annotations_as_a_list_of_structs() {
        let record = |id: &str, annotations: Vec<ExportAnnotation>| ExportRecord {
            id: id.into(),
            item_type: "track".into(),
            title: "Harbour lamps".into(),
            state: "open".into(),
            priority: 2,
            is_gold: false,
            creators: raw_json(r#"[{"name":"Odo"}]"#.into()),
            metadata: raw_json("{}".into()),
            text: raw_json(r#"{"lyrics_excerpt":"la"}"#.into()),
            media_url: None,
            gold_answer: None,
            annotations,
        };
        let annotation = |id: i64, supersedes: Option<i64>| ExportAnnotation {
            id,
            annotator: "ana".into(),
            answer: raw_json(r#"{"severity":"S1"}"#.into()),
            rationale: String::new(),
            flags: raw_json("[]".into()),
            guideline_version: Some(1),
            time_spent_ms: None,
            supersedes,
            is_late: false,
            created_at: 1_700_000_000_000,
        };
        let mut writer = ExportParquetWriter::new(Vec::new(), 10).unwrap();
        writer.write(&record("it_1", vec![])).unwrap();
        writer
            .write(&record(
                "it_2",
                vec![annotation(7, None), annotation(9, Some(7))],
            ))
            .unwrap();
        let (reader, rows) = read(writer.finish().unwrap());
        assert_eq!(rows[0]["annotations"], json!([]));
        let annotations = rows[1]["annotations"].as_array().unwrap();
        assert_eq!(annotations.len(), 2);
        assert_eq!(annotations[1]["id"], 9);
        assert_eq!(annotations[1]["supersedes"], 7);
        assert_eq!(annotations[0]["supersedes"], Value::Null);
        assert_eq!(annotations[0]["time_spent_ms"], Value::Null);
        assert_eq!(rows[1]["creators"], r#"[{"name":"Odo"}]"#);
        let schema = reader.metadata().file_metadata().schema_descr();
        let created = schema
            .columns()
            .iter()
            .find(|c| c.path().string() == "annotations.list.element.created_at")
            .unwrap();
        assert_eq!(
            created.logical_type_ref(),
            Some(&LogicalType::timestamp(true, TimeUnit::MILLIS))
        );
    }
}
