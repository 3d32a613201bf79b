//! (item, annotator, label) readers.
//!
//! CSV without quote characters — the common machine-written case — is parsed in
//! parallel: the file is cut into chunks at line ends, each chunk interns its ids
//! locally, and the chunks are merged in order so ids stay in first-seen order.
//! Quoted CSV and JSONL take a sequential path.

use std::io::Read;
use std::path::Path;

use concord_stats::intern::{NameIndex, same_name};
use concord_stats::table::{LabelError, TableError};
use concord_stats::{AnnotationTable, Interner, LabelSpec, TableBuilder};
use rayon::prelude::*;

/// File formats for annotations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Tsv,
    Jsonl,
}

impl Format {
    /// Guess from the file name; CSV when unknown.
    pub fn from_path(path: &Path) -> Format {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("jsonl") | Some("ndjson") | Some("json") => Format::Jsonl,
            Some("tsv") | Some("tab") => Format::Tsv,
            _ => Format::Csv,
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "csv" => Ok(Self::Csv),
            "tsv" => Ok(Self::Tsv),
            "jsonl" | "ndjson" => Ok(Self::Jsonl),
            other => Err(format!("unknown format '{other}' (csv, tsv, jsonl)")),
        }
    }
}

/// A read failure, with the place it happened.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}, line {line}{}: {message}", field.as_ref().map(|f| format!(", field '{f}'")).unwrap_or_default())]
    Line {
        path: String,
        line: u64,
        field: Option<String>,
        message: String,
    },
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

/// A fully read annotation file.
pub struct AnnotationFile {
    pub table: AnnotationTable,
    /// Data rows read.
    pub rows: usize,
}

/// Read annotations from a file and build the table.
pub fn read_annotations(
    path: &Path,
    format: Option<Format>,
    spec: &LabelSpec,
) -> Result<AnnotationFile, ReadError> {
    let display = path.display().to_string();
    let io = |source| ReadError::Io {
        path: display.clone(),
        source,
    };
    let format = format.unwrap_or_else(|| Format::from_path(path));
    if format != Format::Jsonl {
        let file = std::fs::File::open(path).map_err(io)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let delimiter = if format == Format::Tsv { b'\t' } else { b',' };
        if let Some(parsed) = parse_plain_streaming(&display, file, delimiter, size)? {
            return finish(&display, parsed, spec);
        }
        // Quoted fields: read whole and use the quoting parser.
    }
    let bytes = std::fs::read(path).map_err(io)?;
    read_annotations_from_bytes(&display, &bytes, format, spec)
}

/// Read annotations from bytes (`name` is used in error messages).
pub fn read_annotations_from_bytes(
    name: &str,
    bytes: &[u8],
    format: Format,
    spec: &LabelSpec,
) -> Result<AnnotationFile, ReadError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let parsed = match format {
        Format::Csv | Format::Tsv => {
            let delimiter = if format == Format::Tsv { b'\t' } else { b',' };
            if memchr::memchr(b'"', bytes).is_some() {
                parse_quoted(name, bytes, delimiter)?
            } else {
                parse_plain_parallel(name, bytes, delimiter)?
            }
        }
        Format::Jsonl => parse_jsonl(name, bytes)?,
    };
    finish(name, parsed, spec)
}

/// Resolve labels and build the table; label errors point at the label's first line.
fn finish(name: &str, parsed: Parsed, spec: &LabelSpec) -> Result<AnnotationFile, ReadError> {
    let rows = parsed.builder.len();
    if rows == 0 {
        return Err(ReadError::File {
            path: name.to_string(),
            message: "no annotations (the file has no data rows)".into(),
        });
    }
    let first_line = parsed.label_first_line;
    let table = parsed.builder.build(spec).map_err(|e| match e {
        TableError::Label(LabelError {
            raw_label,
            label,
            reason,
        }) => ReadError::Line {
            path: name.to_string(),
            line: first_line[raw_label as usize],
            field: Some("label".into()),
            message: format!("label '{label}' {reason}"),
        },
        other => ReadError::File {
            path: name.to_string(),
            message: other.to_string(),
        },
    })?;
    Ok(AnnotationFile { table, rows })
}

struct Parsed {
    builder: TableBuilder,
    /// Line where each raw label first appeared.
    label_first_line: Vec<u64>,
}

const ITEM_NAMES: [&str; 5] = ["item", "task", "item_id", "task_id", "unit"];
const ANNOTATOR_NAMES: [&str; 6] = [
    "annotator",
    "worker",
    "annotator_id",
    "worker_id",
    "rater",
    "coder",
];
const LABEL_NAMES: [&str; 3] = ["label", "answer", "value"];

