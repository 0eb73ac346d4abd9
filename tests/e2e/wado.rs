//! WADO-RS (PS3.18 §10.4) over the stored corpus: instances as stored (`transfer-syntax=*`) or
//! converted to explicit VR little endian (the default), compressed instances as stored, the
//! 406 for a syntax an instance cannot be sent in, study and series retrieves in order,
//! metadata as DICOM JSON with absolute `BulkDataURI`s that resolve, frames (native in every
//! byte order, encapsulated with and without a basic offset table), 404 and 400 answers, and
//! a 64 MiB instance streamed back intact.

use dicom_core::VR;
use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use serde_json::{json, Value};

use crate::support::dicom::{self, Builder, Syntax};
use crate::support::http::{self, Response};
use crate::support::instances::{Instance, Uids};
use crate::support::multipart::Multipart;
use crate::support::multipart_read::{media_param, parts, ReadPart};
use crate::support::server::TestServer;
use crate::support::stow::post_raw;
use crate::support::studies::{
    frame16_be, frame16_le, instance_route, instance_url, jpeg_fragments, pixels16_be, pixels16_le,
    pixels8, Corpus, STUDY_B,
};

const DICOM: &str = "application/dicom";
const OCTET_STREAM: &str = "application/octet-stream";
const AS_STORED: &str = "multipart/related; type=\"application/dicom\"; transfer-syntax=*";
const FRAMES_AS_STORED: &str =
    "multipart/related; type=\"application/octet-stream\"; transfer-syntax=*";

async fn get(server: &TestServer, route: &str, accept: Option<&str>) -> Response {
    let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
    http::get(server.addr, route, &headers).await
}

/// The parts of a retrieve of `route`, checking the payload type.
async fn retrieve(
    server: &TestServer,
    route: &str,
    accept: Option<&str>,
    payload: &str,
) -> Vec<ReadPart> {
    parts(&get(server, route, accept).await, payload)
}

/// The transfer syntax a part's Content-Type names.
fn part_syntax(part: &ReadPart) -> String {
    let content_type = part.content_type();
    media_param(content_type, "transfer-syntax")
        .unwrap_or_else(|| panic!("no transfer-syntax in {content_type:?}"))
}

/// Reads a Part 10 file (with or without its preamble) with dicom-object.
fn read_object(bytes: &[u8]) -> DefaultDicomObject {
    let start = if bytes.len() > 132 && &bytes[128..132] == b"DICM" {
        128
    } else {
        0
    };
    dicom_object::from_reader(&bytes[start..]).expect("dicom-object reads the part")
}

fn text(object: &DefaultDicomObject, tag: dicom_core::Tag) -> String {
    object
        .element(tag)
        .unwrap_or_else(|_| panic!("{tag} present"))
        .to_str()
        .expect("a text form")
        .trim_end_matches(['\0', ' '])
        .to_string()
}

#[tokio::test]
async fn instances_are_sent_byte_for_byte_as_stored_with_transfer_syntax_star() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    for instance in corpus.all() {
        let route = instance_route(&server, instance);
        let found = retrieve(&server, &route, Some(AS_STORED), DICOM).await;
        assert_eq!(found.len(), 1, "{route}");
        assert!(
            found[0].body == instance.bytes,
            "{route}: {} bytes received, {} stored",
            found[0].body.len(),
            instance.bytes.len()
        );
        let stored_syntax = read_object(&instance.bytes)
            .meta()
            .transfer_syntax()
            .trim_end_matches('\0')
            .to_string();
        assert_eq!(
            found[0].content_type(),
            format!("{DICOM}; transfer-syntax={stored_syntax}")
        );
    }
    server.stop_and_check_tmp().await;
}

