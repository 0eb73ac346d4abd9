//! Tests of the [`JsonListener`]: instances written by dicom-object (and annotated bytes where
//! writers would not produce them) run through the tokenizer in several chunkings; the JSON
//! is compared with hand-written PS3.18 F.2 JSON, and every recorded position with the bytes
//! of the file.

use dicom_core::value::{DataSetSequence, PixelFragmentSequence, Value as DicomValue};
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use serde_json::{json, Value};

use super::json::{BulkValue, Frames, InstanceJson, JsonListener, JsonOptions, BULK_URI_PREFIX};
use super::json_values::base64;
use super::listener::{Listener, TokenContext};
use super::syntax::{DEFLATED_EXPLICIT_VR_LE, EXPLICIT_VR_BE, EXPLICIT_VR_LE, IMPLICIT_VR_LE};
use super::tokenizer::{Step, Token, Tokenizer};

const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";

type Element = DataElement<InMemDicomObject>;

/// Runs the tokenizer over `bytes` arriving `chunk` bytes at a time (so values come in
/// several `Value` tokens) and feeds the listener like the reader does.
fn listen_in_chunks(bytes: &[u8], options: JsonOptions, chunk: usize) -> InstanceJson {
    let mut tokenizer = Tokenizer::new(8);
    let mut listener = JsonListener::new(options);
    let (mut start, mut end) = (0, chunk.min(bytes.len()));
    loop {
        let eof = end == bytes.len();
        match tokenizer
            .next(&bytes[start..end], eof)
            .expect("a readable instance")
        {
            Step::NeedMore(n) => end = (end + chunk).max(start + n).min(bytes.len()),
            Step::Token { consumed, token } => {
                let at = TokenContext {
                    nesting: tokenizer.nesting(),
                    position: tokenizer.position(),
                };
                listener.on_token(&token, at).expect("never rejects");
                start += consumed;
                if token == Token::End {
                    break;
                }
            }
        }
    }
    listener.finish().expect("never rejects");
    listener.into_result()
}

/// The listener's result for `bytes`, the same whole, in 1-byte and in 7-byte chunks.
fn listen(bytes: &[u8], options: JsonOptions) -> InstanceJson {
    let whole = listen_in_chunks(bytes, options, bytes.len());
    for chunk in [1, 7] {
        assert_eq!(
            listen_in_chunks(bytes, options, chunk),
            whole,
            "chunk {chunk}"
        );
    }
    whole
}

fn assert_json(actual: &InstanceJson, expected: Value) {
    let actual = Value::Object(actual.dataset.clone());
    assert_eq!(
        actual,
        expected,
        "actual:\n{}",
        serde_json::to_string_pretty(&actual).expect("printable")
    );
}

/// A Part 10 file of `elements`, written by dicom-object in `transfer_syntax`.
fn file(transfer_syntax: &str, elements: Vec<Element>) -> Vec<u8> {
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(transfer_syntax)
        .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.7")
        .media_storage_sop_instance_uid("1.2.3.4.5");
    let object = InMemDicomObject::from_element_iter(elements);
    let mut bytes = Vec::new();
    object
        .with_meta(meta)
        .expect("a valid meta group")
        .write_all(&mut bytes)
        .expect("dicom-object writes the file");
    bytes
}

fn element(tag: (u16, u16), vr: VR, value: impl Into<PrimitiveValue>) -> Element {
    DataElement::new(Tag::from(tag), vr, value.into())
}

fn sequence(tag: (u16, u16), items: Vec<Vec<Element>>) -> Element {
    let items: Vec<InMemDicomObject> = items
        .into_iter()
        .map(InMemDicomObject::from_element_iter)
        .collect();
    DataElement::new(Tag::from(tag), VR::SQ, DataSetSequence::from(items))
}

