//! Upload progress on stderr: a redrawn bar on a terminal, plain lines otherwise (logs, CI).

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, plain lines otherwise.
    Auto,
    /// A bar redrawn in place.
    Bar,
    /// One line every few seconds.
    Plain,
    /// Nothing but failures and the summary.
    None,
}

/// Counters shared by the upload tasks and the reporter.
#[derive(Debug)]
pub struct Progress {
    pub total_files: u64,
    pub total_bytes: u64,
    /// Files whose request has finished (whatever the outcome).
    pub files_done: AtomicU64,
    /// Body bytes of file content and framing handed to connections (retries included).
    pub bytes_sent: Arc<AtomicU64>,
    /// Body bytes of requests that were sent again: not counted twice towards the total.
    pub bytes_resent: AtomicU64,
    pub started: Instant,
    /// Set while a bar is drawn, so other output clears it first.
    bar_drawn: AtomicBool,
}

impl Progress {
    pub fn new(total_files: u64, total_bytes: u64) -> Progress {
        Progress {
            total_files,
            total_bytes,
            files_done: AtomicU64::new(0),
            bytes_sent: Arc::new(AtomicU64::new(0)),
            bytes_resent: AtomicU64::new(0),
            started: Instant::now(),
            bar_drawn: AtomicBool::new(false),
        }
    }

    /// Bytes counted towards the total: what was sent, less what had to be sent again.
    pub fn bytes_done(&self) -> u64 {
        let sent = self.bytes_sent.load(Ordering::Relaxed);
        sent.saturating_sub(self.bytes_resent.load(Ordering::Relaxed))
            .min(self.total_bytes)
    }

    /// The status text: files, bytes, rate and time left.
    pub fn status(&self) -> String {
        let elapsed = self.started.elapsed().as_secs_f64();
        let done = self.bytes_done();
        let rate = if elapsed > 0.0 {
            done as f64 / elapsed
        } else {
            0.0
        };
        let eta = if rate > 0.0 && done < self.total_bytes {
            format_duration(Duration::from_secs_f64(
                (self.total_bytes - done) as f64 / rate,
            ))
        } else if done >= self.total_bytes {
            "0:00".to_string()
        } else {
            "?".to_string()
        };
        format!(
            "{}/{} files, {}/{}, {}/s, ETA {eta}",
            self.files_done.load(Ordering::Relaxed),
            self.total_files,
            format_bytes(done),
            format_bytes(self.total_bytes),
            format_bytes(rate as u64),
        )
    }

    /// A line printed above the bar (a failure), or as is without one.
    pub fn println(&self, line: &str) {
        let mut err = std::io::stderr().lock();
        if self.bar_drawn.swap(false, Ordering::Relaxed) {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(err, "{line}");
    }

    fn bar(&self) -> String {
        const WIDTH: usize = 24;
        let fraction = if self.total_bytes == 0 {
            1.0
        } else {
            self.bytes_done() as f64 / self.total_bytes as f64
        };
        let filled = ((fraction * WIDTH as f64) as usize).min(WIDTH);
        format!(
            "[{}{}] {:>3}% {}",
            "#".repeat(filled),
            "-".repeat(WIDTH - filled),
            (fraction * 100.0) as u32,
            self.status()
        )
    }
}

/// Shows progress in `mode` until `done` resolves, then a last line.
pub async fn report(
    progress: Arc<Progress>,
    mode: ProgressMode,
    done: tokio::sync::oneshot::Receiver<()>,
) {
    use std::io::IsTerminal;
    let mode = match mode {
        ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bar,
        ProgressMode::Auto => ProgressMode::Plain,
        other => other,
    };
    let every = match mode {
        ProgressMode::Bar => Duration::from_millis(200),
        _ => Duration::from_secs(2),
    };
    tokio::pin!(done);
    loop {
        let finished = tokio::select! {
            _ = &mut done => true,
            _ = tokio::time::sleep(every) => false,
        };
        match mode {
            ProgressMode::Bar => {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[2K{}", progress.bar());
                if finished {
                    let _ = writeln!(err);
                    progress.bar_drawn.store(false, Ordering::Relaxed);
                } else {
                    progress.bar_drawn.store(true, Ordering::Relaxed);
                }
                let _ = err.flush();
            }
            ProgressMode::Plain => progress.println(&format!("progress: {}", progress.status())),
            ProgressMode::Auto | ProgressMode::None => {}
        }
        if finished {
            return;
        }
    }
}

/// `1.5 MiB`-style sizes.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `1:05`, or `2:03:04` from an hour on.
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(format_duration(Duration::from_secs(65)), "1:05");
        assert_eq!(format_duration(Duration::from_secs(7384)), "2:03:04");
    }

    #[test]
    fn status_counts_resent_bytes_once() {
        let progress = Progress::new(4, 1000);
        progress.bytes_sent.store(700, Ordering::Relaxed);
        progress.bytes_resent.store(300, Ordering::Relaxed);
        progress.files_done.store(2, Ordering::Relaxed);
        assert_eq!(progress.bytes_done(), 400);
        assert!(progress.status().starts_with("2/4 files, 400 B/1000 B, "));
        assert!(progress
            .bar()
            .starts_with("[#########---------------]  40% "));
    }
}
