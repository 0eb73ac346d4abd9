//! Authentication and request limits: bearer tokens (full and read-only) and basic
//! credentials; 401 with a challenge when missing or wrong, 403 when a read-only token stores;
//! the `stow` scope leaves reads open; over-long query strings are 414; over-size bodies 413.

use std::path::Path;

use crate::support::dicom;
use crate::support::http;
use crate::support::instances::{simple, Uids};
use crate::support::multipart::Multipart;
use crate::support::server::{files_under, TestServer};

const FULL: &str = "full-token-0123456789";
const READ: &str = "read-token-9876543210";
/// `alice:open sesame`.
const BASIC: &str = "YWxpY2U6b3BlbiBzZXNhbWU=";

fn secret(dir: &Path, name: &str, value: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{value}\n")).expect("write a secret file");
    path
}

async fn secured(scope: dicomwebserver::config::AuthScope) -> (TestServer, tempfile::TempDir) {
    let secrets = tempfile::tempdir().expect("tempdir");
    let full = secret(secrets.path(), "full", FULL);
    let read = secret(secrets.path(), "read", READ);
    let basic = secret(secrets.path(), "basic", "alice:open sesame");
    let server = TestServer::start_with(move |config| {
        config.auth_token_file = Some(full);
        config.auth_read_token_file = Some(read);
        config.auth_basic_file = Some(basic);
        config.auth_scope = scope;
    })
    .await;
    (server, secrets)
}

async fn store(server: &TestServer, authorization: Option<&str>) -> http::Response {
    let instance = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let body = Multipart::of(&[&instance.bytes]);
    let content_type = body.content_type();
    let mut headers = vec![("Content-Type", content_type.as_str())];
    if let Some(value) = authorization {
        headers.push(("Authorization", value));
    }
    http::post(
        server.addr,
        &server.route("/studies"),
        &headers,
        &body.encode(),
    )
    .await
}

async fn search(server: &TestServer, authorization: Option<&str>) -> http::Response {
    let mut headers = Vec::new();
    if let Some(value) = authorization {
        headers.push(("Authorization", value));
    }
    http::get(server.addr, &server.route("/studies"), &headers).await
}