/// The converted instance has the attributes of its explicit VR LE twin and the same pixel
/// bytes, in explicit VR little endian.
fn check_converted(part: &ReadPart, original: &Instance, twin: &Instance) {
    assert_eq!(part_syntax(part), dicom::EXPLICIT_LE);
    let converted = read_object(&part.body);
    assert_eq!(
        converted.meta().transfer_syntax().trim_end_matches('\0'),
        dicom::EXPLICIT_LE
    );
    assert_eq!(text(&converted, tags::SOP_INSTANCE_UID), original.uids.sop);
    let twin = read_object(&twin.bytes);
    let own = [
        tags::SOP_INSTANCE_UID,
        tags::INSTANCE_NUMBER,
        tags::PIXEL_DATA,
    ];
    let converted_tags: Vec<_> = converted.iter().map(|e| e.header().tag).collect();
    let twin_tags: Vec<_> = twin.iter().map(|e| e.header().tag).collect();
    assert_eq!(converted_tags, twin_tags);
    for element in twin.iter() {
        let tag = element.header().tag;
        if own.contains(&tag) {
            continue;
        }
        let expected = element.to_str().expect("text form");
        assert_eq!(
            text(&converted, tag),
            expected.trim_end_matches(['\0', ' ']),
            "{tag}"
        );
        let vr = converted.element(tag).expect("present").vr();
        assert_eq!(vr, element.vr(), "VR of {tag}");
    }
    let pixels = converted.element(tags::PIXEL_DATA).expect("pixel data");
    assert_eq!(pixels.vr(), VR::OW);
    assert!(
        pixels.to_bytes().expect("pixel bytes").as_ref() == pixels16_le().as_slice(),
        "pixel data of {} is not the little endian twin's",
        original.uids.sop
    );
}

#[tokio::test]
async fn default_accept_sends_implicit_and_big_endian_instances_as_explicit_little_endian() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    for original in [&corpus.frames_be, &corpus.frames_implicit] {
        let route = instance_route(&server, original);
        for accept in [
            None,
            Some("multipart/related; type=\"application/dicom\""),
            Some("multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.1"),
        ] {
            let found = retrieve(&server, &route, accept, DICOM).await;
            assert_eq!(found.len(), 1);
            check_converted(&found[0], original, &corpus.frames_le);
        }
    }
    // Explicit VR little endian is already the default: the stored bytes.
    let route = instance_route(&server, &corpus.frames_le);
    let found = retrieve(&server, &route, None, DICOM).await;
    assert!(found[0].body == corpus.frames_le.bytes);
    assert_eq!(part_syntax(&found[0]), dicom::EXPLICIT_LE);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn compressed_instances_are_sent_as_stored_and_never_as_a_syntax_they_are_not_in() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    for instance in [&corpus.jpeg_offsets, &corpus.jpeg_plain] {
        let route = instance_route(&server, instance);
        for accept in [None, Some("multipart/related; type=\"application/dicom\"")] {
            let found = retrieve(&server, &route, accept, DICOM).await;
            assert_eq!(found.len(), 1);
            assert!(found[0].body == instance.bytes, "{route} {accept:?}");
            assert_eq!(part_syntax(&found[0]), dicom::JPEG_BASELINE);
        }
        let accept = format!(
            "multipart/related; type=\"application/dicom\"; transfer-syntax={}",
            dicom::EXPLICIT_LE
        );
        let response = get(&server, &route, Some(&accept)).await;
        assert_eq!(response.status, 406, "{}", response.text());
        assert!(!response.body.is_empty(), "406 names the reason");
        let accept = format!(
            "multipart/related; type=\"application/dicom\"; transfer-syntax={}",
            dicom::JPEG_BASELINE
        );
        let found = retrieve(&server, &route, Some(&accept), DICOM).await;
        assert!(found[0].body == instance.bytes);
    }
    // One instance that cannot be sent makes the whole study 406.
    let study = server.route(&format!("/studies/{}", corpus.study_c()));
    let accept = format!(
        "multipart/related; type=\"application/dicom\"; transfer-syntax={}",
        dicom::EXPLICIT_LE
    );
    assert_eq!(get(&server, &study, Some(&accept)).await.status, 406);
    for accept in [
        "application/dicom+json",
        "multipart/related; type=\"application/dicom+xml\"",
    ] {
        let response = get(&server, &study, Some(accept)).await;
        assert_eq!(response.status, 406, "{accept}");
    }
    server.stop_and_check_tmp().await;
}

/// Instances in the order WADO-RS sends a study: by series, then by instance number.
fn in_retrieve_order<'a>(instances: &[(&'a Instance, u32)]) -> Vec<&'a Instance> {
    let mut ordered = instances.to_vec();
    ordered.sort_by(|a, b| (&a.0.uids.series, a.1).cmp(&(&b.0.uids.series, b.1)));
    ordered.into_iter().map(|(instance, _)| instance).collect()
}

