//! Transfer syntaxes the reader must cover: explicit and implicit VR little endian, explicit
//! VR big endian, deflated, and encapsulated pixel data (JPEG baseline, RLE, JPEG 2000).
//! Storage places files by the Study/Series UIDs found in the data set, so a stored file at
//! the right path proves the data set itself was read in that syntax.

use crate::support::dicom::{self, Builder};
use crate::support::instances::{
    built, jpeg_via_dicom_object, simple, via_dicom_object, with_meta_sop, Instance, Uids,
};
use crate::support::multipart::Multipart;
use crate::support::response::{DOES_NOT_MATCH_SOP_CLASS, TRANSFER_SYNTAX_NOT_SUPPORTED};
use crate::support::server::TestServer;
use crate::support::stow::{store_all, stow};

/// Stores one instance alone and checks the stored bytes.
async fn check_stores(instance: &Instance) -> TestServer {
    let server = TestServer::start().await;
    store_all(&server, &[instance]).await;
    server
}

/// dicom-object can read the stored file back, with the UIDs we wrote.
fn check_readable(server: &TestServer, instance: &Instance) {
    let uids = &instance.uids;
    let path = server.instance_path(&uids.study, &uids.series, &uids.sop);
    let object = dicom_object::open_file(&path).expect("dicom-object reads the stored file");
    let sop = object
        .element(dicom_dictionary_std::tags::SOP_INSTANCE_UID)
        .expect("stored file has a SOP Instance UID")
        .to_str()
        .expect("UID is text");
    assert_eq!(sop.trim_end_matches('\0'), uids.sop);
}

#[tokio::test]
async fn explicit_vr_little_endian_from_dicom_object_is_stored_and_readable() {
    let instance = via_dicom_object(dicom::EXPLICIT_LE, &Uids::fresh());
    let server = check_stores(&instance).await;
    check_readable(&server, &instance);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn implicit_vr_little_endian_from_dicom_object_is_stored_and_readable() {
    let instance = via_dicom_object(dicom::IMPLICIT_LE, &Uids::fresh());
    let server = check_stores(&instance).await;
    check_readable(&server, &instance);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn jpeg_baseline_from_dicom_object_is_stored_and_readable() {
    let instance = jpeg_via_dicom_object(&Uids::fresh());
    let server = check_stores(&instance).await;
    check_readable(&server, &instance);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn explicit_vr_big_endian_is_stored() {
    let instance = simple(dicom::EXPLICIT_BE, &Uids::fresh());
    check_stores(&instance).await.stop_and_check_tmp().await;
}

#[tokio::test]
async fn deflated_explicit_vr_little_endian_is_stored() {
    let instance = simple(dicom::DEFLATED_LE, &Uids::fresh());
    check_stores(&instance).await.stop_and_check_tmp().await;
}

fn encapsulated(transfer_syntax: &str, offsets: &[u32], fragments: &[Vec<u8>]) -> Instance {
    built(
        transfer_syntax,
        &Uids::fresh(),
        |_| {},
        |b: &mut Builder| {
            b.encapsulated_pixels(offsets, fragments);
        },
    )
}

#[tokio::test]
async fn rle_with_offset_table_and_one_fragment_per_frame_is_stored() {
    let frames = vec![vec![0x11; 64], vec![0x22; 30]];
    let instance = encapsulated(dicom::RLE, &[0, 72], &frames);
    check_stores(&instance).await.stop_and_check_tmp().await;
}

#[tokio::test]
async fn jpeg_2000_with_empty_offset_table_and_many_fragments_is_stored() {
    let fragments: Vec<Vec<u8>> = (0..7u8).map(|i| vec![i; 2 + 2 * i as usize]).collect();
    let instance = encapsulated(dicom::JPEG_2000, &[], &fragments);
    check_stores(&instance).await.stop_and_check_tmp().await;
}

#[tokio::test]
async fn jpeg_baseline_fragments_holding_delimiter_like_bytes_are_stored() {
    // Fragment contents that look like item and delimiter tags must not confuse the reader.
    let tricky = vec![0xFE, 0xFF, 0x00, 0xE0, 0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0];
    let instance = encapsulated(dicom::JPEG_BASELINE, &[0], &[tricky, vec![0xFF, 0xD9]]);
    check_stores(&instance).await.stop_and_check_tmp().await;
}

#[tokio::test]
async fn every_syntax_in_one_request_is_stored() {
    let study = Uids::fresh();
    let instances = [
        via_dicom_object(dicom::EXPLICIT_LE, &study.sibling()),
        via_dicom_object(dicom::IMPLICIT_LE, &study.sibling()),
        simple(dicom::EXPLICIT_LE, &study.sibling()),
        simple(dicom::IMPLICIT_LE, &study.sibling()),
        simple(dicom::EXPLICIT_BE, &study.sibling()),
        simple(dicom::DEFLATED_LE, &study.sibling()),
        jpeg_via_dicom_object(&study.sibling()),
    ];
    let server = TestServer::start().await;
    let refs: Vec<&Instance> = instances.iter().collect();
    store_all(&server, &refs).await;
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn data_set_sop_uid_differing_from_meta_fails_in_every_syntax() {
    // The meta group says one SOP Instance UID, the data set another: only a reader that
    // really decoded the data set (big endian, deflated) can notice.
    let server = TestServer::start().await;
    let syntaxes = [
        dicom::EXPLICIT_LE,
        dicom::IMPLICIT_LE,
        dicom::EXPLICIT_BE,
        dicom::DEFLATED_LE,
    ];
    for transfer_syntax in syntaxes {
        let uids = Uids::fresh();
        let instance = with_meta_sop(transfer_syntax, &uids, &uids.sibling().sop);
        let result = stow(&server, &Multipart::of(&[&instance.bytes])).await;
        assert_eq!(result.status, 409, "{transfer_syntax}: {}", result.json);
        assert_eq!(
            result.all_reasons(),
            vec![DOES_NOT_MATCH_SOP_CLASS],
            "{transfer_syntax}: {}",
            result.json
        );
        assert!(result.stored().is_empty());
    }
    let stopped = server.stop_and_check_tmp().await;
    crate::support::server::assert_nothing_stored(&stopped.root);
}

#[tokio::test]
async fn unknown_transfer_syntax_fails_with_c122_and_others_are_stored() {
    let server = TestServer::start().await;
    let good = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let unknown = simple("1.2.826.0.1.3680043.10.1234.777.1", &Uids::fresh());
    let result = stow(&server, &Multipart::of(&[&good.bytes, &unknown.bytes])).await;
    assert_eq!(result.status, 202, "{}", result.json);
    crate::support::response::expect_stored(&server, &result, &good);
    result.expect_failed(&unknown.uids.sop, TRANSFER_SYNTAX_NOT_SUPPORTED);
    let path = server.instance_path(&unknown.uids.study, &unknown.uids.series, &unknown.uids.sop);
    assert!(!path.exists());
    server.stop_and_check_tmp().await;
}
