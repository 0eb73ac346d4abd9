//! Sans-IO splitter for `multipart/related` bodies (RFC 2046 §5.1, RFC 2387).
//!
//! [`Splitter::feed`] takes body chunks as they arrive and emits [`SplitEvent`]s: part
//! headers, then the part's body as slices of the input chunks (no copy), then the part's end.
//! Only a possible partial delimiter at a chunk's end (shorter than the delimiter) and an
//! incomplete header block (capped) are carried over between chunks.
//!
//! Leniency for real clients: an optional preamble, a body that starts with the delimiter or
//! with CRLF, transport padding after a delimiter, parts with no headers, and a closing
//! delimiter with or without a trailing CRLF (or a body that ends right after a part's
//! delimiter).

use bytes::{Buf, Bytes, BytesMut};
use memchr::memmem;

use super::content_type::MediaType;

/// Longest transport padding accepted after a delimiter.
const MAX_PADDING: usize = 256;
/// Most header lines accepted in one part.
const MAX_PART_HEADERS: usize = 64;

/// Headers of one part, names lower-cased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartHeaders {
    pub headers: Vec<(String, String)>,
}

impl PartHeaders {
    /// The value of header `name` (lower-case), if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The part's parsed Content-Type, if it has a valid one.
    pub fn content_type(&self) -> Option<MediaType> {
        self.get("content-type").and_then(MediaType::parse)
    }
}

/// What the splitter found in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitEvent {
    PartStart(PartHeaders),
    Data(Bytes),
    PartEnd,
    /// The closing delimiter: no more parts.
    Closed,
}

/// Why a body is not a valid multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitError {
    NoDelimiter,
    HeaderTooLarge(usize),
    BadHeader(String),
    BadDelimiter,
    Truncated(&'static str),
}

impl std::fmt::Display for SplitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SplitError::NoDelimiter => f.write_str("multipart body without a boundary delimiter"),
            SplitError::HeaderTooLarge(max) => {
                write!(f, "multipart part headers larger than {max} bytes")
            }
            SplitError::BadHeader(why) => write!(f, "invalid multipart part header: {why}"),
            SplitError::BadDelimiter => f.write_str("bad bytes after a multipart delimiter"),
            SplitError::Truncated(where_) => write!(f, "body ended {where_}"),
        }
    }
}

impl std::error::Error for SplitError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Preamble,
    AfterDelimiter,
    Headers,
    Body,
    Epilogue,
}

/// Incremental multipart splitter for one body.
pub struct Splitter {
    /// `CRLF--boundary`.
    delimiter: Vec<u8>,
    finder: memmem::Finder<'static>,
    state: State,
    /// Input carried to the next `feed` (see the module docs for its bound).
    held: BytesMut,
    /// No input seen yet: the body may open with `--boundary` without the CRLF.
    at_start: bool,
    max_header_bytes: usize,
}

impl Splitter {
    pub fn new(boundary: &str, max_header_bytes: usize) -> Splitter {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        let finder = memmem::Finder::new(&delimiter).into_owned();
        Splitter {
            delimiter,
            finder,
            state: State::Preamble,
            held: BytesMut::new(),
            at_start: true,
            max_header_bytes,
        }
    }

    /// Splits the next body chunk.
    pub fn feed(&mut self, chunk: Bytes, out: &mut Vec<SplitEvent>) -> Result<(), SplitError> {
        let mut rest = chunk;
        // Held bytes (a partial delimiter, padding, an incomplete header block): join them
        // with just enough of the new chunk to decide, so the chunk itself is not copied.
        while !self.held.is_empty() && !rest.is_empty() {
            let take = rest.len().min(self.join_len());
            let mut joint = std::mem::take(&mut self.held);
            joint.extend_from_slice(&rest[..take]);
            rest.advance(take);
            self.process(joint.freeze(), out)?;
        }
        self.process(rest, out)
    }

    /// How much of a new chunk to join with held bytes: enough to decide what they are.
    fn join_len(&self) -> usize {
        match self.state {
            State::Headers => self.max_header_bytes.max(self.delimiter.len()),
            State::AfterDelimiter => MAX_PADDING + 2,
            State::Preamble | State::Body | State::Epilogue => self.delimiter.len(),
        }
    }

    /// The body ended: checks that it ended at a sensible place.
    pub fn finish(&mut self, out: &mut Vec<SplitEvent>) -> Result<(), SplitError> {
        match self.state {
            State::Epilogue => Ok(()),
            State::AfterDelimiter if self.held.is_empty() || &self.held[..] == b"-" => {
                out.push(SplitEvent::Closed);
                self.state = State::Epilogue;
                Ok(())
            }
            State::AfterDelimiter | State::Headers => {
                Err(SplitError::Truncated("inside multipart part headers"))
            }
            State::Body => Err(SplitError::Truncated(
                "inside a part (no closing delimiter)",
            )),
            State::Preamble => Err(SplitError::NoDelimiter),
        }
    }

