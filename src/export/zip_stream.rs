//! Writes a ZIP straight into a response body. The `zip` crate's stream writer needs no seek, so
//! it runs on a blocking thread of its own, reading stored files chunk by chunk from the file
//! store and handing 64 KiB chunks to the body through a small bounded channel: memory stays flat
//! however large the files, and a client that reads slowly slows the writer down.

use std::io::{self, Write};

use axum::body::Body;
use bytes::Bytes;
use chrono::{DateTime, Datelike, Timelike, Utc};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::evidence::FileStore;

const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the writer and the client: bounds memory to a few hundred KiB.
const CHANNEL_CHUNKS: usize = 4;

/// One entry of the archive.
pub enum Entry {
    /// Made in memory: the index, the manifest, the LEAP2A feed.
    Bytes { path: String, bytes: Vec<u8> },
    /// A stored file, read from the store while it is written.
    Stored { path: String, sha256: String, size: u64 },
}

/// The ZIP of `entries` as a response body, written while the client reads it. A failure part
/// way (the store unreachable) ends the body with an error, so the client sees a broken download
/// rather than a short archive that looks whole.
pub fn body(store: FileStore, entries: Vec<Entry>, modified: DateTime<Utc>) -> Body {
    let (sender, receiver) = mpsc::channel::<io::Result<Bytes>>(CHANNEL_CHUNKS);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let errors = sender.clone();
        if let Err(error) = write_zip(&runtime, &store, entries, modified, ChannelWriter::new(sender)) {
            tracing::error!(%error, "export stopped part way");
            let _ = errors.blocking_send(Err(error));
        }
    });
    Body::from_stream(futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    }))
}

/// Writes the ZIP of `entries` to a file (for the command line), the same way as to a client.
pub async fn to_file(
    store: FileStore,
    entries: Vec<Entry>,
    modified: DateTime<Utc>,
    path: std::path::PathBuf,
) -> io::Result<()> {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::create(&path)?;
        let written = write_zip(&runtime, &store, entries, modified, io::BufWriter::with_capacity(CHUNK, file));
        if written.is_err() {
            // A partial archive must not be mistaken for an export.
            let _ = std::fs::remove_file(&path);
        }
        written
    })
    .await
    .map_err(io::Error::other)?
}

fn write_zip(
    runtime: &tokio::runtime::Handle,
    store: &FileStore,
    entries: Vec<Entry>,
    modified: DateTime<Utc>,
    out: impl Write,
) -> io::Result<()> {
    let time = zip::DateTime::from_date_and_time(
        modified.year().clamp(1980, 2107) as u16,
        modified.month() as u8,
        modified.day() as u8,
        modified.hour() as u8,
        modified.minute() as u8,
        modified.second() as u8,
    )
    .unwrap_or_default();
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored).last_modified_time(time);
    let mut zip = ZipWriter::new_stream(out);
    for entry in entries {
        match entry {
            Entry::Bytes { path, bytes } => {
                zip.start_file(path, options.large_file(bytes.len() as u64 >= zip::ZIP64_BYTES_THR))
                    .map_err(io::Error::other)?;
                zip.write_all(&bytes)?;
            }
            Entry::Stored { path, sha256, size } => {
                zip.start_file(path, options.large_file(size >= zip::ZIP64_BYTES_THR)).map_err(io::Error::other)?;
                let stored =
                    runtime.block_on(store.read(&sha256, None)).map_err(|e| io::Error::other(e.to_string()))?;
                let mut stream = stored.stream;
                while let Some(chunk) = runtime.block_on(stream.next()) {
                    zip.write_all(&chunk.map_err(io::Error::other)?)?;
                }
            }
        }
    }
    let mut out = zip.finish().map_err(io::Error::other)?.into_inner();
    out.flush()
}

/// Gathers writes into chunks and sends each to the response body, waiting while the channel
/// is full.
struct ChannelWriter {
    buffer: Vec<u8>,
    sender: mpsc::Sender<io::Result<Bytes>>,
}

impl ChannelWriter {
    fn new(sender: mpsc::Sender<io::Result<Bytes>>) -> Self {
        ChannelWriter { buffer: Vec::with_capacity(CHUNK), sender }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK)));
        self.sender
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client stopped reading the export"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buffer.len();
        let taken = bytes.len().min(room);
        self.buffer.extend_from_slice(&bytes[..taken]);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}
