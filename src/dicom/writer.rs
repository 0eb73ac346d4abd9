//! [`Part10Writer`]: writes the raw bytes of a part, exactly as received, to a file on a
//! blocking thread, and makes them durable (`fdatasync`) when the part ends.
//!
//! The reader hands over batches of consumed bytes (reference-counted slices of the request
//! chunks: nothing is copied on the way to the disk). The queue to the writing thread is
//! bounded, so a slow disk slows the reader, which slows the socket.

use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::diag::tasks::tasks;

/// Slices handed to one `writev` (Linux's IOV_MAX is 1024).
const MAX_IO_SLICES: usize = 1024;

/// Batches queued for the writing thread. Each batch is at most a buffer's worth, so the
/// queue holds at most a few MiB per part while letting the disk and the parser overlap.
const WRITE_QUEUE_BATCHES: usize = 4;

/// Streams one instance's bytes into a file.
pub struct Part10Writer {
    sender: Option<mpsc::Sender<Vec<Bytes>>>,
    /// Set by [`Part10Writer::cancel`]: the thread stops writing and skips the sync.
    cancelled: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<u64>>>,
}

impl Part10Writer {
    /// Starts the writing thread for `file` (opened for writing, empty); it shows in dumps as
    /// a child of task `parent`.
    pub fn start(mut file: File, parent: Option<u64>) -> Part10Writer {
        let task = tasks().register("Part 10 writer (blocking thread)", parent);
        let (sender, mut receiver) = mpsc::channel::<Vec<Bytes>>(WRITE_QUEUE_BATCHES);
        let cancelled = Arc::new(AtomicBool::new(false));
        let stop = cancelled.clone();
        let thread = tokio::task::spawn_blocking(move || {
            let info = task.info();
            let mut written = 0u64;
            info.set_state("waiting for bytes from the reader");
            while let Some(batch) = receiver.blocking_recv() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                info.tick();
                info.set_state("writing");
                written += write_batch(&mut file, &batch)?;
                info.set_state("waiting for bytes from the reader");
            }
            if stop.load(Ordering::Relaxed) {
                return Err(io::Error::other("cancelled"));
            }
            info.set_state("syncing (fdatasync)");
            file.sync_data()?;
            Ok(written)
        });
        Part10Writer {
            sender: Some(sender),
            cancelled,
            thread: Some(thread),
        }
    }

    /// Queues `batch`, waiting while the queue is full.
    pub async fn write(&mut self, batch: Vec<Bytes>) -> io::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let Some(sender) = &self.sender else {
            return Err(io::Error::other("write after finish"));
        };
        if sender.send(batch).await.is_err() {
            // The thread stopped early: it failed, and its result says why.
            self.sender = None;
            return Err(self.join().await.err().unwrap_or_else(|| {
                io::Error::other("the writing thread stopped before the end of the part")
            }));
        }
        Ok(())
    }

    /// Ends the file: waits until every byte is written and synced; returns the byte count.
    pub async fn finish(mut self) -> io::Result<u64> {
        self.sender = None;
        self.join().await
    }

    /// Abandons the file: the thread stops without syncing. The caller removes the file.
    pub fn cancel(mut self) {
        self.cancelled.store(true, Ordering::Relaxed);
        self.sender = None;
    }

    async fn join(&mut self) -> io::Result<u64> {
        let Some(thread) = self.thread.take() else {
            return Err(io::Error::other("the writing thread was already joined"));
        };
        match thread.await {
            Ok(result) => result,
            Err(error) => Err(io::Error::other(format!(
                "the writing thread failed: {error}"
            ))),
        }
    }
}

/// Writes a batch with vectored writes: the reader hands over one slice per token, so a
/// batch holds many small slices that must not each cost a system call.
fn write_batch(file: &mut File, batch: &[Bytes]) -> io::Result<u64> {
    let mut total = 0u64;
    for group in batch.chunks(MAX_IO_SLICES) {
        let mut slices: Vec<IoSlice<'_>> = group.iter().map(|chunk| IoSlice::new(chunk)).collect();
        let mut remaining: &mut [IoSlice<'_>] = &mut slices;
        while !remaining.is_empty() {
            let n = file.write_vectored(remaining)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the file accepted no more bytes",
                ));
            }
            total += n as u64;
            IoSlice::advance_slices(&mut remaining, n);
        }
    }
    Ok(total)
}
