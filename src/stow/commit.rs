//! The group commit of one STOW-RS request: every prepared instance (synced in `tmp/`) becomes
//! visible in one step per request, with the index kept consistent through crashes:
//!
//! 1. the index records the batch as pending (one transaction, durable);
//! 2. each file is linked under its UIDs (or found already stored, or in conflict);
//! 3. the directories that gained entries are synced;
//! 4. the index publishes the stored instances and closes the batch (one transaction).
//!
//! A crash between 1 and 4 leaves a pending batch; at startup its linked files are removed,
//! since none of them was acknowledged.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::outcome::{reason, Failure, PartOutcome, Stored};
use super::part::Prepared;
use crate::index::InstanceRecord;
use crate::server::AppState;
use crate::store::{sync_dirs, CommitOutcome, InstanceKey};

/// A part in request order: prepared for the commit, or already decided.
pub enum Ready {
    Prepared(Box<Prepared>),
    Done(PartOutcome),
}

fn failed(stored: &Stored, code: u16, comment: String) -> PartOutcome {
    PartOutcome::Failed(Failure {
        sop_class: Some(stored.sop_class.clone()),
        sop_instance: Some(stored.sop_instance.clone()),
        reason: code,
        comment,
    })
}

/// Counts a group commit in [`AppState::commits_in_flight`] until its blocking thread is done.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Commits the prepared parts of request `batch`; returns every part's outcome in order.
pub async fn commit(app: &Arc<AppState>, batch: u64, parts: Vec<Ready>) -> Vec<PartOutcome> {
    if !parts.iter().any(|part| matches!(part, Ready::Prepared(_))) {
        return parts
            .into_iter()
            .filter_map(|part| match part {
                Ready::Done(outcome) => Some(outcome),
                Ready::Prepared(_) => None,
            })
            .collect();
    }
    let app = app.clone();
    app.commits_in_flight.fetch_add(1, Ordering::Relaxed);
    let in_flight = InFlight(app.commits_in_flight.clone());
    let joined = tokio::task::spawn_blocking(move || {
        let _in_flight = in_flight;
        commit_blocking(&app, batch, parts)
    })
    .await;
    match joined {
        Ok(outcomes) => outcomes,
        Err(error) => vec![PartOutcome::Failed(Failure::other(
            reason::PROCESSING_FAILURE,
            format!("committing the request failed: {error}"),
        ))],
    }
}

fn commit_blocking(app: &AppState, batch: u64, parts: Vec<Ready>) -> Vec<PartOutcome> {
    let records: Vec<InstanceRecord> = parts
        .iter()
        .filter_map(|part| match part {
            Ready::Prepared(prepared) => Some(prepared.record.clone()),
            Ready::Done(_) => None,
        })
        .collect();
    if let Err(error) = app.index.prepare(batch, &records) {
        return parts
            .into_iter()
            .map(|part| match part {
                Ready::Prepared(prepared) => failed(
                    &prepared.stored,
                    reason::OUT_OF_RESOURCES,
                    format!("cannot record the instance: {error}"),
                ),
                Ready::Done(outcome) => outcome,
            })
            .collect();
    }
    // Link each file; remember which parts are stored and must be published.
    let mut dirty_dirs = BTreeSet::new();
    let mut outcomes = Vec::with_capacity(parts.len());
    let mut published: Vec<(usize, InstanceRecord)> = Vec::new();
    for part in parts {
        let Ready::Prepared(prepared) = part else {
            if let Ready::Done(outcome) = part {
                outcomes.push(outcome);
            }
            continue;
        };
        let Prepared {
            temp,
            stored,
            record,
        } = *prepared;
        let key = InstanceKey {
            study: &stored.study,
            series: &stored.series,
            instance: &stored.sop_instance,
        };
        match app.store.commit(temp, key, &mut dirty_dirs) {
            Ok(CommitOutcome::Stored | CommitOutcome::AlreadyStored) => {
                published.push((outcomes.len(), record));
                outcomes.push(PartOutcome::Stored(stored));
            }
            Ok(CommitOutcome::Conflict) => outcomes.push(failed(
                &stored,
                reason::DUPLICATE_SOP_INSTANCE,
                "an instance with this SOP Instance UID and different content is already stored"
                    .into(),
            )),
            Err(error) => outcomes.push(failed(
                &stored,
                reason::OUT_OF_RESOURCES,
                format!("cannot store the instance: {error}"),
            )),
        }
    }
    let visible: Vec<InstanceRecord> = published.iter().map(|(_, r)| r.clone()).collect();
    let finished = sync_dirs(&dirty_dirs)
        .map_err(|error| format!("cannot sync the storage directories: {error}"))
        .and_then(|()| {
            app.index
                .publish(batch, &visible)
                .map_err(|error| error.to_string())
        });
    if let Err(error) = finished {
        // Not durable or not indexed: not acknowledged, and not left visible.
        if let Err(cleanup) = app.index.abandon(Some(batch), app.store.root()) {
            tracing::error!(%cleanup, batch, "cannot abandon a failed batch; the next start will");
        }
        for (position, _) in &published {
            if let PartOutcome::Stored(stored) = &outcomes[*position] {
                outcomes[*position] = failed(stored, reason::OUT_OF_RESOURCES, error.clone());
            }
        }
    }
    outcomes
}
