//! The QIDO-RS query parser over arbitrary query strings and levels, and the index query
//! each accepted search becomes.
//!
//! Input: `[selector][query string]`. The selector picks the level (modulo 3) and whether the
//! route gives a study (bit 2) and a series (bit 3). The query string is decoded as the route
//! decodes it (`application/x-www-form-urlencoded` into pairs); bytes that do not decode are
//! split on `&` and `=` instead, so any text reaches the parser. Checked: `parse` never
//! panics, an accepted search keeps `limit` within `MAX_LIMIT`, and running it against an
//! (empty) SQLite index never panics.
#![no_main]

use std::sync::OnceLock;

use dicomwebserver::index::attrs::Level;
use dicomwebserver::index::sqlite::SqliteIndex;
use dicomwebserver::index::Index;
use dicomwebserver::qido::params::{parse, MAX_LIMIT};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, query)) = data.split_first() else {
        return;
    };
    let level = match selector % 3 {
        0 => Level::Study,
        1 => Level::Series,
        _ => Level::Instance,
    };
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(query).unwrap_or_else(|_| split_pairs(query));
    let Ok(mut search) = parse(level, &pairs) else {
        return;
    };
    assert!(
        search.query.limit <= MAX_LIMIT,
        "limit {}",
        search.query.limit
    );
    if selector & 0b100 != 0 {
        search.query.study_uid = Some("1.2.826.0.1.3680043.10.1234.77.0.1".into());
    }
    if selector & 0b1000 != 0 {
        search.query.series_uid = Some("1.2.826.0.1.3680043.10.1234.77.0.2".into());
    }
    // Errors are answers (a 500 with a reason); only a panic is a finding.
    let _ = index().query(&search.query);
});

/// Pairs from bytes that are not valid form encoding: split as-is, invalid UTF-8 replaced.
fn split_pairs(query: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(query)
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (name.to_string(), value.to_string())
        })
        .collect()
}

/// An empty index in a temporary directory, shared by every run of the process.
fn index() -> &'static SqliteIndex {
    static INDEX: OnceLock<(tempfile::TempDir, SqliteIndex)> = OnceLock::new();
    let (_, index) = INDEX.get_or_init(|| {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let index = SqliteIndex::open(dir.path()).expect("open an index");
        (dir, index)
    });
    index
}
