//! Tests of [`super::transcode`]: files written by dicom-object in every native syntax (and
//! deflated), read at several read sizes, must transcode to explicit VR little endian files
//! that dicom-object reads back to the same values; hand-built fixtures cover what its writer
//! does not produce (defined-length sequences and items, CP-246, long values, big endian by
//! hand) with byte-exact expected outputs.

use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;

use dicom_core::header::Header;
use dicom_core::value::{DataSetSequence, PixelFragmentSequence, PrimitiveValue, Value};
use dicom_core::{dicom_value, DataElement, Tag, VR};
use dicom_object::file::ReadPreamble;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject, OpenFileOptions};
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use flate2::write::DeflateEncoder;
use flate2::Compression;

use super::syntax::{DEFLATED_EXPLICIT_VR_LE, EXPLICIT_VR_BE, EXPLICIT_VR_LE, IMPLICIT_VR_LE};
use super::transcode::{can_transcode, to_explicit_le, TranscodeError};

const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";
const SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.7";
const SOP_INSTANCE: &str = "1.2.826.0.1.3680043.10.1234.3.1";
/// Read sizes the input is served in: single bytes split every header and swap unit.
const READ_SIZES: [usize; 6] = [1, 3, 7, 13, 4093, usize::MAX];

/// A `Read` over `bytes` that returns at most `step` bytes per call.
struct Trickle<'a> {
    bytes: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.step).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

/// Transcodes `input` served `step` bytes per read; checks the returned count.
fn transcode(input: &[u8], step: usize) -> Result<Vec<u8>, TranscodeError> {
    let mut output = Vec::new();
    let written = to_explicit_le(Trickle { bytes: input, step }, &mut output)?;
    assert_eq!(written, output.len() as u64, "returned byte count");
    Ok(output)
}

fn transcode_ok(input: &[u8], step: usize) -> Vec<u8> {
    transcode(input, step).unwrap_or_else(|error| panic!("read size {step}: {error}"))
}

// ---------------------------------------------------------------------------------------------
// Files written by dicom-object, compared value by value.

fn text(tag: (u16, u16), vr: VR, value: &str) -> DataElement<InMemDicomObject> {
    DataElement::new(Tag::from(tag), vr, PrimitiveValue::from(value))
}

fn number(tag: (u16, u16), vr: VR, value: PrimitiveValue) -> DataElement<InMemDicomObject> {
    DataElement::new(Tag::from(tag), vr, value)
}

fn sequence(tag: (u16, u16), items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(Tag::from(tag), VR::SQ, DataSetSequence::from(items))
}

/// Pixel values whose bytes differ, so that a missed or doubled swap shows.
fn pixel_words(n: usize) -> Vec<u16> {
    (0..n as u16)
        .map(|i| i.wrapping_mul(257) ^ 0x1234)
        .collect()
}

