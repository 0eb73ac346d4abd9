//! Test data for the benches, generated in memory with `dicom-object` (nothing downloaded):
//! a CT slice of about 512 KiB and a multi-frame instance of any size, both explicit VR
//! little endian, the shape of the end-to-end corpus in `../shared/bench/gen_corpus.py`.

#![allow(dead_code)] // each bench binary uses a different subset

use dicom_core::{dicom_value, DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

/// Rows and columns of every frame: 512 x 512 x 16 bits is 512 KiB of pixel data.
pub const FRAME_SIDE: u16 = 512;
pub const FRAME_BYTES: usize = FRAME_SIDE as usize * FRAME_SIDE as usize * 2;

/// Deterministic pixel bytes (a xorshift sequence, so that `\r` and other delimiter bytes
/// occur as often as in real noise and no memchr fast path is unduly favoured).
fn pixels(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A Part 10 instance: common patient/study/series attributes, a small sequence, and
/// `n_frames` frames of 512 x 512 uint16 pixel data.
fn instance(sop_class: &str, index: u32, n_frames: u32) -> Vec<u8> {
    let sop_instance = format!("2.25.1234.{index}");
    let text = |tag, vr, value: &str| DataElement::new(tag, vr, PrimitiveValue::from(value));
    let mut obj = InMemDicomObject::from_element_iter([
        text(tags::SOP_CLASS_UID, VR::UI, sop_class),
        text(tags::SOP_INSTANCE_UID, VR::UI, &sop_instance),
        text(tags::STUDY_DATE, VR::DA, "20240101"),
        text(tags::MODALITY, VR::CS, "CT"),
        text(tags::MANUFACTURER, VR::LO, "dicomwebserver bench"),
        text(tags::PATIENT_NAME, VR::PN, "Bench^Patient"),
        text(tags::PATIENT_ID, VR::LO, "BENCH-0001"),
        text(tags::STUDY_INSTANCE_UID, VR::UI, "2.25.1234.1"),
        text(tags::SERIES_INSTANCE_UID, VR::UI, "2.25.1234.1.1"),
        text(tags::INSTANCE_NUMBER, VR::IS, &index.to_string()),
        text(tags::IMAGE_POSITION_PATIENT, VR::DS, "-250\\-250\\-100.5"),
        text(tags::IMAGE_ORIENTATION_PATIENT, VR::DS, "1\\0\\0\\0\\1\\0"),
        text(tags::PIXEL_SPACING, VR::DS, "0.976\\0.976"),
        text(tags::NUMBER_OF_FRAMES, VR::IS, &n_frames.to_string()),
        text(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        DataElement::new(tags::SAMPLES_PER_PIXEL, VR::US, dicom_value!(U16, [1])),
        DataElement::new(tags::ROWS, VR::US, dicom_value!(U16, [FRAME_SIDE])),
        DataElement::new(tags::COLUMNS, VR::US, dicom_value!(U16, [FRAME_SIDE])),
        DataElement::new(tags::BITS_ALLOCATED, VR::US, dicom_value!(U16, [16])),
        DataElement::new(tags::BITS_STORED, VR::US, dicom_value!(U16, [16])),
        DataElement::new(tags::HIGH_BIT, VR::US, dicom_value!(U16, [15])),
        DataElement::new(tags::PIXEL_REPRESENTATION, VR::US, dicom_value!(U16, [0])),
    ]);
    let item = InMemDicomObject::from_element_iter([
        text(tags::REFERENCED_SOP_CLASS_UID, VR::UI, sop_class),
        text(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, "2.25.1234.0"),
    ]);
    obj.put(DataElement::new(
        tags::REFERENCED_IMAGE_SEQUENCE,
        VR::SQ,
        dicom_core::value::DataSetSequence::from(vec![item]),
    ));
    let pixel_len = FRAME_BYTES * n_frames as usize;
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::from(pixels(pixel_len, u64::from(index) + 1)),
    ));
    let file = obj
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN))
        .expect("the object has SOP class and instance UIDs");
    let mut bytes = Vec::with_capacity(pixel_len + 4096);
    file.write_all(&mut bytes)
        .expect("writing to a Vec cannot fail");
    bytes
}

/// One CT slice of about 512 KiB.
pub fn ct_slice(index: u32) -> Vec<u8> {
    instance(uids::CT_IMAGE_STORAGE, index, 1)
}

/// One multi-frame instance of `n_frames` 512 KiB frames.
pub fn multi_frame(n_frames: u32) -> Vec<u8> {
    instance(
        uids::MULTI_FRAME_GRAYSCALE_WORD_SECONDARY_CAPTURE_IMAGE_STORAGE,
        1_000_000,
        n_frames,
    )
}
