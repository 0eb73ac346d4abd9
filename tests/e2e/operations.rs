//! Operations endpoints: `/metrics` in the Prometheus text format counts what happened (bytes,
//! instances by outcome and reason, durations, requests by route template), and the health
//! probes answer, without credentials even when the server requires them.

use crate::support::dicom;
use crate::support::http;
use crate::support::instances::{simple, Uids};
use crate::support::multipart::{Multipart, Part};
use crate::support::server::TestServer;
use crate::support::stow::stow;

/// The value of the sample line `name` (with its labels) in an exposition text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_uploads_outcomes_and_requests() {
    let server = TestServer::start().await;
    let good = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let body = Multipart::new(vec![Part::dicom(&good.bytes), Part::dicom(b"not DICOM")]);
    let sent = body.encode().len() as f64;
    let result = stow(&server, &body).await;
    assert_eq!(result.status, 202, "{}", result.json);
    let searched = http::get(server.addr, &server.route("/studies?PatientID=E2E-1"), &[]).await;
    assert_eq!(searched.status, 200);

    let response = http::get(server.addr, &server.route("/metrics"), &[]).await;
    assert_eq!(response.status, 200);
    assert!(
        response.media_type().starts_with("text/plain"),
        "{}",
        response.media_type()
    );
    let text = response.text();
    for family in [
        "dicomweb_uploads_in_flight gauge",
        "dicomweb_upload_bytes_total counter",
        "dicomweb_instances_stored_total counter",
        "dicomweb_instances_failed_total counter",
        "dicomweb_ingest_duration_seconds histogram",
        "dicomweb_livelock_warnings_total counter",
        "dicomweb_http_requests_total counter",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family}")),
            "{family} in:\n{text}"
        );
    }
    assert_eq!(sample(&text, "dicomweb_uploads_in_flight"), Some(0.0));
    assert_eq!(sample(&text, "dicomweb_upload_bytes_total"), Some(sent));
    assert_eq!(sample(&text, "dicomweb_instances_stored_total"), Some(1.0));
    assert_eq!(
        sample(&text, "dicomweb_instances_failed_total{reason=\"0xC000\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "dicomweb_ingest_duration_seconds_count"),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "dicomweb_ingest_duration_seconds_bucket{le=\"+Inf\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "dicomweb_http_requests_total{route=\"/dicomweb/studies\",method=\"POST\",status=\"202\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "dicomweb_http_requests_total{route=\"/dicomweb/studies\",method=\"GET\",status=\"200\"}"
        ),
        Some(1.0)
    );
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn health_probes_answer_without_credentials() {
    let secrets = tempfile::tempdir().expect("tempdir");
    let token = secrets.path().join("token");
    std::fs::write(&token, "secret\n").expect("write token");
    let server = TestServer::start_with(move |config| config.auth_token_file = Some(token)).await;
    for probe in ["/health/live", "/health/ready"] {
        let response = http::get(server.addr, &server.route(probe), &[]).await;
        assert_eq!(response.status, 200, "{probe}");
    }
    let metrics = http::get(server.addr, &server.route("/metrics"), &[]).await;
    assert_eq!(
        metrics.status, 401,
        "metrics are protected with the `all` scope"
    );
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn json_logs_have_one_object_per_line_with_a_line_per_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_string_lossy().into_owned();
    let server = crate::support::server::BinaryServer::spawn_observed(
        &["--port", "0", "--dir", &root, "--log-format", "json"],
        &[],
    );
    let response = http::get(server.addr, "/dicomweb/studies", &[]).await;
    assert_eq!(response.status, 204);
    let lines = server.stderr_until(std::time::Duration::from_secs(20), |line| {
        line.contains("\"route\":\"/dicomweb/studies\"")
    });
    let access = lines
        .iter()
        .find(|line| line.contains("\"route\":\"/dicomweb/studies\""))
        .expect("an access line for the search");
    let object: serde_json::Value = serde_json::from_str(access).expect("a JSON object");
    assert_eq!(object["fields"]["method"], "GET", "{access}");
    assert_eq!(object["fields"]["status"], 204, "{access}");
    assert!(object["fields"]["duration_ms"].is_number(), "{access}");
    for line in &lines {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {line}"));
    }
}

#[tokio::test]
async fn each_instance_not_stored_gets_its_own_log_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_string_lossy().into_owned();
    let server = crate::support::server::BinaryServer::spawn_observed(
        &["--port", "0", "--dir", &root, "--log-format", "json"],
        &[],
    );
    let good = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let cut = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let body = Multipart::new(vec![
        Part::dicom(&good.bytes),
        Part::dicom(&cut.bytes[..cut.bytes.len() - 5]),
    ]);
    let response = http::post(
        server.addr,
        "/dicomweb/studies",
        &[("Content-Type", &body.content_type())],
        &body.encode(),
    )
    .await;
    assert_eq!(response.status, 202, "{}", response.text());
    let lines = server.stderr_until(std::time::Duration::from_secs(20), |line| {
        line.contains("instance not stored")
    });
    let event: serde_json::Value =
        serde_json::from_str(lines.last().expect("the event line")).expect("a JSON object");
    let fields = &event["fields"];
    assert_eq!(event["level"], "WARN", "{event}");
    assert_eq!(fields["sop_instance"], cut.uids.sop.as_str(), "{event}");
    assert_eq!(fields["sop_class"], cut.uids.class.as_str(), "{event}");
    assert_eq!(fields["reason"], "0xC000", "{event}");
    assert_eq!(fields["part"], 1, "{event}");
    // The whole comment, not the 64 characters the response has room for.
    let comment = fields["comment"].as_str().expect("a comment");
    assert!(comment.contains("truncated"), "{event}");
    // The request's line follows, with its counts.
    let lines = server.stderr_until(std::time::Duration::from_secs(20), |line| {
        line.contains("store request done")
    });
    let done: serde_json::Value =
        serde_json::from_str(lines.last().expect("the request line")).expect("a JSON object");
    assert_eq!(done["fields"]["stored"], 1, "{done}");
    assert_eq!(done["fields"]["failed"], 1, "{done}");
    // The access line has them too, with the body bytes received.
    let lines = server.stderr_until(std::time::Duration::from_secs(20), |line| {
        line.contains("\"route\":\"/dicomweb/studies\"")
    });
    let access: serde_json::Value =
        serde_json::from_str(lines.last().expect("the access line")).expect("a JSON object");
    let fields = &access["fields"];
    assert_eq!(fields["method"], "POST", "{access}");
    assert_eq!(fields["status"], 202, "{access}");
    assert_eq!(fields["stored"], 1, "{access}");
    assert_eq!(fields["failed"], 1, "{access}");
    assert_eq!(fields["bytes_in"], body.encode().len(), "{access}");
}
