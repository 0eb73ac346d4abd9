//! The `dicomwebserver stow` uploader, as a user runs it: the real binary walking a folder tree
//! and uploading to the real server over loopback. Checks the bytes stored, the summary table,
//! the progress output, the exit code, retries and credentials.

use std::path::Path;
use std::process::Command;

use crate::support::dicom;
use crate::support::generated::Generated;
use crate::support::instances::{simple, Instance, Uids};
use crate::support::server::{assert_stored_bytes, BinaryServer, TestServer};

/// What a run of the uploader printed and returned.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `dicomwebserver stow ARGS` on a blocking thread, so an in-process server keeps
/// serving on the test's runtime.
async fn stow_cli(args: &[&str]) -> Run {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let output = Command::new(env!("CARGO_BIN_EXE_dicomwebserver"))
            .arg("stow")
            .args(&args)
            .env_remove("DICOMWEB_STOW_URL")
            .env_remove("DICOMWEB_STOW_TOKEN_FILE")
            .env_remove("DICOMWEB_STOW_BASIC_AUTH_FILE")
            .output()
            .expect("run the uploader");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .expect("the uploader thread")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create folders");
    }
    std::fs::write(path, bytes).expect("write a file");
}

/// The summary row `name` as (instances, bytes text).
fn row(run: &Run, name: &str) -> (usize, String) {
    let line = run
        .stdout
        .lines()
        .find(|line| line.starts_with(name) && line[name.len()..].starts_with("  "))
        .unwrap_or_else(|| panic!("no {name:?} row\n{run}"));
    let mut fields = line[name.len()..].split_whitespace();
    let count = fields
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"));
    (count, fields.collect::<Vec<_>>().join(" "))
}

/// A new folder holding one instance as `one.dcm`: the folder (kept alive by the `TempDir`),
/// the instance, and the folder's path as an argument.
fn one_instance_folder() -> (tempfile::TempDir, Instance, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let instance = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    write(dir.path(), "one.dcm", &instance.bytes);
    let folder = dir.path().to_string_lossy().into_owned();
    (dir, instance, folder)
}

fn assert_stored(server: &TestServer, instance: &Instance, expected: &[u8]) {
    let uids = &instance.uids;
    assert_stored_bytes(
        &server.instance_path(&uids.study, &uids.series, &uids.sop),
        expected,
    );
}

