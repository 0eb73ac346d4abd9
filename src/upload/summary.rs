//! The uploader's closing table: stored, duplicate and failed instances, and why.

use std::path::PathBuf;
use std::time::Duration;

use super::progress::{format_bytes, format_duration};

/// Non-DICOM files listed by name in the summary; the rest are counted.
const LISTED_SKIPPED: usize = 10;

/// What happened to each file, collected for the summary.
#[derive(Debug, Default)]
pub struct Summary {
    pub stored: Vec<(PathBuf, u64)>,
    /// Stored, with a warning from the server.
    pub warnings: Vec<(PathBuf, String)>,
    /// Not sent: the same SOP Instance UID as an earlier file (path of that file).
    pub repeated: Vec<(PathBuf, u64, String, PathBuf)>,
    /// Refused: other content under the same SOP Instance UID is already stored.
    pub conflicts: Vec<(PathBuf, u64, Option<String>, String)>,
    pub failed: Vec<(PathBuf, u64, Option<String>, String)>,
    /// Not DICOM Part 10.
    pub skipped: Vec<PathBuf>,
}

impl Summary {
    /// Whether the run should exit non-zero: something was not stored that should have been.
    pub fn has_failures(&self) -> bool {
        !self.failed.is_empty() || !self.conflicts.is_empty()
    }

    /// The table and the lists, as printed on stdout at the end.
    pub fn render(&self, endpoint: &str, elapsed: Duration) -> String {
        let bytes = |rows: &mut dyn Iterator<Item = u64>| format_bytes(rows.sum());
        let mut out = String::new();
        out.push_str(&format!(
            "{:<12}{:>10}{:>14}\n",
            "result", "instances", "bytes"
        ));
        let stored_bytes: u64 = self.stored.iter().map(|(_, size)| size).sum();
        let lines = [
            ("stored", self.stored.len(), format_bytes(stored_bytes)),
            (
                "duplicate",
                self.repeated.len() + self.conflicts.len(),
                bytes(
                    &mut self
                        .repeated
                        .iter()
                        .map(|r| r.1)
                        .chain(self.conflicts.iter().map(|c| c.1)),
                ),
            ),
            (
                "failed",
                self.failed.len(),
                bytes(&mut self.failed.iter().map(|f| f.1)),
            ),
        ];
        for (name, count, size) in lines {
            out.push_str(&format!("{name:<12}{count:>10}{size:>14}\n"));
        }
        out.push_str(&format!(
            "{:<12}{:>10}{:>14}\n",
            "not DICOM",
            self.skipped.len(),
            "-"
        ));
        let secs = elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            format!(", {}/s", format_bytes((stored_bytes as f64 / secs) as u64))
        } else {
            String::new()
        };
        out.push_str(&format!(
            "stored {} in {}{rate} to {endpoint}\n",
            format_bytes(stored_bytes),
            format_duration(elapsed)
        ));
        if !self.failed.is_empty() {
            out.push_str("\nfailed:\n");
            for (path, _, uid, reason) in &self.failed {
                out.push_str(&row(path, uid.as_deref(), reason));
            }
        }
        if !self.conflicts.is_empty() || !self.repeated.is_empty() {
            out.push_str("\nduplicate:\n");
            for (path, _, uid, reason) in &self.conflicts {
                out.push_str(&row(path, uid.as_deref(), reason));
            }
            for (path, _, uid, first) in &self.repeated {
                let reason = format!("same SOP Instance UID as {} (not sent)", first.display());
                out.push_str(&row(path, Some(uid), &reason));
            }
        }
        if !self.warnings.is_empty() {
            out.push_str("\nstored with warnings:\n");
            for (path, warning) in &self.warnings {
                out.push_str(&format!("  {}: {warning}\n", path.display()));
            }
        }
        if !self.skipped.is_empty() {
            out.push_str("\nnot DICOM (skipped):\n");
            for path in self.skipped.iter().take(LISTED_SKIPPED) {
                out.push_str(&format!("  {}\n", path.display()));
            }
            if self.skipped.len() > LISTED_SKIPPED {
                out.push_str(&format!(
                    "  ... and {} more\n",
                    self.skipped.len() - LISTED_SKIPPED
                ));
            }
        }
        out
    }
}

fn row(path: &std::path::Path, uid: Option<&str>, reason: &str) -> String {
    match uid {
        Some(uid) => format!("  {} (SOP Instance UID {uid}): {reason}\n", path.display()),
        None => format!("  {}: {reason}\n", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_counts_every_kind() {
        let summary = Summary {
            stored: vec![("a.dcm".into(), 2048), ("b".into(), 2048)],
            warnings: vec![],
            repeated: vec![("c".into(), 10, "1.2".into(), "a.dcm".into())],
            conflicts: vec![("d".into(), 5, Some("1.3".into()), "0x0111 duplicate".into())],
            failed: vec![("e".into(), 1, None, "HTTP 401 Unauthorized".into())],
            skipped: vec!["notes.txt".into()],
        };
        let text = summary.render("http://h/studies", Duration::from_secs(2));
        assert!(
            text.contains("stored               2       4.0 KiB\n"),
            "{text}"
        );
        assert!(
            text.contains("duplicate            2          15 B\n"),
            "{text}"
        );
        assert!(
            text.contains("failed               1           1 B\n"),
            "{text}"
        );
        assert!(
            text.contains("not DICOM            1             -\n"),
            "{text}"
        );
        assert!(text.contains("  e: HTTP 401 Unauthorized\n"), "{text}");
        assert!(
            text.contains("  d (SOP Instance UID 1.3): 0x0111 duplicate\n"),
            "{text}"
        );
        assert!(
            text.contains("same SOP Instance UID as a.dcm (not sent)"),
            "{text}"
        );
        assert!(summary.has_failures());
    }
}
