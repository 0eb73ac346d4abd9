//! Writing `multipart/related` responses (RFC 2387) part by part.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A boundary no payload is likely to contain.
pub fn new_boundary() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_nanos())
        .unwrap_or_default();
    format!(
        "dicomwebserver-{:x}-{:x}",
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Writes the delimiter and headers that open a part.
pub fn open_part(out: &mut impl Write, boundary: &str, content_type: &str) -> io::Result<()> {
    write!(out, "--{boundary}\r\nContent-Type: {content_type}\r\n\r\n")
}

/// Ends the current part.
pub fn close_part(out: &mut impl Write) -> io::Result<()> {
    out.write_all(b"\r\n")
}

/// Writes the closing delimiter.
pub fn close(out: &mut impl Write, boundary: &str) -> io::Result<()> {
    write!(out, "--{boundary}--\r\n")
}
