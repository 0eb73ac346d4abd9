//! dicom-parser as an oracle: files written by dicom-object (explicit and implicit VR little
//! endian, explicit VR big endian, encapsulated pixel data) must tokenize, under every
//! chunking, to the headers, values and stream positions dicom-parser reads.

use std::cell::Cell;
use std::rc::Rc;

use dicom_core::value::{DataSetSequence, PixelFragmentSequence, Value};
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use dicom_parser::dataset::read::{DataSetReaderOptions, ValueReadStrategy};
use dicom_parser::dataset::DataToken;
use dicom_parser::DataSetReader;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};

use super::{tokenize_every_way, Entry, Seen};
use crate::dicom::syntax::{EXPLICIT_VR_BE, EXPLICIT_VR_LE, IMPLICIT_VR_LE};

const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";

/// Headers writers produce: short and long explicit lengths, odd text the writer pads, nested
/// sequences, an empty sequence and an empty item, a private creator and private element.
fn sample_object() -> InMemDicomObject {
    let text = |tag: (u16, u16), vr, value: &str| {
        DataElement::new(Tag::from(tag), vr, PrimitiveValue::from(value))
    };
    let sequence = |tag: (u16, u16), items: Vec<InMemDicomObject>| {
        DataElement::new(Tag::from(tag), VR::SQ, DataSetSequence::from(items))
    };
    let inner = InMemDicomObject::from_element_iter([
        text((0x0008, 0x1150), VR::UI, "1.2.840.10008.5.1.4.1.1.7"),
        text((0x0008, 0x1155), VR::UI, "1.2.3.4.5"),
        sequence((0x0008, 0x9215), vec![InMemDicomObject::new_empty()]),
    ]);
    let code = InMemDicomObject::from_element_iter([
        text((0x0008, 0x0100), VR::SH, "121311"),
        text((0x0008, 0x0104), VR::LO, "Localizer"),
    ]);
    InMemDicomObject::from_element_iter([
        text((0x0008, 0x0005), VR::CS, "ISO_IR 100"),
        text((0x0008, 0x0016), VR::UI, "1.2.840.10008.5.1.4.1.1.7"),
        text((0x0008, 0x0018), VR::UI, "1.2.826.0.1.3680043.10.1234.3.1"),
        text((0x0008, 0x0020), VR::DA, "20240131"),
        sequence((0x0008, 0x1115), vec![inner, code]),
        sequence((0x0008, 0x1140), vec![]),
        text((0x0009, 0x0010), VR::LO, "ACME 1"),
        DataElement::new(
            Tag(0x0009, 0x1001),
            VR::UN,
            PrimitiveValue::from(vec![1_u8, 2, 3]),
        ),
        text((0x0010, 0x0010), VR::PN, "Doe^Jane"),
        text((0x0020, 0x4000), VR::LT, "odd"),
        DataElement::new(Tag(0x0028, 0x0010), VR::US, PrimitiveValue::from(2_u16)),
        DataElement::new(Tag(0x0018, 0x0050), VR::FD, PrimitiveValue::from(1.5_f64)),
    ])
}

fn written(transfer_syntax: &str, pixels: Value<InMemDicomObject>) -> Vec<u8> {
    let mut object = sample_object();
    object.put(DataElement::new(Tag(0x7FE0, 0x0010), VR::OB, pixels));
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(transfer_syntax)
        .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.7")
        .media_storage_sop_instance_uid("1.2.826.0.1.3680043.10.1234.3.1");
    let file = object.with_meta(meta).expect("a valid meta group");
    let mut bytes = Vec::new();
    file.write_all(&mut bytes)
        .expect("dicom-object writes the file");
    bytes
}

/// Counts the bytes dicom-parser has read, which gives its tokens stream positions.
struct Counting<'a> {
    bytes: &'a [u8],
    read: Rc<Cell<u64>>,
}

