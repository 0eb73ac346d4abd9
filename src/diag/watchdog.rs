//! The `ensure_available` watchdog: a registry of pending waits and a plain thread that warns
//! about any wait pending longer than its threshold.
//!
//! A wait is registered only when it actually goes pending and detection is on; registering
//! captures the caller's stack unresolved (a few µs). The fast path, data already buffered,
//! registers nothing. The watchdog thread, off the async runtime (so it works even when the
//! runtime is stuck), resolves a stack only when its warning fires. Resolved and cancelled waits
//! leave the registry when their future completes or is dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use backtrace::Backtrace;

use super::stacks::{format_frames, resolve_trimmed};

/// Reports kept for `/status?livelock` (oldest dropped first).
const MAX_REPORTS: usize = 64;
/// Polls without new bytes above which a wait is called a livelock rather than a wait for
/// the client: an honest waiter is polled once per arrival of bytes.
const LIVELOCK_POLLS: u64 = 100;
/// Bounds of the watchdog thread's scan interval (a quarter of the smallest threshold).
const MIN_TICK: Duration = Duration::from_millis(5);
const MAX_TICK: Duration = Duration::from_millis(1000);

/// Where a stream stands, as the watchdog reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSnapshot {
    pub offset: u64,
    pub end_offset: u64,
    pub is_complete: bool,
    /// `n` of a pending `ensure_available(n)` (0 when the reader is not waiting).
    pub reader_waiting_for: usize,
    /// The producer waits for room (the reader or the disk is the bottleneck).
    pub producer_blocked: bool,
}

impl StreamSnapshot {
    /// What the stream waits on, in words.
    pub fn waiting_on(&self) -> String {
        match (self.reader_waiting_for, self.producer_blocked) {
            (0, false) => "not waiting".into(),
            (0, true) => "buffer full: the body pump waits for the reader or the disk".into(),
            (n, _) => format!("reader waits in ensureAvailable({n}) for client bytes"),
        }
    }
}

/// Lets the watchdog read a stream's offsets without knowing its type.
pub trait StreamProbe: Send + Sync {
    fn snapshot(&self) -> StreamSnapshot;
}

/// Which upload a wait belongs to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaitContext {
    pub request_id: Option<u64>,
    pub part_index: Option<usize>,
}

struct Wait {
    n: usize,
    threshold: Duration,
    since: Instant,
    polls: Arc<AtomicU64>,
    stack: Option<Backtrace>,
    probe: Arc<dyn StreamProbe>,
    context: WaitContext,
    /// Bytes received when the wait started: no change means no progress.
    end_offset_at_start: u64,
    reported: bool,
}

/// A pending wait as listed by dumps and `/status`.
#[derive(Debug, Clone)]
pub struct PendingWait {
    pub n: usize,
    pub age: Duration,
    pub polls: u64,
    pub context: WaitContext,
    pub stream: StreamSnapshot,
}

/// What a wait is judged to be waiting on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Polled once or twice: the bytes never came (stalled client, or a deadlock upstream).
    WaitingForClient,
    /// Bytes arrive, but not enough yet (slow client).
    SlowClient,
    /// Woken again and again without new bytes: a livelock.
    Livelock,
}

impl Verdict {
    pub fn describe(self) -> &'static str {
        match self {
            Verdict::WaitingForClient => {
                "waiting for client bytes that do not arrive (stalled client or upstream deadlock)"
            }
            Verdict::SlowClient => "waiting for client bytes that arrive slowly",
            Verdict::Livelock => "LIVELOCK: woken repeatedly without new bytes",
        }
    }
}

/// One watchdog warning, kept for `/status?livelock`.
#[derive(Debug, Clone)]
pub struct Report {
    pub context: WaitContext,
    pub n: usize,
    pub stream: StreamSnapshot,
    pub polls: u64,
    pub pending_ms: u64,
    pub threshold_ms: u64,
    pub verdict: Verdict,
    pub stack: String,
    pub time: SystemTime,
}

impl Report {
    /// The warning text: the contract's first line, then what, where and why.
    pub fn message(&self) -> String {
        let mut out = format!(
            "Possible livelock: ensureAvailable({}) still pending after {}ms. Stream: offset={} endOffset={} isComplete={}\n",
            self.n, self.threshold_ms, self.stream.offset, self.stream.end_offset, self.stream.is_complete
        );
        out.push_str(&format!(
            "  request={} part={} polls={} pending={}ms: {}\n  stack at the ensureAvailable call:\n",
            self.context
                .request_id
                .map_or_else(|| "-".to_string(), |id| id.to_string()),
            self.context
                .part_index
                .map_or_else(|| "-".to_string(), |index| index.to_string()),
            self.polls,
            self.pending_ms,
            self.verdict.describe(),
        ));
        out.push_str(&self.stack);
        out
    }
}

/// The process-wide registry of pending waits.
pub struct Watchdog {
    waits: Mutex<HashMap<u64, Wait>>,
    next_id: AtomicU64,
    reports: Mutex<VecDeque<Report>>,
    /// Waits registered since the start (each one captured a stack).
    registrations: AtomicU64,
    /// Warnings issued since the start.
    reports_total: AtomicU64,
    /// Smallest threshold seen, in ms: sets the scan interval.
    min_threshold_ms: AtomicU64,
    thread: Once,
}

