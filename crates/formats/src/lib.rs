//! Readers and writers of concord's file formats.
//!
//! Annotations come as CSV (header with `item`/`task`, `annotator`/`worker`, `label`
//! in any order, other columns ignored) or JSONL (one object per line with the same
//! keys). Errors name the file, the line and the field; nothing is returned from a
//! file that did not read completely. With the `parquet` feature, releases and exports are
//! also written as Parquet (`parquet`).

#[cfg(feature = "tables")]
mod annotations;
#[cfg(feature = "tables")]
mod gold;

#[cfg(feature = "tables")]
pub use annotations::{
    AnnotationFile, Format, ReadError, read_annotations, read_annotations_from_bytes,
};
#[cfg(feature = "tables")]
pub use gold::{GoldFile, read_gold, read_gold_from_bytes};

#[cfg(feature = "tables")]
pub mod conformance;
pub mod dsa;
pub mod foreign;
pub mod items;
#[cfg(feature = "parquet")]
pub mod parquet;
pub mod predictions;
pub mod query_result;
pub mod release;