/// Positions of the item, annotator and label columns in a header.
fn locate_columns(name: &str, header: &[String]) -> Result<[usize; 3], ReadError> {
    let find = |names: &[&str], what: &str| -> Result<usize, ReadError> {
        header
            .iter()
            .position(|h| names.contains(&h.trim().to_ascii_lowercase().as_str()))
            .ok_or_else(|| ReadError::Line {
                path: name.to_string(),
                line: 1,
                field: None,
                message: format!(
                    "missing column '{what}' (accepted names: {}); the header is: {}",
                    names.join(", "),
                    header.join(",")
                ),
            })
    };
    Ok([
        find(&ITEM_NAMES, "item")?,
        find(&ANNOTATOR_NAMES, "annotator")?,
        find(&LABEL_NAMES, "label")?,
    ])
}

fn utf8<'a>(name: &str, line: u64, field: &str, bytes: &'a [u8]) -> Result<&'a str, ReadError> {
    std::str::from_utf8(bytes).map_err(|_| ReadError::Line {
        path: name.to_string(),
        line,
        field: Some(field.to_string()),
        message: "invalid UTF-8".into(),
    })
}

const FIELD_NAMES: [&str; 3] = ["item", "annotator", "label"];

#[inline]
fn check_ids(name: &str, line: u64, values: &[&str; 3]) -> Result<(), ReadError> {
    if is_blank(values[0]) || is_blank(values[1]) {
        return blank_id(name, line, values);
    }
    Ok(())
}

#[cold]
fn blank_id(name: &str, line: u64, values: &[&str; 3]) -> Result<(), ReadError> {
    for (i, v) in values.iter().enumerate().take(2) {
        if is_blank(v) {
            return Err(ReadError::Line {
                path: name.to_string(),
                line,
                field: Some(FIELD_NAMES[i].into()),
                message: format!("empty {} id", FIELD_NAMES[i]),
            });
        }
    }
    Ok(())
}

/// Whether an id is empty or all white space. Decided by its first byte for nearly every
/// id, since the parsers have already trimmed ASCII space.
#[inline]
fn is_blank(id: &str) -> bool {
    match id.as_bytes().first() {
        None => true,
        Some(b) if b.is_ascii() && !b.is_ascii_whitespace() => false,
        Some(_) => id.trim().is_empty(),
    }
}

/// One chunk's locally interned rows.
#[derive(Default)]
struct Chunk {
    items: Interner,
    annotators: Interner,
    labels: Interner,
    label_first_line: Vec<u64>,
    /// Item, annotator and label ids: chunk-local, or global with [`KNOWN`] set.
    rows: Vec<[u32; 3]>,
}

/// Where a delimited file's fields are.
#[derive(Clone, Copy)]
struct Layout {
    delimiter: u8,
    n_fields: usize,
    /// The item, annotator and label columns.
    columns: [usize; 3],
}

/// Marks a chunk row's annotator or label id as already global.
const KNOWN: u32 = 1 << 31;

/// Annotators and labels of the blocks already merged, for the next block's chunks to look
/// up instead of interning: a file names a few thousand annotators and labels again and
/// again, and each chunk's copy of them had to be merged into the global tables one name
/// at a time, on the merging thread.
#[derive(Default)]
struct KnownNames {
    annotators: Option<NameIndex>,
    labels: Option<NameIndex>,
}

impl KnownNames {
    /// Tables larger than this are not copied for every block.
    const MOST_NAMES: usize = 1 << 16;

    /// Up to date with the names merged so far.
    fn refresh(&mut self, builder: &TableBuilder) {
        Self::refresh_index(&mut self.annotators, &builder.annotators);
        Self::refresh_index(&mut self.labels, &builder.raw_labels);
    }

    /// Rebuilt only when names were added: a table only grows, so the same number of names
    /// is the same names (a file's annotators are usually all seen in its first blocks).
    fn refresh_index(index: &mut Option<NameIndex>, names: &Interner) {
        if index
            .as_ref()
            .is_some_and(|index| index.len() == names.len())
        {
            return;
        }
        *index = (names.len() <= Self::MOST_NAMES).then(|| NameIndex::of(names));
    }

    /// The global id of `name` marked [`KNOWN`], or its id in the chunk's own table.
    #[inline]
    fn id(known: Option<&NameIndex>, local: &mut Interner, name: &str) -> (u32, bool) {
        match known.and_then(|names| names.get(name)) {
            Some(id) => (id | KNOWN, false),
            None => local.intern(name),
        }
    }
}

/// The header of a delimited file: the column positions and the number of fields.
fn parse_header(
    name: &str,
    header_line: &[u8],
    delimiter: u8,
) -> Result<([usize; 3], usize), ReadError> {
    let header_line = utf8(name, 1, "header", header_line)?.trim_end_matches('\r');
    if header_line.trim().is_empty() {
        return Err(ReadError::Line {
            path: name.to_string(),
            line: 1,
            field: None,
            message: "empty header line".into(),
        });
    }
    let header: Vec<String> = header_line
        .split(delimiter as char)
        .map(|s| s.trim().to_string())
        .collect();
    Ok((locate_columns(name, &header)?, header.len()))
}

