//! Throughput of the sans-IO [`Tokenizer`] alone: no buffer, no listeners, no disk.
//!
//! The input arrives in 64 KiB chunks, the size of the body frames hyper hands the server.
//! Like the real driver (`dicom::reader`), the tokenizer is shown the rest of the current
//! chunk, and a `NeedMore(n)` that the chunk cannot satisfy widens the window to `n` bytes
//! (the driver merges chunks for that). Run with `cargo bench --bench tokenizer`.

mod support;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dicomwebserver::dicom::{Step, Token, Tokenizer};

/// Size of the chunks the input arrives in.
const CHUNK: usize = 64 * 1024;
/// Nesting accepted, as the server's default.
const MAX_DEPTH: usize = 32;

/// Tokenizes `data` as it would arrive in `CHUNK`-sized pieces; returns the number of tokens.
fn tokenize(data: &[u8]) -> usize {
    let mut tokenizer = Tokenizer::new(MAX_DEPTH);
    let mut pos = 0usize;
    let mut need = 1usize;
    let mut n_tokens = 0usize;
    loop {
        let chunk_end = (pos / CHUNK + 1) * CHUNK;
        let end = chunk_end.max(pos + need).min(data.len());
        let eof = end == data.len();
        match tokenizer.next(&data[pos..end], eof) {
            Ok(Step::NeedMore(n)) => {
                assert!(
                    !eof && n > end - pos,
                    "NeedMore({n}) with {} bytes",
                    end - pos
                );
                need = n;
            }
            Ok(Step::Token { consumed, token }) => {
                n_tokens += 1;
                if token == Token::End {
                    assert_eq!(pos, data.len(), "End before the end of the input");
                    return n_tokens;
                }
                pos += consumed;
                need = 1;
            }
            Err(error) => panic!("tokenizer error: {error}"),
        }
    }
}

fn bench_tokenizer(c: &mut Criterion) {
    let inputs = [
        ("ct-512KiB", support::ct_slice(1)),
        ("multiframe-64MiB", support::multi_frame(128)),
    ];
    let mut group = c.benchmark_group("tokenizer");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    for (name, data) in &inputs {
        // Fails loudly, before any timing, if the generated instance does not tokenize.
        let n_tokens = tokenize(data);
        eprintln!("{name}: {} bytes, {n_tokens} tokens", data.len());
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), data, |b, data| {
            b.iter(|| tokenize(std::hint::black_box(data)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_tokenizer);
criterion_main!(benches);
