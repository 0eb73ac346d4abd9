//! `POST {prefix}/studies` and `POST {prefix}/studies/{study}`: negotiate the media types, pump
//! the body through the multipart splitter into per-part buffers, and answer with the Store
//! Instances Response once every part is durable or failed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::commit::{commit, Ready};
use super::content_type::{accepted, MediaType};
use super::multipart::{SplitEvent, Splitter};
use super::outcome::{reason, status_for, Failure, PartOutcome};
use super::part::{self, PartResult};
use super::response::StoreResponse;
use crate::diag::tasks::{tasks, TaskInfo};
use crate::diag::uploads::Upload;
use crate::diag::watchdog::WaitContext;
use crate::dicom::validator::is_valid_uid;
use crate::metrics::StoreCounts;
use crate::refusal::{refuse, Refusal};
use crate::server::{base_url, AppState};
use crate::stream::{BufferOptions, TrackableReadBuffer};

const DICOM: &str = "application/dicom";

/// Parts committed together: each prepared part holds an open file and its metadata until
/// its group commits, so this bounds both per request; large enough that the per-group cost
/// (two index transactions, directory syncs) is spread over many instances.
const COMMIT_GROUP: usize = 64;
/// Low bits of an index batch id that number the groups of one request.
const BATCH_ID_BITS: u32 = 24;
const DICOM_JSON: &str = "application/dicom+json";
const DICOM_XML: &str = "application/dicom+xml";

/// `POST {prefix}/studies`.
pub async fn store_any(
    State(app): State<Arc<AppState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    store_instances(app, client, None, headers, body).await
}

/// `POST {prefix}/studies/{study}`.
pub async fn store_in_study(
    State(app): State<Arc<AppState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path(study): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !is_valid_uid(&study) {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("{study:?} in the URL is not a valid Study Instance UID"),
        )
        .into_response();
    }
    store_instances(app, client, Some(study), headers, body).await
}

/// How the request body is framed.
enum BodyKind {
    Multipart { boundary: String },
    SinglePart,
}

/// Response encodings of the Store Instances Response.
#[derive(Clone, Copy)]
enum Format {
    Json,
    Xml,
}

fn response_format(headers: &HeaderMap) -> Format {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Format::Json;
    };
    for media in accepted(accept) {
        match media.essence.as_str() {
            DICOM_XML => return Format::Xml,
            DICOM_JSON | "application/json" | "*/*" | "application/*" => return Format::Json,
            _ => {}
        }
    }
    Format::Json
}

fn body_kind(headers: &HeaderMap) -> Result<BodyKind, Refusal> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type is missing: send multipart/related; type=\"application/dicom\"",
        ));
    };
    let media = value
        .to_str()
        .ok()
        .and_then(MediaType::parse)
        .ok_or_else(|| refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid Content-Type"))?;
    match media.essence.as_str() {
        "multipart/related" => {
            if let Some(kind) = media.param("type") {
                if !kind.eq_ignore_ascii_case(DICOM) {
                    return Err(refuse(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        format!("multipart/related type {kind:?} is not supported: only \"application/dicom\" parts are"),
                    ));
                }
            }
            match media.param("boundary") {
                Some(boundary) if !boundary.is_empty() && boundary.len() <= 200 => {
                    Ok(BodyKind::Multipart {
                        boundary: boundary.to_string(),
                    })
                }
                _ => Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "multipart/related Content-Type has no (valid) boundary parameter",
                )),
            }
        }
        DICOM => Ok(BodyKind::SinglePart),
        other => Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type {other:?} is not supported: send multipart/related; type=\"application/dicom\""),
        )),
    }
}

