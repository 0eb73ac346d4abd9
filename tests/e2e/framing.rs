//! Multipart framing variants sent by real clients (dicomweb-client JS/Python, dcm4che,
//! Orthanc, curl): every one must store every part, byte for byte.

use crate::support::dicom::EXPLICIT_LE;
use crate::support::instances::{simple, Instance, Uids};
use crate::support::multipart::{Multipart, Part};
use crate::support::response::StoreResult;
use crate::support::server::TestServer;
use crate::support::stow::{expect_all_stored, post_raw, stow};

fn two_instances() -> (Instance, Instance) {
    let first = simple(EXPLICIT_LE, &Uids::fresh());
    let second = simple(EXPLICIT_LE, &first.uids.sibling());
    (first, second)
}

/// Posts `body` with `content_type` and expects both instances stored.
async fn check(content_type: &str, body: &Multipart, instances: [&Instance; 2]) {
    let server = TestServer::start().await;
    let response = post_raw(
        &server,
        &server.route("/studies"),
        content_type,
        &body.encode(),
    )
    .await;
    let result = StoreResult::parse(&response);
    expect_all_stored(&server, &result, &instances);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn quoted_type_and_boundary_store_every_part() {
    let (a, b) = two_instances();
    let body = Multipart::of(&[&a.bytes, &b.bytes]);
    check(&body.content_type(), &body, [&a, &b]).await;
}

#[tokio::test]
async fn unquoted_type_and_boundary_are_accepted() {
    let (a, b) = two_instances();
    let body = Multipart::of(&[&a.bytes, &b.bytes]);
    let content_type = format!(
        "multipart/related; type=application/dicom; boundary={}",
        body.boundary
    );
    check(&content_type, &body, [&a, &b]).await;
}

#[tokio::test]
async fn media_type_and_parameter_names_are_case_insensitive() {
    let (a, b) = two_instances();
    let body = Multipart::of(&[&a.bytes, &b.bytes]);
    let content_type = format!(
        "Multipart/Related; TYPE=\"Application/DICOM\"; Boundary=\"{}\"",
        body.boundary
    );
    check(&content_type, &body, [&a, &b]).await;
}

#[tokio::test]
async fn parameter_order_does_not_matter() {
    let (a, b) = two_instances();
    let body = Multipart::of(&[&a.bytes, &b.bytes]);
    let content_type = format!(
        "multipart/related;boundary={};type=\"application/dicom\"",
        body.boundary
    );
    check(&content_type, &body, [&a, &b]).await;
}

#[tokio::test]
async fn boundary_starting_with_dashes_is_accepted() {
    let (a, b) = two_instances();
    let mut body = Multipart::of(&[&a.bytes, &b.bytes]);
    body.boundary = "--=_Part_0_dash_leading".to_string();
    check(&body.content_type(), &body, [&a, &b]).await;
}

#[tokio::test]
async fn preamble_and_epilogue_are_ignored() {
    let (a, b) = two_instances();
    let mut body = Multipart::of(&[&a.bytes, &b.bytes]);
    body.start = b"This is a multi-part message in MIME format.\r\n".to_vec();
    body.end = b"\r\nThis epilogue is ignored.\r\n".to_vec();
    check(&body.content_type(), &body, [&a, &b]).await;
}

#[tokio::test]
async fn body_starting_with_crlf_and_no_final_crlf_is_accepted() {
    // dicomweb-client (JS and Python) framing.
    let (a, b) = two_instances();
    let mut body = Multipart::of(&[&a.bytes, &b.bytes]);
    body.start = b"\r\n".to_vec();
    body.end = Vec::new();
    check(&body.content_type(), &body, [&a, &b]).await;
}

#[tokio::test]
async fn extra_part_headers_are_accepted() {
    // Orthanc sends Content-Length per part; others add Content-Location or Disposition.
    let (a, b) = two_instances();
    let first = Part::bare(&a.bytes)
        .header(
            "Content-Type",
            "application/dicom; transfer-syntax=1.2.840.10008.1.2.1",
        )
        .header("Content-Length", &a.bytes.len().to_string())
        .header("Content-Location", "file:///upload/a.dcm");
    let second = Part::bare(&b.bytes)
        .header("content-disposition", "attachment; filename=\"b.dcm\"")
        .header("CONTENT-TYPE", "Application/Dicom")
        .header("X-Custom", "ignored");
    let body = Multipart::new(vec![first, second]);
    check(&body.content_type(), &body, [&a, &b]).await;
}

#[tokio::test]
async fn headerless_parts_are_recognised_by_dicm_magic() {
    let (a, b) = two_instances();
    let body = Multipart::new(vec![Part::bare(&a.bytes), Part::bare(&b.bytes)]);
    check(&body.content_type(), &body, [&a, &b]).await;
}

#[tokio::test]
async fn single_application_dicom_body_is_stored() {
    let server = TestServer::start().await;
    let instance = simple(EXPLICIT_LE, &Uids::fresh());
    let response = post_raw(
        &server,
        &server.route("/studies"),
        "application/dicom",
        &instance.bytes,
    )
    .await;
    let result = StoreResult::parse(&response);
    expect_all_stored(&server, &result, &[&instance]);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn many_parts_across_studies_are_all_stored() {
    let server = TestServer::start().await;
    let instances: Vec<Instance> = (0..12)
        .map(|index| {
            let uids = if index % 3 == 0 {
                Uids::fresh()
            } else {
                Uids::fresh().sibling()
            };
            simple(EXPLICIT_LE, &uids)
        })
        .collect();
    let bodies: Vec<&[u8]> = instances
        .iter()
        .map(|instance| instance.bytes.as_slice())
        .collect();
    let result = stow(&server, &Multipart::of(&bodies)).await;
    let refs: Vec<&Instance> = instances.iter().collect();
    expect_all_stored(&server, &result, &refs);
    let url = result.retrieve_url();
    assert!(
        url.is_none()
            || !url
                .as_deref()
                .is_some_and(|u| refs.iter().any(|i| u.ends_with(&i.uids.study))),
        "a study RetrieveURL names one study although instances span several: {url:?}"
    );
    server.stop_and_check_tmp().await;
}
