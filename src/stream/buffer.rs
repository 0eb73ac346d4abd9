//! [`TrackableReadBuffer`]: the bounded async byte queue between the multipart splitter (the
//! producer) and one part's DICOM reader (the consumer).
//!
//! The producer `push`es chunks as they come off the socket and waits while the buffer is
//! full: that wait is the server's backpressure (the body is not polled, TCP flow control does
//! the rest). The consumer asks `ensure_available(n).await` and then reads without copying:
//! `front_at_least(n)` hands out the first unconsumed chunk, `consume(n)` moves the read position, and
//! `take_consumed()` returns the consumed bytes, in order, to be written to disk. A pending
//! `ensure_available(n)` with `n` above the capacity is always admitted, so a consumer can
//! never deadlock on a request the capacity could not hold.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};

use crate::diag::watchdog::{watchdog, StreamProbe, StreamSnapshot, WaitContext, WaitGuard};
use std::time::Duration;

/// Why a read from the buffer could not be satisfied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamError {
    /// The stream is complete and holds fewer bytes than were asked for.
    Eof {
        /// Unconsumed bytes left in the stream.
        available: usize,
    },
    /// One side gave up (truncated request, parse failure, client gone).
    Aborted(String),
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamError::Eof { available } => {
                write!(f, "stream ended with only {available} bytes left")
            }
            StreamError::Aborted(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for StreamError {}

/// A bounded, trackable byte queue for one part. Cloning gives another handle to the same
/// queue (one for the producer, one for the consumer).
#[derive(Clone)]
pub struct TrackableReadBuffer {
    shared: Arc<Shared>,
}

struct Shared {
    /// Bytes held (unconsumed plus consumed-but-not-taken) above which `push` waits.
    capacity: usize,
    /// Report an `ensure_available` still pending after this long (the livelock watchdog).
    livelock_detect: Option<Duration>,
    /// The upload this stream belongs to, for the watchdog's reports.
    context: WaitContext,
    state: Mutex<State>,
}

/// How a [`TrackableReadBuffer`] is set up.
#[derive(Debug, Clone, Copy, Default)]
pub struct BufferOptions {
    /// Bytes held before `push` waits (see the module docs for the one exception).
    pub capacity: usize,
    /// When set, an `ensure_available(n)` pending longer than this many milliseconds is
    /// reported by the watchdog with the stack captured at the call.
    pub livelock_detect_ms: Option<u64>,
    /// The upload the stream belongs to, named in reports.
    pub context: WaitContext,
}

impl StreamProbe for Shared {
    fn snapshot(&self) -> StreamSnapshot {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        StreamSnapshot {
            offset: state.offset,
            end_offset: state.end_offset,
            is_complete: state.complete && state.truncated.is_none(),
            reader_waiting_for: state.pending_need,
            producer_blocked: state.producer_waker.is_some(),
        }
    }
}

#[derive(Default)]
struct State {
    /// Chunks with unconsumed bytes, in order; the first `front_read` bytes of the first one
    /// are consumed already (kept in place, so consuming a token is an addition, not a split).
    unconsumed: VecDeque<Bytes>,
    /// Consumed bytes at the start of `unconsumed[0]`, not yet moved to `consumed`.
    front_read: usize,
    /// Unconsumed bytes in `unconsumed`.
    unconsumed_len: usize,
    /// Consumed bytes not yet handed to `take_consumed` (the writer's backlog).
    consumed: Vec<Bytes>,
    /// Total length of `consumed`.
    consumed_len: usize,
    /// Bytes consumed since the stream started.
    offset: u64,
    /// Bytes pushed since the stream started.
    end_offset: u64,
    /// The producer has pushed everything.
    complete: bool,
    /// The producer stopped before the stream's real end (body cut off): the bytes pushed so
    /// far stay readable, then reads fail with this reason instead of seeing a clean end.
    truncated: Option<String>,
    /// Set once by `abort`; every later call fails with it.
    aborted: Option<String>,
    /// `n` of the consumer's pending `ensure_available`, admitted even above capacity.
    pending_need: usize,
    /// Woken when bytes arrive, the stream completes or is aborted.
    consumer_waker: Option<Waker>,
    /// Woken when the consumer frees room or the stream is aborted.
    producer_waker: Option<Waker>,
}

impl State {
    fn held(&self) -> usize {
        self.unconsumed_len + self.consumed_len
    }

    /// Moves the consumed head of the first chunk to `consumed` (a split, done only when the
    /// head must be handed on or the chunk merged).
    fn detach_front_read(&mut self) {
        if self.front_read == 0 {
            return;
        }
        let read = self.front_read;
        if let Some(front) = self.unconsumed.front_mut() {
            let head = front.split_to(read);
            self.consumed.push(head);
        }
        self.front_read = 0;
    }

    fn wake_consumer(&mut self) {
        if let Some(waker) = self.consumer_waker.take() {
            waker.wake();
        }
    }

    fn wake_producer(&mut self) {
        if let Some(waker) = self.producer_waker.take() {
            waker.wake();
        }
    }
}

impl TrackableReadBuffer {
    /// A new empty buffer that holds at most `capacity` bytes (see the module docs for the one
    /// exception).
    pub fn new(capacity: usize) -> TrackableReadBuffer {
        TrackableReadBuffer::with_options(BufferOptions {
            capacity,
            ..BufferOptions::default()
        })
    }

    /// A new empty buffer set up by `options`.
    pub fn with_options(options: BufferOptions) -> TrackableReadBuffer {
        TrackableReadBuffer {
            shared: Arc::new(Shared {
                capacity: options.capacity.max(1),
                livelock_detect: options.livelock_detect_ms.map(Duration::from_millis),
                context: options.context,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Where the stream stands: offsets and completion.
    pub fn snapshot(&self) -> StreamSnapshot {
        self.shared.snapshot()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain counters behind, still consistent
        // enough to fail the part; recover instead of propagating the poison.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Producer: appends `chunk`, waiting while the buffer is full. Fails if the stream was
    /// aborted (the caller then discards the rest of the part).
    pub async fn push(&self, chunk: Bytes) -> Result<(), StreamError> {
        if chunk.is_empty() {
            return Ok(());
        }
        Push { buffer: self }.await?;
        let mut state = self.lock();
        if let Some(reason) = &state.aborted {
            return Err(StreamError::Aborted(reason.clone()));
        }
        state.end_offset += chunk.len() as u64;
        state.unconsumed_len += chunk.len();
        state.unconsumed.push_back(chunk);
        state.wake_consumer();
        Ok(())
    }

    /// Producer: no more bytes will come.
    pub fn complete(&self) {
        let mut state = self.lock();
        state.complete = true;
        state.wake_consumer();
    }

    /// Producer: no more bytes will come, but the stream did not reach its real end. The
    /// consumer reads what was pushed, then fails with `reason` rather than seeing an end.
    pub fn truncate(&self, reason: impl Into<String>) {
        let mut state = self.lock();
        state.complete = true;
        state.truncated = Some(reason.into());
        state.wake_consumer();
    }

    /// Either side: gives up on the stream with `reason`; pending and later calls fail.
    pub fn abort(&self, reason: impl Into<String>) {
        let mut state = self.lock();
        if state.aborted.is_none() {
            state.aborted = Some(reason.into());
        }
        state.unconsumed.clear();
        state.front_read = 0;
        state.unconsumed_len = 0;
        state.consumed.clear();
        state.consumed_len = 0;
        state.wake_consumer();
        state.wake_producer();
    }

    /// Consumer: waits until at least `n` unconsumed bytes are buffered. Fails with
    /// [`StreamError::Eof`] when the stream completes with fewer.
    pub fn ensure_available(&self, n: usize) -> EnsureAvailable<'_> {
        EnsureAvailable {
            buffer: self,
            n,
            wait: None,
        }
    }

    /// Consumer: unconsumed bytes buffered now.
    pub fn available(&self) -> usize {
        self.lock().unconsumed_len
    }

    /// Consumer: the first unconsumed chunk, made at least `n` bytes long by merging the
    /// following chunks into it (a copy of `n` bytes) when it is shorter. Returns `None` if
    /// fewer than `n` bytes are buffered.
    pub fn front_at_least(&self, n: usize) -> Option<Bytes> {
        let mut state = self.lock();
        if state.unconsumed_len < n {
            return None;
        }
        if let Some(front) = state.unconsumed.front() {
            if front.len() - state.front_read >= n {
                return Some(front.slice(state.front_read..));
            }
        }
        // Move the consumed head of the first chunk out of the way, then merge.
        state.detach_front_read();
        let mut merged = BytesMut::with_capacity(n);
        while merged.len() < n {
            let Some(mut chunk) = state.unconsumed.pop_front() else {
                break;
            };
            let want = n - merged.len();
            if chunk.len() > want {
                merged.extend_from_slice(&chunk.split_to(want));
                state.unconsumed.push_front(chunk);
            } else {
                merged.extend_from_slice(&chunk);
            }
        }
        let merged = merged.freeze();
        state.unconsumed.push_front(merged.clone());
        Some(merged)
    }

    /// Consumer: marks the next `n` bytes as read. They stay accounted for until
    /// [`TrackableReadBuffer::take_consumed`] hands them on.
    pub fn consume(&self, n: usize) {
        let mut state = self.lock();
        let n = n.min(state.unconsumed_len);
        let mut left = n;
        while left > 0 {
            let Some(front_len) = state.unconsumed.front().map(Bytes::len) else {
                break;
            };
            let available = front_len - state.front_read;
            if left < available {
                state.front_read += left;
                left = 0;
            } else {
                // The whole first chunk is consumed now, including its earlier head.
                if let Some(chunk) = state.unconsumed.pop_front() {
                    state.consumed.push(chunk);
                }
                state.front_read = 0;
                left -= available;
            }
        }
        state.unconsumed_len -= n;
        state.consumed_len += n;
        state.offset += n as u64;
    }

    /// Consumer: consumed bytes not yet taken (the writer's backlog).
    pub fn consumed_len(&self) -> usize {
        self.lock().consumed_len
    }

    /// Consumer: takes the consumed bytes, in stream order, freeing their room.
    pub fn take_consumed(&self) -> Vec<Bytes> {
        let mut state = self.lock();
        state.detach_front_read();
        state.consumed_len = 0;
        let taken = std::mem::take(&mut state.consumed);
        state.wake_producer();
        taken
    }

    /// Bytes consumed since the stream started.
    pub fn offset(&self) -> u64 {
        self.lock().offset
    }

    /// Bytes received since the stream started.
    pub fn end_offset(&self) -> u64 {
        self.lock().end_offset
    }

    /// Whether the producer has pushed everything and the stream ends cleanly after it.
    pub fn is_complete(&self) -> bool {
        let state = self.lock();
        state.complete && state.truncated.is_none()
    }
}

/// Future of [`TrackableReadBuffer::push`]: ready once there is room.
struct Push<'a> {
    buffer: &'a TrackableReadBuffer,
}

impl Future for Push<'_> {
    type Output = Result<(), StreamError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let capacity = self.buffer.shared.capacity;
        let mut state = self.buffer.lock();
        if let Some(reason) = &state.aborted {
            return Poll::Ready(Err(StreamError::Aborted(reason.clone())));
        }
        // Room below capacity, or the consumer waits for more than is unconsumed: admitting
        // the chunk is what lets a request above capacity complete.
        if state.held() < capacity || state.unconsumed_len < state.pending_need {
            return Poll::Ready(Ok(()));
        }
        state.producer_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Future of [`TrackableReadBuffer::ensure_available`].
pub struct EnsureAvailable<'a> {
    buffer: &'a TrackableReadBuffer,
    n: usize,
    /// Registration with the watchdog, made on the first pending poll when detection is on.
    wait: Option<WaitGuard>,
}

impl Future for EnsureAvailable<'_> {
    type Output = Result<(), StreamError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let ready = self.check(cx);
        match &ready {
            Poll::Ready(_) => self.wait = None,
            Poll::Pending => match &self.wait {
                Some(wait) => wait.polled(),
                None => {
                    if let Some(threshold) = self.buffer.shared.livelock_detect {
                        let probe: Arc<dyn StreamProbe> = self.buffer.shared.clone();
                        let context = self.buffer.shared.context;
                        self.wait = Some(watchdog().register(self.n, threshold, probe, context));
                    }
                }
            },
        }
        ready
    }
}

impl EnsureAvailable<'_> {
    fn check(&self, cx: &mut Context<'_>) -> Poll<Result<(), StreamError>> {
        let n = self.n;
        let mut state = self.buffer.lock();
        if let Some(reason) = &state.aborted {
            return Poll::Ready(Err(StreamError::Aborted(reason.clone())));
        }
        if state.unconsumed_len >= n {
            state.pending_need = 0;
            return Poll::Ready(Ok(()));
        }
        if let Some(reason) = &state.truncated {
            let reason = reason.clone();
            state.pending_need = 0;
            return Poll::Ready(Err(StreamError::Aborted(reason)));
        }
        if state.complete {
            state.pending_need = 0;
            return Poll::Ready(Err(StreamError::Eof {
                available: state.unconsumed_len,
            }));
        }
        state.pending_need = n;
        state.consumer_waker = Some(cx.waker().clone());
        // The producer may be parked on a full buffer that now must admit this request.
        state.wake_producer();
        Poll::Pending
    }
}

