//! Chunk boundaries chosen by the fuzzer: how a body arrives from the network.
//!
//! A plan is read off the front of the input: one count byte, then that many size bytes,
//! cycled over the rest of the input. Small sizes (1 to 128 bytes) split delimiters and
//! headers everywhere; large ones (64 to 8128 bytes) and "everything left" keep long inputs
//! fast.

/// Most size bytes in one plan.
const MAX_SIZES: usize = 8;

/// The sizes of successive chunks, cycled.
#[derive(Debug, Clone)]
pub struct ChunkPlan {
    sizes: Vec<usize>,
}

impl ChunkPlan {
    /// Reads a plan from the front of `data`; returns it and the bytes after it. An empty
    /// input gives the one-chunk plan.
    pub fn take(data: &[u8]) -> (ChunkPlan, &[u8]) {
        let Some((&count, rest)) = data.split_first() else {
            return (ChunkPlan::whole(), data);
        };
        let count = (1 + usize::from(count) % MAX_SIZES).min(rest.len());
        let (size_bytes, rest) = rest.split_at(count);
        let sizes: Vec<usize> = size_bytes.iter().map(|&b| size_of(b)).collect();
        if sizes.is_empty() {
            return (ChunkPlan::whole(), rest);
        }
        (ChunkPlan { sizes }, rest)
    }

    /// The plan that delivers everything in one chunk.
    pub fn whole() -> ChunkPlan {
        ChunkPlan {
            sizes: vec![usize::MAX],
        }
    }

    /// Ends of the successive chunks of a `len`-byte input: strictly increasing, the last one
    /// `len` (none for an empty input).
    pub fn ends(&self, len: usize) -> impl Iterator<Item = usize> + '_ {
        let mut end = 0usize;
        self.sizes.iter().cycle().map_while(move |&size| {
            if end >= len {
                return None;
            }
            end = end.saturating_add(size).min(len);
            Some(end)
        })
    }

    /// `body` cut into this plan's chunks (slices of the same buffer, as the network gives).
    pub fn chunks(&self, body: &bytes::Bytes) -> Vec<bytes::Bytes> {
        let mut start = 0;
        self.ends(body.len())
            .map(|end| {
                let chunk = body.slice(start..end);
                start = end;
                chunk
            })
            .collect()
    }
}

/// The chunk size a size byte stands for.
fn size_of(byte: u8) -> usize {
    match byte {
        0..=127 => usize::from(byte) + 1,
        255 => usize::MAX,
        _ => (usize::from(byte) - 127) * 64,
    }
}
