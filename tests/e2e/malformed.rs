//! Parts that are not valid DICOM: truncated, not DICOM at all, lengths beyond the part or the
//! parent item, absurd lengths, a data set without file meta group. Each fails alone with 0xC000 (in the Failed
//! SOP Sequence when its SOP UIDs were read, else in Other Failures), never failing the good
//! part sent beside it, and never leaving a file behind.

use crate::support::dicom::{self, Builder};
use crate::support::instances::{built, native_pixels, simple, Instance, Uids};
use crate::support::multipart::{Multipart, Part};
use crate::support::response::{expect_stored, CANNOT_UNDERSTAND};
use crate::support::server::{files_under, TestServer};
use crate::support::stow::{store_all, stow};

/// Where the failure must be reported.
enum Reported<'a> {
    /// In the Failed SOP Sequence under this SOP Instance UID.
    Failed(&'a str),
    /// In the Other Failures Sequence (no SOP UIDs could be known).
    Other,
}

/// Posts a good instance and `bad` together: 202, good stored, bad failed with C000 as
/// `reported`; then `bad` alone: 400. Only the good instance's file may exist.
async fn check(bad: Part, reported: Reported<'_>) {
    let server = TestServer::start().await;
    let good = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let body = Multipart::new(vec![Part::dicom(&good.bytes), bad.clone()]);
    let result = stow(&server, &body).await;
    assert_eq!(result.status, 202, "{}", result.json);
    assert_eq!(result.stored().len(), 1, "{}", result.json);
    expect_stored(&server, &result, &good);
    match reported {
        Reported::Failed(sop) => result.expect_failed(sop, CANNOT_UNDERSTAND),
        Reported::Other => {
            assert!(result.failed().is_empty(), "{}", result.json);
            let reasons: Vec<u64> = result.other_failures().iter().map(|f| f.reason).collect();
            assert_eq!(reasons, vec![CANNOT_UNDERSTAND], "{}", result.json);
        }
    }
    let stored = files_under(&server.root.join("studies"));
    assert_eq!(
        stored.len(),
        1,
        "only the good instance is stored: {stored:?}"
    );

    let alone = stow(&server, &Multipart::new(vec![bad])).await;
    assert_eq!(alone.status, 400, "{}", alone.json);
    assert!(alone.stored().is_empty());
    assert_eq!(
        alone.all_reasons(),
        vec![CANNOT_UNDERSTAND],
        "{}",
        alone.json
    );
    assert_eq!(files_under(&server.root.join("studies")).len(), 1);
    server.stop_and_check_tmp().await;
}

/// The standard instance cut to `keep(len)` bytes.
fn truncated(keep: impl FnOnce(usize) -> usize) -> Instance {
    let mut instance = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let length = keep(instance.bytes.len());
    instance.bytes.truncate(length);
    instance
}

/// Explicit VR LE native pixel data element: 12-byte header + 16 bytes of value.
const PIXEL_ELEMENT_BYTES: usize = 12 + 16;

#[tokio::test]
async fn part_cut_inside_an_element_header_fails_with_c000() {
    let instance = truncated(|len| len - PIXEL_ELEMENT_BYTES + 5);
    check(
        Part::dicom(&instance.bytes),
        Reported::Failed(&instance.uids.sop),
    )
    .await;
}

#[tokio::test]
async fn part_cut_inside_a_value_fails_with_c000() {
    let instance = truncated(|len| len - 7);
    check(
        Part::dicom(&instance.bytes),
        Reported::Failed(&instance.uids.sop),
    )
    .await;
}

#[tokio::test]
async fn part_cut_before_its_uids_is_another_failure() {
    // Preamble, DICM and the first bytes of the meta group only.
    let instance = truncated(|_| 140);
    check(Part::dicom(&instance.bytes), Reported::Other).await;
}

