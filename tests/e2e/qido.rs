//! QIDO-RS (PS3.18 §10.6) over the stored corpus: every matching kind the conformance
//! statement lists (single value, wildcards, fuzzy person names, UID lists, date and time
//! ranges), keys by keyword and by tag, `includefield`, paging with its `Warning` header, the
//! three levels and their scoped routes, computed attributes as exact values, Retrieve URLs,
//! and the 204/400/406 answers.

use serde_json::{json, Value};

use crate::support::http::{self, Response};
use crate::support::instances::Instance;
use crate::support::server::TestServer;
use crate::support::studies::{instance_url, Corpus, BASIC_TEXT_SR, STUDY_A, STUDY_B, STUDY_C};

const STUDY_UID: &str = "0020000D";
const SERIES_UID: &str = "0020000E";
const SOP_UID: &str = "00080018";
const RETRIEVE_URL: &str = "00081190";
const INSTITUTION_NAME: &str = "00080080";

/// `value` percent-encoded for a query string (everything but unreserved characters).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `path?k=v&...` with the values encoded.
fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return path.to_string();
    }
    let query: Vec<String> = pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect();
    format!("{path}?{}", query.join("&"))
}

async fn search(server: &TestServer, path: &str, pairs: &[(&str, &str)]) -> Response {
    http::get(server.addr, &server.route(&with_query(path, pairs)), &[]).await
}

/// Every `Warning` header of a response.
fn warnings(response: &Response) -> Vec<&str> {
    response
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("warning"))
        .map(|(_, value)| value.as_str())
        .collect()
}

/// The results of a 200 search: a DICOM JSON array.
fn results(response: &Response) -> Vec<Value> {
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.media_type(), "application/dicom+json");
    match response.json() {
        Value::Array(items) => items,
        other => panic!("search results are a JSON array: {other}"),
    }
}

/// The first value of `tag` in each result.
fn firsts(results: &[Value], tag: &str) -> Vec<String> {
    results
        .iter()
        .map(|result| {
            result[tag]["Value"][0]
                .as_str()
                .unwrap_or_else(|| panic!("{tag} has a string value in {result}"))
                .to_string()
        })
        .collect()
}

/// A search at `path` matches exactly the studies `expected`, in that order.
async fn check_studies(server: &TestServer, pairs: &[(&str, &str)], expected: &[&str]) {
    let response = search(server, "/studies", pairs).await;
    if expected.is_empty() {
        assert_eq!(response.status, 204, "{pairs:?}: {}", response.text());
        assert!(response.body.is_empty());
        return;
    }
    let found = firsts(&results(&response), STUDY_UID);
    assert_eq!(found, expected, "studies matching {pairs:?}");
}

fn study_url(server: &TestServer, study: &str) -> String {
    format!("{}/studies/{study}", server.url_base())
}

fn series_url(server: &TestServer, instance: &Instance) -> String {
    format!(
        "{}/studies/{}/series/{}",
        server.url_base(),
        instance.uids.study,
        instance.uids.series
    )
}

