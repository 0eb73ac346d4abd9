//! Tests of the watchdog, thread capture, task tracking and the sampler.
//!
//! The watchdog and the task registry are process-wide: every test owns a unique
//! [`WaitContext`] (or unique task ids) and looks only at its own entries. Tests that register
//! waits, read the global registration counter, or spin CPU-bound threads hold [`serial`], so
//! they neither disturb each other's counters nor fight for the CPU.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::diag::dump::sample;
use crate::diag::tasks::tasks;
use crate::diag::watchdog::{watchdog, PendingWait, Report, Verdict, WaitContext};
use crate::stream::{BufferOptions, TrackableReadBuffer};

/// Bound on every wait for something to happen; a watchdog against hangs, not a timing assert.
const DEADLINE: Duration = Duration::from_secs(10);

/// Held by tests that touch the global registration counter or spin threads.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A context no other test (nor the server code) uses: request ids far above any real one.
fn unique_context() -> WaitContext {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    WaitContext {
        request_id: Some(0xD1A6_0000_0000 + NEXT.fetch_add(1, Ordering::Relaxed)),
        part_index: Some(1),
    }
}

fn buffer_with_detection(context: WaitContext, threshold_ms: u64) -> TrackableReadBuffer {
    TrackableReadBuffer::with_options(BufferOptions {
        capacity: 64 * 1024,
        livelock_detect_ms: Some(threshold_ms),
        context,
    })
}

fn pending_for(context: WaitContext) -> Vec<PendingWait> {
    watchdog()
        .pending()
        .into_iter()
        .filter(|wait| wait.context == context)
        .collect()
}

fn report_for(context: WaitContext) -> Option<Report> {
    watchdog()
        .reports()
        .into_iter()
        .find(|report| report.context == context)
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a current-thread runtime")
}

fn multi_thread_runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("build a multi-thread runtime")
}

/// Polls `future` exactly once and says whether it is still pending.
async fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> bool {
    let mut future = future;
    std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx).is_pending())).await
}

#[test]
fn waiter_woken_without_new_bytes_is_reported_as_livelock() {
    let _serial = serial();
    let context = unique_context();
    let buffer = buffer_with_detection(context, 50);
    let report = current_thread_runtime().block_on(async {
        let mut waiting = pin!(buffer.ensure_available(16));
        let deadline = Instant::now() + DEADLINE;
        // The buggy reader: poll the same wait again and again, each time rescheduled by
        // yield_now rather than by bytes arriving.
        loop {
            assert!(poll_once(waiting.as_mut()).await, "no bytes were pushed");
            if let Some(report) = report_for(context) {
                break report;
            }
            assert!(
                Instant::now() < deadline,
                "no watchdog report within {DEADLINE:?}"
            );
            tokio::task::yield_now().await;
        }
    });
    assert_eq!(report.verdict, Verdict::Livelock, "{}", report.message());
    assert!(
        report.polls >= 100,
        "polls in the hundreds or more: {}",
        report.message()
    );
    assert_eq!(report.n, 16);
    assert_eq!(report.stream.end_offset, 0);
    assert!(!report.stream.is_complete);
    let message = report.message();
    assert!(
        message.starts_with("Possible livelock: ensureAvailable(16) still pending after 50ms."),
        "{message}"
    );
    assert!(
        message.contains("LIVELOCK: woken repeatedly without new bytes"),
        "{message}"
    );
    assert!(
        report.stack.contains("diag_tests"),
        "the stack shows the caller of ensure_available: {}",
        report.stack
    );
}

#[test]
fn satisfied_calls_register_nothing() {
    let _serial = serial();
    let context = unique_context();
    let buffer = buffer_with_detection(context, 50);
    current_thread_runtime().block_on(async {
        buffer
            .push(Bytes::from_static(&[7u8; 64]))
            .await
            .expect("room for 64 bytes");
        let before = watchdog().registrations();
        for _ in 0..10_000 {
            buffer
                .ensure_available(16)
                .await
                .expect("16 bytes are buffered");
        }
        assert_eq!(
            watchdog().registrations(),
            before,
            "a satisfied ensure_available captured a stack"
        );
    });
    assert!(pending_for(context).is_empty());
}

