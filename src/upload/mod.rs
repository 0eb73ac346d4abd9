//! `dicomwebserver stow`: uploads DICOM files and folders to any STOW-RS server.
//!
//! The paths are walked and each file's first bytes tell whether it is DICOM Part 10 (its name
//! does not matter). Files are grouped into batches, one STOW-RS request each, streamed from
//! disk in chunks; several batches are sent at once. Requests that fail in transit or get an
//! answer that says "try again" (408, 429, 5xx) are sent again after a pause. Each file's
//! outcome comes from the server's Store Instances Response, matched by SOP Instance UID.

mod batch;
mod body;
mod http;
mod progress;
mod response;
mod scan;
mod summary;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::header::HeaderValue;

pub use progress::ProgressMode;

use self::batch::{batches, files, send_all, Context};
use self::http::Target;
use self::progress::Progress;
use self::response::FileOutcome;
use self::scan::{Candidate, Probe};
use self::summary::{Row, Summary};

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
                FileOutcome::Conflict(reason) => summary.conflicts.push(Row::new(
                    file.path,
                    file.size,
                    sop_instance,
                    reason.to_string(),
                )),
                FileOutcome::Failed(reason) => {
                    summary
                        .failed
                        .push(Row::new(file.path, file.size, sop_instance, reason))
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

/// The `Authorization` header value from the credential files, if any.
fn credentials(args: &StowArgs) -> Result<Option<HeaderValue>, String> {
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path)
            .map(|text| text.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|error| format!("cannot read {}: {error}", path.display()))
    };
    let (value, path) = match (&args.token_file, &args.basic_auth_file) {
        (Some(_), Some(_)) => return Err("give --token-file or --basic-auth-file, not both".into()),
        (Some(path), None) => (format!("Bearer {}", read(path)?), path),
        (None, Some(path)) => {
            let credentials = read(path)?;
            if !credentials.contains(':') {
                return Err(format!("{} must hold user:password", path.display()));
            }
            (http::basic_authorization(&credentials), path)
        }
        (None, None) => return Ok(None),
    };
    let mut value = HeaderValue::from_str(&value).map_err(|_| {
        format!(
            "{} holds characters not allowed in an HTTP header (control characters, line breaks)",
            path.display()
        )
    })?;
    value.set_sensitive(true);
    Ok(Some(value))
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
            .push(Row::new(path, 0, None, format!("cannot read: {error}")));
    }
    let mut uploads = Vec::new();
    let mut first_with_uid: HashMap<String, PathBuf> = HashMap::new();
    for file in candidates {
        match scan::probe(&file.path) {
            Err(error) => summary.failed.push(Row::new(
                file.path,
                file.size,
                None,
                format!("cannot read: {error}"),
            )),
            Ok(Probe::NotDicom) => summary.skipped.push(file.path),
            Ok(Probe::BadMeta(reason)) => summary.failed.push(Row::new(
                file.path,
                file.size,
                None,
                format!("not sent: {reason}"),
            )),
            Ok(Probe::Dicom { sop_instance }) => {
                if let Some(uid) = &sop_instance {
                    if let Some(first) = first_with_uid.get(uid) {
                        summary.repeated.push(Row::new(
                            file.path,
                            file.size,
                            Some(uid.clone()),
                            format!("same SOP Instance UID as {} (not sent)", first.display()),
                        ));
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
