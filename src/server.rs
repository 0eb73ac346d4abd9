//! The HTTP server: shared state, the router, and graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;

use crate::auth::{guard, Credentials, Guard};
use crate::config::Config;
use crate::cors::{cors, Cors, Origins};
use crate::diag;
use crate::diag::signal::DumpSettings;
use crate::diag::uploads::Uploads;
use crate::diag::watchdog::watchdog;
use crate::index::sqlite::SqliteIndex;
use crate::index::Index;
use crate::metrics::{count_requests, Metrics};
use crate::qido::routes as qido;
use crate::store::FsStore;
use crate::stow::outcome::PartOutcome;
use crate::stow::routes;
use crate::wado::routes as wado;

/// State shared by every request.
pub struct AppState {
    pub config: Config,
    pub store: FsStore,
    /// What QIDO-RS searches and WADO-RS looks up; written by the STOW group commit.
    pub index: Arc<dyn Index>,
    /// Credentials and request limits checked before any route.
    pub guard: Arc<Guard>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Set when shutdown begins: readiness turns false while in-flight requests drain.
    pub draining: AtomicBool,
    /// The address the server listens on (for URLs when a request has no usable Host).
    pub local_addr: SocketAddr,
    /// Uploads in flight, for `/status` and the stack dump.
    pub uploads: Arc<Uploads>,
    /// Group commits running on blocking threads. A commit runs to its end even when the
    /// request's handler is gone (the client disconnected): until then storage has not
    /// settled, and shutdown waits for it.
    pub commits_in_flight: Arc<AtomicUsize>,
    started: Instant,
    counters: Counters,
}

/// Process-wide counters reported by `/status`.
#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    instances_stored: AtomicU64,
    instances_failed: AtomicU64,
}

impl AppState {
    /// A new request id (also counts requests).
    pub fn next_request_id(&self) -> u64 {
        self.counters.requests.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn count_outcomes(&self, outcomes: &[PartOutcome]) {
        for outcome in outcomes {
            match outcome {
                PartOutcome::Stored(_) => {
                    self.counters
                        .instances_stored
                        .fetch_add(1, Ordering::Relaxed);
                    self.metrics.instance_stored();
                }
                PartOutcome::Failed(failure) => {
                    self.counters
                        .instances_failed
                        .fetch_add(1, Ordering::Relaxed);
                    self.metrics.instance_failed(failure.reason);
                }
            }
        }
    }
}

/// The URL prefix of the DICOMweb routes as clients reach them, for Retrieve URLs and Bulk
/// Data URIs: `--public-url` when set, else `http://{Host}{prefix}`. A Host without a port
/// that names this machine by address or as `localhost` gets the listening port (some
/// clients, dicomweb-client among them, leave it out); other names are taken as given, as a
/// reverse proxy sends them.
pub fn base_url(app: &AppState, headers: &HeaderMap) -> String {
    if let Some(public) = &app.config.public_url {
        return public.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        });
    let host = match host {
        None => app.local_addr.to_string(),
        Some(host) => {
            let has_port = host.rsplit_once(':').is_some_and(|(name, port)| {
                !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(':')
            }) && !(host.starts_with('[') && host.ends_with(']'));
            let local = host == "localhost"
                || host
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok();
            if !has_port && local && app.local_addr.port() != 80 {
                format!("{host}:{}", app.local_addr.port())
            } else {
                host.to_string()
            }
        }
    };
    format!("http://{host}{}", app.config.server_path)
}

/// `GET {prefix}/metrics`: Prometheus text format.
async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    let text = app
        .metrics
        .render(app.uploads.count(), watchdog().reports_total());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `GET {prefix}/health/live`: the process answers.
async fn live() -> &'static str {
    "live\n"
}

/// `GET {prefix}/health/ready`: 200 while accepting work, 503 once shutdown has begun.
async fn ready(State(app): State<Arc<AppState>>) -> Response {
    if app.draining.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else {
        "ready\n".into_response()
    }
}

