//! Native stacks of every thread of the process (Linux).
//!
//! The dumping thread sends a real-time signal to one thread at a time (`tgkill`); that
//! thread's handler records its instruction pointers with `backtrace::trace_unsynchronized`
//! into a static array, without allocating or locking, and flags completion. The dumping
//! thread waits for the flag with a timeout (a thread blocked in the kernel in D state reports
//! `captured=false`), then symbolizes afterwards, outside the handler. A worker spinning
//! without yielding is caught mid-poll, so its native stack shows the async call chain.
//!
//! Each thread also gets its name, scheduler state, CPU use since the previous dump and wchan
//! from `/proc/self/task`.

#![allow(unsafe_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

pub use super::stacks::ThreadStack;
use super::stacks::{resolve_ips, Frame};

/// Frames recorded per thread.
const MAX_FRAMES: usize = 128;
/// How long one thread gets to answer the capture signal.
const CAPTURE_TIMEOUT: Duration = Duration::from_millis(100);

/// Instruction pointers written by the handler.
static FRAMES: [AtomicUsize; MAX_FRAMES] = [const { AtomicUsize::new(0) }; MAX_FRAMES];
static FRAME_COUNT: AtomicUsize = AtomicUsize::new(0);
/// Thread id the current request is for; the handler ignores signals for anyone else.
static TARGET_TID: AtomicI32 = AtomicI32::new(0);
/// Capture generation: a handler running late (after its timeout) stops writing once the
/// requester has moved on.
static GENERATION: AtomicU64 = AtomicU64::new(0);
static DONE: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// One capture at a time, process-wide.
static CAPTURE_LOCK: Mutex<()> = Mutex::new(());
/// CPU ticks of each thread at the previous dump, for CPU % since then.
static LAST_CPU: Mutex<Option<(Instant, HashMap<i32, u64>)>> = Mutex::new(None);

fn signal_number() -> libc::c_int {
    libc::SIGRTMIN() + 4
}

extern "C" fn handler(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: gettid has no preconditions and is async-signal-safe.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
    if tid != TARGET_TID.load(Ordering::Acquire) || DONE.load(Ordering::Acquire) {
        return;
    }
    let generation = GENERATION.load(Ordering::Acquire);
    let mut count = 0usize;
    // SAFETY: trace_unsynchronized requires that no other thread unwinds concurrently through
    // the same unsynchronized path; CAPTURE_LOCK serialises requests and only the targeted
    // thread records. It neither allocates nor locks in the unwinder on glibc >= 2.35.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            if count >= MAX_FRAMES || GENERATION.load(Ordering::Acquire) != generation {
                return false;
            }
            FRAMES[count].store(frame.ip() as usize, Ordering::Relaxed);
            count += 1;
            true
        });
    }
    if GENERATION.load(Ordering::Acquire) == generation {
        FRAME_COUNT.store(count, Ordering::Release);
        DONE.store(true, Ordering::Release);
    }
}

fn install() -> bool {
    INSTALL.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid initial value; the handler only touches
        // atomics and the unwinder (see `handler`), which is async-signal-safe here.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal_number(), &action, std::ptr::null_mut()) == 0 {
                INSTALLED.store(true, Ordering::Release);
            }
        }
    });
    INSTALLED.load(Ordering::Acquire)
}