fn check_bodies(found: &[ReadPart], expected: &[&Instance]) {
    assert_eq!(found.len(), expected.len());
    for (index, (part, instance)) in found.iter().zip(expected).enumerate() {
        assert!(
            part.body == instance.bytes,
            "part {index} is not {}",
            instance.uids.sop
        );
    }
}

#[tokio::test]
async fn series_and_study_retrieves_send_one_part_per_instance_in_order() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    let ct = &corpus.ct[0].uids;
    let route = server.route(&format!("/studies/{}/series/{}", ct.study, ct.series));
    let found = retrieve(&server, &route, Some(AS_STORED), DICOM).await;
    check_bodies(&found, &[&corpus.ct[0], &corpus.ct[1], &corpus.ct[2]]);

    let study_a = [
        (&corpus.ct[0], 1),
        (&corpus.ct[1], 2),
        (&corpus.ct[2], 10),
        (&corpus.sr, 1),
    ];
    let route = server.route(&format!("/studies/{}", corpus.study_a()));
    let found = retrieve(&server, &route, Some(AS_STORED), DICOM).await;
    check_bodies(&found, &in_retrieve_order(&study_a));

    let study_c = [
        (&corpus.jpeg_offsets, 1),
        (&corpus.jpeg_plain, 2),
        (&corpus.gray, 1),
    ];
    let route = server.route(&format!("/studies/{}", corpus.study_c()));
    let found = retrieve(&server, &route, None, DICOM).await;
    check_bodies(&found, &in_retrieve_order(&study_c));

    // The default for study B converts every instance: three explicit VR LE parts.
    let route = server.route(&format!("/studies/{}", corpus.study_b()));
    let found = retrieve(&server, &route, None, DICOM).await;
    let originals = [
        &corpus.frames_le,
        &corpus.frames_be,
        &corpus.frames_implicit,
    ];
    assert_eq!(found.len(), 3);
    for (part, original) in found.iter().zip(originals) {
        check_converted(part, original, &corpus.frames_le);
    }
    server.stop_and_check_tmp().await;
}

/// The DICOM JSON the server should give for an instance of the multi-frame series.
fn frames_metadata(server: &TestServer, instance: &Instance, number: u32) -> Value {
    let uids = &instance.uids;
    let attrs = &STUDY_B;
    json!({
        "00080005": {"vr": "CS", "Value": ["ISO_IR 192"]},
        "00080016": {"vr": "UI", "Value": [uids.class]},
        "00080018": {"vr": "UI", "Value": [uids.sop]},
        "00080020": {"vr": "DA", "Value": [attrs.date]},
        "00080030": {"vr": "TM", "Value": [attrs.time]},
        "00080050": {"vr": "SH", "Value": [attrs.accession]},
        "00080060": {"vr": "CS", "Value": ["MR"]},
        "00080080": {"vr": "LO", "Value": [attrs.institution]},
        "00081030": {"vr": "LO", "Value": [attrs.description]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Müller^José"}]},
        "00100020": {"vr": "LO", "Value": [attrs.patient_id]},
        "0020000D": {"vr": "UI", "Value": [uids.study]},
        "0020000E": {"vr": "UI", "Value": [uids.series]},
        "00200011": {"vr": "IS", "Value": [1]},
        "00200013": {"vr": "IS", "Value": [number]},
        "00280002": {"vr": "US", "Value": [1]},
        "00280004": {"vr": "CS", "Value": ["MONOCHROME2"]},
        "00280008": {"vr": "IS", "Value": [3]},
        "00280010": {"vr": "US", "Value": [4]},
        "00280011": {"vr": "US", "Value": [4]},
        "00280100": {"vr": "US", "Value": [16]},
        "00280101": {"vr": "US", "Value": [16]},
        "00280102": {"vr": "US", "Value": [15]},
        "00280103": {"vr": "US", "Value": [0]},
        "7FE00010": {
            "vr": "OW",
            "BulkDataURI": format!("{}/bulk/7FE00010", instance_url(server, instance)),
        },
    })
}

fn json_array(response: &Response) -> Vec<Value> {
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.media_type(), "application/dicom+json");
    match response.json() {
        Value::Array(items) => items,
        other => panic!("metadata is a JSON array: {other}"),
    }
}

