//! The HTTP server: shared state, the router, and graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::store::FsStore;
use crate::stow::outcome::PartOutcome;
use crate::stow::routes;

/// State shared by every request.
pub struct AppState {
    pub config: Config,
    pub store: FsStore,
    /// The address the server listens on (for URLs when a request has no usable Host).
    pub local_addr: SocketAddr,
    started: Instant,
    counters: Counters,
}

/// Process-wide counters reported by `/status`.
#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    uploads_in_flight: AtomicU64,
    instances_stored: AtomicU64,
    instances_failed: AtomicU64,
}

/// Decrements the in-flight upload count when the request ends, however it ends.
pub struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AppState {
    /// A new request id (also counts requests).
    pub fn next_request_id(&self) -> u64 {
        self.counters.requests.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts an upload as in flight until the guard drops.
    pub fn upload_started(&self) -> InFlight<'_> {
        self.counters
            .uploads_in_flight
            .fetch_add(1, Ordering::Relaxed);
        InFlight(&self.counters.uploads_in_flight)
    }

    pub fn count_outcomes(&self, outcomes: &[PartOutcome]) {
        for outcome in outcomes {
            let counter = match outcome {
                PartOutcome::Stored(_) => &self.counters.instances_stored,
                PartOutcome::Failed(_) => &self.counters.instances_failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `GET {prefix}/status`: readiness and counters.
async fn status(State(app): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let counters = &app.counters;
    Json(json!({
        "status": "ready",
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": app.started.elapsed().as_secs(),
        "uploadsInFlight": counters.uploads_in_flight.load(Ordering::Relaxed),
        "requests": counters.requests.load(Ordering::Relaxed),
        "instancesStored": counters.instances_stored.load(Ordering::Relaxed),
        "instancesFailed": counters.instances_failed.load(Ordering::Relaxed),
    }))
}

/// The router for `app`.
pub fn router(app: Arc<AppState>) -> Router {
    let prefix = app.config.server_path.clone();
    Router::new()
        .route(&format!("{prefix}/status"), get(status))
        .route(&format!("{prefix}/studies"), post(routes::store_any))
        .route(
            &format!("{prefix}/studies/{{study}}"),
            post(routes::store_in_study),
        )
        // Bodies stream through bounded buffers; their size is not limited here.
        .layer(DefaultBodyLimit::disable())
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
    let local_addr = listener.local_addr()?;
    let app = Arc::new(AppState {
        config,
        store,
        local_addr,
        started: Instant::now(),
        counters: Counters::default(),
    });
    tracing::info!(addr = %local_addr, dir = %root.display(), "listening");
    println!("listening on http://{local_addr}");
    let drain_timeout = Duration::from_secs(app.config.shutdown_timeout_secs);
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        let _ = stopping_tx.send(());
    };
    let serve = axum::serve(listener, router(app.clone())).with_graceful_shutdown(signal);
    let deadline = async move {
        if stopping_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(drain_timeout).await;
    };
    tokio::select! {
        served = serve => served,
        () = deadline => {
            let abandoned = app.counters.uploads_in_flight.load(Ordering::Relaxed);
            tracing::warn!(abandoned, "shutdown deadline passed: abandoning in-flight uploads");
            if let Err(error) = app.store.sweep_temp() {
                tracing::warn!(%error, "cannot remove temp files of abandoned uploads");
            }
            Ok(())
        }
    }
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
