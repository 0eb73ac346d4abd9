//! Tests of the tokenizer: dicom-parser as an oracle on files written by dicom-object, every
//! chunking of each input through a driver that waits like the real one, and annotated byte
//! fixtures for the structures and errors the writers rarely produce.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::rc::Rc;

use dicom_core::value::{DataSetSequence, PixelFragmentSequence, Value};
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use dicom_parser::dataset::read::{DataSetReaderOptions, ValueReadStrategy};
use dicom_parser::dataset::DataToken;
use dicom_parser::DataSetReader;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};

use super::syntax::{EXPLICIT_VR_BE, EXPLICIT_VR_LE, IMPLICIT_VR_LE};
use super::tokenizer::{Step, Token, TokenError, Tokenizer};

/// Nesting accepted by every test tokenizer: the three-deep fixture fits, four levels do not.
const MAX_DEPTH: usize = 3;
const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";

/// What the driver saw: a token that borrows nothing, one value (chunks joined), or an error.
#[derive(Debug, PartialEq)]
enum Seen {
    Token(Token<'static>),
    Value { data: Vec<u8>, complete: bool },
    Error(TokenError),
}

/// A token with the stream positions before and after it.
type Entry = (u64, u64, Seen);

/// Tokenizes `chunks`, arriving one at a time, like `reader::read_raw`: the tokenizer sees the
/// rest of the front chunk, `NeedMore(n)` waits until `n` contiguous bytes are there (merging
/// chunks), and the end of input is only known once a wait finds nothing more to come.
fn tokenize(chunks: &[&[u8]]) -> Vec<Entry> {
    let mut pending: VecDeque<&[u8]> = chunks.iter().copied().collect();
    let mut queue: VecDeque<Vec<u8>> = VecDeque::new();
    let mut fetch = |n: usize, queue: &mut VecDeque<Vec<u8>>| {
        let available = |queue: &VecDeque<Vec<u8>>| queue.iter().map(Vec::len).sum::<usize>();
        while available(queue) < n && !pending.is_empty() {
            queue.extend(pending.pop_front().map(<[u8]>::to_vec));
        }
        let complete = pending.is_empty() && available(queue) < n;
        while queue.len() > 1 && queue[0].len() < n {
            let next = queue.remove(1).expect("a second chunk");
            queue[0].extend_from_slice(&next);
        }
        let window = queue.front().cloned().unwrap_or_default();
        (window, complete)
    };
    let mut tokenizer = Tokenizer::new(MAX_DEPTH);
    let mut seen: Vec<Entry> = Vec::new();
    let (mut window, mut eof) = fetch(1, &mut queue);
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    for _ in 0..10 * total + 100 {
        let start = tokenizer.position();
        let (consumed, token) = match tokenizer.next(&window, eof) {
            Err(error) => {
                seen.push((start, start, Seen::Error(error)));
                return seen;
            }
            Ok(Step::NeedMore(n)) => {
                assert!(!eof && n > window.len(), "NeedMore({n}) over {window:?}");
                (window, eof) = fetch(n, &mut queue);
                continue;
            }
            Ok(Step::Token { consumed, token }) => (consumed, token),
        };
        assert_eq!(tokenizer.position(), start + consumed as u64);
        let end = start + consumed as u64;
        let header_offset = match &token {
            Token::Element(h) | Token::SequenceStart(h) | Token::PixelSequenceStart(h) => {
                Some(h.offset)
            }
            Token::ItemStart { offset, .. } | Token::Fragment { offset, .. } => Some(*offset),
            _ => None,
        };
        assert!(
            header_offset.is_none_or(|offset| offset == start),
            "{token:?}"
        );
        match (token, seen.last_mut()) {
            (Token::Value { data, last }, Some((_, to, Seen::Value { data: d, complete })))
                if !*complete =>
            {
                d.extend_from_slice(data);
                (*to, *complete) = (end, last);
            }
            (Token::Value { data, last }, _) => seen.push((
                start,
                end,
                Seen::Value {
                    data: data.to_vec(),
                    complete: last,
                },
            )),
            (token, _) => {
                let done = token == Token::End;
                seen.push((start, end, Seen::Token(owned(token))));
                if done {
                    assert_eq!(end, total as u64, "End before the end of the input");
                    return seen;
                }
            }
        }
        queue.front_mut().expect("consumed bytes").drain(..consumed);
        window.drain(..consumed);
    }
    panic!("the tokenizer makes no progress: {seen:?}");
}

fn owned(token: Token<'_>) -> Token<'static> {
    match token {
        Token::Preamble => Token::Preamble,
        Token::Element(h) => Token::Element(h),
        Token::Value { .. } => unreachable!("values are joined by the driver"),
        Token::SequenceStart(h) => Token::SequenceStart(h),
        Token::ItemStart { length, offset } => Token::ItemStart { length, offset },
        Token::ItemEnd => Token::ItemEnd,
        Token::SequenceEnd => Token::SequenceEnd,
        Token::PixelSequenceStart(h) => Token::PixelSequenceStart(h),
        Token::Fragment { length, offset } => Token::Fragment { length, offset },
        Token::PixelSequenceEnd => Token::PixelSequenceEnd,
        Token::MetaEnd {
            transfer_syntax,
            encoding,
        } => Token::MetaEnd {
            transfer_syntax,
            encoding,
        },
        Token::End => Token::End,
    }
}

/// Tokenizes `bytes` whole, split in two at every position, in 1-byte chunks and in chunks of
/// pseudo-random sizes; asserts that every run sees the same tokens and returns them.
fn tokenize_every_way(bytes: &[u8]) -> Vec<Entry> {
    let whole = tokenize(&[bytes]);
    let mut chunkings: Vec<Vec<&[u8]>> = (1..bytes.len())
        .map(|at| vec![&bytes[..at], &bytes[at..]])
        .collect();
    chunkings.push(bytes.chunks(1).collect());
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..32 {
        let mut chunks = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            // Knuth's MMIX LCG; chunk sizes 1..=40.
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let (chunk, tail) =
                rest.split_at(((seed >> 33) % 40 + 1).min(rest.len() as u64) as usize);
            chunks.push(chunk);
            rest = tail;
        }
        chunkings.push(chunks);
    }
    for chunks in chunkings {
        let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        let seen = tokenize(&chunks);
        // Compared through Debug: dicom-core's `Length` holds undefined != undefined.
        let same = |a: &Entry, b: &Entry| format!("{a:?}") == format!("{b:?}");
        let first_difference = seen.iter().zip(&whole).position(|(a, b)| !same(a, b));
        assert_eq!(
            (first_difference, seen.len()),
            (None, whole.len()),
            "chunk sizes {sizes:?}: {:?}",
            first_difference.map(|at| (&seen[at], &whole[at]))
        );
    }
    whole
}

/// Renders the data set tokens of `bytes` (those after the meta group, or an error) under
/// every chunking, one line each, and compares them with `expect`.
fn check(bytes: &[u8], expect: &str) {
    let seen = tokenize_every_way(bytes);
    let meta_end = seen
        .iter()
        .position(|(_, _, s)| matches!(s, Seen::Token(Token::MetaEnd { .. })))
        .unwrap_or(seen.len() - 1);
    let mut actual = String::new();
    for (start, _, seen) in &seen[meta_end..] {
        let line = match seen {
            Seen::Token(Token::Element(h)) => format!("Element {} {} {}", h.tag, h.vr, h.length),
            Seen::Token(Token::SequenceStart(h)) => {
                format!("SequenceStart {} {} {}", h.tag, h.vr, h.length)
            }
            Seen::Token(Token::PixelSequenceStart(h)) => {
                format!("PixelSequenceStart {} {}", h.tag, h.vr)
            }
            Seen::Token(Token::ItemStart { length, .. }) => format!("ItemStart {length}"),
            Seen::Token(Token::Fragment { length, .. }) => format!("Fragment {length}"),
            Seen::Token(Token::MetaEnd { encoding, .. }) => {
                format!("MetaEnd {:?}", encoding.syntax)
            }
            Seen::Token(token) => format!("{token:?}"),
            Seen::Value { data, complete } => {
                let text = match std::str::from_utf8(data) {
                    _ if data.len() > 24 => format!("{} bytes", data.len()),
                    Ok(text)
                        if data
                            .iter()
                            .all(|&b| b == 0 || b.is_ascii_graphic() || b == b' ') =>
                    {
                        format!("{text:?}")
                    }
                    _ => format!("{data:02x?}"),
                };
                let more = if *complete { "" } else { " (incomplete)" };
                format!("  value {text}{more}")
            }
            Seen::Error(error) => format!("error {:?}", error.kind),
        };
        writeln!(actual, "{start:>4} {line}").expect("write to a String");
    }
    let expect: String = expect.lines().map(|l| format!("{}\n", l.trim())).collect();
    let trimmed: String = actual.lines().map(|l| format!("{}\n", l.trim())).collect();
    assert_eq!(trimmed.trim(), expect.trim(), "actual:\n{actual}");
}

/// A Part 10 file: zero preamble, `DICM`, a meta group holding only its group length and the
/// transfer syntax UID, then `dataset` as given.
fn part10(transfer_syntax: &str, dataset: &[u8]) -> Vec<u8> {
    let mut uid = transfer_syntax.as_bytes().to_vec();
    if uid.len() % 2 == 1 {
        uid.push(0);
    }
    let mut bytes = vec![0; 128];
    bytes.extend_from_slice(b"DICM");
    #[rustfmt::skip]
    bytes.extend_from_slice(&[
        0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0,     // (0002,0000) UL 4: group length
        8 + uid.len() as u8, 0, 0, 0,                 //   = the one element below
        0x02, 0x00, 0x10, 0x00, b'U', b'I', uid.len() as u8, 0, // (0002,0010) UI transfer syntax
    ]);
    bytes.extend_from_slice(&uid);
    bytes.extend_from_slice(dataset);
    bytes
}

// ---- oracle: dicom-object writes, dicom-parser reads ----

/// A data set exercising the headers writers produce: short and long explicit lengths, odd
/// text padded by the writer, nested sequences, an empty sequence and item, a private tag.
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
        DataElement::new(Tag(0x0028, 0x0011), VR::US, PrimitiveValue::from(2_u16)),
        DataElement::new(Tag(0x0018, 0x0050), VR::FD, PrimitiveValue::from(1.5_f64)),
    ])
}

