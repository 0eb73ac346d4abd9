//! Stall diagnostics: the `ensure_available` watchdog, stack capture and formatting.

pub mod stacks;
pub mod uploads;
pub mod watchdog;