#[tokio::test]
async fn uploads_a_folder_tree_recognising_dicom_by_content() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Uids::fresh();
    let instances: Vec<Instance> = (0..5)
        .map(|i| {
            let uids = if i < 3 {
                first.sibling()
            } else {
                Uids::fresh()
            };
            simple(dicom::EXPLICIT_LE, &uids)
        })
        .collect();
    // Names say nothing: extensions vary or are missing, folders nest.
    write(dir.path(), "a/IM0001", &instances[0].bytes);
    write(dir.path(), "a/b/c/slice.dcm", &instances[1].bytes);
    write(dir.path(), "a/b/2.DCM", &instances[2].bytes);
    write(dir.path(), "z.dat", &instances[3].bytes);
    // A data set as dicomweb-client writes it: the meta group, no preamble.
    write(dir.path(), "bare", &instances[4].bytes[128..]);
    write(dir.path(), "notes.txt", b"scanned on the second floor\n");
    write(dir.path(), "a/empty.dcm", &[0u8; 1000]);

    let url = format!("http://{}/dicomweb", server.addr);
    let folder = dir.path().to_string_lossy().into_owned();
    let run = stow_cli(&[
        "--url",
        &url,
        "--batch",
        "2",
        "--parallel",
        "2",
        "--progress",
        "plain",
        &folder,
    ])
    .await;
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(row(&run, "stored").0, 5, "{run}");
    assert_eq!(row(&run, "duplicate").0, 0, "{run}");
    assert_eq!(row(&run, "failed").0, 0, "{run}");
    assert_eq!(row(&run, "not DICOM").0, 2, "{run}");
    assert!(
        run.stdout.contains("notes.txt") && run.stdout.contains("empty.dcm"),
        "{run}"
    );
    assert!(run.stderr.contains("uploading 5 DICOM files ("), "{run}");
    // The plain progress line: files, bytes, rate and time left.
    let progress = run
        .stderr
        .lines()
        .rev()
        .find(|line| line.starts_with("progress: "))
        .unwrap_or_else(|| panic!("no progress line\n{run}"));
    assert!(
        progress.starts_with("progress: 5/5 files, ") && progress.contains("/s, ETA 0:00"),
        "{progress}"
    );
    for instance in &instances[..4] {
        assert_stored(&server, instance, &instance.bytes);
    }
    assert_stored(&server, &instances[4], &instances[4].bytes[128..]);

    // Five files in batches of two: three requests.
    let metrics = crate::support::http::get(server.addr, "/dicomweb/metrics", &[]).await;
    let requests = metrics
        .text()
        .lines()
        .find(|line| {
            line.starts_with(
                "dicomweb_http_requests_total{route=\"/dicomweb/studies\",method=\"POST\",status=\"200\"}",
            )
        })
        .map(|line| line.rsplit(' ').next().unwrap_or_default().to_string());
    assert_eq!(requests.as_deref(), Some("3"), "{}", metrics.text());
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn reports_conflicts_repeats_and_failures_and_exits_non_zero() {
    let server = TestServer::start().await;
    let url = format!("http://{}/dicomweb", server.addr);
    let earlier = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "first/earlier.dcm", &earlier.bytes);
    let first = dir.path().join("first").to_string_lossy().into_owned();
    let run = stow_cli(&["--url", &url, &first]).await;
    assert_eq!(run.code, Some(0), "{run}");

    // The same SOP Instance UID with other pixel values: the server keeps what it has.
    let mut changed = earlier.bytes.clone();
    let last = changed.len() - 1;
    changed[last] ^= 0xFF;
    let good = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let truncated = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let second = dir.path().join("second");
    write(&second, "changed.dcm", &changed);
    write(&second, "good.dcm", &good.bytes);
    write(&second, "good-copy.dcm", &good.bytes);
    write(
        &second,
        "truncated.dcm",
        &truncated.bytes[..truncated.bytes.len() - 6],
    );
    let folder = second.to_string_lossy().into_owned();
    let run = stow_cli(&["--url", &url, "--progress", "none", &folder]).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(row(&run, "stored").0, 1, "{run}");
    assert_eq!(row(&run, "duplicate").0, 2, "{run}");
    assert_eq!(row(&run, "failed").0, 1, "{run}");
    let failed = format!(
        "{} (SOP Instance UID {}): 0xC000 cannot understand",
        second.join("truncated.dcm").display(),
        truncated.uids.sop
    );
    assert!(run.stdout.contains(&failed), "{run}");
    let conflict = format!(
        "{} (SOP Instance UID {}): 0x0111 duplicate SOP instance",
        second.join("changed.dcm").display(),
        earlier.uids.sop
    );
    assert!(run.stdout.contains(&conflict), "{run}");
    let repeat = format!(
        "same SOP Instance UID as {} (not sent)",
        second.join("good-copy.dcm").display()
    );
    assert!(run.stdout.contains(&repeat), "{run}");
    // Failures are also reported as they happen, on stderr.
    assert!(run.stderr.contains("failed: "), "{run}");
    assert_stored(&server, &earlier, &earlier.bytes);
    assert_stored(&server, &good, &good.bytes);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn streams_a_large_instance_in_chunks() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Larger than the uploader's chunk and the server's part buffer many times over.
    let generated = Generated::new(&Uids::fresh(), 24 * 1024 * 1024 + 6, 7);
    let path = dir.path().join("big");
    std::fs::write(&path, generated.to_bytes()).expect("write the instance");
    let small = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    write(dir.path(), "small", &small.bytes);
    let url = format!("http://{}/dicomweb/studies", server.addr);
    let folder = dir.path().to_string_lossy().into_owned();
    let run = stow_cli(&["--url", &url, "--batch-bytes", "1048576", &folder]).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(row(&run, "stored").0, 2, "{run}");
    let uids = &generated.uids;
    assert!(generated.matches_file(&server.instance_path(&uids.study, &uids.series, &uids.sop)));
    assert_stored(&server, &small, &small.bytes);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn retries_until_the_server_is_up() {
    // A port nobody listens on yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let (_dir, instance, folder) = one_instance_folder();
    let url = format!("http://127.0.0.1:{port}/dicomweb");
    let upload = tokio::spawn(async move {
        stow_cli(&[
            "--url",
            &url,
            "--retries",
            "5",
            "--progress",
            "plain",
            &folder,
        ])
        .await
    });
    // The first tries find nothing listening (pauses of 1 s, 2 s, 4 s...).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let root = tempfile::tempdir().expect("tempdir");
    let root_text = root.path().to_string_lossy().into_owned();
    let server = BinaryServer::spawn(&["--port", &port.to_string(), "--dir", &root_text]);
    let run = upload.await.expect("the upload task");
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stderr.contains("retrying a request of 1 file in "),
        "{run}"
    );
    assert!(run.stderr.contains("Connection refused"), "{run}");
    assert_eq!(row(&run, "stored").0, 1, "{run}");
    let uids = &instance.uids;
    assert_stored_bytes(
        &crate::support::server::instance_path(root.path(), &uids.study, &uids.series, &uids.sop),
        &instance.bytes,
    );
    drop(server);
}

