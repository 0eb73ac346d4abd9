//! The registry of in-flight uploads: what `/status` and the stack dump show about each
//! request and each of its parts (bytes, offsets, phase, time since progress).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::stream::TrackableReadBuffer;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where a part is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PartPhase {
    /// The DICOM reader is parsing the part (and its bytes stream to the writer).
    Reading = 0,
    /// The part is read; its file is being synced.
    Syncing = 1,
    /// The file is being linked under its final name.
    Committing = 2,
    Stored = 3,
    Failed = 4,
}

impl PartPhase {
    fn from_u8(value: u8) -> PartPhase {
        match value {
            0 => PartPhase::Reading,
            1 => PartPhase::Syncing,
            2 => PartPhase::Committing,
            3 => PartPhase::Stored,
            _ => PartPhase::Failed,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PartPhase::Reading => "reading",
            PartPhase::Syncing => "syncing",
            PartPhase::Committing => "committing",
            PartPhase::Stored => "stored",
            PartPhase::Failed => "failed",
        }
    }
}

/// One part of an upload, shared by the pump, the part task and the registry.
pub struct PartProgress {
    pub index: usize,
    buffer: TrackableReadBuffer,
    phase: AtomicU8,
}

impl PartProgress {
    pub fn set_phase(&self, phase: PartPhase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    pub fn phase(&self) -> PartPhase {
        PartPhase::from_u8(self.phase.load(Ordering::Relaxed))
    }
}

/// One in-flight upload.
pub struct Upload {
    pub id: u64,
    pub client: Option<SocketAddr>,
    pub route: String,
    started: Instant,
    bytes_received: AtomicU64,
    /// Milliseconds after `started` when the last body bytes arrived.
    last_progress_ms: AtomicU64,
    parts: Mutex<Vec<Arc<PartProgress>>>,
}

impl Upload {
    /// Counts body bytes received.
    pub fn received(&self, bytes: usize) {
        self.bytes_received
            .fetch_add(bytes as u64, Ordering::Relaxed);
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_progress_ms.store(now, Ordering::Relaxed);
    }

    /// Adds a part fed by `buffer`.
    pub fn add_part(&self, index: usize, buffer: TrackableReadBuffer) -> Arc<PartProgress> {
        let part = Arc::new(PartProgress {
            index,
            buffer,
            phase: AtomicU8::new(PartPhase::Reading as u8),
        });
        lock(&self.parts).push(part.clone());
        part
    }

    pub fn bytes_received(&self) -> u64 {
        self.bytes_received.load(Ordering::Relaxed)
    }

    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }

    /// Time since body bytes last arrived (since the start if none did).
    pub fn since_progress(&self) -> Duration {
        let last = Duration::from_millis(self.last_progress_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    /// The upload as JSON for `/status`.
    pub fn to_json(&self) -> Value {
        let parts = lock(&self.parts);
        let part_states: Vec<Value> = parts
            .iter()
            .map(|part| {
                let stream = part.buffer.snapshot();
                json!({
                    "index": part.index,
                    "state": part.phase().name(),
                    "offset": stream.offset,
                    "endOffset": stream.end_offset,
                    "isComplete": stream.is_complete,
                    "waitingOn": stream.waiting_on(),
                })
            })
            .collect();
        json!({
            "id": self.id,
            "client": self.client.map(|addr| addr.to_string()),
            "route": self.route,
            "bytesReceived": self.bytes_received(),
            "parts": parts.len(),
            "ageSeconds": round_ms(self.age()),
            "secondsSinceProgress": round_ms(self.since_progress()),
            "partStates": part_states,
        })
    }

    /// The upload as text lines for the stack dump.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "upload {} from {} {}: {} bytes received in {:.1}s, last progress {:.1}s ago\n",
            self.id,
            self.client
                .map_or_else(|| "-".to_string(), |addr| addr.to_string()),
            self.route,
            self.bytes_received(),
            self.age().as_secs_f64(),
            self.since_progress().as_secs_f64()
        );
        for part in lock(&self.parts).iter() {
            let stream = part.buffer.snapshot();
            out.push_str(&format!(
                "  part {}: {} offset={} endOffset={} isComplete={}: {}\n",
                part.index,
                part.phase().name(),
                stream.offset,
                stream.end_offset,
                stream.is_complete,
                stream.waiting_on()
            ));
        }
        out
    }
}

fn round_ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1000.0).round() / 1000.0
}

/// All in-flight uploads.
#[derive(Default)]
pub struct Uploads {
    map: Mutex<BTreeMap<u64, Arc<Upload>>>,
}

/// Keeps an upload registered until dropped.
pub struct UploadGuard<'a> {
    uploads: &'a Uploads,
    pub upload: Arc<Upload>,
}

impl Drop for UploadGuard<'_> {
    fn drop(&mut self) {
        lock(&self.uploads.map).remove(&self.upload.id);
    }
}

impl Uploads {
    /// Registers upload `id` until the guard drops.
    pub fn start(&self, id: u64, client: Option<SocketAddr>, route: String) -> UploadGuard<'_> {
        let upload = Arc::new(Upload {
            id,
            client,
            route,
            started: Instant::now(),
            bytes_received: AtomicU64::new(0),
            last_progress_ms: AtomicU64::new(0),
            parts: Mutex::new(Vec::new()),
        });
        lock(&self.map).insert(id, upload.clone());
        UploadGuard {
            uploads: self,
            upload,
        }
    }

    /// The uploads in flight now, by id.
    pub fn list(&self) -> Vec<Arc<Upload>> {
        lock(&self.map).values().cloned().collect()
    }

    pub fn count(&self) -> usize {
        lock(&self.map).len()
    }
}
