//! The index around the files: `dicomwebserver reindex` rebuilds it from the store alone
//! (searches answer exactly as before), the startup repair removes files of uploads that were
//! prepared but never published (and only those), and CORS lets configured browser origins
//! call the query and retrieve routes.

use std::path::Path;
use std::process::Command;

use crate::support::dicom;
use crate::support::http::{self, Connection, Response};
use crate::support::instances::{simple, Uids};
use crate::support::server::{instance_path, BinaryServer, TestServer};
use crate::support::studies::Corpus;

const PREFIX: &str = "/dicomweb";

/// The searches compared before and after a reindex.
const SNAPSHOT_QUERIES: [&str; 6] = [
    "/studies",
    "/studies?includefield=InstitutionName",
    "/series",
    "/instances",
    "/instances?NumberOfFrames=3&includefield=00080080",
    "/studies?PatientName=muller&fuzzymatching=true",
];

/// The answers to [`SNAPSHOT_QUERIES`] from the server at `addr`, with its address replaced by
/// `HOST` (Retrieve URLs name the address the request came to).
async fn snapshot(addr: std::net::SocketAddr) -> Vec<(u16, String)> {
    let mut answers = Vec::new();
    for query in SNAPSHOT_QUERIES {
        let response = http::get(addr, &format!("{PREFIX}{query}"), &[]).await;
        assert_eq!(response.status, 200, "{query}: {}", response.text());
        let text = response
            .json()
            .to_string()
            .replace(&format!("http://{addr}"), "http://HOST");
        answers.push((response.status, text));
    }
    answers
}

fn remove_index(root: &Path) {
    for name in ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm"] {
        match std::fs::remove_file(root.join(name)) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => panic!("remove {name}: {error}"),
        }
    }
}

/// Serves `root` with the real binary.
fn serve(root: &Path) -> BinaryServer {
    let dir = root.to_str().expect("a UTF-8 temporary path");
    BinaryServer::spawn(&["--port", "0", "--dir", dir])
}

