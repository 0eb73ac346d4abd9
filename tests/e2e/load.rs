//! Load: 64 uploads at once mixing small and large (8-15 MiB) instances generated on the fly,
//! with searches and retrieves running during the ingest; 16 uploads of one SOP Instance UID
//! with different bytes at once; and the binary's peak memory under the 64 uploads.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::support::consistency::{
    assert_index_matches_files, qido_instances, retrieve_stored, wait_idle,
};
use crate::support::generated::{send_chunked, Generated};
use crate::support::http::{Connection, Response};
use crate::support::instances::Uids;
use crate::support::response::{StoreResult, DUPLICATE_INSTANCE};
use crate::support::server::{BinaryServer, TestServer};

const UPLOADS: usize = 64;
/// Every this many uploads, one is a single large instance; the others carry small ones.
const LARGE_EVERY: usize = 8;
const MIB: u64 = 1024 * 1024;
/// Peak resident memory allowed to the server during [`UPLOADS`] concurrent uploads.
const MEMORY_BUDGET: u64 = 128 * MIB;

/// The instances of each upload: a large one (8 MiB plus a MiB per large upload before it),
/// or three small ones (2-8 KiB) in one series.
fn workload() -> Vec<Vec<Generated>> {
    (0..UPLOADS)
        .map(|upload| {
            let seed = upload as u64;
            if upload % LARGE_EVERY == 0 {
                let size = 8 * MIB + (upload / LARGE_EVERY) as u64 * MIB;
                vec![Generated::new(&Uids::fresh(), size, seed)]
            } else {
                let first = Uids::fresh();
                (0..3)
                    .map(|n| {
                        Generated::new(&first.sibling(), 2048 * (1 + (upload as u64 + n) % 4), seed)
                    })
                    .collect()
            }
        })
        .collect()
}

/// Sends every upload of `workload` at once to `addr`, each on its own connection with its
/// own chunk sizes; returns the responses in upload order.
async fn upload_all(addr: SocketAddr, path: &str, workload: &[Vec<Generated>]) -> Vec<Response> {
    let mut tasks = Vec::new();
    for (upload, instances) in workload.iter().enumerate() {
        let instances = instances.clone();
        let path = path.to_string();
        let sizes = [[65_536, 4093, 1], [16_384, 100_000, 7]][upload % 2];
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::open(addr).await;
            let refs: Vec<&Generated> = instances.iter().collect();
            send_chunked(&mut connection, &path, &refs, &sizes).await;
            connection.read_response().await
        }));
    }
    let mut responses = Vec::new();
    for task in tasks {
        responses.push(task.await.expect("upload task did not panic"));
    }
    responses
}

/// Every response is 200 with each of its upload's instances referenced.
fn expect_all_acknowledged(responses: &[Response], workload: &[Vec<Generated>]) {
    for (response, instances) in responses.iter().zip(workload) {
        let result = StoreResult::parse(response);
        assert_eq!(result.status, 200, "{}", result.json);
        let stored: BTreeSet<String> = result.stored().into_iter().map(|s| s.sop).collect();
        for instance in instances {
            assert!(stored.contains(&instance.uids.sop), "{}", result.json);
        }
    }
}

