//! Valid Part 10 instances for the fuzzer to start from: one per structure the server reads
//! (the three uncompressed syntaxes, deflate, encapsulated pixel data, nested sequences),
//! built with the e2e tests' byte builder. UIDs are fixed per kind, so a run does not fill
//! the disk with new studies; mutations that hit a UID make new ones.

use crate::dicom::{self, Builder, Syntax};

/// The instances the fuzzer can choose from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ExplicitLe,
    ImplicitLe,
    ExplicitBe,
    Deflated,
    Encapsulated,
    Sequences,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::ExplicitLe,
        Kind::ImplicitLe,
        Kind::ExplicitBe,
        Kind::Deflated,
        Kind::Encapsulated,
        Kind::Sequences,
    ];

    /// The kind a selector byte names.
    pub fn from_byte(byte: u8) -> Kind {
        Kind::ALL[usize::from(byte) % Kind::ALL.len()]
    }

    fn transfer_syntax(self) -> &'static str {
        match self {
            Kind::ExplicitLe | Kind::Sequences => dicom::EXPLICIT_LE,
            Kind::ImplicitLe => dicom::IMPLICIT_LE,
            Kind::ExplicitBe => dicom::EXPLICIT_BE,
            Kind::Deflated => dicom::DEFLATED_LE,
            Kind::Encapsulated => dicom::JPEG_BASELINE,
        }
    }

    fn syntax(self) -> Syntax {
        match self {
            Kind::ImplicitLe => Syntax::ImplicitLe,
            Kind::ExplicitBe => Syntax::ExplicitBe,
            _ => Syntax::ExplicitLe,
        }
    }
}

/// UID root of the fuzzer's instances (below the e2e tests' root).
const UID_ROOT: &str = "1.2.826.0.1.3680043.10.1234.77";

/// The Part 10 bytes of the instance of `kind`.
pub fn instance(kind: Kind) -> Vec<u8> {
    let index = Kind::ALL
        .iter()
        .position(|&k| k == kind)
        .expect("every kind is in Kind::ALL");
    let study = format!("{UID_ROOT}.{index}.1");
    let series = format!("{UID_ROOT}.{index}.2");
    let sop = format!("{UID_ROOT}.{index}.3");
    let mut b = Builder::new(kind.syntax());
    b.text((0x0008, 0x0016), b"UI", dicom::SECONDARY_CAPTURE)
        .text((0x0008, 0x0018), b"UI", &sop)
        .text((0x0008, 0x0020), b"DA", "20240131")
        .text((0x0008, 0x0030), b"TM", "101500")
        .text((0x0008, 0x0060), b"CS", "OT");
    if kind == Kind::Sequences {
        // An undefined-length sequence holding a defined-length one, and a CP-246 UN.
        let mut inner = Builder::new(Syntax::ExplicitLe);
        inner.text((0x0008, 0x0100), b"SH", "CODE");
        b.sequence_start_undefined((0x0008, 0x1032))
            .item_start_undefined()
            .sequence_defined((0x0040, 0x0260), &[inner.bytes])
            .item_end()
            .sequence_end();
        let mut implicit = Builder::new(Syntax::ImplicitLe);
        implicit
            .delimiter(dicom::ITEM, dicom::UNDEFINED)
            .header((0x0010, 0x0020), b"LO", 4)
            .raw(b"ID01")
            .item_end()
            .sequence_end();
        b.header((0x0009, 0x1010), b"UN", dicom::UNDEFINED)
            .raw(&implicit.bytes);
    }
    b.text((0x0010, 0x0010), b"PN", "Fuzz^Instance")
        .text((0x0010, 0x0020), b"LO", "FUZZ-1")
        .text((0x0020, 0x000D), b"UI", &study)
        .text((0x0020, 0x000E), b"UI", &series)
        .text((0x0020, 0x0013), b"IS", "1")
        .us((0x0028, 0x0002), 1)
        .text((0x0028, 0x0004), b"CS", "MONOCHROME2")
        .us((0x0028, 0x0010), 4)
        .us((0x0028, 0x0011), 4)
        .us((0x0028, 0x0100), 8)
        .us((0x0028, 0x0101), 8)
        .us((0x0028, 0x0102), 7)
        .us((0x0028, 0x0103), 0);
    if kind == Kind::Encapsulated {
        b.encapsulated_pixels(
            &[0],
            &[vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2], vec![3, 4, 0xFF, 0xD9]],
        );
    } else {
        let pixels: Vec<u8> = (0..16).collect();
        b.element((0x7FE0, 0x0010), b"OB", &pixels);
    }
    let mut data = b.bytes;
    if kind == Kind::Deflated {
        data = dicom::deflate(&data);
    }
    dicom::part10(
        dicom::SECONDARY_CAPTURE,
        &sop,
        kind.transfer_syntax(),
        &data,
    )
}
