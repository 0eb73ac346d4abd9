//! `GET {prefix}/metrics`: the server's counters in the Prometheus text format (version
//! 0.0.4), and the middleware that counts HTTP requests by route template, method and status.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// Upper bounds of the ingest duration buckets, in seconds (a request of one small instance
/// takes milliseconds; a multi-gigabyte study minutes).
const INGEST_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 600.0,
];

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A cumulative histogram with fixed buckets.
#[derive(Default)]
struct Histogram {
    /// Observations at or below each bound of [`INGEST_BUCKETS`].
    buckets: [AtomicU64; INGEST_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        for (bound, bucket) in INGEST_BUCKETS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// Process-wide metrics.
#[derive(Default)]
pub struct Metrics {
    upload_bytes: AtomicU64,
    instances_stored: AtomicU64,
    /// Failed instances by DICOM failure reason.
    instances_failed: Mutex<BTreeMap<u16, u64>>,
    ingest: Histogram,
    /// HTTP requests by (route template, method, status).
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
}

impl Metrics {
    pub fn upload_bytes(&self, bytes: usize) {
        self.upload_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn instance_stored(&self) {
        self.instances_stored.fetch_add(1, Ordering::Relaxed);
    }

    pub fn instance_failed(&self, reason: u16) {
        *lock(&self.instances_failed).entry(reason).or_default() += 1;
    }

    /// One STOW-RS request took `duration` from its headers to its answer.
    pub fn ingest_done(&self, duration: Duration) {
        self.ingest.observe(duration);
    }

    /// Logs the access line of a request that ended and counts it under `route` (a route
    /// template or another bounded label, never a raw path). A STOW-RS request adds the body
    /// bytes it actually received (chunked bodies have no Content-Length) and its instances
    /// stored and failed.
    pub fn finished(
        &self,
        route: String,
        method: String,
        status: u16,
        bytes_in: Option<u64>,
        store: Option<StoreCounts>,
        started: Instant,
    ) {
        tracing::info!(
            target: "dicomwebserver::access",
            method = %method,
            route = %route,
            status,
            bytes_in,
            stored = store.map(|s| s.stored),
            failed = store.map(|s| s.failed),
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
        *lock(&self.requests)
            .entry((route, method, status))
            .or_default() += 1;
    }

    /// The exposition text. `uploads_in_flight` and `livelock_warnings` are read from their
    /// owners at scrape time.
    pub fn render(&self, uploads_in_flight: usize, livelock_warnings: u64) -> String {
        let help = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        let mut out = String::new();
        help(
            &mut out,
            "dicomweb_uploads_in_flight",
            "gauge",
            "STOW-RS requests being received.",
        );
        let _ = writeln!(out, "dicomweb_uploads_in_flight {uploads_in_flight}");
        help(
            &mut out,
            "dicomweb_upload_bytes_total",
            "counter",
            "Request body bytes received by STOW-RS.",
        );
        let _ = writeln!(
            out,
            "dicomweb_upload_bytes_total {}",
            self.upload_bytes.load(Ordering::Relaxed)
        );
        help(
            &mut out,
            "dicomweb_instances_stored_total",
            "counter",
            "Instances stored (durable and indexed) by STOW-RS.",
        );
        let _ = writeln!(
            out,
            "dicomweb_instances_stored_total {}",
            self.instances_stored.load(Ordering::Relaxed)
        );
        help(
            &mut out,
            "dicomweb_instances_failed_total",
            "counter",
            "Instances or parts that failed, by DICOM failure reason.",
        );
        for (reason, count) in lock(&self.instances_failed).iter() {
            let _ = writeln!(
                out,
                "dicomweb_instances_failed_total{{reason=\"{reason:#06X}\"}} {count}"
            );
        }
        help(
            &mut out,
            "dicomweb_ingest_duration_seconds",
            "histogram",
            "Duration of STOW-RS requests, from headers to answer.",
        );
        for (bound, bucket) in INGEST_BUCKETS.iter().zip(&self.ingest.buckets) {
            let _ = writeln!(
                out,
                "dicomweb_ingest_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.ingest.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "dicomweb_ingest_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.ingest.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "dicomweb_ingest_duration_seconds_sum {sum}");
        let _ = writeln!(out, "dicomweb_ingest_duration_seconds_count {count}");
        help(
            &mut out,
            "dicomweb_livelock_warnings_total",
            "counter",
            "ensure_available waits reported by the livelock watchdog.",
        );
        let _ = writeln!(out, "dicomweb_livelock_warnings_total {livelock_warnings}");
        help(
            &mut out,
            "dicomweb_http_requests_total",
            "counter",
            "HTTP requests by route template, method and status.",
        );
        for ((route, method, status), count) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "dicomweb_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {count}",
                escape_label(route)
            );
        }
        out
    }
}

/// A label value with `\`, `"` and newlines escaped (exposition format).
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// What a STOW-RS handler tells the access log, as a response extension.
#[derive(Debug, Clone, Copy)]
pub struct StoreCounts {
    /// Body bytes received.
    pub bytes_in: u64,
    pub stored: usize,
    pub failed: usize,
}

/// The middleware: counts every request under its route template (bounded label values:
/// `/dicomweb/studies/{study}`, never the UIDs), or `unmatched`.
pub async fn count_requests(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |path| path.as_str().to_string());
    let method = request.method().as_str().to_string();
    let bytes_in = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let started = Instant::now();
    let response = next.run(request).await;
    let store = response.extensions().get::<StoreCounts>().copied();
    metrics.finished(
        route,
        method,
        response.status().as_u16(),
        store.map(|s| s.bytes_in).or(bytes_in),
        store,
        started,
    );
    response
}
