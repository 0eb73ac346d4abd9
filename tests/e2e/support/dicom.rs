//! An annotated DICOM byte builder for the structures dicom-object cannot (or will not) write:
//! big endian, CP-246 UN, deep nesting, odd lengths, and deliberately wrong lengths. Every
//! method emits exactly the bytes its name says, in the builder's transfer syntax; nothing is
//! padded or fixed up unless the method says so.

use std::io::Write;

pub const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
pub const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
pub const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";
pub const DEFLATED_LE: &str = "1.2.840.10008.1.2.1.99";
pub const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";
pub const RLE: &str = "1.2.840.10008.1.2.5";
pub const JPEG_2000: &str = "1.2.840.10008.1.2.4.90";
/// Secondary Capture Image Storage.
pub const SECONDARY_CAPTURE: &str = "1.2.840.10008.5.1.4.1.1.7";

pub const ITEM: (u16, u16) = (0xFFFE, 0xE000);
pub const ITEM_END: (u16, u16) = (0xFFFE, 0xE00D);
pub const SEQUENCE_END: (u16, u16) = (0xFFFE, 0xE0DD);
pub const UNDEFINED: u32 = 0xFFFF_FFFF;

/// How a data set is encoded: VR explicit or implicit, and byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    ExplicitLe,
    ImplicitLe,
    ExplicitBe,
}

/// VRs whose explicit header has two reserved bytes and a 4-byte length (PS3.5 §7.1.2).
const LONG_VRS: [&[u8; 2]; 13] = [
    b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV",
];

/// Appends data elements to a byte vector in one transfer syntax.
pub struct Builder {
    pub syntax: Syntax,
    pub bytes: Vec<u8>,
}

impl Builder {
    pub fn new(syntax: Syntax) -> Builder {
        Builder {
            syntax,
            bytes: Vec::new(),
        }
    }

    pub fn u16(&mut self, value: u16) -> &mut Builder {
        match self.syntax {
            Syntax::ExplicitBe => self.bytes.extend_from_slice(&value.to_be_bytes()),
            _ => self.bytes.extend_from_slice(&value.to_le_bytes()),
        }
        self
    }

    pub fn u32(&mut self, value: u32) -> &mut Builder {
        match self.syntax {
            Syntax::ExplicitBe => self.bytes.extend_from_slice(&value.to_be_bytes()),
            _ => self.bytes.extend_from_slice(&value.to_le_bytes()),
        }
        self
    }

    pub fn raw(&mut self, bytes: &[u8]) -> &mut Builder {
        self.bytes.extend_from_slice(bytes);
        self
    }

    /// An element header with the given length, whatever the value that follows.
    pub fn header(&mut self, tag: (u16, u16), vr: &[u8; 2], length: u32) -> &mut Builder {
        self.u16(tag.0).u16(tag.1);
        if self.syntax == Syntax::ImplicitLe {
            return self.u32(length);
        }
        self.raw(vr);
        if LONG_VRS.contains(&vr) {
            self.raw(&[0, 0]).u32(length)
        } else {
            let short = u16::try_from(length).expect("short-VR length fits 16 bits");
            self.u16(short)
        }
    }

    /// An element whose length is exactly `value.len()` (odd lengths stay odd).
    pub fn element(&mut self, tag: (u16, u16), vr: &[u8; 2], value: &[u8]) -> &mut Builder {
        let length = u32::try_from(value.len()).expect("value under 4 GiB");
        self.header(tag, vr, length).raw(value)
    }

    /// A text element padded to even length (UI with NUL, other VRs with a space).
    pub fn text(&mut self, tag: (u16, u16), vr: &[u8; 2], value: &str) -> &mut Builder {
        let mut bytes = value.as_bytes().to_vec();
        if bytes.len() % 2 == 1 {
            bytes.push(if vr == b"UI" { 0 } else { b' ' });
        }
        self.element(tag, vr, &bytes)
    }

