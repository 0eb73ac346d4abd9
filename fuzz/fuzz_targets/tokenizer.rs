//! The DICOM tokenizer over arbitrary bytes, driven like the reader drives it: the window is
//! what has arrived past the position, and `NeedMore(n)` waits for fuzzer-sized chunks until
//! `n` bytes are there or the stream ends.
//!
//! Input: `[max depth][chunk plan][stream]`. Checked: no panic; `NeedMore(n)` only asks for
//! at most 132 contiguous bytes (the preamble), for more than the window holds (else the
//! reader would spin), and never at the end of the stream; a token consumes no more than the
//! window, values are the window's own bytes, headers sit at the position, and the position
//! moves forward by exactly what was consumed; tokens that consume nothing cannot repeat
//! without bound. Memory is bounded by construction: the tokenizer allocates nothing from a
//! length read off the input (only the capped meta capture and the depth-capped stack), and
//! the input is capped here (run.sh also sets a small -malloc_limit_mb).
#![no_main]

use dicomwebserver::dicom::tokenizer::{Step, Token, Tokenizer};
use dicomwebserver_fuzz::ChunkPlan;
use libfuzzer_sys::fuzz_target;

/// Largest stream tried (libFuzzer's -max_len is far below it).
const MAX_INPUT: usize = 1 << 20;
/// The most contiguous bytes the tokenizer may ask for: the preamble and `DICM`.
const MAX_NEED: usize = 132;
/// Deepest nesting tried (the server's default is 32).
const MAX_DEPTH: u8 = 40;

fuzz_target!(|data: &[u8]| {
    let Some((&depth, rest)) = data.split_first() else {
        return;
    };
    let (plan, stream) = ChunkPlan::take(rest);
    if stream.len() > MAX_INPUT {
        return;
    }
    tokenize(stream, usize::from(depth % MAX_DEPTH), &plan);
});

fn tokenize(stream: &[u8], max_depth: usize, plan: &ChunkPlan) {
    let mut arrivals = plan.ends(stream.len());
    let mut received = arrivals.next().unwrap_or(0);
    let mut tokenizer = Tokenizer::new(max_depth);
    let mut pos = 0usize;
    // Zero-length tokens in a row: item and sequence ends (at most two per level), a value
    // of length 0, MetaEnd, End.
    let max_empty_run = 2 * max_depth + 8;
    let mut empty_run = 0usize;
    loop {
        let window = &stream[pos..received];
        let eof = received == stream.len();
        let step = match tokenizer.next(window, eof) {
            Ok(step) => step,
            Err(_) => return,
        };
        match step {
            Step::NeedMore(n) => {
                assert!(n <= MAX_NEED, "NeedMore({n}) asks for more than {MAX_NEED}");
                assert!(!eof, "NeedMore({n}) at the end of the stream");
                assert!(
                    n > window.len(),
                    "NeedMore({n}) with {} bytes in the window",
                    window.len()
                );
                while received - pos < n && received < stream.len() {
                    received = arrivals.next().expect("chunk ends reach the stream's end");
                }
            }
            Step::Token { consumed, token } => {
                assert!(
                    consumed <= window.len(),
                    "consumed {consumed} of a {}-byte window",
                    window.len()
                );
                check_token(&token, window, consumed, pos as u64);
                let end = matches!(token, Token::End);
                pos += consumed;
                assert_eq!(
                    tokenizer.position(),
                    pos as u64,
                    "position is not the bytes consumed"
                );
                if consumed == 0 {
                    empty_run += 1;
                    assert!(
                        empty_run <= max_empty_run,
                        "{empty_run} tokens in a row consumed nothing"
                    );
                } else {
                    empty_run = 0;
                }
                if end {
                    assert_eq!(pos, stream.len(), "End before the end of the stream");
                    return;
                }
            }
        }
    }
}

fn check_token(token: &Token<'_>, window: &[u8], consumed: usize, pos: u64) {
    match token {
        Token::Value { data, .. } => {
            assert_eq!(data.len(), consumed, "a value token consumes its data");
            assert!(
                std::ptr::eq(data.as_ptr(), window.as_ptr()),
                "value data is not the window's front"
            );
        }
        Token::Element(header)
        | Token::SequenceStart(header)
        | Token::PixelSequenceStart(header) => {
            assert_eq!(header.offset, pos, "header offset is not the position");
        }
        Token::ItemStart { offset, .. } | Token::Fragment { offset, .. } => {
            assert_eq!(*offset, pos, "item offset is not the position");
        }
        Token::Preamble
        | Token::ItemEnd
        | Token::SequenceEnd
        | Token::PixelSequenceEnd
        | Token::MetaEnd { .. }
        | Token::End => {}
    }
}
