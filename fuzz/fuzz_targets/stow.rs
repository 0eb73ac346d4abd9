//! The STOW-RS pipeline end to end: the fuzz input becomes a multipart body (fixed boundary;
//! see `stow_input` for the encoding: raw bodies, listed parts, or a valid generated instance
//! with byte edits) POSTed to `/dicomweb/studies` of an in-process server.
//!
//! Checked: the server never panics (libFuzzer's panic hook aborts on any thread) and always
//! answers; the status is 200, 202, 400, 409 or 415; the body is valid DICOM JSON; and no
//! temporary file is left in the storage root's `tmp/` once the response is out.
#![no_main]

use dicomwebserver_fuzz::server::{files_under, post, server};
use dicomwebserver_fuzz::stow_input;
use libfuzzer_sys::fuzz_target;

const ALLOWED: [u16; 5] = [200, 202, 400, 409, 415];

fuzz_target!(|data: &[u8]| {
    let server = server();
    let body = stow_input::body(data);
    let path = format!("{}/studies", server.prefix);
    let response = post(server, &path, &stow_input::content_type(), &body);
    let text = String::from_utf8_lossy(&response.body);
    assert!(
        ALLOWED.contains(&response.status),
        "status {}: {text}",
        response.status
    );
    let media = response.header("content-type").unwrap_or_default();
    assert!(
        media.starts_with("application/dicom+json"),
        "status {} with Content-Type {media:?}: {text}",
        response.status
    );
    let json: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_else(|error| {
        panic!(
            "status {}, body not JSON ({error}): {text}",
            response.status
        )
    });
    assert!(json.is_object(), "not a JSON object: {text}");
    let leftovers = files_under(&server.root.join("tmp"));
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?} (status {}: {text})",
        response.status
    );
});
