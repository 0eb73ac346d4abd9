//! CORS (Fetch standard) for browser viewers served from another origin, such as OHIF: the
//! configured origins may call every route, preflight requests are answered here.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::metrics::Metrics;

/// Headers a page may read from responses (QIDO paging warnings among them).
const EXPOSED: &str = "Content-Type, Content-Length, Content-Location, Warning";
/// How long a browser may cache a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

/// The origins allowed to call the server (`*` for any).
#[derive(Debug, Clone, Default)]
pub struct Origins(pub Vec<String>);

/// What the middleware needs: the origins, and the metrics that count answered preflights.
pub struct Cors {
    pub origins: Origins,
    pub metrics: Arc<Metrics>,
}

impl Origins {
    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if allowed.
    fn allow(&self, origin: &str) -> Option<HeaderValue> {
        if self.0.iter().any(|allowed| allowed == "*") {
            return Some(HeaderValue::from_static("*"));
        }
        self.0
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
            .then(|| HeaderValue::from_str(origin).ok())
            .flatten()
    }
}

/// The middleware: answers preflights and marks responses to allowed origins.
pub async fn cors(State(cors): State<Arc<Cors>>, request: Request, next: Next) -> Response {
    let origins = &cors.origins;
    let started = std::time::Instant::now();
    let allowed = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
        .and_then(|origin| origins.allow(origin));
    let Some(allow_origin) = allowed else {
        let mut response = next.run(request).await;
        if !origins.0.is_empty() {
            // The answer depends on Origin: a shared cache must not hand this one (without
            // the CORS headers) to a page of an allowed origin.
            response
                .headers_mut()
                .append(header::VARY, HeaderValue::from_static("Origin"));
        }
        return response;
    };
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let requested_headers = request
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned();
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            requested_headers
                .unwrap_or_else(|| HeaderValue::from_static("Accept, Content-Type, Authorization")),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(PREFLIGHT_MAX_AGE),
        );
        // Answered here, before routing: logged and counted under one label.
        cors.metrics.finished(
            "preflight".into(),
            Method::OPTIONS.to_string(),
            response.status().as_u16(),
            None,
            None,
            started,
        );
        response
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED),
    );
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    response
}
