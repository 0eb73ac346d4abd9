//! Tests of the multipart splitter over every chunking of the framings real clients send
//! (docs/dicomweb.md): each body is split whole, in two at every position, in 1-byte chunks and
//! in pseudo-random chunks, and must split the same way every time.

use bytes::Bytes;

use super::multipart::{SplitEvent, Splitter};

/// Header cap of every test splitter.
const MAX_HEADER_BYTES: usize = 256;

/// Splits `chunks` and renders what came out, one line per event, `data` lines joined.
fn split(boundary: &str, chunks: &[&[u8]]) -> String {
    let mut splitter = Splitter::new(boundary, MAX_HEADER_BYTES);
    let mut events = Vec::new();
    let mut result = Ok(());
    for chunk in chunks {
        result = splitter.feed(Bytes::copy_from_slice(chunk), &mut events);
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        result = splitter.finish(&mut events);
    }
    let mut lines: Vec<String> = Vec::new();
    let mut data = Vec::new();
    for event in events {
        if let SplitEvent::Data(bytes) = event {
            data.extend_from_slice(&bytes);
            continue;
        }
        if !data.is_empty() {
            lines.push(format!("data {:?}", String::from_utf8_lossy(&data)));
            data.clear();
        }
        lines.push(match event {
            SplitEvent::PartStart(part) => {
                let headers: Vec<String> = part
                    .headers
                    .iter()
                    .map(|(n, v)| format!(" {n}={v:?}"))
                    .collect();
                format!("part{}", headers.concat())
            }
            SplitEvent::PartEnd => "end".into(),
            SplitEvent::Closed => "closed".into(),
            SplitEvent::Data(_) => unreachable!("joined above"),
        });
    }
    if !data.is_empty() {
        lines.push(format!("data {:?}", String::from_utf8_lossy(&data)));
    }
    if let Err(error) = result {
        lines.push(format!("error {error:?}"));
    }
    lines.join("\n")
}

/// Splits `body` every way and compares each rendering with `expect`.
fn check(boundary: &str, body: &[u8], expect: &str) {
    let mut chunkings: Vec<Vec<&[u8]>> = vec![vec![body], body.chunks(1).collect()];
    chunkings.extend((1..body.len()).map(|at| vec![&body[..at], &body[at..]]));
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..16 {
        let (mut chunks, mut rest) = (Vec::new(), body);
        while !rest.is_empty() {
            // Knuth's MMIX LCG; chunk sizes 1..=24.
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let size = ((seed >> 33) % 24 + 1) as usize;
            let (chunk, tail) = rest.split_at(size.min(rest.len()));
            chunks.push(chunk);
            rest = tail;
        }
        chunkings.push(chunks);
    }
    let expect: Vec<&str> = expect.trim().lines().map(str::trim).collect();
    for chunks in chunkings {
        let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        let actual = split(boundary, &chunks);
        assert_eq!(
            actual.lines().collect::<Vec<_>>(),
            expect,
            "chunk sizes {sizes:?}:\n{actual}"
        );
    }
}

#[test]
fn body_opening_with_crlf_and_closing_without_one_splits() {
    // dicomweb-client (JS and Python).
    let body = b"\r\n--b0undary\r\nContent-Type: application/dicom\r\n\r\nDICM-1\
        \r\n--b0undary\r\nContent-Type: application/dicom\r\n\r\nDICM-2\r\n--b0undary--";
    check(
        "b0undary",
        body,
        r#"
            part content-type="application/dicom"
            data "DICM-1"
            end
            part content-type="application/dicom"
            data "DICM-2"
            end
            closed
        "#,
    );
}

#[test]
fn body_opening_with_the_delimiter_and_closing_with_crlf_splits() {
    // dcm4che stowrs and curl recipes.
    let body = b"--myboundary\r\nContent-Type: application/dicom\r\n\r\nA\r\n--myboundary--\r\n";
    check(
        "myboundary",
        body,
        r#"
            part content-type="application/dicom"
            data "A"
            end
            closed
        "#,
    );
}

#[test]
fn preamble_and_epilogue_are_ignored() {
    let body =
        b"This is the preamble.\r\n--b\r\n\r\nA\r\n--b--\r\nThis is the epilogue.\r\n--b\r\n";
    check(
        "b",
        body,
        r#"
            part
            data "A"
            end
            closed
        "#,
    );
}

#[test]
fn boundary_starting_with_dashes_splits() {
    let body = b"----abc\r\nContent-Type: x/y\r\n\r\nA\r\n--abc\r\n---abc\r\n----abc--";
    check(
        "--abc",
        body,
        r#"
            part content-type="x/y"
            data "A\r\n--abc\r\n---abc"
            end
            closed
        "#,
    );
}

