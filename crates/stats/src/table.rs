//! The annotation table: (item, annotator, label) rows with interned ids, stored
//! columnar and indexed both by item and (built on first use) by annotator (CSR).
//!
//! Rows are kept grouped by item in input order within each item, so "the last
//! rating of an annotator on an item" is well defined (conformance README, item 10).

use std::sync::OnceLock;

use serde::Serialize;

use crate::intern::Interner;

/// How label strings are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelKind {
    /// Unordered names (sorted by name unless categories are declared).
    Category,
    /// Integers; ordered by value.
    Int,
    /// Real numbers; ordered by value.
    Float,
    /// true / false (also 1/0, yes/no).
    Bool,
    /// Multi-label: a set of categories per rating, written as a JSON list or `a|b|c`.
    Set,
}

/// What the user asked for with `--label-type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LabelTypeRequest {
    /// Integers if every label parses as one, else categories. Sets only when asked.
    #[default]
    Auto,
    Exactly(LabelKind),
}

impl std::str::FromStr for LabelTypeRequest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "auto" => Self::Auto,
            "category" | "str" | "string" => Self::Exactly(LabelKind::Category),
            "int" | "integer" => Self::Exactly(LabelKind::Int),
            "float" | "real" => Self::Exactly(LabelKind::Float),
            "bool" | "boolean" => Self::Exactly(LabelKind::Bool),
            "set" | "multi-label" => Self::Exactly(LabelKind::Set),
            other => {
                return Err(format!(
                    "unknown label type '{other}' (expected auto, category, int, float, bool or set)"
                ));
            }
        })
    }
}

/// How labels are interpreted: the kind and, optionally, the declared categories.
#[derive(Clone, Debug, Default)]
pub struct LabelSpec {
    pub kind: LabelTypeRequest,
    /// Declared categories, in order. With sets these are the allowed elements.
    pub categories: Option<Vec<String>>,
}

/// Why a label could not be read. `raw_label` is the id in the raw-label interner,
/// so the reader can point at the line where it first appeared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("label '{label}': {reason}")]
pub struct LabelError {
    pub raw_label: u32,
    pub label: String,
    pub reason: String,
}

