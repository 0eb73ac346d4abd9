//! One-call STOW-RS requests for tests: post a multipart body, parse the response, and check
//! the invariants every request must leave behind (tmp/ empty once the response is out).

use super::http::{self, Response};
use super::instances::Instance;
use super::multipart::Multipart;
use super::response::{expect_stored, StoreResult};
use super::server::{assert_tmp_empty, TestServer};

/// POSTs `body` to `path` with `content_type` and a Content-Length; checks tmp/ afterwards.
pub async fn post_raw(
    server: &TestServer,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> Response {
    let response = http::post(server.addr, path, &[("Content-Type", content_type)], body).await;
    assert_tmp_empty(&server.root);
    response
}

/// POSTs the multipart body to `/studies` and parses the JSON answer.
pub async fn stow(server: &TestServer, body: &Multipart) -> StoreResult {
    stow_to(server, &server.route("/studies"), body).await
}

/// POSTs the multipart body to `path` and parses the JSON answer.
pub async fn stow_to(server: &TestServer, path: &str, body: &Multipart) -> StoreResult {
    let response = post_raw(server, path, &body.content_type(), &body.encode()).await;
    StoreResult::parse(&response)
}

/// Posts every instance as one part each and expects all of them stored (200), with the study
/// RetrieveURL when they share one study.
pub async fn store_all(server: &TestServer, instances: &[&Instance]) -> StoreResult {
    let bodies: Vec<&[u8]> = instances
        .iter()
        .map(|instance| instance.bytes.as_slice())
        .collect();
    let result = stow(server, &Multipart::of(&bodies)).await;
    expect_all_stored(server, &result, instances);
    result
}

/// 200, no failures, every instance referenced and byte-identical on disk.
pub fn expect_all_stored(server: &TestServer, result: &StoreResult, instances: &[&Instance]) {
    assert_eq!(result.status, 200, "{}", result.json);
    assert!(
        result.failed().is_empty() && result.other_failures().is_empty(),
        "{}",
        result.json
    );
    assert_eq!(result.stored().len(), instances.len(), "{}", result.json);
    for instance in instances {
        expect_stored(server, result, instance);
    }
    let study = &instances[0].uids.study;
    if instances
        .iter()
        .all(|instance| &instance.uids.study == study)
    {
        let expected = format!("{}/studies/{study}", server.url_base());
        assert_eq!(result.retrieve_url(), Some(expected), "{}", result.json);
    }
}