/// Parse unquoted CSV/TSV held in memory.
fn parse_plain_parallel(name: &str, bytes: &[u8], delimiter: u8) -> Result<Parsed, ReadError> {
    let header_end = memchr::memchr(b'\n', bytes).unwrap_or(bytes.len());
    let (columns, n_fields) = parse_header(name, &bytes[..header_end], delimiter)?;
    let body = if header_end < bytes.len() {
        &bytes[header_end + 1..]
    } else {
        &[][..]
    };
    let mut parsed = Parsed {
        builder: TableBuilder::new(),
        label_first_line: Vec::new(),
    };
    let layout = Layout {
        delimiter,
        n_fields,
        columns,
    };
    let (chunks, _) = parse_block(name, body, 2, layout, &KnownNames::default())?;
    merge_into(&mut parsed, chunks);
    Ok(parsed)
}

/// Parse a block of whole lines in parallel pieces, each with names of its own. Returns
/// the pieces in order and the number of lines in the block.
fn parse_block(
    name: &str,
    body: &[u8],
    first_line: u64,
    layout: Layout,
    known: &KnownNames,
) -> Result<(Vec<Chunk>, u64), ReadError> {
    let target = (rayon::current_num_threads() * 4).max(1);
    let chunk_size = (body.len() / target).max(1 << 16);
    let mut bounds = vec![0usize];
    let mut pos = 0;
    while pos < body.len() {
        let next = (pos + chunk_size).min(body.len());
        let end = if next >= body.len() {
            body.len()
        } else {
            memchr::memchr(b'\n', &body[next..]).map_or(body.len(), |i| next + i + 1)
        };
        bounds.push(end);
        pos = end;
    }
    let pieces: Vec<&[u8]> = bounds.windows(2).map(|w| &body[w[0]..w[1]]).collect();
    let newlines: Vec<u64> = pieces
        .par_iter()
        .map(|p| memchr::memchr_iter(b'\n', p).count() as u64)
        .collect();
    let mut first_lines = Vec::with_capacity(pieces.len());
    let mut line = first_line;
    for n in &newlines {
        first_lines.push(line);
        line += n;
    }
    let chunks: Vec<Chunk> = pieces
        .par_iter()
        .zip(first_lines.par_iter())
        .map(|(piece, &first)| parse_chunk(name, piece, first, layout, known))
        .collect::<Result<_, _>>()?;
    Ok((chunks, line - first_line))
}

/// Stream an unquoted delimited file in blocks, so memory holds one block of text at a
/// time. Returns `None` when a quote character appears (the caller re-reads the file
/// with the quoting parser).
fn parse_plain_streaming(
    name: &str,
    mut reader: impl Read,
    delimiter: u8,
    size_hint: u64,
) -> Result<Option<Parsed>, ReadError> {
    const BLOCK: usize = 1 << 20;
    let io = |source| ReadError::Io {
        path: name.to_string(),
        source,
    };
    let mut buffer: Vec<u8> = Vec::with_capacity(BLOCK + (1 << 16));
    let mut parsed = Parsed {
        builder: TableBuilder::new(),
        label_first_line: Vec::new(),
    };
    let estimated_rows = (size_hint / 12) as usize;
    parsed.builder.row_item.reserve(estimated_rows);
    parsed.builder.row_annotator.reserve(estimated_rows);
    parsed.builder.row_raw_label.reserve(estimated_rows);
    let mut header: Option<([usize; 3], usize)> = None;
    let mut next_line = 1u64;
    let mut at_eof = false;
    let mut first_block = true;
    // A parsed block whose names are still to be merged.
    let mut merging: Option<Vec<Chunk>> = None;
    let mut known = KnownNames::default();
    while !at_eof {
        // Fill the buffer up to a block.
        while buffer.len() < BLOCK {
            let before = buffer.len();
            buffer.resize(BLOCK, 0);
            let n = reader.read(&mut buffer[before..]).map_err(io)?;
            buffer.truncate(before + n);
            if n == 0 {
                at_eof = true;
                break;
            }
        }
        if first_block {
            first_block = false;
            if buffer.starts_with(b"\xEF\xBB\xBF") {
                buffer.drain(..3);
            }
        }
        if memchr::memchr(b'"', &buffer).is_some() {
            return Ok(None);
        }
        let cut = if at_eof {
            buffer.len()
        } else {
            memchr::memrchr(b'\n', &buffer).map_or(0, |i| i + 1)
        };
        if cut == 0 && !at_eof {
            // A single line longer than a block: grow and keep reading.
            buffer.reserve(BLOCK);
            continue;
        }
        let mut block = &buffer[..cut];
        if header.is_none() {
            let end = memchr::memchr(b'\n', block).unwrap_or(block.len());
            header = Some(parse_header(name, &block[..end], delimiter)?);
            block = if end < block.len() {
                &block[end + 1..]
            } else {
                &[][..]
            };
            next_line = 2;
        }
        let (columns, n_fields) = header.unwrap_or(([0, 1, 2], 3));
        let layout = Layout {
            delimiter,
            n_fields,
            columns,
        };
        // The previous block's names are merged into the global tables (one thread, in
        // first-seen order) while this block is parsed on the others: the merge was
        // otherwise a third of reading a file with a million items on two cores.
        let previous = merging.take();
        let first_block_parsed = previous.is_none();
        let (_, this_block) = rayon::join(
            || {
                if let Some(chunks) = previous {
                    merge_into(&mut parsed, chunks);
                }
            },
            || parse_block(name, block, next_line, layout, &known),
        );
        let (chunks, lines) = this_block?;
        if first_block_parsed {
            reserve_items_like_first_block(&mut parsed.builder, &chunks, block.len(), size_hint);
        }
        next_line += lines;
        merging = Some(chunks);
        // Names merged so far, for the block after next.
        known.refresh(&parsed.builder);
        buffer.drain(..cut);
    }
    if let Some(chunks) = merging {
        merge_into(&mut parsed, chunks);
    }
    if header.is_none() {
        return Err(ReadError::File {
            path: name.to_string(),
            message: "empty file".into(),
        });
    }
    Ok(Some(parsed))
}

