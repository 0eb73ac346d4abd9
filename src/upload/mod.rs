//! `dicomwebserver stow`: uploads DICOM files and folders to any STOW-RS server.
//!
//! The paths are walked and each file's first bytes tell whether it is DICOM Part 10 (its name
//! does not matter). Files are grouped into batches, one STOW-RS request each, streamed from
//! disk in chunks; several batches are sent at once. Requests that fail in transit or get an
//! answer that says "try again" (408, 429, 5xx) are sent again after a pause. Each file's
//! outcome comes from the server's Store Instances Response, matched by SOP Instance UID.

mod http;
mod progress;
mod response;
mod scan;
mod summary;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use tokio::sync::Semaphore;

pub use progress::ProgressMode;

use self::http::{Reply, RequestSpec, Target};
use self::progress::Progress;
use self::response::FileOutcome;
use self::scan::{Candidate, Probe};
use self::summary::Summary;

/// Longest pause between two tries of a request.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Arguments of `dicomwebserver stow`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct StowArgs {
    /// Files and folders to upload (folders are walked; DICOM is recognised by content).
    #[arg(required = true, value_name = "PATHS")]
    pub paths: Vec<PathBuf>,

    /// The server's DICOMweb root (`/studies` is appended) or its STOW-RS URL itself
    /// (ending in `/studies` or `/studies/{StudyInstanceUID}`).
    #[arg(
        long,
        env = "DICOMWEB_STOW_URL",
        default_value = "http://127.0.0.1:5000/dicomweb"
    )]
    pub url: String,

    /// Most instances per request.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub batch: usize,

    /// Most bytes of files per request (a larger file is sent alone).
    #[arg(long, default_value_t = 256 * 1024 * 1024, value_name = "BYTES")]
    pub batch_bytes: u64,

    /// Requests sent at once.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub parallel: usize,

    /// Times a request is sent again after a transient failure (connection error, 408,
    /// 429, 500, 502, 503, 504), pausing 1 s, 2 s, 4 s... or as long as Retry-After says.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub retries: u32,

    /// Seconds a request may go without sending a byte or getting its response.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub timeout_secs: u64,

    /// Progress display on stderr: a bar on a terminal, plain lines otherwise (`auto`).
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,

    /// File holding a bearer token sent as `Authorization: Bearer ...`.
    #[arg(long, env = "DICOMWEB_STOW_TOKEN_FILE", value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// File holding `user:password` for HTTP basic authentication.
    #[arg(long, env = "DICOMWEB_STOW_BASIC_AUTH_FILE", value_name = "PATH")]
    pub basic_auth_file: Option<PathBuf>,
}

/// One file to send and what its meta group names.
#[derive(Debug, Clone)]
struct Upload {
    file: Candidate,
    sop_instance: Option<String>,
}

