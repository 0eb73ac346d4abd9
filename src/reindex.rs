//! `dicomwebserver reindex`: rebuilds the index from the stored files.
//!
//! Files are found by walking `studies/` one directory at a time (memory does not grow with
//! the archive) and read with the same incremental reader and listeners as an upload. The new
//! index is built beside the old one and replaces it only when complete. Run it while the
//! server is stopped.

use std::fs::{self, File};
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::dicom::json::{JsonListener, JsonOptions};
use crate::dicom::{read_part, ReadOptions, Validator};
use crate::index::sqlite::{SqliteIndex, DATABASE_FILE};
use crate::index::{Index, InstanceRecord};
use crate::stream::TrackableReadBuffer;

/// Bytes read from a file per chunk (and the buffer's capacity).
const READ_CHUNK: usize = 256 * 1024;
/// Records published per transaction.
const BATCH: usize = 500;
/// How often the progress line is refreshed.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// What a reindex did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub indexed: u64,
    pub failed: u64,
    pub bytes: u64,
}

/// Reads one stored file into its index record.
async fn read_file(root: &Path, path: &Path, max_depth: usize) -> Result<InstanceRecord, String> {
    let mut file = File::open(path).map_err(|error| error.to_string())?;
    let size = file.metadata().map_err(|error| error.to_string())?.len();
    let buffer = TrackableReadBuffer::new(READ_CHUNK);
    let producer = buffer.clone();
    let feed = tokio::task::spawn_blocking(move || {
        let handle = tokio::runtime::Handle::current();
        let mut chunk = vec![0u8; READ_CHUNK];
        loop {
            let n = match file.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(error) => {
                    producer.abort(format!("cannot read the file: {error}"));
                    return;
                }
            };
            if handle
                .block_on(producer.push(Bytes::copy_from_slice(&chunk[..n])))
                .is_err()
            {
                return;
            }
        }
        producer.complete();
    });
    let mut validator = Validator::new(None);
    let mut json = JsonListener::new(JsonOptions::default());
    let options = ReadOptions {
        max_depth,
        flush_bytes: READ_CHUNK,
    };
    let read = read_part(&buffer, &mut [&mut validator, &mut json], None, options).await;
    if read.is_err() {
        buffer.abort("reindex: read failed");
    }
    let _ = feed.await;
    read.map_err(|error| error.to_string())?;
    let relative = path
        .strip_prefix(root)
        .map_err(|_| "outside the storage root".to_string())?
        .to_string_lossy()
        .into_owned();
    let record = InstanceRecord::new(validator.meta(), json.into_result(), relative, size);
    let expected = PathBuf::from("studies")
        .join(&record.study_uid)
        .join("series")
        .join(&record.series_uid)
        .join("instances")
        .join(format!("{}.dcm", record.sop_uid));
    if Path::new(&record.path) != expected {
        return Err(format!("its UIDs say it belongs at {}", expected.display()));
    }
    Ok(record)
}

/// Progress on stderr: one rewritten line on a terminal, plain lines otherwise.
struct Progress {
    started: Instant,
    last: Instant,
    terminal: bool,
}

impl Progress {
    fn show(&mut self, summary: &Summary, force: bool) {
        if !force && self.last.elapsed() < PROGRESS_EVERY {
            return;
        }
        self.last = Instant::now();
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        let line = format!(
            "reindex: {} instances indexed, {} failed, {:.1} MB, {:.0} instances/s",
            summary.indexed,
            summary.failed,
            summary.bytes as f64 / 1e6,
            summary.indexed as f64 / seconds
        );
        let mut stderr = io::stderr().lock();
        let _ = if self.terminal {
            write!(stderr, "\r{line}")
        } else {
            writeln!(stderr, "{line}")
        };
        let _ = stderr.flush();
    }
}

/// Rebuilds the index of the store at `root`. Returns what it did.
pub async fn reindex(root: &Path, max_depth: usize) -> io::Result<Summary> {
    let rebuilding = root.join(format!("{DATABASE_FILE}.rebuild"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", rebuilding.display()));
    }
    let index = SqliteIndex::open_file(&rebuilding).map_err(io::Error::other)?;
    let mut summary = Summary::default();
    let mut progress = Progress {
        started: Instant::now(),
        last: Instant::now(),
        terminal: io::stderr().is_terminal(),
    };
    let mut pending = Vec::with_capacity(BATCH);
    let mut batch = 0u64;
    // Depth-first walk: only the directories still to visit are held.
    let mut dirs = vec![root.join("studies")];
    while let Some(dir) = dirs.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push(path);
                continue;
            }
            if !kind.is_file() || path.extension().is_none_or(|ext| ext != "dcm") {
                continue;
            }
            match read_file(root, &path, max_depth).await {
                Ok(record) => {
                    summary.indexed += 1;
                    summary.bytes += record.size;
                    pending.push(record);
                }
                Err(reason) => {
                    summary.failed += 1;
                    tracing::warn!(path = %path.display(), %reason, "not indexed");
                }
            }
            if pending.len() >= BATCH {
                batch += 1;
                index.publish(batch, &pending).map_err(io::Error::other)?;
                pending.clear();
            }
            progress.show(&summary, false);
        }
    }
    batch += 1;
    index.publish(batch, &pending).map_err(io::Error::other)?;
    drop(index);
    fs::rename(&rebuilding, root.join(DATABASE_FILE))?;
    for suffix in ["-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", root.join(DATABASE_FILE).display()));
        let _ = fs::remove_file(format!("{}{suffix}", rebuilding.display()));
    }
    progress.show(&summary, true);
    if progress.terminal {
        eprintln!();
    }
    Ok(summary)
}
