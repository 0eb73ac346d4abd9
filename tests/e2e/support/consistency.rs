//! What the storage must look like after a fault (a client gone, a full disk, a crash): the
//! server idle again, the index and the files under `studies/` in one-to-one agreement, and
//! every instance QIDO-RS lists retrievable. Bounded waits only; none of these time anything.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http;
use super::multipart_read::parts;
use super::server::{files_under, open_temp_files};

/// Bound on how long a server may take to wind down requests whose clients are gone. A
/// watchdog against a hang, not a performance assertion.
const IDLE_WATCHDOG: Duration = Duration::from_secs(60);
/// Pause between two looks at `/status`.
const POLL: Duration = Duration::from_millis(20);
/// The WADO-RS Accept that asks for the stored bytes exactly.
pub const AS_STORED: &str = "multipart/related; type=\"application/dicom\"; transfer-syntax=*";

/// The UIDs of one instance a search returned.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Found {
    pub study: String,
    pub series: String,
    pub sop: String,
}

/// Waits until the server at `addr` has no upload or group commit in flight and (with `root`, for an
/// in-process server) holds no temp file open. Panics with the last `/status` otherwise.
pub async fn wait_idle(addr: SocketAddr, prefix: &str, root: Option<&Path>) -> Value {
    let deadline = Instant::now() + IDLE_WATCHDOG;
    loop {
        let status = http::get(addr, &format!("{prefix}/status"), &[])
            .await
            .json();
        let uploads = status["uploadsInFlight"].as_u64();
        // A commit can outlive its request when the client left: storage settles with it.
        let commits = status["commitsInFlight"].as_u64();
        let open = root.map(open_temp_files).unwrap_or_default();
        if uploads == Some(0) && commits == Some(0) && open.is_empty() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not become idle: open temp files {open:?}, status {status}"
        );
        tokio::time::sleep(POLL).await;
    }
}

fn first_string(result: &Value, tag: &str) -> String {
    result[tag]["Value"][0]
        .as_str()
        .unwrap_or_else(|| panic!("{tag} is not a string in {result}"))
        .to_string()
}

/// Every instance QIDO-RS `GET {prefix}/instances` returns, paging through all of them.
pub async fn qido_instances(addr: SocketAddr, prefix: &str) -> Vec<Found> {
    const PAGE: usize = 1000;
    let mut found = Vec::new();
    loop {
        let path = format!("{prefix}/instances?limit={PAGE}&offset={}", found.len());
        let response = http::get(addr, &path, &[]).await;
        if response.status == 204 {
            return found;
        }
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        let results = response.json();
        let results = results.as_array().expect("a JSON array of results");
        for result in results {
            found.push(Found {
                study: first_string(result, "0020000D"),
                series: first_string(result, "0020000E"),
                sop: first_string(result, "00080018"),
            });
        }
        if results.len() < PAGE {
            return found;
        }
    }
}

/// Whether QIDO-RS finds the instance `sop`.
pub async fn qido_finds(addr: SocketAddr, prefix: &str, sop: &str) -> bool {
    let path = format!("{prefix}/instances?SOPInstanceUID={sop}");
    let response = http::get(addr, &path, &[]).await;
    match response.status {
        204 => false,
        200 => !response.json().as_array().expect("results").is_empty(),
        status => panic!("{path}: {status} {}", response.text()),
    }
}

/// The stored bytes of an instance through WADO-RS, or `None` when it is 404.
pub async fn retrieve_stored(addr: SocketAddr, prefix: &str, found: &Found) -> Option<Vec<u8>> {
    let path = format!(
        "{prefix}/studies/{}/series/{}/instances/{}",
        found.study, found.series, found.sop
    );
    let response = http::get(addr, &path, &[("Accept", AS_STORED)]).await;
    if response.status == 404 {
        return None;
    }
    let mut found_parts = parts(&response, "application/dicom");
    assert_eq!(found_parts.len(), 1, "{path}: one part per instance");
    Some(found_parts.remove(0).body)
}

/// Paths (relative to the root) of the instances the index publishes, and how many rows of
/// unpublished batches it holds.
pub fn index_rows(root: &Path) -> (BTreeSet<String>, i64) {
    let connection = rusqlite::Connection::open_with_flags(
        root.join("index.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the index read-only");
    let mut statement = connection
        .prepare("SELECT path FROM instances")
        .expect("prepare the path query");
    let paths = statement
        .query_map([], |row| row.get::<_, String>(0))
        .expect("query the paths")
        .collect::<Result<BTreeSet<String>, _>>()
        .expect("read the paths");
    let pending = connection
        .query_row("SELECT count(*) FROM pending", [], |row| row.get(0))
        .expect("count pending rows");
    (paths, pending)
}

/// Waits until the index and the files under `studies/` agree and no batch is pending (a
/// group commit may still be linking or publishing after its request is gone), then asserts
/// it with the difference in the message.
pub async fn wait_index_settled(root: &Path) {
    let deadline = Instant::now() + IDLE_WATCHDOG;
    loop {
        let (rows, pending) = index_rows(root);
        let files = files_under(&root.join("studies")).len();
        if pending == 0 && rows.len() == files {
            break;
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    assert_index_matches_files(root);
}

/// Every published index row has its file, every file under `studies/` has its row, and no
/// batch is left pending (call when the server is idle).
pub fn assert_index_matches_files(root: &Path) {
    let (rows, pending) = index_rows(root);
    let files: BTreeSet<String> = files_under(&root.join("studies"))
        .iter()
        .map(|path| {
            path.strip_prefix(root)
                .expect("under the root")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let unindexed: Vec<&String> = files.difference(&rows).collect();
    let missing: Vec<&String> = rows.difference(&files).collect();
    assert!(
        unindexed.is_empty(),
        "files without an index row: {unindexed:?}"
    );
    assert!(missing.is_empty(), "index rows without a file: {missing:?}");
    assert_eq!(pending, 0, "index batches left pending");
}
