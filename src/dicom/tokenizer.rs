//! Sans-IO tokenizer for DICOM Part 10 streams (PS3.10 §7, PS3.5 §7).
//!
//! [`Tokenizer::next`] looks at the bytes available at the current position and either
//! returns one [`Token`] with the number of bytes it consumed, or asks for more with
//! [`Step::NeedMore`]. It never allocates from a length read off the input: values are handed
//! out in chunks of whatever input there is, so a claimed 4 GiB length costs nothing until the
//! bytes actually arrive, and lengths are checked against their defined-length parents.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Length, Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

use super::syntax::{dataset_encoding, has_long_length, DatasetEncoding, Syntax};
use super::tags::{
    ITEM, ITEM_DELIMITATION, META_GROUP_LENGTH, PIXEL_DATA, SEQUENCE_DELIMITATION,
    TRANSFER_SYNTAX_UID,
};

/// Preamble (128 bytes) plus the `DICM` prefix.
const PREAMBLE_LEN: usize = 132;
/// Longest element header: tag, VR, reserved, 32-bit length.
const MAX_HEADER_LEN: usize = 12;
/// Cap on captured meta group values (the transfer syntax UID is at most 64 bytes).
const MAX_CAPTURED_META_VALUE: usize = 256;

/// An element header as read from the stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ElementHeader {
    pub tag: Tag,
    pub vr: VR,
    pub length: Length,
    /// Stream position of the first header byte.
    pub offset: u64,
}

/// One unit of a Part 10 stream.
#[derive(Debug, PartialEq)]
pub enum Token<'a> {
    /// The 128-byte preamble and `DICM` prefix.
    Preamble,
    /// A primitive element; one or more `Value` tokens follow, the last with `last: true`.
    Element(ElementHeader),
    /// A chunk of the current element's or fragment's value.
    Value {
        data: &'a [u8],
        last: bool,
    },
    /// A sequence (SQ, or a CP-246 `UN` of undefined length read as implicit VR LE).
    SequenceStart(ElementHeader),
    /// An item of the current sequence.
    ItemStart {
        length: Length,
        offset: u64,
    },
    ItemEnd,
    SequenceEnd,
    /// Encapsulated pixel data; `Fragment`s follow, the first being the basic offset table.
    PixelSequenceStart(ElementHeader),
    /// One fragment of encapsulated pixel data; `Value` tokens follow.
    Fragment {
        length: u32,
        offset: u64,
    },
    PixelSequenceEnd,
    /// The file meta group ended; the data set that follows uses this encoding.
    MetaEnd {
        transfer_syntax: String,
        encoding: DatasetEncoding,
    },
    /// The data set ended cleanly at the end of the input.
    End,
}

/// The outcome of one [`Tokenizer::next`] call.
#[derive(Debug, PartialEq)]
pub enum Step<'a> {
    /// At least this many contiguous bytes are needed at the current position.
    NeedMore(usize),
    /// A token, and how many input bytes it consumed.
    Token { consumed: usize, token: Token<'a> },
}

/// Why a stream is not a readable Part 10 instance. Every variant carries the stream position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    pub offset: u64,
    pub kind: TokenErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenErrorKind {
    NotPart10,
    Truncated(String),
    InvalidVr([u8; 2]),
    LengthBeyondParent { tag: Tag, end: u64, parent_end: u64 },
    UndefinedLength { tag: Tag, vr: VR },
    Unexpected(String),
    TooDeep(usize),
    BadMeta(String),
    UnsupportedTransferSyntax(String),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = self.offset;
        match &self.kind {
            TokenErrorKind::NotPart10 => write!(
                f,
                "not DICOM Part 10: no DICM prefix and no file meta group"
            ),
            TokenErrorKind::Truncated(what) => write!(f, "truncated at offset {at}: {what}"),
            TokenErrorKind::InvalidVr(vr) => write!(
                f,
                "invalid VR {:?} at offset {at}",
                String::from_utf8_lossy(vr)
            ),
            TokenErrorKind::LengthBeyondParent {
                tag,
                end,
                parent_end,
            } => write!(
                f,
                "element {tag} at offset {at} ends at {end}, beyond its parent's end {parent_end}"
            ),
            TokenErrorKind::UndefinedLength { tag, vr } => write!(
                f,
                "element {tag} at offset {at} has undefined length, not allowed for VR {vr}"
            ),
            TokenErrorKind::Unexpected(what) => write!(f, "at offset {at}: {what}"),
            TokenErrorKind::TooDeep(max) => {
                write!(f, "sequences nested deeper than {max} at offset {at}")
            }
            TokenErrorKind::BadMeta(what) => {
                write!(f, "invalid file meta group at offset {at}: {what}")
            }
            TokenErrorKind::UnsupportedTransferSyntax(uid) => {
                write!(f, "transfer syntax {uid:?} is not supported")
            }
        }
    }
}

