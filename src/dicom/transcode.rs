//! Streaming transcoding of a stored Part 10 instance to Explicit VR Little Endian
//! (PS3.5 A.2), the transfer syntax WADO-RS returns by default (PS3.18 §8.7.3).
//!
//! [`to_explicit_le`] runs the sans-IO [`Tokenizer`] over a synchronous `Read` and re-encodes
//! every token as it comes: the file meta group (buffered, it is small) with the new Transfer
//! Syntax UID and group length, then each element header in explicit VR little endian, values
//! copied or byte-swapped chunk by chunk. Nothing is held but a few fixed buffers, whatever the
//! size of the instance. It is synchronous: the server runs it on a blocking thread.
//!
//! Sequences and items are always written with undefined length and delimiters (PS3.5 §7.5):
//! re-encoded headers change size, so a defined length would no longer hold. Retired group
//! length elements (gggg,0000) of the data set are dropped for the same reason.

use std::io::{self, BufWriter, Read, Write};

use dicom_core::{Tag, VR};
use flate2::{Decompress, FlushDecompress, Status};

use super::syntax::{
    has_long_length, swap_unit, DEFLATED_EXPLICIT_VR_LE, EXPLICIT_VR_BE, EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
};
use super::tags::{
    ITEM, ITEM_DELIMITATION, META_GROUP_LENGTH, SEQUENCE_DELIMITATION, TRANSFER_SYNTAX_UID,
};
use super::tokenizer::{ElementHeader, Step, Token, TokenError, Tokenizer};

/// Size of the input, inflated-input and output buffers: large enough that per-call costs
/// vanish against copying, small enough that a transcode holds a few hundred KiB at most.
const BUFFER_LEN: usize = 64 * 1024;
/// Bytes byte-swapped per write (a multiple of every unit size).
const SWAP_CHUNK: usize = 8 * 1024;
/// Deepest sequence nesting accepted. Stored instances already passed the upload's own cap;
/// this one only bounds the stack against a corrupt file, so it is generous.
const MAX_DEPTH: usize = 256;
/// Cap on the buffered file meta group (real ones are a few hundred bytes).
const MAX_META_LEN: usize = 64 * 1024;
/// Longest value a VR with a 16-bit length field is written with; longer ones become `UN`.
const MAX_SHORT_LENGTH: u32 = 0xFFFE;
/// Longest explicit VR element header.
const MAX_HEADER_LEN: usize = 12;

const UNDEFINED: u32 = u32::MAX;

/// Why an instance could not be transcoded.
#[derive(Debug)]
pub enum TranscodeError {
    /// Reading the input or writing the output failed.
    Io(io::Error),
    /// The input is not a readable Part 10 instance.
    Parse(TokenError),
    /// The instance is in this transfer syntax, whose pixel data is compressed (or which is
    /// not a plain native encoding): it cannot be rewritten as explicit VR little endian.
    Encapsulated(String),
    /// The deflated data set is corrupt or truncated.
    Inflate(String),
    /// The file meta group is longer than 64 KiB (`MAX_META_LEN`).
    MetaTooLarge,
}

impl std::fmt::Display for TranscodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TranscodeError::Io(error) => write!(f, "I/O error while transcoding: {error}"),
            TranscodeError::Parse(error) => error.fmt(f),
            TranscodeError::Encapsulated(uid) => write!(
                f,
                "transfer syntax {uid} cannot be transcoded to explicit VR little endian"
            ),
            TranscodeError::Inflate(what) => write!(f, "corrupt deflated data set: {what}"),
            TranscodeError::MetaTooLarge => {
                write!(f, "the file meta group is longer than {MAX_META_LEN} bytes")
            }
        }
    }
}

impl std::error::Error for TranscodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TranscodeError::Io(error) => Some(error),
            TranscodeError::Parse(error) => Some(error),
            _ => None,
        }
    }
}

impl From<TokenError> for TranscodeError {
    fn from(error: TokenError) -> Self {
        TranscodeError::Parse(error)
    }
}

/// Whether instances in transfer syntax `uid` can be transcoded by [`to_explicit_le`]: the
/// native (uncompressed) syntaxes and deflated explicit VR little endian.
pub fn can_transcode(uid: &str) -> bool {
    matches!(
        uid.trim_end_matches(['\0', ' ']),
        IMPLICIT_VR_LE | EXPLICIT_VR_LE | EXPLICIT_VR_BE | DEFLATED_EXPLICIT_VR_LE
    )
}