#[tokio::test]
async fn metadata_is_dicom_json_with_values_as_stored_and_absolute_bulk_data_uris() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    let (le, be) = (&corpus.frames_le, &corpus.frames_be);
    let route = format!("{}/metadata", instance_route(&server, be));
    let found = json_array(&get(&server, &route, None).await);
    assert_eq!(found, [frames_metadata(&server, be, 2)]);

    let route = server.route(&format!(
        "/studies/{}/series/{}/metadata",
        le.uids.study, le.uids.series
    ));
    let found = json_array(&get(&server, &route, Some("application/dicom+json")).await);
    assert_eq!(found.len(), 3);
    assert_eq!(found[0], frames_metadata(&server, le, 1));
    assert_eq!(found[1], frames_metadata(&server, be, 2));
    let implicit = &corpus.frames_implicit;
    assert_eq!(found[2]["00080018"]["Value"][0], implicit.uids.sop.as_str());
    assert_eq!(
        found[2]["7FE00010"]["BulkDataURI"],
        format!("{}/bulk/7FE00010", instance_url(&server, implicit))
    );
    assert_eq!(found[2]["00280100"], json!({"vr": "US", "Value": [16]}));

    let route = server.route(&format!("/studies/{}/metadata", corpus.study_a()));
    let found = json_array(&get(&server, &route, None).await);
    let study_a = [
        (&corpus.ct[0], 1),
        (&corpus.ct[1], 2),
        (&corpus.ct[2], 10),
        (&corpus.sr, 1),
    ];
    let sops: Vec<&str> = found
        .iter()
        .map(|item| item["00080018"]["Value"][0].as_str().unwrap_or_default())
        .collect();
    let expected: Vec<&str> = in_retrieve_order(&study_a)
        .iter()
        .map(|i| i.uids.sop.as_str())
        .collect();
    assert_eq!(sops, expected);
    for item in &found {
        assert_eq!(
            item["00100010"],
            json!({"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]})
        );
        assert_eq!(
            item["00080080"],
            json!({"vr": "LO", "Value": ["General Hospital A"]})
        );
    }
    let response = get(&server, &route, Some("application/dicom+xml")).await;
    assert_eq!(response.status, 406);
    server.stop_and_check_tmp().await;
}

/// The route of an absolute URL the server handed out, checking its scheme and host.
fn route_of(server: &TestServer, url: &str) -> String {
    let prefix = format!("http://{}", server.addr);
    url.strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{url} is not under {prefix}"))
        .to_string()
}

async fn bulk_bytes(server: &TestServer, instance: &Instance, accept: Option<&str>) -> Vec<u8> {
    let route = format!("{}/metadata", instance_route(server, instance));
    let metadata = json_array(&get(server, &route, None).await);
    let url = metadata[0]["7FE00010"]["BulkDataURI"]
        .as_str()
        .unwrap_or_else(|| panic!("pixel data is bulk data: {}", metadata[0]))
        .to_string();
    let found = retrieve(server, &route_of(server, &url), accept, OCTET_STREAM).await;
    assert_eq!(found.len(), 1);
    found
        .into_iter()
        .next()
        .map(|part| part.body)
        .unwrap_or_default()
}

#[tokio::test]
async fn bulk_data_uris_resolve_to_the_pixel_bytes() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    assert_eq!(
        bulk_bytes(&server, &corpus.frames_le, None).await,
        pixels16_le()
    );
    assert_eq!(
        bulk_bytes(&server, &corpus.frames_implicit, None).await,
        pixels16_le()
    );
    // Big endian words are swapped for the default syntax, and left as stored for `*`.
    assert_eq!(
        bulk_bytes(&server, &corpus.frames_be, None).await,
        pixels16_le()
    );
    let stored = bulk_bytes(&server, &corpus.frames_be, Some(FRAMES_AS_STORED)).await;
    assert_eq!(stored, pixels16_be());
    assert_eq!(bulk_bytes(&server, &corpus.gray, None).await, pixels8());
    let route = format!("{}/bulk/00100010", instance_route(&server, &corpus.gray));
    assert_eq!(get(&server, &route, None).await.status, 404);
    server.stop_and_check_tmp().await;
}

