//! Readers (and, later, writers) of concord's file formats.
//!
//! Annotations come as CSV (header with `item`/`task`, `annotator`/`worker`, `label`
//! in any order, other columns ignored) or JSONL (one object per line with the same
//! keys). Errors name the file, the line and the field; nothing is returned from a
//! file that did not read completely.

mod annotations;
mod gold;

pub use annotations::{
    AnnotationFile, Format, ReadError, read_annotations, read_annotations_from_bytes,
};
pub use gold::{GoldFile, read_gold, read_gold_from_bytes};

pub mod conformance;
pub mod items;
pub mod release;