impl Drop for EnsureAvailable<'_> {
    fn drop(&mut self) {
        let mut state = self.buffer.lock();
        state.pending_need = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn request_above_capacity_is_admitted() {
        let buffer = TrackableReadBuffer::new(4);
        let producer = buffer.clone();
        let feed = tokio::spawn(async move {
            for _ in 0..10 {
                producer
                    .push(Bytes::from_static(b"abc"))
                    .await
                    .expect("not aborted");
            }
            producer.complete();
        });
        buffer.ensure_available(30).await.expect("30 bytes arrive");
        let all = buffer.front_at_least(30).expect("30 bytes buffered");
        assert_eq!(&all[..30], "abc".repeat(10).as_bytes());
        feed.await.expect("producer finishes");
    }

    #[tokio::test]
    async fn consume_and_take_keep_order_and_offsets() {
        let buffer = TrackableReadBuffer::new(1024);
        buffer
            .push(Bytes::from_static(b"hello "))
            .await
            .expect("push");
        buffer
            .push(Bytes::from_static(b"world"))
            .await
            .expect("push");
        buffer.complete();
        assert_eq!(
            &buffer.front_at_least(8).expect("8 bytes")[..8],
            b"hello wo"
        );
        buffer.consume(8);
        assert_eq!(buffer.offset(), 8);
        assert_eq!(buffer.end_offset(), 11);
        assert_eq!(
            buffer.ensure_available(4).await,
            Err(StreamError::Eof { available: 3 })
        );
        buffer.consume(3);
        let taken: Vec<u8> = buffer.take_consumed().concat();
        assert_eq!(taken, b"hello world");
    }

    #[tokio::test]
    async fn truncated_stream_yields_its_bytes_then_fails() {
        let buffer = TrackableReadBuffer::new(64);
        buffer
            .push(Bytes::from_static(b"abcd"))
            .await
            .expect("push");
        buffer.truncate("cut");
        assert!(!buffer.is_complete());
        buffer
            .ensure_available(4)
            .await
            .expect("pushed bytes stay readable");
        buffer.consume(4);
        assert_eq!(
            buffer.ensure_available(1).await,
            Err(StreamError::Aborted("cut".into()))
        );
    }

    #[tokio::test]
    async fn abort_fails_both_sides() {
        let buffer = TrackableReadBuffer::new(4);
        buffer
            .push(Bytes::from_static(b"abcd"))
            .await
            .expect("push");
        buffer.abort("gone");
        assert!(buffer.push(Bytes::from_static(b"x")).await.is_err());
        assert!(matches!(
            buffer.ensure_available(1).await,
            Err(StreamError::Aborted(_))
        ));
    }
}
