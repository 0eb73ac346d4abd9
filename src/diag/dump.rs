//! The stack dump and the sampler: what every thread, upload, pending wait and tracked task is
//! doing, as one block of text.
//!
//! Both are blocking (they signal threads and symbolize), so they run on a blocking thread,
//! never on the async runtime, and one at a time: a request while one runs is refused.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use super::tasks::{format_tree, tasks, TaskSnapshot};
use super::threads::{capture_all, current_tid, ThreadStack};
use super::uploads::Uploads;
use super::watchdog::watchdog;

/// Polls per second above which a task that polls in every sample is flagged as a likely
/// livelock (a 250 polls/s timer task is not).
const LIVELOCK_POLL_RATE: f64 = 1000.0;
/// CPU use (percent of a core) above which a thread counts as on CPU in a sample.
const HOT_CPU_PERCENT: f64 = 50.0;

static RUNNING: AtomicBool = AtomicBool::new(false);

/// Held while a dump or a sample runs.
pub struct DumpSlot(());

impl Drop for DumpSlot {
    fn drop(&mut self) {
        RUNNING.store(false, Ordering::Release);
    }
}

/// Takes the one dump slot, or `None` if a dump is running.
pub fn try_start() -> Option<DumpSlot> {
    RUNNING
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
        .then_some(DumpSlot(()))
}

fn header(kind: &str, reason: &str) -> String {
    let unix_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|since| since.as_millis())
        .unwrap_or_default();
    format!(
        "===== dicomwebserver {kind} (pid {}, unix time {unix_ms} ms, {reason}) =====\n",
        std::process::id()
    )
}

fn thread_section(threads: &[ThreadStack], out: &mut String) {
    out.push_str(&format!("--- threads ({}) ---\n", threads.len()));
    for thread in threads {
        out.push_str(&format!(
            "thread {} \"{}\" state={} cpu={:.1}% wchan={}{}\n",
            thread.tid,
            thread.name,
            thread.state,
            thread.cpu_percent,
            if thread.wchan.is_empty() {
                "-"
            } else {
                &thread.wchan
            },
            if thread.captured {
                ""
            } else {
                " captured=false"
            }
        ));
        for (i, frame) in thread.frames.iter().enumerate() {
            out.push_str(&format!("   {i:>2}: {frame}\n"));
        }
    }
}

fn uploads_section(uploads: Option<&Uploads>, out: &mut String) {
    let list = uploads.map(Uploads::list).unwrap_or_default();
    out.push_str(&format!("--- uploads in flight ({}) ---\n", list.len()));
    for upload in list {
        out.push_str(&upload.describe());
    }
}

fn waits_section(out: &mut String) {
    let pending = watchdog().pending();
    out.push_str(&format!(
        "--- pending ensureAvailable waits ({}; registered only with livelock detection on) ---\n",
        pending.len()
    ));
    for wait in pending {
        out.push_str(&format!(
            "request {} part {}: ensureAvailable({}) pending {:.3}s polls={} offset={} endOffset={} isComplete={}\n",
            wait.context.request_id.map_or_else(|| "-".into(), |id| id.to_string()),
            wait.context.part_index.map_or_else(|| "-".into(), |index| index.to_string()),
            wait.n,
            wait.age.as_secs_f64(),
            wait.polls,
            wait.stream.offset,
            wait.stream.end_offset,
            wait.stream.is_complete
        ));
    }
}

fn tasks_section(snapshot: &[TaskSnapshot], out: &mut String) {
    out.push_str(&format!("--- tasks ({}) ---\n", snapshot.len()));
    out.push_str(&format_tree(snapshot));
}

/// One full dump. Blocking.
pub fn dump(uploads: Option<&Uploads>, reason: &str) -> String {
    let threads = capture_all();
    let mut out = header("stack dump", reason);
    thread_section(&threads, &mut out);
    uploads_section(uploads, &mut out);
    waits_section(&mut out);
    tasks_section(&tasks().snapshot(), &mut out);
    out.push_str("===== end of stack dump =====\n");
    out
}

/// One sample of the sampler.
struct Sample {
    at: Instant,
    threads: Vec<ThreadStack>,
    tasks: Vec<TaskSnapshot>,
}

/// Dumps every `interval` for `duration`, then summarises the repeating paths. Blocking.
pub fn sample(
    uploads: Option<&Uploads>,
    interval: Duration,
    duration: Duration,
    reason: &str,
) -> String {
    let interval = interval.max(Duration::from_millis(10));
    let count = (duration.as_millis() / interval.as_millis()).clamp(2, 1000) as usize;
    let mut out = header(
        &format!(
            "stack sampler: {count} samples every {} ms",
            interval.as_millis()
        ),
        reason,
    );
    // The first capture primes CPU accounting and symbol loading; it is not a sample. The
    // schedule starts after it: loading symbols can take longer than the whole sampling, and
    // samples due during it would all be taken at once.
    let _ = capture_all();
    let started = Instant::now();
    let mut samples = Vec::with_capacity(count);
    for index in 0..count {
        let deadline = started + interval * (index as u32 + 1);
        if let Some(wait) = deadline.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        // Poll counts are read first, with the time they are read at: the thread capture
        // after them takes a few ms.
        let task_snapshot = tasks().snapshot();
        let at = Instant::now();
        let sample = Sample {
            at,
            threads: capture_all(),
            tasks: task_snapshot,
        };
        out.push_str(&format!(
            "--- sample {} at +{} ms ---\n",
            index + 1,
            started.elapsed().as_millis()
        ));
        for thread in &sample.threads {
            out.push_str(&format!(
                "thread {} \"{}\" {} cpu={:.0}%: {}\n",
                thread.tid,
                thread.name,
                thread.state,
                thread.cpu_percent,
                leaf_path(thread)
            ));
        }
        for task in &sample.tasks {
            out.push_str(&format!(
                "task {} \"{}\" polls={} {}\n",
                task.id, task.name, task.polls, task.state
            ));
        }
        samples.push(sample);
    }
    out.push_str(&summary(&samples));
    uploads_section(uploads, &mut out);
    waits_section(&mut out);
    out.push_str("===== end of stack sampler =====\n");
    out
}

