//! Rendering of one primitive value as a DICOM JSON attribute object (PS3.18 F.2.3, F.2.5,
//! F.2.7): text split into values and trimmed, person names as component groups, numbers
//! decoded in the data set's byte order, binary values as base64 `InlineBinary`.
//!
//! Nothing here fails: a value that does not parse as its VR says is rendered as well as it
//! can be (an unparsable number stays a string, a trailing partial binary number is dropped).

use std::borrow::Cow;

use dicom_core::VR;
use serde_json::{Map, Number, Value};

/// How the text of a data set is decoded, from its Specific Character Set (0008,0005), PS3.5
/// 6.1.2.5. UTF-8 (ISO_IR 192, and the default repertoire, ASCII, which UTF-8 contains) and
/// Latin-1 (ISO_IR 100) are decoded here; every other repertoire dicom-encoding knows (the
/// ISO 8859 parts, Japanese, Korean, Chinese, Thai) through its tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TextDecoding {
    #[default]
    Utf8,
    Latin1,
    /// A repertoire by its Defined Term, one of [`TABLE_TERMS`].
    Table(&'static str),
}

/// The Defined Terms of the repertoires decoded with dicom-encoding's tables.
const TABLE_TERMS: &[&str] = &[
    "ISO_IR 13",
    "ISO 2022 IR 13",
    "ISO 2022 IR 87",
    "ISO_IR 101",
    "ISO 2022 IR 101",
    "ISO_IR 109",
    "ISO 2022 IR 109",
    "ISO_IR 110",
    "ISO 2022 IR 110",
    "ISO_IR 126",
    "ISO 2022 IR 126",
    "ISO_IR 127",
    "ISO 2022 IR 127",
    "ISO_IR 138",
    "ISO 2022 IR 138",
    "ISO_IR 144",
    "ISO 2022 IR 144",
    "ISO 2022 IR 149",
    "ISO_IR 166",
    "ISO 2022 IR 166",
    "GB18030",
    "GBK",
    "ISO 2022 IR 58",
];

/// ESC: starts an ISO 2022 escape sequence that switches repertoires inside a value.
const ESCAPE: u8 = 0x1B;

impl TextDecoding {
    /// The decoding named by a Specific Character Set value (its raw bytes). With code
    /// extensions (several values, e.g. `\ISO 2022 IR 87`), Japanese kanji (IR 87) wins,
    /// since its decoder follows the escape sequences of the other Japanese sets too; otherwise
    /// the first repertoire other than the default.
    pub fn from_specific_character_set(value: &[u8]) -> TextDecoding {
        let value = String::from_utf8_lossy(value);
        let terms: Vec<&str> = value
            .split('\\')
            .map(|term| term.trim_matches([' ', '\0']))
            .filter(|term| !term.is_empty() && !matches!(*term, "ISO_IR 6" | "ISO 2022 IR 6"))
            .collect();
        let chosen = terms
            .iter()
            .find(|term| **term == "ISO 2022 IR 87")
            .or_else(|| terms.first());
        match chosen.copied() {
            Some("ISO_IR 100" | "ISO 2022 IR 100") => TextDecoding::Latin1,
            Some(term) => TABLE_TERMS
                .iter()
                .find(|known| **known == term)
                .map_or(TextDecoding::Utf8, |known| TextDecoding::Table(known)),
            None => TextDecoding::Utf8,
        }
    }

    fn decode(self, bytes: &[u8]) -> Cow<'_, str> {
        match self {
            TextDecoding::Utf8 => String::from_utf8_lossy(bytes),
            // ISO 8859-1 maps each byte to the code point of the same number.
            TextDecoding::Latin1 => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
            TextDecoding::Table(term) => {
                use dicom_encoding::text::{SpecificCharacterSet, TextCodec};
                // The ISO-2022-JP decoder reads escape sequences itself; the others decode
                // the bytes between them (each value starts in its set, PS3.5 6.1.2.5.3).
                let text = if term == "ISO 2022 IR 87" || !bytes.contains(&ESCAPE) {
                    Cow::Borrowed(bytes)
                } else {
                    Cow::Owned(without_escape_sequences(bytes))
                };
                SpecificCharacterSet::from_code(term)
                    .and_then(|set| set.decode(&text).ok())
                    .map_or_else(
                        || Cow::Owned(String::from_utf8_lossy(&text).into_owned()),
                        Cow::Owned,
                    )
            }
        }
    }
}

