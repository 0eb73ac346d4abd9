//! Tests of the tokenizer: every chunking of each input through a driver that waits like the
//! real one, annotated byte fixtures for the structures and errors that writers rarely
//! produce, and (in [`oracle`]) dicom-parser as an oracle on files written by dicom-object.

use std::collections::VecDeque;

use super::syntax::EXPLICIT_VR_LE;
use super::tokenizer::{Step, Token, Tokenizer};

mod oracle;

/// Nesting accepted by every test tokenizer: the three-deep fixture fits, four levels do not.
const MAX_DEPTH: usize = 3;

/// What the driver saw at a stream position: a token or error rendered as one line, or one
/// value with its chunks joined (and whether its last chunk came).
#[derive(Debug, PartialEq)]
enum Seen {
    Line(String),
    Value(Vec<u8>, bool),
}

type Entry = (u64, Seen);

fn describe(token: &Token<'_>) -> String {
    match token {
        Token::Element(h) => format!("Element {} {} {}", h.tag, h.vr, h.length),
        Token::SequenceStart(h) => format!("SequenceStart {} {} {}", h.tag, h.vr, h.length),
        Token::PixelSequenceStart(h) => format!("PixelSequenceStart {} {}", h.tag, h.vr),
        Token::ItemStart { length, .. } => format!("ItemStart {length}"),
        Token::Fragment { length, .. } => format!("Fragment {length}"),
        Token::MetaEnd { encoding, .. } => format!("MetaEnd {:?}", encoding.syntax),
        other => format!("{other:?}"),
    }
}