/// The study-level object the index should return for a study.
fn study_object(
    server: &TestServer,
    uid: &str,
    attrs: &crate::support::studies::StudyAttrs,
    modalities: &[&str],
    n_series: u64,
    n_instances: u64,
) -> Value {
    json!({
        "00080020": {"vr": "DA", "Value": [attrs.date]},
        "00080030": {"vr": "TM", "Value": [attrs.time]},
        "00080050": {"vr": "SH", "Value": [attrs.accession]},
        "00080061": {"vr": "CS", "Value": modalities},
        "00081030": {"vr": "LO", "Value": [attrs.description]},
        "00081190": {"vr": "UR", "Value": [study_url(server, uid)]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": attrs.patient_name}]},
        "00100020": {"vr": "LO", "Value": [attrs.patient_id]},
        "0020000D": {"vr": "UI", "Value": [uid]},
        "00201206": {"vr": "IS", "Value": [n_series]},
        "00201208": {"vr": "IS", "Value": [n_instances]},
    })
}

#[tokio::test]
async fn all_studies_are_returned_newest_first_with_counts_and_modalities() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    let response = search(&server, "/studies", &[]).await;
    assert!(warnings(&response).is_empty(), "{:?}", response.headers);
    let found = results(&response);
    let expected = vec![
        study_object(&server, corpus.study_c(), &STUDY_C, &["CT", "MR"], 2, 3),
        study_object(&server, corpus.study_b(), &STUDY_B, &["MR"], 1, 3),
        study_object(&server, corpus.study_a(), &STUDY_A, &["CT", "SR"], 2, 4),
    ];
    assert_eq!(found, expected);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn patient_name_matches_exactly_or_with_wildcards() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    let (a, b, c) = (corpus.study_a(), corpus.study_b(), corpus.study_c());
    for (pattern, expected) in [
        ("Doe^Jane", vec![a]),
        ("Müller^José", vec![b]),
        // Single value matching is case-sensitive and whole-value.
        ("doe^jane", vec![]),
        ("Doe", vec![]),
        ("Doe*", vec![a]),
        ("*^J*", vec![c, b, a]),
        ("Sm?th^John", vec![c]),
        ("M?ller*", vec![b]),
        ("*", vec![c, b, a]),
        ("?oe^Jane?", vec![]),
    ] {
        check_studies(&server, &[("PatientName", pattern)], &expected).await;
    }
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn fuzzy_matching_ignores_case_and_accents_only_when_asked() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    let (a, b) = (corpus.study_a(), corpus.study_b());
    for (name, expected) in [
        ("muller", vec![b]),
        ("jose", vec![b]),
        ("MÜLLER", vec![b]),
        ("müller^josé", vec![b]),
        ("jane", vec![a]),
        ("ller", vec![]),
        ("mul*jos?", vec![b]),
    ] {
        let pairs = [("PatientName", name), ("fuzzymatching", "true")];
        check_studies(&server, &pairs, &expected).await;
    }
    for name in ["muller", "jose", "müller^josé"] {
        check_studies(&server, &[("PatientName", name)], &[]).await;
        let pairs = [("PatientName", name), ("fuzzymatching", "false")];
        check_studies(&server, &pairs, &[]).await;
    }
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn keys_match_by_keyword_or_by_tag() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    let (a, b, c) = (corpus.study_a(), corpus.study_b(), corpus.study_c());
    check_studies(&server, &[("PatientID", "PID-B")], &[b]).await;
    check_studies(&server, &[("00100020", "PID-C")], &[c]).await;
    check_studies(&server, &[("AccessionNumber", "ACC-A")], &[a]).await;
    check_studies(&server, &[("00080050", "ACC-A")], &[a]).await;
    check_studies(&server, &[("StudyDescription", "Brain*")], &[b]).await;
    check_studies(
        &server,
        &[("PatientID", "PID-B"), ("StudyDate", "20200115")],
        &[],
    )
    .await;
    // Universal matching (empty value) constrains nothing.
    check_studies(
        &server,
        &[("PatientID", ""), ("AccessionNumber", "")],
        &[c, b, a],
    )
    .await;
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn dates_match_single_values_and_closed_and_open_ranges() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    let (a, b, c) = (corpus.study_a(), corpus.study_b(), corpus.study_c());
    for (range, expected) in [
        ("20210610", vec![b]),
        ("20210611", vec![]),
        ("20200101-20211231", vec![b, a]),
        ("20200115-20200115", vec![a]),
        ("20210610-20221231", vec![c, b]),
        ("-20201231", vec![a]),
        ("-20200115", vec![a]),
        ("20210101-", vec![c, b]),
        ("20221231-", vec![c]),
        ("20230101-", vec![]),
    ] {
        check_studies(&server, &[("StudyDate", range)], &expected).await;
    }
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn times_match_ranges_at_any_precision() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    let (a, b, c) = (corpus.study_a(), corpus.study_b(), corpus.study_c());
    for (range, expected) in [
        ("140000-150000", vec![b]),
        ("14-15", vec![b]),
        ("1415-", vec![c, b]),
        ("-0830", vec![a]),
        ("141500.6-", vec![c]),
        ("000000-235959", vec![c, b, a]),
        ("0900-1400", vec![]),
    ] {
        check_studies(&server, &[("StudyTime", range)], &expected).await;
    }
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn modalities_in_study_matches_studies_with_a_series_of_that_modality() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    let (a, b, c) = (corpus.study_a(), corpus.study_b(), corpus.study_c());
    check_studies(&server, &[("ModalitiesInStudy", "MR")], &[c, b]).await;
    check_studies(&server, &[("ModalitiesInStudy", "SR")], &[a]).await;
    check_studies(&server, &[("ModalitiesInStudy", "CT")], &[c, a]).await;
    check_studies(&server, &[("00080061", "US")], &[]).await;
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn study_uid_lists_accept_commas_and_backslashes() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    let (a, b, c) = (corpus.study_a(), corpus.study_b(), corpus.study_c());
    check_studies(
        &server,
        &[("StudyInstanceUID", &format!("{a},{c}"))],
        &[c, a],
    )
    .await;
    check_studies(
        &server,
        &[("StudyInstanceUID", &format!("{a}\\{b}"))],
        &[b, a],
    )
    .await;
    check_studies(&server, &[("StudyInstanceUID", b)], &[b]).await;
    check_studies(&server, &[("0020000D", &format!("{c},1.2.3.4"))], &[c]).await;
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn includefield_returns_attributes_outside_the_index_from_stored_metadata() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    let expected_institutions = json!([
        {"vr": "LO", "Value": [STUDY_C.institution]},
        {"vr": "LO", "Value": [STUDY_B.institution]},
        {"vr": "LO", "Value": [STUDY_A.institution]},
    ]);
    for include in ["InstitutionName", "00080080", "StudyID,InstitutionName"] {
        let found = results(&search(&server, "/studies", &[("includefield", include)]).await);
        let institutions: Vec<Value> = found.iter().map(|r| r[INSTITUTION_NAME].clone()).collect();
        assert_eq!(
            Value::Array(institutions),
            expected_institutions,
            "{include}"
        );
    }
    // Repeated includefield parameters add up.
    let path =
        server.route("/series?includefield=InstitutionName&includefield=00081030&Modality=SR");
    let found = results(&http::get(server.addr, &path, &[]).await);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0][INSTITUTION_NAME],
        json!({"vr": "LO", "Value": [STUDY_A.institution]})
    );
    assert_eq!(
        found[0]["00081030"],
        json!({"vr": "LO", "Value": [STUDY_A.description]})
    );
    // Without includefield the attribute is not returned.
    let found = results(&search(&server, "/studies", &[]).await);
    assert!(found.iter().all(|r| r.get(INSTITUTION_NAME).is_none()));
    // `all` returns every indexed attribute of each match, and the stored ones too, but not
    // the attributes that describe one instance of the study.
    let found = results(&search(&server, "/studies", &[("includefield", "all")]).await);
    let institutions: Vec<Value> = found.iter().map(|r| r[INSTITUTION_NAME].clone()).collect();
    assert_eq!(Value::Array(institutions), expected_institutions);
    for result in &found {
        for lower in ["00080018", "0020000E", "7FE00010"] {
            assert!(
                result.get(lower).is_none(),
                "{lower} in a study result: {result}"
            );
        }
    }
    let expected = vec![
        study_object(&server, corpus.study_c(), &STUDY_C, &["CT", "MR"], 2, 3),
        study_object(&server, corpus.study_b(), &STUDY_B, &["MR"], 1, 3),
        study_object(&server, corpus.study_a(), &STUDY_A, &["CT", "SR"], 2, 4),
    ];
    for (result, expected) in found.iter().zip(&expected) {
        for (tag, value) in expected.as_object().expect("an object") {
            assert_eq!(&result[tag], value, "{tag} with includefield=all");
        }
    }
    assert_eq!(found.len(), 3);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn limit_and_offset_page_with_a_warning_exactly_while_more_remain() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    let (a, b, c) = (corpus.study_a(), corpus.study_b(), corpus.study_c());
    for (limit, offset, expected, more) in [
        ("2", "0", vec![c, b], true),
        ("2", "2", vec![a], false),
        ("1", "1", vec![b], true),
        ("3", "0", vec![c, b, a], false),
        ("10", "0", vec![c, b, a], false),
        ("1", "2", vec![a], false),
    ] {
        let response = search(&server, "/studies", &[("limit", limit), ("offset", offset)]).await;
        assert_eq!(
            firsts(&results(&response), STUDY_UID),
            expected,
            "limit={limit}&offset={offset}"
        );
        let warnings = warnings(&response);
        if more {
            assert_eq!(
                warnings.len(),
                1,
                "limit={limit}&offset={offset}: {warnings:?}"
            );
            assert!(warnings[0].starts_with("299 "), "{warnings:?}");
            let next = format!(
                "offset={}",
                offset.parse::<usize>().unwrap_or(0) + expected.len()
            );
            assert!(warnings[0].contains(&next), "{warnings:?} names {next}");
        } else {
            assert!(
                warnings.is_empty(),
                "limit={limit}&offset={offset}: {warnings:?}"
            );
        }
    }
    let response = search(&server, "/studies", &[("offset", "3")]).await;
    assert_eq!(response.status, 204);
    assert!(response.body.is_empty());
    assert!(warnings(&response).is_empty());
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn no_match_is_204_with_an_empty_body() {
    let server = TestServer::start().await;
    Corpus::stored(&server).await;
    for (path, pairs) in [
        ("/studies", vec![("PatientID", "nobody")]),
        ("/series", vec![("Modality", "US")]),
        ("/instances", vec![("SOPClassUID", "1.2.3")]),
        ("/studies/1.2.3.4/series", vec![]),
        ("/studies/1.2.3.4/instances", vec![]),
    ] {
        let response = search(&server, path, &pairs).await;
        assert_eq!(
            response.status,
            204,
            "{path} {pairs:?}: {}",
            response.text()
        );
        assert!(response.body.is_empty(), "{path}: {}", response.text());
    }
    // An empty index answers the same.
    let empty = TestServer::start().await;
    let response = search(&empty, "/studies", &[]).await;
    assert_eq!(response.status, 204);
    assert!(response.body.is_empty());
    empty.stop_and_check_tmp().await;
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn invalid_queries_are_400_with_a_reason() {
    let server = TestServer::start().await;
    Corpus::stored(&server).await;
    for (path, pairs, mentions) in [
        ("/studies", vec![("StudyDate", "2020")], "StudyDate"),
        ("/studies", vec![("StudyDate", "20201301x")], "StudyDate"),
        ("/studies", vec![("StudyDate", "-")], "StudyDate"),
        ("/studies", vec![("StudyTime", "noon")], "StudyTime"),
        (
            "/studies",
            vec![("NoSuchAttribute", "x")],
            "NoSuchAttribute",
        ),
        ("/studies", vec![("limit", "-1")], "limit"),
        ("/studies", vec![("offset", "x")], "offset"),
        (
            "/studies",
            vec![("StudyInstanceUID", "1.2.*")],
            "StudyInstanceUID",
        ),
        (
            "/series",
            vec![("SeriesInstanceUID", "1.2.3?")],
            "SeriesInstanceUID",
        ),
        ("/studies", vec![("includefield", "Bogus")], "Bogus"),
        (
            "/studies",
            vec![("fuzzymatching", "maybe")],
            "fuzzymatching",
        ),
        // Keys of a lower level than the search.
        (
            "/studies",
            vec![("SOPInstanceUID", "1.2.3")],
            "SOPInstanceUID",
        ),
        ("/studies", vec![("Modality", "CT")], "Modality"),
        ("/studies", vec![("00080060", "CT")], "Modality"),
        ("/series", vec![("InstanceNumber", "1")], "InstanceNumber"),
    ] {
        let response = search(&server, path, &pairs).await;
        assert_eq!(
            response.status,
            400,
            "{path} {pairs:?}: {}",
            response.text()
        );
        let text = response.text();
        assert!(text.contains(mentions), "{path} {pairs:?}: reason {text:?}");
    }
    server.stop_and_check_tmp().await;
}

/// The series-level object for a series of the corpus.
fn series_fields(result: &Value) -> Value {
    json!({
        "modality": result["00080060"],
        "number": result["00200011"],
        "instances": result["00201209"],
        "url": result[RETRIEVE_URL],
        "patient": result["00100010"],
    })
}

#[tokio::test]
async fn series_in_a_study_are_ordered_by_series_number_with_study_attributes() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    let path = format!("/studies/{}/series", corpus.study_a());
    let found = results(&search(&server, &path, &[]).await);
    assert_eq!(
        firsts(&found, SERIES_UID),
        [
            corpus.ct[0].uids.series.as_str(),
            corpus.sr.uids.series.as_str()
        ]
    );
    let patient = json!({"vr": "PN", "Value": [{"Alphabetic": STUDY_A.patient_name}]});
    let expected = [
        json!({
            "modality": {"vr": "CS", "Value": ["CT"]},
            "number": {"vr": "IS", "Value": [1]},
            "instances": {"vr": "IS", "Value": [3]},
            "url": {"vr": "UR", "Value": [series_url(&server, &corpus.ct[0])]},
            "patient": patient,
        }),
        json!({
            "modality": {"vr": "CS", "Value": ["SR"]},
            "number": {"vr": "IS", "Value": [2]},
            "instances": {"vr": "IS", "Value": [1]},
            "url": {"vr": "UR", "Value": [series_url(&server, &corpus.sr)]},
            "patient": patient,
        }),
    ];
    let fields: Vec<Value> = found.iter().map(series_fields).collect();
    assert_eq!(fields, expected);
    for result in &found {
        assert_eq!(result[STUDY_UID]["Value"][0], corpus.study_a());
    }
    // Matching within the study.
    let found = results(&search(&server, &path, &[("Modality", "SR")]).await);
    assert_eq!(firsts(&found, SERIES_UID), [corpus.sr.uids.series.as_str()]);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn series_of_all_studies_match_by_modality() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    let found = results(&search(&server, "/series", &[("Modality", "CT")]).await);
    let mut series = firsts(&found, SERIES_UID);
    series.sort();
    let mut expected = vec![
        corpus.ct[0].uids.series.clone(),
        corpus.jpeg_offsets.uids.series.clone(),
    ];
    expected.sort();
    assert_eq!(series, expected);
    for result in &found {
        let study = result[STUDY_UID]["Value"][0].as_str().unwrap_or_default();
        let series = result[SERIES_UID]["Value"][0].as_str().unwrap_or_default();
        let url = format!("{}/studies/{study}/series/{series}", server.url_base());
        assert_eq!(result[RETRIEVE_URL], json!({"vr": "UR", "Value": [url]}));
    }
    let found = results(&search(&server, "/series", &[]).await);
    assert_eq!(found.len(), 5);
    let found = results(
        &search(
            &server,
            "/series",
            &[("PatientName", "Smith*"), ("Modality", "MR")],
        )
        .await,
    );
    assert_eq!(
        firsts(&found, SERIES_UID),
        [corpus.gray.uids.series.as_str()]
    );
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn instances_of_a_series_are_ordered_by_instance_number() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    let ct = &corpus.ct[0].uids;
    let path = format!("/studies/{}/series/{}/instances", ct.study, ct.series);
    let found = results(&search(&server, &path, &[]).await);
    // Numeric order: 1, 2, 10 (sent as 2, 10, 1).
    let sops: Vec<&str> = corpus.ct.iter().map(|i| i.uids.sop.as_str()).collect();
    assert_eq!(firsts(&found, SOP_UID), sops);
    let numbers: Vec<Value> = found.iter().map(|r| r["00200013"].clone()).collect();
    assert_eq!(
        numbers,
        [
            json!({"vr": "IS", "Value": [1]}),
            json!({"vr": "IS", "Value": [2]}),
            json!({"vr": "IS", "Value": [10]}),
        ]
    );
    for (result, instance) in found.iter().zip(&corpus.ct) {
        assert_eq!(
            result[RETRIEVE_URL],
            json!({"vr": "UR", "Value": [instance_url(&server, instance)]})
        );
        assert_eq!(result["00100020"], json!({"vr": "LO", "Value": ["PID-A"]}));
        assert_eq!(result["00080060"], json!({"vr": "CS", "Value": ["CT"]}));
    }
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn instance_attributes_are_exact_values() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    let be = &corpus.frames_be;
    let found = results(&search(&server, "/instances", &[("SOPInstanceUID", &be.uids.sop)]).await);
    assert_eq!(found.len(), 1);
    let result = &found[0];
    for (tag, expected) in [
        ("00080016", json!({"vr": "UI", "Value": [be.uids.class]})),
        (SOP_UID, json!({"vr": "UI", "Value": [be.uids.sop]})),
        ("00200013", json!({"vr": "IS", "Value": [2]})),
        ("00280008", json!({"vr": "IS", "Value": [3]})),
        ("00280010", json!({"vr": "US", "Value": [4]})),
        ("00280011", json!({"vr": "US", "Value": [4]})),
        (
            "00083002",
            json!({"vr": "UI", "Value": ["1.2.840.10008.1.2.2"]}),
        ),
        (SERIES_UID, json!({"vr": "UI", "Value": [be.uids.series]})),
        ("00201209", json!({"vr": "IS", "Value": [3]})),
        (
            "00100010",
            json!({"vr": "PN", "Value": [{"Alphabetic": "Müller^José"}]}),
        ),
        (
            RETRIEVE_URL,
            json!({"vr": "UR", "Value": [instance_url(&server, be)]}),
        ),
    ] {
        assert_eq!(result[tag], expected, "{tag} in {result}");
    }
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn instances_match_by_sop_class_anywhere_or_within_a_study() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    let found = results(&search(&server, "/instances", &[("SOPClassUID", BASIC_TEXT_SR)]).await);
    assert_eq!(firsts(&found, SOP_UID), [corpus.sr.uids.sop.as_str()]);
    assert_eq!(
        found[0][RETRIEVE_URL],
        json!({"vr": "UR", "Value": [instance_url(&server, &corpus.sr)]})
    );
    assert!(
        found[0].get("00280010").is_none(),
        "no Rows for an SR: {}",
        found[0]
    );

    let path = format!("/studies/{}/instances", corpus.study_c());
    let found = results(&search(&server, &path, &[]).await);
    let mut sops = firsts(&found, SOP_UID);
    sops.sort();
    let mut expected: Vec<String> = [&corpus.jpeg_offsets, &corpus.jpeg_plain, &corpus.gray]
        .iter()
        .map(|i| i.uids.sop.clone())
        .collect();
    expected.sort();
    assert_eq!(sops, expected);
    for result in &found {
        let sop = result[SOP_UID]["Value"][0].as_str().unwrap_or_default();
        let instance = [&corpus.jpeg_offsets, &corpus.jpeg_plain, &corpus.gray]
            .into_iter()
            .find(|i| i.uids.sop == sop)
            .expect("a study C instance");
        assert_eq!(
            result[RETRIEVE_URL],
            json!({"vr": "UR", "Value": [instance_url(&server, instance)]})
        );
    }
    let found = results(&search(&server, &path, &[("Modality", "MR")]).await);
    assert_eq!(firsts(&found, SOP_UID), [corpus.gray.uids.sop.as_str()]);
    let found = results(&search(&server, "/instances", &[("NumberOfFrames", "3")]).await);
    assert_eq!(found.len(), 3);
    server.stop_and_check_tmp().await;
}