async fn store_instances(
    app: Arc<AppState>,
    client: SocketAddr,
    route_study: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let format = response_format(&headers);
    let kind = match body_kind(&headers) {
        Ok(kind) => kind,
        Err(refusal) => return refusal.into_response(),
    };
    let max_bytes = app.config.max_request_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(length) = declared.filter(|length| max_bytes > 0 && *length > max_bytes) {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body of {length} bytes is larger than the limit of {max_bytes} bytes"
            ),
        )
        .into_response();
    }
    let started = std::time::Instant::now();
    let request_id = app.next_request_id();
    let span = tracing::info_span!("stow", request = request_id, study = route_study.as_deref());
    let route = match &route_study {
        Some(study) => format!("POST {}/studies/{study}", app.config.server_path),
        None => format!("POST {}/studies", app.config.server_path),
    };
    let task = tasks().register(
        format!("request {request_id}: {route} (handler, body pump, multipart splitter)"),
        None,
    );
    let registration = app.uploads.start(request_id, Some(client), route);
    let request_task = task.info().clone();
    let (outcomes, oversized) = task
        .instrument(ingest(
            &app,
            &registration.upload,
            &request_task,
            body,
            kind,
            route_study,
        ))
        .instrument(span.clone())
        .await;
    app.count_outcomes(&outcomes);
    app.metrics.ingest_done(started.elapsed());
    let mut status = status_for(&outcomes);
    if oversized && !status.is_success() {
        // Nothing stored because the body outgrew the limit: say so (PS3.18 peers use 413).
        status = StatusCode::PAYLOAD_TOO_LARGE;
    }
    let stored = outcomes
        .iter()
        .filter(|o| matches!(o, PartOutcome::Stored(_)))
        .count();
    span.in_scope(|| {
        // One event per instance not stored, whatever stage refused it, with the full
        // comment (the response carries at most 64 characters of it).
        for (part, outcome) in outcomes.iter().enumerate() {
            if let PartOutcome::Failed(failure) = outcome {
                tracing::warn!(
                    part,
                    sop_class = failure.sop_class.as_deref().unwrap_or(""),
                    sop_instance = failure.sop_instance.as_deref().unwrap_or(""),
                    reason = format_args!("{:#06X}", failure.reason),
                    comment = %failure.comment,
                    "instance not stored"
                );
            }
        }
        tracing::info!(
            status = status.as_u16(),
            stored,
            failed = outcomes.len() - stored,
            "store request done"
        );
    });
    let base = base_url(&app, &headers);
    let response = StoreResponse::new(&base, &outcomes);
    let (content_type, text) = match format {
        Format::Json => (DICOM_JSON, response.to_json()),
        Format::Xml => (DICOM_XML, response.to_xml()),
    };
    let mut response = (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        text,
    )
        .into_response();
    response.extensions_mut().insert(StoreCounts {
        bytes_in: registration.upload.bytes_received(),
        stored,
        failed: outcomes.len() - stored,
    });
    response
}

/// A part in request order: still being stored, or already decided.
enum Slot {
    Task(JoinHandle<PartResult>),
    Done(PartOutcome),
}

/// State of one request's body pump.
struct Pump<'a> {
    app: &'a Arc<AppState>,
    upload: &'a Arc<Upload>,
    /// The request's tracked task (its state shows in dumps).
    task: &'a TaskInfo,
    route_study: Option<String>,
    parts_in_flight: Arc<Semaphore>,
    slots: Vec<Slot>,
    /// Buffer of the part now receiving bytes; `None` between parts or while a refused
    /// part's bytes are discarded.
    current: Option<TrackableReadBuffer>,
    /// Failures of the body itself (malformed multipart, truncated, unreadable).
    body_failures: Vec<Failure>,
    /// Outcomes of the parts already committed, in order.
    committed: Vec<PartOutcome>,
    /// Group commits done so far in this request (each is one index batch).
    commits: u64,
    /// Parts started so far, those past `--max-parts` included.
    parts_seen: usize,
}

