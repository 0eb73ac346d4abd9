//! A response body fed from a blocking thread through a bounded channel: retrieves read (and
//! transcode) files on a blocking thread and the response streams what they produce, so memory
//! stays bounded whatever the size of a study.

use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::Frame;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::mpsc;

/// Chunks queued between the producing thread and the socket (each up to `CHUNK`).
const QUEUE_CHUNKS: usize = 8;
/// Bytes gathered before a chunk is handed to the socket.
pub const CHUNK: usize = 256 * 1024;

/// The response side.
pub struct ChannelBody {
    receiver: mpsc::Receiver<io::Result<Bytes>>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.receiver
            .poll_recv(cx)
            .map(|item| item.map(|result| result.map(Frame::data)))
    }
}

/// The producing side: a `Write` that batches into chunks and blocks while the queue is
/// full. Writing fails once the client has gone.
pub struct BodyWriter {
    sender: mpsc::Sender<io::Result<Bytes>>,
    pending: BytesMut,
    /// How long a chunk may wait for a client that stopped reading.
    idle: Duration,
    runtime: Handle,
}

/// A connected body and its writer; the writer gives up when the client reads nothing for
/// `idle`. Call from within the runtime (the writer is then moved to a blocking thread).
pub fn channel(idle: Duration) -> (ChannelBody, BodyWriter) {
    let (sender, receiver) = mpsc::channel(QUEUE_CHUNKS);
    (
        ChannelBody { receiver },
        BodyWriter {
            sender,
            pending: BytesMut::with_capacity(CHUNK),
            idle,
            runtime: Handle::current(),
        },
    )
}

impl BodyWriter {
    fn send(&mut self, chunk: Bytes) -> io::Result<()> {
        let sent = self
            .runtime
            .block_on(tokio::time::timeout(self.idle, self.sender.send(Ok(chunk))));
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the client has gone",
            )),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            )),
        }
    }

    /// Ends the body with an error (the client sees a cut-off response). Never waits: with
    /// the queue full the body simply ends, cut off all the same.
    pub fn fail(self, error: io::Error) {
        let _ = self.sender.try_send(Err(error));
    }
}

impl Write for BodyWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(data);
        if self.pending.len() >= CHUNK {
            let chunk = self.pending.split().freeze();
            self.send(chunk)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            let chunk = self.pending.split().freeze();
            self.send(chunk)?;
        }
        Ok(())
    }
}
