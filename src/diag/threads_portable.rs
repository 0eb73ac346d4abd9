//! Thread stacks where the per-thread signal capture is not available (not Linux): only the
//! thread taking the dump is shown; uploads, waits and tasks are still complete.

use super::stacks::resolve_ips;
pub use super::stacks::ThreadStack;

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
