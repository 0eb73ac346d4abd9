//! SIGUSR2: a stack dump, or the sampler, on demand. The handler is always installed, since
//! SIGUSR2's default action would kill the server; with dumps disabled it only logs that.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::dump::{dump, emit, sample, try_start};
use super::uploads::Uploads;

/// What SIGUSR2 (and the debug listener's defaults) do.
#[derive(Debug, Clone, Copy)]
pub struct DumpSettings {
    /// Dumps are allowed (`STACK_DUMP_ENABLED`, or a sampler interval was set).
    pub enabled: bool,
    /// Run the sampler with this interval instead of a single dump.
    pub sample_interval: Option<Duration>,
    pub sample_duration: Duration,
}

/// Runs a dump or a sample on a plain thread (never on the async runtime) and writes it out.
/// Returns false when another dump is running.
pub fn dump_in_background(
    settings: DumpSettings,
    uploads: Arc<Uploads>,
    reason: &'static str,
) -> bool {
    let Some(slot) = try_start() else {
        return false;
    };
    let spawned = std::thread::Builder::new()
        .name("stack-dump".into())
        .spawn(move || {
            let text = match settings.sample_interval {
                Some(interval) => {
                    sample(Some(&uploads), interval, settings.sample_duration, reason)
                }
                None => dump(Some(&uploads), reason),
            };
            emit(&text);
            drop(slot);
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "cannot start the stack dump thread");
        return false;
    }
    true
}

/// Installs the SIGUSR2 listener.
#[cfg(unix)]
pub fn listen(settings: DumpSettings, uploads: Arc<Uploads>) -> io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut signals = signal(SignalKind::user_defined2())?;
    tokio::spawn(async move {
        while signals.recv().await.is_some() {
            if !settings.enabled {
                tracing::warn!(
                    "SIGUSR2 received but stack dumps are disabled: set STACK_DUMP_ENABLED=1 (or STACK_DUMP_SAMPLE_MS) to enable them"
                );
                continue;
            }
            let reason = if settings.sample_interval.is_some() {
                "SIGUSR2, sampler"
            } else {
                "SIGUSR2"
            };
            if !dump_in_background(settings, uploads.clone(), reason) {
                tracing::warn!("SIGUSR2 received while a stack dump is running: ignored");
            }
        }
    });
    Ok(())
}

/// Signals are not available: use the debug listener.
#[cfg(not(unix))]
pub fn listen(_settings: DumpSettings, _uploads: Arc<Uploads>) -> io::Result<()> {
    Ok(())
}