/// Errors building a table.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TableError {
    #[error(transparent)]
    Label(#[from] LabelError),
    #[error("declared category '{0}' is not a valid {1}")]
    BadCategory(String, &'static str),
    #[error("declared category '{0}' is listed twice")]
    DuplicateCategory(String),
    #[error("more than {0} rows: the table indexes rows with 32-bit ids")]
    TooManyRows(u64),
}

/// The distinct label values of a table, in their canonical order.
#[derive(Clone, Debug)]
pub struct ValueDomain {
    kind: LabelKind,
    names: Vec<String>,
    numeric: Vec<f64>,
    sets: Vec<Vec<u32>>,
    elements: Vec<String>,
    declared: bool,
    /// Rank of each value by first appearance in the input (unused declared values last).
    first_seen: Vec<u32>,
}

impl ValueDomain {
    pub fn kind(&self) -> LabelKind {
        self.kind
    }
    /// Number of values (categories; distinct sets for multi-label).
    pub fn len(&self) -> usize {
        self.names.len()
    }
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
    pub fn name(&self, value: u32) -> &str {
        &self.names[value as usize]
    }
    pub fn names(&self) -> &[String] {
        &self.names
    }
    /// Whether the categories were declared by the user (then unused ones count).
    pub fn declared(&self) -> bool {
        self.declared
    }
    /// Numeric value of each category when labels are numbers (Int, Float, Bool).
    pub fn numeric_values(&self) -> Option<&[f64]> {
        match self.kind {
            LabelKind::Int | LabelKind::Float | LabelKind::Bool => Some(&self.numeric),
            LabelKind::Category | LabelKind::Set => None,
        }
    }
    /// For multi-label tables: the element ids of each value.
    pub fn set_members(&self, value: u32) -> &[u32] {
        &self.sets[value as usize]
    }
    /// For multi-label tables: element names.
    pub fn elements(&self) -> &[String] {
        &self.elements
    }
    pub fn is_sets(&self) -> bool {
        self.kind == LabelKind::Set
    }
    /// Rank of `value` by first appearance in the input (some models order labels so).
    pub fn first_seen_rank(&self, value: u32) -> u32 {
        self.first_seen
            .get(value as usize)
            .copied()
            .unwrap_or(value)
    }
    /// The value a label string denotes, read the way the table's labels were read
    /// ("01" is 1 for integers, "yes" is true for booleans, "b|a" is {a, b} for sets).
    pub fn find_label(&self, label: &str) -> Option<u32> {
        match self.kind {
            LabelKind::Int => {
                let v = parse_int(label)? as f64;
                self.numeric.iter().position(|x| *x == v).map(|i| i as u32)
            }
            LabelKind::Float => {
                let v = parse_float(label)?;
                self.numeric.iter().position(|x| *x == v).map(|i| i as u32)
            }
            LabelKind::Bool => {
                let v = if parse_bool(label)? { 1.0 } else { 0.0 };
                self.numeric.iter().position(|x| *x == v).map(|i| i as u32)
            }
            LabelKind::Category => self.find(label),
            LabelKind::Set => {
                let members = parse_set(label).ok()?;
                let mut ids: Vec<u32> = members
                    .iter()
                    .map(|m| self.elements.iter().position(|e| e == m).map(|i| i as u32))
                    .collect::<Option<_>>()?;
                ids.sort_unstable();
                ids.dedup();
                self.sets.iter().position(|s| *s == ids).map(|i| i as u32)
            }
        }
    }
    /// The value whose name is `name`.
    pub fn find(&self, name: &str) -> Option<u32> {
        self.names.iter().position(|n| n == name).map(|i| i as u32)
    }

    /// A domain built from the given category names (used by tests and the case runner).
    pub fn categories(names: Vec<String>) -> Self {
        let numeric = (0..names.len()).map(|i| i as f64).collect();
        Self {
            kind: LabelKind::Category,
            names,
            numeric,
            sets: Vec::new(),
            elements: Vec::new(),
            declared: true,
            first_seen: Vec::new(),
        }
    }
}

/// Accumulates rows in input order, interning ids. Readers fill it; `build` resolves
/// labels and builds the indexes.
#[derive(Default, Clone, Debug)]
pub struct TableBuilder {
    pub items: Interner,
    pub annotators: Interner,
    /// Raw label strings as written in the file.
    pub raw_labels: Interner,
    pub row_item: Vec<u32>,
    pub row_annotator: Vec<u32>,
    pub row_raw_label: Vec<u32>,
}

impl TableBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, item: &str, annotator: &str, label: &str) {
        let item = self.items.intern(item).0;
        let annotator = self.annotators.intern(annotator).0;
        let label = self.raw_labels.intern(label).0;
        self.push_ids(item, annotator, label);
    }

    pub fn push_ids(&mut self, item: u32, annotator: u32, raw_label: u32) {
        self.row_item.push(item);
        self.row_annotator.push(annotator);
        self.row_raw_label.push(raw_label);
    }

    pub fn len(&self) -> usize {
        self.row_item.len()
    }

    pub fn is_empty(&self) -> bool {
        self.row_item.is_empty()
    }

    /// Resolve labels and build the indexed table.
    pub fn build(self, spec: &LabelSpec) -> Result<AnnotationTable, TableError> {
        let (domain, raw_to_value) = resolve_labels(&self.raw_labels, spec)?;
        AnnotationTable::from_columns(
            self.items,
            self.annotators,
            domain,
            self.row_item,
            self.row_annotator,
            self.row_raw_label,
            &raw_to_value,
        )
    }
}