/// `GET {prefix}/status[?livelock][&detailed]`: readiness, counters and in-flight uploads;
/// `livelock` adds the watchdog's recent reports, `detailed` the pending waits.
async fn status(State(app): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let counters = &app.counters;
    let uploads: Vec<serde_json::Value> = app
        .uploads
        .list()
        .iter()
        .map(|upload| upload.to_json())
        .collect();
    let mut body = json!({
        "status": "ready",
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": app.started.elapsed().as_secs(),
        "uploadsInFlight": uploads.len(),
        "commitsInFlight": app.commits_in_flight.load(Ordering::Relaxed),
        "uploads": uploads,
        "counters": {
            "requests": counters.requests.load(Ordering::Relaxed),
            "instancesStored": counters.instances_stored.load(Ordering::Relaxed),
            "instancesFailed": counters.instances_failed.load(Ordering::Relaxed),
            "livelockReports": watchdog().reports().len(),
        },
    });
    if query_flag(&query, "livelock") {
        body["livelock"] = livelock_json(app.config.livelock_detect_ms);
    }
    if query_flag(&query, "detailed") {
        body["pendingWaits"] = watchdog()
            .pending()
            .iter()
            .map(|wait| {
                json!({
                    "requestId": wait.context.request_id,
                    "partIndex": wait.context.part_index,
                    "n": wait.n,
                    "pendingMs": u64::try_from(wait.age.as_millis()).unwrap_or(u64::MAX),
                    "polls": wait.polls,
                    "offset": wait.stream.offset,
                    "endOffset": wait.stream.end_offset,
                    "isComplete": wait.stream.is_complete,
                })
            })
            .collect();
    }
    Json(body).into_response()
}

/// Whether `name` is set in a query string: present bare, empty, `true` or `1`.
fn query_flag(query: &str, name: &str) -> bool {
    query.split('&').any(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        key == name && matches!(value, "" | "true" | "1")
    })
}

fn livelock_json(detect_ms: Option<u64>) -> serde_json::Value {
    let reports: Vec<serde_json::Value> = watchdog()
        .reports()
        .iter()
        .map(|report| {
            let time = report
                .time
                .duration_since(std::time::UNIX_EPOCH)
                .map(|since| since.as_millis())
                .unwrap_or_default();
            json!({
                "requestId": report.context.request_id,
                "partIndex": report.context.part_index,
                "n": report.n,
                "offset": report.stream.offset,
                "endOffset": report.stream.end_offset,
                "isComplete": report.stream.is_complete,
                "polls": report.polls,
                "pendingMs": report.pending_ms,
                "verdict": report.verdict.describe(),
                "stack": report.stack,
                "timeUnixMs": time,
            })
        })
        .collect();
    json!({
        "enabled": detect_ms.is_some(),
        "livelockDetectMs": detect_ms,
        "reports": reports,
    })
}

/// The router for `app`.
pub fn router(app: Arc<AppState>) -> Router {
    let prefix = app.config.server_path.clone();
    Router::new()
        .route(&format!("{prefix}/status"), get(status))
        .route(&format!("{prefix}/metrics"), get(metrics))
        .route(&format!("{prefix}/health/live"), get(live))
        .route(&format!("{prefix}/health/ready"), get(ready))
        .route(
            &format!("{prefix}/studies"),
            post(routes::store_any).get(qido::studies),
        )
        .route(
            &format!("{prefix}/studies/{{study}}"),
            post(routes::store_in_study).get(wado::study),
        )
        .route(
            &format!("{prefix}/studies/{{study}}/metadata"),
            get(wado::study_metadata),
        )
        .route(
            &format!("{prefix}/studies/{{study}}/series/{{series}}"),
            get(wado::series),
        )
        .route(
            &format!("{prefix}/studies/{{study}}/series/{{series}}/metadata"),
            get(wado::series_metadata),
        )
        .route(
            &format!("{prefix}/studies/{{study}}/series/{{series}}/instances/{{instance}}"),
            get(wado::instance),
        )
        .route(
            &format!("{prefix}/studies/{{study}}/series/{{series}}/instances/{{instance}}/metadata"),
            get(wado::instance_metadata),
        )
        .route(
            &format!("{prefix}/studies/{{study}}/series/{{series}}/instances/{{instance}}/frames/{{frames}}"),
            get(wado::frames),
        )
        .route(
            &format!("{prefix}/studies/{{study}}/series/{{series}}/instances/{{instance}}/bulk/{{*path}}"),
            get(wado::bulk),
        )
        .route(&format!("{prefix}/series"), get(qido::all_series))
        .route(&format!("{prefix}/instances"), get(qido::all_instances))
        .route(
            &format!("{prefix}/studies/{{study}}/series"),
            get(qido::study_series),
        )
        .route(
            &format!("{prefix}/studies/{{study}}/instances"),
            get(qido::study_instances),
        )
        .route(
            &format!("{prefix}/studies/{{study}}/series/{{series}}/instances"),
            get(qido::series_instances),
        )
        // Bodies stream through bounded buffers; their size is not limited here.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(app.guard.clone(), guard))
        .route_layer(axum::middleware::from_fn_with_state(
            app.metrics.clone(),
            count_requests,
        ))
        // CORS is outermost: preflights are answered before credentials are asked for.
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(Cors {
                origins: Origins(app.config.cors_allow_origins.clone()),
                metrics: app.metrics.clone(),
            }),
            cors,
        ))
        .with_state(app)
}

