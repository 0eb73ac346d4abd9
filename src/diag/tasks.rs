//! Tracked tasks: the important async tasks (request handler, multipart pump, part readers,
//! writers) register here with a parent, a poll counter and a short state, so a dump can show
//! the task tree and the sampler can compute poll rates, without unstable runtime hooks.
//!
//! Cost: one allocation per tracked task, two relaxed atomics and a clock read per poll.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Process start, the zero of the poll clock.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// One tracked task.
pub struct TaskInfo {
    pub id: u64,
    pub name: String,
    pub parent: Option<u64>,
    created: Instant,
    polls: AtomicU64,
    polling: AtomicBool,
    /// Microseconds since [`epoch`] at the start of the last poll.
    last_poll_us: AtomicU64,
    state: Mutex<&'static str>,
}

impl TaskInfo {
    /// Sets the short description of what the task does or waits for.
    pub fn set_state(&self, state: &'static str) {
        *lock(&self.state) = state;
    }

    /// Counts a unit of work for tasks that are not futures (writer threads).
    pub fn tick(&self) {
        self.polls.fetch_add(1, Ordering::Relaxed);
        self.mark_poll();
    }

    fn mark_poll(&self) {
        let now_us = u64::try_from(epoch().elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last_poll_us.store(now_us.max(1), Ordering::Relaxed);
    }

    fn snapshot(&self) -> TaskSnapshot {
        let last_poll_us = self.last_poll_us.load(Ordering::Relaxed);
        TaskSnapshot {
            id: self.id,
            name: self.name.clone(),
            parent: self.parent,
            age: self.created.elapsed(),
            polls: self.polls.load(Ordering::Relaxed),
            polling: self.polling.load(Ordering::Relaxed),
            since_poll: (last_poll_us > 0).then(|| {
                epoch()
                    .elapsed()
                    .saturating_sub(Duration::from_micros(last_poll_us))
            }),
            state: *lock(&self.state),
        }
    }
}

/// A task as seen at one instant.
#[derive(Debug, Clone)]
pub struct TaskSnapshot {
    pub id: u64,
    pub name: String,
    pub parent: Option<u64>,
    pub age: Duration,
    pub polls: u64,
    /// Being polled right now (a poll that runs long shows here).
    pub polling: bool,
    pub since_poll: Option<Duration>,
    pub state: &'static str,
}

/// The registry of tracked tasks.
#[derive(Default)]
pub struct Tasks {
    map: Mutex<BTreeMap<u64, Arc<TaskInfo>>>,
    next_id: AtomicU64,
}

/// The process-wide task registry.
pub fn tasks() -> &'static Tasks {
    static TASKS: OnceLock<Tasks> = OnceLock::new();
    TASKS.get_or_init(Tasks::default)
}

/// Keeps a task registered until dropped.
pub struct TaskHandle {
    info: Arc<TaskInfo>,
}

impl TaskHandle {
    pub fn id(&self) -> u64 {
        self.info.id
    }

    pub fn info(&self) -> &Arc<TaskInfo> {
        &self.info
    }

    /// Wraps `future` so its polls are counted on this task.
    pub fn instrument<F: Future>(self, future: F) -> Tracked<F> {
        Tracked {
            handle: self,
            future: Box::pin(future),
        }
    }
}

impl Drop for TaskHandle {
    fn drop(&mut self) {
        lock(&tasks().map).remove(&self.info.id);
    }
}

impl Tasks {
    /// Registers a task named `name` under `parent`.
    pub fn register(&self, name: impl Into<String>, parent: Option<u64>) -> TaskHandle {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let info = Arc::new(TaskInfo {
            id,
            name: name.into(),
            parent,
            created: Instant::now(),
            polls: AtomicU64::new(0),
            polling: AtomicBool::new(false),
            last_poll_us: AtomicU64::new(0),
            state: Mutex::new("created"),
        });
        lock(&self.map).insert(id, info.clone());
        TaskHandle { info }
    }

    /// Every tracked task now, by id.
    pub fn snapshot(&self) -> Vec<TaskSnapshot> {
        lock(&self.map)
            .values()
            .map(|info| info.snapshot())
            .collect()
    }
}

/// A future whose polls are counted on a tracked task.
pub struct Tracked<F> {
    handle: TaskHandle,
    future: Pin<Box<F>>,
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let info = self.handle.info.clone();
        info.polls.fetch_add(1, Ordering::Relaxed);
        info.mark_poll();
        info.polling.store(true, Ordering::Relaxed);
        let result = self.future.as_mut().poll(cx);
        info.polling.store(false, Ordering::Relaxed);
        result
    }
}

/// Formats the task tree, children indented under their parent.
pub fn format_tree(snapshot: &[TaskSnapshot]) -> String {
    let mut out = String::new();
    let ids: std::collections::BTreeSet<u64> = snapshot.iter().map(|task| task.id).collect();
    for root in snapshot
        .iter()
        .filter(|task| task.parent.is_none_or(|parent| !ids.contains(&parent)))
    {
        write_task(snapshot, root, 1, &mut out);
    }
    out
}

fn write_task(snapshot: &[TaskSnapshot], task: &TaskSnapshot, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    let last_poll = task.since_poll.map_or_else(
        || "never polled".to_string(),
        |since| format!("last poll {:.3}s ago", since.as_secs_f64()),
    );
    out.push_str(&format!(
        "{indent}- {} [task {}]: {}{} (polls={}, {last_poll}, age {:.1}s)\n",
        task.name,
        task.id,
        task.state,
        if task.polling { ", POLLING NOW" } else { "" },
        task.polls,
        task.age.as_secs_f64(),
    ));
    for child in snapshot
        .iter()
        .filter(|child| child.parent == Some(task.id))
    {
        write_task(snapshot, child, depth + 1, out);
    }
}
