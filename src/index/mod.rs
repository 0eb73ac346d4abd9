//! The index: what QIDO-RS searches and WADO-RS looks up, behind the [`Index`] trait so that
//! another engine (PostgreSQL) can replace the embedded [`sqlite::SqliteIndex`] without
//! touching its callers.
//!
//! Visibility is a two-step commit, so a crash never leaves a visible file without its row or
//! the reverse: [`Index::prepare`] records the instances a request is about to link, the files
//! are linked and synced, then [`Index::publish`] makes their rows visible in one transaction.
//! At startup [`Index::abandon`] removes the files of batches that were prepared but never
//! published (they were never acknowledged).

pub mod attrs;
pub mod layout;
pub mod normalize;
pub mod query;
pub mod record;
pub mod sqlite;

pub use attrs::{Attr, Level};
pub use query::{Matcher, Query, QueryKey, QueryResult, ResultRow};
pub use record::InstanceRecord;

use std::path::Path;

/// Why an index operation failed.
#[derive(Debug)]
pub struct IndexError(pub String);

impl std::fmt::Display for IndexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "index: {}", self.0)
    }
}

impl std::error::Error for IndexError {}

/// A stored instance as WADO-RS needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInstance {
    pub study_uid: String,
    pub series_uid: String,
    pub sop_uid: String,
    pub sop_class_uid: String,
    pub transfer_syntax: String,
    /// Path relative to the storage root.
    pub path: String,
    pub size: u64,
}

/// One instance's stored DICOM JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataRow {
    pub series_uid: String,
    pub sop_uid: String,
    pub json: String,
}

/// Which instances a WADO-RS request addresses.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub study: &'a str,
    pub series: Option<&'a str>,
    pub instance: Option<&'a str>,
}

/// The index of stored instances. Every method blocks: call from a blocking thread.
pub trait Index: Send + Sync {
    /// Notes that `records` are about to become visible (batch `batch`), before their files
    /// are linked.
    fn prepare(&self, batch: u64, records: &[InstanceRecord]) -> Result<(), IndexError>;

    /// Makes `records` visible (their files are linked and durable) and closes `batch`.
    fn publish(&self, batch: u64, records: &[InstanceRecord]) -> Result<(), IndexError>;

    /// Closes batch `batch` (or, with `None`, every batch left open by a crash) without
    /// publishing it: removes its files that have no visible row. Returns how many files
    /// were removed.
    fn abandon(&self, batch: Option<u64>, root: &Path) -> Result<usize, IndexError>;

    /// QIDO-RS search.
    fn query(&self, query: &Query) -> Result<QueryResult, IndexError>;

    /// Instances in `scope`, ordered by series and instance number.
    fn instances(&self, scope: Scope<'_>) -> Result<Vec<StoredInstance>, IndexError>;

    /// DICOM JSON of each instance in `scope` (with bulk data markers), same order.
    fn metadata(&self, scope: Scope<'_>) -> Result<Vec<MetadataRow>, IndexError>;

    /// DICOM JSON of one instance in `scope` (the first by instance number), for attributes
    /// a search returns that the index does not hold.
    fn sample_metadata(&self, scope: Scope<'_>) -> Result<Option<String>, IndexError>;

    /// Where the frames and bulk values of one instance sit in its file (JSON).
    fn layout(&self, study: &str, series: &str, sop: &str) -> Result<Option<String>, IndexError>;

    /// Number of visible instances.
    fn count(&self) -> Result<u64, IndexError>;
}
