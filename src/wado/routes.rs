//! WADO-RS routes: instances (study, series, instance) as `multipart/related;
//! type="application/dicom"`, metadata as DICOM JSON, frames and bulk data as
//! `multipart/related; type="application/octet-stream"`. Files are read on a blocking thread
//! and streamed through a bounded channel.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::body::{channel, BodyWriter, CHUNK};
use super::multipart::{close, close_part, new_boundary, open_part};
use super::negotiate::{choose, instance_converts, wanted, Output};
use crate::dicom::json::BULK_URI_PREFIX;
use crate::dicom::syntax::{swap_unit, EXPLICIT_VR_LE};
use crate::dicom::tokenizer::{Step, Token, Tokenizer};
use crate::dicom::transcode::to_explicit_le;
use crate::dicom::validator::is_valid_uid;
use crate::index::layout::{FrameLayout, Layout};
use crate::index::{IndexError, Scope, StoredInstance};
use crate::refusal::{refuse, Refusal};
use crate::server::{base_url, AppState};
use crate::store::open_stored;
use crate::stow::content_type::accepted;
use dicom_core::VR;
use flate2::read::DeflateDecoder;

const DICOM: &str = "application/dicom";
const OCTET_STREAM: &str = "application/octet-stream";

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    refuse(status, message).into_response()
}

fn index_error(error: IndexError) -> Refusal {
    refuse(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
}

fn accept(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())
}

/// Checks the UIDs of a route; `Err` is the 400 response.
fn check_uids(uids: &[&str]) -> Result<(), Refusal> {
    match uids.iter().find(|uid| !is_valid_uid(uid)) {
        Some(bad) => Err(refuse(
            StatusCode::BAD_REQUEST,
            format!("{bad:?} is not a valid UID"),
        )),
        None => Ok(()),
    }
}

async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, IndexError> + Send + 'static,
) -> Result<T, Refusal> {
    match tokio::task::spawn_blocking(job).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(index_error(error)),
        Err(error) => Err(refuse(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())),
    }
}

fn idle_timeout(app: &AppState) -> Duration {
    Duration::from_secs(app.config.idle_timeout_secs)
}

fn multipart_response(boundary: &str, payload: &str, body: Body) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            format!("multipart/related; type=\"{payload}\"; boundary={boundary}"),
        )],
        body,
    )
        .into_response()
}