/// Rewrites the Part 10 stream `input` (explicit VR LE, implicit VR LE, explicit VR BE or
/// deflated explicit VR LE) as explicit VR little endian into `output`; memory is bounded (a
/// few 64 KiB buffers) whatever the size. Returns bytes written.
///
/// Other transfer syntaxes are refused with [`TranscodeError::Encapsulated`] when the meta
/// group ends, before anything is written. After any other error the output may hold an
/// incomplete instance.
pub fn to_explicit_le<R: Read, W: Write>(input: R, output: W) -> Result<u64, TranscodeError> {
    let mut tokenizer = Tokenizer::new(MAX_DEPTH);
    let mut emitter = Emitter::new(output);
    let mut raw = Window::new(Plain(input));
    if pump(&mut raw, &mut tokenizer, &mut emitter)? == Flow::Inflate {
        let source = Inflate {
            raw,
            inflater: Decompress::new(false),
            ended: false,
        };
        let mut inflated = Window::new(source);
        pump(&mut inflated, &mut tokenizer, &mut emitter)?;
    }
    emitter.finish()
}

/// What the token loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    /// The meta group ended and the data set is deflated: continue on the inflated bytes.
    Inflate,
    End,
}

/// Feeds the tokenizer from `window` until the data set ends or must be inflated.
fn pump<S: Source, W: Write>(
    window: &mut Window<S>,
    tokenizer: &mut Tokenizer,
    emitter: &mut Emitter<W>,
) -> Result<Flow, TranscodeError> {
    loop {
        match tokenizer.next(window.bytes(), window.eof)? {
            Step::NeedMore(n) => window.fill(n)?,
            Step::Token { consumed, token } => {
                let flow = emitter.token(token)?;
                window.consume(consumed);
                if flow != Flow::Continue {
                    return Ok(flow);
                }
            }
        }
    }
}

/// Where the tokenizer's bytes come from.
trait Source {
    /// Reads some bytes into the non-empty `buf`; 0 at the end of the input.
    fn read_into(&mut self, buf: &mut [u8]) -> Result<usize, TranscodeError>;
}

/// The input as stored.
struct Plain<R>(R);

impl<R: Read> Source for Plain<R> {
    fn read_into(&mut self, buf: &mut [u8]) -> Result<usize, TranscodeError> {
        loop {
            match self.0.read(buf) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                result => return result.map_err(TranscodeError::Io),
            }
        }
    }
}

/// A deflated data set (PS3.5 A.5) inflated from the raw bytes after the meta group. Bytes
/// after the end of the deflate stream are ignored.
struct Inflate<R> {
    raw: Window<Plain<R>>,
    inflater: Decompress,
    ended: bool,
}

impl<R: Read> Source for Inflate<R> {
    fn read_into(&mut self, out: &mut [u8]) -> Result<usize, TranscodeError> {
        while !self.ended {
            if self.raw.bytes().is_empty() {
                self.raw.fill(1)?;
                if self.raw.bytes().is_empty() {
                    return Err(TranscodeError::Inflate(
                        "the input ends before the end of the deflate stream".into(),
                    ));
                }
            }
            let (before_in, before_out) = (self.inflater.total_in(), self.inflater.total_out());
            let status = self
                .inflater
                .decompress(self.raw.bytes(), out, FlushDecompress::None)
                .map_err(|error| TranscodeError::Inflate(error.to_string()))?;
            let used = (self.inflater.total_in() - before_in) as usize;
            let produced = (self.inflater.total_out() - before_out) as usize;
            self.raw.consume(used);
            self.ended = status == Status::StreamEnd;
            if produced > 0 {
                return Ok(produced);
            }
            if used == 0 && !self.ended {
                if self.raw.eof {
                    return Err(TranscodeError::Inflate(
                        "the deflate stream does not progress".into(),
                    ));
                }
                self.raw.fill(self.raw.bytes().len() + 1)?;
            }
        }
        Ok(0)
    }
}

/// A fixed buffer over a source: `buf[start..end]` are the bytes not yet consumed.
struct Window<S> {
    source: S,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The source has ended: nothing follows `bytes()`.
    eof: bool,
}

