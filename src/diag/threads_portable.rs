//! Thread stacks where the per-thread signal capture is not available (not Linux): only the
//! thread taking the dump is shown; uploads, waits and tasks are still complete.

use super::stacks::{resolve_ips, Frame};

/// One thread as the dump shows it.
#[derive(Debug, Clone)]
pub struct ThreadStack {
    pub tid: i32,
    pub name: String,
    pub state: char,
    pub cpu_percent: f64,
    pub wchan: String,
    pub captured: bool,
    pub frames: Vec<Frame>,
}

impl ThreadStack {
    /// `root;...;leaf` of the function names, for counting identical stacks.
    pub fn collapsed(&self) -> String {
        let names: Vec<&str> = self
            .frames
            .iter()
            .rev()
            .map(|frame| frame.function.as_str())
            .collect();
        names.join(";")
    }
}

/// The id [`capture_all`] gives the calling thread, the only one it shows.
pub(crate) fn current_tid() -> i32 {
    0
}

/// The stack of the calling thread only.
pub fn capture_all() -> Vec<ThreadStack> {
    let mut ips = Vec::new();
    backtrace::trace(|frame| {
        ips.push(frame.ip() as usize);
        ips.len() < 128
    });
    vec![ThreadStack {
        tid: 0,
        name: "this thread (other threads need Linux)".into(),
        state: 'R',
        cpu_percent: 0.0,
        wchan: String::new(),
        captured: true,
        frames: resolve_ips(&ips),
    }]
}