/// Room in the global item table for as many items as the file holds at the first block's
/// rate, when the first block's rows come grouped by item (two or more per item): a million
/// items otherwise doubled the table twenty times on the merge's one thread, re-inserting
/// every item so far each time. Rows in another order (by annotator, say) name items again
/// later in the file, so their first block says nothing of the total: the table grows as
/// it goes.
fn reserve_items_like_first_block(
    builder: &mut TableBuilder,
    first_block: &[Chunk],
    block_bytes: usize,
    file_bytes: u64,
) {
    let rows: usize = first_block.iter().map(|c| c.rows.len()).sum();
    let items: usize = first_block.iter().map(|c| c.items.len()).sum();
    if block_bytes == 0 || items == 0 || rows < 2 * items {
        return;
    }
    let name_bytes: usize = first_block.iter().map(|c| c.items.name_bytes()).sum();
    let scale = file_bytes as f64 / block_bytes as f64;
    let names = (items as f64 * scale).min((file_bytes / 12) as f64) as usize;
    let bytes = (name_bytes as f64 * scale).min(file_bytes as f64) as usize;
    builder.items.reserve(names, bytes);
}

fn parse_chunk(
    name: &str,
    piece: &[u8],
    first_line: u64,
    layout: Layout,
    known: &KnownNames,
) -> Result<Chunk, ReadError> {
    let Layout {
        delimiter,
        n_fields,
        columns,
    } = layout;
    // Short machine-written rows are ~12 bytes; over-reserving is cheaper than regrowing.
    let estimated_rows = piece.len() / 10 + 1;
    let mut chunk = Chunk {
        items: Interner::with_capacity(estimated_rows / 2, piece.len() / 3),
        annotators: Interner::new(),
        labels: Interner::new(),
        label_first_line: Vec::new(),
        rows: Vec::with_capacity(estimated_rows),
    };
    // Validate UTF-8 once for the whole chunk; only a failing chunk is rescanned field by
    // field to report the line.
    let text = match std::str::from_utf8(piece) {
        Ok(text) => text,
        Err(_) => {
            for (offset, raw_line) in piece.split(|&b| b == b'\n').enumerate() {
                let line_no = first_line + offset as u64;
                for (index, field) in raw_line.split(|&b| b == delimiter).enumerate() {
                    let field_name = columns
                        .iter()
                        .position(|&c| c == index)
                        .map_or("line", |i| FIELD_NAMES[i]);
                    utf8(name, line_no, field_name, field)?;
                }
            }
            return Err(ReadError::File {
                path: name.to_string(),
                message: "invalid UTF-8".into(),
            });
        }
    };
    let mut lines = DelimitedLines::new(text, delimiter, n_fields);
    // Files are often grouped by item: reuse the previous row's item id without hashing.
    let mut previous_item: (&str, u32) = ("", u32::MAX);
    while let Some((offset, fields)) = lines.next() {
        let line_no = first_line + offset;
        if fields.len() != n_fields {
            return Err(ReadError::Line {
                path: name.to_string(),
                line: line_no,
                field: None,
                message: format!(
                    "expected {n_fields} fields as in the header, found {}",
                    fields.len()
                ),
            });
        }
        let values = [
            fields[columns[0]].trim_ascii(),
            fields[columns[1]].trim_ascii(),
            fields[columns[2]].trim_ascii(),
        ];
        check_ids(name, line_no, &values)?;
        let item = if previous_item.1 != u32::MAX && same_name(previous_item.0, values[0]) {
            previous_item.1
        } else {
            let id = chunk.items.intern(values[0]).0;
            previous_item = (values[0], id);
            id
        };
        let annotator =
            KnownNames::id(known.annotators.as_ref(), &mut chunk.annotators, values[1]).0;
        let (label, new) = KnownNames::id(known.labels.as_ref(), &mut chunk.labels, values[2]);
        if new {
            chunk.label_first_line.push(line_no);
        }
        chunk.rows.push([item, annotator, label]);
    }
    Ok(chunk)
}