/// The annotation table. Immutable once built.
#[derive(Clone, Debug)]
pub struct AnnotationTable {
    items: Interner,
    annotators: Interner,
    values: ValueDomain,
    /// `item_offsets[i]..item_offsets[i+1]` are item i's rows.
    item_offsets: Vec<u32>,
    row_annotator: Vec<u32>,
    row_label: Vec<u32>,
    /// Built on first use: majority vote and the count-based coefficients never need it,
    /// and it is as large as the item-major columns.
    by_annotator: OnceLock<AnnotatorIndex>,
}

/// Rows of annotator a: `rows[offsets[a]..offsets[a+1]]`, with the item and the value of
/// each (sequential reads instead of a search or a random access per lookup).
#[derive(Clone, Debug)]
struct AnnotatorIndex {
    offsets: Vec<u32>,
    rows: Vec<u32>,
    items: Vec<u32>,
    values: Vec<u32>,
}

impl AnnotatorIndex {
    fn build(
        n_annotators: usize,
        item_offsets: &[u32],
        row_annotator: &[u32],
        row_label: &[u32],
    ) -> Self {
        let n_rows = row_annotator.len();
        let offsets = offsets_from_keys(row_annotator, n_annotators);
        let mut cursor: Vec<u32> = offsets[..n_annotators].to_vec();
        let mut rows = vec![0u32; n_rows];
        let mut items = vec![0u32; n_rows];
        let mut values = vec![0u32; n_rows];
        for (item, span) in item_offsets.windows(2).enumerate() {
            for row in span[0]..span[1] {
                let slot = &mut cursor[row_annotator[row as usize] as usize];
                rows[*slot as usize] = row;
                items[*slot as usize] = item as u32;
                values[*slot as usize] = row_label[row as usize];
                *slot += 1;
            }
        }
        Self {
            offsets,
            rows,
            items,
            values,
        }
    }

    fn span(&self, annotator: u32) -> std::ops::Range<usize> {
        let a = annotator as usize;
        self.offsets[a] as usize..self.offsets[a + 1] as usize
    }

    fn heap_bytes(&self) -> usize {
        (self.offsets.capacity()
            + self.rows.capacity()
            + self.items.capacity()
            + self.values.capacity())
            * 4
    }
}

impl AnnotationTable {
    /// Group input-order columns by item, keeping input order within an item. Rows that
    /// already come grouped (the usual file layout) stay where they are; otherwise each
    /// column is moved in turn, so at most one extra column is alive at a time.
    fn from_columns(
        items: Interner,
        annotators: Interner,
        values: ValueDomain,
        row_item: Vec<u32>,
        row_annotator: Vec<u32>,
        row_raw_label: Vec<u32>,
        raw_to_value: &[u32],
    ) -> Result<Self, TableError> {
        let n_rows = row_item.len();
        if n_rows >= u32::MAX as usize {
            return Err(TableError::TooManyRows(u32::MAX as u64));
        }
        let n_items = items.len();
        let item_offsets = offsets_from_keys(&row_item, n_items);
        // Items are numbered in order of first appearance, so grouped rows have
        // non-decreasing item ids.
        let (row_annotator, mut row_label) = if row_item.is_sorted() {
            drop(row_item);
            // Readers reserve from an estimate; give back what the rows did not use.
            let (mut row_annotator, mut row_label) = (row_annotator, row_raw_label);
            row_annotator.shrink_to_fit();
            row_label.shrink_to_fit();
            (row_annotator, row_label)
        } else {
            let row_annotator = group_by_item(&row_item, &item_offsets, row_annotator);
            let row_label = group_by_item(&row_item, &item_offsets, row_raw_label);
            (row_annotator, row_label)
        };
        for label in &mut row_label {
            *label = raw_to_value[*label as usize];
        }
        Ok(Self {
            items,
            annotators,
            values,
            item_offsets,
            row_annotator,
            row_label,
            by_annotator: OnceLock::new(),
        })
    }