/// Runs the upload; the exit code is 0 when every DICOM file was stored (or was a repeat of
/// another file given), 1 when anything failed or no DICOM file was found, 2 for bad
/// arguments, 130 when interrupted (after the summary of what was answered so far).
pub async fn run(args: StowArgs) -> std::process::ExitCode {
    match upload(args).await {
        Ok(Finish::Complete) => std::process::ExitCode::SUCCESS,
        Ok(Finish::Failures) => std::process::ExitCode::from(1),
        Ok(Finish::Interrupted) => std::process::ExitCode::from(130),
        Err(message) => {
            eprintln!("dicomwebserver stow: {message}");
            std::process::ExitCode::from(2)
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finish {
    /// Every DICOM file stored.
    Complete,
    /// Something was not stored.
    Failures,
    /// Stopped by Ctrl-C or SIGINT.
    Interrupted,
}

/// The whole run.
async fn upload(args: StowArgs) -> Result<Finish, String> {
    let target = Target::parse(&args.url)?;
    if args.batch == 0 || args.parallel == 0 {
        return Err("--batch and --parallel must be at least 1".into());
    }
    let authorization = credentials(&args)?;
    let endpoint = format!("http://{}{}", target.authority, target.path);

    let paths = args.paths.clone();
    let (uploads, mut summary) = tokio::task::spawn_blocking(move || find(&paths))
        .await
        .map_err(|error| format!("scanning failed: {error}"))??;
    if uploads.is_empty() {
        print!("{}", summary.render(&endpoint, Duration::ZERO));
        eprintln!("dicomwebserver stow: no DICOM files found");
        return Ok(Finish::Failures);
    }
    let total_bytes = uploads.iter().map(|u| u.file.size).sum();
    eprintln!(
        "uploading {} ({}) to {endpoint}",
        files(uploads.len(), "DICOM file"),
        progress::format_bytes(total_bytes)
    );

    let progress = Arc::new(Progress::new(uploads.len() as u64, total_bytes));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let reporter = tokio::spawn(progress::report(
        Arc::clone(&progress),
        args.progress,
        done_rx,
    ));
    let context = Arc::new(Context {
        target,
        authorization,
        args,
        progress: Arc::clone(&progress),
    });
    let batches = batches(uploads, context.args.batch, context.args.batch_bytes);
    let mut finished: Vec<Option<Vec<FileOutcome>>> = vec![None; batches.len()];
    let interrupted = tokio::select! {
        result = send_all(&context, &batches, &mut finished) => {
            result?;
            false
        }
        _ = tokio::signal::ctrl_c() => true,
    };
    let _ = done_tx.send(());
    let _ = reporter.await;
    if interrupted {
        eprintln!("dicomwebserver stow: interrupted; requests without an answer were abandoned");
    }

    // Files in the order they were found, whatever order the batches finished in.
    for (batch, outcomes) in batches.into_iter().zip(finished) {
        let outcomes = outcomes.unwrap_or_else(|| {
            batch
                .iter()
                .map(|_| {
                    FileOutcome::Failed(
                        "interrupted before the server answered (stored or not: upload again)"
                            .into(),
                    )
                })
                .collect()
        });
        for (upload, outcome) in batch.into_iter().zip(outcomes) {
            let Upload { file, sop_instance } = upload;
            match outcome {
                FileOutcome::Stored(warning) => {
                    if let Some(warning) = warning {
                        summary
                            .warnings
                            .push((file.path.clone(), warning.to_string()));
                    }
                    summary.stored.push((file.path, file.size));
                }
                FileOutcome::Conflict(reason) => {
                    summary
                        .conflicts
                        .push((file.path, file.size, sop_instance, reason.to_string()))
                }
                FileOutcome::Failed(reason) => {
                    summary
                        .failed
                        .push((file.path, file.size, sop_instance, reason))
                }
            }
        }
    }
    summary.failed.sort();
    print!("{}", summary.render(&endpoint, progress.started.elapsed()));
    Ok(if interrupted {
        Finish::Interrupted
    } else if summary.has_failures() {
        Finish::Failures
    } else {
        Finish::Complete
    })
}

/// Sends every batch, `--parallel` at a time, recording each batch's outcomes as it ends.
async fn send_all(
    context: &Arc<Context>,
    batches: &[Vec<Upload>],
    finished: &mut [Option<Vec<FileOutcome>>],
) -> Result<(), String> {
    let permits = Arc::new(Semaphore::new(context.args.parallel));
    let mut tasks = tokio::task::JoinSet::new();
    let mut record = |joined: Result<(usize, Vec<FileOutcome>), tokio::task::JoinError>| {
        let (index, outcomes) =
            joined.map_err(|error| format!("an upload task failed: {error}"))?;
        if let Some(slot) = finished.get_mut(index) {
            *slot = Some(outcomes);
        }
        Ok::<(), String>(())
    };
    for (index, batch) in batches.iter().enumerate() {
        let permit = loop {
            // Outcomes are recorded as batches end, so an interruption loses none of them.
            tokio::select! {
                permit = Arc::clone(&permits).acquire_owned() => {
                    break permit.map_err(|_| "the request limiter closed".to_string())?
                }
                Some(joined) = tasks.join_next() => record(joined)?,
            }
        };
        let context = Arc::clone(context);
        let batch = batch.clone();
        tasks.spawn(async move {
            let outcomes = send_batch(&context, &batch).await;
            drop(permit);
            (index, outcomes)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        record(joined)?;
    }
    Ok(())
}

/// The `Authorization` header value from the credential files, if any.
fn credentials(args: &StowArgs) -> Result<Option<String>, String> {
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path)
            .map(|text| text.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|error| format!("cannot read {}: {error}", path.display()))
    };
    match (&args.token_file, &args.basic_auth_file) {
        (Some(_), Some(_)) => Err("give --token-file or --basic-auth-file, not both".into()),
        (Some(path), None) => Ok(Some(format!("Bearer {}", read(path)?))),
        (None, Some(path)) => {
            let credentials = read(path)?;
            if !credentials.contains(':') {
                return Err(format!("{} must hold user:password", path.display()));
            }
            Ok(Some(http::basic_authorization(&credentials)))
        }
        (None, None) => Ok(None),
    }
}

/// Walks and probes the paths: the DICOM files to send, and a summary holding what will not
/// be sent (not DICOM, unreadable, unreadable meta group, repeated SOP Instance UIDs).
fn find(paths: &[PathBuf]) -> Result<(Vec<Upload>, Summary), String> {
    let mut unreadable = Vec::new();
    let candidates = scan::walk(paths, &mut unreadable)?;
    let mut summary = Summary::default();
    for (path, error) in unreadable {
        summary
            .failed
            .push((path, 0, None, format!("cannot read: {error}")));
    }
    let mut uploads = Vec::new();
    let mut first_with_uid: HashMap<String, PathBuf> = HashMap::new();
    for file in candidates {
        match scan::probe(&file.path) {
            Err(error) => {
                summary
                    .failed
                    .push((file.path, file.size, None, format!("cannot read: {error}")))
            }
            Ok(Probe::NotDicom) => summary.skipped.push(file.path),
            Ok(Probe::BadMeta(reason)) => {
                summary
                    .failed
                    .push((file.path, file.size, None, format!("not sent: {reason}")))
            }
            Ok(Probe::Dicom { sop_instance, .. }) => {
                if let Some(uid) = &sop_instance {
                    if let Some(first) = first_with_uid.get(uid) {
                        summary
                            .repeated
                            .push((file.path, file.size, uid.clone(), first.clone()));
                        continue;
                    }
                    first_with_uid.insert(uid.clone(), file.path.clone());
                }
                uploads.push(Upload { file, sop_instance });
            }
        }
    }
    Ok((uploads, summary))
}

/// Groups uploads in order into batches of at most `count` files and `bytes` bytes (a file
/// larger than `bytes` goes alone).
fn batches(uploads: Vec<Upload>, count: usize, bytes: u64) -> Vec<Vec<Upload>> {
    let mut batches: Vec<Vec<Upload>> = Vec::new();
    let mut size = 0u64;
    for upload in uploads {
        let full = batches.last().is_none_or(|batch| {
            batch.len() >= count || size.saturating_add(upload.file.size) > bytes
        });
        if full {
            batches.push(Vec::new());
            size = 0;
        }
        size = size.saturating_add(upload.file.size);
        if let Some(batch) = batches.last_mut() {
            batch.push(upload);
        }
    }
    batches
}

/// What every batch task shares.
struct Context {
    target: Target,
    authorization: Option<String>,
    args: StowArgs,
    progress: Arc<Progress>,
}

/// Sends one batch, trying again after transient failures; one outcome per file.
async fn send_batch(context: &Context, batch: &[Upload]) -> Vec<FileOutcome> {
    let files: Vec<Candidate> = batch.iter().map(|u| u.file.clone()).collect();
    let uids: Vec<Option<String>> = batch.iter().map(|u| u.sop_instance.clone()).collect();
    let progress = &context.progress;
    let spec = RequestSpec {
        target: &context.target,
        authorization: context.authorization.as_deref(),
        idle_timeout: Duration::from_secs(context.args.timeout_secs.max(1)),
        sent: &progress.bytes_sent,
    };
    let mut attempt = 0;
    let outcomes = loop {
        let before = progress.bytes_sent.load(Ordering::Relaxed);
        let reply = http::send(&spec, &files).await;
        let (problem, pause) = match reply {
            Reply::Response {
                status,
                body,
                retry_after,
            } => {
                if !is_transient(status) {
                    break response::outcomes(status, &body, &uids);
                }
                let reason = status.canonical_reason().unwrap_or("");
                (format!("HTTP {} {reason}", status.as_u16()), retry_after)
            }
            Reply::Transport(message) => (message, None),
            Reply::File(message) => {
                break files
                    .iter()
                    .map(|_| FileOutcome::Failed(format!("not sent: {message}")))
                    .collect();
            }
        };
        let resent = progress.bytes_sent.load(Ordering::Relaxed) - before;
        progress.bytes_resent.fetch_add(resent, Ordering::Relaxed);
        if attempt >= context.args.retries {
            let tries = attempt + 1;
            break files
                .iter()
                .map(|_| FileOutcome::Failed(format!("{problem} (after {tries} tries)")))
                .collect();
        }
        let pause = pause
            .unwrap_or(Duration::from_secs(1 << attempt.min(6)))
            .min(MAX_BACKOFF);
        progress.println(&format!(
            "retrying a request of {} in {} s: {problem}",
            self::files(files.len(), "file"),
            pause.as_secs()
        ));
        tokio::time::sleep(pause).await;
        attempt += 1;
    };
    for (file, outcome) in files.iter().zip(&outcomes) {
        match outcome {
            FileOutcome::Failed(reason) => {
                progress.println(&format!("failed: {}: {reason}", file.path.display()))
            }
            FileOutcome::Conflict(reason) => {
                progress.println(&format!("duplicate: {}: {reason}", file.path.display()))
            }
            FileOutcome::Stored(_) => {}
        }
    }
    progress
        .files_done
        .fetch_add(files.len() as u64, Ordering::Relaxed);
    outcomes
}

/// `1 file`, `2 files`.
fn files(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// Answers that say the same request may succeed later.
fn is_transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(size: u64) -> Upload {
        Upload {
            file: Candidate {
                path: PathBuf::from(format!("f{size}")),
                size,
            },
            sop_instance: None,
        }
    }

    #[test]
    fn batches_respect_count_and_bytes() {
        let sizes = |batches: Vec<Vec<Upload>>| -> Vec<Vec<u64>> {
            batches
                .iter()
                .map(|b| b.iter().map(|u| u.file.size).collect())
                .collect()
        };
        let uploads = (1..=5).map(upload).collect();
        assert_eq!(
            sizes(batches(uploads, 2, 100)),
            vec![vec![1, 2], vec![3, 4], vec![5]]
        );
        let uploads = vec![upload(60), upload(50), upload(200), upload(10)];
        assert_eq!(
            sizes(batches(uploads, 10, 100)),
            vec![vec![60], vec![50], vec![200], vec![10]]
        );
        assert!(batches(Vec::new(), 3, 10).is_empty());
    }

    #[test]
    fn transient_statuses() {
        assert!(is_transient(StatusCode::SERVICE_UNAVAILABLE));
        assert!(is_transient(StatusCode::TOO_MANY_REQUESTS));
        assert!(!is_transient(StatusCode::CONFLICT));
        assert!(!is_transient(StatusCode::UNAUTHORIZED));
    }
}
