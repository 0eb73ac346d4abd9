//! Stall diagnostics: where every thread, upload and task is, on demand (SIGUSR2 or the debug
//! listener), as a sampler, and the `ensure_available` watchdog. See docs/diagnostics.md.

pub mod dump;
pub mod http;
pub mod signal;
pub mod stacks;
pub mod tasks;
#[cfg(target_os = "linux")]
pub mod threads;
#[cfg(not(target_os = "linux"))]
#[path = "threads_portable.rs"]
pub mod threads;
pub mod uploads;
pub mod watchdog;

#[cfg(test)]
mod diag_tests;