    /// Build directly from (item, annotator, label) string triples.
    pub fn from_triples<'a>(
        triples: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
        spec: &LabelSpec,
    ) -> Result<Self, TableError> {
        let mut builder = TableBuilder::new();
        for (item, annotator, label) in triples {
            builder.push(item, annotator, label);
        }
        builder.build(spec)
    }

    pub fn n_items(&self) -> usize {
        self.items.len()
    }
    pub fn n_annotators(&self) -> usize {
        self.annotators.len()
    }
    pub fn n_rows(&self) -> usize {
        self.row_label.len()
    }
    pub fn n_values(&self) -> usize {
        self.values.len()
    }
    pub fn items(&self) -> &Interner {
        &self.items
    }
    pub fn annotators(&self) -> &Interner {
        &self.annotators
    }
    pub fn values(&self) -> &ValueDomain {
        &self.values
    }
    pub fn item_name(&self, item: u32) -> &str {
        self.items.name(item)
    }
    pub fn annotator_name(&self, annotator: u32) -> &str {
        self.annotators.name(annotator)
    }

    /// Row range of an item.
    #[inline]
    pub fn item_rows(&self, item: u32) -> std::ops::Range<usize> {
        self.item_offsets[item as usize] as usize..self.item_offsets[item as usize + 1] as usize
    }
    /// (annotator, value) of each rating of `item`, in input order.
    #[inline]
    pub fn item_ratings(&self, item: u32) -> impl ExactSizeIterator<Item = (u32, u32)> + '_ {
        let range = self.item_rows(item);
        self.row_annotator[range.clone()]
            .iter()
            .copied()
            .zip(self.row_label[range].iter().copied())
    }
    /// The item-ordered columns at once, for tight loops over many items: item offsets
    /// (`offsets[i]..offsets[i + 1]` are item i's rows), then each row's annotator and value.
    #[inline]
    pub fn item_columns(&self) -> (&[u32], &[u32], &[u32]) {
        (&self.item_offsets, &self.row_annotator, &self.row_label)
    }
    /// Values of `item`'s ratings, in input order.
    #[inline]
    pub fn item_values(&self, item: u32) -> &[u32] {
        &self.row_label[self.item_rows(item)]
    }
    /// Annotators of `item`'s ratings, in input order.
    #[inline]
    pub fn item_annotators(&self, item: u32) -> &[u32] {
        &self.row_annotator[self.item_rows(item)]
    }
    fn by_annotator(&self) -> &AnnotatorIndex {
        self.by_annotator.get_or_init(|| {
            AnnotatorIndex::build(
                self.annotators.len(),
                &self.item_offsets,
                &self.row_annotator,
                &self.row_label,
            )
        })
    }
    /// Row ids (into the item-ordered columns) of `annotator`'s ratings.
    pub fn annotator_rows(&self, annotator: u32) -> &[u32] {
        let index = self.by_annotator();
        &index.rows[index.span(annotator)]
    }
    /// Items of `annotator`'s ratings, parallel to `annotator_rows` (in item order).
    pub fn annotator_items(&self, annotator: u32) -> &[u32] {
        let index = self.by_annotator();
        &index.items[index.span(annotator)]
    }
    /// Values of `annotator`'s ratings, parallel to `annotator_rows`.
    pub fn annotator_values(&self, annotator: u32) -> &[u32] {
        let index = self.by_annotator();
        &index.values[index.span(annotator)]
    }
    /// Number of ratings of each annotator (one pass over the rows; no annotator index).
    pub fn annotator_rating_counts(&self) -> Vec<u32> {
        let mut counts = vec![0u32; self.n_annotators()];
        for &annotator in &self.row_annotator {
            counts[annotator as usize] += 1;
        }
        counts
    }
    /// The item of a row (binary search over item offsets).
    pub fn row_item(&self, row: u32) -> u32 {
        (self.item_offsets.partition_point(|&start| start <= row) - 1) as u32
    }
    pub fn row_value(&self, row: u32) -> u32 {
        self.row_label[row as usize]
    }
    pub fn row_annotator(&self, row: u32) -> u32 {
        self.row_annotator[row as usize]
    }

    /// Heap bytes of the row columns and the indexes built so far (interned names
    /// excluded); the annotator index is built on first use.
    pub fn index_bytes(&self) -> usize {
        (self.item_offsets.capacity() + self.row_annotator.capacity() + self.row_label.capacity())
            * 4
            + self
                .by_annotator
                .get()
                .map_or(0, AnnotatorIndex::heap_bytes)
    }
    /// All heap bytes including interned names.
    pub fn heap_bytes(&self) -> usize {
        self.index_bytes() + self.items.heap_bytes() + self.annotators.heap_bytes()
    }
}

