//! [`JsonListener`]: the DICOM JSON of one instance (PS3.18 Annex F.2), as WADO-RS metadata
//! and QIDO-RS results need it, built from its token stream in the same pass that stores it.
//!
//! Values too long to hold (bulk data, pixel data) are never buffered: they become
//! `BulkDataURI`s, and the listener records where each sits in the stream ([`BulkValue`]), and
//! where the pixel data frames are ([`Frames`]), so a later retrieve is a seek, not a parse.
//! Rendering of single values lives in `json_values`, frame bookkeeping in `json_frames`.

use dicom_core::{Tag, VR};
use serde_json::{Map, Value};

pub use super::json_frames::Frames;
use super::json_frames::{native_frames, FragmentKind, PixelSequence};
use super::json_values::{attribute, is_binary, render, tag_key, TextDecoding, ValueEncoding};
use super::listener::{Listener, Rejection, TokenContext};
use super::syntax::Syntax;
use super::tags::PIXEL_DATA;
use super::tokenizer::{ElementHeader, Token};

/// Scheme of the `BulkDataURI`s the listener writes, followed by the value's path; the server
/// rewrites it to an absolute URL when it serves the metadata.
pub const BULK_URI_PREFIX: &str = "dicomweb-bulk:";

/// Default of [`JsonOptions::max_value_length`]: far above any text or number list seen in
/// practice, small enough that a hostile length costs little.
pub const DEFAULT_MAX_VALUE_LENGTH: usize = 64 * 1024;

const SPECIFIC_CHARACTER_SET: Tag = Tag(0x0008, 0x0005);
const FLOAT_PIXEL_DATA: Tag = Tag(0x7FE0, 0x0008);
const DOUBLE_FLOAT_PIXEL_DATA: Tag = Tag(0x7FE0, 0x0009);

/// What becomes a `BulkDataURI` rather than a value in the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonOptions {
    /// Binary values (OB OD OF OL OV OW UN) longer than this become `BulkDataURI`, shorter
    /// ones `InlineBinary`. Pixel data is always bulk data.
    pub bulk_data_threshold: usize,
    /// Other values (text, numbers) longer than this become `BulkDataURI` instead of being
    /// held in memory to be rendered.
    pub max_value_length: usize,
}

impl Default for JsonOptions {
    fn default() -> Self {
        JsonOptions {
            bulk_data_threshold: 1024,
            max_value_length: DEFAULT_MAX_VALUE_LENGTH,
        }
    }
}

/// The DICOM JSON of an instance and where its bulk data sits in the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceJson {
    /// The top-level object, file meta group (0002,xxxx) excluded.
    pub dataset: Map<String, Value>,
    /// Every value replaced by a `BulkDataURI`, in stream order.
    pub bulk: Vec<BulkValue>,
    /// Where the frames of the top-level pixel data are, when that can be told.
    pub frames: Option<Frames>,
    /// The data set was deflated: positions count inflated bytes, not bytes of the file.
    pub deflated: bool,
    /// Explicit VR big endian data set: bulk values and native frames need their words
    /// swapped to be served as little endian.
    pub big_endian: bool,
}

/// A value left out of the JSON; its marker there is [`BULK_URI_PREFIX`] + `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkValue {
    /// Tags and 0-based item indexes from the top: `7FE00010`, `00540016/0/00181072`.
    pub path: String,
    pub vr: VR,
    /// Stream position of the first value byte. For encapsulated pixel data, of its first
    /// item (the offset table): the value runs to the end of its sequence delimiter.
    pub offset: u64,
    pub length: u64,
}

/// An open data set: the top level or a sequence item.
#[derive(Debug)]
struct Item {
    object: Map<String, Value>,
    /// Path of the item, ending in `/` (empty at the top level): `00540016/0/`.
    prefix: String,
    encoding: ValueEncoding,
}

#[derive(Debug)]
struct Sequence {
    tag: Tag,
    path: String,
    items: Vec<Value>,
    /// Encoding of its items: the parent's, but little endian inside a CP-246 `UN`.
    encoding: ValueEncoding,
}

#[derive(Debug)]
enum Level {
    Item(Item),
    Sequence(Sequence),
    Pixels(PixelSequence),
}

/// Where the chunks of the current value go.
#[derive(Debug)]
enum Pending {
    Nowhere,
    /// A value to render once complete; its length is within a cap.
    Collect {
        tag: Tag,
        vr: VR,
        bytes: Vec<u8>,
    },
    /// The basic offset table of the open pixel sequence.
    OffsetTable,
}