/// A Part 10 file by hand: preamble, `DICM`, a meta group of the group length and the
/// transfer syntax UID, then `dataset` (at 172 for explicit VR LE).
fn part10(transfer_syntax: &str, dataset: &[u8]) -> Vec<u8> {
    let mut uid = transfer_syntax.as_bytes().to_vec();
    if uid.len() % 2 == 1 {
        uid.push(0);
    }
    let mut bytes = vec![0; 128];
    bytes.extend_from_slice(b"DICM");
    #[rustfmt::skip]
    bytes.extend_from_slice(&[
        0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0,                // (0002,0000) UL group length
        8 + uid.len() as u8, 0, 0, 0,                            //   = the element below
        0x02, 0x00, 0x10, 0x00, b'U', b'I', uid.len() as u8, 0, // (0002,0010) UI transfer syntax
    ]);
    bytes.extend_from_slice(&uid);
    bytes.extend_from_slice(dataset);
    bytes
}

/// The bytes of a recorded bulk value.
fn bulk_bytes<'a>(bytes: &'a [u8], bulk: &BulkValue) -> &'a [u8] {
    &bytes[bulk.offset as usize..(bulk.offset + bulk.length) as usize]
}

/// One element of every VR, with tags whose dictionary VR is the same, so that the implicit
/// VR file renders like the explicit ones.
fn every_vr() -> Vec<Element> {
    let tags = |tags: &[Tag]| PrimitiveValue::Tags(tags.iter().copied().collect());
    vec![
        element((0x0008, 0x0005), VR::CS, "ISO_IR 192"),
        element((0x0008, 0x0008), VR::CS, "ORIGINAL\\PRIMARY\\AXIAL"),
        element((0x0008, 0x0020), VR::DA, "20240131"),
        element((0x0008, 0x002A), VR::DT, "20240131083000"),
        element((0x0008, 0x0030), VR::TM, "083000.5"),
        element((0x0008, 0x0050), VR::SH, "ACC-7"),
        element((0x0008, 0x0055), VR::AE, "STATION1"),
        element((0x0008, 0x0081), VR::ST, "1 Main St\\Suite 2"),
        element((0x0008, 0x010E), VR::UR, "http://snomed.info/sct"),
        element((0x0008, 0x0119), VR::UC, "LONGCODE\\SECOND"),
        element((0x0008, 0x0304), VR::US, [1_u16, 65535]),
        element((0x0008, 0x030E), VR::UT, "Free text"),
        element((0x0008, 0x0401), VR::LT, "  Indented\\kept "),
        element((0x0008, 0x041B), VR::OB, vec![1_u8, 2, 3, 4]),
        element((0x0008, 0x1030), VR::LO, "Chest CT"),
        element((0x0008, 0x1160), VR::IS, "1\\ 2 \\x"),
        element((0x0008, 0x1161), VR::UL, [7_u32, 4_000_000_000]),
        element((0x0008, 0x2130), VR::DS, "1.5\\-2e3\\ 0.25 \\abc"),
        element(
            (0x0010, 0x0010),
            VR::PN,
            "Yamada^Tarou=山田^太郎=やまだ^たろう\\Doe^Jane",
        ),
        element((0x0010, 0x1010), VR::AS, "042Y"),
        element((0x0018, 0x1638), VR::OF, [1.5_f32, 2.0]),
        element((0x0018, 0x6054), VR::FD, [0.1_f64, 1e300]),
        element((0x0018, 0x605A), VR::FL, [0.1_f32, -2.5]),
        element((0x0018, 0x9442), VR::SS, [-1_i16, 2]),
        element((0x0020, 0x000D), VR::UI, "1.2.3.4"),
        element(
            (0x0028, 0x0009),
            VR::AT,
            tags(&[Tag(0x0018, 0x1063), Tag(0x0018, 0x1065)]),
        ),
        element((0x0028, 0x1201), VR::OW, [0x0102_u16, 0x0304]),
        element((0x0040, 0xA162), VR::SL, [-5_i32, 6]),
        element((0x0066, 0x0022), VR::OD, [1.5_f64]),
        element((0x0066, 0x0040), VR::OL, [1_u32, 2]),
        element((0x0072, 0x006D), VR::UN, vec![9_u8, 8, 7, 6]),
        element((0x0072, 0x0081), VR::OV, [1_u64]),
        element(
            (0x0072, 0x0082),
            VR::SV,
            [-9_000_000_000_000_000_000_i64, 7],
        ),
        element((0x0072, 0x0083), VR::UV, [18_000_000_000_000_000_000_u64]),
    ]
}