impl<S: Source> Window<S> {
    fn new(source: S) -> Self {
        Window {
            source,
            buf: vec![0; BUFFER_LEN],
            start: 0,
            end: 0,
            eof: false,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(
            self.start <= self.end,
            "consumed more than the window holds"
        );
    }

    /// Reads until `n` contiguous bytes are buffered (at least one more than now) or the
    /// source ends. The tokenizer asks for at most a header's worth, so `buf` never grows.
    fn fill(&mut self, n: usize) -> Result<(), TranscodeError> {
        let n = n.max(self.end - self.start + 1);
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < n {
            self.buf.resize(n, 0);
        }
        while self.end < n && !self.eof {
            match self.source.read_into(&mut self.buf[self.end..])? {
                0 => self.eof = true,
                got => self.end += got,
            }
        }
        Ok(())
    }
}

/// One buffered file meta element.
struct MetaElement {
    tag: Tag,
    vr: VR,
    value: Vec<u8>,
}

/// Re-encodes tokens as explicit VR little endian.
struct Emitter<W: Write> {
    out: BufWriter<W>,
    written: u64,
    /// The file meta group, buffered until it ends; `None` once it is written.
    meta: Option<Vec<MetaElement>>,
    meta_len: usize,
    /// Transfer syntax of the input, for error messages.
    transfer_syntax: String,
    /// The data set is explicit VR big endian.
    big_endian: bool,
    /// One entry per open sequence and item: whether its contents are implicit VR little
    /// endian (a CP-246 `UN` sequence), which they stay in the output.
    frames: Vec<bool>,
    /// Byte-swap unit of the current value (1: copied as is).
    unit: usize,
    /// The current value is dropped (a data set group length).
    skip: bool,
    /// Start of a swap unit split by a chunk boundary.
    carry: [u8; 8],
    carry_len: usize,
}

impl<W: Write> Emitter<W> {
    fn new(output: W) -> Self {
        Emitter {
            out: BufWriter::with_capacity(BUFFER_LEN, output),
            written: 0,
            meta: Some(Vec::new()),
            meta_len: 0,
            transfer_syntax: String::new(),
            big_endian: false,
            frames: Vec::new(),
            unit: 1,
            skip: false,
            carry: [0; 8],
            carry_len: 0,
        }
    }