#[tokio::test]
async fn results_are_dicom_json_for_json_accepts_and_406_otherwise() {
    let server = TestServer::start().await;
    let corpus = Corpus::stored(&server).await;
    let path = server.route("/studies");
    for accept in [
        "application/dicom+json",
        "application/json",
        "*/*",
        "text/html, application/json;q=0.5",
    ] {
        let response = http::get(server.addr, &path, &[("Accept", accept)]).await;
        assert_eq!(results(&response).len(), 3, "{accept}");
        assert_eq!(firsts(&results(&response), STUDY_UID)[2], corpus.study_a());
    }
    for accept in ["text/html", "application/dicom+xml"] {
        let response = http::get(server.addr, &path, &[("Accept", accept)]).await;
        assert_eq!(response.status, 406, "{accept}: {}", response.text());
    }
    server.stop_and_check_tmp().await;
}

/// A Part 10 instance of `uids` whose patient is `name` (raw bytes) in `charset`.
fn instance_with_name(
    uids: &crate::support::instances::Uids,
    charset: &str,
    name: &[u8],
    id: &str,
) -> Vec<u8> {
    use crate::support::dicom::{self, Builder, Syntax};
    let mut b = Builder::new(Syntax::ExplicitLe);
    b.text((0x0008, 0x0005), b"CS", charset)
        .text((0x0008, 0x0016), b"UI", &uids.class)
        .text((0x0008, 0x0018), b"UI", &uids.sop)
        .element((0x0010, 0x0010), b"PN", name)
        .text((0x0010, 0x0020), b"LO", id)
        .text((0x0020, 0x000D), b"UI", &uids.study)
        .text((0x0020, 0x000E), b"UI", &uids.series);
    dicom::part10(&uids.class, &uids.sop, dicom::EXPLICIT_LE, &b.bytes)
}

