//! Throughput of the request-body side of the upload path, without sockets or disk:
//!
//! * `splitter`: the sans-IO multipart [`Splitter`] over a 50-part `multipart/related` body
//!   (50 CT instances of about 512 KiB, as in the end-to-end `small-b50` scenario), fed in
//!   64 KiB chunks that are slices of one buffer, like hyper's body frames.
//! * `buffer`: one part's [`TrackableReadBuffer`] between a producer task pushing 64 KiB
//!   chunks and a consumer that reads the way the DICOM driver does (`ensure_available`,
//!   `front_at_least`, `consume`, `take_consumed` in writer-sized batches), on a
//!   current-thread runtime, with the server's default 1 MiB capacity.
//!
//! Run with `cargo bench --bench splitter`.

mod support;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dicomwebserver::stow::multipart::{SplitEvent, Splitter};
use dicomwebserver::stream::{StreamError, TrackableReadBuffer};

/// Size of the body chunks.
const CHUNK: usize = 64 * 1024;
/// Instances per request body, as in the end-to-end benchmark.
const N_PARTS: u32 = 50;
/// Header cap, as the server's default.
const MAX_PART_HEADER_BYTES: usize = 16 * 1024;
/// Capacity of a part's buffer, as the server's default (`--part-buffer-bytes`).
const PART_BUFFER_BYTES: usize = 1024 * 1024;
/// Consumed bytes handed to the writer at once, as the driver's flush threshold.
const FLUSH_BYTES: usize = 256 * 1024;
/// Bytes streamed through the buffer per iteration.
const BUFFER_STREAM_BYTES: usize = 64 * 1024 * 1024;

const BOUNDARY: &str = "6f1c0a9e3b2d4c5a8e7f9a0b1c2d3e4f";

/// A `multipart/related` body of `N_PARTS` CT instances, framed as `build_bodies.py` does.
fn body() -> Bytes {
    let mut body = BytesMut::new();
    for index in 0..N_PARTS {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        body.extend_from_slice(b"Content-Type: application/dicom\r\n\r\n");
        body.extend_from_slice(&support::ct_slice(index));
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body.freeze()
}

/// Splits `body` fed in `CHUNK`-sized slices; returns (parts, part body bytes).
fn split(body: &Bytes) -> (usize, usize) {
    let mut splitter = Splitter::new(BOUNDARY, MAX_PART_HEADER_BYTES);
    let mut events = Vec::new();
    let (mut n_parts, mut n_bytes) = (0, 0);
    let mut count = |events: &mut Vec<SplitEvent>| {
        for event in events.drain(..) {
            match event {
                SplitEvent::PartStart(_) => n_parts += 1,
                SplitEvent::Data(data) => n_bytes += data.len(),
                SplitEvent::PartEnd | SplitEvent::Closed => {}
            }
        }
    };
    let mut at = 0;
    while at < body.len() {
        let end = (at + CHUNK).min(body.len());
        splitter
            .feed(body.slice(at..end), &mut events)
            .expect("the generated body is valid");
        count(&mut events);
        at = end;
    }
    splitter.finish(&mut events).expect("the body is closed");
    count(&mut events);
    (n_parts, n_bytes)
}

fn bench_splitter(c: &mut Criterion) {
    let body = body();
    let (n_parts, n_bytes) = split(&body);
    assert_eq!(n_parts, N_PARTS as usize, "every part is found");
    eprintln!(
        "splitter: body of {} bytes, {n_parts} parts, {n_bytes} part bytes",
        body.len()
    );
    let mut group = c.benchmark_group("splitter");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .throughput(Throughput::Bytes(body.len() as u64));
    group.bench_with_input(
        BenchmarkId::from_parameter("50x512KiB"),
        &body,
        |b, body| b.iter(|| split(std::hint::black_box(body))),
    );
    group.finish();
}

/// Streams `chunks` through one buffer; returns the bytes the consumer took.
async fn stream_through_buffer(chunks: &[Bytes]) -> usize {
    let buffer = TrackableReadBuffer::new(PART_BUFFER_BYTES);
    let producer = {
        let buffer = buffer.clone();
        let chunks = chunks.to_vec();
        tokio::spawn(async move {
            for chunk in chunks {
                buffer.push(chunk).await.expect("the consumer never aborts");
            }
            buffer.complete();
        })
    };
    let mut taken = 0usize;
    loop {
        let window = match buffer.front_at_least(1) {
            Some(window) => window,
            None => {
                taken += buffer.take_consumed().iter().map(Bytes::len).sum::<usize>();
                match buffer.ensure_available(1).await {
                    Ok(()) => continue,
                    Err(StreamError::Eof { .. }) => break,
                    Err(error) => panic!("{error}"),
                }
            }
        };
        buffer.consume(window.len());
        if buffer.consumed_len() >= FLUSH_BYTES {
            taken += buffer.take_consumed().iter().map(Bytes::len).sum::<usize>();
        }
    }
    producer.await.expect("the producer does not panic");
    taken
}

fn bench_buffer(c: &mut Criterion) {
    let data = Bytes::from(vec![0x5a_u8; BUFFER_STREAM_BYTES]);
    let chunks: Vec<Bytes> = (0..BUFFER_STREAM_BYTES)
        .step_by(CHUNK)
        .map(|at| data.slice(at..(at + CHUNK).min(data.len())))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    assert_eq!(
        runtime.block_on(stream_through_buffer(&chunks)),
        BUFFER_STREAM_BYTES
    );
    let mut group = c.benchmark_group("buffer");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .throughput(Throughput::Bytes(BUFFER_STREAM_BYTES as u64));
    group.bench_with_input(
        BenchmarkId::from_parameter("64MiB-in-64KiB"),
        &chunks,
        |b, chunks| {
            b.iter(|| runtime.block_on(stream_through_buffer(std::hint::black_box(chunks))))
        },
    );
    group.finish();
}

criterion_group!(benches, bench_splitter, bench_buffer);
criterion_main!(benches);
