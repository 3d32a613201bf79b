//! Streams records from a store channel through a file writer into a response body, in
//! chunks of about 64 KiB, so exports of any size use bounded memory.

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use concord_formats::items::{ExportRecord, ExportWriter, RecordFormat};
use concord_formats::parquet::{
    ExportParquetWriter, ReleaseItemParquetWriter, ReleaseLabelParquetWriter,
};
use concord_formats::release::{ReleaseItem, ReleaseItemWriter, ReleaseLabel, ReleaseLabelWriter};
use tokio::sync::mpsc;

/// A writer of one record type that hands out what it has written so far.
pub trait ChunkWriter<T>: Send + 'static {
    fn write_record(&mut self, record: &T) -> std::io::Result<()>;
    fn take(&mut self) -> std::io::Result<Vec<u8>>;
    fn finish_output(self) -> std::io::Result<Vec<u8>>;
}

macro_rules! chunk_writer {
    ($writer:ident, $record:ty) => {
        impl ChunkWriter<$record> for $writer<Vec<u8>> {
            fn write_record(&mut self, record: &$record) -> std::io::Result<()> {
                self.write(record)
            }
            fn take(&mut self) -> std::io::Result<Vec<u8>> {
                Ok(self.take_output())
            }
            fn finish_output(self) -> std::io::Result<Vec<u8>> {
                self.finish()
            }
        }
    };
}

chunk_writer!(ExportWriter, ExportRecord);
chunk_writer!(ReleaseItemWriter, ReleaseItem);
chunk_writer!(ReleaseLabelWriter, ReleaseLabel);

/// Parquet writers hand out whole row groups as they are written, then the footer.
macro_rules! parquet_chunk_writer {
    ($writer:ident, $record:ty) => {
        impl ChunkWriter<$record> for $writer<Vec<u8>> {
            fn write_record(&mut self, record: &$record) -> std::io::Result<()> {
                self.write(record)
            }
            fn take(&mut self) -> std::io::Result<Vec<u8>> {
                self.take_output()
            }
            fn finish_output(self) -> std::io::Result<Vec<u8>> {
                self.finish()
            }
        }
    };
}

parquet_chunk_writer!(ExportParquetWriter, ExportRecord);
parquet_chunk_writer!(ReleaseItemParquetWriter, ReleaseItem);
parquet_chunk_writer!(ReleaseLabelParquetWriter, ReleaseLabel);

/// The content type of a Parquet download.
pub const PARQUET_CONTENT_TYPE: &str = "application/vnd.apache.parquet";

/// `(format, content type, file extension)` for a `format` query value.
pub fn file_format(
    format: Option<&str>,
) -> Result<(RecordFormat, &'static str, &'static str), String> {
    match format.unwrap_or("jsonl") {
        "jsonl" => Ok((RecordFormat::Jsonl, "application/x-ndjson", "jsonl")),
        "csv" => Ok((RecordFormat::Csv, "text/csv; charset=utf-8", "csv")),
        other => Err(format!(
            "format must be jsonl, csv or parquet, not {other:?}"
        )),
    }
}

/// The response: an attachment named `filename`, streamed from `receiver` through `writer`.
pub fn download<T, W>(
    receiver: mpsc::Receiver<concord_store::Result<T>>,
    writer: W,
    content_type: &str,
    filename: &str,
) -> Response
where
    T: Send + 'static,
    W: ChunkWriter<T>,
{
    let stream = futures_util::stream::unfold(Some((receiver, writer)), |state| async move {
        let (mut receiver, mut writer) = state?;
        let mut chunk = Vec::with_capacity(1 << 16);
        loop {
            match receiver.recv().await {
                Some(Ok(record)) => {
                    if let Err(e) = writer.write_record(&record) {
                        tracing::error!(error = %e, "download stopped");
                        return Some((Err(e), None));
                    }
                    match writer.take() {
                        Ok(bytes) => chunk.extend_from_slice(&bytes),
                        Err(e) => return Some((Err(e), None)),
                    }
                    if chunk.len() >= 1 << 16 {
                        return Some((Ok(chunk), Some((receiver, writer))));
                    }
                }
                Some(Err(e)) => {
                    tracing::error!(error = %e, "download stopped");
                    return Some((Err(std::io::Error::other("download stopped")), None));
                }
                None => {
                    return match writer.finish_output() {
                        Ok(rest) => {
                            chunk.extend_from_slice(&rest);
                            Some((Ok(chunk), None))
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "download stopped");
                            Some((Err(e), None))
                        }
                    };
                }
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}