#[tokio::test]
async fn names_in_other_character_sets_are_searched_and_returned_as_unicode() {
    use crate::support::instances::Uids;
    use crate::support::multipart::Multipart;

    let server = TestServer::start().await;
    // "Иванов^Иван" in ISO 8859-5.
    let cyrillic = Uids::fresh();
    let ivanov = instance_with_name(
        &cyrillic,
        "ISO_IR 144",
        b"\xb8\xd2\xd0\xdd\xde\xd2^\xb8\xd2\xd0\xdd",
        "CYRILLIC-1",
    );
    // PS3.5 Annex I: a Korean name with its Hanja and Hangul groups in KS X 1001, each
    // switched to with an ISO 2022 escape sequence.
    let korean = Uids::fresh();
    let hong = instance_with_name(
        &korean,
        "\\ISO 2022 IR 149",
        &[
            &b"Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7="[..],
            b"\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf",
        ]
        .concat(),
        "KOREAN-1",
    );
    let stored =
        crate::support::stow::stow(&server, &Multipart::of(&[&ivanov[..], &hong[..]])).await;
    assert_eq!(stored.status, 200, "{}", stored.json);

    for pairs in [
        vec![("PatientName", "Иванов^Иван")],
        vec![("PatientName", "Иван*")],
        vec![("PatientName", "иванов"), ("fuzzymatching", "true")],
    ] {
        let found = results(&search(&server, "/studies", &pairs).await);
        assert_eq!(found.len(), 1, "{pairs:?}: {found:?}");
        assert_eq!(
            found[0]["00100010"],
            json!({"vr": "PN", "Value": [{"Alphabetic": "Иванов^Иван"}]}),
            "{pairs:?}"
        );
    }

    // Metadata keeps every component group.
    let metadata = http::get(
        server.addr,
        &server.route(&format!(
            "/studies/{}/series/{}/metadata",
            korean.study, korean.series
        )),
        &[],
    )
    .await;
    assert_eq!(metadata.status, 200);
    assert_eq!(
        metadata.json()[0]["00100010"],
        json!({"vr": "PN", "Value": [{
            "Alphabetic": "Hong^Gildong",
            "Ideographic": "洪^吉洞",
            "Phonetic": "홍^길동",
        }]}),
    );
    server.stop_and_check_tmp().await;
}
