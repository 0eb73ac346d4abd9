//! Stall diagnostics: the `ensure_available` watchdog, stack capture and formatting.

pub mod stacks;
pub mod watchdog;