impl Pump<'_> {
    /// Waits for the parts in `slots` and commits them as one group. Called between parts
    /// (every part in `slots` has all its bytes) and at the end.
    async fn commit_slots(&mut self) {
        if self.slots.is_empty() {
            return;
        }
        let mut ready = Vec::with_capacity(self.slots.len());
        for slot in self.slots.drain(..) {
            ready.push(match slot {
                Slot::Done(outcome) => Ready::Done(outcome),
                Slot::Task(task) => match task.await {
                    Ok(PartResult::Prepared(prepared)) => Ready::Prepared(prepared),
                    Ok(PartResult::Failed(failure)) => Ready::Done(PartOutcome::Failed(failure)),
                    Err(error) => Ready::Done(PartOutcome::Failed(Failure::other(
                        reason::PROCESSING_FAILURE,
                        format!("storing the part failed: {error}"),
                    ))),
                },
            });
        }
        self.task
            .set_state("group commit: recording, linking, syncing, publishing");
        self.commits += 1;
        let batch = (self.upload.id << BATCH_ID_BITS) | self.commits;
        let outcomes = commit(self.app, batch, ready).await;
        self.committed.extend(outcomes);
    }

    async fn start_part(&mut self, content_type: Option<MediaType>) {
        // Prepared parts hold an open file and their metadata until committed: commit them
        // in groups so that neither grows with the number of parts in a request.
        if self.slots.len() >= COMMIT_GROUP {
            self.commit_slots().await;
        }
        let index = self.parts_seen;
        self.parts_seen += 1;
        if index >= self.app.config.max_parts {
            // The first part over the limit reports it; the rest are skipped unread.
            if index == self.app.config.max_parts {
                self.body_failures.push(Failure::other(
                    reason::OUT_OF_RESOURCES,
                    format!(
                        "more than {} parts in one request: the rest were not stored",
                        self.app.config.max_parts
                    ),
                ));
            }
            self.current = None;
            return;
        }
        if let Some(media) = content_type {
            if media.essence != DICOM {
                self.current = None;
                self.slots
                    .push(Slot::Done(PartOutcome::Failed(Failure::other(
                        reason::CANNOT_UNDERSTAND,
                        format!(
                            "part {} is {}, not application/dicom",
                            index + 1,
                            media.essence
                        ),
                    ))));
                return;
            }
        }
        self.task
            .set_state("waiting for a free part slot (parts in flight at the limit)");
        let permit = match self.parts_in_flight.clone().acquire_owned().await {
            Ok(permit) => permit,
            Err(_) => {
                self.current = None;
                self.slots
                    .push(Slot::Done(PartOutcome::Failed(Failure::other(
                        reason::PROCESSING_FAILURE,
                        "the server is shutting down",
                    ))));
                return;
            }
        };
        let buffer = TrackableReadBuffer::with_options(BufferOptions {
            capacity: self.app.config.part_buffer_bytes,
            livelock_detect_ms: self.app.config.livelock_detect_ms,
            context: WaitContext {
                request_id: Some(self.upload.id),
                part_index: Some(index + 1),
            },
        });
        let progress = self.upload.add_part(index + 1, buffer.clone());
        let task = part::spawn(
            self.app.clone(),
            buffer.clone(),
            progress,
            self.route_study.clone(),
            index + 1,
            self.task.id,
            permit,
        );
        self.slots.push(Slot::Task(task));
        self.current = Some(buffer);
    }

    async fn data(&mut self, chunk: bytes::Bytes) {
        if let Some(buffer) = &self.current {
            self.task
                .set_state("pushing body bytes into the part buffer (waits while it is full)");
            if buffer.push(chunk).await.is_err() {
                // The part's reader gave up; the rest of the part is discarded.
                self.current = None;
            }
        }
    }

    fn end_part(&mut self) {
        if let Some(buffer) = self.current.take() {
            buffer.complete();
        }
    }

    /// The body cannot be read further. The part in progress reads what it received and then
    /// fails with `comment` (so it is reported with its UIDs); without one, the body's failure
    /// is reported on its own.
    fn fail_body(&mut self, comment: String) {
        match self.current.take() {
            Some(buffer) => buffer.truncate(comment),
            None => self
                .body_failures
                .push(Failure::other(reason::CANNOT_UNDERSTAND, comment)),
        }
    }

    async fn handle(&mut self, event: SplitEvent) {
        match event {
            SplitEvent::PartStart(headers) => self.start_part(headers.content_type()).await,
            SplitEvent::Data(chunk) => self.data(chunk).await,
            SplitEvent::PartEnd => self.end_part(),
            SplitEvent::Closed => {}
        }
    }
}

