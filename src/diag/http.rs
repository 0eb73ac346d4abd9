//! The opt-in debug listener: the stack dump and the sampler over HTTP, for platforms or
//! containers where signals are not available. Bound to loopback unless told otherwise.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use super::dump::{dump, sample, try_start};
use super::signal::DumpSettings;
use super::uploads::Uploads;

/// Longest sampler run accepted over HTTP.
const MAX_SAMPLE_DURATION: Duration = Duration::from_secs(60);

#[derive(Clone)]
struct DebugState {
    settings: DumpSettings,
    uploads: Arc<Uploads>,
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn run_blocking(job: impl FnOnce() -> String + Send + 'static) -> Response {
    let Some(slot) = try_start() else {
        return text(
            StatusCode::TOO_MANY_REQUESTS,
            "a stack dump is already running; try again when it is done\n".into(),
        );
    };
    let result = tokio::task::spawn_blocking(move || {
        let text = job();
        drop(slot);
        text
    })
    .await;
    match result {
        Ok(body) => text(StatusCode::OK, body),
        Err(error) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the dump failed: {error}\n"),
        ),
    }
}

/// `GET /debug/dump`.
async fn get_dump(State(state): State<DebugState>) -> Response {
    let uploads = state.uploads.clone();
    run_blocking(move || dump(Some(&uploads), "HTTP /debug/dump")).await
}

/// `GET /debug/sample?interval_ms=200&duration_ms=2000`.
async fn get_sample(
    State(state): State<DebugState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let number = |name: &str, default: u64| -> Result<u64, String> {
        match params.get(name) {
            None => Ok(default),
            Some(value) => value
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{name} must be a positive number of milliseconds\n")),
        }
    };
    let default_interval = state
        .settings
        .sample_interval
        .map_or(200, |interval| interval.as_millis() as u64);
    let default_duration = state.settings.sample_duration.as_millis() as u64;
    let (interval, duration) = match (
        number("interval_ms", default_interval),
        number("duration_ms", default_duration),
    ) {
        (Ok(interval), Ok(duration)) => (
            Duration::from_millis(interval),
            Duration::from_millis(duration),
        ),
        (Err(message), _) | (_, Err(message)) => return text(StatusCode::BAD_REQUEST, message),
    };
    if duration > MAX_SAMPLE_DURATION || interval > duration {
        return text(
            StatusCode::BAD_REQUEST,
            "duration_ms must be at most 60000 and at least interval_ms\n".into(),
        );
    }
    let uploads = state.uploads.clone();
    run_blocking(move || sample(Some(&uploads), interval, duration, "HTTP /debug/sample")).await
}

/// Serves the debug routes on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    settings: DumpSettings,
    uploads: Arc<Uploads>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let router = Router::new()
        .route("/debug/dump", get(get_dump))
        .route("/debug/sample", get(get_sample))
        .with_state(DebugState { settings, uploads });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
