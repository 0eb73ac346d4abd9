//! How the STOW target turns fuzzer bytes into a request body (fixed boundary).
//!
//! Byte 0 holds the framing: bits 0-1 the mode, bit 2 a preamble, bit 3 no closing
//! delimiter, bit 4 an epilogue. The modes:
//!
//! * 0, raw: the rest of the input is the body as sent (seeded with valid bodies).
//! * 1, parts: the rest is a list of parts, each `[content type][len lo][len hi][bytes]`
//!   (the last part takes what is left when its length runs past the end).
//! * 2, instance: `[kind][flags][edits]`: a valid generated instance of `kind`, with each
//!   3-byte edit `[at lo][at hi][value]` setting one byte (at modulo the length); flags bit 0
//!   truncates the instance at the first edit's offset instead, bit 1 appends a second part,
//!   the same instance unedited (two parts with one SOP Instance UID).
//! * 3, both: mode 2's part, then mode 1's parts from the bytes after a `0xFF 0xFF` marker.

use crate::instances::{instance, Kind};
use crate::multipart::{Multipart, Part, BOUNDARY};

/// Most parts built in mode 1 (the server's own limit is far higher; more parts mostly
/// repeat work).
const MAX_PARTS: usize = 8;

/// The Content-Type of the request: the fixed boundary, quoted.
pub fn content_type() -> String {
    Multipart::new(Vec::new()).content_type()
}

/// The body a fuzz input stands for.
pub fn body(data: &[u8]) -> Vec<u8> {
    let Some((&framing, rest)) = data.split_first() else {
        return Vec::new();
    };
    if framing & 0b11 == 0 {
        return rest.to_vec();
    }
    let parts = match framing & 0b11 {
        1 => listed_parts(rest),
        2 => instance_parts(rest),
        _ => {
            let (first, listed) = match rest.windows(2).position(|w| w == [0xFF, 0xFF]) {
                Some(at) => (&rest[..at], &rest[at + 2..]),
                None => (rest, &[][..]),
            };
            let mut parts = instance_parts(first);
            parts.extend(listed_parts(listed));
            parts
        }
    };
    let mut multipart = Multipart::new(parts);
    if framing & 0b100 != 0 {
        multipart.start = b"This is a preamble.\r\n".to_vec();
    }
    multipart.close = framing & 0b1000 == 0;
    if framing & 0b1_0000 != 0 {
        multipart.end = b"\r\nThis is an epilogue.\r\n".to_vec();
    }
    debug_assert_eq!(multipart.boundary, BOUNDARY);
    multipart.encode()
}

/// Mode 1: length-prefixed parts with a chosen Content-Type.
fn listed_parts(mut rest: &[u8]) -> Vec<Part> {
    let mut parts = Vec::new();
    while rest.len() >= 3 && parts.len() < MAX_PARTS {
        let content_type = rest[0];
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let body = &rest[3..3 + len];
        rest = &rest[3 + len..];
        parts.push(match content_type % 5 {
            0 => Part::dicom(body),
            1 => Part::bare(body),
            2 => Part::bare(body).header("Content-Type", "application/octet-stream"),
            3 => Part::bare(body).header(
                "Content-Type",
                "application/dicom; transfer-syntax=1.2.840.10008.1.2.1",
            ),
            _ => Part::bare(body).header("X-Fuzz", "1"),
        });
    }
    parts
}

/// Mode 2: a generated instance with byte edits.
fn instance_parts(rest: &[u8]) -> Vec<Part> {
    let kind = Kind::from_byte(rest.first().copied().unwrap_or(0));
    let flags = rest.get(1).copied().unwrap_or(0);
    let original = instance(kind);
    let mut bytes = original.clone();
    let edits = rest.get(2..).unwrap_or(&[]);
    for edit in edits.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([edit[0], edit[1]])) % bytes.len();
        if flags & 1 != 0 {
            bytes.truncate(at);
            break;
        }
        bytes[at] = edit[2];
    }
    let mut parts = vec![Part::dicom(&bytes)];
    if flags & 0b10 != 0 {
        parts.push(Part::dicom(&original));
    }
    parts
}