impl std::error::Error for TokenError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameKind {
    Sequence,
    Item,
    Fragments,
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    kind: FrameKind,
    /// End position of a defined-length sequence or item.
    end: Option<u64>,
    /// Nearest defined end of this frame or any ancestor: nothing inside may pass it.
    limit: Option<u64>,
    /// Encoding of the elements inside (implicit VR LE inside a CP-246 `UN`).
    syntax: Syntax,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Preamble,
    Meta,
    Dataset,
    Value { remaining: u32 },
    Done,
}

/// Header fields parsed from the input, before interpretation.
enum Parsed {
    Need(usize),
    Header {
        tag: Tag,
        vr: Option<VR>,
        length: u32,
        len: usize,
    },
}

/// Push-style Part 10 tokenizer. Feed it the bytes at the current position; it never reads
/// past what it returns as consumed.
#[derive(Debug)]
pub struct Tokenizer {
    state: State,
    /// Position of the next byte (bytes consumed so far).
    pos: u64,
    /// Encoding of top-level data set elements (explicit VR LE while in the meta group).
    syntax: Syntax,
    stack: Vec<Frame>,
    /// Open sequences (pixel sequences included); capped at `max_depth`.
    depth: usize,
    max_depth: usize,
    /// State to return to when the current value ends.
    after_value: State,
    /// Tag of the element whose value is being read, for error messages.
    value_tag: Tag,
    /// End of the meta group given by (0002,0000), if present.
    meta_end: Option<u64>,
    /// Meta element being captured (group length or transfer syntax), and its bytes.
    capture: Option<Tag>,
    captured: Vec<u8>,
    transfer_syntax: Option<String>,
    /// Position of the first data set element, where a wrong explicit VR claim is detected.
    dataset_start: u64,
}

impl Tokenizer {
    /// A tokenizer at the start of a Part 10 stream, accepting `max_depth` nested sequences.
    pub fn new(max_depth: usize) -> Tokenizer {
        Tokenizer {
            state: State::Preamble,
            pos: 0,
            syntax: Syntax::ExplicitLittle,
            stack: Vec::new(),
            depth: 0,
            max_depth,
            after_value: State::Dataset,
            value_tag: Tag(0, 0),
            meta_end: None,
            capture: None,
            captured: Vec::new(),
            transfer_syntax: None,
            dataset_start: 0,
        }
    }

    /// Position of the next byte in the token stream.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Open sequences and items around the current position (0 at the top level).
    pub fn nesting(&self) -> usize {
        self.stack.len()
    }

    /// The transfer syntax UID from the meta group, once read.
    pub fn transfer_syntax(&self) -> Option<&str> {
        self.transfer_syntax.as_deref()
    }

    fn error(&self, kind: TokenErrorKind) -> TokenError {
        TokenError {
            offset: self.pos,
            kind,
        }
    }