/// Every VR class the transcoder treats differently: text (one odd length), numbers of 2, 4
/// and 8 bytes with several values, AT, OF/OD/OL, private UN bytes, nested sequences with an
/// empty item, and OW pixel data of an odd number of words. Tags carry their dictionary VR,
/// so implicit VR files read back the same.
fn sample_object() -> InMemDicomObject {
    let image = InMemDicomObject::from_element_iter([
        text((0x0008, 0x1150), VR::UI, SOP_CLASS),
        text((0x0008, 0x1155), VR::UI, "1.2.3.4.5.6.7"),
        number(
            (0x0008, 0x1161),
            VR::UL,
            dicom_value!(U32, [1, 0x0102_0304, u32::MAX]),
        ),
        number(
            (0x0018, 0x9089),
            VR::FD,
            dicom_value!(F64, [0.5, -1.25, 1e10]),
        ),
    ]);
    let series = InMemDicomObject::from_element_iter([
        text((0x0020, 0x000E), VR::UI, "1.2.3.4.5.6"),
        sequence((0x0008, 0x1140), vec![image, InMemDicomObject::new_empty()]),
        number(
            (0x0028, 0x9503),
            VR::SS,
            dicom_value!(I16, [-1, 2, -300, 400]),
        ),
    ]);
    InMemDicomObject::from_element_iter([
        text((0x0008, 0x0005), VR::CS, "ISO_IR 100"),
        text((0x0008, 0x0016), VR::UI, SOP_CLASS),
        text((0x0008, 0x0018), VR::UI, SOP_INSTANCE),
        text((0x0008, 0x0020), VR::DA, "20240131"),
        number(
            (0x0008, 0x040C),
            VR::UV,
            dicom_value!(U64, [1, 0x0102_0304_0506_0708]),
        ),
        sequence((0x0008, 0x1115), vec![series]),
        text((0x0009, 0x0010), VR::LO, "ACME 1"),
        number((0x0009, 0x1001), VR::UN, dicom_value!(U8, [1, 2, 3, 4])),
        text((0x0010, 0x0010), VR::PN, "Doe^Jane"),
        number((0x0014, 0x4108), VR::SL, dicom_value!(I32, [-5, 70_000])),
        number(
            (0x0018, 0x1310),
            VR::US,
            dicom_value!(U16, [0, 256, 255, 0x1234]),
        ),
        number((0x0018, 0x2043), VR::FL, dicom_value!(F32, [1.5, -2.25])),
        text((0x0020, 0x4000), VR::LT, "odd"),
        number(
            (0x0028, 0x0009),
            VR::AT,
            dicom_value!(Tags, [Tag(0x0018, 0x1063), Tag(0x0018, 0x0050)]),
        ),
        number((0x0028, 0x0010), VR::US, dicom_value!(U16, [4])),
        number(
            (0x0066, 0x0016),
            VR::OF,
            dicom_value!(F32, [0.5, 2.5, -3.0]),
        ),
        number((0x0066, 0x0022), VR::OD, dicom_value!(F64, [1.0, -0.125])),
        number(
            (0x0066, 0x0040),
            VR::OL,
            dicom_value!(U32, [1, 2, 0xA0B0_C0D0]),
        ),
        number(
            (0x7FE0, 0x0010),
            VR::OW,
            PrimitiveValue::U16(pixel_words(4099).into()),
        ),
    ])
}

fn meta(transfer_syntax: &str) -> FileMetaTableBuilder {
    FileMetaTableBuilder::new()
        .transfer_syntax(transfer_syntax)
        .media_storage_sop_class_uid(SOP_CLASS)
        .media_storage_sop_instance_uid(SOP_INSTANCE)
}

/// `object` as a Part 10 file written by dicom-object in `transfer_syntax`.
fn written(object: &InMemDicomObject, transfer_syntax: &str) -> Vec<u8> {
    let file = object
        .clone()
        .with_meta(meta(transfer_syntax))
        .expect("a valid meta group");
    let mut bytes = Vec::new();
    file.write_all(&mut bytes)
        .expect("dicom-object writes the file");
    bytes
}

/// `object` as a deflated file: dicom-object (built without its deflate feature here)
/// writes the meta group and the explicit VR LE data set, which flate2 deflates.
fn written_deflated(object: &InMemDicomObject) -> Vec<u8> {
    let file = object
        .clone()
        .with_meta(meta(DEFLATED_EXPLICIT_VR_LE))
        .expect("a valid meta group");
    let mut bytes = vec![0; 128];
    bytes.extend_from_slice(b"DICM");
    file.write_meta(&mut bytes)
        .expect("dicom-object writes meta");
    let explicit_le = TransferSyntaxRegistry
        .get(EXPLICIT_VR_LE)
        .expect("a known syntax");
    let mut encoder = DeflateEncoder::new(bytes, Compression::default());
    object
        .write_dataset_with_ts(&mut encoder, explicit_le)
        .expect("dicom-object writes the data set");
    encoder.finish().expect("deflated")
}

/// Reads a transcoded file with dicom-object, checking its transfer syntax.
fn read_back(bytes: &[u8]) -> InMemDicomObject {
    let file = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Always)
        .from_reader(bytes)
        .expect("dicom-object reads the transcoded file");
    assert_eq!(file.meta().transfer_syntax(), EXPLICIT_VR_LE);
    file.into_inner()
}

fn is_text(vr: VR) -> bool {
    use VR::*;
    matches!(
        vr,
        AE | AS | CS | DA | DS | DT | IS | LO | LT | PN | SH | ST | TM | UC | UI | UR | UT
    )
}