#[tokio::test]
async fn sends_credentials_and_does_not_retry_a_refusal() {
    let secrets = tempfile::tempdir().expect("tempdir");
    let token = secrets.path().join("token");
    std::fs::write(&token, "s3cret-token\n").expect("write the token");
    let server_token = token.clone();
    let server = TestServer::start_with(|config| {
        config.auth_token_file = Some(server_token);
    })
    .await;
    let (_dir, instance, folder) = one_instance_folder();
    let url = format!("http://{}/dicomweb", server.addr);

    let refused = stow_cli(&["--url", &url, &folder]).await;
    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(
        refused.stdout.contains("HTTP 401 Unauthorized"),
        "{refused}"
    );
    assert!(!refused.stderr.contains("retrying"), "{refused}");

    let token_text = token.to_string_lossy().into_owned();
    let run = stow_cli(&["--url", &url, "--token-file", &token_text, &folder]).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert_stored(&server, &instance, &instance.bytes);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn draws_a_bar_when_asked() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..3 {
        let instance = simple(dicom::EXPLICIT_LE, &Uids::fresh());
        write(dir.path(), &format!("{i}"), &instance.bytes);
    }
    let url = format!("http://{}/dicomweb", server.addr);
    let folder = dir.path().to_string_lossy().into_owned();
    let run = stow_cli(&["--url", &url, "--progress", "bar", &folder]).await;
    assert_eq!(run.code, Some(0), "{run}");
    // Redrawn in place: carriage return and erase-line before each drawing.
    assert!(
        run.stderr
            .contains("\r\u{1b}[2K[########################] 100% 3/3 files, "),
        "{run:?}",
        run = run.stderr
    );
    assert!(!run.stderr.contains("progress: "), "{}", run.stderr);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn bad_arguments_and_empty_folders_are_explained() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing").to_string_lossy().into_owned();
    let run = stow_cli(&[&missing]).await;
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr.contains(&format!("cannot read {missing}")),
        "{run}"
    );

    let folder = dir.path().to_string_lossy().into_owned();
    let run = stow_cli(&["--url", "https://pacs.example/dicomweb", &folder]).await;
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("https is not supported"), "{run}");

    write(dir.path(), "readme.txt", b"no images here");
    // Nothing is sent, so no server is needed.
    let run = stow_cli(&["--url", "http://127.0.0.1:9/dicomweb", &folder]).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("no DICOM files found"), "{run}");
    assert_eq!(row(&run, "not DICOM").0, 1, "{run}");

    let run = stow_cli(&[]).await;
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("PATHS"), "{run}");
}

