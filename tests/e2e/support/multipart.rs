//! `multipart/related` bodies with every framing variant real clients produce (RFC 2046 §5.1.1,
//! PS3.18 §8.6.1.2): preamble, leading CRLF, headerless parts, closing delimiter with or
//! without CRLF, epilogue, or no closing delimiter at all.

/// One body part: its header lines and its body bytes.
#[derive(Clone, Debug)]
pub struct Part {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Part {
    /// A part with `Content-Type: application/dicom`.
    pub fn dicom(body: &[u8]) -> Part {
        Part::bare(body).header("Content-Type", "application/dicom")
    }

    /// A part with no header lines at all.
    pub fn bare(body: &[u8]) -> Part {
        Part {
            headers: Vec::new(),
            body: body.to_vec(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Part {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// A multipart body under construction; every field is a framing choice.
#[derive(Clone, Debug)]
pub struct Multipart {
    pub boundary: String,
    /// Bytes before the first delimiter: nothing, `\r\n`, or a preamble ending in `\r\n`.
    pub start: Vec<u8>,
    pub parts: Vec<Part>,
    /// Whether the closing delimiter `--boundary--` is written.
    pub close: bool,
    /// Bytes after the closing delimiter: nothing, `\r\n`, or `\r\n` plus an epilogue.
    pub end: Vec<u8>,
}

/// The default boundary: long and random-looking, as clients generate them.
pub const BOUNDARY: &str = "e2e-7c1b2f9a0d4e4c58a6f3b1d2e9c8a7b6";

impl Multipart {
    /// The plainest framing: no preamble, closing delimiter followed by CRLF.
    pub fn new(parts: Vec<Part>) -> Multipart {
        Multipart {
            boundary: BOUNDARY.to_string(),
            start: Vec::new(),
            parts,
            close: true,
            end: b"\r\n".to_vec(),
        }
    }

    /// One `application/dicom` part per instance body.
    pub fn of(bodies: &[&[u8]]) -> Multipart {
        Multipart::new(bodies.iter().map(|body| Part::dicom(body)).collect())
    }

    /// `multipart/related; type="application/dicom"; boundary=<boundary>` (quoted).
    pub fn content_type(&self) -> String {
        format!(
            "multipart/related; type=\"application/dicom\"; boundary=\"{}\"",
            self.boundary
        )
    }

    /// The framing that goes before one part's body, as used when streaming a body.
    pub fn part_prefix(&self, index: usize) -> Vec<u8> {
        let mut out = Vec::new();
        if index == 0 {
            out.extend_from_slice(&self.start);
        } else {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{}\r\n", self.boundary).as_bytes());
        for (name, value) in &self.parts[index].headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// The framing after the last part's body.
    pub fn suffix(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.close {
            out.extend_from_slice(format!("\r\n--{}--", self.boundary).as_bytes());
            out.extend_from_slice(&self.end);
        }
        out
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (index, part) in self.parts.iter().enumerate() {
            out.extend_from_slice(&self.part_prefix(index));
            out.extend_from_slice(&part.body);
        }
        out.extend_from_slice(&self.suffix());
        out
    }
}