/// Captures the stack of thread `tid` through the signal handler.
fn capture(tid: i32) -> Option<Vec<usize>> {
    GENERATION.fetch_add(1, Ordering::AcqRel);
    FRAME_COUNT.store(0, Ordering::Release);
    DONE.store(false, Ordering::Release);
    TARGET_TID.store(tid, Ordering::Release);
    // SAFETY: getpid has no preconditions; tgkill only sends a signal whose handler is
    // installed (checked by the caller), to a thread of this process.
    let sent = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, signal_number()) };
    if sent != 0 {
        TARGET_TID.store(0, Ordering::Release);
        return None;
    }
    let deadline = Instant::now() + CAPTURE_TIMEOUT;
    while !DONE.load(Ordering::Acquire) {
        if Instant::now() >= deadline {
            TARGET_TID.store(0, Ordering::Release);
            GENERATION.fetch_add(1, Ordering::AcqRel);
            return None;
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    TARGET_TID.store(0, Ordering::Release);
    let count = FRAME_COUNT.load(Ordering::Acquire).min(MAX_FRAMES);
    Some(
        FRAMES[..count]
            .iter()
            .map(|ip| ip.load(Ordering::Relaxed))
            .collect(),
    )
}

pub(crate) fn current_tid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// Name, state and CPU ticks of a thread from /proc.
fn proc_info(tid: i32) -> Option<(String, char, u64, String)> {
    let base = format!("/proc/self/task/{tid}");
    let stat = std::fs::read_to_string(format!("{base}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let wchan = std::fs::read_to_string(format!("{base}/wchan")).unwrap_or_default();
    Some((name, state, utime + stime, wchan.trim().to_string()))
}

/// CPU use of a thread averaged over its life, for the first dump.
fn lifetime_cpu_percent(tid: i32, ticks: u64, ticks_per_second: f64) -> f64 {
    let start_ticks = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
        .ok()
        .and_then(|stat| {
            let close = stat.rfind(')')?;
            stat.get(close + 2..)?
                .split_whitespace()
                .nth(19)?
                .parse::<u64>()
                .ok()
        });
    let uptime = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<f64>().ok());
    match (start_ticks, uptime) {
        (Some(start), Some(uptime)) => {
            let alive = uptime - start as f64 / ticks_per_second;
            if alive > 0.0 {
                (ticks as f64 / ticks_per_second) / alive * 100.0
            } else {
                0.0
            }
        }
        _ => 0.0,
    }
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// Drops the signal return trampoline, which often has no symbol, from the top of a stack
/// captured in the handler.
fn drop_trampoline(mut frames: Vec<Frame>) -> Vec<Frame> {
    if frames
        .first()
        .is_some_and(|frame| frame.function.starts_with("0x") && frame.location.is_none())
    {
        frames.remove(0);
    }
    frames
}

/// The thread ids of this process.
fn thread_ids() -> Vec<i32> {
    let mut tids: Vec<i32> = std::fs::read_dir("/proc/self/task")
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    tids.sort_unstable();
    tids
}

/// Captures and symbolizes the stack of every thread. Blocking (tens of ms, more the first
/// time symbols load): call it from a blocking thread, never from an async task.
pub fn capture_all() -> Vec<ThreadStack> {
    let _one_at_a_time = CAPTURE_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let installed = install();
    let me = current_tid();
    let mut raw = Vec::new();
    for tid in thread_ids() {
        let ips = if tid == me {
            let mut own = Vec::new();
            backtrace::trace(|frame| {
                own.push(frame.ip() as usize);
                own.len() < MAX_FRAMES
            });
            Some(own)
        } else if installed {
            capture(tid)
        } else {
            None
        };
        raw.push((tid, ips));
    }
    let ticks_per_second = clock_ticks_per_second();
    let now = Instant::now();
    let mut last = LAST_CPU
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let previous = last.take();
    let mut cpu_now = HashMap::new();
    let stacks = raw
        .into_iter()
        .filter_map(|(tid, ips)| {
            let (name, state, ticks, wchan) = proc_info(tid)?;
            cpu_now.insert(tid, ticks);
            let cpu_percent = match &previous {
                Some((at, map)) => {
                    let elapsed = now.duration_since(*at).as_secs_f64();
                    let before = map.get(&tid).copied().unwrap_or(0);
                    if elapsed > 0.0 {
                        (ticks.saturating_sub(before) as f64 / ticks_per_second) / elapsed * 100.0
                    } else {
                        0.0
                    }
                }
                None => lifetime_cpu_percent(tid, ticks, ticks_per_second),
            };
            Some(ThreadStack {
                tid,
                name: if tid == me {
                    format!("{name} (taking this dump)")
                } else {
                    name
                },
                state,
                cpu_percent,
                wchan,
                captured: ips.is_some(),
                frames: ips
                    .map(|ips| drop_trampoline(resolve_ips(&ips)))
                    .unwrap_or_default(),
            })
        })
        .collect();
    *last = Some((now, cpu_now));
    stacks
}
