//! QIDO-RS routes: `GET {prefix}/studies`, `/series`, `/instances`, and the same under a study
//! or a series. Results are `application/dicom+json`; no match is 204 with an empty body; a
//! page that leaves more matches carries a `Warning: 299` header.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::params::{parse, Search};
use super::render::{render_row, Include};
use crate::index::{Level, Scope};
use crate::refusal::refuse;
use crate::server::{base_url, AppState};
use crate::stow::content_type::accepted;

type Pairs = Query<Vec<(String, String)>>;

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    refuse(status, message).into_response()
}

/// Whether the client accepts DICOM JSON (absent, `*/*`, JSON types).
fn accepts_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    accepted(accept).iter().any(|media| {
        matches!(
            media.essence.as_str(),
            "application/dicom+json" | "application/json" | "*/*" | "application/*"
        )
    })
}

pub async fn studies(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Pairs,
) -> Response {
    search(app, headers, Level::Study, None, None, q).await
}

pub async fn all_series(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Pairs,
) -> Response {
    search(app, headers, Level::Series, None, None, q).await
}

pub async fn study_series(
    State(app): State<Arc<AppState>>,
    Path(study): Path<String>,
    headers: HeaderMap,
    Query(q): Pairs,
) -> Response {
    search(app, headers, Level::Series, Some(study), None, q).await
}

pub async fn all_instances(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Pairs,
) -> Response {
    search(app, headers, Level::Instance, None, None, q).await
}

pub async fn study_instances(
    State(app): State<Arc<AppState>>,
    Path(study): Path<String>,
    headers: HeaderMap,
    Query(q): Pairs,
) -> Response {
    search(app, headers, Level::Instance, Some(study), None, q).await
}

pub async fn series_instances(
    State(app): State<Arc<AppState>>,
    Path((study, series)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Pairs,
) -> Response {
    search(app, headers, Level::Instance, Some(study), Some(series), q).await
}

async fn search(
    app: Arc<AppState>,
    headers: HeaderMap,
    level: Level,
    study: Option<String>,
    series: Option<String>,
    pairs: Vec<(String, String)>,
) -> Response {
    if !accepts_json(&headers) {
        return text(
            StatusCode::NOT_ACCEPTABLE,
            "search results are available as application/dicom+json only",
        );
    }
    let mut search: Search = match parse(level, &pairs) {
        Ok(search) => search,
        Err(bad) => return text(StatusCode::BAD_REQUEST, bad.0),
    };
    search.query.study_uid = study;
    search.query.series_uid = series;
    let base = base_url(&app, &headers);
    let index = app.index.clone();
    let Search {
        query,
        include,
        include_all,
        mut warnings,
    } = search;
    let found = tokio::task::spawn_blocking(move || {
        let result = index.query(&query)?;
        let mut objects = Vec::with_capacity(result.rows.len());
        for row in &result.rows {
            let wanted = if include_all {
                Include::All
            } else {
                Include::Tags(&include)
            };
            let sample = if include.is_empty() && !include_all {
                None
            } else {
                let scope = Scope {
                    study: &row.study_uid,
                    series: row.series_uid.as_deref().filter(|_| level >= Level::Series),
                    instance: row.sop_uid.as_deref().filter(|_| level == Level::Instance),
                };
                index
                    .sample_metadata(scope)?
                    .and_then(|json| serde_json::from_str::<Map<String, Value>>(&json).ok())
            };
            objects.push(render_row(&base, level, row, wanted, sample.as_ref()));
        }
        Ok::<_, crate::index::IndexError>((objects, result.more, query.offset))
    })
    .await;
    let (objects, more, offset) = match found {
        Ok(Ok(found)) => found,
        Ok(Err(error)) => return text(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        Err(error) => return text(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    };
    if more {
        warnings.push(format!(
            "There are more matches: ask again with offset={}",
            offset + objects.len()
        ));
    }
    let mut response = if objects.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/dicom+json")],
            Value::Array(objects).to_string(),
        )
            .into_response()
    };
    for warning in warnings {
        let escaped = warning.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(value) = HeaderValue::from_str(&format!("299 dicomwebserver \"{escaped}\"")) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}