/// The registry; created on first use.
pub fn watchdog() -> &'static Watchdog {
    static WATCHDOG: OnceLock<Watchdog> = OnceLock::new();
    WATCHDOG.get_or_init(|| Watchdog {
        waits: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        reports: Mutex::new(VecDeque::new()),
        registrations: AtomicU64::new(0),
        reports_total: AtomicU64::new(0),
        min_threshold_ms: AtomicU64::new(u64::MAX),
        thread: Once::new(),
    })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Registration of one pending wait; dropping it removes the wait from the registry.
pub struct WaitGuard {
    id: u64,
    polls: Arc<AtomicU64>,
}

impl WaitGuard {
    /// Counts one more poll that found the wait still pending.
    pub fn polled(&self) {
        self.polls.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        lock(&watchdog().waits).remove(&self.id);
    }
}

impl Watchdog {
    /// Registers a wait for `n` bytes that just went pending, capturing the caller's stack.
    pub fn register(
        &'static self,
        n: usize,
        threshold: Duration,
        probe: Arc<dyn StreamProbe>,
        context: WaitContext,
    ) -> WaitGuard {
        self.start_thread(threshold);
        self.registrations.fetch_add(1, Ordering::Relaxed);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let polls = Arc::new(AtomicU64::new(1));
        let end_offset_at_start = probe.snapshot().end_offset;
        let wait = Wait {
            n,
            threshold,
            since: Instant::now(),
            polls: polls.clone(),
            stack: Some(Backtrace::new_unresolved()),
            probe,
            context,
            end_offset_at_start,
            reported: false,
        };
        lock(&self.waits).insert(id, wait);
        WaitGuard { id, polls }
    }

    fn start_thread(&'static self, threshold: Duration) {
        let ms = u64::try_from(threshold.as_millis()).unwrap_or(u64::MAX);
        self.min_threshold_ms.fetch_min(ms, Ordering::Relaxed);
        self.thread.call_once(|| {
            let spawned = std::thread::Builder::new()
                .name("livelock-watchdog".into())
                .spawn(move || loop {
                    let min = self.min_threshold_ms.load(Ordering::Relaxed);
                    let tick = (Duration::from_millis(min) / 4).clamp(MIN_TICK, MAX_TICK);
                    std::thread::sleep(tick);
                    self.scan();
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start the livelock watchdog thread");
            }
        });
    }

    /// Reports every wait past its threshold that was not reported yet.
    fn scan(&self) {
        let due: Vec<Due> = {
            let mut waits = lock(&self.waits);
            waits
                .values_mut()
                .filter(|wait| !wait.reported && wait.since.elapsed() >= wait.threshold)
                .map(|wait| {
                    wait.reported = true;
                    let stream = wait.probe.snapshot();
                    Due {
                        n: wait.n,
                        threshold: wait.threshold,
                        since: wait.since,
                        polls: wait.polls.load(Ordering::Relaxed),
                        stack: wait.stack.take(),
                        progressed: stream.end_offset != wait.end_offset_at_start,
                        stream,
                        context: wait.context,
                    }
                })
                .collect()
        };
        for due in due {
            let report = due.into_report();
            tracing::warn!(
                n = report.n,
                offset = report.stream.offset,
                end_offset = report.stream.end_offset,
                is_complete = report.stream.is_complete,
                polls = report.polls,
                age_ms = report.pending_ms,
                request = report.context.request_id,
                part = report.context.part_index,
                verdict = ?report.verdict,
                "{}",
                report.message()
            );
            self.reports_total.fetch_add(1, Ordering::Relaxed);
            let mut reports = lock(&self.reports);
            if reports.len() == MAX_REPORTS {
                reports.pop_front();
            }
            reports.push_back(report);
        }
    }

    /// The waits pending now, oldest first.
    pub fn pending(&self) -> Vec<PendingWait> {
        let mut pending: Vec<PendingWait> = lock(&self.waits)
            .values()
            .map(|wait| PendingWait {
                n: wait.n,
                age: wait.since.elapsed(),
                polls: wait.polls.load(Ordering::Relaxed),
                context: wait.context,
                stream: wait.probe.snapshot(),
            })
            .collect();
        pending.sort_by_key(|wait| std::cmp::Reverse(wait.age));
        pending
    }

    /// Warnings issued since the process started.
    pub fn reports_total(&self) -> u64 {
        self.reports_total.load(Ordering::Relaxed)
    }

    /// Waits registered (stacks captured) since the process started.
    pub fn registrations(&self) -> u64 {
        self.registrations.load(Ordering::Relaxed)
    }

    /// Recent warnings, oldest first.
    pub fn reports(&self) -> Vec<Report> {
        lock(&self.reports).iter().cloned().collect()
    }
}

/// A wait past its threshold, taken out of the registry's lock to be reported.
struct Due {
    n: usize,
    threshold: Duration,
    since: Instant,
    polls: u64,
    stack: Option<Backtrace>,
    stream: StreamSnapshot,
    progressed: bool,
    context: WaitContext,
}

impl Due {
    /// Judges the wait and resolves its stack (the slow part, done outside the lock).
    fn into_report(self) -> Report {
        let verdict = if self.polls >= LIVELOCK_POLLS && !self.progressed {
            Verdict::Livelock
        } else if self.progressed {
            Verdict::SlowClient
        } else {
            Verdict::WaitingForClient
        };
        let stack = self
            .stack
            .map(|backtrace| format_frames(&resolve_trimmed(backtrace), "    "))
            .unwrap_or_default();
        Report {
            context: self.context,
            n: self.n,
            stream: self.stream,
            polls: self.polls,
            pending_ms: u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX),
            threshold_ms: u64::try_from(self.threshold.as_millis()).unwrap_or(u64::MAX),
            verdict,
            stack,
            time: SystemTime::now(),
        }
    }
}