/// Builds the [`InstanceJson`] of one instance from its tokens. It never rejects an
/// instance: a value it cannot render as its VR says is rendered as well as it can be.
#[derive(Debug)]
pub struct JsonListener {
    options: JsonOptions,
    /// Set at `MetaEnd`: the tokens before it are the file meta group, left out.
    in_dataset: bool,
    deflated: bool,
    big_endian: bool,
    /// Open data sets, sequences and pixel sequences; `levels[0]` is the top level.
    levels: Vec<Level>,
    pending: Pending,
    bulk: Vec<BulkValue>,
    /// (position, length) of the top-level native pixel data.
    native_pixels: Option<(u64, u64)>,
    /// Frames of the top-level encapsulated pixel data, once its sequence ended.
    encapsulated: Option<Frames>,
    /// Stream position after the last token.
    position: u64,
}

impl JsonListener {
    pub fn new(options: JsonOptions) -> JsonListener {
        JsonListener {
            options,
            in_dataset: false,
            deflated: false,
            big_endian: false,
            levels: vec![Level::Item(Item {
                object: Map::new(),
                prefix: String::new(),
                encoding: ValueEncoding::default(),
            })],
            pending: Pending::Nowhere,
            bulk: Vec::new(),
            native_pixels: None,
            encapsulated: None,
            position: 0,
        }
    }

    /// The JSON and bulk data positions. After a stream that ended early, what was read:
    /// open sequences and items are closed where the stream stopped.
    pub fn into_result(mut self) -> InstanceJson {
        while self.levels.len() > 1 {
            self.close(self.position);
        }
        let Some(Level::Item(top)) = self.levels.pop() else {
            unreachable!("levels[0] is always the top-level item");
        };
        let frames = self.encapsulated.or_else(|| {
            let (offset, length) = self.native_pixels?;
            native_frames(&top.object, offset, length)
        });
        InstanceJson {
            dataset: top.object,
            bulk: self.bulk,
            frames,
            deflated: self.deflated,
            big_endian: self.big_endian,
        }
    }

    fn is_top_level(&self) -> bool {
        self.levels.len() == 1
    }

    /// Inserts an attribute into the open data set; the meta group stays out.
    fn insert(&mut self, tag: Tag, value: Value) {
        let top_level = self.is_top_level();
        if let Some(Level::Item(item)) = self.levels.last_mut() {
            if !(top_level && tag.group() == 0x0002) {
                item.object.insert(tag_key(tag), value);
            }
        }
    }

    /// Records a bulk value and puts its `BulkDataURI` in the open data set.
    fn insert_bulk(&mut self, tag: Tag, vr: VR, path: String, offset: u64, length: u64) {
        let uri = Value::String(format!("{BULK_URI_PREFIX}{path}"));
        self.insert(tag, attribute(vr, Some(("BulkDataURI", uri))));
        self.bulk.push(BulkValue {
            path,
            vr,
            offset,
            length,
        });
    }

    fn element(&mut self, header: &ElementHeader, value_start: u64) {
        let Some(Level::Item(item)) = self.levels.last() else {
            return;
        };
        if self.is_top_level() && header.tag.group() == 0x0002 {
            return;
        }
        let is_pixels = matches!(
            header.tag,
            PIXEL_DATA | FLOAT_PIXEL_DATA | DOUBLE_FLOAT_PIXEL_DATA
        );
        let cap = if is_pixels {
            0
        } else if is_binary(header.vr) {
            self.options.bulk_data_threshold
        } else {
            self.options.max_value_length
        };
        // Element lengths are always defined: undefined ones open sequences.
        let length = header.length.0;
        if length as usize <= cap {
            self.pending = Pending::Collect {
                tag: header.tag,
                vr: header.vr,
                bytes: Vec::with_capacity(length as usize),
            };
            return;
        }
        let path = format!("{}{}", item.prefix, tag_key(header.tag));
        let length = u64::from(length);
        if is_pixels && self.is_top_level() {
            self.native_pixels = Some((value_start, length));
        }
        self.insert_bulk(header.tag, header.vr, path, value_start, length);
    }

    fn value(&mut self, data: &[u8], last: bool) {
        match &mut self.pending {
            Pending::Nowhere => {}
            Pending::Collect { bytes, .. } => bytes.extend_from_slice(data),
            Pending::OffsetTable => {
                if let Some(Level::Pixels(pixels)) = self.levels.last_mut() {
                    pixels.offset_table_chunk(data);
                }
            }
        }
        if !last {
            return;
        }
        let Pending::Collect { tag, vr, bytes } =
            std::mem::replace(&mut self.pending, Pending::Nowhere)
        else {
            return;
        };
        let Some(Level::Item(item)) = self.levels.last_mut() else {
            return;
        };
        if tag == SPECIFIC_CHARACTER_SET {
            item.encoding.text = TextDecoding::from_specific_character_set(&bytes);
        }
        let value = render(vr, &bytes, item.encoding);
        self.insert(tag, value);
    }

