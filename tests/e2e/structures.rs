//! Data set structures the reader must walk: nested undefined- and defined-length sequences
//! and items, empty sequences, CP-246 UN of undefined length holding implicit VR items, odd
//! value lengths, and the nesting limit (`max_depth`).

use crate::support::dicom::{self, Builder, Syntax, UNDEFINED};
use crate::support::instances::{built, native_pixels, nested_sequences, Instance, Uids};
use crate::support::multipart::Multipart;
use crate::support::response::CANNOT_UNDERSTAND;
use crate::support::server::TestServer;
use crate::support::stow::{store_all, stow};

/// (0008,1115) Referenced Series Sequence: sorts between (0008,0060) and (0010,0010).
const REFERENCED_SERIES: (u16, u16) = (0x0008, 0x1115);
/// (0040,A730) Content Sequence: sorts after (0040,0007) inside the UN items.
const CONTENT_SEQUENCE: (u16, u16) = (0x0040, 0xA730);

/// Every syntax whose data set the builder writes directly.
const SYNTAXES: [&str; 4] = [
    dicom::EXPLICIT_LE,
    dicom::IMPLICIT_LE,
    dicom::EXPLICIT_BE,
    dicom::DEFLATED_LE,
];

/// Stores one instance per syntax, each built with `middle` before the patient attributes (so
/// before the Study/Series UIDs the server needs) and `tail` after the pixel attributes.
async fn check_every_syntax(middle: fn(&mut Builder), tail: fn(&mut Builder)) {
    let server = TestServer::start().await;
    for transfer_syntax in SYNTAXES {
        let instance = built(transfer_syntax, &Uids::fresh(), middle, tail);
        store_all(&server, &[&instance]).await;
    }
    server.stop_and_check_tmp().await;
}

/// Referenced Image Sequence: items with UIDs, one undefined length, one defined length.
fn mixed_lengths(b: &mut Builder) {
    let mut inner = Builder::new(b.syntax);
    inner
        .text((0x0008, 0x1150), b"UI", dicom::SECONDARY_CAPTURE)
        .text((0x0008, 0x1155), b"UI", "1.2.3.4");
    let defined_item = inner.bytes.clone();
    // (0008,1115) Referenced Series Sequence: undefined length, its item holds a defined-length
    // (0008,1140) Referenced Image Sequence of two defined-length items.
    // The nested UIDs must not be mistaken for the instance's own Series or SOP Instance UID.
    b.sequence_start_undefined((0x0008, 0x1115))
        .item_start_undefined();
    let mut nested = Builder::new(b.syntax);
    nested.sequence_defined((0x0008, 0x1140), &[defined_item.clone(), defined_item]);
    b.raw(&nested.bytes);
    b.text((0x0020, 0x000E), b"UI", "1.2.3.99")
        .item_end()
        .sequence_end();
}

#[tokio::test]
async fn sequences_of_defined_and_undefined_length_are_walked() {
    check_every_syntax(mixed_lengths, native_pixels).await;
}

#[tokio::test]
async fn nested_undefined_length_sequences_are_walked() {
    check_every_syntax(|b| nested_sequences(b, REFERENCED_SERIES, 6), native_pixels).await;
}

#[tokio::test]
async fn empty_sequences_and_items_are_walked() {
    check_every_syntax(
        |b| {
            // (0008,1110) empty undefined-length sequence; (0008,1111) empty defined-length
            // sequence; (0008,1115) one empty item of each kind.
            b.sequence_start_undefined((0x0008, 0x1110)).sequence_end();
            b.header((0x0008, 0x1111), b"SQ", 0);
            b.sequence_start_undefined((0x0008, 0x1115));
            b.item_start_undefined().item_end();
            b.delimiter(dicom::ITEM, 0).sequence_end();
        },
        native_pixels,
    )
    .await;
}

#[tokio::test]
async fn un_of_undefined_length_with_implicit_items_is_walked() {
    // CP-246: a sequence that reached us as UN keeps undefined length, and its content is
    // implicit VR little endian whatever the transfer syntax.
    let server = TestServer::start().await;
    for transfer_syntax in [dicom::EXPLICIT_LE, dicom::DEFLATED_LE] {
        let tail = |b: &mut Builder| {
            let mut content = Builder::new(Syntax::ImplicitLe);
            content
                .item_start_undefined()
                .text((0x0040, 0x0007), b"LO", "REQUESTED");
            nested_sequences(&mut content, CONTENT_SEQUENCE, 2);
            content.item_end();
            // A second item, of defined length.
            let mut item = Builder::new(Syntax::ImplicitLe);
            item.text((0x0040, 0x1001), b"SH", "RP1");
            content
                .delimiter(dicom::ITEM, item.bytes.len() as u32)
                .raw(&item.bytes);
            content.sequence_end();
            // (0040,0275) Request Attributes Sequence as UN, undefined length.
            b.header((0x0040, 0x0275), b"UN", UNDEFINED)
                .raw(&content.bytes);
            native_pixels(b);
        };
        let instance = built(transfer_syntax, &Uids::fresh(), |_| {}, tail);
        store_all(&server, &[&instance]).await;
    }
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn odd_value_lengths_are_accepted_and_kept() {
    check_every_syntax(
        |b| {
            // (0008,0080) Institution Name, 5 bytes, unpadded; (0008,1030) 1 byte.
            b.element((0x0008, 0x0080), b"LO", b"ODD01");
            b.element((0x0008, 0x1030), b"LO", b"X");
        },
        |b| {
            b.element(
                (0x7FE0, 0x0010),
                b"OB",
                &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
            );
        },
    )
    .await;
}

fn deeply_nested(depth: usize) -> Instance {
    built(
        dicom::EXPLICIT_LE,
        &Uids::fresh(),
        |b| nested_sequences(b, REFERENCED_SERIES, depth),
        native_pixels,
    )
}

#[tokio::test]
async fn nesting_deeper_than_max_depth_fails_with_c000() {
    let server = TestServer::start_with(|config| config.max_depth = 4).await;
    let shallow = deeply_nested(3);
    let deep = deeply_nested(40);
    let result = stow(&server, &Multipart::of(&[&shallow.bytes, &deep.bytes])).await;
    assert_eq!(result.status, 202, "{}", result.json);
    crate::support::response::expect_stored(&server, &result, &shallow);
    result.expect_failed(&deep.uids.sop, CANNOT_UNDERSTAND);
    let deep_path = server.instance_path(&deep.uids.study, &deep.uids.series, &deep.uids.sop);
    assert!(!deep_path.exists());
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn nesting_beyond_the_default_limit_fails_alone() {
    let server = TestServer::start().await;
    let deep = deeply_nested(200);
    let result = stow(&server, &Multipart::of(&[&deep.bytes])).await;
    assert_eq!(result.status, 400, "{}", result.json);
    assert_eq!(
        result.all_reasons(),
        vec![CANNOT_UNDERSTAND],
        "{}",
        result.json
    );
    let ok = deeply_nested(20);
    store_all(&server, &[&ok]).await;
    server.stop_and_check_tmp().await;
}