#[tokio::test]
async fn random_bytes_are_another_failure() {
    let mut state = 0x2545_F491_u32;
    let noise: Vec<u8> = (0..3000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect();
    check(Part::dicom(&noise), Reported::Other).await;
}

#[tokio::test]
async fn text_part_is_another_failure() {
    let part = Part::bare(b"this is not a DICOM file\r\n").header("Content-Type", "text/plain");
    check(part, Reported::Other).await;
}

#[tokio::test]
async fn element_length_beyond_the_part_fails_with_c000() {
    let uids = Uids::fresh();
    let instance = built(
        dicom::EXPLICIT_LE,
        &uids,
        |_| {},
        |b: &mut Builder| {
            b.header((0x7FE0, 0x0010), b"OB", 10_000).raw(&[7; 16]);
        },
    );
    check(Part::dicom(&instance.bytes), Reported::Failed(&uids.sop)).await;
}

#[tokio::test]
async fn huge_claimed_length_on_a_small_part_fails_with_c000() {
    // 0xFFFFFFF0 bytes claimed: a reader that allocates what is claimed would ask for 4 GiB.
    let uids = Uids::fresh();
    let instance = built(
        dicom::IMPLICIT_LE,
        &uids,
        |_| {},
        |b: &mut Builder| {
            b.header((0x7FE0, 0x0010), b"OB", 0xFFFF_FFF0).raw(&[7; 16]);
        },
    );
    check(Part::dicom(&instance.bytes), Reported::Failed(&uids.sop)).await;
}

#[tokio::test]
async fn item_longer_than_its_sequence_fails_with_c000() {
    let uids = Uids::fresh();
    let instance = built(
        dicom::EXPLICIT_LE,
        &uids,
        |_| {},
        |b: &mut Builder| {
            let mut item = Builder::new(b.syntax);
            item.text((0x0008, 0x1150), b"UI", dicom::SECONDARY_CAPTURE)
                .text((0x0008, 0x1155), b"UI", "1.2.3");
            let item_length = item.bytes.len() as u32;
            // (0008,1140) claims 8 bytes less than its one item needs.
            b.header((0x0008, 0x1140), b"SQ", 8 + item_length - 8);
            b.delimiter(dicom::ITEM, item_length).raw(&item.bytes);
            native_pixels(b);
        },
    );
    check(Part::dicom(&instance.bytes), Reported::Failed(&uids.sop)).await;
}

#[tokio::test]
async fn element_longer_than_its_item_fails_with_c000() {
    let uids = Uids::fresh();
    let instance = built(
        dicom::IMPLICIT_LE,
        &uids,
        |_| {},
        |b: &mut Builder| {
            // An undefined-length sequence whose 12-byte item holds a 20-byte element.
            b.sequence_start_undefined((0x0040, 0x0275));
            b.delimiter(dicom::ITEM, 12)
                .text((0x0040, 0x0007), b"LO", "ABCDEFGHIJKL");
            b.sequence_end();
            native_pixels(b);
        },
    );
    check(Part::dicom(&instance.bytes), Reported::Failed(&uids.sop)).await;
}

/// `instance` with its first `skip` bytes cut off (the preamble, or the preamble and `DICM`).
fn without_prefix(skip: usize) -> Instance {
    let instance = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    Instance {
        uids: instance.uids,
        bytes: instance.bytes[skip..].to_vec(),
    }
}

#[tokio::test]
async fn meta_group_without_preamble_is_stored_as_received() {
    // dicomweb-client sends data sets this way: the meta group first, no preamble, no DICM.
    let server = TestServer::start().await;
    let bare = without_prefix(132);
    let magic_only = without_prefix(128);
    store_all(&server, &[&bare, &magic_only]).await;
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn data_set_without_meta_group_fails_with_c000() {
    let instance = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    // Skip the preamble, DICM and the whole meta group: the part opens with group 0008.
    let group_length = u32::from_le_bytes([
        instance.bytes[140],
        instance.bytes[141],
        instance.bytes[142],
        instance.bytes[143],
    ]) as usize;
    let data_set = &instance.bytes[144 + group_length..];
    assert_eq!(
        &data_set[..2],
        &[0x08, 0x00],
        "the data set starts with group 0008"
    );
    check(Part::dicom(data_set), Reported::Other).await;
}

#[tokio::test]
async fn server_keeps_serving_after_malformed_parts() {
    let server = TestServer::start().await;
    let uids = Uids::fresh();
    let absurd = built(
        dicom::EXPLICIT_LE,
        &uids,
        |_| {},
        |b: &mut Builder| {
            b.header((0x7FE0, 0x0010), b"OB", 0xFFFF_FFF0);
        },
    );
    for _ in 0..3 {
        let result = stow(&server, &Multipart::of(&[&absurd.bytes])).await;
        assert_eq!(result.status, 400, "{}", result.json);
    }
    let good = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    store_all(&server, &[&good]).await;
    server.stop_and_check_tmp().await;
}
