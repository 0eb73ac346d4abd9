//! The body of one uploader request: a `multipart/related; type="application/dicom"` stream of
//! the batch's files, read on a blocking thread in fixed-size chunks from a small pool (never a
//! whole file in memory) and handed to the connection through a bounded channel, with the exact
//! length announced up front.

use std::io::{self, Read};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

use super::scan::Candidate;

/// Bytes read from a file per body chunk.
pub const CHUNK: usize = 256 * 1024;

/// Chunks queued between the file reader and the socket.
pub const QUEUED_CHUNKS: usize = 4;

/// The reader thread of a started body.
pub struct Reading {
    reader: tokio::task::JoinHandle<()>,
    file_error: Arc<Mutex<Option<String>>>,
    /// File bytes of this body handed to the connection so far.
    sent: Arc<AtomicU64>,
}

impl Reading {
    /// File bytes of this body handed to the connection so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Stops the reader; returns why it ended the body early if a file was at fault (then the
    /// request's own error is only a consequence).
    pub fn stop(self) -> Option<String> {
        self.reader.abort();
        self.file_error.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// The multipart framing of a batch: known before anything is read, so the request's headers
/// can be built (and refused) before the reader starts.
pub struct Framing {
    files: Vec<Candidate>,
    boundary: String,
    headers: Vec<Vec<u8>>,
    closing: Vec<u8>,
    length: u64,
}

impl Framing {
    pub fn new(files: &[Candidate]) -> Framing {
        let boundary = boundary();
        let headers: Vec<Vec<u8>> = files
            .iter()
            .map(|file| {
                format!(
                    "--{boundary}\r\nContent-Type: application/dicom\r\nContent-Length: {}\r\n\r\n",
                    file.size
                )
                .into_bytes()
            })
            .collect();
        let closing = format!("--{boundary}--\r\n").into_bytes();
        let length = files
            .iter()
            .zip(&headers)
            .map(|(file, header)| header.len() as u64 + file.size + 2)
            .sum::<u64>()
            + closing.len() as u64;
        Framing {
            files: files.to_vec(),
            boundary,
            headers,
            closing,
            length,
        }
    }

    /// The `Content-Type` of the request, with its boundary.
    pub fn content_type(&self) -> String {
        format!(
            "multipart/related; type=\"application/dicom\"; boundary={}",
            self.boundary
        )
    }

    /// The `Content-Length` of the request.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// Starts reading the files on a blocking thread into the body; `total` counts the file
    /// bytes handed to the connection, with those of every other body (the progress display).
    pub fn start(self, total: &Arc<AtomicU64>) -> (ChannelBody, Reading) {
        let Framing {
            files,
            headers,
            closing,
            length,
            ..
        } = self;
        let (tx, rx) = mpsc::channel(QUEUED_CHUNKS);
        let file_error = Arc::new(Mutex::new(None::<String>));
        let sent = Arc::new(AtomicU64::new(0));
        let reader = {
            let counters = [Arc::clone(&sent), Arc::clone(total)];
            let file_error = Arc::clone(&file_error);
            tokio::task::spawn_blocking(move || {
                let [sent, total] = &counters;
                if let Err(Stop::File(message)) =
                    produce(&files, headers, closing, &tx, [sent, total])
                {
                    if let Ok(mut slot) = file_error.lock() {
                        *slot = Some(message.clone());
                    }
                    let _ = tx.blocking_send(Err(io::Error::other(message)));
                }
            })
        };
        let body = ChannelBody {
            rx,
            remaining: length,
        };
        let reading = Reading {
            reader,
            file_error,
            sent,
        };
        (body, reading)
    }
}

/// Why the file reader stopped early.
enum Stop {
    /// The request ended (the channel closed); the request's own error says why.
    Closed,
    /// A file could not be read, or changed.
    File(String),
}

/// Reads the batch's files into the body channel (on a blocking thread). Each file must still
/// have the size it had when it was scanned: a file that changed is an error, never a part
/// with other bytes than announced.
fn produce(
    files: &[Candidate],
    headers: Vec<Vec<u8>>,
    closing: Vec<u8>,
    tx: &mpsc::Sender<io::Result<Bytes>>,
    counters: [&AtomicU64; 2],
) -> Result<(), Stop> {
    // Only file bytes are counted, so progress adds up to the files' sizes.
    let push = |chunk: Bytes, content: bool| -> Result<(), Stop> {
        let len = chunk.len() as u64;
        tx.blocking_send(Ok(chunk)).map_err(|_| Stop::Closed)?;
        if content {
            for counter in counters {
                counter.fetch_add(len, Ordering::Relaxed);
            }
        }
        Ok(())
    };
    let pool = ChunkPool::new();
    for (file, header) in files.iter().zip(headers) {
        push(Bytes::from(header), false)?;
        let mut reader = std::fs::File::open(&file.path)
            .map_err(|error| Stop::File(format!("cannot open {}: {error}", file.path.display())))?;
        let mut left = file.size;
        while left > 0 {
            let mut chunk = pool.take((left.min(CHUNK as u64)) as usize);
            let mut filled = 0;
            while filled < chunk.len() {
                match reader.read(&mut chunk[filled..]) {
                    Ok(0) => {
                        return Err(Stop::File(format!(
                            "{} shrank while it was being sent",
                            file.path.display()
                        )))
                    }
                    Ok(n) => filled += n,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => {
                        return Err(Stop::File(format!(
                            "cannot read {}: {error}",
                            file.path.display()
                        )))
                    }
                }
            }
            left -= chunk.len() as u64;
            push(pool.bytes(chunk), true)?;
        }
        let mut probe = [0u8; 1];
        if matches!(reader.read(&mut probe), Ok(n) if n > 0) {
            return Err(Stop::File(format!(
                "{} grew while it was being sent",
                file.path.display()
            )));
        }
        push(Bytes::from_static(b"\r\n"), false)?;
    }
    push(Bytes::from(closing), false)
}

/// Chunk buffers that come back once the connection has written them, so that a request
/// reuses a few buffers instead of allocating (and faulting in) fresh memory for every chunk.
struct ChunkPool {
    home: std::sync::mpsc::SyncSender<Vec<u8>>,
    returned: std::sync::mpsc::Receiver<Vec<u8>>,
}

/// A pooled buffer inside a [`Bytes`]: dropping the last `Bytes` sends it back.
struct Pooled {
    data: Vec<u8>,
    home: std::sync::mpsc::SyncSender<Vec<u8>>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        // A full pool (or one whose request ended) lets the buffer go.
        let _ = self.home.try_send(std::mem::take(&mut self.data));
    }
}

impl ChunkPool {
    fn new() -> ChunkPool {
        // Enough for the queued chunks and those the connection is writing.
        let (home, returned) = std::sync::mpsc::sync_channel(QUEUED_CHUNKS + 4);
        ChunkPool { home, returned }
    }