    /// Advances by one token over `input`, the bytes at the current position; `eof` says no
    /// bytes follow `input`.
    pub fn next<'a>(&mut self, input: &'a [u8], eof: bool) -> Result<Step<'a>, TokenError> {
        match self.state {
            State::Preamble => self.preamble(input, eof),
            State::Meta => self.meta(input, eof),
            State::Dataset => self.dataset(input, eof),
            State::Value { remaining } => self.value(input, eof, remaining),
            State::Done => Ok(Step::Token {
                consumed: 0,
                token: Token::End,
            }),
        }
    }

    /// The preamble and `DICM`, or, as some clients send (dicomweb-client writes data sets
    /// without preamble), a file meta group right at the start, optionally after `DICM`.
    fn preamble<'a>(&mut self, input: &'a [u8], eof: bool) -> Result<Step<'a>, TokenError> {
        if input.len() >= PREAMBLE_LEN && &input[128..132] == b"DICM" {
            self.state = State::Meta;
            return Ok(self.emit(PREAMBLE_LEN, Token::Preamble));
        }
        if input.len() < PREAMBLE_LEN && !eof {
            return Ok(Step::NeedMore(PREAMBLE_LEN));
        }
        if starts_with_meta_element(input) {
            self.state = State::Meta;
            return self.meta(input, eof);
        }
        if input.starts_with(b"DICM") && starts_with_meta_element(&input[4..]) {
            self.state = State::Meta;
            return Ok(self.emit(4, Token::Preamble));
        }
        Err(self.error(TokenErrorKind::NotPart10))
    }

    /// Like `token` for tokens that borrow nothing from the input.
    fn emit<'a>(&mut self, consumed: usize, token: Token<'a>) -> Step<'a> {
        self.pos += consumed as u64;
        Step::Token { consumed, token }
    }

    fn meta<'a>(&mut self, input: &'a [u8], eof: bool) -> Result<Step<'a>, TokenError> {
        let at_meta_end = self.meta_end.is_some_and(|end| self.pos >= end);
        let next_group_is_meta = input.len() >= 2 && u16::from_le_bytes([input[0], input[1]]) == 2;
        if at_meta_end || (input.len() >= 2 && !next_group_is_meta) || (input.is_empty() && eof) {
            return self.finish_meta();
        }
        match parse_header(input, Syntax::ExplicitLittle).map_err(|kind| self.error(kind))? {
            Parsed::Need(n) => {
                if eof {
                    return Err(self.error(TokenErrorKind::Truncated(
                        "file meta group element header".into(),
                    )));
                }
                Ok(Step::NeedMore(n))
            }
            Parsed::Header {
                tag,
                vr,
                length,
                len,
            } => {
                let Some(vr) = vr else {
                    return Err(self.error(TokenErrorKind::BadMeta(format!(
                        "unexpected item tag {tag}"
                    ))));
                };
                if length == u32::MAX {
                    return Err(self.error(TokenErrorKind::BadMeta(format!(
                        "element {tag} has undefined length"
                    ))));
                }
                if let Some(end) = self.meta_end {
                    if self.pos + (len as u64) + u64::from(length) > end {
                        return Err(self.error(TokenErrorKind::BadMeta(format!(
                            "element {tag} runs past the group length"
                        ))));
                    }
                }
                self.capture = None;
                self.captured.clear();
                if tag == META_GROUP_LENGTH || tag == TRANSFER_SYNTAX_UID {
                    if length as usize > MAX_CAPTURED_META_VALUE {
                        return Err(self.error(TokenErrorKind::BadMeta(format!(
                            "element {tag} is {length} bytes long"
                        ))));
                    }
                    self.capture = Some(tag);
                }
                let header = ElementHeader {
                    tag,
                    vr,
                    length: Length(length),
                    offset: self.pos,
                };
                self.value_tag = tag;
                self.after_value = State::Meta;
                self.state = State::Value { remaining: length };
                Ok(self.emit(len, Token::Element(header)))
            }
        }
    }

    fn finish_meta<'a>(&mut self) -> Result<Step<'a>, TokenError> {
        let Some(uid) = self.transfer_syntax.clone() else {
            return Err(self.error(TokenErrorKind::BadMeta(
                "no Transfer Syntax UID (0002,0010)".into(),
            )));
        };
        let Some(encoding) = dataset_encoding(&uid) else {
            return Err(self.error(TokenErrorKind::UnsupportedTransferSyntax(uid)));
        };
        self.syntax = encoding.syntax;
        self.dataset_start = self.pos;
        self.state = State::Dataset;
        Ok(self.emit(
            0,
            Token::MetaEnd {
                transfer_syntax: uid,
                encoding,
            },
        ))
    }

    fn value<'a>(
        &mut self,
        input: &'a [u8],
        eof: bool,
        remaining: u32,
    ) -> Result<Step<'a>, TokenError> {
        if remaining > 0 && input.is_empty() {
            if eof {
                let tag = self.value_tag;
                return Err(self.error(TokenErrorKind::Truncated(format!(
                    "value of {tag} is missing its last {remaining} bytes"
                ))));
            }
            return Ok(Step::NeedMore(1));
        }
        let take = input.len().min(remaining as usize);
        let data = &input[..take];
        let left = remaining - take as u32;
        if self.capture.is_some() {
            self.captured.extend_from_slice(data);
            if left == 0 {
                self.store_capture(self.pos + take as u64);
            }
        }
        self.state = if left == 0 {
            self.after_value
        } else {
            State::Value { remaining: left }
        };
        Ok(self.emit(
            take,
            Token::Value {
                data,
                last: left == 0,
            },
        ))
    }

    /// Stores a completed meta value; `value_end` is the position right after it.
    fn store_capture(&mut self, value_end: u64) {
        match self.capture.take() {
            Some(META_GROUP_LENGTH) if self.captured.len() == 4 => {
                let length = u32::from_le_bytes([
                    self.captured[0],
                    self.captured[1],
                    self.captured[2],
                    self.captured[3],
                ]);
                self.meta_end = Some(value_end + u64::from(length));
            }
            Some(TRANSFER_SYNTAX_UID) => {
                let uid = String::from_utf8_lossy(&self.captured);
                self.transfer_syntax = Some(uid.trim_end_matches(['\0', ' ']).to_string());
            }
            _ => {}
        }
        self.captured.clear();
    }

    fn current_syntax(&self) -> Syntax {
        self.stack.last().map_or(self.syntax, |frame| frame.syntax)
    }

    fn limit(&self) -> Option<u64> {
        self.stack.last().and_then(|frame| frame.limit)
    }

    /// Checks that `len` bytes starting at `start` stay inside every defined-length parent.
    fn check_fits(&self, tag: Tag, start: u64, len: u64) -> Result<(), TokenError> {
        if let Some(parent_end) = self.limit() {
            let end = start + len;
            if end > parent_end {
                return Err(self.error(TokenErrorKind::LengthBeyondParent {
                    tag,
                    end,
                    parent_end,
                }));
            }
        }
        Ok(())
    }

    fn push(
        &mut self,
        kind: FrameKind,
        end: Option<u64>,
        syntax: Syntax,
    ) -> Result<(), TokenError> {
        if kind != FrameKind::Item {
            if self.depth >= self.max_depth {
                return Err(self.error(TokenErrorKind::TooDeep(self.max_depth)));
            }
            self.depth += 1;
        }
        let limit = match (end, self.limit()) {
            (Some(end), Some(limit)) => Some(end.min(limit)),
            (end, limit) => end.or(limit),
        };
        self.stack.push(Frame {
            kind,
            end,
            limit,
            syntax,
        });
        Ok(())
    }

    fn pop(&mut self) -> Option<Frame> {
        let frame = self.stack.pop()?;
        if frame.kind != FrameKind::Item {
            self.depth -= 1;
        }
        Some(frame)
    }

    fn dataset<'a>(&mut self, input: &'a [u8], eof: bool) -> Result<Step<'a>, TokenError> {
        // Defined-length sequences and items end where their length says.
        if let Some(frame) = self.stack.last().copied() {
            if let Some(end) = frame.end {
                if self.pos == end {
                    self.pop();
                    let token = match frame.kind {
                        FrameKind::Sequence => Token::SequenceEnd,
                        FrameKind::Item => Token::ItemEnd,
                        FrameKind::Fragments => Token::PixelSequenceEnd,
                    };
                    return Ok(self.emit(0, token));
                }
            }
        }
        if input.is_empty() && eof {
            if self.stack.is_empty() {
                self.state = State::Done;
                return Ok(self.emit(0, Token::End));
            }
            return Err(self.error(TokenErrorKind::Truncated(
                "the data set ends inside a sequence or item".into(),
            )));
        }
        let mut syntax = self.current_syntax();
        let mut parsed = parse_header(input, syntax);
        if let Err(TokenErrorKind::InvalidVr(_)) = parsed {
            // Some writers label an implicit VR data set as explicit; like other toolkits,
            // read it as implicit VR when its very first element says so.
            if self.pos == self.dataset_start && syntax == Syntax::ExplicitLittle {
                self.syntax = Syntax::ImplicitLittle;
                syntax = Syntax::ImplicitLittle;
                parsed = parse_header(input, syntax);
            }
        }
        let (tag, vr, length, len) = match parsed.map_err(|kind| self.error(kind))? {
            Parsed::Need(n) => {
                if eof {
                    return Err(self.error(TokenErrorKind::Truncated(format!(
                        "element header needs {n} bytes, {} left",
                        input.len()
                    ))));
                }
                return Ok(Step::NeedMore(n));
            }
            Parsed::Header {
                tag,
                vr,
                length,
                len,
            } => (tag, vr, length, len),
        };
        let offset = self.pos;
        let value_start = offset + len as u64;
        // The header itself (a delimiter, an undefined-length header) must fit in its parent.
        self.check_fits(tag, offset, len as u64)?;
        let defined = (length != u32::MAX).then_some(u64::from(length));
        match self.stack.last().map(|frame| frame.kind) {
            Some(FrameKind::Sequence) => match tag {
                ITEM => {
                    self.check_fits(tag, value_start, defined.unwrap_or(0))?;
                    self.push(FrameKind::Item, defined.map(|l| value_start + l), syntax)?;
                    Ok(self.emit(
                        len,
                        Token::ItemStart {
                            length: Length(length),
                            offset,
                        },
                    ))
                }
                SEQUENCE_DELIMITATION if self.stack.last().is_some_and(|f| f.end.is_none()) => {
                    self.pop();
                    Ok(self.emit(len, Token::SequenceEnd))
                }
                other => Err(self.error(TokenErrorKind::Unexpected(format!(
                    "expected an item in a sequence, found {other}"
                )))),
            },
            Some(FrameKind::Fragments) => match tag {
                ITEM => {
                    let Some(fragment_len) = defined else {
                        return Err(self.error(TokenErrorKind::Unexpected(
                            "pixel data fragment with undefined length".into(),
                        )));
                    };
                    self.check_fits(tag, value_start, fragment_len)?;
                    self.value_tag = PIXEL_DATA;
                    self.after_value = State::Dataset;
                    self.state = State::Value { remaining: length };
                    Ok(self.emit(len, Token::Fragment { length, offset }))
                }
                SEQUENCE_DELIMITATION => {
                    self.pop();
                    Ok(self.emit(len, Token::PixelSequenceEnd))
                }
                other => Err(self.error(TokenErrorKind::Unexpected(format!(
                    "expected a pixel data fragment, found {other}"
                )))),
            },
            Some(FrameKind::Item) | None => self.element(tag, vr, length, len, syntax),
        }
    }

    fn element<'a>(
        &mut self,
        tag: Tag,
        vr: Option<VR>,
        length: u32,
        len: usize,
        syntax: Syntax,
    ) -> Result<Step<'a>, TokenError> {
        let offset = self.pos;
        let value_start = offset + len as u64;
        if tag == ITEM_DELIMITATION {
            let in_undefined_item = self
                .stack
                .last()
                .is_some_and(|f| f.kind == FrameKind::Item && f.end.is_none());
            if !in_undefined_item {
                return Err(self.error(TokenErrorKind::Unexpected(
                    "item delimiter outside an item of undefined length".into(),
                )));
            }
            self.pop();
            return Ok(self.emit(len, Token::ItemEnd));
        }
        if tag.group() == 0xFFFE {
            return Err(self.error(TokenErrorKind::Unexpected(format!(
                "unexpected {tag} where a data element was expected"
            ))));
        }
        let vr = vr.unwrap_or_else(|| implicit_vr(tag));
        let header = |length| ElementHeader {
            tag,
            vr,
            length: Length(length),
            offset,
        };
        if length == u32::MAX {
            return if vr == VR::SQ || (vr == VR::UN && tag != PIXEL_DATA) {
                // CP-246: an undefined-length UN is a sequence in implicit VR little endian.
                let inner = if vr == VR::UN {
                    Syntax::ImplicitLittle
                } else {
                    syntax
                };
                self.push(FrameKind::Sequence, None, inner)?;
                Ok(self.emit(len, Token::SequenceStart(header(length))))
            } else if tag == PIXEL_DATA || matches!(vr, VR::OB | VR::OW) {
                self.push(FrameKind::Fragments, None, syntax)?;
                Ok(self.emit(len, Token::PixelSequenceStart(header(length))))
            } else {
                Err(self.error(TokenErrorKind::UndefinedLength { tag, vr }))
            };
        }
        self.check_fits(tag, value_start, u64::from(length))?;
        if vr == VR::SQ {
            self.push(
                FrameKind::Sequence,
                Some(value_start + u64::from(length)),
                syntax,
            )?;
            return Ok(self.emit(len, Token::SequenceStart(header(length))));
        }
        self.value_tag = tag;
        self.after_value = State::Dataset;
        self.state = State::Value { remaining: length };
        Ok(self.emit(len, Token::Element(header(length))))
    }
}

