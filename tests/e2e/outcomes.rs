//! Response outcomes: HTTP status per mix of results, duplicates and overwrite, the
//! `/studies/{study}` route, RetrieveURLs built from the Host header and the prefix, the XML
//! response, and the status route.

use crate::support::dicom;
use crate::support::http;
use crate::support::instances::{built, native_pixels, simple, Instance, Uids};
use crate::support::multipart::{Multipart, Part};
use crate::support::response::{
    expect_stored, StoreResult, CANNOT_UNDERSTAND, DOES_NOT_MATCH_SOP_CLASS, DUPLICATE_INSTANCE,
    STUDY_MISMATCH,
};
use crate::support::server::{assert_stored_bytes, files_under, TestServer};
use crate::support::stow::{expect_all_stored, store_all, stow, stow_to};

fn instance() -> Instance {
    simple(dicom::EXPLICIT_LE, &Uids::fresh())
}

/// Same UIDs, different bytes (an extra attribute).
fn changed(original: &Instance) -> Instance {
    built(
        dicom::EXPLICIT_LE,
        &original.uids,
        |b| {
            b.text((0x0008, 0x0080), b"LO", "CHANGED");
        },
        native_pixels,
    )
}

#[tokio::test]
async fn status_route_answers_a_json_object() {
    let server = TestServer::start().await;
    let response = http::get(server.addr, &server.route("/status"), &[]).await;
    assert_eq!(response.status, 200);
    assert!(response.json().is_object(), "{}", response.text());
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn some_stored_and_some_failed_is_202() {
    let server = TestServer::start().await;
    let good = instance();
    let body = Multipart::new(vec![
        Part::bare(b"not dicom").header("Content-Type", "application/dicom"),
        Part::dicom(&good.bytes),
    ]);
    let result = stow(&server, &body).await;
    assert_eq!(result.status, 202, "{}", result.json);
    expect_stored(&server, &result, &good);
    assert_eq!(result.all_reasons(), vec![CANNOT_UNDERSTAND]);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn nothing_stored_with_mixed_reasons_is_409() {
    let server = TestServer::start().await;
    let mut hostile = Uids::fresh();
    hostile.sop = "1.2.abc".to_string();
    let body = Multipart::of(&[b"garbage", &simple(dicom::EXPLICIT_LE, &hostile).bytes]);
    let result = stow(&server, &body).await;
    assert_eq!(result.status, 409, "{}", result.json);
    assert_eq!(
        result.all_reasons(),
        vec![DOES_NOT_MATCH_SOP_CLASS, CANNOT_UNDERSTAND]
    );
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn same_instance_twice_is_idempotent() {
    let server = TestServer::start().await;
    let original = instance();
    store_all(&server, &[&original]).await;
    store_all(&server, &[&original]).await;
    assert_eq!(files_under(&server.root.join("studies")).len(), 1);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn same_uid_with_different_bytes_is_refused_and_nothing_overwritten() {
    let server = TestServer::start().await;
    let original = instance();
    store_all(&server, &[&original]).await;
    let conflicting = changed(&original);
    let result = stow(&server, &Multipart::of(&[&conflicting.bytes])).await;
    assert_eq!(result.status, 409, "{}", result.json);
    result.expect_failed(&original.uids.sop, DUPLICATE_INSTANCE);
    let uids = &original.uids;
    assert_stored_bytes(
        &server.instance_path(&uids.study, &uids.series, &uids.sop),
        &original.bytes,
    );
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn allow_overwrite_replaces_the_stored_bytes() {
    let server = TestServer::start_with(|config| config.allow_overwrite = true).await;
    let original = instance();
    store_all(&server, &[&original]).await;
    let replacement = changed(&original);
    store_all(&server, &[&replacement]).await;
    assert_eq!(files_under(&server.root.join("studies")).len(), 1);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn study_route_stores_instances_of_that_study() {
    let server = TestServer::start().await;
    let first = instance();
    let second = simple(dicom::IMPLICIT_LE, &Uids::in_study(&first.uids.study));
    let path = server.route(&format!("/studies/{}", first.uids.study));
    let result = stow_to(
        &server,
        &path,
        &Multipart::of(&[&first.bytes, &second.bytes]),
    )
    .await;
    expect_all_stored(&server, &result, &[&first, &second]);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn study_route_refuses_instances_of_another_study() {
    let server = TestServer::start().await;
    let matching = instance();
    let other = instance();
    let path = server.route(&format!("/studies/{}", matching.uids.study));
    let result = stow_to(
        &server,
        &path,
        &Multipart::of(&[&matching.bytes, &other.bytes]),
    )
    .await;
    assert_eq!(result.status, 202, "{}", result.json);
    expect_stored(&server, &result, &matching);
    result.expect_failed(&other.uids.sop, STUDY_MISMATCH);
    let expected_url = format!("{}/studies/{}", server.url_base(), matching.uids.study);
    assert_eq!(result.retrieve_url(), Some(expected_url));

    let alone = stow_to(&server, &path, &Multipart::of(&[&other.bytes])).await;
    assert_eq!(alone.status, 409, "{}", alone.json);
    alone.expect_failed(&other.uids.sop, STUDY_MISMATCH);
    assert_eq!(files_under(&server.root.join("studies")).len(), 1);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn retrieve_urls_use_the_host_header_and_prefix() {
    let server =
        TestServer::start_with(|config| config.server_path = "/pacs/dicom-web/".into()).await;
    assert_eq!(server.prefix, "/pacs/dicom-web");
    let stored = instance();
    let body = Multipart::of(&[&stored.bytes]);
    let headers = [
        ("Host", "pacs.example.org:8042"),
        ("Content-Type", &body.content_type() as &str),
    ];
    let response = http::post(
        server.addr,
        "/pacs/dicom-web/studies",
        &headers,
        &body.encode(),
    )
    .await;
    let result = StoreResult::parse(&response);
    assert_eq!(result.status, 200, "{}", result.json);
    let uids = &stored.uids;
    let study_url = format!(
        "http://pacs.example.org:8042/pacs/dicom-web/studies/{}",
        uids.study
    );
    assert_eq!(result.retrieve_url().as_deref(), Some(study_url.as_str()));
    let instance_url = format!("{study_url}/series/{}/instances/{}", uids.series, uids.sop);
    assert_eq!(result.stored()[0].url, instance_url);
    let status = http::get(server.addr, "/pacs/dicom-web/status", &[]).await;
    assert_eq!(status.status, 200);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn accept_variants_select_json_or_xml() {
    let server = TestServer::start().await;
    for accept in ["*/*", "application/json", "application/dicom+json"] {
        let stored = instance();
        let body = Multipart::of(&[&stored.bytes]);
        let headers = [
            ("Accept", accept),
            ("Content-Type", &body.content_type() as &str),
        ];
        let response = http::post(
            server.addr,
            &server.route("/studies"),
            &headers,
            &body.encode(),
        )
        .await;
        assert_eq!(response.status, 200, "Accept: {accept}");
        let result = StoreResult::parse(&response);
        expect_stored(&server, &result, &stored);
    }
    let stored = instance();
    let failing = instance();
    let cut = &failing.bytes[..failing.bytes.len() - 5];
    let body = Multipart::of(&[&stored.bytes, cut]);
    let headers = [
        ("Accept", "application/dicom+xml"),
        ("Content-Type", &body.content_type() as &str),
    ];
    let response = http::post(
        server.addr,
        &server.route("/studies"),
        &headers,
        &body.encode(),
    )
    .await;
    assert_eq!(response.status, 202, "{}", response.text());
    assert_eq!(response.media_type(), "application/dicom+xml");
    let xml = response.text();
    for needle in [
        "<NativeDicomModel",
        "tag=\"00081199\"",
        "tag=\"00081198\"",
        "tag=\"00081197\"",
        &format!(">{}<", stored.uids.sop),
        &format!(">{}<", failing.uids.sop),
        "49152",
    ] {
        assert!(xml.contains(needle), "XML response lacks {needle:?}: {xml}");
    }
    server.stop_and_check_tmp().await;
}