#[test]
fn resolved_wait_leaves_the_registry() {
    let _serial = serial();
    let context = unique_context();
    let buffer = buffer_with_detection(context, 60_000);
    current_thread_runtime().block_on(async {
        let before = watchdog().registrations();
        let mut waiting = pin!(buffer.ensure_available(8));
        assert!(poll_once(waiting.as_mut()).await, "nothing buffered yet");
        assert_eq!(watchdog().registrations(), before + 1);
        let pending = pending_for(context);
        assert_eq!(pending.len(), 1, "the wait is registered while pending");
        assert_eq!((pending[0].n, pending[0].polls), (8, 1));
        buffer
            .push(Bytes::from_static(b"12345678"))
            .await
            .expect("room for 8 bytes");
        waiting.await.expect("8 bytes arrived");
    });
    assert!(
        pending_for(context).is_empty(),
        "resolved wait still listed"
    );
}

#[test]
fn cancelled_wait_leaves_the_registry() {
    let _serial = serial();
    let context = unique_context();
    let buffer = buffer_with_detection(context, 60_000);
    current_thread_runtime().block_on(async {
        let before = watchdog().registrations();
        let timed_out =
            tokio::time::timeout(Duration::from_millis(20), buffer.ensure_available(8)).await;
        assert!(timed_out.is_err(), "no bytes were pushed");
        assert_eq!(
            watchdog().registrations(),
            before + 1,
            "the wait went pending and was registered"
        );
    });
    assert!(
        pending_for(context).is_empty(),
        "cancelled wait still listed"
    );
}

#[cfg(target_os = "linux")]
#[inline(never)]
fn spin_marker(stop: &AtomicBool) -> u64 {
    let mut turns = 0u64;
    while !stop.load(Ordering::Relaxed) {
        turns = std::hint::black_box(turns.wrapping_add(1));
    }
    turns
}

#[cfg(target_os = "linux")]
#[inline(never)]
fn worker_spin_marker(stop: &AtomicBool) -> u64 {
    let mut turns = 0u64;
    while !stop.load(Ordering::Relaxed) {
        turns = std::hint::black_box(turns.wrapping_add(1));
    }
    turns
}

/// Captures all threads until one has `marker` in its stack (bounded by [`DEADLINE`]).
#[cfg(target_os = "linux")]
fn thread_with(marker: &str) -> crate::diag::threads::ThreadStack {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let threads = crate::diag::threads::capture_all();
        if let Some(thread) = threads.iter().find(|thread| {
            thread
                .frames
                .iter()
                .any(|frame| frame.function.contains(marker))
        }) {
            return thread.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no thread stack contains {marker} within {DEADLINE:?}; threads: {:#?}",
            threads
                .iter()
                .map(|thread| (
                    thread.tid,
                    &thread.name,
                    thread.captured,
                    thread.collapsed()
                ))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(target_os = "linux")]
#[test]
fn thread_dump_finds_a_spinning_thread() {
    let _serial = serial();
    let stop = Arc::new(AtomicBool::new(false));
    let spinner = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("spin-marker".into())
            .spawn(move || spin_marker(&stop))
            .expect("spawn the spinning thread")
    };
    let thread = thread_with("spin_marker");
    stop.store(true, Ordering::Relaxed);
    spinner.join().expect("the spinning thread stops");
    assert!(thread.captured);
    assert_eq!(thread.name, "spin-marker");
    assert_eq!(thread.state, 'R', "a spinning thread is runnable");
}

#[cfg(target_os = "linux")]
#[test]
fn thread_dump_finds_a_worker_spinning_inside_a_task() {
    let _serial = serial();
    let runtime = multi_thread_runtime(2);
    let stop = Arc::new(AtomicBool::new(false));
    let task = {
        let stop = stop.clone();
        runtime.spawn(async move { worker_spin_marker(&stop) })
    };
    let thread = thread_with("worker_spin_marker");
    stop.store(true, Ordering::Relaxed);
    runtime.block_on(task).expect("the spinning task finishes");
    assert_eq!(thread.state, 'R');
    assert!(
        thread.name.starts_with("tokio-r"),
        "a runtime worker: {}",
        thread.name
    );
    let names: Vec<&str> = thread
        .frames
        .iter()
        .map(|frame| frame.function.as_str())
        .collect();
    assert!(
        names
            .iter()
            .any(|name| name.contains("thread_dump_finds_a_worker_spinning_inside_a_task")),
        "the async caller is on the worker's stack: {names:#?}"
    );
    assert!(
        names
            .last()
            .is_some_and(|name| name.contains("tokio::runtime")),
        "the stack stops at the runtime frame that polled the task: {names:#?}"
    );
}

async fn livelock_marker(stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        tokio::task::yield_now().await;
    }
}