    /// A US element with one value, in the builder's byte order.
    pub fn us(&mut self, tag: (u16, u16), value: u16) -> &mut Builder {
        self.header(tag, b"US", 2).u16(value)
    }

    /// Item, item delimitation and sequence delimitation tags carry no VR in any syntax.
    pub fn delimiter(&mut self, tag: (u16, u16), length: u32) -> &mut Builder {
        self.u16(tag.0).u16(tag.1).u32(length)
    }

    pub fn sequence_start_undefined(&mut self, tag: (u16, u16)) -> &mut Builder {
        self.header(tag, b"SQ", UNDEFINED)
    }

    pub fn item_start_undefined(&mut self) -> &mut Builder {
        self.delimiter(ITEM, UNDEFINED)
    }

    pub fn item_end(&mut self) -> &mut Builder {
        self.delimiter(ITEM_END, 0)
    }

    pub fn sequence_end(&mut self) -> &mut Builder {
        self.delimiter(SEQUENCE_END, 0)
    }

    /// A defined-length sequence of defined-length items (each item's bytes as given).
    pub fn sequence_defined(&mut self, tag: (u16, u16), items: &[Vec<u8>]) -> &mut Builder {
        let length: usize = items.iter().map(|item| 8 + item.len()).sum();
        self.header(tag, b"SQ", u32::try_from(length).expect("small sequence"));
        for item in items {
            self.delimiter(ITEM, u32::try_from(item.len()).expect("small item"))
                .raw(item);
        }
        self
    }

    /// Encapsulated pixel data (PS3.5 §A.4): OB of undefined length, the basic offset table
    /// item (empty when `offsets` is), one item per fragment, and the sequence delimiter.
    pub fn encapsulated_pixels(&mut self, offsets: &[u32], fragments: &[Vec<u8>]) -> &mut Builder {
        self.header((0x7FE0, 0x0010), b"OB", UNDEFINED);
        self.delimiter(ITEM, 4 * offsets.len() as u32);
        for offset in offsets {
            // Offsets are always little endian in encapsulated syntaxes.
            self.raw(&offset.to_le_bytes());
        }
        for fragment in fragments {
            self.delimiter(ITEM, u32::try_from(fragment.len()).expect("small fragment"))
                .raw(fragment);
        }
        self.sequence_end()
    }
}

/// The file meta group (always explicit VR little endian, PS3.10 §7.1) with its group length.
pub fn meta_group(class: &str, sop: &str, transfer_syntax: &str) -> Vec<u8> {
    let mut body = Builder::new(Syntax::ExplicitLe);
    body.element((0x0002, 0x0001), b"OB", &[0, 1])
        .text((0x0002, 0x0002), b"UI", class)
        .text((0x0002, 0x0003), b"UI", sop)
        .text((0x0002, 0x0010), b"UI", transfer_syntax)
        .text((0x0002, 0x0012), b"UI", "1.2.826.0.1.3680043.10.1234.99")
        .text((0x0002, 0x0013), b"SH", "E2E_TESTS");
    let mut group = Builder::new(Syntax::ExplicitLe);
    group.element(
        (0x0002, 0x0000),
        b"UL",
        &(body.bytes.len() as u32).to_le_bytes(),
    );
    group.raw(&body.bytes);
    group.bytes
}

/// A Part 10 file: 128-byte preamble, `DICM`, meta group, then the data set bytes as given.
pub fn part10(class: &str, sop: &str, transfer_syntax: &str, dataset: &[u8]) -> Vec<u8> {
    let mut file = vec![0u8; 128];
    file.extend_from_slice(b"DICM");
    file.extend_from_slice(&meta_group(class, sop, transfer_syntax));
    file.extend_from_slice(dataset);
    file
}

/// Raw deflate (no zlib header), as PS3.5 §A.5 requires for the deflated syntax.
pub fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("deflate into memory");
    encoder.finish().expect("finish deflate")
}