/// Copies `len` bytes from `start` of `file` (all of it with `None`) into `out`.
fn copy_range(
    file: &mut File,
    start: u64,
    len: Option<u64>,
    out: &mut impl Write,
) -> io::Result<()> {
    file.seek(SeekFrom::Start(start))?;
    let mut buffer = vec![0u8; CHUNK];
    let mut left = len.unwrap_or(u64::MAX);
    while left > 0 {
        let want = buffer
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = file.read(&mut buffer[..want])?;
        if n == 0 {
            if len.is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the stored file is shorter than its index says",
                ));
            }
            break;
        }
        out.write_all(&buffer[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Writes the 128-byte preamble and `DICM` prefix when the stored file lacks them (some
/// clients send instances that open with the meta group; they are stored as received), so
/// every `application/dicom` part is a PS3.10 file.
fn write_missing_preamble(file: &mut File, out: &mut impl Write) -> io::Result<()> {
    let mut head = [0u8; 132];
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    if filled == head.len() && &head[128..132] == b"DICM" {
        return Ok(());
    }
    out.write_all(&[0u8; 128])?;
    if !head[..filled].starts_with(b"DICM") {
        out.write_all(b"DICM")?;
    }
    Ok(())
}

/// Runs `produce` on a blocking thread, streaming what it writes as the response body.
fn stream(
    idle: Duration,
    produce: impl FnOnce(&mut BodyWriter) -> io::Result<()> + Send + 'static,
) -> Body {
    let (body, mut writer) = channel(idle);
    tokio::task::spawn_blocking(move || {
        let result = produce(&mut writer).and_then(|()| writer.flush());
        if let Err(error) = result {
            if error.kind() != io::ErrorKind::BrokenPipe {
                tracing::warn!(%error, "retrieve failed while streaming");
            }
            writer.fail(error);
        }
    });
    Body::new(body)
}

pub async fn study(
    State(app): State<Arc<AppState>>,
    Path(study): Path<String>,
    headers: HeaderMap,
) -> Response {
    retrieve(app, headers, study, None, None).await
}

pub async fn series(
    State(app): State<Arc<AppState>>,
    Path((study, series)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    retrieve(app, headers, study, Some(series), None).await
}

pub async fn instance(
    State(app): State<Arc<AppState>>,
    Path((study, series, instance)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    retrieve(app, headers, study, Some(series), Some(instance)).await
}

async fn find(
    app: &Arc<AppState>,
    study: String,
    series: Option<String>,
    instance: Option<String>,
) -> Result<Vec<StoredInstance>, Refusal> {
    let mut uids = vec![study.as_str()];
    uids.extend(series.as_deref());
    uids.extend(instance.as_deref());
    check_uids(&uids)?;
    let index = app.index.clone();
    let found = blocking(move || {
        index.instances(Scope {
            study: &study,
            series: series.as_deref(),
            instance: instance.as_deref(),
        })
    })
    .await?;
    if found.is_empty() {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "no such instances are stored",
        ));
    }
    Ok(found)
}

async fn retrieve(
    app: Arc<AppState>,
    headers: HeaderMap,
    study: String,
    series: Option<String>,
    instance: Option<String>,
) -> Response {
    let Some(wanted) = wanted(accept(&headers), DICOM) else {
        return text(
            StatusCode::NOT_ACCEPTABLE,
            "instances are sent as multipart/related; type=\"application/dicom\"",
        );
    };
    let found = match find(&app, study, series, instance).await {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let mut plan = Vec::with_capacity(found.len());
    for stored in found {
        let converts = instance_converts(&stored.transfer_syntax);
        match choose(&wanted, &stored.transfer_syntax, converts) {
            Some(output) => plan.push((stored, output)),
            None => {
                return text(
                    StatusCode::NOT_ACCEPTABLE,
                    format!(
                        "instance {} is stored in transfer syntax {}, which cannot be sent in the requested one",
                        stored.sop_uid, stored.transfer_syntax
                    ),
                )
            }
        }
    }
    let root = app.store.root().to_path_buf();
    let boundary = new_boundary();
    let part_boundary = boundary.clone();
    let body = stream(idle_timeout(&app), move |out| {
        for (stored, output) in plan {
            let mut file = open_stored(&root, &stored.path)?;
            match output {
                Output::AsStored => {
                    open_part(
                        out,
                        &part_boundary,
                        &format!("{DICOM}; transfer-syntax={}", stored.transfer_syntax),
                    )?;
                    write_missing_preamble(&mut file, out)?;
                    copy_range(&mut file, 0, None, out)?;
                }
                Output::ExplicitLittle => {
                    open_part(
                        out,
                        &part_boundary,
                        &format!("{DICOM}; transfer-syntax={EXPLICIT_VR_LE}"),
                    )?;
                    to_explicit_le(BufReader::with_capacity(CHUNK, file), &mut *out)
                        .map_err(|error| io::Error::other(error.to_string()))?;
                }
            }
            close_part(out)?;
        }
        close(out, &part_boundary)
    });
    multipart_response(&boundary, DICOM, body)
}

/// `{base}/studies/{s}/series/{se}/instances/{i}`.
fn instance_url(base: &str, study: &str, series: &str, sop: &str) -> String {
    format!("{base}/studies/{study}/series/{series}/instances/{sop}")
}

/// Rewrites bulk data markers of one instance's JSON into absolute URLs.
fn absolutize(json: &str, instance_url: &str) -> String {
    json.replace(
        &format!("\"{BULK_URI_PREFIX}"),
        &format!("\"{instance_url}/bulk/"),
    )
}

pub async fn study_metadata(
    State(app): State<Arc<AppState>>,
    Path(study): Path<String>,
    headers: HeaderMap,
) -> Response {
    metadata(app, headers, study, None, None).await
}

pub async fn series_metadata(
    State(app): State<Arc<AppState>>,
    Path((study, series)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    metadata(app, headers, study, Some(series), None).await
}

pub async fn instance_metadata(
    State(app): State<Arc<AppState>>,
    Path((study, series, instance)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    metadata(app, headers, study, Some(series), Some(instance)).await
}

fn accepts_json(headers: &HeaderMap) -> bool {
    accept(headers).is_none_or(|value| {
        accepted(value).iter().any(|media| {
            matches!(
                media.essence.as_str(),
                "application/dicom+json" | "application/json" | "*/*" | "application/*"
            )
        })
    })
}

async fn metadata(
    app: Arc<AppState>,
    headers: HeaderMap,
    study: String,
    series: Option<String>,
    instance: Option<String>,
) -> Response {
    if !accepts_json(&headers) {
        return text(
            StatusCode::NOT_ACCEPTABLE,
            "metadata is available as application/dicom+json",
        );
    }
    let mut uids = vec![study.as_str()];
    uids.extend(series.as_deref());
    uids.extend(instance.as_deref());
    if let Err(refusal) = check_uids(&uids) {
        return refusal.into_response();
    }
    let base = base_url(&app, &headers);
    let index = app.index.clone();
    let rows = match blocking(move || {
        let rows = index.metadata(Scope {
            study: &study,
            series: series.as_deref(),
            instance: instance.as_deref(),
        })?;
        let mut out =
            String::with_capacity(rows.iter().map(|r| r.json.len() + 1).sum::<usize>() + 2);
        out.push('[');
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let url = instance_url(&base, &study, &row.series_uid, &row.sop_uid);
            out.push_str(&absolutize(&row.json, &url));
        }
        out.push(']');
        Ok((rows.len(), out))
    })
    .await
    {
        Ok(rows) => rows,
        Err(refusal) => return refusal.into_response(),
    };
    if rows.0 == 0 {
        return text(StatusCode::NOT_FOUND, "no such instances are stored");
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/dicom+json")],
        rows.1,
    )
        .into_response()
}

/// Frame numbers from `1,2,3` (1-based, in request order).
fn frame_numbers(list: &str) -> Option<Vec<u64>> {
    let numbers: Option<Vec<u64>> = list
        .split([',', '%'])
        .filter(|part| !part.is_empty() && *part != "2C")
        .map(|part| part.trim().parse::<u64>().ok().filter(|n| *n >= 1))
        .collect();
    numbers.filter(|n| !n.is_empty())
}

fn swap_in_place(data: &mut [u8], unit: usize) {
    if unit > 1 {
        for chunk in data.chunks_exact_mut(unit) {
            chunk.reverse();
        }
    }
}

/// Where the recorded positions of an instance point: into its file, or, for a deflated data
/// set, into the inflated stream that follows the meta group.
enum Source {
    Plain(File),
    Deflated { path: PathBuf, dataset_start: u64 },
}

impl Source {
    /// The stored file at `relative` under `root` (symbolic links refused).
    fn open(root: &std::path::Path, relative: &str, deflated: bool) -> io::Result<Source> {
        let file = open_stored(root, relative)?;
        if !deflated {
            return Ok(Source::Plain(file));
        }
        let path = root.join(relative);
        Ok(Source::Deflated {
            dataset_start: dataset_start(&path)?,
            path,
        })
    }

    /// Writes `length` bytes at stream position `offset`, swapping units of `swap` bytes.
    fn write_range(
        &mut self,
        offset: u64,
        length: u64,
        swap: usize,
        out: &mut impl Write,
    ) -> io::Result<()> {
        match self {
            Source::Plain(file) => {
                file.seek(SeekFrom::Start(offset))?;
                copy_swapped(&mut Read::by_ref(file).take(length), length, swap, out)
            }
            Source::Deflated {
                path,
                dataset_start,
            } => {
                // Positions count inflated bytes from the data set's start: inflate up to it.
                let mut file = File::open(&*path)?;
                file.seek(SeekFrom::Start(*dataset_start))?;
                let mut inflated = DeflateDecoder::new(BufReader::with_capacity(CHUNK, file));
                let skip = offset.saturating_sub(*dataset_start);
                io::copy(&mut Read::by_ref(&mut inflated).take(skip), &mut io::sink())?;
                copy_swapped(&mut inflated.take(length), length, swap, out)
            }
        }
    }
}

/// Copies exactly `length` bytes from `input`, reversing each unit of `swap` bytes.
fn copy_swapped(
    input: &mut impl Read,
    length: u64,
    swap: usize,
    out: &mut impl Write,
) -> io::Result<()> {
    // A multiple of every swap unit, so no unit straddles two reads.
    let mut buffer = vec![0u8; CHUNK];
    let mut copied = 0u64;
    loop {
        let mut filled = 0;
        while filled < buffer.len() {
            match input.read(&mut buffer[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        if filled == 0 {
            break;
        }
        swap_in_place(&mut buffer[..filled], swap);
        out.write_all(&buffer[..filled])?;
        copied += filled as u64;
    }
    if copied != length {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the stored file is shorter than its index says",
        ));
    }
    Ok(())
}

/// Where the data set of the Part 10 file at `path` starts (after its meta group).
fn dataset_start(path: &std::path::Path) -> io::Result<u64> {
    let mut head = Vec::new();
    File::open(path)?.take(64 * 1024).read_to_end(&mut head)?;
    let mut tokenizer = Tokenizer::new(1);
    let mut at = 0usize;
    loop {
        match tokenizer.next(&head[at..], true) {
            Ok(Step::Token {
                token: Token::MetaEnd { .. },
                ..
            }) => return Ok(tokenizer.position()),
            Ok(Step::Token { consumed, .. }) => at += consumed,
            Ok(Step::NeedMore(_)) | Err(_) => {
                return Err(io::Error::other(
                    "cannot find the end of the file meta group",
                ))
            }
        }
    }
}

/// The first number of attribute `tag` in an instance's DICOM JSON.
fn json_number(json: &Value, tag: &str) -> Option<u64> {
    let value = json.get(tag)?.get("Value")?.get(0)?;
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

/// One frame's bytes: (file offset, length) ranges.
fn frame_ranges(
    layout: &FrameLayout,
    frame: u64,
    n_frames: u64,
) -> Result<Vec<(u64, u64)>, String> {
    match layout {
        FrameLayout::Native {
            offset,
            frame_length,
            count,
        } => {
            if frame > *count {
                return Err(format!(
                    "frame {frame} does not exist: the instance has {count}"
                ));
            }
            Ok(vec![(offset + (frame - 1) * frame_length, *frame_length)])
        }
        FrameLayout::Encapsulated {
            fragments,
            basic_offset_table,
        } => {
            if frame > n_frames {
                return Err(format!(
                    "frame {frame} does not exist: the instance has {n_frames}"
                ));
            }
            let index = (frame - 1) as usize;
            if basic_offset_table.len() as u64 == n_frames && n_frames > 1 {
                // Offsets count from the first fragment's item header (8 bytes before its value).
                let Some(first) = fragments.first() else {
                    return Err("the pixel data has no fragments".into());
                };
                let base = first.0.saturating_sub(8);
                let start = basic_offset_table[index];
                let end = basic_offset_table
                    .get(index + 1)
                    .copied()
                    .unwrap_or(u64::MAX);
                return Ok(fragments
                    .iter()
                    .filter(|(offset, _)| {
                        let relative = offset.saturating_sub(8) - base;
                        relative >= start && relative < end
                    })
                    .copied()
                    .collect());
            }
            if fragments.len() as u64 == n_frames {
                return Ok(vec![fragments[index]]);
            }
            if n_frames == 1 {
                return Ok(fragments.clone());
            }
            Err(format!(
                "{} fragments cannot be mapped to {n_frames} frames without an offset table",
                fragments.len()
            ))
        }
    }
}

/// Looks up one instance, its layout and its JSON.
async fn instance_layout(
    app: &Arc<AppState>,
    study: String,
    series: String,
    instance: String,
) -> Result<(StoredInstance, Layout, Value), Refusal> {
    let found = find(app, study, Some(series), Some(instance)).await?;
    let Some(stored) = found.into_iter().next() else {
        return Err(refuse(StatusCode::NOT_FOUND, "no such instance is stored"));
    };
    let index = app.index.clone();
    let (s, se, i) = (
        stored.study_uid.clone(),
        stored.series_uid.clone(),
        stored.sop_uid.clone(),
    );
    let (layout, json) = blocking(move || {
        let layout = index.layout(&s, &se, &i)?;
        let json = index
            .metadata(Scope {
                study: &s,
                series: Some(&se),
                instance: Some(&i),
            })?
            .into_iter()
            .next()
            .map(|row| row.json);
        Ok((layout, json))
    })
    .await?;
    let layout = layout.as_deref().and_then(Layout::parse).ok_or_else(|| {
        refuse(
            StatusCode::NOT_FOUND,
            "the instance's layout is not recorded",
        )
    })?;
    let json = json
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    Ok((stored, layout, json))
}

pub async fn frames(
    State(app): State<Arc<AppState>>,
    Path((study, series, instance, list)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(numbers) = frame_numbers(&list) else {
        return text(
            StatusCode::BAD_REQUEST,
            format!("{list:?} is not a list of frame numbers (1, 2, ...)"),
        );
    };
    let Some(wanted) = wanted(accept(&headers), OCTET_STREAM) else {
        return text(
            StatusCode::NOT_ACCEPTABLE,
            "frames are sent as multipart/related; type=\"application/octet-stream\"",
        );
    };
    let (stored, layout, json) = match instance_layout(&app, study, series, instance).await {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(frame_layout) = layout.frames.clone() else {
        return text(
            StatusCode::NOT_FOUND,
            "the instance has no pixel data frames",
        );
    };
    let native = matches!(frame_layout, FrameLayout::Native { .. });
    let Some(output) = choose(&wanted, &stored.transfer_syntax, native) else {
        return text(
            StatusCode::NOT_ACCEPTABLE,
            format!(
                "the frames are stored in transfer syntax {}, which cannot be sent in the requested one",
                stored.transfer_syntax
            ),
        );
    };
    let n_frames = json_number(&json, "00280008").unwrap_or(1).max(1);
    let bits = json_number(&json, "00280100").unwrap_or(8);
    let mut ranges = Vec::with_capacity(numbers.len());
    for frame in numbers {
        match frame_ranges(&frame_layout, frame, n_frames) {
            Ok(frame_ranges) => ranges.push(frame_ranges),
            Err(message) => return text(StatusCode::NOT_FOUND, message),
        }
    }
    let (syntax, swap) = match output {
        Output::ExplicitLittle => (
            EXPLICIT_VR_LE.to_string(),
            if layout.big_endian {
                (bits / 8).max(1) as usize
            } else {
                1
            },
        ),
        Output::AsStored => (stored.transfer_syntax.clone(), 1),
    };
    let root = app.store.root().to_path_buf();
    let boundary = new_boundary();
    let part_boundary = boundary.clone();
    let deflated = layout.deflated;
    let body = stream(idle_timeout(&app), move |out| {
        let mut source = Source::open(&root, &stored.path, deflated)?;
        for frame in ranges {
            open_part(
                out,
                &part_boundary,
                &format!("{OCTET_STREAM}; transfer-syntax={syntax}"),
            )?;
            for (offset, length) in frame {
                source.write_range(offset, length, swap, out)?;
            }
            close_part(out)?;
        }
        close(out, &part_boundary)
    });
    multipart_response(&boundary, OCTET_STREAM, body)
}

pub async fn bulk(
    State(app): State<Arc<AppState>>,
    Path((study, series, instance, path)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(wanted) = wanted(accept(&headers), OCTET_STREAM) else {
        return text(
            StatusCode::NOT_ACCEPTABLE,
            "bulk data is sent as multipart/related; type=\"application/octet-stream\"",
        );
    };
    let (stored, layout, _) = match instance_layout(&app, study, series, instance).await {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let Some((_, vr, offset, length)) = layout.bulk.iter().find(|(p, ..)| *p == path).cloned()
    else {
        return text(StatusCode::NOT_FOUND, format!("no bulk data at {path:?}"));
    };
    let swap = match choose(&wanted, &stored.transfer_syntax, true) {
        Some(Output::ExplicitLittle) if layout.big_endian => vr.parse::<VR>().map_or(1, swap_unit),
        Some(_) => 1,
        None => {
            return text(
                StatusCode::NOT_ACCEPTABLE,
                "the bulk data cannot be sent in the requested transfer syntax",
            )
        }
    };
    let root = app.store.root().to_path_buf();
    let boundary = new_boundary();
    let part_boundary = boundary.clone();
    let deflated = layout.deflated;
    let body = stream(idle_timeout(&app), move |out| {
        let mut source = Source::open(&root, &stored.path, deflated)?;
        open_part(out, &part_boundary, OCTET_STREAM)?;
        source.write_range(offset, length, swap, out)?;
        close_part(out)?;
        close(out, &part_boundary)
    });
    multipart_response(&boundary, OCTET_STREAM, body)
}
