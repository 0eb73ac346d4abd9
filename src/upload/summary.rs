//! The uploader's closing table: stored, duplicate and failed instances, and why.

use std::path::PathBuf;
use std::time::Duration;

use super::progress::{format_bytes, format_duration};

/// Non-DICOM files listed by name in the summary; the rest are counted.
const LISTED_SKIPPED: usize = 10;

/// One file that was not stored, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub path: PathBuf,
    pub size: u64,
    /// From the file's meta group, when it names one.
    pub sop_instance: Option<String>,
    pub reason: String,
}

impl Row {
    pub fn new(
        path: PathBuf,
        size: u64,
        sop_instance: Option<String>,
        reason: impl Into<String>,
    ) -> Row {
        Row {
            path,
            size,
            sop_instance,
            reason: reason.into(),
        }
    }
}

/// What happened to each file, collected for the summary.
#[derive(Debug, Default)]
pub struct Summary {
    pub stored: Vec<(PathBuf, u64)>,
    /// Stored, with a warning from the server.
    pub warnings: Vec<(PathBuf, String)>,
    /// Not sent: the same SOP Instance UID as an earlier file.
    pub repeated: Vec<Row>,
    /// Refused: other content under the same SOP Instance UID is already stored.
    pub conflicts: Vec<Row>,
    pub failed: Vec<Row>,
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
        let bytes = |rows: &[&[Row]]| {
            format_bytes(rows.iter().flat_map(|r| r.iter()).map(|r| r.size).sum())
        };
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
                bytes(&[&self.conflicts, &self.repeated]),
            ),
            ("failed", self.failed.len(), bytes(&[&self.failed])),
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
            for row in &self.failed {
                out.push_str(&line(row));
            }
        }
        if !self.conflicts.is_empty() || !self.repeated.is_empty() {
            out.push_str("\nduplicate:\n");
            for row in self.conflicts.iter().chain(&self.repeated) {
                out.push_str(&line(row));
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

fn line(row: &Row) -> String {
    match &row.sop_instance {
        Some(uid) => format!(
            "  {} (SOP Instance UID {uid}): {}\n",
            row.path.display(),
            row.reason
        ),
        None => format!("  {}: {}\n", row.path.display(), row.reason),
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
            repeated: vec![Row::new(
                "c".into(),
                10,
                Some("1.2".into()),
                "same SOP Instance UID as a.dcm (not sent)",
            )],
            conflicts: vec![Row::new(
                "d".into(),
                5,
                Some("1.3".into()),
                "0x0111 duplicate",
            )],
            failed: vec![Row::new("e".into(), 1, None, "HTTP 401 Unauthorized")],
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