fn every_vr_json() -> Value {
    json!({
        "00080005": {"vr": "CS", "Value": ["ISO_IR 192"]},
        "00080008": {"vr": "CS", "Value": ["ORIGINAL", "PRIMARY", "AXIAL"]},
        "00080020": {"vr": "DA", "Value": ["20240131"]},
        "0008002A": {"vr": "DT", "Value": ["20240131083000"]},
        "00080030": {"vr": "TM", "Value": ["083000.5"]},
        "00080050": {"vr": "SH", "Value": ["ACC-7"]},
        "00080055": {"vr": "AE", "Value": ["STATION1"]},
        "00080081": {"vr": "ST", "Value": ["1 Main St\\Suite 2"]},
        "0008010E": {"vr": "UR", "Value": ["http://snomed.info/sct"]},
        "00080119": {"vr": "UC", "Value": ["LONGCODE", "SECOND"]},
        "00080304": {"vr": "US", "Value": [1, 65535]},
        "0008030E": {"vr": "UT", "Value": ["Free text"]},
        "00080401": {"vr": "LT", "Value": ["  Indented\\kept"]},
        "0008041B": {"vr": "OB", "InlineBinary": "AQIDBA=="},
        "00081030": {"vr": "LO", "Value": ["Chest CT"]},
        "00081160": {"vr": "IS", "Value": [1, 2, "x"]},
        "00081161": {"vr": "UL", "Value": [7, 4_000_000_000_u32]},
        "00082130": {"vr": "DS", "Value": [1.5, -2000.0, 0.25, "abc"]},
        "00100010": {"vr": "PN", "Value": [
            {"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎", "Phonetic": "やまだ^たろう"},
            {"Alphabetic": "Doe^Jane"},
        ]},
        "00101010": {"vr": "AS", "Value": ["042Y"]},
        "00181638": {"vr": "OF", "InlineBinary": "AADAPwAAAEA="},
        "00186054": {"vr": "FD", "Value": [0.1, 1e300]},
        "0018605A": {"vr": "FL", "Value": [0.1, -2.5]},
        "00189442": {"vr": "SS", "Value": [-1, 2]},
        "0020000D": {"vr": "UI", "Value": ["1.2.3.4"]},
        "00280009": {"vr": "AT", "Value": ["00181063", "00181065"]},
        "00281201": {"vr": "OW", "InlineBinary": "AgEEAw=="},
        "0040A162": {"vr": "SL", "Value": [-5, 6]},
        "00660022": {"vr": "OD", "InlineBinary": "AAAAAAAA+D8="},
        "00660040": {"vr": "OL", "InlineBinary": "AQAAAAIAAAA="},
        "0072006D": {"vr": "UN", "InlineBinary": "CQgHBg=="},
        "00720081": {"vr": "OV", "InlineBinary": "AQAAAAAAAAA="},
        "00720082": {"vr": "SV", "Value": [-9_000_000_000_000_000_000_i64, 7]},
        "00720083": {"vr": "UV", "Value": [18_000_000_000_000_000_000_u64]},
    })
}

#[test]
fn every_vr_renders_alike_in_explicit_implicit_and_big_endian_files() {
    for transfer_syntax in [EXPLICIT_VR_LE, IMPLICIT_VR_LE, EXPLICIT_VR_BE] {
        let result = listen(&file(transfer_syntax, every_vr()), JsonOptions::default());
        assert_json(&result, every_vr_json());
        assert_eq!(result.big_endian, transfer_syntax == EXPLICIT_VR_BE);
        assert!(!result.deflated);
        assert_eq!((result.bulk.len(), &result.frames), (0, &None));
    }
}