async fn frames(
    server: &TestServer,
    instance: &Instance,
    list: &str,
    accept: Option<&str>,
) -> Vec<ReadPart> {
    let route = format!("{}/frames/{list}", instance_route(server, instance));
    retrieve(server, &route, accept, OCTET_STREAM).await
}

fn bodies(found: &[ReadPart]) -> Vec<Vec<u8>> {
    found.iter().map(|part| part.body.clone()).collect()
}

#[tokio::test]
async fn native_frames_are_sent_in_request_order_swapped_to_little_endian_by_default() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    for instance in [
        &corpus.frames_le,
        &corpus.frames_implicit,
        &corpus.frames_be,
    ] {
        let found = frames(&server, instance, "2", None).await;
        assert_eq!(bodies(&found), [frame16_le(1)], "{}", instance.uids.sop);
        assert_eq!(part_syntax(&found[0]), dicom::EXPLICIT_LE);
        let found = frames(&server, instance, "1,3", None).await;
        assert_eq!(bodies(&found), [frame16_le(0), frame16_le(2)]);
        let found = frames(
            &server,
            instance,
            "3,1,2",
            Some("multipart/related; type=application/octet-stream"),
        )
        .await;
        assert_eq!(
            bodies(&found),
            [frame16_le(2), frame16_le(0), frame16_le(1)]
        );
    }
    let found = frames(&server, &corpus.frames_be, "2,3", Some(FRAMES_AS_STORED)).await;
    assert_eq!(bodies(&found), [frame16_be(1), frame16_be(2)]);
    assert_eq!(part_syntax(&found[0]), dicom::EXPLICIT_BE);
    let found = frames(&server, &corpus.frames_le, "2", Some(FRAMES_AS_STORED)).await;
    assert_eq!(bodies(&found), [frame16_le(1)]);
    let found = frames(&server, &corpus.gray, "1", None).await;
    assert_eq!(bodies(&found), [pixels8()]);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn encapsulated_frames_are_their_fragments_with_or_without_an_offset_table() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    let [first, second] = jpeg_fragments();
    for instance in [&corpus.jpeg_offsets, &corpus.jpeg_plain] {
        for accept in [None, Some(FRAMES_AS_STORED)] {
            let found = frames(&server, instance, "2", accept).await;
            assert_eq!(
                bodies(&found),
                std::slice::from_ref(&second),
                "{} {accept:?}",
                instance.uids.sop
            );
            assert_eq!(part_syntax(&found[0]), dicom::JPEG_BASELINE);
            let found = frames(&server, instance, "2,1", accept).await;
            assert_eq!(bodies(&found), [second.clone(), first.clone()]);
        }
        let route = format!("{}/frames/3", instance_route(&server, instance));
        assert_eq!(get(&server, &route, None).await.status, 404);
        let accept = format!(
            "multipart/related; type=\"application/octet-stream\"; transfer-syntax={}",
            dicom::EXPLICIT_LE
        );
        let route = format!("{}/frames/1", instance_route(&server, instance));
        assert_eq!(get(&server, &route, Some(&accept)).await.status, 406);
    }
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn missing_resources_are_404_and_malformed_ones_400() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    let known = &corpus.frames_le.uids;
    let (study, series, sop) = (&known.study, &known.series, &known.sop);
    let unknown = Uids::fresh();
    let instance = instance_route(&server, &corpus.frames_le);
    let sr = instance_route(&server, &corpus.sr);
    for path in [
        format!("/studies/{}", unknown.study),
        format!("/studies/{}/metadata", unknown.study),
        format!("/studies/{study}/series/{}", unknown.series),
        format!("/studies/{study}/series/{}/metadata", unknown.series),
        format!("/studies/{study}/series/{series}/instances/{}", unknown.sop),
        format!(
            "/studies/{study}/series/{series}/instances/{}/metadata",
            unknown.sop
        ),
        format!(
            "/studies/{study}/series/{series}/instances/{}/frames/1",
            unknown.sop
        ),
        // The instance exists, but not under this study.
        format!("/studies/{}/series/{series}/instances/{sop}", unknown.study),
    ] {
        let response = get(&server, &server.route(&path), None).await;
        assert_eq!(response.status, 404, "{path}: {}", response.text());
    }
    for route in [
        format!("{instance}/frames/4"),
        format!("{instance}/frames/1,4"),
        format!("{sr}/frames/1"),
        format!("{instance}/bulk/7FE00011"),
    ] {
        let response = get(&server, &route, None).await;
        assert_eq!(response.status, 404, "{route}: {}", response.text());
    }
    for route in [
        format!("{instance}/frames/x"),
        format!("{instance}/frames/0"),
        format!("{instance}/frames/1,x"),
        format!("{instance}/frames/-1"),
        server.route("/studies/abc"),
        server.route("/studies/1..2/metadata"),
        server.route(&format!("/studies/{study}/series/1.2.x")),
        server.route(&format!(
            "/studies/{study}/series/{series}/instances/1.2.-3/metadata"
        )),
        server.route(&format!(
            "/studies/{study}/series/{series}/instances/1.2.3a/frames/1"
        )),
    ] {
        let response = get(&server, &route, None).await;
        assert_eq!(response.status, 400, "{route}: {}", response.text());
        assert!(!response.body.is_empty(), "{route}: 400 names the reason");
    }
    server.stop_and_check_tmp().await;
}

