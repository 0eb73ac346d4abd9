//! The QIDO-RS query model (PS3.18 §8.3.4, PS3.4 C.2.2.2): matching keys with their kind of
//! matching, the level and scope, and the results, independent of the index engine.

use super::attrs::{Attr, Level};

/// How one key matches (PS3.4 C.2.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// Universal matching (`key=`): no constraint, the attribute is returned.
    Universal,
    /// Single value matching.
    Single(String),
    /// Wild card matching with `*` and `?`.
    Wildcard(String),
    /// List of UID matching.
    List(Vec<String>),
    /// Range matching; an absent bound is open.
    Range {
        from: Option<String>,
        to: Option<String>,
    },
}

/// One matching key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryKey {
    pub attr: &'static Attr,
    pub matcher: Matcher,
}

/// A QIDO-RS search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub level: Level,
    /// Study from the route (`/studies/{study}/series`).
    pub study_uid: Option<String>,
    /// Series from the route (`/studies/{s}/series/{se}/instances`).
    pub series_uid: Option<String>,
    pub keys: Vec<QueryKey>,
    /// Case- and accent-insensitive person name matching.
    pub fuzzy: bool,
    pub limit: usize,
    pub offset: usize,
}

/// One match: the indexed values of its level and the levels above, and the UIDs that locate
/// it (to fetch further attributes from its metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultRow {
    pub values: Vec<(&'static Attr, String)>,
    pub study_uid: String,
    pub series_uid: Option<String>,
    pub sop_uid: Option<String>,
}

/// The matches of one page, and whether more follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryResult {
    pub rows: Vec<ResultRow>,
    pub more: bool,
}