/// Tokenizes `chunks`, arriving one at a time, like `reader::read_raw` over the real buffer:
/// the tokenizer sees the rest of the front chunk, `NeedMore(n)` waits until `n` contiguous
/// bytes are there (merging chunks), and the end of input is only known once a wait finds
/// nothing more to come.
fn tokenize(chunks: &[&[u8]]) -> Vec<Entry> {
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    let mut pending: VecDeque<&[u8]> = chunks.iter().copied().collect();
    let mut queue: VecDeque<Vec<u8>> = VecDeque::new();
    let mut fetch = |n: usize, queue: &mut VecDeque<Vec<u8>>| {
        let available = |queue: &VecDeque<Vec<u8>>| queue.iter().map(Vec::len).sum::<usize>();
        while available(queue) < n && !pending.is_empty() {
            queue.extend(pending.pop_front().map(<[u8]>::to_vec));
        }
        while queue.len() > 1 && queue[0].len() < n {
            let next = queue.remove(1).expect("a second chunk");
            queue[0].extend_from_slice(&next);
        }
        let eof = pending.is_empty() && available(queue) < n;
        (queue.front().cloned().unwrap_or_default(), eof)
    };
    let mut tokenizer = Tokenizer::new(MAX_DEPTH);
    let mut seen: Vec<Entry> = Vec::new();
    let (mut window, mut eof) = fetch(1, &mut queue);
    for _ in 0..10 * total + 100 {
        let start = tokenizer.position();
        let (consumed, token) = match tokenizer.next(&window, eof) {
            Err(error) => {
                seen.push((start, Seen::Line(format!("error {:?}", error.kind))));
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
        let header_offset = match &token {
            Token::Element(h) | Token::SequenceStart(h) | Token::PixelSequenceStart(h) => {
                Some(h.offset)
            }
            Token::ItemStart { offset, .. } | Token::Fragment { offset, .. } => Some(*offset),
            _ => None,
        };
        assert!(
            header_offset.is_none_or(|at| at == start),
            "{token:?} at {start}"
        );
        match (token, seen.last_mut()) {
            (Token::Value { data, last }, Some((_, Seen::Value(joined, complete))))
                if !*complete =>
            {
                joined.extend_from_slice(data);
                *complete = last;
            }
            (Token::Value { data, last }, _) => {
                seen.push((start, Seen::Value(data.to_vec(), last)))
            }
            (Token::End, _) => {
                assert_eq!(start, total as u64, "End before the end of the input");
                seen.push((start, Seen::Line("End".into())));
                return seen;
            }
            (token, _) => seen.push((start, Seen::Line(describe(&token)))),
        }
        queue.front_mut().expect("consumed bytes").drain(..consumed);
        window.drain(..consumed);
    }
    panic!("the tokenizer makes no progress: {seen:?}");
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
        let (mut chunks, mut rest) = (Vec::new(), bytes);
        while !rest.is_empty() {
            // Knuth's MMIX LCG; chunk sizes 1..=40.
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let size = ((seed >> 33) % 40 + 1) as usize;
            let (chunk, tail) = rest.split_at(size.min(rest.len()));
            chunks.push(chunk);
            rest = tail;
        }
        chunkings.push(chunks);
    }
    for chunks in chunkings {
        let seen = tokenize(&chunks);
        let first_difference = seen.iter().zip(&whole).position(|(a, b)| a != b);
        let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        assert_eq!(
            (first_difference, seen.len()),
            (None, whole.len()),
            "chunk sizes {sizes:?}: {:?}",
            first_difference.map(|at| (&seen[at], &whole[at]))
        );
    }
    whole
}

/// Compares the data set tokens of `bytes` (those after the meta group, or an error), the
/// same under every chunking, with `expect`: one line per token with its stream position,
/// values after their header.
fn check(bytes: &[u8], expect: &str) {
    let seen = tokenize_every_way(bytes);
    let meta_end = seen
        .iter()
        .position(|(_, s)| matches!(s, Seen::Line(l) if l.starts_with("MetaEnd")))
        .map_or(seen.len() - 1, |at| at + 1);
    let mut actual = String::new();
    for (start, seen) in &seen[meta_end..] {
        match seen {
            Seen::Line(line) => actual.push_str(&format!("\n{start} {line}")),
            Seen::Value(data, complete) => {
                let text = match std::str::from_utf8(data) {
                    Ok(text) if data.iter().all(|&b| b == 0 || (b' '..=b'~').contains(&b)) => {
                        format!("{text:?}")
                    }
                    _ => format!("{data:02x?}"),
                };
                let more = if *complete { "" } else { " (incomplete)" };
                actual.push_str(&format!(" = {text}{more}"));
            }
        }
    }
    let expect: Vec<&str> = expect.trim().lines().map(str::trim).collect();
    assert_eq!(
        actual.trim().lines().collect::<Vec<_>>(),
        expect,
        "actual:{actual}"
    );
}

/// A Part 10 file: zero preamble, `DICM`, a meta group of just its group length and the
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

// ---- annotated fixtures (explicit VR LE unless stated; the data set starts at 172) ----

#[rustfmt::skip]
const NESTED_THREE_DEEP: [u8; 132] = [
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

fn explicit(dataset: &[u8]) -> Vec<u8> {
    part10(EXPLICIT_VR_LE, dataset)
}

#[test]
fn undefined_length_sequences_and_items_nest_three_deep() {
    let expect = r#"
        172 SequenceStart (0008,1115) SQ U/L
        184 ItemStart U/L
        192 SequenceStart (0008,1140) SQ U/L
        204 ItemStart U/L
        212 SequenceStart (0040,A730) SQ U/L
        224 ItemStart U/L
        232 Element (0008,1150) UI 4 = "1.2\0"
        244 ItemEnd
        252 SequenceEnd
        260 ItemEnd
        268 SequenceEnd
        276 ItemEnd
        284 SequenceEnd
        292 Element (0010,0010) PN 4 = "Doe "
        304 End
    "#;
    check(&explicit(&NESTED_THREE_DEEP), expect);
}

#[test]
fn sequences_nested_beyond_max_depth_are_too_deep() {
    // The first 60 bytes open three sequences and their items; then a fourth sequence.
    let fourth = [
        0x40, 0x00, 0x30, 0xA7, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
    ];
    let dataset = [&NESTED_THREE_DEEP[..60], &fourth[..]].concat();
    let expect = r#"
        172 SequenceStart (0008,1115) SQ U/L
        184 ItemStart U/L
        192 SequenceStart (0008,1140) SQ U/L
        204 ItemStart U/L
        212 SequenceStart (0040,A730) SQ U/L
        224 ItemStart U/L
        232 error TooDeep(3)
    "#;
    check(&explicit(&dataset), expect);
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
    let expect = r#"
        172 SequenceStart (0008,1115) SQ 54
        184 ItemStart 18
        192 Element (0008,1155) UI 10 = "1.2.3.4.5\0"
        210 ItemEnd
        210 ItemStart 0
        218 ItemEnd
        218 ItemStart 12
        226 SequenceStart (0040,A730) SQ 0
        238 SequenceEnd
        238 ItemEnd
        238 SequenceEnd
        238 Element (0010,0010) PN 4 = "Doe "
        250 End
    "#;
    check(&explicit(&dataset), expect);
    oracle::check_against_oracle(&explicit(&dataset), EXPLICIT_VR_LE);
}

#[test]
fn undefined_length_un_is_a_sequence_of_implicit_vr_items() {
    #[rustfmt::skip]
    let dataset = [
        0x08, 0x00, 0x15, 0x11, b'U', b'N', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, // (0008,1115) UN, undefined: CP-246
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
    let expect = r#"
        172 SequenceStart (0008,1115) UN U/L
        184 ItemStart U/L
        192 Element (0008,1150) UI 4 = "1.2\0"
        204 SequenceStart (0008,1140) SQ U/L
        212 ItemStart 0
        220 ItemEnd
        220 SequenceEnd
        228 Element (0009,0010) LO 2 = "X "
        238 ItemEnd
        246 SequenceEnd
        254 Element (0010,0010) PN 4 = "Doe "
        266 End
    "#;
    check(&explicit(&dataset), expect);
}

#[test]
fn odd_value_lengths_are_read_as_given() {
    #[rustfmt::skip]
    let dataset = [
        0x10, 0x00, 0x10, 0x00, b'P', b'N', 3, 0, b'D', b'o', b'e',    // (0010,0010) PN "Doe", odd
        0x10, 0x00, 0x20, 0x00, b'L', b'O', 1, 0, b'7',                // (0010,0020) LO "7", odd
        0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 3, 0, 0, 0, 1, 2, 3, // (7FE0,0010) OB, 3 bytes
    ];
    let expect = r#"
        172 Element (0010,0010) PN 3 = "Doe"
        183 Element (0010,0020) LO 1 = "7"
        192 Element (7FE0,0010) OB 3 = [01, 02, 03]
        207 End
    "#;
    check(&explicit(&dataset), expect);
}

#[test]
fn implicit_data_set_labelled_explicit_is_read_as_implicit() {
    #[rustfmt::skip]
    let dataset = [
        0x08, 0x00, 0x16, 0x00, 4, 0, 0, 0, b'1', b'.', b'2', 0,    // (0008,0016) implicit, "1.2"
        0x08, 0x00, 0x15, 0x11, 0xFF, 0xFF, 0xFF, 0xFF,             // (0008,1115) implicit, undefined
        0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF,             //  item, undefined
        0x08, 0x00, 0x50, 0x11, 4, 0, 0, 0, b'1', b'.', b'3', 0,    //   (0008,1150) implicit, "1.3"
        0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0,                         //  item delimiter
        0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0,                         // sequence delimiter
        0x10, 0x00, 0x10, 0x00, 4, 0, 0, 0, b'D', b'o', b'e', b' ', // (0010,0010) implicit, "Doe "
    ];
    let expect = r#"
        172 Element (0008,0016) UI 4 = "1.2\0"
        184 SequenceStart (0008,1115) SQ U/L
        192 ItemStart U/L
        200 Element (0008,1150) UI 4 = "1.3\0"
        212 ItemEnd
        220 SequenceEnd
        228 Element (0010,0010) PN 4 = "Doe "
        240 End
    "#;
    check(&explicit(&dataset), expect);
}

#[test]
fn huge_claimed_length_on_short_input_is_truncated_not_allocated() {
    #[rustfmt::skip]
    let dataset = [
        0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xF0, 0xFF, 0xFF, 0xFF, // (7FE0,0010) OB, 0xFFFFFFF0 bytes
        b'a', b'b', b'c', b'd',                                           //  of which 4 arrive
    ];
    // The value streams through as the bytes that exist; nothing is sized from the claim.
    let expect = r#"
        172 Element (7FE0,0010) OB 4294967280 = "abcd" (incomplete)
        188 error Truncated("value of (7FE0,0010) is missing its last 4294967276 bytes")
    "#;
    check(&explicit(&dataset), expect);
}

#[test]
fn lengths_beyond_a_defined_length_parent_are_rejected() {
    #[rustfmt::skip]
    let element_beyond_item = [
        0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 30, 0, 0, 0, // (0008,1115) SQ, 30 bytes
        0xFE, 0xFF, 0x00, 0xE0, 20, 0, 0, 0,                   //  item, 20 bytes
        0x08, 0x00, 0x50, 0x11, b'U', b'I', 24, 0,             //   (0008,1150) UI, 24 bytes
    ];
    let expect = r#"
        172 SequenceStart (0008,1115) SQ 30
        184 ItemStart 20
        192 error LengthBeyondParent { tag: Tag(0x0008, 0x1150), end: 224, parent_end: 212 }
    "#;
    check(&explicit(&element_beyond_item), expect);
    #[rustfmt::skip]
    let item_beyond_sequence = [
        0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 16, 0, 0, 0, // (0008,1115) SQ, 16 bytes
        0xFE, 0xFF, 0x00, 0xE0, 20, 0, 0, 0,                   //  item, 20 bytes
    ];
    let expect = r#"
        172 SequenceStart (0008,1115) SQ 16
        184 error LengthBeyondParent { tag: Tag(0xFFFE, 0xE000), end: 212, parent_end: 200 }
    "#;
    check(&explicit(&item_beyond_sequence), expect);
    #[rustfmt::skip]
    let delimiter_beyond_sequence = [
        0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 12, 0, 0, 0, // (0008,1115) SQ, 12 bytes
        0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF,        //  item, undefined
        0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0,                    //  item delimiter, crossing the end
        0x10, 0x00, 0x10, 0x00, b'P', b'N', 2, 0, b'D', b' ',  // (0010,0010) PN "D "
    ];
    let expect = r#"
        172 SequenceStart (0008,1115) SQ 12
        184 ItemStart U/L
        192 error LengthBeyondParent { tag: Tag(0xFFFE, 0xE00D), end: 200, parent_end: 196 }
    "#;
    check(&explicit(&delimiter_beyond_sequence), expect);
}

#[test]
fn item_delimiters_outside_undefined_length_items_are_rejected() {
    let at_top_level = [0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]; // item delimiter
    let expect = r#"172 error Unexpected("item delimiter outside an item of undefined length")"#;
    check(&explicit(&at_top_level), expect);
    #[rustfmt::skip]
    let in_defined_item = [
        0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 16, 0, 0, 0, // (0008,1115) SQ, 16 bytes
        0xFE, 0xFF, 0x00, 0xE0, 8, 0, 0, 0,                    //  item, 8 bytes
        0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0,                    //   item delimiter
    ];
    let expect = r#"
        172 SequenceStart (0008,1115) SQ 16
        184 ItemStart 8
        192 error Unexpected("item delimiter outside an item of undefined length")
    "#;
    check(&explicit(&in_defined_item), expect);
}

#[test]
fn input_ending_inside_a_header_or_sequence_is_truncated() {
    let short_header = [0x08, 0x00, 0x16, 0x00, b'U', b'I']; // (0008,0016) UI, no length
    let expect = r#"172 error Truncated("element header needs 8 bytes, 6 left")"#;
    check(&explicit(&short_header), expect);
    let long_header = [0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF]; // half a length
    let expect = r#"172 error Truncated("element header needs 12 bytes, 10 left")"#;
    check(&explicit(&long_header), expect);
    check(
        &explicit(&NESTED_THREE_DEEP[..20]), // (0008,1115) SQ and an item, then nothing
        r#"
        172 SequenceStart (0008,1115) SQ U/L
        184 ItemStart U/L
        192 error Truncated("the data set ends inside a sequence or item")
        "#,
    );
}

#[test]
fn streams_that_are_not_part10_or_not_supported_are_rejected() {
    let mut not_part10 = vec![0; 128];
    not_part10.extend_from_slice(b"DICX");
    check(&not_part10, "0 error NotPart10");
    check(&[0; 100], "0 error NotPart10");
    let expect = r#"160 error UnsupportedTransferSyntax("1.2.3.4")"#;
    check(&part10("1.2.3.4", &[]), expect);
}