#[tokio::test]
async fn ctrl_c_prints_what_was_answered_and_exits_130() {
    // A server that takes the request and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = silent.local_addr().expect("address");
    let (_dir, _instance, folder) = one_instance_folder();
    let child = Command::new(env!("CARGO_BIN_EXE_dicomwebserver"))
        .args([
            "stow",
            "--url",
            &format!("http://{addr}/dicomweb"),
            "--progress",
            "none",
        ])
        .arg(&folder)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the uploader");
    // Hold the connection open (unanswered) until the uploader has sent the whole request.
    let (mut socket, _) = tokio::time::timeout(std::time::Duration::from_secs(30), silent.accept())
        .await
        .expect("the uploader connects")
        .expect("accept");
    let mut received = Vec::new();
    while !received.ends_with(b"--\r\n") {
        let mut chunk = [0u8; 4096];
        let n = tokio::io::AsyncReadExt::read(&mut socket, &mut chunk)
            .await
            .expect("read the request");
        assert!(n > 0, "the uploader closed before sending everything");
        received.extend_from_slice(&chunk[..n]);
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let output = tokio::task::spawn_blocking(move || {
        child.wait_with_output().expect("the uploader's output")
    })
    .await
    .expect("wait for the uploader");
    let run = Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert_eq!(run.code, Some(130), "{run}");
    assert!(run.stderr.contains("interrupted"), "{run}");
    assert_eq!(row(&run, "failed").0, 1, "{run}");
    assert!(
        run.stdout
            .contains("interrupted before the server answered (stored or not: upload again)"),
        "{run}"
    );
    drop(socket);
}

#[tokio::test]
async fn sends_basic_credentials() {
    let secrets = tempfile::tempdir().expect("tempdir");
    let credentials = secrets.path().join("basic");
    std::fs::write(&credentials, "alice:open sesame\n").expect("write the credentials");
    let server_credentials = credentials.clone();
    let server = TestServer::start_with(|config| {
        config.auth_basic_file = Some(server_credentials);
    })
    .await;
    let (_dir, instance, folder) = one_instance_folder();
    let url = format!("http://{}/dicomweb", server.addr);
    let wrong = secrets.path().join("wrong");
    std::fs::write(&wrong, "alice:guess").expect("write the credentials");
    let wrong = wrong.to_string_lossy().into_owned();
    let refused = stow_cli(&["--url", &url, "--basic-auth-file", &wrong, &folder]).await;
    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(refused.stdout.contains("HTTP 401"), "{refused}");

    let file = credentials.to_string_lossy().into_owned();
    let run = stow_cli(&["--url", &url, "--basic-auth-file", &file, &folder]).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert_stored(&server, &instance, &instance.bytes);
    server.stop_and_check_tmp().await;
}

/// Reads one HTTP/1.1 request with a Content-Length body from `socket`; returns its body.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let head_end = loop {
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 8192];
        let n = socket.read(&mut chunk).await.expect("read the request");
        assert!(n > 0, "the client closed inside the headers");
        received.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .expect("a Content-Length");
    while received.len() < head_end + length {
        let mut chunk = [0u8; 65536];
        let n = socket.read(&mut chunk).await.expect("read the body");
        assert!(n > 0, "the client closed inside the body");
        received.extend_from_slice(&chunk[..n]);
    }
    received[head_end..].to_vec()
}

#[tokio::test]
async fn a_busy_answer_is_retried_after_its_retry_after() {
    use tokio::io::AsyncWriteExt;
    // A server that answers the first request 503 with Retry-After: 0, the second 200.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let server = tokio::spawn(async move {
        let mut bodies = Vec::new();
        for answer in [
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Type: application/dicom+json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        ] {
            let (mut socket, _) = listener.accept().await.expect("accept");
            bodies.push(read_request(&mut socket).await);
            socket.write_all(answer.as_bytes()).await.expect("answer");
        }
        bodies
    });
    let (_dir, instance, folder) = one_instance_folder();
    let url = format!("http://{addr}/dicom-web");
    let run = stow_cli(&["--url", &url, "--progress", "plain", &folder]).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stderr
            .contains("retrying a request of 1 file in 0 s: HTTP 503 Service Unavailable"),
        "{run}"
    );
    assert_eq!(row(&run, "stored").0, 1, "{run}");
    // Both tries carried the whole file, and progress counts it once.
    let bodies = server.await.expect("the fake server");
    for body in &bodies {
        assert!(
            body.windows(instance.bytes.len())
                .any(|w| w == instance.bytes),
            "a try did not carry the file"
        );
    }
    let size = instance.bytes.len();
    assert!(size < 1024, "sizes below 1 KiB print in bytes");
    assert!(
        run.stderr
            .contains(&format!("progress: 1/1 files, {size} B/{size} B, ")),
        "{run}"
    );
}

#[tokio::test]
async fn a_request_refused_as_too_large_is_sent_in_halves() {
    let instances: Vec<Instance> = (0..4)
        .map(|_| simple(dicom::EXPLICIT_LE, &Uids::fresh()))
        .collect();
    let size = instances[0].bytes.len() as u64;
    // Two files and their framing fit; four do not.
    let server = TestServer::start_with(|config| config.max_request_bytes = 3 * size).await;
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, instance) in instances.iter().enumerate() {
        write(dir.path(), &format!("{i}.dcm"), &instance.bytes);
    }
    let url = format!("http://{}/dicomweb", server.addr);
    let folder = dir.path().to_string_lossy().into_owned();
    let run = stow_cli(&["--url", &url, "--progress", "plain", &folder]).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stderr
            .contains("the server refused a request of 4 files as too large: sending it in halves"),
        "{run}"
    );
    assert_eq!(row(&run, "stored").0, 4, "{run}");
    assert!(run.stderr.contains("progress: 4/4 files"), "{run}");
    for instance in &instances {
        assert_stored(&server, instance, &instance.bytes);
    }
    server.stop_and_check_tmp().await;
}