/// `column` reordered so each item's rows are together, in input order within the item
/// (a stable counting sort on `row_item`).
fn group_by_item(row_item: &[u32], item_offsets: &[u32], column: Vec<u32>) -> Vec<u32> {
    let mut cursor: Vec<u32> = item_offsets[..item_offsets.len() - 1].to_vec();
    let mut grouped = vec![0u32; column.len()];
    for (&item, value) in row_item.iter().zip(column) {
        let slot = &mut cursor[item as usize];
        grouped[*slot as usize] = value;
        *slot += 1;
    }
    grouped
}

/// Counting-sort offsets: `offsets[k]..offsets[k+1]` is the span of key k.
fn offsets_from_keys(keys: &[u32], n_keys: usize) -> Vec<u32> {
    let mut offsets = crate::buffers::written_zeros(n_keys + 1);
    for &key in keys {
        offsets[key as usize + 1] += 1;
    }
    for k in 0..n_keys {
        offsets[k + 1] += offsets[k];
    }
    offsets
}

// ---------------------------------------------------------------------------
// Label resolution
// ---------------------------------------------------------------------------

fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    t.parse::<i64>().ok()
}

fn parse_float(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "yes" | "y" => Some(true),
        "false" | "f" | "0" | "no" | "n" => Some(false),
        _ => None,
    }
}

/// Parse a multi-label answer: a JSON list (`["a","b"]`, `[1,2]`) or `a|b|c`.
/// An empty string or `[]` is the empty set.
pub fn parse_set(s: &str) -> Result<Vec<String>, String> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(inner) = t.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| "a list must end with ']'".to_string())?;
        return parse_json_like_list(inner);
    }
    Ok(t.split('|')
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect())
}

/// Minimal parser for the inside of a JSON list of strings / numbers / booleans.
fn parse_json_like_list(inner: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        if c == '"' {
            chars.next();
            let mut element = String::new();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some('n') => element.push('\n'),
                        Some('t') => element.push('\t'),
                        Some('u') => {
                            let hex: String = chars.by_ref().take(4).collect();
                            let code = u32::from_str_radix(&hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| format!("bad escape \\u{hex}"))?;
                            element.push(code);
                        }
                        Some(other) => element.push(other),
                        None => return Err("unterminated escape".into()),
                    },
                    other => element.push(other),
                }
            }
            if !closed {
                return Err("unterminated string in list".into());
            }
            out.push(element);
        } else {
            let mut element = String::new();
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                element.push(c);
                chars.next();
            }
            let element = element.trim();
            if element.is_empty() {
                return Err("empty element in list".into());
            }
            out.push(element.to_string());
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => break,
            Some(',') => continue,
            Some(other) => return Err(format!("unexpected '{other}' in list")),
        }
    }
    Ok(out)
}

fn kind_name(kind: LabelKind) -> &'static str {
    match kind {
        LabelKind::Category => "category",
        LabelKind::Int => "integer",
        LabelKind::Float => "number",
        LabelKind::Bool => "boolean",
        LabelKind::Set => "set",
    }
}