async fn stop(server: BinaryServer) {
    server.signal("TERM");
    let status = server.wait().await;
    assert!(status.success(), "the server exits cleanly: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_rebuilds_an_index_that_answers_searches_identically() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    let before = snapshot(server.addr).await;
    let stopped = server.stop_and_check_tmp().await;
    remove_index(&stopped.root);

    let dir = stopped.root.to_str().expect("a UTF-8 temporary path");
    let output = Command::new(env!("CARGO_BIN_EXE_dicomwebserver"))
        .args(["reindex", "--dir", dir])
        .output()
        .expect("run dicomwebserver reindex");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "reindex failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let expected = format!("reindexed {} instances", corpus.all().len());
    assert!(stdout.contains(&expected), "{stdout}");
    assert!(stdout.contains("0 files could not be read"), "{stdout}");
    assert!(stopped.root.join("index.sqlite").is_file());

    let binary = serve(&stopped.root);
    let after = snapshot(binary.addr).await;
    for ((query, before), after) in SNAPSHOT_QUERIES.iter().zip(&before).zip(&after) {
        assert_eq!(before, after, "{query} after reindex");
    }
    // Retrieves work from the rebuilt layouts too.
    let be = &corpus.frames_be.uids;
    let route = format!(
        "{PREFIX}/studies/{}/series/{}/instances/{}",
        be.study, be.series, be.sop
    );
    let accept = "multipart/related; type=\"application/dicom\"; transfer-syntax=*";
    let response = http::get(binary.addr, &route, &[("Accept", accept)]).await;
    assert_eq!(response.status, 200);
    let bytes = &corpus.frames_be.bytes;
    assert!(
        response
            .body
            .windows(bytes.len())
            .any(|window| window == bytes),
        "the retrieved part is the stored instance"
    );
    stop(binary).await;
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .expect("under the root")
        .to_string_lossy()
        .into_owned()
}

fn pending_rows(root: &Path) -> i64 {
    let connection = rusqlite::Connection::open(root.join("index.sqlite")).expect("open the index");
    connection
        .query_row("SELECT count(*) FROM pending", [], |row| row.get(0))
        .expect("count pending rows")
}

async fn sop_search(addr: std::net::SocketAddr, sop: &str) -> Response {
    http::get(
        addr,
        &format!("{PREFIX}/instances?SOPInstanceUID={sop}"),
        &[],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_removes_files_of_interrupted_uploads_and_keeps_published_ones() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    let stopped = server.stop_and_check_tmp().await;
    let root = &stopped.root;

    // An upload interrupted after its file was linked, before its row was published.
    let orphan = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let uids = &orphan.uids;
    let orphan_path = instance_path(root, &uids.study, &uids.series, &uids.sop);
    std::fs::create_dir_all(orphan_path.parent().expect("a parent")).expect("create dirs");
    std::fs::write(&orphan_path, &orphan.bytes).expect("write the orphan");
    // A pending row left for an instance that was published: its file must stay.
    let kept = &corpus.gray.uids;
    let kept_path = instance_path(root, &kept.study, &kept.series, &kept.sop);
    {
        let connection =
            rusqlite::Connection::open(root.join("index.sqlite")).expect("open the index");
        connection
            .execute(
                "INSERT INTO pending (batch, sop_uid, path) VALUES (?1, ?2, ?3), (?4, ?5, ?6)",
                rusqlite::params![
                    9001,
                    uids.sop,
                    relative(root, &orphan_path),
                    9002,
                    kept.sop,
                    relative(root, &kept_path)
                ],
            )
            .expect("insert pending rows");
    }

    let binary = serve(root);
    assert!(
        !orphan_path.exists(),
        "the interrupted upload's file is removed"
    );
    assert!(kept_path.is_file(), "a published instance's file stays");
    assert_eq!(
        std::fs::read(&kept_path).expect("read the kept file"),
        corpus.gray.bytes
    );
    assert_eq!(pending_rows(root), 0, "every pending batch is closed");

    let response = sop_search(binary.addr, &uids.sop).await;
    assert_eq!(response.status, 204, "{}", response.text());
    let route = format!("{PREFIX}/studies?StudyInstanceUID={}", uids.study);
    assert_eq!(http::get(binary.addr, &route, &[]).await.status, 204);
    let response = sop_search(binary.addr, &kept.sop).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let route = format!(
        "{PREFIX}/studies/{}/series/{}/instances/{}/frames/1",
        kept.study, kept.series, kept.sop
    );
    assert_eq!(http::get(binary.addr, &route, &[]).await.status, 200);
    let response = http::get(binary.addr, &format!("{PREFIX}/instances"), &[]).await;
    let found = response.json();
    assert_eq!(found.as_array().map(Vec::len), Some(corpus.all().len()));
    stop(binary).await;
}

/// An OPTIONS request with `headers`.
async fn options(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut connection = Connection::open(addr).await;
    connection.write_head("OPTIONS", path, headers).await;
    connection.read_response().await
}

const VIEWER: &str = "http://viewer.example";

async fn preflight(server: &TestServer, origin: &str) -> Response {
    let headers = [
        ("Origin", origin),
        ("Access-Control-Request-Method", "GET"),
        ("Access-Control-Request-Headers", "accept"),
    ];
    options(server.addr, &server.route("/studies"), &headers).await
}

#[tokio::test]
async fn cors_answers_preflights_and_marks_responses_for_allowed_origins_only() {
    let server = TestServer::start_with(|config| {
        config.cors_allow_origins = vec![VIEWER.into()];
    })
    .await;
    let corpus = Corpus::stored(&server).await;

    let response = preflight(&server, VIEWER).await;
    assert_eq!(response.status, 204, "{}", response.text());
    assert_eq!(response.header("access-control-allow-origin"), Some(VIEWER));
    let methods = response
        .header("access-control-allow-methods")
        .unwrap_or("");
    assert!(methods.contains("GET"), "{methods}");
    let allowed_headers = response
        .header("access-control-allow-headers")
        .unwrap_or("")
        .to_ascii_lowercase();
    assert!(allowed_headers.contains("accept"), "{allowed_headers}");
    assert!(response.body.is_empty());

    let routes = [
        server.route("/studies"),
        server.route(&format!("/studies/{}/metadata", corpus.study_b())),
    ];
    for route in &routes {
        let response = http::get(server.addr, route, &[("Origin", VIEWER)]).await;
        assert_eq!(response.status, 200, "{route}");
        assert_eq!(response.header("access-control-allow-origin"), Some(VIEWER));
        let exposed = response
            .header("access-control-expose-headers")
            .unwrap_or("");
        assert!(exposed.contains("Warning"), "{exposed}");

        let response = http::get(server.addr, route, &[("Origin", "http://other.example")]).await;
        assert_eq!(response.status, 200, "{route}");
        assert_eq!(response.header("access-control-allow-origin"), None);

        // Every answer varies by Origin, so a shared cache keeps them apart.
        assert_eq!(response.header("vary"), Some("Origin"), "{route}");

        let response = http::get(server.addr, route, &[]).await;
        assert_eq!(response.header("access-control-allow-origin"), None);
        assert_eq!(response.header("vary"), Some("Origin"), "{route}");
    }
    let response = preflight(&server, "http://other.example").await;
    assert_eq!(response.header("access-control-allow-origin"), None);
    // Answered preflights are counted (and logged) like other requests.
    let metrics = http::get(server.addr, &server.route("/metrics"), &[]).await;
    assert!(
        metrics.text().contains(
            "dicomweb_http_requests_total{route=\"preflight\",method=\"OPTIONS\",status=\"204\"} 1\n"
        ),
        "{}",
        metrics.text()
    );
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn cors_star_allows_any_origin_and_no_origins_allow_none() {
    let server = TestServer::start_with(|config| {
        config.cors_allow_origins = vec!["*".into()];
    })
    .await;
    Corpus::stored(&server).await;
    for origin in [VIEWER, "http://localhost:3000"] {
        let response = preflight(&server, origin).await;
        assert_eq!(response.status, 204);
        assert_eq!(response.header("access-control-allow-origin"), Some("*"));
        let response = http::get(
            server.addr,
            &server.route("/studies"),
            &[("Origin", origin)],
        )
        .await;
        assert_eq!(response.status, 200);
        assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    }
    server.stop_and_check_tmp().await;

    let server = TestServer::start().await;
    let response = preflight(&server, VIEWER).await;
    assert_eq!(response.header("access-control-allow-origin"), None);
    let response = http::get(
        server.addr,
        &server.route("/studies"),
        &[("Origin", VIEWER)],
    )
    .await;
    assert_eq!(response.header("access-control-allow-origin"), None);
    server.stop_and_check_tmp().await;
}
