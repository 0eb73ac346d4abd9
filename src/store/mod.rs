//! Where instances live. [`fs::FsStore`] is the embedded default: files under a root
//! directory, written to `tmp/` first and made visible atomically.

pub mod fs;

pub use fs::{open_stored, sync_dirs, CommitOutcome, FsStore, InstanceKey, TempInstance};