/// Searches and retrieves until `done`, then once more: every instance a search returns must
/// be retrievable with exactly the bytes sent. Returns how many instances it checked and how
/// many searches ran.
async fn verify_visible_instances(
    addr: SocketAddr,
    prefix: String,
    expected: Arc<BTreeMap<String, Generated>>,
    done: Arc<AtomicBool>,
) -> (usize, usize) {
    let mut checked = BTreeSet::new();
    let mut searches = 0;
    loop {
        let last = done.load(Ordering::Acquire);
        searches += 1;
        for found in qido_instances(addr, &prefix).await {
            if checked.contains(&found.sop) {
                continue;
            }
            let instance = expected
                .get(&found.sop)
                .unwrap_or_else(|| panic!("QIDO-RS returned an unknown instance {found:?}"));
            let bytes = retrieve_stored(addr, &prefix, &found)
                .await
                .unwrap_or_else(|| panic!("QIDO-RS returned {found:?}, WADO-RS has it not"));
            assert!(
                instance.matches(&bytes),
                "{} is visible but not the bytes sent ({} bytes retrieved)",
                found.sop,
                bytes.len()
            );
            checked.insert(found.sop);
        }
        if last {
            return (checked.len(), searches);
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_uploads_are_stored_intact_while_searches_see_only_complete_ones() {
    let server = TestServer::start().await;
    let workload = workload();
    let expected: BTreeMap<String, Generated> = workload
        .iter()
        .flatten()
        .map(|instance| (instance.uids.sop.clone(), instance.clone()))
        .collect();
    let expected = Arc::new(expected);
    let done = Arc::new(AtomicBool::new(false));
    let verifier = tokio::spawn(verify_visible_instances(
        server.addr,
        server.prefix.clone(),
        expected.clone(),
        done.clone(),
    ));
    let responses = upload_all(server.addr, &server.route("/studies"), &workload).await;
    done.store(true, Ordering::Release);
    expect_all_acknowledged(&responses, &workload);
    let (checked, searches) = verifier.await.expect("the verifier did not panic");
    assert_eq!(
        checked,
        expected.len(),
        "every instance was searched and retrieved"
    );
    eprintln!("{searches} searches during and after the ingest");
    for instance in expected.values() {
        let uids = &instance.uids;
        let path = server.instance_path(&uids.study, &uids.series, &uids.sop);
        assert!(instance.matches_file(&path), "{path:?} differs");
    }
    assert_index_matches_files(&server.root);
    server.stop_and_check_tmp().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_uploads_of_one_sop_instance_store_exactly_one_version() {
    let server = TestServer::start().await;
    let uids = Uids::fresh();
    // Fifteen different versions (different lengths and bytes), and a copy of the first.
    let mut versions: Vec<Generated> = (0..15)
        .map(|n| Generated::new(&uids, 256 * 1024 + n * 4096, n))
        .collect();
    versions.push(versions[0].clone());
    let mut tasks = Vec::new();
    for (n, version) in versions.iter().enumerate() {
        let version = version.clone();
        let (addr, path) = (server.addr, server.route("/studies"));
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::open(addr).await;
            send_chunked(&mut connection, &path, &[&version], &[8192 + n * 512]).await;
            connection.read_response().await
        }));
    }
    let mut winners = Vec::new();
    for (n, task) in tasks.into_iter().enumerate() {
        let response = task.await.expect("upload task did not panic");
        let result = StoreResult::parse(&response);
        match result.status {
            200 => {
                assert_eq!(result.stored().len(), 1, "{}", result.json);
                winners.push(n);
            }
            409 => result.expect_failed(&uids.sop, DUPLICATE_INSTANCE),
            status => panic!("version {n}: status {status}: {}", result.json),
        }
    }
    assert!(!winners.is_empty(), "no version was stored");
    let winner = &versions[winners[0]];
    for n in &winners {
        assert!(
            versions[*n].matches(&winner.to_bytes()),
            "versions {winners:?} with different bytes all succeeded"
        );
    }
    // Only the copy of version 0 may succeed beside version 0.
    assert!(winners.len() == 1 || winners == [0, 15], "{winners:?}");
    let path = server.instance_path(&uids.study, &uids.series, &uids.sop);
    assert!(
        winner.matches_file(&path),
        "the stored file is not the winner's bytes"
    );
    let found = qido_instances(server.addr, &server.prefix).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let retrieved = retrieve_stored(server.addr, &server.prefix, &found[0])
        .await
        .expect("the stored version is retrievable");
    assert!(winner.matches(&retrieved));
    assert_index_matches_files(&server.root);
    server.stop_and_check_tmp().await;
}

/// `VmHWM` (peak resident set) of process `pid`, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .expect("a VmHWM line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|value| value.parse().ok())
        .expect("VmHWM in kB");
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_binary_stays_under_128_mib_during_sixty_four_concurrent_uploads() {
    let tempdir = tempfile::tempdir().expect("create a temporary directory");
    let dir = tempdir.path().to_str().expect("a UTF-8 temporary path");
    let binary = BinaryServer::spawn(&["--port", "0", "--dir", dir]);
    let workload = workload();
    let responses = upload_all(binary.addr, "/dicomweb/studies", &workload).await;
    expect_all_acknowledged(&responses, &workload);
    wait_idle(binary.addr, "/dicomweb", None).await;
    let peak = peak_rss(binary.pid());
    eprintln!(
        "server peak RSS during {UPLOADS} concurrent uploads: {:.1} MiB",
        peak as f64 / MIB as f64
    );
    assert!(
        peak < MEMORY_BUDGET,
        "peak RSS {peak} bytes is over the {MEMORY_BUDGET} byte budget"
    );
    binary.signal("TERM");
    let status = binary.wait().await;
    assert!(status.success(), "{status}");
}