#[test]
fn empty_values_and_sequences_have_no_value() {
    let elements = vec![
        element((0x0008, 0x0008), VR::CS, "A\\\\B"),
        element((0x0008, 0x041B), VR::OB, PrimitiveValue::Empty),
        element((0x0008, 0x0304), VR::US, PrimitiveValue::Empty),
        element((0x0008, 0x1030), VR::LO, PrimitiveValue::Empty),
        element((0x0010, 0x0010), VR::PN, "Doe^John\\"),
        element((0x0010, 0x0020), VR::LO, "  "),
        sequence((0x0008, 0x1140), vec![]),
        sequence((0x0008, 0x1115), vec![vec![]]),
    ];
    let result = listen(&file(EXPLICIT_VR_LE, elements), JsonOptions::default());
    assert_json(
        &result,
        json!({
            "00080008": {"vr": "CS", "Value": ["A", null, "B"]},
            "0008041B": {"vr": "OB"},
            "00080304": {"vr": "US"},
            "00081030": {"vr": "LO"},
            "00081115": {"vr": "SQ", "Value": [{}]},
            "00081140": {"vr": "SQ"},
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}, null]},
            "00100020": {"vr": "LO"},
        }),
    );
}

#[test]
fn nested_bulk_values_are_named_by_tags_and_item_indexes() {
    let record_key = |bytes: &[u8]| element((0x0008, 0x041B), VR::OB, bytes.to_vec());
    let elements = vec![sequence(
        (0x0054, 0x0016),
        vec![
            vec![element((0x0018, 0x1072), VR::TM, "083000")],
            vec![
                record_key(b"first bulk"),
                sequence(
                    (0x0054, 0x0300),
                    vec![vec![
                        record_key(b"second bulk!"),
                        element((0x0008, 0x0100), VR::SH, "C-111A1"),
                    ]],
                ),
            ],
        ],
    )];
    let bytes = file(EXPLICIT_VR_LE, elements);
    let options = JsonOptions {
        bulk_data_threshold: 4,
        ..JsonOptions::default()
    };
    let result = listen(&bytes, options);
    let uri = |path: &str| format!("{BULK_URI_PREFIX}{path}");
    assert_json(
        &result,
        json!({
            "00540016": {"vr": "SQ", "Value": [
                {"00181072": {"vr": "TM", "Value": ["083000"]}},
                {
                    "0008041B": {"vr": "OB", "BulkDataURI": uri("00540016/1/0008041B")},
                    "00540300": {"vr": "SQ", "Value": [{
                        "00080100": {"vr": "SH", "Value": ["C-111A1"]},
                        "0008041B": {"vr": "OB", "BulkDataURI": uri("00540016/1/00540300/0/0008041B")},
                    }]},
                },
            ]},
        }),
    );
    let paths: Vec<&str> = result.bulk.iter().map(|b| b.path.as_str()).collect();
    assert_eq!(
        paths,
        ["00540016/1/0008041B", "00540016/1/00540300/0/0008041B"]
    );
    assert!(result.bulk.iter().all(|b| b.vr == VR::OB));
    assert_eq!(bulk_bytes(&bytes, &result.bulk[0]), b"first bulk");
    assert_eq!(bulk_bytes(&bytes, &result.bulk[1]), b"second bulk!");
}

#[test]
fn binary_values_become_bulk_data_past_the_threshold() {
    let at_threshold = [7_u8; 8];
    let past_threshold = *b"123456789\0";
    let long_text = "x".repeat(18);
    let elements = vec![
        element((0x0008, 0x041B), VR::OB, at_threshold.to_vec()),
        element((0x0008, 0x041C), VR::OB, past_threshold.to_vec()),
        element((0x0008, 0x0401), VR::LT, "sixteen chars ok"),
        element((0x0008, 0x0402), VR::LT, long_text.as_str()),
    ];
    let bytes = file(EXPLICIT_VR_LE, elements);
    let options = JsonOptions {
        bulk_data_threshold: 8,
        max_value_length: 16,
    };
    let result = listen(&bytes, options);
    assert_json(
        &result,
        json!({
            "00080401": {"vr": "LT", "Value": ["sixteen chars ok"]},
            "00080402": {"vr": "LT", "BulkDataURI": "dicomweb-bulk:00080402"},
            "0008041B": {"vr": "OB", "InlineBinary": base64(&at_threshold)},
            "0008041C": {"vr": "OB", "BulkDataURI": "dicomweb-bulk:0008041C"},
        }),
    );
    let described: Vec<(&str, VR, u64)> = result
        .bulk
        .iter()
        .map(|b| (b.path.as_str(), b.vr, b.length))
        .collect();
    assert_eq!(
        described,
        [("00080402", VR::LT, 18), ("0008041C", VR::OB, 10)]
    );
    assert_eq!(bulk_bytes(&bytes, &result.bulk[0]), long_text.as_bytes());
    assert_eq!(bulk_bytes(&bytes, &result.bulk[1]), past_threshold);
}

