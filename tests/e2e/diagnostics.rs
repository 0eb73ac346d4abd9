//! Stall diagnostics over real sockets and real processes: the `ensure_available` watchdog
//! naming a stalled reader (in `/status` and on stderr), the SIGUSR2 stack dump and sampler,
//! and the opt-in debug listener. See docs/diagnostics.md.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::dicom;
use crate::support::http::{self, Connection};
use crate::support::instances::{simple, Uids};
use crate::support::multipart::Multipart;
use crate::support::server::{BinaryServer, TestServer};

/// Bound on every wait for the server to show something: a guard against hangs, not a
/// performance assertion.
const WAIT: Duration = Duration::from_secs(20);

/// The frames that prove the warning points at the part reader waiting for bytes.
const READER_FRAMES: [&str; 2] = ["dicomwebserver::dicom::reader::read_raw", "raw_window"];

/// Fails with `what` and the last thing seen once [`WAIT`] has passed; sleeps a little
/// otherwise.
struct Deadline {
    what: &'static str,
    at: Instant,
}

impl Deadline {
    fn new(what: &'static str) -> Deadline {
        Deadline {
            what,
            at: Instant::now() + WAIT,
        }
    }

    async fn tick(&self, last_seen: &dyn std::fmt::Display) {
        assert!(
            Instant::now() < self.at,
            "{} did not happen within {WAIT:?}; last seen:\n{last_seen}",
            self.what
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A client that sent the request head and a Part 10 instance cut in the middle of an element
/// value, then stopped sending; the socket stays open while this lives.
struct StalledUpload {
    _connection: Connection,
    /// The client address `/status` shows for the upload.
    client: SocketAddr,
    /// Bytes of the instance that were sent.
    sent: usize,
}

async fn stall_upload(addr: SocketAddr) -> StalledUpload {
    let instance = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let name_at = instance
        .bytes
        .windows(8)
        .position(|window| window == b"E2E^Test")
        .expect("the instance holds the patient name");
    // Four bytes into the value of Patient's Name (0010,0010).
    let sent = name_at + 4;
    let body = Multipart::of(&[&instance.bytes]);
    let content_type = body.content_type();
    let length = body.encode().len().to_string();
    let mut connection = Connection::open(addr).await;
    let client = connection.local_addr();
    connection
        .write_head(
            "POST",
            "/dicomweb/studies",
            &[("Content-Type", &content_type), ("Content-Length", &length)],
        )
        .await;
    // One write, so the part's reader sees all of it at once and then waits exactly once.
    let mut bytes = body.part_prefix(0);
    bytes.extend_from_slice(&instance.bytes[..sent]);
    connection.write(&bytes).await;
    StalledUpload {
        _connection: connection,
        client,
        sent,
    }
}

async fn status(addr: SocketAddr, query: &str) -> Value {
    let response = http::get(addr, &format!("/dicomweb/status{query}"), &[]).await;
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

/// Polls `/status` until the upload from `client` has a part whose reader waits for bytes;
/// returns that upload.
async fn wait_for_stalled_upload(addr: SocketAddr, client: SocketAddr) -> Value {
    let deadline = Deadline::new("the stalled upload in /status with a waiting part");
    loop {
        let body = status(addr, "").await;
        let found = body["uploads"]
            .as_array()
            .expect("uploads is a list")
            .iter()
            .find(|upload| upload["client"] == client.to_string())
            .cloned();
        if let Some(upload) = found {
            let waiting = upload["partStates"][0]["waitingOn"]
                .as_str()
                .is_some_and(|text| text.starts_with("reader waits in ensureAvailable("));
            if waiting {
                return upload;
            }
        }
        deadline.tick(&body).await;
    }
}

fn assert_upload_waits(upload: &Value, sent: usize) {
    let part = &upload["partStates"][0];
    assert_eq!(upload["parts"], 1, "{upload}");
    assert_eq!(part["index"], 1, "{upload}");
    assert_eq!(part["state"], "reading", "{upload}");
    assert_eq!(part["isComplete"], false, "{upload}");
    let end_offset = part["endOffset"].as_u64().expect("endOffset");
    assert!(
        end_offset > 0 && end_offset <= sent as u64,
        "the part received some of the {sent} bytes sent: {upload}"
    );
    let waiting = part["waitingOn"].as_str().expect("waitingOn");
    assert!(waiting.ends_with("for client bytes"), "{upload}");
}

#[tokio::test]
async fn stalled_reader_is_reported_in_status_with_offsets_polls_and_reader_stack() {
    let server = TestServer::start_with(|config| config.livelock_detect_ms = Some(200)).await;
    let stalled = stall_upload(server.addr).await;

    let upload = wait_for_stalled_upload(server.addr, stalled.client).await;
    assert_upload_waits(&upload, stalled.sent);
    let request_id = upload["id"].clone();

    let deadline = Deadline::new("a livelock report for the stalled request");
    let (livelock, report) = loop {
        let body = status(server.addr, "?livelock=true&detailed").await;
        let report = body["livelock"]["reports"]
            .as_array()
            .expect("reports is a list")
            .iter()
            .find(|report| report["requestId"] == request_id)
            .cloned();
        if let Some(report) = report {
            let pending = body["pendingWaits"]
                .as_array()
                .expect("detailed adds pendingWaits")
                .iter()
                .find(|wait| wait["requestId"] == request_id)
                .cloned()
                .unwrap_or_else(|| panic!("the stalled wait is still pending: {body}"));
            assert_eq!(pending["polls"], 1, "{pending}");
            assert_eq!(pending["partIndex"], 1, "{pending}");
            break (body["livelock"].clone(), report);
        }
        deadline.tick(&body).await;
    };
    assert_eq!(livelock["enabled"], true);
    assert_eq!(livelock["livelockDetectMs"], 200);
    assert_eq!(report["partIndex"], 1, "{report}");
    assert_eq!(report["isComplete"], false, "{report}");
    assert_eq!(report["polls"], 1, "{report}");
    assert_eq!(
        report["verdict"],
        "waiting for client bytes that do not arrive (stalled client or upstream deadlock)"
    );
    let n = report["n"].as_u64().expect("n");
    let offset = report["offset"].as_u64().expect("offset");
    let end_offset = report["endOffset"].as_u64().expect("endOffset");
    assert!(
        offset <= end_offset && end_offset <= stalled.sent as u64,
        "{report}"
    );
    assert!(
        n > end_offset - offset,
        "the reader waits for more than it has: {report}"
    );
    assert!(report["pendingMs"].as_u64().expect("pendingMs") >= 200);
    let stack = report["stack"].as_str().expect("stack");
    assert!(
        READER_FRAMES.iter().any(|frame| stack.contains(frame)),
        "the stack names the stalled reader:\n{stack}"
    );

    drop(stalled);
    server.stop_and_check_tmp().await;
}

/// Stalls a client on `server` and checks the watchdog's warning on its stderr.
async fn check_binary_warns_about_a_stalled_reader(server: &BinaryServer) {
    let stalled = stall_upload(server.addr).await;
    let lines = server.stderr_until(WAIT, |line| {
        line.contains("Possible livelock: ensureAvailable(")
    });
    let first = lines.last().expect("the warning line");
    assert!(
        first.contains("still pending after 200ms. Stream: offset="),
        "{first}"
    );
    for field in ["endOffset=", "isComplete=false"] {
        assert!(first.contains(field), "{field} missing from {first}");
    }
    // The rest of the event: context and polls, the stack, then the structured fields.
    let rest = server.stderr_until(WAIT, |line| line.contains("verdict="));
    let warning = rest.join("\n");
    assert!(
        rest.first()
            .is_some_and(|line| line.contains("request=1 part=1 polls=1 ")),
        "{warning}"
    );
    assert!(
        READER_FRAMES.iter().any(|frame| warning.contains(frame)),
        "the stack names the stalled reader:\n{first}\n{warning}"
    );
    assert!(warning.contains("verdict=WaitingForClient"), "{warning}");
    let upload = wait_for_stalled_upload(server.addr, stalled.client).await;
    assert_upload_waits(&upload, stalled.sent);
}

#[tokio::test]
async fn binary_warns_about_a_stalled_reader_with_the_env_var_alone() {
    let tempdir = tempfile::tempdir().expect("temporary directory");
    let dir = tempdir.path().to_str().expect("UTF-8 temp path");
    let server = BinaryServer::spawn_observed(
        &["--port", "0", "--dir", dir],
        &[("TRACKABLE_STREAM_LIVELOCK_DETECT_MS", "200")],
    );
    check_binary_warns_about_a_stalled_reader(&server).await;
}

#[tokio::test]
async fn binary_warns_about_a_stalled_reader_with_the_flag() {
    let tempdir = tempfile::tempdir().expect("temporary directory");
    let dir = tempdir.path().to_str().expect("UTF-8 temp path");
    let server =
        BinaryServer::spawn_observed(&["--port", "0", "--dir", dir, "--livelock-detect=200"], &[]);
    check_binary_warns_about_a_stalled_reader(&server).await;
}

/// Sends SIGUSR2 and returns the dump block from stderr (header line to end line). A signal
/// that arrives while the previous dump is still finishing is ignored with a warning: then it
/// is sent again.
fn dump_on_sigusr2(server: &BinaryServer, kind: &str, end: &str) -> String {
    let header = format!("===== dicomwebserver {kind}");
    let deadline = Instant::now() + WAIT;
    let first = loop {
        server.signal("USR2");
        let lines = server.stderr_until(WAIT, |line| {
            line.starts_with(&header) || line.contains("while a stack dump is running: ignored")
        });
        let last = lines
            .last()
            .expect("stderr_until returns the line it stopped at");
        if last.starts_with(&header) {
            break last.clone();
        }
        assert!(Instant::now() < deadline, "SIGUSR2 ignored until {WAIT:?}");
        std::thread::sleep(Duration::from_millis(25));
    };
    let mut block = vec![first];
    block.extend(server.stderr_until(WAIT, |line| line == end));
    block.join("\n")
}

fn spawn_with_env(dir: &str, env: &[(&str, &str)]) -> BinaryServer {
    BinaryServer::spawn_observed(&["--port", "0", "--dir", dir], env)
}

#[tokio::test]
async fn sigusr2_writes_a_stack_dump_and_the_server_keeps_serving() {
    let tempdir = tempfile::tempdir().expect("temporary directory");
    let dir = tempdir.path().to_str().expect("UTF-8 temp path");
    let mut server = spawn_with_env(dir, &[("STACK_DUMP_ENABLED", "1")]);
    for _ in 0..2 {
        let dump = dump_on_sigusr2(&server, "stack dump", "===== end of stack dump =====");
        for section in [
            "--- threads (",
            "--- uploads in flight (0) ---",
            "--- pending ensureAvailable waits (",
            "--- tasks (",
        ] {
            assert!(dump.contains(section), "{section} missing from:\n{dump}");
        }
        assert!(server.is_running(), "the server survived SIGUSR2");
        assert_eq!(status(server.addr, "").await["status"], "ready");
    }
}

#[tokio::test]
async fn sigusr2_without_stack_dump_enabled_only_warns() {
    let tempdir = tempfile::tempdir().expect("temporary directory");
    let dir = tempdir.path().to_str().expect("UTF-8 temp path");
    let mut server = spawn_with_env(dir, &[]);
    server.signal("USR2");
    let lines = server.stderr_until(WAIT, |line| {
        line.contains("SIGUSR2 received but stack dumps are disabled")
    });
    assert!(
        !lines.iter().any(|line| line.starts_with("=====")),
        "no dump: {lines:#?}"
    );
    assert!(server.is_running(), "the server survived SIGUSR2");
    assert_eq!(status(server.addr, "").await["status"], "ready");
}

#[tokio::test]
async fn sigusr2_with_a_sample_interval_runs_the_sampler() {
    let tempdir = tempfile::tempdir().expect("temporary directory");
    let dir = tempdir.path().to_str().expect("UTF-8 temp path");
    let mut server = spawn_with_env(
        dir,
        &[
            ("STACK_DUMP_SAMPLE_MS", "100"),
            ("STACK_DUMP_SAMPLE_DURATION_MS", "500"),
        ],
    );
    let text = dump_on_sigusr2(
        &server,
        "stack sampler: 5 samples every 100 ms",
        "===== end of stack sampler =====",
    );
    for section in [
        "--- sample 1 at +",
        "--- sample 5 at +",
        "--- summary of 5 samples ---",
        "stacks (count root;...;leaf):",
        "tasks (polls per second over the sampling):",
        "--- uploads in flight (0) ---",
    ] {
        assert!(text.contains(section), "{section} missing from:\n{text}");
    }
    assert!(server.is_running(), "the server survived SIGUSR2");
}

#[tokio::test]
async fn stack_dump_during_a_stalled_upload_lists_it_and_its_part() {
    let tempdir = tempfile::tempdir().expect("temporary directory");
    let dir = tempdir.path().to_str().expect("UTF-8 temp path");
    // Detection on with a long threshold: the wait is listed, no warning fires.
    let server = spawn_with_env(
        dir,
        &[
            ("STACK_DUMP_ENABLED", "1"),
            ("TRACKABLE_STREAM_LIVELOCK_DETECT_MS", "600000"),
        ],
    );
    let stalled = stall_upload(server.addr).await;
    let upload = wait_for_stalled_upload(server.addr, stalled.client).await;
    let dump = dump_on_sigusr2(&server, "stack dump", "===== end of stack dump =====");
    assert!(dump.contains("--- uploads in flight (1) ---"), "{dump}");
    let upload_line = format!(
        "upload {} from {} POST /dicomweb/studies: ",
        upload["id"], stalled.client
    );
    assert!(
        dump.contains(&upload_line),
        "{upload_line} missing:\n{dump}"
    );
    let part_line = dump
        .lines()
        .find(|line| line.starts_with("  part 1: reading offset="))
        .unwrap_or_else(|| panic!("no line for part 1:\n{dump}"));
    assert!(
        part_line.contains("isComplete=false: reader waits in ensureAvailable("),
        "{part_line}"
    );
    assert!(
        dump.contains("--- pending ensureAvailable waits (1;"),
        "{dump}"
    );
    assert!(
        dump.lines().any(
            |line| line.starts_with("request 1 part 1: ensureAvailable(")
                && line.contains(" polls=1 ")
        ),
        "{dump}"
    );
    assert!(
        dump.contains("request 1: POST /dicomweb/studies (handler, body pump, multipart splitter)"),
        "the request's task is in the tree:\n{dump}"
    );
}

#[tokio::test]
async fn debug_listener_serves_the_dump_and_the_sampler_on_loopback() {
    let tempdir = tempfile::tempdir().expect("temporary directory");
    let dir = tempdir.path().to_str().expect("UTF-8 temp path");
    let server =
        BinaryServer::spawn_observed(&["--port", "0", "--dir", dir, "--debug-listen", "0"], &[]);
    let debug = server
        .debug_addr
        .expect("the binary printed its debug listening line");
    assert!(debug.ip().is_loopback(), "{debug}");
    assert_ne!(debug, server.addr);

    let dump = http::get(debug, "/debug/dump", &[]).await;
    assert_eq!(dump.status, 200, "{}", dump.text());
    assert_eq!(dump.media_type(), "text/plain");
    let text = dump.text();
    assert!(
        text.starts_with("===== dicomwebserver stack dump (pid "),
        "{text}"
    );
    assert!(text.contains(", HTTP /debug/dump) ====="), "{text}");
    assert!(text.contains("--- threads ("), "{text}");
    assert!(text.ends_with("===== end of stack dump =====\n"), "{text}");

    let sample = http::get(debug, "/debug/sample?interval_ms=50&duration_ms=300", &[]).await;
    assert_eq!(sample.status, 200, "{}", sample.text());
    let text = sample.text();
    assert!(
        text.starts_with("===== dicomwebserver stack sampler: 6 samples every 50 ms"),
        "{text}"
    );
    assert!(text.contains("--- summary of 6 samples ---"), "{text}");
    assert!(
        text.ends_with("===== end of stack sampler =====\n"),
        "{text}"
    );

    for query in [
        "interval_ms=abc",
        "interval_ms=0",
        "duration_ms=-5",
        "interval_ms=500&duration_ms=100",
        "duration_ms=60001",
    ] {
        let refused = http::get(debug, &format!("/debug/sample?{query}"), &[]).await;
        assert_eq!(refused.status, 400, "{query}: {}", refused.text());
    }

    // Each listener serves only its own routes.
    let on_debug = http::get(debug, "/dicomweb/status", &[]).await;
    assert_eq!(on_debug.status, 404);
    let on_main = http::get(server.addr, "/debug/dump", &[]).await;
    assert_eq!(on_main.status, 404);
}