/// The non-empty lines of unquoted delimited text, each cut into its fields, in one pass
/// over the bytes: rows of a dozen bytes made the two layers of `memchr` calls (lines,
/// then fields) cost more than the bytes they skipped.
struct DelimitedLines<'a> {
    text: &'a str,
    delimiter: u8,
    /// Where the next line starts; past the end once the last line is out.
    next_start: usize,
    /// Lines (empty ones included) before the next.
    next_offset: u64,
    fields: Vec<&'a str>,
}

impl<'a> DelimitedLines<'a> {
    fn new(text: &'a str, delimiter: u8, n_fields: usize) -> Self {
        Self {
            text,
            delimiter,
            next_start: 0,
            next_offset: 0,
            fields: Vec::with_capacity(n_fields),
        }
    }

    /// The next non-empty line's offset from the first and its fields, without the
    /// line's `\r\n` or `\n`.
    fn next(&mut self) -> Option<(u64, &[&'a str])> {
        let (text, bytes) = (self.text, self.text.as_bytes());
        while self.next_start <= bytes.len() {
            let start = self.next_start;
            let offset = self.next_offset;
            self.fields.clear();
            let mut field_start = start;
            let mut end = start;
            while end < bytes.len() && bytes[end] != b'\n' {
                if bytes[end] == self.delimiter {
                    // The delimiter is ASCII, so these are char boundaries.
                    self.fields.push(&text[field_start..end]);
                    field_start = end + 1;
                }
                end += 1;
            }
            self.next_start = end + 1;
            self.next_offset += 1;
            if end > field_start && bytes[end - 1] == b'\r' {
                end -= 1;
            }
            if end > start {
                self.fields.push(&text[field_start..end]);
                return Some((offset, &self.fields));
            }
        }
        None
    }
}

fn push_row(chunk: &mut Chunk, values: [&str; 3], line_no: u64) {
    let item = chunk.items.intern(values[0]).0;
    let annotator = chunk.annotators.intern(values[1]).0;
    let (label, new) = chunk.labels.intern(values[2]);
    if new {
        chunk.label_first_line.push(line_no);
    }
    chunk.rows.push([item, annotator, label]);
}

fn merge_chunks(chunks: Vec<Chunk>) -> Parsed {
    let mut parsed = Parsed {
        builder: TableBuilder::new(),
        label_first_line: Vec::new(),
    };
    merge_into(&mut parsed, chunks);
    parsed
}

/// Append chunks (in order) to the parsed rows, interning their names globally.
fn merge_into(parsed: &mut Parsed, chunks: Vec<Chunk>) {
    let builder = &mut parsed.builder;
    let label_first_line = &mut parsed.label_first_line;
    let start = builder.row_item.len();
    let added: usize = chunks.iter().map(|c| c.rows.len()).sum();
    let mut maps: Vec<[Vec<u32>; 3]> = Vec::with_capacity(chunks.len());
    for chunk in &chunks {
        let items = builder.items.intern_all(chunk.items.names());
        let annotators = builder.annotators.intern_all(chunk.annotators.names());
        let labels = chunk
            .labels
            .names()
            .zip(&chunk.label_first_line)
            .map(|(n, &line)| {
                let (id, new) = builder.raw_labels.intern(n);
                if new {
                    label_first_line.push(line);
                }
                id
            })
            .collect();
        maps.push([items, annotators, labels]);
    }
    // The remapped rows are written straight into the columns' spare room, chunk by chunk
    // in parallel: zero-filling the new tail first (`resize`) cost a memset and every page
    // fault of 60 MB at 5M labels on the merge's one thread.
    let (mut item_rest, mut annotator_rest, mut label_rest) = (
        spare_room(&mut builder.row_item, added),
        spare_room(&mut builder.row_annotator, added),
        spare_room(&mut builder.row_raw_label, added),
    );
    let mut jobs = Vec::with_capacity(chunks.len());
    for (chunk, map) in chunks.iter().zip(&maps) {
        let n = chunk.rows.len();
        let (a, b) = std::mem::take(&mut item_rest).split_at_mut(n);
        let (c, d) = std::mem::take(&mut annotator_rest).split_at_mut(n);
        let (e, f) = std::mem::take(&mut label_rest).split_at_mut(n);
        item_rest = b;
        annotator_rest = d;
        label_rest = f;
        jobs.push((chunk, map, a, c, e));
    }
    jobs.into_par_iter()
        .for_each(|(chunk, map, items, annotators, labels)| {
            let global = |map: &[u32], id: u32| {
                if id & KNOWN != 0 {
                    id & !KNOWN
                } else {
                    map[id as usize]
                }
            };
            for (i, row) in chunk.rows.iter().enumerate() {
                items[i].write(map[0][row[0] as usize]);
                annotators[i].write(global(&map[1], row[1]));
                labels[i].write(global(&map[2], row[2]));
            }
        });
    for column in [
        &mut builder.row_item,
        &mut builder.row_annotator,
        &mut builder.row_raw_label,
    ] {
        // SAFETY: `spare_room` reserved `added` elements past the length, and the scatter
        // above wrote every one of them: the chunks' slices tile the `added` elements
        // exactly (each is its chunk's row count), and each job writes every index of its
        // slices.
        unsafe { column.set_len(start + added) };
    }
}

/// The first `added` elements of `column`'s spare capacity, reserved if need be.
fn spare_room(column: &mut Vec<u32>, added: usize) -> &mut [std::mem::MaybeUninit<u32>] {
    column.reserve(added);
    &mut column.spare_capacity_mut()[..added]
}

/// Sequential CSV parser with RFC 4180 quoting (fields may contain delimiters, quotes
/// and newlines).
fn parse_quoted(name: &str, bytes: &[u8], delimiter: u8) -> Result<Parsed, ReadError> {
    let mut records = QuotedRecords {
        bytes,
        pos: 0,
        line: 1,
        delimiter,
    };
    let Some((_, header)) = records.next_record(name)? else {
        return Err(ReadError::File {
            path: name.to_string(),
            message: "empty file".into(),
        });
    };
    let header: Vec<String> = header
        .iter()
        .map(|f| utf8(name, 1, "header", f).map(|s| s.trim().to_string()))
        .collect::<Result<_, _>>()?;
    let columns = locate_columns(name, &header)?;
    let mut chunk = Chunk::default();
    while let Some((line_no, fields)) = records.next_record(name)? {
        if fields.len() == 1 && fields[0].is_empty() {
            continue;
        }
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
        let mut owned = [String::new(), String::new(), String::new()];
        for (slot, (&column, field_name)) in owned.iter_mut().zip(columns.iter().zip(FIELD_NAMES)) {
            *slot = utf8(name, line_no, field_name, &fields[column])?
                .trim()
                .to_string();
        }
        let values = [owned[0].as_str(), owned[1].as_str(), owned[2].as_str()];
        check_ids(name, line_no, &values)?;
        push_row(&mut chunk, values, line_no);
    }
    Ok(merge_chunks(vec![chunk]))
}

/// A record: its first line number and its raw fields.
type Record = (u64, Vec<Vec<u8>>);

struct QuotedRecords<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: u64,
    delimiter: u8,
}