/// Rows 2, Columns 3, 16 bits, 4 frames: 12 bytes a frame. The pixel data is OW words that
/// are `pixels` in little endian, so a big endian file holds them swapped.
fn multi_frame(pixels: &[u8]) -> Vec<Element> {
    let words: Vec<u16> = pixels
        .chunks(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    vec![
        element((0x0028, 0x0002), VR::US, 1_u16),
        element((0x0028, 0x0008), VR::IS, "4"),
        element((0x0028, 0x0010), VR::US, 2_u16),
        element((0x0028, 0x0011), VR::US, 3_u16),
        element((0x0028, 0x0100), VR::US, 16_u16),
        element((0x7FE0, 0x0010), VR::OW, PrimitiveValue::U16(words.into())),
    ]
}

#[test]
fn native_pixel_data_is_bulk_data_split_into_frames() {
    let pixels: Vec<u8> = (0..48).collect();
    for transfer_syntax in [EXPLICIT_VR_LE, EXPLICIT_VR_BE] {
        let bytes = file(transfer_syntax, multi_frame(&pixels));
        let result = listen(&bytes, JsonOptions::default());
        assert_eq!(
            result.dataset["7FE00010"],
            json!({"vr": "OW", "BulkDataURI": "dicomweb-bulk:7FE00010"})
        );
        assert_eq!(
            result.dataset["00280008"],
            json!({"vr": "IS", "Value": [4]})
        );
        let [bulk] = &result.bulk[..] else {
            panic!("one bulk value: {:?}", result.bulk);
        };
        assert_eq!(
            (bulk.path.as_str(), bulk.vr, bulk.length),
            ("7FE00010", VR::OW, 48)
        );
        let Some(Frames::Native {
            offset,
            frame_length,
            count,
        }) = result.frames
        else {
            panic!("native frames: {:?}", result.frames);
        };
        assert_eq!((offset, frame_length, count), (bulk.offset, 12, 4));
        let stored = bulk_bytes(&bytes, bulk);
        if transfer_syntax == EXPLICIT_VR_BE {
            // dicom-object wrote the OW words big endian; the flag says they need a swap.
            assert!(result.big_endian);
            let swapped: Vec<u8> = stored.chunks(2).flat_map(|w| [w[1], w[0]]).collect();
            assert_eq!(swapped, pixels);
        } else {
            assert_eq!(stored, pixels);
        }
    }
}

#[test]
fn native_frames_count_only_what_the_value_holds() {
    // Four frames declared, three and a half present.
    let pixels: Vec<u8> = (0..42).collect();
    let result = listen(
        &file(EXPLICIT_VR_LE, multi_frame(&pixels)),
        JsonOptions::default(),
    );
    assert!(
        matches!(
            result.frames,
            Some(Frames::Native {
                count: 3,
                frame_length: 12,
                ..
            })
        ),
        "{:?}",
        result.frames
    );
}

#[test]
fn encapsulated_pixel_data_records_fragments_and_offset_table() {
    let fragments = vec![
        vec![0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9, 0],
        vec![0xFF, 0xD8, 0xFF, 0xD9],
        vec![0xAA; 6],
    ];
    let pixels = PixelFragmentSequence::new(vec![0_u32, 16], fragments.clone());
    let mut elements = multi_frame(&[]);
    elements.pop();
    elements.push(DataElement::new(
        Tag(0x7FE0, 0x0010),
        VR::OB,
        DicomValue::from(pixels),
    ));
    let bytes = file(JPEG_BASELINE, elements);
    let result = listen(&bytes, JsonOptions::default());
    assert_eq!(
        result.dataset["7FE00010"],
        json!({"vr": "OB", "BulkDataURI": "dicomweb-bulk:7FE00010"})
    );
    let Some(Frames::Encapsulated {
        fragments: positions,
        basic_offset_table,
    }) = &result.frames
    else {
        panic!("encapsulated frames: {:?}", result.frames);
    };
    assert_eq!(basic_offset_table, &[0, 16]);
    let found: Vec<&[u8]> = positions
        .iter()
        .map(|&(offset, length)| &bytes[offset as usize..(offset + length) as usize])
        .collect();
    assert_eq!(found, fragments);
    // The bulk value is the item sequence: offset table item to sequence delimiter.
    let [bulk] = &result.bulk[..] else {
        panic!("one bulk value: {:?}", result.bulk);
    };
    assert_eq!((bulk.path.as_str(), bulk.vr), ("7FE00010", VR::OB));
    let value = bulk_bytes(&bytes, bulk);
    assert_eq!(&value[..8], [0xFE, 0xFF, 0x00, 0xE0, 8, 0, 0, 0]);
    assert_eq!(
        &value[value.len() - 8..],
        [0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]
    );
    assert_eq!(bulk.offset + bulk.length, bytes.len() as u64);
}

#[test]
fn latin1_patient_name_is_decoded_by_its_character_set() {
    // "Gómez^José" in ISO 8859-1: ó is 0xF3, é is 0xE9.
    let name = b"G\xF3mez^Jos\xE9".to_vec();
    let elements = vec![
        element((0x0008, 0x0005), VR::CS, "ISO_IR 100"),
        element((0x0010, 0x0010), VR::PN, name.clone()),
        sequence(
            (0x0008, 0x1115),
            vec![vec![element((0x0008, 0x1030), VR::LO, b"Caf\xE9".to_vec())]],
        ),
    ];
    let bytes = file(EXPLICIT_VR_LE, elements);
    assert!(bytes.windows(name.len()).any(|w| w == name));
    let result = listen(&bytes, JsonOptions::default());
    assert_json(
        &result,
        json!({
            "00080005": {"vr": "CS", "Value": ["ISO_IR 100"]},
            "00081115": {"vr": "SQ", "Value": [{"00081030": {"vr": "LO", "Value": ["Café"]}}]},
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Gómez^José"}]},
        }),
    );
}

#[test]
fn names_in_other_repertoires_are_decoded_by_their_character_set() {
    // (Specific Character Set, PN bytes, expected Alphabetic=Ideographic=Phonetic text), after
    // the examples of PS3.5 Annexes H (Japanese), I (Korean) and K (Chinese).
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "\\ISO 2022 IR 87",
            [
                &b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B="[..],
                b"\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B",
            ]
            .concat(),
            "Yamada^Tarou=山田^太郎=やまだ^たろう",
        ),
        (
            "\\ISO 2022 IR 149",
            [
                &b"Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7="[..],
                b"\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf",
            ]
            .concat(),
            "Hong^Gildong=洪^吉洞=홍^길동",
        ),
        (
            "GB18030",
            b"Wang^XiaoDong=\xcd\xf5^\xd0\xa1\xb6\xab=".to_vec(),
            "Wang^XiaoDong=王^小东=",
        ),
        (
            "ISO_IR 144",
            b"\xb8\xd2\xd0\xdd\xde\xd2^\xb8\xd2\xd0\xdd".to_vec(),
            "Иванов^Иван",
        ),
        // Not a repertoire the server knows: read as UTF-8.
        ("ISO_IR 999", b"Doe^John".to_vec(), "Doe^John"),
    ];
    for (charset, name, expected) in cases {
        let elements = vec![
            element((0x0008, 0x0005), VR::CS, charset),
            element((0x0010, 0x0010), VR::PN, name),
        ];
        let result = listen(&file(EXPLICIT_VR_LE, elements), JsonOptions::default());
        let mut groups = expected.split('=');
        let mut want = serde_json::Map::new();
        for key in ["Alphabetic", "Ideographic", "Phonetic"] {
            match groups.next() {
                Some(group) if !group.is_empty() => {
                    want.insert(key.into(), json!(group));
                }
                _ => {}
            }
        }
        assert_eq!(
            result.dataset["00100010"],
            json!({"vr": "PN", "Value": [want]}),
            "{charset}"
        );
    }
}