impl std::io::Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::io::Read::read(&mut self.bytes, buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// dicom-parser's tokens for `bytes`, which start at stream position `base`, rendered like
/// ours: a pixel data item is a `Fragment` and its item end is implied.
fn oracle(bytes: &[u8], base: u64, transfer_syntax: &str) -> Vec<Entry> {
    let ts = TransferSyntaxRegistry
        .get(transfer_syntax)
        .expect("a known syntax");
    let read = Rc::new(Cell::new(base));
    let source = Counting {
        bytes,
        read: read.clone(),
    };
    let options = DataSetReaderOptions::default().value_read(ValueReadStrategy::Raw);
    let reader = DataSetReader::new_with_ts_options(source, ts, options).expect("a reader");
    // Open frames: 'S'equence, 'I'tem, 'P'ixel sequence, 'F'ragment.
    let (mut frames, mut out, mut start) = (Vec::new(), Vec::new(), base);
    for token in reader {
        let line = |line: String| Some(Seen::Line(line));
        let seen = match token.expect("dicom-parser reads the file") {
            DataToken::ElementHeader(h) => line(format!("Element {} {} {}", h.tag, h.vr, h.len)),
            DataToken::SequenceStart { tag, len } => {
                frames.push('S');
                line(format!("SequenceStart {tag} SQ {len}"))
            }
            DataToken::PixelSequenceStart => {
                frames.push('P');
                // dicom-parser keeps the header to itself; dicom-object writes it as OB.
                line("PixelSequenceStart (7FE0,0010) OB".into())
            }
            DataToken::ItemStart { len } if frames.last() == Some(&'P') => {
                frames.push('F');
                line(format!("Fragment {len}"))
            }
            DataToken::ItemStart { len } => {
                frames.push('I');
                line(format!("ItemStart {len}"))
            }
            DataToken::ItemEnd if frames.pop() == Some('F') => None,
            DataToken::ItemEnd => line("ItemEnd".into()),
            DataToken::SequenceEnd if frames.pop() == Some('P') => line("PixelSequenceEnd".into()),
            DataToken::SequenceEnd => line("SequenceEnd".into()),
            DataToken::PrimitiveValue(v) => Some(Seen::Value(v.to_bytes().to_vec(), true)),
            DataToken::ItemValue(v) => Some(Seen::Value(v, true)),
            DataToken::OffsetTable(table) => {
                let bytes = table.iter().flat_map(|o| o.to_le_bytes()).collect();
                Some(Seen::Value(bytes, true))
            }
        };
        out.extend(seen.map(|seen| (start, seen)));
        start = read.get();
    }
    out
}

/// Compares our tokens of a file, meta group and data set, with dicom-parser's.
pub(super) fn check_against_oracle(bytes: &[u8], transfer_syntax: &str) {
    let seen = tokenize_every_way(bytes);
    // The meta group ends where its group length, the first element, says.
    assert_eq!(&bytes[132..138], b"\x02\0\0\0UL");
    let group_length = u32::from_le_bytes(bytes[140..144].try_into().expect("4 bytes"));
    let dataset_start = 144 + group_length as usize;
    let mut expected = oracle(&bytes[132..dataset_start], 132, EXPLICIT_VR_LE);
    expected.extend(oracle(
        &bytes[dataset_start..],
        dataset_start as u64,
        transfer_syntax,
    ));
    let framing = |s: &Seen| matches!(s, Seen::Line(l) if l == "Preamble" || l == "End" || l.starts_with("MetaEnd"));
    let actual: Vec<&Entry> = seen.iter().filter(|(_, s)| !framing(s)).collect();
    for (at, (ours, theirs)) in actual.iter().zip(&expected).enumerate() {
        assert_eq!(*ours, theirs, "token {at} in {transfer_syntax}");
    }
    assert_eq!(actual.len(), expected.len(), "tokens in {transfer_syntax}");
    assert_eq!(
        seen.last(),
        Some(&(bytes.len() as u64, Seen::Line("End".into())))
    );
}

#[test]
fn native_files_match_dicom_parser_in_every_chunking() {
    for transfer_syntax in [EXPLICIT_VR_LE, IMPLICIT_VR_LE, EXPLICIT_VR_BE] {
        let pixels = PrimitiveValue::from(vec![0_u8, 64, 128, 255]);
        check_against_oracle(
            &written(transfer_syntax, Value::from(pixels)),
            transfer_syntax,
        );
    }
}

#[test]
fn encapsulated_pixel_data_matches_dicom_parser_in_every_chunking() {
    let fragments = vec![
        vec![0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9, 0],
        vec![0xFF, 0xD8, 0xFF, 0xD9],
    ];
    let pixels = PixelFragmentSequence::new(vec![0_u32, 16], fragments);
    check_against_oracle(&written(JPEG_BASELINE, Value::from(pixels)), JPEG_BASELINE);
}