    fn hold(&mut self, data: &[u8]) {
        self.held.extend_from_slice(data);
    }

    fn process(&mut self, mut data: Bytes, out: &mut Vec<SplitEvent>) -> Result<(), SplitError> {
        loop {
            if data.is_empty() {
                return Ok(());
            }
            match self.state {
                State::Preamble => {
                    if self.at_start {
                        let open = &self.delimiter[2..];
                        if data.len() < open.len() && open.starts_with(&data) {
                            self.hold(&data);
                            return Ok(());
                        }
                        self.at_start = false;
                        if data.starts_with(open) {
                            data.advance(open.len());
                            self.state = State::AfterDelimiter;
                            continue;
                        }
                    }
                    match self.finder.find(&data) {
                        Some(at) => {
                            data.advance(at + self.delimiter.len());
                            self.state = State::AfterDelimiter;
                        }
                        None => {
                            let keep = self.partial_delimiter_suffix(&data);
                            self.hold(&data[data.len() - keep..]);
                            return Ok(());
                        }
                    }
                }
                State::AfterDelimiter => {
                    if data.len() < 2 {
                        self.hold(&data);
                        return Ok(());
                    }
                    if data.starts_with(b"--") {
                        out.push(SplitEvent::Closed);
                        self.state = State::Epilogue;
                        continue;
                    }
                    let padding = data
                        .iter()
                        .take_while(|&&b| b == b' ' || b == b'\t')
                        .count();
                    if padding > MAX_PADDING {
                        return Err(SplitError::BadDelimiter);
                    }
                    if data[padding..].starts_with(b"\r\n") {
                        data.advance(padding + 2);
                        self.state = State::Headers;
                    } else if data.len() - padding < 2 && data[padding..] != *b"\n" {
                        self.hold(&data);
                        return Ok(());
                    } else {
                        return Err(SplitError::BadDelimiter);
                    }
                }
                State::Headers => {
                    if data.starts_with(b"\r\n") {
                        data.advance(2);
                        out.push(SplitEvent::PartStart(PartHeaders::default()));
                        self.state = State::Body;
                        continue;
                    }
                    match memmem::find(&data, b"\r\n\r\n") {
                        Some(at) if at + 4 <= self.max_header_bytes => {
                            let headers = parse_headers(&data[..at + 4])?;
                            data.advance(at + 4);
                            out.push(SplitEvent::PartStart(headers));
                            self.state = State::Body;
                        }
                        Some(_) => return Err(SplitError::HeaderTooLarge(self.max_header_bytes)),
                        None if data.len() >= self.max_header_bytes => {
                            return Err(SplitError::HeaderTooLarge(self.max_header_bytes))
                        }
                        None => {
                            self.hold(&data);
                            return Ok(());
                        }
                    }
                }
                State::Body => match self.finder.find(&data) {
                    Some(at) => {
                        if at > 0 {
                            out.push(SplitEvent::Data(data.slice(..at)));
                        }
                        out.push(SplitEvent::PartEnd);
                        data.advance(at + self.delimiter.len());
                        self.state = State::AfterDelimiter;
                    }
                    None => {
                        let keep = self.partial_delimiter_suffix(&data);
                        let body_len = data.len() - keep;
                        if body_len > 0 {
                            out.push(SplitEvent::Data(data.slice(..body_len)));
                        }
                        self.hold(&data[body_len..]);
                        return Ok(());
                    }
                },
                State::Epilogue => return Ok(()),
            }
        }
    }

    /// Length of the longest suffix of `data` that is a proper prefix of the delimiter.
    fn partial_delimiter_suffix(&self, data: &[u8]) -> usize {
        let window_start = data.len().saturating_sub(self.delimiter.len() - 1);
        let tail = &data[window_start..];
        for at in memchr::memchr_iter(b'\r', tail) {
            if self.delimiter.starts_with(&tail[at..]) {
                return tail.len() - at;
            }
        }
        0
    }
}

fn parse_headers(block: &[u8]) -> Result<PartHeaders, SplitError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_PART_HEADERS];
    match httparse::parse_headers(block, &mut slots) {
        Ok(httparse::Status::Complete((_, parsed))) => Ok(PartHeaders {
            headers: parsed
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).trim().to_string(),
                    )
                })
                .collect(),
        }),
        Ok(httparse::Status::Partial) => {
            Err(SplitError::BadHeader("incomplete header block".into()))
        }
        Err(error) => Err(SplitError::BadHeader(error.to_string())),
    }
}