impl QuotedRecords<'_> {
    fn next_record(&mut self, name: &str) -> Result<Option<Record>, ReadError> {
        let delimiter = self.delimiter;
        self.next_record_with(name, delimiter)
    }

    fn next_record_with(&mut self, name: &str, delimiter: u8) -> Result<Option<Record>, ReadError> {
        if self.pos >= self.bytes.len() {
            return Ok(None);
        }
        let start_line = self.line;
        let mut fields = Vec::new();
        let mut field = Vec::new();
        let mut in_quotes = false;
        let mut quoted_field = false;
        while self.pos < self.bytes.len() {
            let b = self.bytes[self.pos];
            self.pos += 1;
            if in_quotes {
                if b == b'"' {
                    if self.bytes.get(self.pos) == Some(&b'"') {
                        field.push(b'"');
                        self.pos += 1;
                    } else {
                        in_quotes = false;
                    }
                } else {
                    if b == b'\n' {
                        self.line += 1;
                    }
                    field.push(b);
                }
                continue;
            }
            match b {
                b'"' if field.is_empty() && !quoted_field => {
                    in_quotes = true;
                    quoted_field = true;
                }
                b'\n' => {
                    self.line += 1;
                    if field.last() == Some(&b'\r') {
                        field.pop();
                    }
                    fields.push(std::mem::take(&mut field));
                    return Ok(Some((start_line, fields)));
                }
                _ if b == delimiter => {
                    fields.push(std::mem::take(&mut field));
                    quoted_field = false;
                }
                _ => field.push(b),
            }
        }
        if in_quotes {
            return Err(ReadError::Line {
                path: name.to_string(),
                line: start_line,
                field: None,
                message: "unterminated quoted field".into(),
            });
        }
        if field.last() == Some(&b'\r') {
            field.pop();
        }
        fields.push(field);
        Ok(Some((start_line, fields)))
    }
}