/// Asserts that `actual` holds exactly `expected`'s elements, with the same VRs and values.
fn assert_same(expected: &InMemDicomObject, actual: &InMemDicomObject, path: &str) {
    let tags = |object: &InMemDicomObject| object.iter().map(|e| e.tag()).collect::<Vec<_>>();
    assert_eq!(tags(actual), tags(expected), "elements of {path}");
    for want in expected.iter() {
        let tag = want.tag();
        let got = actual.element(tag).expect("the element is there");
        let at = format!("{path}{tag}");
        assert_eq!(got.vr(), want.vr(), "VR of {at}");
        match (want.value(), got.value()) {
            (Value::Sequence(want), Value::Sequence(got)) => {
                assert_eq!(got.items().len(), want.items().len(), "items of {at}");
                for (i, (want, got)) in want.items().iter().zip(got.items()).enumerate() {
                    assert_same(want, got, &format!("{at}[{i}]/"));
                }
            }
            (Value::Primitive(w), Value::Primitive(g)) => assert_primitive(want.vr(), w, g, &at),
            _ => panic!("{at}: value kinds differ"),
        }
    }
}

fn assert_primitive(vr: VR, want: &PrimitiveValue, got: &PrimitiveValue, at: &str) {
    let trimmed = |value: &PrimitiveValue| value.to_str().trim_end_matches(['\0', ' ']).to_string();
    match vr {
        vr if is_text(vr) => assert_eq!(trimmed(got), trimmed(want), "{at}"),
        VR::US | VR::SS | VR::UL | VR::SL | VR::SV | VR::UV => {
            let ints = |value: &PrimitiveValue| value.to_multi_int::<i128>().expect("integers");
            assert_eq!(ints(got), ints(want), "{at}");
        }
        VR::FL | VR::FD => {
            let floats = |value: &PrimitiveValue| value.to_multi_float64().expect("floats");
            assert_eq!(floats(got), floats(want), "{at}");
        }
        VR::AT => assert_eq!(got, want, "{at}"),
        _ => assert_eq!(got.to_bytes(), want.to_bytes(), "bytes of {at}"),
    }
}

#[test]
fn native_files_read_back_with_the_same_values_at_every_read_size() {
    let object = sample_object();
    for transfer_syntax in [EXPLICIT_VR_LE, IMPLICIT_VR_LE, EXPLICIT_VR_BE] {
        let input = written(&object, transfer_syntax);
        for step in READ_SIZES {
            let output = transcode_ok(&input, step);
            assert_same(
                &object,
                &read_back(&output),
                &format!("{transfer_syntax}/{step}: "),
            );
        }
    }
}

#[test]
fn deflated_files_are_inflated_and_read_back_with_the_same_values() {
    let object = sample_object();
    let input = written_deflated(&object);
    for step in READ_SIZES {
        let output = transcode_ok(&input, step);
        assert_same(&object, &read_back(&output), &format!("deflated/{step}: "));
    }
    // The same file as dicom-object writes it in explicit VR LE.
    assert_eq!(
        transcode_ok(&input, usize::MAX),
        written(&object, EXPLICIT_VR_LE)
    );
}

#[test]
fn explicit_le_files_round_trip_byte_identical() {
    // dicom-object writes undefined-length sequences and items, as the transcoder does, and
    // the meta group the way the transcoder re-emits it: nothing changes.
    let input = written(&sample_object(), EXPLICIT_VR_LE);
    for step in READ_SIZES {
        assert_eq!(transcode_ok(&input, step), input, "read size {step}");
    }
}

#[test]
fn big_endian_and_implicit_files_become_the_explicit_le_file() {
    let object = sample_object();
    let expected = written(&object, EXPLICIT_VR_LE);
    for transfer_syntax in [IMPLICIT_VR_LE, EXPLICIT_VR_BE] {
        let input = written(&object, transfer_syntax);
        assert_eq!(transcode_ok(&input, 7), expected, "{transfer_syntax}");
    }
}

#[test]
fn input_without_preamble_transcodes_the_same() {
    let input = written(&sample_object(), IMPLICIT_VR_LE);
    let expected = transcode_ok(&input, usize::MAX);
    // `DICM` then the meta group, and the meta group right at the start.
    for skip in [128, 132] {
        for step in [1, usize::MAX] {
            assert_eq!(transcode_ok(&input[skip..], step), expected, "skip {skip}");
        }
    }
}