/// The summary line of task `id`, e.g. `  task 7 "name": 123 polls/s, state created`.
fn summary_line(text: &str, id: u64) -> String {
    let summary = text
        .split("--- summary of")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary in the sampler output:\n{text}"));
    let prefix = format!("  task {id} \"");
    summary
        .lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("task {id} missing from the summary:\n{summary}"))
        .to_string()
}

#[test]
fn sampler_flags_a_yield_loop_but_not_parked_or_timer_tasks() {
    let _serial = serial();
    let runtime = multi_thread_runtime(2);
    let stop = Arc::new(AtomicBool::new(false));

    let livelock = tasks().register("test: livelock_marker yield loop", None);
    let livelock_id = livelock.id();
    let looping = runtime.spawn(livelock.instrument(livelock_marker(stop.clone())));

    let parked = tasks().register("test: parked on a oneshot", None);
    let parked_id = parked.id();
    let (_never_sent, never) = tokio::sync::oneshot::channel::<()>();
    let parked_task = runtime.spawn(parked.instrument(async move {
        let _ = never.await;
    }));

    let timer = tasks().register("test: timer every 4 ms", None);
    let timer_id = timer.id();
    let timer_stop = stop.clone();
    let ticking = runtime.spawn(timer.instrument(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(4));
        while !timer_stop.load(Ordering::Relaxed) {
            interval.tick().await;
        }
    }));

    let text = sample(
        None,
        Duration::from_millis(50),
        Duration::from_millis(600),
        "test",
    );
    stop.store(true, Ordering::Relaxed);
    parked_task.abort();
    runtime.block_on(async {
        looping.await.expect("the yield loop stops");
        ticking.await.expect("the timer stops");
    });

    assert!(
        text.starts_with("===== dicomwebserver stack sampler: 12 samples every 50 ms"),
        "{text}"
    );
    assert!(text.contains("--- summary of 12 samples ---"), "{text}");
    let livelock_line = summary_line(&text, livelock_id);
    assert!(
        livelock_line.ends_with("<== LIKELY LIVELOCK"),
        "{livelock_line}"
    );
    let parked_line = summary_line(&text, parked_id);
    assert!(!parked_line.contains("LIKELY LIVELOCK"), "{parked_line}");
    let timer_line = summary_line(&text, timer_id);
    assert!(!timer_line.contains("LIKELY LIVELOCK"), "{timer_line}");
    assert!(text.ends_with("===== end of stack sampler =====\n"));
}

#[cfg(target_os = "linux")]
#[test]
fn sampler_flags_a_spinning_thread_as_hot_loop_but_not_itself() {
    let _serial = serial();
    let stop = Arc::new(AtomicBool::new(false));
    let spinner = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("spin-hot".into())
            .spawn(move || spin_marker(&stop))
            .expect("spawn the spinning thread")
    };
    let text = sample(
        None,
        Duration::from_millis(50),
        Duration::from_millis(500),
        "test",
    );
    stop.store(true, Ordering::Relaxed);
    spinner.join().expect("the spinning thread stops");
    let summary = text
        .split("--- summary of")
        .nth(1)
        .expect("a summary")
        .to_string();
    let hot: Vec<&str> = summary
        .lines()
        .filter(|line| line.starts_with("HOT LOOP"))
        .collect();
    assert!(
        hot.iter()
            .any(|line| line.contains("\"spin-hot\"") && line.contains("spin_marker")),
        "the spinning thread is flagged with its loop: {summary}"
    );
    assert!(
        !hot.iter().any(|line| line.contains("taking this dump")),
        "the sampling thread itself is not flagged: {summary}"
    );
}
