//! UID validation (failure 0xA900): UIDs used as path components must be `[0-9.]`, at most 64
//! characters, present, and the data set must agree with the meta group. A hostile UID never
//! writes outside the storage root.

use crate::support::dicom::{self, Builder, Syntax};
use crate::support::instances::{native_pixels, simple, with_meta_sop, Uids};
use crate::support::multipart::Multipart;
use crate::support::response::DOES_NOT_MATCH_SOP_CLASS;
use crate::support::server::{assert_nothing_stored, files_under, TestServer};
use crate::support::stow::stow;

/// Posts `bad` beside a good instance: 202, only the good one stored, `bad` fails with A900.
/// Then `bad` alone: 409. Nothing may appear outside `<tempdir>/root`.
async fn check(bad: Vec<u8>) {
    let server = TestServer::start().await;
    let good = simple(dicom::EXPLICIT_LE, &Uids::fresh());
    let result = stow(&server, &Multipart::of(&[&good.bytes, &bad])).await;
    assert_eq!(result.status, 202, "{}", result.json);
    crate::support::response::expect_stored(&server, &result, &good);
    assert_eq!(
        result.all_reasons(),
        vec![DOES_NOT_MATCH_SOP_CLASS],
        "{}",
        result.json
    );
    assert_eq!(files_under(&server.root.join("studies")).len(), 1);

    let alone = stow(&server, &Multipart::of(&[&bad])).await;
    assert_eq!(alone.status, 409, "{}", alone.json);
    assert_eq!(
        alone.all_reasons(),
        vec![DOES_NOT_MATCH_SOP_CLASS],
        "{}",
        alone.json
    );

    let outside: Vec<_> = files_under(server.tempdir.path())
        .into_iter()
        .filter(|path| !path.starts_with(&server.root))
        .collect();
    assert!(
        outside.is_empty(),
        "files written outside the storage root: {outside:?}"
    );
    let stopped = server.stop_and_check_tmp().await;
    assert_eq!(files_under(&stopped.root.join("studies")).len(), 1);
}

/// The standard layout with `edit` applied to its UIDs (meta group and data set alike).
fn with_uids(edit: impl FnOnce(&mut Uids)) -> Vec<u8> {
    let mut uids = Uids::fresh();
    edit(&mut uids);
    simple(dicom::EXPLICIT_LE, &uids).bytes
}

#[tokio::test]
async fn path_traversal_sop_instance_uid_fails_with_a900() {
    check(with_uids(|uids| uids.sop = "../../../escaped".to_string())).await;
}

#[tokio::test]
async fn path_traversal_study_and_series_uids_fail_with_a900() {
    check(with_uids(|uids| uids.study = "../..".to_string())).await;
    check(with_uids(|uids| uids.series = "/tmp/x".to_string())).await;
}

#[tokio::test]
async fn letters_in_sop_instance_uid_fail_with_a900() {
    check(with_uids(|uids| uids.sop = "1.2.abc".to_string())).await;
}

#[tokio::test]
async fn uid_longer_than_64_characters_fails_with_a900() {
    let long = format!("1.2.{}", "3".repeat(62));
    assert_eq!(long.len(), 66);
    check(with_uids(|uids| uids.series = long)).await;
}

#[tokio::test]
async fn empty_sop_instance_uid_fails_with_a900() {
    check(with_uids(|uids| uids.sop = String::new())).await;
}

#[tokio::test]
async fn missing_study_uid_fails_with_a900() {
    let uids = Uids::fresh();
    let mut b = Builder::new(Syntax::ExplicitLe);
    b.text((0x0008, 0x0016), b"UI", &uids.class)
        .text((0x0008, 0x0018), b"UI", &uids.sop)
        .text((0x0010, 0x0010), b"PN", "No^Study")
        .text((0x0020, 0x000E), b"UI", &uids.series);
    native_pixels(&mut b);
    check(dicom::part10(
        &uids.class,
        &uids.sop,
        dicom::EXPLICIT_LE,
        &b.bytes,
    ))
    .await;
}

#[tokio::test]
async fn missing_series_uid_fails_with_a900() {
    let uids = Uids::fresh();
    let mut b = Builder::new(Syntax::ImplicitLe);
    b.text((0x0008, 0x0016), b"UI", &uids.class)
        .text((0x0008, 0x0018), b"UI", &uids.sop)
        .text((0x0020, 0x000D), b"UI", &uids.study);
    native_pixels(&mut b);
    check(dicom::part10(
        &uids.class,
        &uids.sop,
        dicom::IMPLICIT_LE,
        &b.bytes,
    ))
    .await;
}

#[tokio::test]
async fn data_set_sop_instance_uid_differing_from_meta_fails_with_a900() {
    let uids = Uids::fresh();
    check(with_meta_sop(dicom::EXPLICIT_LE, &uids, &uids.sibling().sop).bytes).await;
}

#[tokio::test]
async fn data_set_sop_class_differing_from_meta_fails_with_a900() {
    let uids = Uids::fresh();
    let mut data_uids = uids.clone();
    data_uids.class = "1.2.840.10008.5.1.4.1.1.2".to_string();
    let mut bytes = simple(dicom::EXPLICIT_LE, &data_uids).bytes;
    // Replace the meta group: same SOP Instance UID, different SOP Class UID.
    let data_start = 132 + dicom::meta_group(&data_uids.class, &uids.sop, dicom::EXPLICIT_LE).len();
    let data = bytes.split_off(data_start);
    check(dicom::part10(
        &uids.class,
        &uids.sop,
        dicom::EXPLICIT_LE,
        &data,
    ))
    .await;
}

#[tokio::test]
async fn dot_only_uids_store_nothing() {
    // "." and ".." use only UID characters but are not UIDs (PS3.5 §9.1: no empty components)
    // and, as path components, would escape `studies/`.
    let server = TestServer::start().await;
    let first = with_uids(|uids| uids.sop = "..".to_string());
    let second = with_uids(|uids| uids.study = "..".to_string());
    let result = stow(&server, &Multipart::of(&[&first, &second])).await;
    assert_eq!(result.status, 409, "{}", result.json);
    assert!(result.stored().is_empty());
    let stopped = server.stop_and_check_tmp().await;
    assert_nothing_stored(&stopped.root);
}
