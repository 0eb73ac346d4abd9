//! Sending the upload: files grouped into batches (one STOW-RS request each), `--parallel`
//! requests at once, each sent again after transient failures, with one outcome per file.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use tokio::sync::Semaphore;

use super::http::{self, Reply, RequestSpec, Target};
use super::progress::Progress;
use super::response::{self, FileOutcome};
use super::scan::Candidate;
use super::{StowArgs, Upload};

/// Longest pause between two tries of a request.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Groups uploads in order into batches of at most `count` files and `bytes` bytes (a file
/// larger than `bytes` goes alone).
pub fn batches(uploads: Vec<Upload>, count: usize, bytes: u64) -> Vec<Vec<Upload>> {
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
pub struct Context {
    pub target: Target,
    /// The `Authorization` header value, if credentials were given.
    pub authorization: Option<hyper::header::HeaderValue>,
    pub args: StowArgs,
    pub progress: Arc<Progress>,
}

/// Sends one batch, trying again after transient failures; one outcome per file.
async fn send_batch(context: &Context, batch: &[Upload]) -> Vec<FileOutcome> {
    let candidates: Vec<Candidate> = batch.iter().map(|u| u.file.clone()).collect();
    let uids: Vec<Option<String>> = batch.iter().map(|u| u.sop_instance.clone()).collect();
    let progress = &context.progress;
    let spec = RequestSpec {
        target: &context.target,
        authorization: context.authorization.as_ref(),
        idle_timeout: Duration::from_secs(context.args.timeout_secs.max(1)),
        total_sent: &progress.bytes_sent,
    };
    let mut attempt = 0;
    let outcomes = loop {
        let (reply, sent) = http::send(&spec, &candidates).await;
        let (problem, pause) = match reply {
            Reply::Response {
                status,
                body,
                retry_after,
            } => {
                if status == StatusCode::PAYLOAD_TOO_LARGE && batch.len() > 1 {
                    // Too large for this server: each half on its own (they count their
                    // files themselves).
                    progress.bytes_resent.fetch_add(sent, Ordering::Relaxed);
                    progress.println(&format!(
                        "the server refused a request of {} as too large: sending it in halves",
                        files(batch.len(), "file")
                    ));
                    let (first, second) = batch.split_at(batch.len() / 2);
                    let mut outcomes = Box::pin(send_batch(context, first)).await;
                    outcomes.extend(Box::pin(send_batch(context, second)).await);
                    return outcomes;
                }
                if !is_transient(status) {
                    break response::outcomes(status, &body, &uids);
                }
                let reason = status.canonical_reason().unwrap_or("");
                (format!("HTTP {} {reason}", status.as_u16()), retry_after)
            }
            Reply::Transport(message) => (message, None),
            Reply::File(message) => {
                break candidates
                    .iter()
                    .map(|_| FileOutcome::Failed(format!("not sent: {message}")))
                    .collect();
            }
        };
        // This try's bytes will be sent again: count them once.
        progress.bytes_resent.fetch_add(sent, Ordering::Relaxed);
        if attempt >= context.args.retries {
            let tries = attempt + 1;
            break candidates
                .iter()
                .map(|_| FileOutcome::Failed(format!("{problem} (after {tries} tries)")))
                .collect();
        }
        let pause = pause
            .unwrap_or(Duration::from_secs(1 << attempt.min(6)))
            .min(MAX_BACKOFF);
        progress.println(&format!(
            "retrying a request of {} in {} s: {problem}",
            files(candidates.len(), "file"),
            pause.as_secs()
        ));
        tokio::time::sleep(pause).await;
        attempt += 1;
    };
    for (file, outcome) in candidates.iter().zip(&outcomes) {
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
        .fetch_add(candidates.len() as u64, Ordering::Relaxed);
    outcomes
}

/// `1 file`, `2 files`.
pub fn files(count: usize, noun: &str) -> String {
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

/// Sends every batch, `--parallel` at a time, recording each batch's outcomes as it ends.
pub async fn send_all(
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

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
