//! One large instance: 64 MiB of multi-frame pixel data streamed in a chunked body, generated
//! on the fly (the test never holds the body in memory either), then compared block by block
//! with the same deterministic generator.

use std::io::Read;

use crate::support::dicom::{self, Builder, Syntax};
use crate::support::generated::word;
use crate::support::http::Connection;
use crate::support::instances::Uids;
use crate::support::multipart::{Multipart, Part};
use crate::support::response::StoreResult;
use crate::support::server::TestServer;

const ROWS: u16 = 512;
const COLUMNS: u16 = 512;
const FRAMES: u32 = 128;
/// 512 x 512 x 2 bytes x 128 frames = 64 MiB.
const PIXEL_BYTES: u64 = ROWS as u64 * COLUMNS as u64 * 2 * FRAMES as u64;
/// The generator's block; a multiple of 8 so blocks start on generator words.
const BLOCK: usize = 64 * 1024;

/// Pixel block `index` (the last one may be short).
fn pixel_block(index: u64) -> Vec<u8> {
    let start = index * BLOCK as u64;
    let length = (PIXEL_BYTES - start).min(BLOCK as u64) as usize;
    let mut block = Vec::with_capacity(BLOCK);
    for word_index in 0..(length / 8) as u64 {
        block.extend_from_slice(&word(start / 8 + word_index).to_le_bytes());
    }
    block
}

fn block_count() -> u64 {
    PIXEL_BYTES.div_ceil(BLOCK as u64)
}

/// Preamble, meta group and data set up to and including the pixel data element header.
fn instance_head(uids: &Uids) -> Vec<u8> {
    let mut b = Builder::new(Syntax::ExplicitLe);
    b.text((0x0008, 0x0016), b"UI", &uids.class)
        .text((0x0008, 0x0018), b"UI", &uids.sop)
        .text((0x0008, 0x0060), b"CS", "OT")
        .text((0x0010, 0x0010), b"PN", "Large^Instance")
        .text((0x0020, 0x000D), b"UI", &uids.study)
        .text((0x0020, 0x000E), b"UI", &uids.series)
        .us((0x0028, 0x0002), 1)
        .text((0x0028, 0x0004), b"CS", "MONOCHROME2")
        .text((0x0028, 0x0008), b"IS", &FRAMES.to_string())
        .us((0x0028, 0x0010), ROWS)
        .us((0x0028, 0x0011), COLUMNS)
        .us((0x0028, 0x0100), 16)
        .us((0x0028, 0x0101), 16)
        .us((0x0028, 0x0102), 15)
        .us((0x0028, 0x0103), 0)
        .header((0x7FE0, 0x0010), b"OW", PIXEL_BYTES as u32);
    dicom::part10(&uids.class, &uids.sop, dicom::EXPLICIT_LE, &b.bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_mib_instance_streamed_in_chunks_is_stored_intact() {
    let server = TestServer::start().await;
    let uids = Uids::fresh();
    let head = instance_head(&uids);
    // The part body is streamed; the framing comes from a one-part Multipart with no body.
    let framing = Multipart::new(vec![Part::dicom(&[])]);
    let mut connection = Connection::open(server.addr).await;
    let content_type = framing.content_type();
    let headers = [
        ("Content-Type", content_type.as_str()),
        ("Transfer-Encoding", "chunked"),
    ];
    connection
        .write_head("POST", &server.route("/studies"), &headers)
        .await;
    let mut first = framing.part_prefix(0);
    first.extend_from_slice(&head);
    connection.write_chunk(&first).await;
    // Irregular chunk sizes so chunk edges fall everywhere relative to the server's buffers.
    let sizes = [BLOCK, 1, 4093, 30_000, 8, BLOCK / 2];
    for index in 0..block_count() {
        let block = pixel_block(index);
        let mut rest = block.as_slice();
        let mut size_index = index as usize;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(sizes[size_index % sizes.len()].min(rest.len()));
            connection.write_chunk(chunk).await;
            rest = tail;
            size_index += 1;
        }
    }
    connection.write_chunk(&framing.suffix()).await;
    connection.finish_chunks().await;
    let response = connection.read_response().await;
    let result = StoreResult::parse(&response);
    assert_eq!(result.status, 200, "{}", result.json);
    assert_eq!(result.stored().len(), 1);
    assert_eq!(result.stored()[0].sop, uids.sop);

    let path = server.instance_path(&uids.study, &uids.series, &uids.sop);
    let metadata = std::fs::metadata(&path).expect("the large instance is stored");
    assert_eq!(metadata.len(), head.len() as u64 + PIXEL_BYTES);
    let mut file = std::io::BufReader::new(std::fs::File::open(&path).expect("open stored file"));
    let mut stored_head = vec![0u8; head.len()];
    file.read_exact(&mut stored_head).expect("read stored head");
    assert!(
        stored_head == head,
        "stored head differs from the bytes sent"
    );
    let mut stored_block = vec![0u8; BLOCK];
    for index in 0..block_count() {
        let expected = pixel_block(index);
        file.read_exact(&mut stored_block[..expected.len()])
            .expect("read stored pixels");
        assert!(
            stored_block[..expected.len()] == expected[..],
            "pixel block {index} differs"
        );
    }
    server.stop_and_check_tmp().await;
}