/// Serves on `listener` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let config = config.validate().map_err(io::Error::other)?;
    let root = config.storage_root();
    let store = FsStore::open(&root, config.allow_overwrite).map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("cannot open the storage root {}: {error}", root.display()),
        )
    })?;
    let index = SqliteIndex::open(&root).map_err(io::Error::other)?;
    let removed = index.abandon(None, &root).map_err(io::Error::other)?;
    if removed > 0 {
        tracing::warn!(
            removed,
            "removed instances of uploads interrupted before they were acknowledged"
        );
    }
    let credentials = Credentials::load(&config).map_err(io::Error::other)?;
    let guard = Arc::new(Guard {
        credentials,
        max_query_bytes: config.max_query_bytes,
    });
    let local_addr = listener.local_addr()?;
    let app = Arc::new(AppState {
        config,
        store,
        index: Arc::new(index),
        guard,
        metrics: Arc::new(Metrics::default()),
        draining: AtomicBool::new(false),
        local_addr,
        uploads: Arc::new(Uploads::default()),
        commits_in_flight: Arc::new(AtomicUsize::new(0)),
        started: Instant::now(),
        counters: Counters::default(),
    });
    let dump_settings = DumpSettings {
        enabled: app.config.stack_dump_enabled || app.config.stack_dump_sample_ms.is_some(),
        sample_interval: app.config.stack_dump_sample_ms.map(Duration::from_millis),
        sample_duration: Duration::from_millis(app.config.stack_dump_sample_duration_ms),
    };
    diag::signal::listen(dump_settings, app.uploads.clone())?;
    tracing::info!(addr = %local_addr, dir = %root.display(), "listening");
    println!("listening on http://{local_addr}");
    // The main `listening on` line comes first: scripts wait for it.
    let debug_stop = Arc::new(tokio::sync::Notify::new());
    if let Some(debug_addr) = app.config.debug_addr().map_err(io::Error::other)? {
        let debug_listener = TcpListener::bind(debug_addr).await?;
        let debug_local = debug_listener.local_addr()?;
        if !debug_local.ip().is_loopback() {
            tracing::warn!(addr = %debug_local, "the debug listener is not on loopback: anyone who can reach it can dump the process");
        }
        tracing::info!(addr = %debug_local, "debug listening");
        println!("debug listening on http://{debug_local}");
        let stop = debug_stop.clone();
        let uploads = app.uploads.clone();
        tokio::spawn(async move {
            let stopped = async move { stop.notified().await };
            if let Err(error) =
                diag::http::serve(debug_listener, dump_settings, uploads, stopped).await
            {
                tracing::error!(%error, "the debug listener failed");
            }
        });
    }
    let drain_timeout = Duration::from_secs(app.config.shutdown_timeout_secs);
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let draining = app.clone();
    let signal = async move {
        shutdown.await;
        draining.draining.store(true, Ordering::Relaxed);
        let _ = stopping_tx.send(());
    };
    let service = router(app.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let serve = axum::serve(listener, service).with_graceful_shutdown(signal);
    let deadline = async move {
        if stopping_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(drain_timeout).await;
    };
    let result = tokio::select! {
        served = serve => {
            // Requests are answered; commits of clients that left may still be running.
            let commits = app.commits_in_flight.clone();
            let settled = async move {
                while commits.load(Ordering::Relaxed) > 0 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            };
            if tokio::time::timeout(drain_timeout, settled).await.is_err() {
                tracing::warn!("shutdown deadline passed with group commits still running");
            }
            served
        }
        () = deadline => {
            let abandoned = app.uploads.count();
            tracing::warn!(abandoned, "shutdown deadline passed: abandoning in-flight uploads");
            if let Err(error) = app.store.sweep_temp() {
                tracing::warn!(%error, "cannot remove temp files of abandoned uploads");
            }
            Ok(())
        }
    };
    debug_stop.notify_one();
    result
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