/// Turn the raw label strings into a value domain and a raw-id → value-id map.
pub fn resolve_labels(
    raw: &Interner,
    spec: &LabelSpec,
) -> Result<(ValueDomain, Vec<u32>), TableError> {
    let (mut domain, raw_to_value) = resolve_label_values(raw, spec)?;
    // Raw ids are in first-seen order, so the first raw id of a value dates it.
    let mut first_seen = vec![u32::MAX; domain.len()];
    let mut next = 0u32;
    for &value in &raw_to_value {
        if first_seen[value as usize] == u32::MAX {
            first_seen[value as usize] = next;
            next += 1;
        }
    }
    for rank in first_seen.iter_mut().filter(|r| **r == u32::MAX) {
        *rank = next;
        next += 1;
    }
    domain.first_seen = first_seen;
    Ok((domain, raw_to_value))
}

fn resolve_label_values(
    raw: &Interner,
    spec: &LabelSpec,
) -> Result<(ValueDomain, Vec<u32>), TableError> {
    let kind = match spec.kind {
        LabelTypeRequest::Exactly(kind) => kind,
        LabelTypeRequest::Auto => {
            let all_ints = !raw.is_empty() && raw.names().all(|s| parse_int(s).is_some());
            let declared_ints = spec
                .categories
                .as_ref()
                .is_none_or(|c| c.iter().all(|s| parse_int(s).is_some()));
            if all_ints && declared_ints {
                LabelKind::Int
            } else {
                LabelKind::Category
            }
        }
    };
    let bad = |raw_id: u32, reason: String| {
        TableError::Label(LabelError {
            raw_label: raw_id,
            label: raw.name(raw_id).to_string(),
            reason,
        })
    };
    let not_declared = |raw_id: u32| bad(raw_id, "not one of the declared categories".to_string());
    let declared = spec.categories.is_some();
    match kind {
        LabelKind::Int | LabelKind::Float | LabelKind::Bool => {
            let parse = |s: &str| -> Option<f64> {
                match kind {
                    LabelKind::Int => parse_int(s).map(|v| v as f64),
                    LabelKind::Float => parse_float(s),
                    _ => parse_bool(s).map(|b| if b { 1.0 } else { 0.0 }),
                }
            };
            let canonical = |v: f64| -> String {
                match kind {
                    LabelKind::Int => format!("{}", v as i64),
                    LabelKind::Bool => (if v == 1.0 { "true" } else { "false" }).to_string(),
                    _ => format!("{v}"),
                }
            };
            let mut numeric: Vec<f64> = match &spec.categories {
                Some(categories) => {
                    let mut seen = Vec::with_capacity(categories.len());
                    for c in categories {
                        let v = parse(c)
                            .ok_or_else(|| TableError::BadCategory(c.clone(), kind_name(kind)))?;
                        if seen.contains(&v) {
                            return Err(TableError::DuplicateCategory(c.clone()));
                        }
                        seen.push(v);
                    }
                    seen
                }
                None => Vec::new(),
            };
            let mut raw_numeric = Vec::with_capacity(raw.len());
            for (id, s) in raw.names().enumerate() {
                let v = parse(s)
                    .ok_or_else(|| bad(id as u32, format!("not a valid {}", kind_name(kind))))?;
                raw_numeric.push(v);
            }
            if !declared {
                numeric = raw_numeric.clone();
                numeric.sort_by(f64::total_cmp);
                numeric.dedup();
            }
            let mut raw_to_value = Vec::with_capacity(raw.len());
            for (id, v) in raw_numeric.iter().enumerate() {
                let value = numeric
                    .iter()
                    .position(|x| x == v)
                    .ok_or_else(|| not_declared(id as u32))?;
                raw_to_value.push(value as u32);
            }
            let names = numeric.iter().map(|&v| canonical(v)).collect();
            Ok((
                ValueDomain {
                    kind,
                    names,
                    numeric,
                    sets: Vec::new(),
                    elements: Vec::new(),
                    declared,
                    first_seen: Vec::new(),
                },
                raw_to_value,
            ))
        }
        LabelKind::Category => {
            let names: Vec<String> = match &spec.categories {
                Some(categories) => {
                    let mut names: Vec<String> = Vec::with_capacity(categories.len());
                    for c in categories {
                        if names.contains(c) {
                            return Err(TableError::DuplicateCategory(c.clone()));
                        }
                        names.push(c.clone());
                    }
                    names
                }
                None => {
                    let mut names: Vec<String> = raw.names().map(str::to_string).collect();
                    names.sort();
                    names
                }
            };
            let mut index = rustc_hash::FxHashMap::default();
            for (i, n) in names.iter().enumerate() {
                index.insert(n.as_str(), i as u32);
            }
            let mut raw_to_value = Vec::with_capacity(raw.len());
            for (id, s) in raw.names().enumerate() {
                raw_to_value.push(*index.get(s).ok_or_else(|| not_declared(id as u32))?);
            }
            let numeric = (0..names.len()).map(|i| i as f64).collect();
            Ok((
                ValueDomain {
                    kind,
                    names,
                    numeric,
                    sets: Vec::new(),
                    elements: Vec::new(),
                    declared,
                    first_seen: Vec::new(),
                },
                raw_to_value,
            ))
        }
        LabelKind::Set => {
            let mut elements: Vec<String> = spec.categories.clone().unwrap_or_default();
            let mut parsed = Vec::with_capacity(raw.len());
            for (id, s) in raw.names().enumerate() {
                let members = parse_set(s).map_err(|reason| bad(id as u32, reason))?;
                for m in &members {
                    if !elements.contains(m) {
                        if declared {
                            return Err(bad(
                                id as u32,
                                format!("element '{m}' is not one of the declared categories"),
                            ));
                        }
                        elements.push(m.clone());
                    }
                }
                parsed.push(members);
            }
            if !declared {
                elements.sort();
            }
            let element_id = |m: &str| elements.iter().position(|e| e == m).unwrap_or(0) as u32;
            let mut canonical: Vec<Vec<u32>> = parsed
                .iter()
                .map(|members| {
                    let mut ids: Vec<u32> = members.iter().map(|m| element_id(m)).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    ids
                })
                .collect();
            let mut sets = canonical.clone();
            sets.sort();
            sets.dedup();
            let raw_to_value = canonical
                .drain(..)
                .map(|s| sets.binary_search(&s).unwrap_or(0) as u32)
                .collect();
            let names = sets
                .iter()
                .map(|s| {
                    s.iter()
                        .map(|&e| elements[e as usize].as_str())
                        .collect::<Vec<_>>()
                        .join("|")
                })
                .collect();
            let numeric = (0..sets.len()).map(|i| i as f64).collect();
            Ok((
                ValueDomain {
                    kind,
                    names,
                    numeric,
                    sets,
                    elements,
                    declared,
                    first_seen: Vec::new(),
                },
                raw_to_value,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[(&str, &str, &str)], spec: &LabelSpec) -> AnnotationTable {
        AnnotationTable::from_triples(rows.iter().copied(), spec).unwrap()
    }

    #[test]
    fn integer_labels_are_detected_and_ordered_by_value() {
        let t = table(
            &[("i1", "a", "10"), ("i1", "b", "9"), ("i2", "a", "+9")],
            &LabelSpec::default(),
        );
        assert_eq!(t.values().kind(), LabelKind::Int);
        assert_eq!(t.values().names(), ["9", "10"]);
        assert_eq!(t.item_values(0), [1, 0]);
        assert_eq!(t.item_values(1), [0]);
    }

    #[test]
    fn text_labels_are_categories_sorted_by_name() {
        let t = table(
            &[("i1", "a", "spam"), ("i1", "b", "ham")],
            &LabelSpec::default(),
        );
        assert_eq!(t.values().kind(), LabelKind::Category);
        assert_eq!(t.values().names(), ["ham", "spam"]);
    }

    #[test]
    fn rows_are_grouped_by_item_in_input_order_and_indexed_by_annotator() {
        let t = table(
            &[
                ("x", "a", "1"),
                ("y", "b", "2"),
                ("x", "b", "3"),
                ("x", "a", "2"),
            ],
            &LabelSpec::default(),
        );
        assert_eq!(
            t.item_ratings(0).collect::<Vec<_>>(),
            [(0, 0), (1, 2), (0, 1)]
        );
        let rows_of_b: Vec<u32> = t.annotator_rows(1).to_vec();
        let items_of_b: Vec<&str> = rows_of_b
            .iter()
            .map(|&r| t.item_name(t.row_item(r)))
            .collect();
        assert_eq!(items_of_b, ["x", "y"]);
    }

    #[test]
    fn grouped_and_interleaved_input_give_the_same_table() {
        let grouped = [
            ("x", "a", "1"),
            ("x", "b", "3"),
            ("x", "a", "2"),
            ("y", "b", "2"),
        ];
        let interleaved = [grouped[0], grouped[3], grouped[1], grouped[2]];
        let (g, i) = (
            table(&grouped, &LabelSpec::default()),
            table(&interleaved, &LabelSpec::default()),
        );
        assert_eq!(g.item_columns(), i.item_columns());
        assert_eq!(g.item_values(0), [0, 2, 1]);
        assert_eq!(g.annotator_items(1), i.annotator_items(1));
        assert_eq!(g.annotator_rating_counts(), [2, 2]);
    }

    #[test]
    fn the_annotator_index_is_built_on_first_use() {
        let t = table(&[("x", "a", "1"), ("y", "a", "2")], &LabelSpec::default());
        let item_major = t.index_bytes();
        assert_eq!(t.annotator_values(0), [0, 1]);
        assert!(t.index_bytes() > item_major);
    }

    #[test]
    fn a_label_outside_the_declared_categories_is_an_error() {
        let spec = LabelSpec {
            kind: LabelTypeRequest::Auto,
            categories: Some(vec!["a".into(), "b".into()]),
        };
        let err = AnnotationTable::from_triples([("i", "x", "c")], &spec).unwrap_err();
        assert!(matches!(err, TableError::Label(LabelError { ref label, .. }) if label == "c"));
    }

    #[test]
    fn declared_categories_keep_their_order_and_unused_ones() {
        let spec = LabelSpec {
            kind: LabelTypeRequest::Auto,
            categories: Some(vec!["2".into(), "0".into(), "1".into()]),
        };
        let t = table(&[("i", "x", "0")], &spec);
        assert_eq!(t.values().names(), ["2", "0", "1"]);
        assert_eq!(t.item_values(0), [1]);
    }

    #[test]
    fn sets_parse_from_json_lists_and_pipes_into_one_canonical_value() {
        let spec = LabelSpec {
            kind: LabelTypeRequest::Exactly(LabelKind::Set),
            categories: None,
        };
        let t = table(
            &[
                ("i", "x", r#"["b","a"]"#),
                ("i", "y", "a|b"),
                ("j", "x", "[]"),
            ],
            &spec,
        );
        assert_eq!(t.values().names(), ["", "a|b"]);
        assert_eq!(t.item_values(0), [1, 1]);
        assert_eq!(t.values().set_members(1), [0, 1]);
    }

    #[test]
    fn bad_numbers_name_the_label() {
        let spec = LabelSpec {
            kind: LabelTypeRequest::Exactly(LabelKind::Float),
            categories: None,
        };
        let err = AnnotationTable::from_triples([("i", "x", "abc")], &spec).unwrap_err();
        assert!(err.to_string().contains("'abc'"), "{err}");
    }
}
