//! Test instances: fresh UIDs, a standard data set layout, and Part 10 files in every transfer
//! syntax the server must read. The common syntaxes go through dicom-object (a second,
//! independent writer); the rest through the annotated [`Builder`].

use std::sync::atomic::{AtomicU64, Ordering};

use dicom_core::value::{PixelFragmentSequence, Value};
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

use super::dicom::{self, Builder, Syntax};

/// Our test UID root; every UID below it is unique within the test process.
const UID_ROOT: &str = "1.2.826.0.1.3680043.10.1234";
static NEXT_UID: AtomicU64 = AtomicU64::new(1);

fn next_uid(kind: u32) -> String {
    format!(
        "{UID_ROOT}.{kind}.{}",
        NEXT_UID.fetch_add(1, Ordering::Relaxed)
    )
}

/// The identifying UIDs of one instance.
#[derive(Clone, Debug)]
pub struct Uids {
    pub study: String,
    pub series: String,
    pub sop: String,
    pub class: String,
}

impl Uids {
    /// A new instance in a new series of a new study.
    pub fn fresh() -> Uids {
        Uids {
            study: next_uid(1),
            series: next_uid(2),
            sop: next_uid(3),
            class: dicom::SECONDARY_CAPTURE.to_string(),
        }
    }

    /// Another instance in the same series.
    pub fn sibling(&self) -> Uids {
        Uids {
            sop: next_uid(3),
            ..self.clone()
        }
    }

    /// An instance in a new series of `study`.
    pub fn in_study(study: &str) -> Uids {
        Uids {
            study: study.to_string(),
            ..Uids::fresh()
        }
    }
}

/// A Part 10 instance: the UIDs it carries and its exact bytes.
#[derive(Clone, Debug)]
pub struct Instance {
    pub uids: Uids,
    pub bytes: Vec<u8>,
}

/// Attribute values of the standard layout (Secondary Capture, 4x4 8-bit monochrome).
const ROWS: u16 = 4;
const COLUMNS: u16 = 4;

/// The standard data set: SOP UIDs, `middle` (tags between (0008,0060) and (0010,0010)),
/// patient, study/series UIDs, image pixel attributes, then `tail` (tags after (0028,0103),
/// which must end with pixel data or nothing).
pub fn dataset(
    syntax: Syntax,
    uids: &Uids,
    middle: impl FnOnce(&mut Builder),
    tail: impl FnOnce(&mut Builder),
) -> Vec<u8> {
    let mut b = Builder::new(syntax);
    b.text((0x0008, 0x0016), b"UI", &uids.class)
        .text((0x0008, 0x0018), b"UI", &uids.sop)
        .text((0x0008, 0x0060), b"CS", "OT");
    middle(&mut b);
    b.text((0x0010, 0x0010), b"PN", "E2E^Test")
        .text((0x0010, 0x0020), b"LO", "E2E-1")
        .text((0x0020, 0x000D), b"UI", &uids.study)
        .text((0x0020, 0x000E), b"UI", &uids.series)
        .text((0x0020, 0x0013), b"IS", "1")
        .us((0x0028, 0x0002), 1)
        .text((0x0028, 0x0004), b"CS", "MONOCHROME2")
        .us((0x0028, 0x0010), ROWS)
        .us((0x0028, 0x0011), COLUMNS)
        .us((0x0028, 0x0100), 8)
        .us((0x0028, 0x0101), 8)
        .us((0x0028, 0x0102), 7)
        .us((0x0028, 0x0103), 0);
    tail(&mut b);
    b.bytes
}

/// Native 8-bit pixel data for the standard layout.
pub fn native_pixels(b: &mut Builder) {
    let pixels: Vec<u8> = (0..ROWS * COLUMNS).map(|i| i as u8).collect();
    b.element((0x7FE0, 0x0010), b"OB", &pixels);
}

/// The builder syntax that encodes the data set of `transfer_syntax`.
pub fn syntax_of(transfer_syntax: &str) -> Syntax {
    match transfer_syntax {
        dicom::IMPLICIT_LE => Syntax::ImplicitLe,
        dicom::EXPLICIT_BE => Syntax::ExplicitBe,
        _ => Syntax::ExplicitLe,
    }
}

/// A Part 10 instance in `transfer_syntax` built from the standard layout; the deflated
/// syntax gets its data set deflated.
pub fn built(
    transfer_syntax: &str,
    uids: &Uids,
    middle: impl FnOnce(&mut Builder),
    tail: impl FnOnce(&mut Builder),
) -> Instance {
    let data = dataset(syntax_of(transfer_syntax), uids, middle, tail);
    wrap(transfer_syntax, uids, &uids.sop, data)
}