/// Whether `input` opens with an explicit VR little endian element of group 0002.
fn starts_with_meta_element(input: &[u8]) -> bool {
    input.len() >= 6
        && input[0..2] == [0x02, 0x00]
        && VR::from_binary([input[4], input[5]]).is_some()
}

/// The VR of `tag` in an implicit VR data set, from the standard dictionary.
fn implicit_vr(tag: Tag) -> VR {
    if tag.element() == 0x0000 {
        return VR::UL;
    }
    if tag.group() % 2 == 1 {
        // Private creators, (gggg,0010-00FF), are LO (PS3.5 7.8.1); other private tags unknown.
        return if (0x0010..=0x00FF).contains(&tag.element()) {
            VR::LO
        } else {
            VR::UN
        };
    }
    StandardDataDictionary
        .by_tag(tag)
        .map_or(VR::UN, |entry| entry.vr().relaxed())
}

fn parse_header(input: &[u8], syntax: Syntax) -> Result<Parsed, TokenErrorKind> {
    if input.len() < 8 {
        return Ok(Parsed::Need(8));
    }
    let tag = Tag(syntax.u16_at(input, 0), syntax.u16_at(input, 2));
    if tag.group() == 0xFFFE || !syntax.explicit_vr() {
        return Ok(Parsed::Header {
            tag,
            vr: None,
            length: syntax.u32_at(input, 4),
            len: 8,
        });
    }
    let vr_bytes = [input[4], input[5]];
    let Some(vr) = VR::from_binary(vr_bytes) else {
        return Err(TokenErrorKind::InvalidVr(vr_bytes));
    };
    if has_long_length(vr) {
        if input.len() < MAX_HEADER_LEN {
            return Ok(Parsed::Need(MAX_HEADER_LEN));
        }
        return Ok(Parsed::Header {
            tag,
            vr: Some(vr),
            length: syntax.u32_at(input, 8),
            len: 12,
        });
    }
    Ok(Parsed::Header {
        tag,
        vr: Some(vr),
        length: u32::from(syntax.u16_at(input, 6)),
        len: 8,
    })
}