/// JSON Lines: one object per line with item / annotator / label keys. A label may be a
/// string, number, boolean or a list (multi-label).
fn parse_jsonl(name: &str, bytes: &[u8]) -> Result<Parsed, ReadError> {
    let mut chunk = Chunk::default();
    for (index, raw_line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_no = index as u64 + 1;
        let text = utf8(name, line_no, "line", raw_line)?.trim();
        if text.is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ReadError::Line {
            path: name.to_string(),
            line: line_no,
            field: None,
            message: format!("invalid JSON: {e}"),
        })?;
        let object = value.as_object().ok_or_else(|| ReadError::Line {
            path: name.to_string(),
            line: line_no,
            field: None,
            message: "expected a JSON object".into(),
        })?;
        let get = |names: &[&str], what: &str| -> Result<String, ReadError> {
            let found =
                names
                    .iter()
                    .find_map(|n| object.get(*n))
                    .ok_or_else(|| ReadError::Line {
                        path: name.to_string(),
                        line: line_no,
                        field: Some(what.to_string()),
                        message: format!("missing key '{what}' (accepted: {})", names.join(", ")),
                    })?;
            Ok(match found {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(_) => found.to_string(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            })
        };
        let owned = [
            get(&ITEM_NAMES, "item")?,
            get(&ANNOTATOR_NAMES, "annotator")?,
            get(&LABEL_NAMES, "label")?,
        ];
        let values = [owned[0].trim(), owned[1].trim(), owned[2].trim()];
        check_ids(name, line_no, &values)?;
        push_row(&mut chunk, values, line_no);
    }
    Ok(merge_chunks(vec![chunk]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CSV of `rows` labels, several blocks long, grouped by item as exports usually are;
    /// `label` picks each row's label.
    fn labels_csv(rows: usize, label: impl Fn(usize) -> String) -> String {
        let mut text = String::from("item,annotator,label\n");
        for row in 0..rows {
            text += &format!("track-{:07},ann-{:03},{}\n", row / 5, row % 97, label(row));
        }
        text
    }

    fn read_file(text: &str) -> Result<AnnotationFile, ReadError> {
        let dir = tempfile::tempdir().expect("a scratch folder");
        let path = dir.path().join("labels.csv");
        std::fs::write(&path, text).expect("the file");
        read_annotations(&path, None, &LabelSpec::default())
    }

    /// The text read from a file (in blocks) and from memory (at once).
    fn read_in_blocks_and_whole(text: &str) -> (AnnotationFile, AnnotationFile) {
        let streamed = read_file(text).expect("the file reads");
        let whole = read_annotations_from_bytes(
            "labels.csv",
            text.as_bytes(),
            Format::Csv,
            &LabelSpec::default(),
        )
        .expect("the text reads");
        (streamed, whole)
    }

    /// The file is read in blocks, each merged while the next is parsed: the table is the
    /// one the whole text gives at once, in the same order.
    #[test]
    fn a_file_read_in_blocks_gives_the_table_of_the_whole_text() {
        let text = labels_csv(400_000, |row| ["S0", "S1", "S2"][row * 7 % 3].to_owned());
        assert!(text.len() > 5 << 20, "several blocks");
        let (streamed, whole) = read_in_blocks_and_whole(&text);
        assert_eq!(streamed.rows, 400_000);
        assert_eq!(streamed.rows, whole.rows);
        let (a, b) = (&streamed.table, &whole.table);
        assert_eq!(a.n_items(), 80_000);
        assert_eq!(a.n_annotators(), 97);
        assert_eq!(a.item_columns(), b.item_columns());
        for item in [0, 1, 40_000, 79_999] {
            assert_eq!(a.item_name(item), b.item_name(item));
            assert_eq!(a.item_name(item), format!("track-{item:07}"));
        }
        assert_eq!(a.values().names(), b.values().names());
    }

    /// A first block of `rows` rows naming `items` distinct items.
    fn first_block(rows: usize, items: usize) -> Vec<Chunk> {
        let mut chunk = Chunk::default();
        for row in 0..rows {
            let item = chunk.items.intern(&format!("track-{:07}", row % items)).0;
            chunk.rows.push([item, 0, 0]);
        }
        vec![chunk]
    }

    /// The item table is sized from the first block only when its rows come grouped by
    /// item: rows in another order name their items again later, so a first block of
    /// nearly all new items says nothing of the file's total.
    #[test]
    fn the_item_table_is_sized_ahead_only_for_rows_grouped_by_item() {
        let file_bytes = 64 << 20;
        let mut grouped = TableBuilder::new();
        reserve_items_like_first_block(
            &mut grouped,
            &first_block(60_000, 12_000),
            1 << 20,
            file_bytes,
        );
        let names_expected = 12_000 * 64;
        assert!(
            grouped.items.heap_bytes() >= names_expected * 4,
            "room for the file's {names_expected} items: {} bytes",
            grouped.items.heap_bytes()
        );

        let mut scattered = TableBuilder::new();
        reserve_items_like_first_block(
            &mut scattered,
            &first_block(60_000, 59_000),
            1 << 20,
            file_bytes,
        );
        assert_eq!(scattered.items.heap_bytes(), 0, "nothing reserved");

        let mut empty = TableBuilder::new();
        reserve_items_like_first_block(&mut empty, &first_block(0, 1), 0, file_bytes);
        assert_eq!(empty.items.heap_bytes(), 0);
    }

    /// Line numbers count from the file's first line whatever block a row falls in: a bad
    /// row, and a label first seen late in the file, are named by their own lines.
    /// Annotators and labels already merged are looked up, not interned again, while there
    /// are few enough of them: past that limit, with names too long to pack and rows in no
    /// particular order, the ids are still those of the whole text read at once.
    #[test]
    fn names_known_from_earlier_blocks_keep_their_first_seen_ids() {
        let annotators = KnownNames::MOST_NAMES + 10_000;
        let mut text = String::from("item,annotator,label\n");
        for row in 0..300_000usize {
            let item = row.wrapping_mul(2_654_435_761) % 50_000;
            let annotator = (row * 7_919) % annotators;
            let annotator = if annotator % 3 == 0 {
                format!("a-much-longer-annotator-name-{annotator}")
            } else {
                format!("a{annotator}")
            };
            let label = if row == 290_000 {
                "late"
            } else {
                ["x", "y"][row % 2]
            };
            text += &format!("i{item},{annotator},{label}\n");
        }
        assert!(text.len() > 4 << 20, "several blocks");
        let (streamed, whole) = read_in_blocks_and_whole(&text);
        let (a, b) = (&streamed.table, &whole.table);
        assert_eq!(a.n_annotators(), annotators);
        assert_eq!(a.item_columns(), b.item_columns());
        for annotator in [0, 1, 2, 65_535, 65_536, annotators as u32 - 1] {
            assert_eq!(a.annotator_name(annotator), b.annotator_name(annotator));
        }
        assert_eq!(a.values().names(), b.values().names());
        assert_eq!(
            a.values().names().len(),
            3,
            "the label first seen late is there"
        );
    }

    #[test]
    fn lines_are_cut_into_fields_as_splitting_on_newlines_then_delimiters_would() {
        let naive = |text: &str| -> Vec<(u64, Vec<String>)> {
            text.split('\n')
                .enumerate()
                .map(|(offset, line)| (offset as u64, line.strip_suffix('\r').unwrap_or(line)))
                .filter(|(_, line)| !line.is_empty())
                .map(|(offset, line)| (offset, line.split(',').map(str::to_owned).collect()))
                .collect()
        };
        for text in [
            "",
            "\n",
            "a,b,c",
            "a,b,c\n",
            "a,b,c\r\n\r\nd,,f\r\n",
            "\n\na,b\n,\n,\r\n\r\nx\n\n",
            "é,日本,\r\nlast,line,without newline",
            ",,\n\r",
        ] {
            let mut lines = DelimitedLines::new(text, b',', 3);
            let mut found = Vec::new();
            while let Some((offset, fields)) = lines.next() {
                found.push((offset, fields.iter().map(|f| f.to_string()).collect()));
            }
            assert_eq!(found, naive(text), "{text:?}");
        }
    }

    #[test]
    fn ids_of_white_space_alone_are_refused_with_their_line_and_field() {
        for (text, line, field) in [
            ("item,annotator,label\nt1,a1,x\n  ,a2,x\n", 3, "item"),
            ("item,annotator,label\nt1,\u{3000},x\n", 2, "annotator"),
            (
                "item,annotator,label\nt1,a1,x\nt1,\u{a0} ,x\n",
                3,
                "annotator",
            ),
        ] {
            let Err(ReadError::Line {
                line: found,
                field: Some(found_field),
                message,
                ..
            }) = read_file(text)
            else {
                panic!("a blank id is refused: {text:?}")
            };
            assert_eq!((found, found_field.as_str()), (line, field), "{message}");
            assert!(message.starts_with("empty"), "{message}");
        }
        let ids = read_file("item,annotator,label\nt1,\u{e9}a,x\n").expect("a non-ASCII id");
        assert_eq!(ids.table.n_annotators(), 1);
    }

    #[test]
    fn errors_deep_in_a_file_name_their_own_line() {
        let mut text = labels_csv(300_000, |_| "S1".to_owned());
        text += "track-x,ann-1\n";
        let Err(ReadError::Line { line, .. }) = read_file(&text) else {
            panic!("a short row is refused")
        };
        assert_eq!(line, 300_002, "the header is line 1");

        let late = labels_csv(300_000, |row| {
            if row == 250_000 {
                "S9 ".to_owned()
            } else {
                "S1".to_owned()
            }
        });
        let spec = LabelSpec {
            categories: Some(vec!["S1".into(), "S2".into()]),
            ..LabelSpec::default()
        };
        let dir = tempfile::tempdir().expect("a scratch folder");
        let path = dir.path().join("late.csv");
        std::fs::write(&path, &late).expect("the file");
        let Err(ReadError::Line { line, message, .. }) = read_annotations(&path, None, &spec)
        else {
            panic!("an undeclared label is refused")
        };
        assert_eq!(line, 250_002, "{message}");
    }
}