    /// A buffer of `len` bytes (at most [`CHUNK`]): a returned one if there is one.
    fn take(&self, len: usize) -> Vec<u8> {
        let mut buffer = self
            .returned
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        // Only a buffer that grows is written to here; reused ones keep their bytes until
        // the file's bytes overwrite them.
        buffer.resize(len, 0);
        buffer
    }

    /// `buffer` as a chunk that comes back to this pool when the connection is done with it.
    fn bytes(&self, buffer: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled {
            data: buffer,
            home: self.home.clone(),
        })
    }
}

/// A boundary that does not occur in DICOM data by chance: a fixed prefix and 128 bits from
/// the clock, the process id and a counter, mixed.
fn boundary() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seed = nanos
        ^ (u128::from(std::process::id()) << 64)
        ^ u128::from(COUNTER.fetch_add(1, Ordering::Relaxed)) << 96;
    let mixed = seed.wrapping_mul(0x2545_f491_4f6c_dd1d_9e37_79b9_7f4a_7c15);
    format!("dicomwebserver-stow-{mixed:032x}")
}

/// The request body: chunks from the file reader, with the exact length announced.
pub struct ChannelBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    /// Bytes not yet handed to the connection.
    remaining: u64,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error))),
            Poll::Ready(None) if self.remaining > 0 => {
                Poll::Ready(Some(Err(io::Error::other("the request body ended early"))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the file reader over one file announced with `size` bytes.
    fn produce_one(content: &[u8], size: u64) -> (Result<(), Stop>, Vec<u8>, u64) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("file");
        std::fs::write(&path, content).expect("write");
        let (tx, mut rx) = mpsc::channel(64);
        let sent = AtomicU64::new(0);
        let files = [Candidate { path, size }];
        let total = AtomicU64::new(0);
        let result = produce(
            &files,
            vec![b"H".to_vec()],
            b"C".to_vec(),
            &tx,
            [&sent, &total],
        );
        assert_eq!(sent.load(Ordering::Relaxed), total.load(Ordering::Relaxed));
        drop(tx);
        let mut body = Vec::new();
        while let Ok(chunk) = rx.try_recv() {
            match chunk {
                Ok(bytes) => body.extend_from_slice(&bytes),
                Err(_) => body.extend_from_slice(b"<error>"),
            }
        }
        (result, body, sent.load(Ordering::Relaxed))
    }

    #[test]
    fn the_body_frames_each_file_and_counts_file_bytes_only() {
        let content = vec![7u8; CHUNK + 10];
        let (result, body, sent) = produce_one(&content, content.len() as u64);
        assert!(result.is_ok());
        let mut expected = b"H".to_vec();
        expected.extend_from_slice(&content);
        expected.extend_from_slice(b"\r\nC");
        assert_eq!(body, expected);
        assert_eq!(sent, content.len() as u64);
    }

    #[test]
    fn a_file_that_changed_since_the_scan_is_an_error() {
        let (result, _, _) = produce_one(b"0123456789", 20);
        assert!(
            matches!(result, Err(Stop::File(m)) if m.ends_with("shrank while it was being sent"))
        );
        let (result, _, _) = produce_one(b"0123456789", 5);
        assert!(
            matches!(result, Err(Stop::File(m)) if m.ends_with("grew while it was being sent"))
        );
    }

    #[test]
    fn boundaries_differ() {
        assert_ne!(boundary(), boundary());
    }
}
