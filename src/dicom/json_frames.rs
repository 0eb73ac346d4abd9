//! Where the frames of an instance's pixel data are, recorded while the [`super::json`]
//! listener reads it: native frames from the image attributes, encapsulated ones from the
//! positions of the fragments and the basic offset table (PS3.5 A.4).

use dicom_core::Tag;
use serde_json::{Map, Value};

use super::json_values::tag_key;

/// Longest basic offset table kept (4 bytes a frame: 262,144 frames). A longer one is dropped,
/// not buffered; frames can still be found from the fragments.
const MAX_OFFSET_TABLE: usize = 1 << 20;
/// Most fragment positions kept (16 bytes each, so 16 MiB). Past it no [`Frames`] are
/// recorded, and a retrieve has to parse the pixel data.
const MAX_FRAGMENTS: usize = 1 << 20;

const SAMPLES_PER_PIXEL: Tag = Tag(0x0028, 0x0002);
const NUMBER_OF_FRAMES: Tag = Tag(0x0028, 0x0008);
const ROWS: Tag = Tag(0x0028, 0x0010);
const COLUMNS: Tag = Tag(0x0028, 0x0011);
const BITS_ALLOCATED: Tag = Tag(0x0028, 0x0100);

/// Where the frames of the top-level pixel data are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frames {
    /// Frame `k` is at `offset + k * frame_length`. `frame_length` is rounded up to whole
    /// bytes, so with Bits Allocated 1 frames are byte-aligned only when
    /// rows × columns × samples is a multiple of 8. `count` is Number of Frames (default 1),
    /// less any frames the value is too short to hold.
    Native {
        offset: u64,
        frame_length: u64,
        count: u32,
    },
    /// (stream position, length) of each fragment's bytes, the offset table excepted, and
    /// the basic offset table (empty when absent or too long to keep).
    Encapsulated {
        fragments: Vec<(u64, u64)>,
        basic_offset_table: Vec<u32>,
    },
}

/// The frames of native pixel data of `length` bytes at `offset`, from the image attributes
/// of the data set; `None` when they are missing.
pub fn native_frames(dataset: &Map<String, Value>, offset: u64, length: u64) -> Option<Frames> {
    let number = |tag: Tag| dataset.get(&tag_key(tag))?.get("Value")?.get(0)?.as_u64();
    let bits_per_frame = number(ROWS)?
        .checked_mul(number(COLUMNS)?)?
        .checked_mul(number(SAMPLES_PER_PIXEL).unwrap_or(1))?
        .checked_mul(number(BITS_ALLOCATED)?)?;
    if bits_per_frame == 0 {
        return None;
    }
    let declared = number(NUMBER_OF_FRAMES).unwrap_or(1);
    let present = length.saturating_mul(8) / bits_per_frame;
    Some(Frames::Native {
        offset,
        frame_length: bits_per_frame.div_ceil(8),
        count: u32::try_from(declared.min(present)).unwrap_or(u32::MAX),
    })
}

/// What an item of a pixel sequence holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentKind {
    /// The first item: the basic offset table, whose value chunks follow.
    OffsetTable,
    Fragment,
}

/// An open encapsulated pixel data element.
#[derive(Debug)]
pub struct PixelSequence {
    pub tag: Tag,
    /// Its bulk data path.
    pub path: String,
    /// Stream position of its first item.
    pub start: u64,
    big_endian: bool,
    /// Items seen, the offset table included.
    n_items: u64,
    offset_table: Vec<u8>,
    offset_table_too_long: bool,
    fragments: Vec<(u64, u64)>,
    too_many_fragments: bool,
}

impl PixelSequence {
    pub fn new(tag: Tag, path: String, start: u64, big_endian: bool) -> PixelSequence {
        PixelSequence {
            tag,
            path,
            start,
            big_endian,
            n_items: 0,
            offset_table: Vec::new(),
            offset_table_too_long: false,
            fragments: Vec::new(),
            too_many_fragments: false,
        }
    }

    /// An item whose `length` bytes start at `value_start`.
    pub fn fragment(&mut self, length: u32, value_start: u64) -> FragmentKind {
        self.n_items += 1;
        if self.n_items == 1 {
            return FragmentKind::OffsetTable;
        }
        if self.fragments.len() < MAX_FRAGMENTS {
            self.fragments.push((value_start, u64::from(length)));
        } else {
            self.too_many_fragments = true;
        }
        FragmentKind::Fragment
    }

    /// A chunk of the basic offset table.
    pub fn offset_table_chunk(&mut self, data: &[u8]) {
        if self.offset_table.len() + data.len() > MAX_OFFSET_TABLE {
            self.offset_table_too_long = true;
            self.offset_table = Vec::new();
        } else if !self.offset_table_too_long {
            self.offset_table.extend_from_slice(data);
        }
    }

    /// The frames, unless there were too many fragments to record.
    pub fn into_frames(self) -> Option<Frames> {
        if self.too_many_fragments {
            return None;
        }
        let basic_offset_table = self
            .offset_table
            .chunks_exact(4)
            .map(|b| {
                let quad = [b[0], b[1], b[2], b[3]];
                if self.big_endian {
                    u32::from_be_bytes(quad)
                } else {
                    u32::from_le_bytes(quad)
                }
            })
            .collect();
        Some(Frames::Encapsulated {
            fragments: self.fragments,
            basic_offset_table,
        })
    }
}