/// The innermost few frames of a thread, leaf first.
fn leaf_path(thread: &ThreadStack) -> String {
    let names: Vec<&str> = thread
        .frames
        .iter()
        .take(4)
        .map(|frame| frame.function.as_str())
        .collect();
    if names.is_empty() {
        "-".to_string()
    } else {
        names.join(" <- ")
    }
}

/// The function names every stack of `seen` shares, from the root (outermost frame) inward.
fn shared_root_path<'a>(seen: &[&'a ThreadStack]) -> Vec<&'a str> {
    let Some((first, rest)) = seen.split_first() else {
        return Vec::new();
    };
    let mut shared: Vec<&str> = first
        .frames
        .iter()
        .rev()
        .map(|frame| frame.function.as_str())
        .collect();
    for thread in rest {
        let common = shared
            .iter()
            .zip(thread.frames.iter().rev())
            .take_while(|(name, frame)| **name == frame.function)
            .count();
        shared.truncate(common);
    }
    shared
}

fn summary(samples: &[Sample]) -> String {
    let mut out = format!("--- summary of {} samples ---\n", samples.len());
    // Identical thread stacks, counted across samples.
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for sample in samples {
        for thread in &sample.threads {
            *counts.entry(thread.collapsed()).or_default() += 1;
        }
    }
    let mut ranked: Vec<(&String, &usize)> = counts.iter().collect();
    ranked.sort_by_key(|(_, count)| std::cmp::Reverse(**count));
    out.push_str("stacks (count root;...;leaf):\n");
    for (stack, count) in ranked.iter().take(20) {
        out.push_str(&format!("  {count:>4} {stack}\n"));
    }
    // Threads on CPU with the same stack in every sample.
    let mut by_thread: HashMap<i32, Vec<&ThreadStack>> = HashMap::new();
    for sample in samples {
        for thread in &sample.threads {
            by_thread.entry(thread.tid).or_default().push(thread);
        }
    }
    let mut flagged = 0usize;
    // The thread taking the samples is on CPU in every one of them, always in the capture.
    let me = current_tid();
    for (tid, seen) in &by_thread {
        if *tid == me {
            continue;
        }
        let every = seen.len() == samples.len();
        let hot = seen
            .iter()
            .all(|t| t.state == 'R' || t.cpu_percent >= HOT_CPU_PERCENT);
        // A loop's leaf frame differs from sample to sample (the loop body calls helpers);
        // what repeats is the path from the thread's root down to the loop. Trimmed stacks
        // end at the runtime's or the thread's entry frame, so a shared path of two frames or
        // more means the same code below that entry in every sample.
        let shared = shared_root_path(seen);
        if every && hot && shared.len() >= 2 {
            flagged += 1;
            let innermost: Vec<&str> = shared.iter().rev().take(4).copied().collect();
            out.push_str(&format!(
                "HOT LOOP: thread {tid} \"{}\" is on CPU in every sample, always inside: {}\n",
                seen[0].name,
                innermost.join(" <- ")
            ));
        }
    }
    // Tasks polled fast in every interval.
    // Poll counts are compared between the first and the last sample.
    let seconds = match (samples.first(), samples.last()) {
        (Some(first), Some(last)) => last.at.duration_since(first.at).as_secs_f64(),
        _ => 0.0,
    }
    .max(0.001);
    let mut by_task: BTreeMap<u64, Vec<&TaskSnapshot>> = BTreeMap::new();
    for sample in samples {
        for task in &sample.tasks {
            by_task.entry(task.id).or_default().push(task);
        }
    }
    out.push_str("tasks (polls per second over the sampling):\n");
    for seen in by_task.values() {
        let (Some(first), Some(last)) = (seen.first(), seen.last()) else {
            continue;
        };
        let rate = last.polls.saturating_sub(first.polls) as f64 / seconds;
        let every_interval =
            seen.len() == samples.len() && seen.windows(2).all(|w| w[1].polls > w[0].polls);
        let same_state = seen.windows(2).all(|w| w[0].state == w[1].state);
        let livelock = every_interval && same_state && rate > LIVELOCK_POLL_RATE;
        out.push_str(&format!(
            "  task {} \"{}\": {:.0} polls/s, state {}{}\n",
            last.id,
            last.name,
            rate,
            last.state,
            if livelock {
                "  <== LIKELY LIVELOCK"
            } else {
                ""
            }
        ));
        if livelock {
            flagged += 1;
        }
    }
    if flagged == 0 {
        out.push_str("nothing flagged: no hot loop and no task polled without rest\n");
    }
    out
}

/// Writes `text` to stderr as one block (a single locked write), and emits it as one
/// tracing event under the target `dicomwebserver::diag::dump`.
pub fn emit(text: &str) {
    let stderr = std::io::stderr();
    let mut locked = stderr.lock();
    let _ = locked.write_all(text.as_bytes());
    let _ = locked.flush();
    drop(locked);
    tracing::info!(target: "dicomwebserver::diag::dump", dump = %text, "stack dump");
}