#[tokio::test]
async fn credentials_are_required_and_grant_what_they_say() {
    let (server, _secrets) = secured(dicomwebserver::config::AuthScope::All).await;
    let bearer_full = format!("Bearer {FULL}");
    let bearer_read = format!("Bearer {READ}");
    let basic = format!("Basic {BASIC}");

    for missing_or_wrong in [
        None,
        Some("Bearer nope"),
        Some("Basic YWxpY2U6bm8="),
        Some("x"),
    ] {
        let response = store(&server, missing_or_wrong).await;
        assert_eq!(response.status, 401, "{missing_or_wrong:?}");
        let challenges: Vec<&str> = response
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("www-authenticate"))
            .map(|(_, value)| value.as_str())
            .collect();
        assert!(
            challenges.iter().any(|c| c.starts_with("Bearer realm=")),
            "{challenges:?}"
        );
        assert!(
            challenges.iter().any(|c| c.starts_with("Basic realm=")),
            "{challenges:?}"
        );
        assert_eq!(search(&server, missing_or_wrong).await.status, 401);
    }
    assert!(files_under(&server.root.join("studies")).is_empty());

    assert_eq!(store(&server, Some(&bearer_full)).await.status, 200);
    assert_eq!(store(&server, Some(&basic)).await.status, 200);
    // A read-only token searches but does not store.
    assert_eq!(store(&server, Some(&bearer_read)).await.status, 403);
    let found = search(&server, Some(&bearer_read)).await;
    assert_eq!(found.status, 200);
    assert_eq!(found.json().as_array().map(Vec::len), Some(2));
    assert_eq!(files_under(&server.root.join("studies")).len(), 2);
    // Status is protected too with the `all` scope.
    let status = http::get(server.addr, &server.route("/status"), &[]).await;
    assert_eq!(status.status, 401);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn stow_scope_leaves_reads_open() {
    let (server, _secrets) = secured(dicomwebserver::config::AuthScope::Stow).await;
    assert_eq!(store(&server, None).await.status, 401);
    assert_eq!(
        store(&server, Some(&format!("Bearer {FULL}"))).await.status,
        200
    );
    let found = search(&server, None).await;
    assert_eq!(found.status, 200);
    assert_eq!(found.json().as_array().map(Vec::len), Some(1));
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn without_credentials_configured_nothing_is_asked() {
    let server = TestServer::start().await;
    assert_eq!(store(&server, None).await.status, 200);
    assert_eq!(store(&server, Some("Bearer anything")).await.status, 200);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn over_long_query_strings_are_refused() {
    let server = TestServer::start_with(|config| config.max_query_bytes = 512).await;
    let long = format!("/studies?PatientName={}", "A".repeat(600));
    let response = http::get(server.addr, &server.route(&long), &[]).await;
    assert_eq!(response.status, 414);
    assert!(
        response.text().contains("limit of 512"),
        "{}",
        response.text()
    );
    let short = http::get(server.addr, &server.route("/studies?PatientName=A*"), &[]).await;
    assert_eq!(short.status, 204);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn declared_bodies_over_the_limit_are_refused_before_reading() {
    let server = TestServer::start_with(|config| config.max_request_bytes = 200).await;
    let response = store(&server, None).await;
    assert_eq!(response.status, 413, "{}", response.text());
    assert!(files_under(&server.root.join("studies")).is_empty());
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn chunked_bodies_growing_over_the_limit_are_cut_with_413() {
    let server = TestServer::start_with(|config| config.max_request_bytes = 200).await;
    let instance = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let body = Multipart::of(&[&instance.bytes]).encode();
    let content_type = Multipart::of(&[&instance.bytes]).content_type();
    let response = http::post_chunked(
        server.addr,
        &server.route("/studies"),
        &[("Content-Type", content_type.as_str())],
        &body,
        &[100; 64],
    )
    .await;
    assert_eq!(response.status, 413, "{}", response.text());
    assert!(
        response
            .text()
            .contains("larger than the limit of 200 bytes"),
        "{}",
        response.text()
    );
    assert!(files_under(&server.root.join("studies")).is_empty());
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn parts_over_the_limit_are_not_stored() {
    let server = TestServer::start_with(|config| config.max_parts = 2).await;
    let instances: Vec<_> = (0..4)
        .map(|_| simple(dicom::EXPLICIT_LE, &Uids::fresh()))
        .collect();
    let bodies: Vec<&[u8]> = instances.iter().map(|i| i.bytes.as_slice()).collect();
    let result = crate::support::stow::stow(&server, &Multipart::of(&bodies)).await;
    assert_eq!(result.status, 202, "{}", result.json);
    assert_eq!(result.stored().len(), 2, "{}", result.json);
    let others = result.other_failures();
    assert_eq!(others.len(), 1, "{}", result.json);
    assert_eq!(others[0].reason, 0xA700, "{}", result.json);
    assert_eq!(files_under(&server.root.join("studies")).len(), 2);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn symbolic_links_in_the_store_are_not_followed() {
    let server = TestServer::start().await;
    let outside = tempfile::tempdir().expect("tempdir");
    let uids = Uids::fresh();
    let studies = server.root.join("studies");
    std::fs::create_dir_all(&studies).expect("studies dir");
    std::os::unix::fs::symlink(outside.path(), studies.join(&uids.study)).expect("symlink");
    let instance = simple(dicom::EXPLICIT_LE, &uids);
    let result = crate::support::stow::stow(&server, &Multipart::of(&[&instance.bytes])).await;
    assert_eq!(result.status, 409, "{}", result.json);
    result.expect_failed(&uids.sop, 0xA700);
    assert!(
        files_under(outside.path()).is_empty(),
        "nothing may be written through the link"
    );
    server.stop_and_check_tmp().await;
}
