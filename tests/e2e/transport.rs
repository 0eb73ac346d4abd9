//! HTTP transport and request-level framing: chunked bodies of any chunk size,
//! `Expect: 100-continue`, unsupported media types (415), and bodies that are malformed as a
//! whole (no boundary, no parts, no closing delimiter, cut connection, oversized part headers).

use crate::support::dicom::{self, Builder};
use crate::support::http::{self, Connection};
use crate::support::instances::{built, simple, Instance, Uids};
use crate::support::multipart::{Multipart, Part};
use crate::support::response::{StoreResult, CANNOT_UNDERSTAND};
use crate::support::server::{assert_nothing_stored, files_under, TestServer};
use crate::support::stow::{expect_all_stored, post_raw, stow};

fn three_instances() -> Vec<Instance> {
    let first = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let second = simple(dicom::IMPLICIT_LE, &first.uids.sibling());
    let third = simple(dicom::DEFLATED_LE, &first.uids.sibling());
    vec![first, second, third]
}

async fn check_chunked(chunk_sizes: &[usize]) {
    let server = TestServer::start().await;
    let instances = three_instances();
    let bodies: Vec<&[u8]> = instances.iter().map(|i| i.bytes.as_slice()).collect();
    let body = Multipart::of(&bodies);
    let headers = [("Content-Type", body.content_type())];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let path = server.route("/studies");
    let response =
        http::post_chunked(server.addr, &path, &headers, &body.encode(), chunk_sizes).await;
    let result = StoreResult::parse(&response);
    let refs: Vec<&Instance> = instances.iter().collect();
    expect_all_stored(&server, &result, &refs);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn chunked_body_in_one_byte_chunks_is_stored() {
    check_chunked(&[1]).await;
}

#[tokio::test]
async fn chunked_body_in_irregular_chunks_is_stored() {
    check_chunked(&[3, 1, 4096, 7, 65_536, 2, 131]).await;
}

#[tokio::test]
async fn expect_100_continue_is_answered_before_the_body() {
    let server = TestServer::start().await;
    let instances = three_instances();
    let bodies: Vec<&[u8]> = instances.iter().map(|i| i.bytes.as_slice()).collect();
    let body = Multipart::of(&bodies).encode();
    let content_type = Multipart::of(&bodies).content_type();
    for chunked in [false, true] {
        let mut connection = Connection::open(server.addr).await;
        let length = body.len().to_string();
        let framing = if chunked {
            ("Transfer-Encoding", "chunked")
        } else {
            ("Content-Length", length.as_str())
        };
        let headers = [
            ("Content-Type", content_type.as_str()),
            ("Expect", "100-continue"),
            framing,
        ];
        connection
            .write_head("POST", &server.route("/studies"), &headers)
            .await;
        // Nothing of the body is sent until the interim response arrives.
        assert_eq!(connection.read_interim().await, 100);
        if chunked {
            for chunk in body.chunks(1000) {
                connection.write_chunk(chunk).await;
            }
            connection.finish_chunks().await;
        } else {
            connection.write(&body).await;
        }
        let response = connection.read_response().await;
        assert!(
            response.interim.is_empty(),
            "a second interim response: {:?}",
            response.interim
        );
        let result = StoreResult::parse(&response);
        let refs: Vec<&Instance> = instances.iter().collect();
        expect_all_stored(&server, &result, &refs);
    }
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn unsupported_media_types_are_415() {
    let server = TestServer::start().await;
    let stored = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let body = Multipart::of(&[&stored.bytes]);
    let boundary = &body.boundary;
    for content_type in [
        "text/plain".to_string(),
        "application/octet-stream".to_string(),
        format!("multipart/related; type=\"application/dicom+json\"; boundary={boundary}"),
        format!("multipart/related; type=\"application/dicom+xml\"; boundary={boundary}"),
        format!("multipart/form-data; boundary={boundary}"),
    ] {
        let response = post_raw(
            &server,
            &server.route("/studies"),
            &content_type,
            &body.encode(),
        )
        .await;
        assert_eq!(response.status, 415, "{content_type}: {}", response.text());
    }
    let stopped = server.stop_and_check_tmp().await;
    assert_nothing_stored(&stopped.root);
}

/// Posts `body` with `content_type` and expects 400 with nothing stored.
async fn check_400(content_type: &str, body: &[u8]) {
    let server = TestServer::start().await;
    let response = post_raw(&server, &server.route("/studies"), content_type, body).await;
    assert_eq!(response.status, 400, "{content_type}: {}", response.text());
    if response.media_type() == "application/dicom+json" {
        let result = StoreResult::parse(&response);
        assert!(result.stored().is_empty());
        assert!(result
            .all_reasons()
            .iter()
            .all(|reason| *reason == CANNOT_UNDERSTAND));
    }
    let stopped = server.stop_and_check_tmp().await;
    assert_nothing_stored(&stopped.root);
}

#[tokio::test]
async fn missing_boundary_parameter_is_400() {
    let stored = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let body = Multipart::of(&[&stored.bytes]);
    check_400(
        "multipart/related; type=\"application/dicom\"",
        &body.encode(),
    )
    .await;
}

#[tokio::test]
async fn body_without_any_delimiter_is_400() {
    let body = Multipart::of(&[]);
    check_400(&body.content_type(), b"no delimiter anywhere in this body").await;
    check_400(&body.content_type(), b"").await;
}

#[tokio::test]
async fn single_part_without_closing_delimiter_is_400() {
    let stored = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let mut body = Multipart::of(&[&stored.bytes[..stored.bytes.len() / 2]]);
    body.close = false;
    check_400(&body.content_type(), &body.encode()).await;
}

#[tokio::test]
async fn oversized_part_header_block_is_400() {
    let stored = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let filler = "x".repeat(20 * 1024);
    let body = Multipart::new(vec![Part::dicom(&stored.bytes).header("X-Filler", &filler)]);
    check_400(&body.content_type(), &body.encode()).await;
}

#[tokio::test]
async fn good_part_before_a_truncated_body_end_is_kept() {
    let server = TestServer::start().await;
    let good = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let cut = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let mut body = Multipart::of(&[&good.bytes, &cut.bytes[..cut.bytes.len() - 10]]);
    body.close = false;
    let result = stow(&server, &body).await;
    assert_eq!(result.status, 202, "{}", result.json);
    crate::support::response::expect_stored(&server, &result, &good);
    // The cut part's SOP UIDs were read before the body ended: it is a Failed SOP item. An
    // extra Other Failures item for the malformed body as a whole is allowed.
    result.expect_failed(&cut.uids.sop, CANNOT_UNDERSTAND);
    let reasons = result.all_reasons();
    assert!(
        reasons.iter().all(|reason| *reason == CANNOT_UNDERSTAND),
        "{}",
        result.json
    );
    assert_eq!(files_under(&server.root.join("studies")).len(), 1);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn connection_cut_mid_body_leaves_no_files() {
    let server = TestServer::start().await;
    let instance = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let body = Multipart::of(&[&instance.bytes]);
    let encoded = body.encode();
    for chunked in [false, true] {
        let mut connection = Connection::open(server.addr).await;
        let length = encoded.len().to_string();
        let framing = if chunked {
            ("Transfer-Encoding", "chunked")
        } else {
            ("Content-Length", length.as_str())
        };
        let content_type = body.content_type();
        let headers = [("Content-Type", content_type.as_str()), framing];
        connection
            .write_head("POST", &server.route("/studies"), &headers)
            .await;
        let half = &encoded[..encoded.len() - 40];
        if chunked {
            connection.write_chunk(half).await;
        } else {
            connection.write(half).await;
        }
        connection.shutdown_write().await;
        // The server may answer 400 or just close; it must never claim success.
        if let Some(response) = connection.try_read_response().await {
            assert_eq!(response.status, 400, "{}", response.text());
        }
    }
    let stopped = server.stop_and_check_tmp().await;
    assert_nothing_stored(&stopped.root);
}

#[tokio::test]
async fn client_vanishing_mid_part_leaves_no_files() {
    // A 4 MiB part, so the server has a temporary file open when the client goes away:
    // once with a half-close, once by dropping the socket without reading anything.
    let server = TestServer::start().await;
    let big = built(
        dicom::EXPLICIT_LE,
        &Uids::fresh(),
        |_| {},
        |b: &mut Builder| {
            b.element((0x7FE0, 0x0010), b"OB", &vec![0x5A; 4 * 1024 * 1024]);
        },
    );
    let body = Multipart::of(&[&big.bytes]);
    let encoded = body.encode();
    let content_type = body.content_type();
    for half_close in [true, false] {
        let mut connection = Connection::open(server.addr).await;
        let length = encoded.len().to_string();
        let headers = [
            ("Content-Type", content_type.as_str()),
            ("Content-Length", length.as_str()),
        ];
        connection
            .write_head("POST", &server.route("/studies"), &headers)
            .await;
        connection.write(&encoded[..encoded.len() / 2]).await;
        if half_close {
            connection.shutdown_write().await;
            if let Some(response) = connection.try_read_response().await {
                assert_eq!(response.status, 400, "{}", response.text());
            }
        }
    }
    // The server still works. The dropped upload may still be winding down meanwhile, so
    // tmp/ is checked only after the drain, when every request has completed.
    let good = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let good_body = Multipart::of(&[&good.bytes]);
    let headers = [("Content-Type", good_body.content_type())];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let path = server.route("/studies");
    let response = http::post(server.addr, &path, &headers, &good_body.encode()).await;
    expect_all_stored(&server, &StoreResult::parse(&response), &[&good]);
    let stopped = server.stop_and_check_tmp().await;
    assert_eq!(files_under(&stopped.root.join("studies")).len(), 1);
}
