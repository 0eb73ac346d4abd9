//! The multipart splitter over arbitrary bytes, cut at fuzzer-chosen chunk boundaries.
//!
//! Input: `[boundary length][boundary][header cap][chunk plan][body]`. Checked: no panic;
//! events follow the grammar `(PartStart Data* PartEnd)* Closed?` with no empty `Data`; the
//! part data together is never longer than the body and never holds the delimiter; and the
//! events and the verdict do not depend on where the chunks were cut (the same body in one
//! chunk gives the same parts, bytes and error).
#![no_main]

use bytes::Bytes;
use dicomwebserver::stow::multipart::{SplitError, SplitEvent, Splitter};
use dicomwebserver_fuzz::ChunkPlan;
use libfuzzer_sys::fuzz_target;

/// Longest boundary RFC 2046 allows.
const MAX_BOUNDARY: usize = 70;

fuzz_target!(|data: &[u8]| {
    let Some((&boundary_len, rest)) = data.split_first() else {
        return;
    };
    let boundary_len = 1 + usize::from(boundary_len) % MAX_BOUNDARY;
    if rest.len() <= boundary_len {
        return;
    }
    let (boundary, rest) = rest.split_at(boundary_len);
    let boundary = String::from_utf8_lossy(boundary);
    let (&header_cap, rest) = rest.split_first().expect("checked above");
    let max_header_bytes = 16 + usize::from(header_cap) * 64;
    let (plan, body) = ChunkPlan::take(rest);
    let body = Bytes::copy_from_slice(body);

    let chunked = split(&boundary, max_header_bytes, plan.chunks(&body));
    check_grammar(&chunked.events);
    let data_len: usize = chunked
        .events
        .iter()
        .map(|event| match event {
            SplitEvent::Data(data) => data.len(),
            _ => 0,
        })
        .sum();
    assert!(
        data_len <= body.len(),
        "{data_len} bytes of part data from a {}-byte body",
        body.len()
    );
    let chunked_parts = coalesce(&chunked.events);
    let delimiter = format!("\r\n--{boundary}");
    for part in &chunked_parts {
        if let Coalesced::Data(data) = part {
            assert!(
                !data
                    .windows(delimiter.len())
                    .any(|w| w == delimiter.as_bytes()),
                "part data holds the delimiter"
            );
        }
    }
    let whole = split(&boundary, max_header_bytes, vec![body.clone()]);
    assert_eq!(
        chunked_parts,
        coalesce(&whole.events),
        "events depend on the chunking"
    );
    assert_eq!(
        chunked.result, whole.result,
        "verdict depends on the chunking"
    );
});

struct Split {
    events: Vec<SplitEvent>,
    result: Result<(), SplitError>,
}

/// Feeds `chunks` as the STOW route does: stop at the first error, `finish` at the end.
fn split(boundary: &str, max_header_bytes: usize, chunks: Vec<Bytes>) -> Split {
    let mut splitter = Splitter::new(boundary, max_header_bytes);
    let mut events = Vec::new();
    for chunk in chunks {
        if let Err(error) = splitter.feed(chunk, &mut events) {
            return Split {
                events,
                result: Err(error),
            };
        }
    }
    let result = splitter.finish(&mut events);
    Split { events, result }
}

fn check_grammar(events: &[SplitEvent]) {
    let mut in_part = false;
    let mut closed = false;
    for event in events {
        assert!(!closed, "{event:?} after Closed");
        match event {
            SplitEvent::PartStart(_) => {
                assert!(!in_part, "PartStart inside a part");
                in_part = true;
            }
            SplitEvent::Data(data) => {
                assert!(in_part, "Data outside a part");
                assert!(!data.is_empty(), "empty Data");
            }
            SplitEvent::PartEnd => {
                assert!(in_part, "PartEnd outside a part");
                in_part = false;
            }
            SplitEvent::Closed => {
                assert!(!in_part, "Closed inside a part");
                closed = true;
            }
        }
    }
}

/// Events with each run of `Data` joined: what must not depend on the chunking.
#[derive(Debug, PartialEq)]
enum Coalesced {
    Start(Vec<(String, String)>),
    Data(Vec<u8>),
    End,
    Closed,
}

fn coalesce(events: &[SplitEvent]) -> Vec<Coalesced> {
    let mut out = Vec::new();
    for event in events {
        match event {
            SplitEvent::PartStart(headers) => out.push(Coalesced::Start(headers.headers.clone())),
            SplitEvent::Data(data) => match out.last_mut() {
                Some(Coalesced::Data(joined)) => joined.extend_from_slice(data),
                _ => out.push(Coalesced::Data(data.to_vec())),
            },
            SplitEvent::PartEnd => out.push(Coalesced::End),
            SplitEvent::Closed => out.push(Coalesced::Closed),
        }
    }
    out
}