/// The standard layout, but the meta group names `meta_sop` instead of the data set's UID.
pub fn with_meta_sop(transfer_syntax: &str, uids: &Uids, meta_sop: &str) -> Instance {
    let data = dataset(syntax_of(transfer_syntax), uids, |_| {}, native_pixels);
    wrap(transfer_syntax, uids, meta_sop, data)
}

fn wrap(transfer_syntax: &str, uids: &Uids, meta_sop: &str, mut data: Vec<u8>) -> Instance {
    if transfer_syntax == dicom::DEFLATED_LE {
        data = dicom::deflate(&data);
    }
    let bytes = dicom::part10(&uids.class, meta_sop, transfer_syntax, &data);
    Instance {
        uids: uids.clone(),
        bytes,
    }
}

/// The standard layout with native pixels, in `transfer_syntax`, from the byte builder.
pub fn simple(transfer_syntax: &str, uids: &Uids) -> Instance {
    built(transfer_syntax, uids, |_| {}, native_pixels)
}

/// The standard layout written by dicom-object (explicit or implicit VR little endian).
pub fn via_dicom_object(transfer_syntax: &str, uids: &Uids) -> Instance {
    let pixels: Vec<u8> = (0..ROWS * COLUMNS).map(|i| (i * 3) as u8).collect();
    let pixel_value = PrimitiveValue::from(pixels);
    written_by_dicom_object(transfer_syntax, uids, Value::Primitive(pixel_value))
}

/// A JPEG baseline instance written by dicom-object: encapsulated pixel data with an empty
/// basic offset table and two fragments (contents are opaque to a STOW server).
pub fn jpeg_via_dicom_object(uids: &Uids) -> Instance {
    let fragments = vec![
        vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4],
        vec![5, 6, 7, 8, 0xFF, 0xD9],
    ];
    let sequence = PixelFragmentSequence::new(Vec::<u32>::new(), fragments);
    written_by_dicom_object(dicom::JPEG_BASELINE, uids, Value::from(sequence))
}

fn written_by_dicom_object(
    transfer_syntax: &str,
    uids: &Uids,
    pixels: Value<InMemDicomObject, Vec<u8>>,
) -> Instance {
    let object = InMemDicomObject::from_element_iter([
        DataElement::new(
            tags::SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(uids.class.as_str()),
        ),
        DataElement::new(
            tags::SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(uids.sop.as_str()),
        ),
        DataElement::new(tags::MODALITY, VR::CS, PrimitiveValue::from("OT")),
        DataElement::new(
            tags::PATIENT_NAME,
            VR::PN,
            PrimitiveValue::from("E2E^Object"),
        ),
        DataElement::new(
            tags::STUDY_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(uids.study.as_str()),
        ),
        DataElement::new(
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(uids.series.as_str()),
        ),
        DataElement::new(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1_u16)),
        DataElement::new(
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            PrimitiveValue::from("MONOCHROME2"),
        ),
        DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(ROWS)),
        DataElement::new(tags::COLUMNS, VR::US, PrimitiveValue::from(COLUMNS)),
        DataElement::new(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(8_u16)),
        DataElement::new(tags::BITS_STORED, VR::US, PrimitiveValue::from(8_u16)),
        DataElement::new(tags::HIGH_BIT, VR::US, PrimitiveValue::from(7_u16)),
        DataElement::new(
            tags::PIXEL_REPRESENTATION,
            VR::US,
            PrimitiveValue::from(0_u16),
        ),
        DataElement::new(tags::PIXEL_DATA, VR::OB, pixels),
    ]);
    let file = object
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(transfer_syntax))
        .expect("build the file meta group");
    let mut bytes = Vec::new();
    file.write_all(&mut bytes)
        .expect("dicom-object writes the instance");
    Instance {
        uids: uids.clone(),
        bytes,
    }
}

/// `depth` nested undefined-length sequences (all with tag `tag`), each with one
/// undefined-length item; the innermost item holds one text element.
pub fn nested_sequences(b: &mut Builder, tag: (u16, u16), depth: usize) {
    for _ in 0..depth {
        b.sequence_start_undefined(tag).item_start_undefined();
    }
    b.text((0x0040, 0xA160), b"UT", "innermost");
    for _ in 0..depth {
        b.item_end().sequence_end();
    }
}
