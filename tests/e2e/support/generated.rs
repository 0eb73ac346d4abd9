//! Instances of any size generated on the fly: a fixed head (preamble, meta group, the
//! standard attributes, the pixel data element header) followed by pseudo-random pixel bytes
//! that are a pure function of a seed and an offset. Large instances are streamed into a
//! request and compared with a stored file or a retrieved body block by block, so neither the
//! test nor the check ever holds them whole.

use std::io::Read;
use std::path::Path;

use super::dicom::{self, Builder, Syntax};
use super::http::Connection;
use super::instances::Uids;
use super::multipart::{Multipart, Part};

/// Generation and comparison step; a multiple of 8 so blocks start on generator words.
const BLOCK: usize = 64 * 1024;

/// splitmix64: a fixed pseudo-random word per index.
pub fn word(index: u64) -> u64 {
    let mut z = index
        .wrapping_add(0x9E37_79B9_7F4A_7C15)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One generated instance: explicit VR little endian, `pixel_bytes` of OB pixel data.
#[derive(Clone, Debug)]
pub struct Generated {
    pub uids: Uids,
    /// Preamble, `DICM`, meta group, data set up to and including the pixel data header.
    head: Vec<u8>,
    /// Length of the pixel data value (even).
    pixel_bytes: u64,
    /// Selects the pixel byte sequence: two seeds give different bytes at every block.
    seed: u64,
}

impl Generated {
    /// An instance of `uids` with `pixel_bytes` (rounded up to even) of pixel data from `seed`.
    pub fn new(uids: &Uids, pixel_bytes: u64, seed: u64) -> Generated {
        let pixel_bytes = pixel_bytes + pixel_bytes % 2;
        let mut b = Builder::new(Syntax::ExplicitLe);
        b.text((0x0008, 0x0016), b"UI", &uids.class)
            .text((0x0008, 0x0018), b"UI", &uids.sop)
            .text((0x0008, 0x0060), b"CS", "OT")
            .text((0x0010, 0x0010), b"PN", "Generated^Instance")
            .text((0x0020, 0x000D), b"UI", &uids.study)
            .text((0x0020, 0x000E), b"UI", &uids.series)
            .us((0x0028, 0x0002), 1)
            .text((0x0028, 0x0004), b"CS", "MONOCHROME2")
            .us((0x0028, 0x0010), 1)
            .us((0x0028, 0x0011), 1)
            .us((0x0028, 0x0100), 8)
            .us((0x0028, 0x0101), 8)
            .us((0x0028, 0x0102), 7)
            .us((0x0028, 0x0103), 0)
            .header(
                (0x7FE0, 0x0010),
                b"OB",
                u32::try_from(pixel_bytes).expect("pixel data under 4 GiB"),
            );
        let head = dicom::part10(&uids.class, &uids.sop, dicom::EXPLICIT_LE, &b.bytes);
        Generated {
            uids: uids.clone(),
            head,
            pixel_bytes,
            seed,
        }
    }

    /// Total length of the instance.
    pub fn len(&self) -> u64 {
        self.head.len() as u64 + self.pixel_bytes
    }

    /// Pixel bytes `[start, start + length)`.
    fn pixels(&self, start: u64, length: usize) -> Vec<u8> {
        let first_word = start / 8;
        let skip = (start % 8) as usize;
        let words = (skip + length).div_ceil(8) as u64;
        let mut bytes = Vec::with_capacity(words as usize * 8);
        for index in first_word..first_word + words {
            bytes.extend_from_slice(&word(index ^ (self.seed << 40)).to_le_bytes());
        }
        bytes.drain(..skip);
        bytes.truncate(length);
        bytes
    }

    /// Bytes `[start, start + length)` of the instance (`length` clipped at its end).
    pub fn slice(&self, start: u64, length: usize) -> Vec<u8> {
        let end = (start + length as u64).min(self.len());
        let mut out = Vec::with_capacity((end - start.min(end)) as usize);
        let head_len = self.head.len() as u64;
        if start < head_len {
            out.extend_from_slice(&self.head[start as usize..end.min(head_len) as usize]);
        }
        if end > head_len {
            let from = start.max(head_len) - head_len;
            out.extend_from_slice(&self.pixels(from, (end - head_len - from) as usize));
        }
        out
    }

    /// The whole instance in memory (for small ones).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.slice(0, usize::try_from(self.len()).expect("fits memory"))
    }

    /// Whether `bytes` are exactly this instance.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        if bytes.len() as u64 != self.len() {
            return false;
        }
        bytes
            .chunks(BLOCK)
            .enumerate()
            .all(|(index, block)| block == self.slice((index * BLOCK) as u64, block.len()))
    }

    /// Whether the file at `path` holds exactly this instance (false when it does not exist).
    pub fn matches_file(&self, path: &Path) -> bool {
        let Ok(file) = std::fs::File::open(path) else {
            return false;
        };
        let Ok(metadata) = file.metadata() else {
            return false;
        };
        if metadata.len() != self.len() {
            return false;
        }
        let mut reader = std::io::BufReader::new(file);
        let mut block = vec![0u8; BLOCK];
        let mut at = 0u64;
        while at < self.len() {
            let length = BLOCK.min((self.len() - at) as usize);
            if reader.read_exact(&mut block[..length]).is_err()
                || block[..length] != self.slice(at, length)[..]
            {
                return false;
            }
            at += length as u64;
        }
        true
    }
}

/// Sends `instances` as one multipart STOW-RS request to `path` with a chunked body whose
/// chunk sizes cycle through `chunk_sizes`, generating the bytes as they are written.
/// Returns the connection, ready for the response.
pub async fn send_chunked(
    connection: &mut Connection,
    path: &str,
    instances: &[&Generated],
    chunk_sizes: &[usize],
) {
    let framing = Multipart::new(instances.iter().map(|_| Part::dicom(&[])).collect());
    let content_type = framing.content_type();
    let headers = [
        ("Content-Type", content_type.as_str()),
        ("Transfer-Encoding", "chunked"),
    ];
    connection.write_head("POST", path, &headers).await;
    let mut sizes = chunk_sizes.iter().cycle();
    for (index, instance) in instances.iter().enumerate() {
        connection.write_chunk(&framing.part_prefix(index)).await;
        let mut at = 0u64;
        while at < instance.len() {
            let size = *sizes.next().expect("a cycle never ends");
            let chunk = instance.slice(at, size.max(1));
            connection.write_chunk(&chunk).await;
            at += chunk.len() as u64;
        }
    }
    connection.write_chunk(&framing.suffix()).await;
    connection.finish_chunks().await;
}