#[test]
fn encapsulated_syntaxes_are_refused_before_anything_is_written() {
    let fragments = vec![vec![0xFF, 0xD8, 0xFF, 0xD9]];
    let pixels = PixelFragmentSequence::new(vec![0_u32], fragments);
    let mut object = sample_object();
    object.put(DataElement::new(
        Tag(0x7FE0, 0x0010),
        VR::OB,
        Value::from(pixels),
    ));
    let input = written(&object, JPEG_BASELINE);
    let mut output = Vec::new();
    match to_explicit_le(&input[..], &mut output) {
        Err(TranscodeError::Encapsulated(uid)) => assert_eq!(uid, JPEG_BASELINE),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(output.is_empty(), "nothing written");
}

#[test]
fn only_native_and_deflated_syntaxes_can_be_transcoded() {
    for uid in [
        IMPLICIT_VR_LE,
        EXPLICIT_VR_LE,
        EXPLICIT_VR_BE,
        DEFLATED_EXPLICIT_VR_LE,
        "1.2.840.10008.1.2.1\0",
    ] {
        assert!(can_transcode(uid), "{uid}");
    }
    for uid in [
        JPEG_BASELINE,
        "1.2.840.10008.1.2.5",
        "1.2.840.10008.1.2.4.95",
        "",
    ] {
        assert!(!can_transcode(uid), "{uid}");
    }
}

#[test]
fn truncated_inputs_are_errors() {
    let object = sample_object();
    for transfer_syntax in [EXPLICIT_VR_LE, IMPLICIT_VR_LE, EXPLICIT_VR_BE] {
        let input = written(&object, transfer_syntax);
        let in_sequence = find(&input, b"1.2.3.4.5.6.7") + 3;
        // In the meta group, in an element header, in a sequence, in the pixel data.
        for cut in [
            140,
            input.len() - 1,
            in_sequence,
            find(&input, b"ACME 1") - 5,
        ] {
            for step in [1, usize::MAX] {
                match transcode(&input[..cut], step) {
                    Err(TranscodeError::Parse(_)) => {}
                    other => panic!("{transfer_syntax} cut at {cut}: {other:?}"),
                }
            }
        }
    }
    let deflated = written_deflated(&object);
    for cut in [deflated.len() - 1, deflated.len() / 2] {
        match transcode(&deflated[..cut], 5) {
            Err(TranscodeError::Inflate(_) | TranscodeError::Parse(_)) => {}
            other => panic!("deflated cut at {cut}: {other:?}"),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
        .expect("the needle is in the fixture")
}

// ---------------------------------------------------------------------------------------------
// Hand-built fixtures, compared byte for byte.

/// Encodes elements in one of the native syntaxes, numbers in its byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Enc {
    ExplicitLe,
    ImplicitLe,
    ExplicitBe,
}

const UNDEFINED: u32 = u32::MAX;

impl Enc {
    fn transfer_syntax(self) -> &'static str {
        match self {
            Enc::ExplicitLe => EXPLICIT_VR_LE,
            Enc::ImplicitLe => IMPLICIT_VR_LE,
            Enc::ExplicitBe => EXPLICIT_VR_BE,
        }
    }

    fn u16(self, value: u16) -> [u8; 2] {
        if self == Enc::ExplicitBe {
            value.to_be_bytes()
        } else {
            value.to_le_bytes()
        }
    }

    fn u32(self, value: u32) -> [u8; 4] {
        if self == Enc::ExplicitBe {
            value.to_be_bytes()
        } else {
            value.to_le_bytes()
        }
    }

    fn words(self, values: &[u16]) -> Vec<u8> {
        values.iter().flat_map(|v| self.u16(*v)).collect()
    }

    fn quads(self, values: &[u32]) -> Vec<u8> {
        values.iter().flat_map(|v| self.u32(*v)).collect()
    }

    fn doubles(self, values: &[f64]) -> Vec<u8> {
        let bytes = |v: &f64| {
            if self == Enc::ExplicitBe {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        values.iter().flat_map(bytes).collect()
    }

    fn tags(self, values: &[Tag]) -> Vec<u8> {
        self.words(&values.iter().flat_map(|t| [t.0, t.1]).collect::<Vec<_>>())
    }

    /// An element header; explicit headers with a 32-bit length for the VRs that have one.
    fn header(self, tag: Tag, vr: VR, length: u32) -> Vec<u8> {
        let mut out = self.words(&[tag.0, tag.1]);
        if self == Enc::ImplicitLe || tag.0 == 0xFFFE {
            out.extend(self.u32(length));
            return out;
        }
        out.extend(vr.to_bytes());
        use VR::*;
        if matches!(
            vr,
            OB | OD | OF | OL | OV | OW | SQ | SV | UC | UN | UR | UT | UV
        ) {
            out.extend([0, 0]);
            out.extend(self.u32(length));
        } else {
            out.extend(self.u16(length as u16));
        }
        out
    }

    fn element(self, tag: (u16, u16), vr: VR, value: &[u8]) -> Vec<u8> {
        let mut out = self.header(Tag::from(tag), vr, value.len() as u32);
        out.extend_from_slice(value);
        out
    }

    /// An item holding `content`, of defined length or with a delimiter.
    fn item(self, content: &[u8], defined: bool) -> Vec<u8> {
        self.wrap(
            Tag(0xFFFE, 0xE000),
            VR::UN,
            content,
            defined,
            Tag(0xFFFE, 0xE00D),
        )
    }

    /// A sequence of `items` (already encoded), of defined length or with a delimiter.
    fn sequence(self, tag: (u16, u16), items: &[Vec<u8>], defined: bool) -> Vec<u8> {
        let body = items.concat();
        self.wrap(Tag::from(tag), VR::SQ, &body, defined, Tag(0xFFFE, 0xE0DD))
    }

    fn wrap(self, tag: Tag, vr: VR, body: &[u8], defined: bool, end: Tag) -> Vec<u8> {
        let length = if defined {
            body.len() as u32
        } else {
            UNDEFINED
        };
        let mut out = self.header(tag, vr, length);
        out.extend_from_slice(body);
        if !defined {
            out.extend(self.header(end, VR::UN, 0));
        }
        out
    }
}

/// A UI value padded with NUL to even length.
fn uid(value: &str) -> Vec<u8> {
    let mut bytes = value.as_bytes().to_vec();
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    bytes
}

/// A Part 10 file: preamble, `DICM`, a meta group in explicit VR LE naming
/// `transfer_syntax`, then `dataset` as given.
fn part10(transfer_syntax: &str, dataset: &[u8]) -> Vec<u8> {
    let le = Enc::ExplicitLe;
    let group = [
        le.element((0x0002, 0x0001), VR::OB, &[0, 1]),
        le.element((0x0002, 0x0002), VR::UI, &uid(SOP_CLASS)),
        le.element((0x0002, 0x0003), VR::UI, &uid(SOP_INSTANCE)),
        le.element((0x0002, 0x0010), VR::UI, &uid(transfer_syntax)),
    ]
    .concat();
    let mut out = vec![0; 128];
    out.extend_from_slice(b"DICM");
    out.extend(le.element(
        (0x0002, 0x0000),
        VR::UL,
        &(group.len() as u32).to_le_bytes(),
    ));
    out.extend(group);
    out.extend_from_slice(dataset);
    out
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).expect("deflated");
    encoder.finish().expect("deflated")
}

/// Nested sequences and items: with `defined`, the outer sequence and some items have a
/// defined length around undefined-length ones (and an empty defined-length sequence);
/// without, everything has undefined length, as the transcoder writes it. `group_length`
/// adds a retired (0008,0000), which the transcoder drops.
#[rustfmt::skip]
fn nested_fixture(enc: Enc, defined: bool, group_length: bool) -> Vec<u8> {
    let image = [
        enc.element((0x0028, 0x0010), VR::US, &enc.words(&[7])),                // Rows
        enc.element((0x0018, 0x9089), VR::FD, &enc.doubles(&[1.5, -2.0, 3.25])), // FD, 3 values
    ].concat();
    let pointer = enc.element(                                                   // AT, 2 values
        (0x0028, 0x0009), VR::AT, &enc.tags(&[Tag(0x0018, 0x1063), Tag(0x0018, 0x0050)]),
    );
    let first = [
        enc.element((0x0008, 0x1150), VR::UI, &uid("1.2.3.4")),
        enc.sequence((0x0008, 0x1140), &[                                        // undefined
            enc.item(&image, false),
            enc.item(&pointer, defined),
        ], false),
    ].concat();
    let second = [
        enc.element((0x0008, 0x1161), VR::UL, &enc.quads(&[1, 2, 0xDEAD_BEEF])),
        enc.sequence((0x0008, 0x1140), &[], defined),                           // empty
    ].concat();
    let mut out = Vec::new();
    if group_length {
        out.extend(enc.element((0x0008, 0x0000), VR::UL, &enc.u32(1234)));
    }
    out.extend(enc.element((0x0008, 0x0016), VR::UI, &uid(SOP_CLASS)));
    out.extend(enc.sequence((0x0008, 0x1115), &[                                 // defined
        enc.item(&first, defined),
        enc.item(&second, false),
    ], defined));
    out.extend(enc.element((0x0018, 0x2043), VR::FL, &enc.quads(&[0x3FC0_0000, 0xC010_0000])));
    out.extend(enc.element((0x0020, 0x0013), VR::IS, b"5 "));
    out.extend(enc.element((0x7FE0, 0x0010), VR::OW, &enc.words(&pixel_words(5))));
    out
}

#[test]
fn sequences_and_items_of_any_length_become_undefined_length_in_every_syntax() {
    let expected = part10(
        EXPLICIT_VR_LE,
        &nested_fixture(Enc::ExplicitLe, false, false),
    );
    for enc in [Enc::ExplicitLe, Enc::ImplicitLe, Enc::ExplicitBe] {
        let input = part10(enc.transfer_syntax(), &nested_fixture(enc, true, true));
        for step in READ_SIZES {
            assert_eq!(
                transcode_ok(&input, step),
                expected,
                "{enc:?}, read size {step}"
            );
        }
    }
    let deflated = part10(
        DEFLATED_EXPLICIT_VR_LE,
        &deflate(&nested_fixture(Enc::ExplicitLe, true, true)),
    );
    for step in READ_SIZES {
        assert_eq!(
            transcode_ok(&deflated, step),
            expected,
            "deflated, read size {step}"
        );
    }
    // And dicom-object reads the values back.
    let object = read_back(&expected);
    let rows = object
        .element_by_name("ReferencedSeriesSequence")
        .expect("the sequence")
        .items()
        .expect("items")[0]
        .element(Tag(0x0008, 0x1140))
        .expect("the inner sequence")
        .items()
        .expect("items")[0]
        .element(Tag(0x0028, 0x0010))
        .expect("rows")
        .to_int::<u16>()
        .expect("a number");
    assert_eq!(rows, 7);
    let floats = object
        .element(Tag(0x0018, 0x2043))
        .expect("FL")
        .to_multi_float32()
        .expect("floats");
    assert_eq!(floats, [1.5, -2.25]);
}

/// A CP-246 private `UN` of undefined length (its items implicit VR LE, whatever the data
/// set's syntax) holding a text, a US (little endian, so never swapped) and a nested SQ.
#[rustfmt::skip]
fn cp246_fixture(enc: Enc, defined: bool) -> Vec<u8> {
    let inner = Enc::ImplicitLe;
    let code = inner.item(&inner.element((0x0008, 0x0104), VR::LO, b"ab"), false);
    let content = [
        inner.element((0x0008, 0x0100), VR::SH, b"CODE"),
        inner.element((0x0028, 0x0010), VR::US, &[0x34, 0x12]),
        inner.sequence((0x0040, 0xA730), &[code], defined),
    ].concat();
    let mut out = enc.element((0x0009, 0x0010), VR::LO, b"ACME");
    out.extend(enc.header(Tag(0x0009, 0x1010), VR::UN, UNDEFINED));             // CP-246
    out.extend(inner.item(&content, defined));
    out.extend(inner.header(Tag(0xFFFE, 0xE0DD), VR::UN, 0));
    out.extend(enc.element((0x0010, 0x0010), VR::PN, b"X^Y "));
    out
}

#[test]
fn cp246_sequences_keep_their_implicit_le_contents() {
    let expected = part10(EXPLICIT_VR_LE, &cp246_fixture(Enc::ExplicitLe, false));
    for enc in [Enc::ExplicitLe, Enc::ImplicitLe, Enc::ExplicitBe] {
        let input = part10(enc.transfer_syntax(), &cp246_fixture(enc, true));
        for step in READ_SIZES {
            assert_eq!(
                transcode_ok(&input, step),
                expected,
                "{enc:?}, read size {step}"
            );
        }
    }
}

#[test]
fn long_values_of_short_length_vrs_are_written_as_un() {
    let comments = vec![b'a'; 70_000];
    let input = part10(
        IMPLICIT_VR_LE,
        &Enc::ImplicitLe.element((0x0020, 0x4000), VR::LT, &comments),
    );
    let expected = part10(
        EXPLICIT_VR_LE,
        &Enc::ExplicitLe.element((0x0020, 0x4000), VR::UN, &comments),
    );
    assert_eq!(transcode_ok(&input, 4093), expected);
}

#[test]
fn encapsulated_pixel_data_in_a_native_syntax_is_refused() {
    let le = Enc::ExplicitLe;
    let mut dataset = le.header(Tag(0x7FE0, 0x0010), VR::OB, UNDEFINED);
    dataset.extend(le.item(&[], true));
    dataset.extend(le.header(Tag(0xFFFE, 0xE0DD), VR::UN, 0));
    let input = part10(EXPLICIT_VR_LE, &dataset);
    match transcode(&input, usize::MAX) {
        Err(TranscodeError::Encapsulated(uid)) => assert_eq!(uid, EXPLICIT_VR_LE),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn an_oversized_meta_group_is_refused() {
    let le = Enc::ExplicitLe;
    let mut input = part10(IMPLICIT_VR_LE, &[]);
    // A private information element (0002,0102) the size of a data set, after the others,
    // and a meta group without group length so that it is still part of the group.
    input.extend(le.element((0x0002, 0x0102), VR::OB, &vec![0; 100_000]));
    let without_group_length = [&input[..132], &input[144..]].concat();
    match transcode(&without_group_length, usize::MAX) {
        Err(TranscodeError::MetaTooLarge) => {}
        other => panic!("expected MetaTooLarge, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Bounded memory.

/// Pixel bytes of the large instance, generated from their offset.
fn pixel_byte(offset: u64) -> u8 {
    (offset ^ (offset >> 9)) as u8
}

/// A big endian instance whose `pixel_len` bytes of OW pixel data are produced as they are
/// read: the transcoder never sees the instance whole.
struct LazyInstance {
    head: Vec<u8>,
    position: u64,
    pixel_len: u64,
    read: Rc<Cell<u64>>,
}

impl Read for LazyInstance {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let head_len = self.head.len() as u64;
        let end = head_len + self.pixel_len;
        let n = (buf.len() as u64).min(end - self.position) as usize;
        for (i, byte) in buf[..n].iter_mut().enumerate() {
            let at = self.position + i as u64;
            *byte = if at < head_len {
                self.head[at as usize]
            } else {
                pixel_byte(at - head_len)
            };
        }
        self.position += n as u64;
        self.read.set(self.position);
        Ok(n)
    }
}

/// Checks the pixel data on the fly (each byte pair swapped) and how far output lags input.
struct CheckingSink {
    written: u64,
    pixel_start: u64,
    read: Rc<Cell<u64>>,
    max_lag: u64,
}

impl Write for CheckingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for (i, byte) in buf.iter().enumerate() {
            let at = self.written + i as u64;
            if at >= self.pixel_start {
                let offset = at - self.pixel_start;
                assert_eq!(*byte, pixel_byte(offset ^ 1), "pixel byte {offset}");
            }
        }
        self.written += buf.len() as u64;
        self.max_lag = self
            .max_lag
            .max(self.read.get().saturating_sub(self.written));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_large_big_endian_instance_streams_through_bounded_buffers() {
    const PIXEL_LEN: u32 = 32 << 20;
    let be = Enc::ExplicitBe;
    let mut dataset = be.element((0x0028, 0x0010), VR::US, &be.words(&[4096]));
    dataset.extend(be.header(Tag(0x7FE0, 0x0010), VR::OW, PIXEL_LEN));
    let head = part10(EXPLICIT_VR_BE, &dataset);
    let read = Rc::new(Cell::new(0));
    let input = LazyInstance {
        pixel_len: u64::from(PIXEL_LEN),
        head,
        position: 0,
        read: read.clone(),
    };
    // Explicit BE and LE headers have the same sizes, and so do the two UIDs.
    let pixel_start = input.head.len() as u64;
    let mut sink = CheckingSink {
        written: 0,
        pixel_start,
        read,
        max_lag: 0,
    };
    let written = to_explicit_le(input, &mut sink).expect("transcoded");
    assert_eq!(written, pixel_start + u64::from(PIXEL_LEN));
    assert_eq!(sink.written, written);
    // The input buffer and the output buffer, nothing proportional to the instance.
    assert!(
        sink.max_lag <= 256 * 1024,
        "output lagged {} bytes",
        sink.max_lag
    );
}
