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
        assert!(header_offset.is_none_or(|offset| offset == start), "{token:?}");
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
            let (chunk, tail) = rest.split_at(((seed >> 33) % 40 + 1).min(rest.len() as u64) as usize);
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
            Seen::Token(Token::MetaEnd { encoding, .. }) => format!("MetaEnd {:?}", encoding.syntax),
            Seen::Token(token) => format!("{token:?}"),
            Seen::Value { data, complete } => {
                let text = if data.len() > 24 {
                    format!("{} bytes", data.len())
                } else {
                    format!("{:?}", data.escape_ascii().to_string())
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
        DataElement::new(Tag(0x0009, 0x1001), VR::UN, PrimitiveValue::from(vec![1_u8, 2, 3])),
        text((0x0010, 0x0010), VR::PN, "Doe^Jane"),
        text((0x0020, 0x4000), VR::LT, "odd"),
        DataElement::new(Tag(0x0028, 0x0010), VR::US, PrimitiveValue::from(2_u16)),
        DataElement::new(Tag(0x0028, 0x0011), VR::US, PrimitiveValue::from(2_u16)),
        DataElement::new(Tag(0x0018, 0x0050), VR::FD, PrimitiveValue::from(1.5_f64)),
    ])
}

fn written(transfer_syntax: &str, mut object: InMemDicomObject, pixels: Value<InMemDicomObject>) -> Vec<u8> {
    object.put(DataElement::new(Tag(0x7FE0, 0x0010), VR::OB, pixels));
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(transfer_syntax)
        .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.7")
        .media_storage_sop_instance_uid("1.2.826.0.1.3680043.10.1234.3.1");
    let file = object.with_meta(meta).expect("a valid meta group");
    let mut bytes = Vec::new();
    file.write_all(&mut bytes).expect("dicom-object writes the file");
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
    let ts = TransferSyntaxRegistry.get(transfer_syntax).expect("a known syntax");
    let read = Rc::new(Cell::new(base));
    let source = Counting { bytes, read: read.clone() };
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
    // The meta group's end comes from dicom-object, not from the tokenizer under test.
    let file = dicom_object::from_reader(&bytes[128..]).expect("dicom-object reads its file");
    let dataset_start = 132 + 12 + u64::from(file.meta().information_group_length);
    assert_eq!(seen[meta_end].0, dataset_start);
    let mut expected = oracle(&bytes[132..dataset_start as usize], 132, EXPLICIT_VR_LE);
    expected.extend(oracle(&bytes[dataset_start as usize..], dataset_start, transfer_syntax));
    let actual = normalized(&seen);
    for (at, (ours, theirs)) in actual.iter().zip(&expected).enumerate() {
        assert_eq!(ours, theirs, "token {at} of {transfer_syntax}");
    }
    assert_eq!(actual.len(), expected.len(), "token count for {transfer_syntax}");
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
    let fragments = vec![vec![0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9, 0], vec![0xFF, 0xD8, 0xFF, 0xD9]];
    let pixels = PixelFragmentSequence::new(vec![0_u32, 16], fragments);
    let bytes = written(JPEG_BASELINE, sample_object(), Value::from(pixels));
    check_against_oracle(&bytes, JPEG_BASELINE);
}