fn written(
    transfer_syntax: &str,
    mut object: InMemDicomObject,
    pixels: Value<InMemDicomObject>,
) -> Vec<u8> {
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

/// Counts the bytes dicom-parser has read, so its tokens get stream positions.
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

/// dicom-parser's tokens for `bytes` (starting at stream position `base`), in the form of
/// [`normalized`]: fragments become one line, item ends inside pixel data are dropped.
fn oracle(bytes: &[u8], base: u64, transfer_syntax: &str) -> Vec<(u64, u64, String)> {
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
    let mut frames: Vec<char> = vec![];
    let mut out = vec![];
    let mut start = base;
    for token in reader {
        let line = match token.expect("dicom-parser reads the file") {
            DataToken::ElementHeader(h) => Some(format!("element {} {} {}", h.tag, h.vr, h.len)),
            DataToken::SequenceStart { tag, len } => {
                frames.push('S');
                Some(format!("sequence {tag} {len}"))
            }
            DataToken::PixelSequenceStart => {
                frames.push('P');
                Some("pixel sequence".into())
            }
            DataToken::ItemStart { len } if frames.last() == Some(&'P') => {
                frames.push('F');
                Some(format!("fragment {len}"))
            }
            DataToken::ItemStart { len } => {
                frames.push('I');
                Some(format!("item {len}"))
            }
            DataToken::ItemEnd => (frames.pop() == Some('I')).then(|| "item end".into()),
            DataToken::SequenceEnd => {
                frames.pop();
                Some("sequence end".into())
            }
            DataToken::PrimitiveValue(v) => Some(format!("value {:02x?}", v.to_bytes())),
            DataToken::ItemValue(v) => Some(format!("value {v:02x?}")),
            DataToken::OffsetTable(table) => {
                let bytes: Vec<u8> = table.iter().flat_map(|o| o.to_le_bytes()).collect();
                Some(format!("value {bytes:02x?}"))
            }
        };
        let end = read.get();
        out.extend(line.map(|l| (start, end, l)));
        start = end;
    }
    out
}

/// Our tokens in the oracle's form.
fn normalized(seen: &[Entry]) -> Vec<(u64, u64, String)> {
    let line = |seen: &Seen| match seen {
        Seen::Token(Token::Element(h)) => Some(format!("element {} {} {}", h.tag, h.vr, h.length)),
        Seen::Token(Token::SequenceStart(h)) => Some(format!("sequence {} {}", h.tag, h.length)),
        Seen::Token(Token::PixelSequenceStart(_)) => Some("pixel sequence".into()),
        Seen::Token(Token::ItemStart { length, .. }) => Some(format!("item {length}")),
        Seen::Token(Token::Fragment { length, .. }) => Some(format!("fragment {length}")),
        Seen::Token(Token::ItemEnd) => Some("item end".into()),
        Seen::Token(Token::SequenceEnd | Token::PixelSequenceEnd) => Some("sequence end".into()),
        Seen::Value { data, complete } => {
            assert!(complete);
            Some(format!("value {data:02x?}"))
        }
        Seen::Token(_) => None,
        Seen::Error(error) => panic!("the tokenizer rejects a valid file: {error}"),
    };
    seen.iter()
        .filter_map(|(start, end, s)| line(s).map(|l| (*start, *end, l)))
        .collect()
}

/// Compares our tokens of a dicom-object file, meta group and data set, with dicom-parser's.
fn check_against_oracle(bytes: &[u8], transfer_syntax: &str) {
    let seen = tokenize_every_way(bytes);
    let meta_end = seen
        .iter()
        .position(|(_, _, s)| matches!(s, Seen::Token(Token::MetaEnd { .. })))
        .expect("the meta group ends");
    // The meta group ends where its group length, the first element, says.
    assert_eq!(&bytes[132..138], b"\x02\0\0\0UL");
    let group_length = u32::from_le_bytes(bytes[140..144].try_into().expect("4 bytes"));
    let dataset_start = 144 + u64::from(group_length);
    assert_eq!(seen[meta_end].0, dataset_start);
    let mut expected = oracle(&bytes[132..dataset_start as usize], 132, EXPLICIT_VR_LE);
    expected.extend(oracle(
        &bytes[dataset_start as usize..],
        dataset_start,
        transfer_syntax,
    ));
    let actual = normalized(&seen);
    for (at, (ours, theirs)) in actual.iter().zip(&expected).enumerate() {
        assert_eq!(ours, theirs, "token {at} of {transfer_syntax}");
    }
    assert_eq!(
        actual.len(),
        expected.len(),
        "token count for {transfer_syntax}"
    );
    assert!(matches!(seen.last(), Some((_, _, Seen::Token(Token::End)))));
}

#[test]
fn native_files_match_dicom_parser_in_every_chunking() {
    let pixels = || Value::from(PrimitiveValue::from(vec![0_u8, 64, 128, 255]));
    for transfer_syntax in [EXPLICIT_VR_LE, IMPLICIT_VR_LE, EXPLICIT_VR_BE] {
        let bytes = written(transfer_syntax, sample_object(), pixels());
        check_against_oracle(&bytes, transfer_syntax);
    }
}

#[test]
fn encapsulated_pixel_data_matches_dicom_parser_in_every_chunking() {
    let fragments = vec![
        vec![0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9, 0],
        vec![0xFF, 0xD8, 0xFF, 0xD9],
    ];
    let pixels = PixelFragmentSequence::new(vec![0_u32, 16], fragments);
    let bytes = written(JPEG_BASELINE, sample_object(), Value::from(pixels));
    check_against_oracle(&bytes, JPEG_BASELINE);
}

// ---- annotated fixtures (explicit VR LE unless stated; the data set starts at 172) ----

#[test]
fn undefined_length_sequences_and_items_nest_three_deep() {
    #[rustfmt::skip]
    let dataset = [
        0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, // (0008,1115) SQ, undefined
        0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF,                   //  item, undefined
        0x08, 0x00, 0x40, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, //   (0008,1140) SQ, undefined
        0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF,                   //    item, undefined
        0x40, 0x00, 0x30, 0xA7, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, //     (0040,A730) SQ, undefined
        0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF,                   //      item, undefined
        0x08, 0x00, 0x50, 0x11, b'U', b'I', 4, 0, b'1', b'.', b'2', 0,    //       (0008,1150) UI "1.2"
        0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0,                               //      item delimiter
        0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0,                               //     sequence delimiter
        0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0,                               //    item delimiter
        0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0,                               //   sequence delimiter
        0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0,                               //  item delimiter
        0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0,                               // sequence delimiter
        0x10, 0x00, 0x10, 0x00, b'P', b'N', 4, 0, b'D', b'o', b'e', b' ', // (0010,0010) PN "Doe "
    ];
    check(
        &part10(EXPLICIT_VR_LE, &dataset),
        r#"
            172 MetaEnd ExplicitLittle
            172 SequenceStart (0008,1115) SQ U/L
            184 ItemStart U/L
            192 SequenceStart (0008,1140) SQ U/L
            204 ItemStart U/L
            212 SequenceStart (0040,A730) SQ U/L
            224 ItemStart U/L
            232 Element (0008,1150) UI 4
            240   value "1.2\0"
            244 ItemEnd
            252 SequenceEnd
            260 ItemEnd
            268 SequenceEnd
            276 ItemEnd
            284 SequenceEnd
            292 Element (0010,0010) PN 4
            300   value "Doe "
            304 End
        "#,
    );
}

#[test]
fn sequences_nested_beyond_max_depth_are_too_deep() {
    #[rustfmt::skip]
    let dataset = [
        0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, // (0008,1115) SQ, undefined
        0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF,                   //  item, undefined
        0x08, 0x00, 0x40, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, //   (0008,1140) SQ, undefined
        0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF,                   //    item, undefined
        0x40, 0x00, 0x30, 0xA7, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, //     (0040,A730) SQ, undefined
        0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF,                   //      item, undefined
        0x40, 0x00, 0x30, 0xA7, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, //       a fourth SQ
    ];
    check(
        &part10(EXPLICIT_VR_LE, &dataset),
        r#"
            172 MetaEnd ExplicitLittle
            172 SequenceStart (0008,1115) SQ U/L
            184 ItemStart U/L
            192 SequenceStart (0008,1140) SQ U/L
            204 ItemStart U/L
            212 SequenceStart (0040,A730) SQ U/L
            224 ItemStart U/L
            232 error TooDeep(3)
        "#,
    );
}

#[test]
fn defined_length_sequences_and_items_end_where_their_lengths_say() {
    #[rustfmt::skip]
    let dataset = [
        0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 54, 0, 0, 0,             // (0008,1115) SQ, 54 bytes
        0xFE, 0xFF, 0x00, 0xE0, 18, 0, 0, 0,                               //  item, 18 bytes
        0x08, 0x00, 0x55, 0x11, b'U', b'I', 10, 0, b'1', b'.', b'2', b'.', //   (0008,1155) UI
        b'3', b'.', b'4', b'.', b'5', 0,                                   //     "1.2.3.4.5"
        0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0,                                //  item, empty
        0xFE, 0xFF, 0x00, 0xE0, 12, 0, 0, 0,                               //  item, 12 bytes
        0x40, 0x00, 0x30, 0xA7, b'S', b'Q', 0, 0, 0, 0, 0, 0,              //   (0040,A730) SQ, empty
        0x10, 0x00, 0x10, 0x00, b'P', b'N', 4, 0, b'D', b'o', b'e', b' ',  // (0010,0010) PN "Doe "
    ];
    let bytes = part10(EXPLICIT_VR_LE, &dataset);
    check(
        &bytes,
        r#"
            172 MetaEnd ExplicitLittle
            172 SequenceStart (0008,1115) SQ 54
            184 ItemStart 18
            192 Element (0008,1155) UI 10
            200   value "1.2.3.4.5\0"
            210 ItemEnd
            210 ItemStart 0
            218 ItemEnd
            218 ItemStart 12
            226 SequenceStart (0040,A730) SQ 0
            238 SequenceEnd
            238 ItemEnd
            238 SequenceEnd
            238 Element (0010,0010) PN 4
            246   value "Doe "
            250 End
        "#,
    );
    check_against_oracle(&bytes, EXPLICIT_VR_LE);
}

#[test]
fn undefined_length_un_is_a_sequence_of_implicit_vr_items() {
    #[rustfmt::skip]
    let dataset = [
        0x08, 0x00, 0x15, 0x11, b'U', b'N', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, // (0008,1115) UN, undefined (CP-246)
        0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF,                   //  item, undefined
        0x08, 0x00, 0x50, 0x11, 4, 0, 0, 0, b'1', b'.', b'2', 0,          //   (0008,1150) implicit, "1.2"
        0x08, 0x00, 0x40, 0x11, 0xFF, 0xFF, 0xFF, 0xFF,                   //   (0008,1140) implicit, undefined
        0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0,                               //    item, empty
        0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0,                               //   sequence delimiter
        0x09, 0x00, 0x10, 0x00, 2, 0, 0, 0, b'X', b' ',                   //   (0009,0010) private creator
        0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0,                               //  item delimiter
        0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0,                               // sequence delimiter
        0x10, 0x00, 0x10, 0x00, b'P', b'N', 4, 0, b'D', b'o', b'e', b' ', // (0010,0010) explicit again
    ];
    check(
        &part10(EXPLICIT_VR_LE, &dataset),
        r#"
            172 MetaEnd ExplicitLittle
            172 SequenceStart (0008,1115) UN U/L
            184 ItemStart U/L
            192 Element (0008,1150) UI 4
            200   value "1.2\0"
            204 SequenceStart (0008,1140) SQ U/L
            212 ItemStart 0
            220 ItemEnd
            220 SequenceEnd
            228 Element (0009,0010) LO 2
            236   value "X "
            238 ItemEnd
            246 SequenceEnd
            254 Element (0010,0010) PN 4
            262   value "Doe "
            266 End
        "#,
    );
}

#[test]
fn odd_value_lengths_are_read_as_given() {
    #[rustfmt::skip]
    let dataset = [
        0x10, 0x00, 0x10, 0x00, b'P', b'N', 3, 0, b'D', b'o', b'e',   // (0010,0010) PN "Doe", odd
        0x10, 0x00, 0x20, 0x00, b'L', b'O', 1, 0, b'7',               // (0010,0020) LO "7", odd
        0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 3, 0, 0, 0, 1, 2, 3, // (7FE0,0010) OB, 3 bytes
    ];
    check(
        &part10(EXPLICIT_VR_LE, &dataset),
        r#"
            172 MetaEnd ExplicitLittle
            172 Element (0010,0010) PN 3
            180   value "Doe"
            183 Element (0010,0020) LO 1
            191   value "7"
            192 Element (7FE0,0010) OB 3
            204   value [01, 02, 03]
            207 End
        "#,
    );
}

#[test]
fn implicit_data_set_labelled_explicit_is_read_as_implicit() {
    #[rustfmt::skip]
    let dataset = [
        0x08, 0x00, 0x16, 0x00, 4, 0, 0, 0, b'1', b'.', b'2', 0, // (0008,0016) implicit, "1.2"
        0x08, 0x00, 0x15, 0x11, 0xFF, 0xFF, 0xFF, 0xFF,          // (0008,1115) implicit, undefined
        0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF,          //  item, undefined
        0x08, 0x00, 0x50, 0x11, 4, 0, 0, 0, b'1', b'.', b'3', 0, //   (0008,1150) implicit, "1.3"
        0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0,                      //  item delimiter
        0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0,                      // sequence delimiter
        0x10, 0x00, 0x10, 0x00, 4, 0, 0, 0, b'D', b'o', b'e', b' ', // (0010,0010) implicit, "Doe "
    ];
    check(
        &part10(EXPLICIT_VR_LE, &dataset),
        r#"
            172 MetaEnd ExplicitLittle
            172 Element (0008,0016) UI 4
            180   value "1.2\0"
            184 SequenceStart (0008,1115) SQ U/L
            192 ItemStart U/L
            200 Element (0008,1150) UI 4
            208   value "1.3\0"
            212 ItemEnd
            220 SequenceEnd
            228 Element (0010,0010) PN 4
            236   value "Doe "
            240 End
        "#,
    );
    // The same data set correctly labelled reads the same.
    check(
        &part10(IMPLICIT_VR_LE, &dataset),
        r#"
            170 MetaEnd ImplicitLittle
            170 Element (0008,0016) UI 4
            178   value "1.2\0"
            182 SequenceStart (0008,1115) SQ U/L
            190 ItemStart U/L
            198 Element (0008,1150) UI 4
            206   value "1.3\0"
            210 ItemEnd
            218 SequenceEnd
            226 Element (0010,0010) PN 4
            234   value "Doe "
            238 End
        "#,
    );
}

#[test]
fn huge_claimed_length_on_short_input_is_truncated_not_allocated() {
    #[rustfmt::skip]
    let dataset = [
        0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xF0, 0xFF, 0xFF, 0xFF, // (7FE0,0010) OB, 0xFFFFFFF0 bytes
        b'a', b'b', b'c', b'd',                                           //  ... of which 4 arrive
    ];
    check(
        &part10(EXPLICIT_VR_LE, &dataset),
        r#"
            172 MetaEnd ExplicitLittle
            172 Element (7FE0,0010) OB 4294967280
            184   value "abcd" (incomplete)
            188 error Truncated("value of (7FE0,0010) is missing its last 4294967276 bytes")
        "#,
    );
}

#[test]
fn lengths_beyond_a_defined_length_parent_are_rejected() {
    #[rustfmt::skip]
    let element_beyond_item = [
        0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 30, 0, 0, 0,          // (0008,1115) SQ, 30 bytes
        0xFE, 0xFF, 0x00, 0xE0, 20, 0, 0, 0,                            //  item, 20 bytes
        0x08, 0x00, 0x50, 0x11, b'U', b'I', 24, 0,                      //   (0008,1150) UI, 24 bytes
    ];
    check(
        &part10(EXPLICIT_VR_LE, &element_beyond_item),
        r#"
            172 MetaEnd ExplicitLittle
            172 SequenceStart (0008,1115) SQ 30
            184 ItemStart 20
            192 error LengthBeyondParent { tag: Tag(0x0008, 0x1150), end: 224, parent_end: 212 }
        "#,
    );
    #[rustfmt::skip]
    let item_beyond_sequence = [
        0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 16, 0, 0, 0,          // (0008,1115) SQ, 16 bytes
        0xFE, 0xFF, 0x00, 0xE0, 20, 0, 0, 0,                            //  item, 20 bytes
    ];
    check(
        &part10(EXPLICIT_VR_LE, &item_beyond_sequence),
        r#"
            172 MetaEnd ExplicitLittle
            172 SequenceStart (0008,1115) SQ 16
            184 error LengthBeyondParent { tag: Tag(0xFFFE, 0xE000), end: 212, parent_end: 200 }
        "#,
    );
    #[rustfmt::skip]
    let delimiter_beyond_sequence = [
        0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 12, 0, 0, 0,          // (0008,1115) SQ, 12 bytes
        0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF,                 //  item, undefined
        0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0,                             //  item delimiter, past the end
        0x10, 0x00, 0x10, 0x00, b'P', b'N', 4, 0, b'D', b'o', b'e', b' ', // (0010,0010) PN "Doe "
    ];
    check(
        &part10(EXPLICIT_VR_LE, &delimiter_beyond_sequence),
        r#"
            172 MetaEnd ExplicitLittle
            172 SequenceStart (0008,1115) SQ 12
            184 ItemStart U/L
            192 error LengthBeyondParent { tag: Tag(0xFFFE, 0xE00D), end: 200, parent_end: 196 }
        "#,
    );
}

#[test]
fn malformed_streams_are_errors() {
    let mut not_part10 = vec![0; 128];
    not_part10.extend_from_slice(b"DICX");
    check(
        &not_part10,
        r#"
            0 error NotPart10
        "#,
    );
    check(
        &[0; 100],
        r#"
            0 error NotPart10
        "#,
    );
    check(
        &part10("1.2.3.4", &[]),
        r#"
            160 error UnsupportedTransferSyntax("1.2.3.4")
        "#,
    );
    #[rustfmt::skip]
    let item_delimiter_at_top_level = [
        0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0,                             // item delimiter, no item
    ];
    check(
        &part10(EXPLICIT_VR_LE, &item_delimiter_at_top_level),
        r#"
            172 MetaEnd ExplicitLittle
            172 error Unexpected("item delimiter outside an item of undefined length")
        "#,
    );
    #[rustfmt::skip]
    let item_delimiter_in_defined_item = [
        0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 16, 0, 0, 0,          // (0008,1115) SQ, 16 bytes
        0xFE, 0xFF, 0x00, 0xE0, 8, 0, 0, 0,                             //  item, 8 bytes
        0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0,                             //   item delimiter
    ];
    check(
        &part10(EXPLICIT_VR_LE, &item_delimiter_in_defined_item),
        r#"
            172 MetaEnd ExplicitLittle
            172 SequenceStart (0008,1115) SQ 16
            184 ItemStart 8
            192 error Unexpected("item delimiter outside an item of undefined length")
        "#,
    );
    #[rustfmt::skip]
    let truncated_header = [
        0x08, 0x00, 0x16, 0x00, b'U', b'I',                             // (0008,0016) UI, no length
    ];
    check(
        &part10(EXPLICIT_VR_LE, &truncated_header),
        r#"
            172 MetaEnd ExplicitLittle
            172 error Truncated("element header needs 8 bytes, 6 left")
        "#,
    );
    #[rustfmt::skip]
    let truncated_long_header = [
        0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF,           // (0008,1115) SQ, half a length
    ];
    check(
        &part10(EXPLICIT_VR_LE, &truncated_long_header),
        r#"
            172 MetaEnd ExplicitLittle
            172 error Truncated("element header needs 12 bytes, 10 left")
        "#,
    );
    #[rustfmt::skip]
    let ends_inside_a_sequence = [
        0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, // (0008,1115) SQ, undefined
        0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF,                   //  item, undefined; then nothing
    ];
    check(
        &part10(EXPLICIT_VR_LE, &ends_inside_a_sequence),
        r#"
            172 MetaEnd ExplicitLittle
            172 SequenceStart (0008,1115) SQ U/L
            184 ItemStart U/L
            192 error Truncated("the data set ends inside a sequence or item")
        "#,
    );
}
