//! One part of a STOW-RS request, from its buffer to a committed file: read and validate it,
//! write it to a temp file, sync, and commit it under its UIDs.

use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use super::outcome::{reason, Failure, Stored};
use crate::diag::tasks::{tasks, TaskInfo};
use crate::diag::uploads::{PartPhase, PartProgress};
use crate::dicom::json::{JsonListener, JsonOptions};
use crate::dicom::tokenizer::TokenErrorKind;
use crate::dicom::{read_part, InstanceMeta, Part10Writer, ReadError, ReadOptions, Validator};
use crate::index::InstanceRecord;
use crate::server::AppState;
use crate::store::{InstanceKey, TempInstance};
use crate::stream::{StreamError, TrackableReadBuffer};

/// Consumed bytes handed to the writer in one batch when the reader is not waiting anyway.
const WRITE_BATCH_BYTES: usize = 256 * 1024;

/// What a part task produced: an instance synced in its temp file and ready to be committed
/// with the rest of the request, or a failure.
pub enum PartResult {
    Prepared(Box<Prepared>),
    Failed(Failure),
}

/// An instance read, validated and synced under `tmp/`, not yet visible.
pub struct Prepared {
    pub temp: TempInstance,
    pub stored: Stored,
    pub record: InstanceRecord,
}

/// Spawns the task that stores the part arriving in `buffer`. The permit bounds the parts of
/// one request in flight; it is held until the part is committed.
pub fn spawn(
    app: Arc<AppState>,
    buffer: TrackableReadBuffer,
    progress: Arc<PartProgress>,
    route_study: Option<String>,
    part_index: usize,
    request_task: u64,
    permit: OwnedSemaphorePermit,
) -> tokio::task::JoinHandle<PartResult> {
    let span = tracing::info_span!("part", index = part_index);
    let task = tasks().register(
        format!("part {part_index}: DICOM reader"),
        Some(request_task),
    );
    let info = task.info().clone();
    let tracked = task.instrument(
        async move {
            // However this task ends (a panic included), the pump must not wait on a buffer
            // nobody reads.
            let _release = AbortOnDrop(buffer.clone());
            info.set_state("reading: parsing and streaming to the writer");
            let result = store_part(&app, &buffer, &progress, &info, route_study).await;
            drop(permit);
            match &result {
                PartResult::Prepared(prepared) => {
                    progress.set_phase(PartPhase::Committing);
                    tracing::debug!(sop_instance = %prepared.stored.sop_instance, "prepared");
                }
                PartResult::Failed(failure) => {
                    progress.set_phase(PartPhase::Failed);
                    tracing::debug!(
                        reason = format_args!("{:#06X}", failure.reason),
                        comment = %failure.comment,
                        "part failed"
                    );
                }
            }
            result
        }
        .instrument(span),
    );
    tokio::spawn(tracked)
}

/// Aborts a part's buffer when the part task ends; a no-op for a buffer read to its end.
struct AbortOnDrop(TrackableReadBuffer);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort("the part's reader has ended");
    }
}

async fn store_part(
    app: &Arc<AppState>,
    buffer: &TrackableReadBuffer,
    progress: &PartProgress,
    task: &TaskInfo,
    route_study: Option<String>,
) -> PartResult {
    let (temp, file) = match app.store.create_temp() {
        Ok(created) => created,
        Err(error) => {
            buffer.abort("no temp file");
            return PartResult::Failed(Failure::other(
                reason::OUT_OF_RESOURCES,
                format!("cannot create a temp file: {error}"),
            ));
        }
    };
    let mut writer = Part10Writer::start(file, Some(task.id));
    let mut validator = Validator::new(route_study);
    let mut json = JsonListener::new(JsonOptions::default());
    let options = ReadOptions {
        max_depth: app.config.max_depth,
        flush_bytes: WRITE_BATCH_BYTES,
    };
    let read = read_part(
        buffer,
        &mut [&mut validator, &mut json],
        Some(&mut writer),
        options,
    )
    .await;
    let meta = validator.meta().clone();
    if let Err(error) = read {
        // The producer discards the rest of this part; the temp file goes with `temp`.
        buffer.abort(error.to_string());
        writer.cancel();
        return PartResult::Failed(failure_for(&meta, &error));
    }
    progress.set_phase(PartPhase::Syncing);
    task.set_state("waiting for the writer to sync the file");
    let size = match writer.finish().await {
        Ok(size) => size,
        Err(error) => {
            return PartResult::Failed(with_uids(
                &meta,
                reason::OUT_OF_RESOURCES,
                format!("cannot write the instance: {error}"),
            ))
        }
    };
    // The validator guarantees these UIDs exist and are valid once the read succeeded.
    let (Some(study), Some(series), Some(instance), Some(class)) = (
        meta.study.clone(),
        meta.series.clone(),
        meta.sop_instance.clone(),
        meta.sop_class.clone(),
    ) else {
        return PartResult::Failed(with_uids(
            &meta,
            reason::INVALID_DATASET,
            "required UIDs are missing",
        ));
    };
    let key = InstanceKey {
        study: &study,
        series: &series,
        instance: &instance,
    };
    let Some(path) = app.store.relative_path(key) else {
        return PartResult::Failed(with_uids(&meta, reason::INVALID_DATASET, "invalid UIDs"));
    };
    let record = InstanceRecord::new(&meta, json.into_result(), path, size);
    task.set_state("prepared: waiting for the request's group commit");
    PartResult::Prepared(Box::new(Prepared {
        temp,
        stored: Stored {
            sop_class: class,
            sop_instance: instance,
            study,
            series,
        },
        record,
    }))
}

fn with_uids(meta: &InstanceMeta, reason: u16, comment: impl Into<String>) -> Failure {
    Failure {
        sop_class: meta.best_sop_class().map(str::to_string),
        sop_instance: meta.best_sop_instance().map(str::to_string),
        reason,
        comment: comment.into(),
    }
}

/// Maps a read error to its DICOM failure reason.
fn failure_for(meta: &InstanceMeta, error: &ReadError) -> Failure {
    let code = match error {
        ReadError::Token(token) => match token.kind {
            TokenErrorKind::UnsupportedTransferSyntax(_) => reason::TRANSFER_SYNTAX_NOT_SUPPORTED,
            _ => reason::CANNOT_UNDERSTAND,
        },
        ReadError::Rejected(rejection) => rejection.reason,
        ReadError::Stream(StreamError::Aborted(_) | StreamError::Eof { .. }) => {
            reason::CANNOT_UNDERSTAND
        }
        ReadError::Write(_) => reason::OUT_OF_RESOURCES,
        ReadError::Inflate(_) => reason::CANNOT_UNDERSTAND,
    };
    with_uids(meta, code, error.to_string())
}