    /// The path and encoding of a sequence opening in the open data set.
    fn child_of_item(&self, tag: Tag) -> (String, ValueEncoding) {
        match self.levels.last() {
            Some(Level::Item(item)) => (format!("{}{}", item.prefix, tag_key(tag)), item.encoding),
            _ => (tag_key(tag), ValueEncoding::default()),
        }
    }

    fn open_sequence(&mut self, header: &ElementHeader) {
        let (path, mut encoding) = self.child_of_item(header.tag);
        if header.vr == VR::UN {
            // CP-246: an undefined-length UN holds implicit VR little endian items.
            encoding.big_endian = false;
        }
        self.levels.push(Level::Sequence(Sequence {
            tag: header.tag,
            path,
            items: Vec::new(),
            encoding,
        }));
    }

    fn open_item(&mut self) {
        let (prefix, encoding) = match self.levels.last() {
            Some(Level::Sequence(sequence)) => (
                format!("{}/{}/", sequence.path, sequence.items.len()),
                sequence.encoding,
            ),
            _ => (String::new(), ValueEncoding::default()),
        };
        self.levels.push(Level::Item(Item {
            object: Map::new(),
            prefix,
            encoding,
        }));
    }

    fn open_pixel_sequence(&mut self, header: &ElementHeader, start: u64) {
        let (path, encoding) = self.child_of_item(header.tag);
        let pixels = PixelSequence::new(header.tag, path, start, encoding.big_endian);
        self.levels.push(Level::Pixels(pixels));
    }

    fn fragment(&mut self, length: u32, value_start: u64) {
        if let Some(Level::Pixels(pixels)) = self.levels.last_mut() {
            if pixels.fragment(length, value_start) == FragmentKind::OffsetTable {
                self.pending = Pending::OffsetTable;
            }
        }
    }

    /// Closes the innermost open level, which ended at stream position `end`, into its parent.
    fn close(&mut self, end: u64) {
        if self.is_top_level() {
            return;
        }
        match self.levels.pop().expect("more than the top level is open") {
            Level::Item(item) => {
                if let Some(Level::Sequence(sequence)) = self.levels.last_mut() {
                    sequence.items.push(Value::Object(item.object));
                }
            }
            Level::Sequence(sequence) => {
                // An empty sequence has no Value (PS3.18 F.2.5).
                let has_items = !sequence.items.is_empty();
                let items = has_items.then_some(("Value", Value::Array(sequence.items)));
                self.insert(sequence.tag, attribute(VR::SQ, items));
            }
            Level::Pixels(pixels) => {
                let length = end.saturating_sub(pixels.start);
                let (path, start) = (pixels.path.clone(), pixels.start);
                self.insert_bulk(pixels.tag, VR::OB, path, start, length);
                if self.is_top_level() && pixels.tag == PIXEL_DATA {
                    self.encapsulated = pixels.into_frames();
                }
            }
        }
    }
}

impl Listener for JsonListener {
    fn on_token(&mut self, token: &Token<'_>, at: TokenContext) -> Result<(), Rejection> {
        self.position = at.position;
        if !matches!(token, Token::Value { .. }) {
            self.pending = Pending::Nowhere;
        }
        match token {
            Token::MetaEnd { encoding, .. } => {
                self.in_dataset = true;
                self.deflated = encoding.deflated;
                self.big_endian = encoding.syntax == Syntax::ExplicitBig;
                if let Some(Level::Item(top)) = self.levels.first_mut() {
                    top.encoding.big_endian = self.big_endian;
                }
            }
            _ if !self.in_dataset => {}
            Token::Element(header) => self.element(header, at.position),
            Token::Value { data, last } => self.value(data, *last),
            Token::SequenceStart(header) => self.open_sequence(header),
            Token::ItemStart { .. } => self.open_item(),
            Token::PixelSequenceStart(header) => self.open_pixel_sequence(header, at.position),
            Token::Fragment { length, .. } => self.fragment(*length, at.position),
            Token::ItemEnd if matches!(self.levels.last(), Some(Level::Item(_))) => {
                self.close(at.position)
            }
            Token::SequenceEnd if matches!(self.levels.last(), Some(Level::Sequence(_))) => {
                self.close(at.position)
            }
            Token::PixelSequenceEnd if matches!(self.levels.last(), Some(Level::Pixels(_))) => {
                self.close(at.position)
            }
            _ => {}
        }
        Ok(())
    }
}
