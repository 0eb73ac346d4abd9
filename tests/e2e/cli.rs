//! The real binary: flags, the `listening` line with the real port, serving, and a graceful
//! exit with status 0 on SIGTERM and SIGINT.

use crate::support::dicom;
use crate::support::http;
use crate::support::instances::{simple, Uids};
use crate::support::multipart::Multipart;
use crate::support::response::StoreResult;
use crate::support::server::{assert_stored_bytes, assert_tmp_empty, instance_path, BinaryServer};

async fn check_serves_then_exits_on(signal: &str) {
    let tempdir = tempfile::tempdir().expect("temporary directory");
    let root = tempdir
        .path()
        .to_str()
        .expect("UTF-8 temp path")
        .to_string();
    let server = BinaryServer::spawn(&["--port", "0", "--dir", &root]);
    assert_ne!(
        server.addr.port(),
        0,
        "the listening line shows the real port"
    );

    let status = http::get(server.addr, "/dicomweb/status", &[]).await;
    assert_eq!(status.status, 200);
    assert!(status.json().is_object());

    let instance = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let body = Multipart::of(&[&instance.bytes]);
    let headers = [("Content-Type", body.content_type())];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let response = http::post(server.addr, "/dicomweb/studies", &headers, &body.encode()).await;
    let result = StoreResult::parse(&response);
    assert_eq!(result.status, 200, "{}", result.json);
    let uids = &instance.uids;
    assert_stored_bytes(
        &instance_path(tempdir.path(), &uids.study, &uids.series, &uids.sop),
        &instance.bytes,
    );

    server.signal(signal);
    let exit = server.wait().await;
    assert_eq!(
        exit.code(),
        Some(0),
        "graceful exit on SIG{signal}: {exit:?}"
    );
    assert_tmp_empty(tempdir.path());
}

#[tokio::test]
async fn binary_serves_and_exits_cleanly_on_sigterm() {
    check_serves_then_exits_on("TERM").await;
}

#[tokio::test]
async fn binary_serves_and_exits_cleanly_on_sigint() {
    check_serves_then_exits_on("INT").await;
}

#[tokio::test]
async fn binary_honours_server_path_and_host_flags() {
    let tempdir = tempfile::tempdir().expect("temporary directory");
    let root = tempdir
        .path()
        .to_str()
        .expect("UTF-8 temp path")
        .to_string();
    let args = [
        "--host",
        "127.0.0.1",
        "-p",
        "0",
        "-o",
        &root,
        "--server-path",
        "/wado",
    ];
    let server = BinaryServer::spawn(&args);
    let status = http::get(server.addr, "/wado/status", &[]).await;
    assert_eq!(status.status, 200);
    server.signal("TERM");
    assert_eq!(server.wait().await.code(), Some(0));
}