    fn finish(mut self) -> Result<u64, TranscodeError> {
        self.out.flush().map_err(TranscodeError::Io)?;
        Ok(self.written)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), TranscodeError> {
        self.out.write_all(bytes).map_err(TranscodeError::Io)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Whether the current position is inside a CP-246 sequence (implicit VR LE contents).
    fn implicit(&self) -> bool {
        self.frames.last().copied().unwrap_or(false)
    }

    fn token(&mut self, token: Token<'_>) -> Result<Flow, TranscodeError> {
        match token {
            Token::Preamble => {}
            Token::Element(header) if self.meta.is_some() => {
                self.meta_len += MAX_HEADER_LEN;
                let meta = self.meta.as_mut().expect("checked by the guard");
                meta.push(MetaElement {
                    tag: header.tag,
                    vr: header.vr,
                    value: Vec::new(),
                });
            }
            Token::Value { data, .. } if self.meta.is_some() => {
                self.meta_len += data.len();
                if self.meta_len > MAX_META_LEN {
                    return Err(TranscodeError::MetaTooLarge);
                }
                let meta = self.meta.as_mut().expect("checked by the guard");
                if let Some(element) = meta.last_mut() {
                    element.value.extend_from_slice(data);
                }
            }
            Token::MetaEnd {
                transfer_syntax,
                encoding,
            } => {
                if !can_transcode(&transfer_syntax) {
                    return Err(TranscodeError::Encapsulated(transfer_syntax));
                }
                self.transfer_syntax = transfer_syntax;
                self.big_endian = encoding.syntax.big_endian();
                self.write_meta()?;
                if encoding.deflated {
                    return Ok(Flow::Inflate);
                }
            }
            Token::Element(header) => self.element(header)?,
            Token::Value { data, last } => self.value(data, last)?,
            Token::SequenceStart(header) => {
                // CP-246: a `UN` of undefined length holds implicit VR LE items.
                let implicit = self.implicit() || header.vr == VR::UN;
                self.header(header.tag, header.vr, UNDEFINED)?;
                self.frames.push(implicit);
            }
            Token::ItemStart { .. } => {
                self.frames.push(self.implicit());
                self.write(&delimiter(ITEM, UNDEFINED))?;
            }
            Token::ItemEnd => {
                self.frames.pop();
                self.write(&delimiter(ITEM_DELIMITATION, 0))?;
            }
            Token::SequenceEnd => {
                self.frames.pop();
                self.write(&delimiter(SEQUENCE_DELIMITATION, 0))?;
            }
            Token::PixelSequenceStart(_) | Token::Fragment { .. } | Token::PixelSequenceEnd => {
                return Err(TranscodeError::Encapsulated(self.transfer_syntax.clone()));
            }
            Token::End => return Ok(Flow::End),
        }
        Ok(Flow::Continue)
    }

    /// Writes the preamble, `DICM` and the meta group with the new transfer syntax and a
    /// recomputed group length (PS3.10 §7.1).
    fn write_meta(&mut self) -> Result<(), TranscodeError> {
        let mut elements = self.meta.take().expect("the meta group ends once");
        elements.retain(|element| element.tag != META_GROUP_LENGTH);
        for element in &mut elements {
            if element.tag == TRANSFER_SYNTAX_UID {
                element.value = EXPLICIT_VR_LE.as_bytes().to_vec();
                if element.value.len() % 2 == 1 {
                    element.value.push(0);
                }
            }
        }
        let group_len: usize = elements
            .iter()
            .map(|e| explicit_header(e.tag, e.vr, e.value.len() as u32).1 + e.value.len())
            .sum();
        self.write(&[0; 128])?;
        self.write(b"DICM")?;
        self.header(META_GROUP_LENGTH, VR::UL, 4)?;
        self.write(&(group_len as u32).to_le_bytes())?;
        for element in &elements {
            self.header(element.tag, element.vr, element.value.len() as u32)?;
            self.write(&element.value)?;
        }
        Ok(())
    }

    /// Writes an element header in the encoding of the current position.
    fn header(&mut self, tag: Tag, vr: VR, length: u32) -> Result<(), TranscodeError> {
        if self.implicit() {
            return self.write(&delimiter(tag, length));
        }
        let (bytes, len) = explicit_header(tag, vr, length);
        self.write(&bytes[..len])
    }

    fn element(&mut self, header: ElementHeader) -> Result<(), TranscodeError> {
        let ElementHeader { tag, vr, .. } = header;
        self.skip = tag.element() == 0x0000;
        if self.skip {
            return Ok(());
        }
        self.unit = if self.big_endian && !self.implicit() {
            swap_unit(vr)
        } else {
            1
        };
        self.carry_len = 0;
        self.header(tag, vr, header.length.0)
    }

    /// Copies one chunk of a value, swapping it to little endian where the data set is big
    /// endian. A unit split between chunks waits in `carry`.
    fn value(&mut self, mut data: &[u8], last: bool) -> Result<(), TranscodeError> {
        if self.skip {
            return Ok(());
        }
        let unit = self.unit;
        if unit == 1 {
            return self.write(data);
        }
        if self.carry_len > 0 {
            let take = (unit - self.carry_len).min(data.len());
            self.carry[self.carry_len..self.carry_len + take].copy_from_slice(&data[..take]);
            self.carry_len += take;
            data = &data[take..];
            if self.carry_len == unit {
                let mut whole = self.carry;
                whole[..unit].reverse();
                self.carry_len = 0;
                self.write(&whole[..unit])?;
            }
        }
        let mut swapped = [0u8; SWAP_CHUNK];
        while data.len() >= unit {
            let n = (data.len() - data.len() % unit).min(SWAP_CHUNK);
            swapped[..n].copy_from_slice(&data[..n]);
            swapped[..n]
                .chunks_exact_mut(unit)
                .for_each(<[u8]>::reverse);
            self.write(&swapped[..n])?;
            data = &data[n..];
        }
        self.carry[self.carry_len..self.carry_len + data.len()].copy_from_slice(data);
        self.carry_len += data.len();
        if last && self.carry_len > 0 {
            // A length that is not a multiple of the unit: the malformed tail is copied.
            let tail = self.carry;
            let len = std::mem::take(&mut self.carry_len);
            self.write(&tail[..len])?;
        }
        Ok(())
    }
}

/// An item or delimiter, or an implicit VR little endian element header: tag and 32-bit
/// length.
fn delimiter(tag: Tag, length: u32) -> [u8; 8] {
    let mut bytes = [0u8; 8];
    bytes[0..2].copy_from_slice(&tag.group().to_le_bytes());
    bytes[2..4].copy_from_slice(&tag.element().to_le_bytes());
    bytes[4..8].copy_from_slice(&length.to_le_bytes());
    bytes
}

/// An explicit VR little endian element header (PS3.5 §7.1.2) and its length in bytes. A VR
/// with a 16-bit length field and a longer value is written as `UN` with a 32-bit length.
fn explicit_header(tag: Tag, vr: VR, length: u32) -> ([u8; MAX_HEADER_LEN], usize) {
    let (vr, long) = if has_long_length(vr) {
        (vr, true)
    } else if length > MAX_SHORT_LENGTH {
        (VR::UN, true)
    } else {
        (vr, false)
    };
    let mut bytes = [0u8; MAX_HEADER_LEN];
    bytes[0..2].copy_from_slice(&tag.group().to_le_bytes());
    bytes[2..4].copy_from_slice(&tag.element().to_le_bytes());
    bytes[4..6].copy_from_slice(&vr.to_bytes());
    if long {
        bytes[8..12].copy_from_slice(&length.to_le_bytes());
        (bytes, 12)
    } else {
        bytes[6..8].copy_from_slice(&(length as u16).to_le_bytes());
        (bytes, 8)
    }
}