/// `bytes` without ISO 2022 escape sequences: ESC, intermediate bytes (0x20-0x2F), and a
/// final byte (0x30-0x7E).
fn without_escape_sequences(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes.iter();
    while let Some(&byte) = rest.next() {
        if byte != ESCAPE {
            out.push(byte);
            continue;
        }
        for &next in rest.by_ref() {
            if !(0x20..=0x2F).contains(&next) {
                break;
            }
        }
    }
    out
}

/// How the values of the data set being rendered are encoded.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValueEncoding {
    pub text: TextDecoding,
    pub big_endian: bool,
}

/// Binary VRs: `InlineBinary` or `BulkDataURI`, never `Value` (PS3.18 F.2.7).
pub fn is_binary(vr: VR) -> bool {
    matches!(
        vr,
        VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN
    )
}

/// The JSON key of an attribute: its tag as 8 uppercase hex digits (PS3.18 F.2.1.1).
pub fn tag_key(tag: dicom_core::Tag) -> String {
    format!("{:04X}{:04X}", tag.group(), tag.element())
}

/// `{"vr": vr}` with `field` set to `value`, or with nothing else when `value` is `None`.
pub fn attribute(vr: VR, field: Option<(&str, Value)>) -> Value {
    let mut object = Map::new();
    object.insert("vr".into(), Value::String(vr.to_string().into()));
    if let Some((name, value)) = field {
        object.insert(name.into(), value);
    }
    Value::Object(object)
}

/// The attribute object of a whole value of `vr`.
pub fn render(vr: VR, bytes: &[u8], encoding: ValueEncoding) -> Value {
    if bytes.is_empty() {
        return attribute(vr, None);
    }
    if is_binary(vr) {
        let swapped = to_little_endian(vr, bytes, encoding.big_endian);
        return attribute(vr, Some(("InlineBinary", Value::String(base64(&swapped)))));
    }
    let values = match vr {
        VR::US => numbers::<2>(bytes, encoding, |b, be| u16_from(b, be).into()),
        VR::SS => numbers::<2>(bytes, encoding, |b, be| (u16_from(b, be) as i16).into()),
        VR::UL => numbers::<4>(bytes, encoding, |b, be| u32_from(b, be).into()),
        VR::SL => numbers::<4>(bytes, encoding, |b, be| (u32_from(b, be) as i32).into()),
        VR::UV => numbers::<8>(bytes, encoding, |b, be| u64_from(b, be).into()),
        VR::SV => numbers::<8>(bytes, encoding, |b, be| (u64_from(b, be) as i64).into()),
        VR::FL => numbers::<4>(bytes, encoding, |b, be| {
            float_from_f32(f32::from_bits(u32_from(b, be)))
        }),
        VR::FD => numbers::<8>(bytes, encoding, |b, be| {
            float(f64::from_bits(u64_from(b, be)))
        }),
        VR::AT => numbers::<4>(bytes, encoding, |b, be| {
            let (group, element) = (u16_from(&b[..2], be), u16_from(&b[2..], be));
            Value::String(format!("{group:04X}{element:04X}"))
        }),
        _ => strings(vr, &text(vr, bytes, encoding.text)),
    };
    if values.is_empty() {
        attribute(vr, None)
    } else {
        attribute(vr, Some(("Value", Value::Array(values))))
    }
}

/// Text VRs whose value is one string, backslashes included (PS3.5 Table 6.2-1).
fn is_single_valued(vr: VR) -> bool {
    matches!(vr, VR::LT | VR::ST | VR::UT | VR::UR)
}

/// Text VRs in which leading spaces are significant.
fn keeps_leading_spaces(vr: VR) -> bool {
    matches!(vr, VR::LT | VR::ST | VR::UT | VR::UC)
}

/// Decodes text; only these VRs use the Specific Character Set (PS3.5 6.1.2.3), the others
/// are in the default repertoire.
fn text(vr: VR, bytes: &[u8], decoding: TextDecoding) -> Cow<'_, str> {
    match vr {
        VR::SH | VR::LO | VR::ST | VR::LT | VR::UC | VR::UT | VR::PN => decoding.decode(bytes),
        _ => String::from_utf8_lossy(bytes),
    }
}