const LARGE_SIZE: u16 = 512;
const LARGE_FRAMES: usize = 128;

/// A 64 MiB explicit VR LE instance (512 x 512 x 16 bits x 128 frames) with patterned pixels.
fn large_instance() -> Instance {
    let uids = Uids::fresh();
    let frame_bytes = LARGE_SIZE as usize * LARGE_SIZE as usize * 2;
    let mut pixels = vec![0u8; frame_bytes * LARGE_FRAMES];
    for (index, chunk) in pixels.chunks_exact_mut(8).enumerate() {
        let word = (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    let mut b = Builder::new(Syntax::ExplicitLe);
    b.text((0x0008, 0x0016), b"UI", &uids.class)
        .text((0x0008, 0x0018), b"UI", &uids.sop)
        .text((0x0008, 0x0060), b"CS", "OT")
        .text((0x0010, 0x0010), b"PN", "Large^Retrieve")
        .text((0x0020, 0x000D), b"UI", &uids.study)
        .text((0x0020, 0x000E), b"UI", &uids.series)
        .us((0x0028, 0x0002), 1)
        .text((0x0028, 0x0004), b"CS", "MONOCHROME2")
        .text((0x0028, 0x0008), b"IS", &LARGE_FRAMES.to_string())
        .us((0x0028, 0x0010), LARGE_SIZE)
        .us((0x0028, 0x0011), LARGE_SIZE)
        .us((0x0028, 0x0100), 16)
        .us((0x0028, 0x0101), 16)
        .us((0x0028, 0x0102), 15)
        .us((0x0028, 0x0103), 0)
        .element((0x7FE0, 0x0010), b"OW", &pixels);
    Instance {
        bytes: dicom::part10(&uids.class, &uids.sop, dicom::EXPLICIT_LE, &b.bytes),
        uids,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_64_mib_instance_streams_back_intact() {
    let server = TestServer::start().await;
    let instance = large_instance();
    let body = Multipart::of(&[&instance.bytes]);
    let response = post_raw(
        &server,
        &server.route("/studies"),
        &body.content_type(),
        &body.encode(),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let route = instance_route(&server, &instance);
    for accept in [Some(AS_STORED), None] {
        let found = retrieve(&server, &route, accept, DICOM).await;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].body.len(), instance.bytes.len());
        assert!(
            found[0].body == instance.bytes,
            "the 64 MiB instance differs ({accept:?})"
        );
    }
    let frame_bytes = LARGE_SIZE as usize * LARGE_SIZE as usize * 2;
    let pixels_start = instance.bytes.len() - frame_bytes * LARGE_FRAMES;
    let found = frames(&server, &instance, "100", None).await;
    let start = pixels_start + 99 * frame_bytes;
    assert!(found[0].body == instance.bytes[start..start + frame_bytes]);
    server.stop_and_check_tmp().await;
}