#[test]
fn odd_and_unparsable_values_are_rendered_as_far_as_they_go() {
    #[rustfmt::skip]
    let dataset = [
        0x08, 0x00, 0x00, 0x01, b'S', b'H', 2, 0, b'A', 0,             // (0008,0100) SH "A\0"
        0x18, 0x00, 0x50, 0x00, b'D', b'S', 4, 0, b'a', b'b', b'c', b' ', // (0018,0050) DS "abc "
        0x18, 0x00, 0x88, 0x00, b'D', b'S', 4, 0, b'N', b'a', b'N', b' ', // (0018,0088) DS "NaN "
        0x28, 0x00, 0x10, 0x00, b'U', b'S', 3, 0, 2, 0, 0xFF,             // (0028,0010) US 2, odd
        0x28, 0x00, 0x11, 0x00, b'U', b'S', 1, 0, 0xFF,                   // (0028,0011) US, 1 byte
        0x28, 0x00, 0x34, 0x00, b'I', b'S', 2, 0, b'9', b'.',             // (0028,0034) IS "9."
    ];
    let result = listen(&part10(EXPLICIT_VR_LE, &dataset), JsonOptions::default());
    assert_json(
        &result,
        json!({
            "00080100": {"vr": "SH", "Value": ["A"]},
            "00180050": {"vr": "DS", "Value": ["abc"]},
            "00180088": {"vr": "DS", "Value": ["NaN"]},
            "00280010": {"vr": "US", "Value": [2]},
            "00280011": {"vr": "US"},
            "00280034": {"vr": "IS", "Value": ["9."]},
        }),
    );
}