/// Pumps the body through the parts and collects every outcome, in part order, followed by
/// failures of the body itself. Stored outcomes are durable when this returns.
async fn ingest(
    app: &Arc<AppState>,
    upload: &Arc<Upload>,
    task: &TaskInfo,
    mut body: Body,
    kind: BodyKind,
    route_study: Option<String>,
) -> (Vec<PartOutcome>, bool) {
    let mut pump = Pump {
        app,
        upload,
        task,
        route_study,
        parts_in_flight: Arc::new(Semaphore::new(app.config.parts_in_flight)),
        slots: Vec::new(),
        current: None,
        body_failures: Vec::new(),
        committed: Vec::new(),
        commits: 0,
        parts_seen: 0,
    };
    let mut splitter = match &kind {
        BodyKind::Multipart { boundary } => {
            Some(Splitter::new(boundary, app.config.max_part_header_bytes))
        }
        BodyKind::SinglePart => {
            pump.start_part(None).await;
            None
        }
    };
    let mut events = Vec::new();
    // After a fatal body error the rest of the body is read and dropped, so the client
    // gets the response instead of a reset connection.
    let mut discarding = false;
    let mut body_error = None;
    let idle = Duration::from_secs(app.config.idle_timeout_secs);
    let max_bytes = app.config.max_request_bytes;
    let mut received = 0u64;
    let mut oversized = false;
    loop {
        task.set_state("waiting for body bytes from the client");
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => {
                body_error = Some(format!(
                    "no bytes from the client for {} s: upload abandoned",
                    idle.as_secs()
                ));
                break;
            }
            Ok(None) => break,
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(error))) => {
                body_error = Some(format!("the request body could not be read: {error}"));
                break;
            }
        };
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        upload.received(chunk.len());
        app.metrics.upload_bytes(chunk.len());
        received += chunk.len() as u64;
        if max_bytes > 0 && received > max_bytes {
            // Stop reading: the rest of an oversized body is not worth receiving.
            oversized = true;
            body_error = Some(format!(
                "the request is larger than the limit of {max_bytes} bytes"
            ));
            break;
        }
        if discarding {
            continue;
        }
        let Some(splitter) = splitter.as_mut() else {
            pump.data(chunk).await;
            continue;
        };
        let fed = splitter.feed(chunk, &mut events);
        for event in events.drain(..) {
            pump.handle(event).await;
        }
        if let Err(error) = fed {
            pump.fail_body(error.to_string());
            discarding = true;
        }
    }
    if let Some(error) = body_error {
        pump.fail_body(error);
    } else if !discarding {
        match splitter.as_mut() {
            Some(splitter) => {
                let finished = splitter.finish(&mut events);
                for event in events.drain(..) {
                    pump.handle(event).await;
                }
                if let Err(error) = finished {
                    pump.fail_body(error.to_string());
                }
            }
            None => pump.end_part(),
        }
    }
    task.set_state("body done: waiting for parts to be stored, then syncing directories");
    (finish(pump).await, oversized)
}

/// Waits for every part left, commits the prepared ones (see [`super::commit`]), and returns
/// all outcomes in part order, followed by failures of the body itself.
async fn finish(mut pump: Pump<'_>) -> Vec<PartOutcome> {
    pump.commit_slots().await;
    let mut outcomes = pump.committed;
    outcomes.extend(pump.body_failures.into_iter().map(PartOutcome::Failed));
    if outcomes.is_empty() {
        outcomes.push(PartOutcome::Failed(Failure::other(
            reason::CANNOT_UNDERSTAND,
            "the request contains no instances",
        )));
    }
    outcomes
}
