//! Tags the reader, the transcoder and the listeners interpret themselves (PS3.5 §7.5, PS3.10
//! §7.1, PS3.3 C.7.6.3).

use dicom_core::Tag;

/// Item (FFFE,E000).
pub const ITEM: Tag = Tag(0xFFFE, 0xE000);
/// Item Delimitation Item (FFFE,E00D).
pub const ITEM_DELIMITATION: Tag = Tag(0xFFFE, 0xE00D);
/// Sequence Delimitation Item (FFFE,E0DD).
pub const SEQUENCE_DELIMITATION: Tag = Tag(0xFFFE, 0xE0DD);
/// Pixel Data (7FE0,0010).
pub const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);
/// File Meta Information Group Length (0002,0000).
pub const META_GROUP_LENGTH: Tag = Tag(0x0002, 0x0000);
/// Transfer Syntax UID (0002,0010).
pub const TRANSFER_SYNTAX_UID: Tag = Tag(0x0002, 0x0010);