#[test]
fn deflated_data_sets_are_flagged_and_the_meta_group_left_out() {
    // The tokenizer sees the inflated stream; the listener only has to say so.
    #[rustfmt::skip]
    let inflated = [
        0x10, 0x00, 0x10, 0x00, b'P', b'N', 4, 0, b'D', b'o', b'e', b' ', // (0010,0010) PN "Doe "
    ];
    let result = listen(
        &part10(DEFLATED_EXPLICIT_VR_LE, &inflated),
        JsonOptions::default(),
    );
    assert!(result.deflated);
    assert_json(
        &result,
        json!({"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe"}]}}),
    );
}

#[test]
fn cp246_sequences_render_their_implicit_little_endian_items() {
    #[rustfmt::skip]
    let dataset = [
        0x08, 0x00, 0x15, 0x11, b'U', b'N', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, // (0008,1115) UN, undefined: CP-246
        0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF,                   //  item, undefined
        0x28, 0x00, 0x10, 0x00, 2, 0, 0, 0, 0x00, 0x02,                   //   (0028,0010) implicit US 512
        0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0,                               //  item delimiter
        0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0,                               // sequence delimiter
    ];
    let result = listen(&part10(EXPLICIT_VR_LE, &dataset), JsonOptions::default());
    assert_json(
        &result,
        json!({"00081115": {"vr": "SQ", "Value": [{"00280010": {"vr": "US", "Value": [512]}}]}}),
    );
}

#[test]
fn base64_pads_like_rfc4648() {
    let cases: [(&[u8], &str); 5] = [
        (b"", ""),
        (b"a", "YQ=="),
        (b"ab", "YWI="),
        (b"abc", "YWJj"),
        (&[0, 1, 2, 3, 4], "AAECAwQ="),
    ];
    for (bytes, expected) in cases {
        assert_eq!(base64(bytes), expected);
    }
}