/// The `Value` array of a text value: empty when the whole value is padding; an empty value
/// among several is `null` (PS3.18 F.2.5).
fn strings(vr: VR, text: &str) -> Vec<Value> {
    if text.trim_matches([' ', '\0']).is_empty() {
        return Vec::new();
    }
    let parts: Vec<&str> = if is_single_valued(vr) {
        vec![text]
    } else {
        text.split('\\').collect()
    };
    parts
        .into_iter()
        .map(|part| {
            let part = part.trim_end_matches([' ', '\0']);
            let part = if keeps_leading_spaces(vr) {
                part
            } else {
                part.trim_start_matches(' ')
            };
            if part.is_empty() {
                return Value::Null;
            }
            match vr {
                VR::PN => person_name(part),
                VR::IS => part
                    .parse::<i64>()
                    .map_or_else(|_| Value::String(part.into()), Value::from),
                VR::DS => match part.parse::<f64>() {
                    Ok(number) if number.is_finite() => float(number),
                    _ => Value::String(part.into()),
                },
                _ => Value::String(part.into()),
            }
        })
        .collect()
}

/// A person name as its component groups (PS3.18 F.2.2), empty groups left out.
fn person_name(name: &str) -> Value {
    let mut object = Map::new();
    let groups = ["Alphabetic", "Ideographic", "Phonetic"];
    for (group, text) in groups.iter().zip(name.splitn(3, '=')) {
        if !text.is_empty() {
            object.insert((*group).into(), Value::String(text.into()));
        }
    }
    if object.is_empty() {
        Value::Null
    } else {
        Value::Object(object)
    }
}

/// A float as a JSON number, or as the string JSON lacks a number for (`NaN`, `Infinity`,
/// `-Infinity`).
fn float(number: f64) -> Value {
    match Number::from_f64(number) {
        Some(number) => Value::Number(number),
        None if number.is_nan() => Value::String("NaN".into()),
        None if number > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

/// An `f32` as the `f64` of its shortest decimal form, so 0.1f32 is 0.1, not
/// 0.10000000149011612.
fn float_from_f32(number: f32) -> Value {
    float(number.to_string().parse().unwrap_or(f64::from(number)))
}

/// Decodes each whole number of `size_of::<T>()` bytes; a trailing partial one is dropped.
fn numbers<const N: usize>(
    bytes: &[u8],
    encoding: ValueEncoding,
    decode: impl Fn(&[u8; N], bool) -> Value,
) -> Vec<Value> {
    bytes
        .chunks_exact(N)
        .map(|chunk| {
            let chunk: &[u8; N] = chunk.try_into().expect("chunks_exact gives N bytes");
            decode(chunk, encoding.big_endian)
        })
        .collect()
}

fn u16_from(bytes: &[u8], big_endian: bool) -> u16 {
    let pair = [bytes[0], bytes[1]];
    if big_endian {
        u16::from_be_bytes(pair)
    } else {
        u16::from_le_bytes(pair)
    }
}

fn u32_from(bytes: &[u8; 4], big_endian: bool) -> u32 {
    if big_endian {
        u32::from_be_bytes(*bytes)
    } else {
        u32::from_le_bytes(*bytes)
    }
}

fn u64_from(bytes: &[u8; 8], big_endian: bool) -> u64 {
    if big_endian {
        u64::from_be_bytes(*bytes)
    } else {
        u64::from_le_bytes(*bytes)
    }
}

/// The width of the words of a binary VR, whose bytes a big endian data set reverses.
pub fn word_size(vr: VR) -> usize {
    match vr {
        VR::OW => 2,
        VR::OF | VR::OL => 4,
        VR::OD | VR::OV => 8,
        _ => 1,
    }
}

/// `bytes` in little endian order: `InlineBinary`, like bulk data served without a transfer
/// syntax, is little endian.
fn to_little_endian(vr: VR, bytes: &[u8], big_endian: bool) -> Cow<'_, [u8]> {
    let size = word_size(vr);
    if !big_endian || size == 1 {
        return Cow::Borrowed(bytes);
    }
    let mut swapped = bytes.to_vec();
    for word in swapped.chunks_exact_mut(size) {
        word.reverse();
    }
    Cow::Owned(swapped)
}

/// Standard base64 with padding (RFC 4648 §4), as `InlineBinary` wants.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> shift) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