#[test]
fn parts_without_headers_and_with_extra_headers_split() {
    let body = b"--b\r\n\r\nno headers\r\n--b\r\n\
        content-type:  application/dicom; transfer-syntax=1.2.840.10008.1.2.1  \r\n\
        Content-Length: 4\r\nContent-Location: http://x/bulk/1\r\n\
        Content-Disposition: attachment; filename=\"a.dcm\"\r\n\r\nDICM\r\n--b--";
    check(
        "b",
        body,
        r#"
            part
            data "no headers"
            end
            part content-type="application/dicom; transfer-syntax=1.2.840.10008.1.2.1" content-length="4" content-location="http://x/bulk/1" content-disposition="attachment; filename=\"a.dcm\""
            data "DICM"
            end
            closed
        "#,
    );
}

#[test]
fn transport_padding_after_a_delimiter_is_skipped() {
    let body = b"--b \t \r\n\r\nA\r\n--b\t\r\n\r\nB\r\n--b--  \r\n";
    check(
        "b",
        body,
        r#"
            part
            data "A"
            end
            part
            data "B"
            end
            closed
        "#,
    );
}

#[test]
fn body_bytes_resembling_the_delimiter_stay_in_the_part() {
    let body = b"--boundary\r\n\r\nline\r\n--\r\n--boundar\r\n-\r\r\n--bound\
        \r\r\n--boundary\r\n\r\n\r\n--boundary--";
    check(
        "boundary",
        body,
        r#"
            part
            data "line\r\n--\r\n--boundar\r\n-\r\r\n--bound\r"
            end
            part
            end
            closed
        "#,
    );
}

#[test]
fn body_ending_right_after_a_delimiter_is_closed() {
    check("b", b"--b\r\n\r\nA\r\n--b", "part\ndata \"A\"\nend\nclosed");
}

#[test]
fn body_without_a_delimiter_is_rejected() {
    check("b", b"", r#"error NoDelimiter"#);
    check("b", b"no multipart here\r\n--c\r\n", r#"error NoDelimiter"#);
}

#[test]
fn body_ending_inside_a_part_is_truncated() {
    check(
        "b",
        b"--b\r\nContent-Type: x/y\r\n\r\nhalf a part",
        r#"
            part content-type="x/y"
            data "half a part"
            error Truncated("inside a part (no closing delimiter)")
        "#,
    );
    check(
        "b",
        b"--b\r\nContent-Type: x/y\r\n",
        r#"error Truncated("inside multipart part headers")"#,
    );
}

#[test]
fn header_block_over_the_cap_is_rejected() {
    // A block of exactly the cap, blank line included, is accepted; one byte more is not.
    let value = "a".repeat(MAX_HEADER_BYTES - "X-Long: \r\n\r\n".len());
    let body = format!("--b\r\nX-Long: {value}\r\n\r\nA\r\n--b--");
    let expect = format!("part x-long={value:?}\ndata \"A\"\nend\nclosed");
    check("b", body.as_bytes(), &expect);
    let body = format!("--b\r\nX-Long: {value}a\r\n\r\nA\r\n--b--");
    check("b", body.as_bytes(), "error HeaderTooLarge(256)");
}

#[test]
fn garbage_after_a_delimiter_is_rejected() {
    check(
        "b",
        b"--b\r\n\r\nA\r\n--bX\r\n\r\nB\r\n--b--",
        r#"
            part
            data "A"
            end
            error BadDelimiter
        "#,
    );
    check("b", b"--bad\r\n\r\nA\r\n--b--", r#"error BadDelimiter"#);
}

#[test]
fn big_part_body_passes_through_as_slices_of_the_input() {
    const CHUNK: usize = 64 * 1024;
    let payload: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut body = b"--b\r\nContent-Type: application/dicom\r\n\r\n".to_vec();
    body.extend_from_slice(&payload);
    body.extend_from_slice(b"\r\n--b--");
    // The first chunk ends inside the headers, so the first body bytes follow held bytes.
    let mut chunks = vec![Bytes::copy_from_slice(&body[..20])];
    chunks.extend(body[20..].chunks(CHUNK).map(Bytes::copy_from_slice));
    let mut splitter = Splitter::new("b", MAX_HEADER_BYTES);
    let (mut data, mut n_events) = (Vec::new(), 0);
    for chunk in &chunks {
        let mut events = Vec::new();
        splitter
            .feed(chunk.clone(), &mut events)
            .expect("a valid body");
        for event in events {
            n_events += 1;
            let SplitEvent::Data(bytes) = event else {
                continue;
            };
            // Held bytes (a header block, a partial delimiter) are joined with at most a
            // header cap's worth of the next chunk; the rest is a slice of the chunk itself.
            let chunk_range = chunk.as_ptr_range();
            assert!(
                bytes.len() <= MAX_HEADER_BYTES || chunk_range.contains(&bytes.as_ptr()),
                "a {}-byte event copied out of the input",
                bytes.len()
            );
            data.extend_from_slice(&bytes);
        }
    }
    splitter.finish(&mut Vec::new()).expect("closed");
    assert_eq!(data, payload);
    assert!(n_events <= 3 * chunks.len(), "{n_events} events");
}
