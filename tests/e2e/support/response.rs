//! Reading a STOW-RS response (PS3.18 Annex I, Store Instances Response Module) in the DICOM
//! JSON model (PS3.18 Annex F), and the checks most tests share on it and on the storage.

use serde_json::Value;

use super::http::Response;
use super::instances::Instance;
use super::server::{assert_stored_bytes, TestServer};

pub const RETRIEVE_URL: &str = "00081190";
pub const REFERENCED_SOP_SEQUENCE: &str = "00081199";
pub const FAILED_SOP_SEQUENCE: &str = "00081198";
pub const OTHER_FAILURES_SEQUENCE: &str = "0008119A";
pub const REFERENCED_SOP_CLASS: &str = "00081150";
pub const REFERENCED_SOP_INSTANCE: &str = "00081155";
pub const FAILURE_REASON: &str = "00081197";
pub const ERROR_COMMENT: &str = "00000902";

pub const CANNOT_UNDERSTAND: u64 = 0xC000;
pub const TRANSFER_SYNTAX_NOT_SUPPORTED: u64 = 0xC122;
pub const DUPLICATE_INSTANCE: u64 = 0x0111;
pub const STUDY_MISMATCH: u64 = 0xC409;
pub const DOES_NOT_MATCH_SOP_CLASS: u64 = 0xA900;

/// One item of the Referenced SOP Sequence.
#[derive(Debug)]
pub struct Stored {
    pub class: String,
    pub sop: String,
    pub url: String,
}

/// One item of the Failed SOP Sequence or the Other Failures Sequence.
#[derive(Debug)]
pub struct Failure {
    pub class: Option<String>,
    pub sop: Option<String>,
    pub reason: u64,
    pub comment: Option<String>,
}

/// The parsed body of a STOW-RS JSON response.
pub struct StoreResult {
    pub status: u16,
    pub json: Value,
}

/// The attribute `tag` of a DICOM JSON object, checking its VR.
fn attribute<'a>(object: &'a Value, tag: &str, vr: &str) -> Option<&'a Value> {
    let attribute = object.get(tag)?;
    assert_eq!(attribute["vr"], vr, "VR of {tag} in {object}");
    Some(attribute)
}

fn first_string(object: &Value, tag: &str, vr: &str) -> Option<String> {
    let value = &attribute(object, tag, vr)?["Value"][0];
    Some(
        value
            .as_str()
            .unwrap_or_else(|| panic!("{tag} is not a string: {value}"))
            .to_string(),
    )
}

impl StoreResult {
    pub fn parse(response: &Response) -> StoreResult {
        assert_eq!(
            response.media_type(),
            "application/dicom+json",
            "{}",
            response.text()
        );
        let json = response.json();
        assert!(
            json.is_object(),
            "the response is one DICOM JSON object: {json}"
        );
        for tag in [
            REFERENCED_SOP_SEQUENCE,
            FAILED_SOP_SEQUENCE,
            OTHER_FAILURES_SEQUENCE,
        ] {
            if let Some(sequence) = attribute(&json, tag, "SQ") {
                let items = sequence["Value"].as_array().map_or(0, Vec::len);
                assert!(items > 0, "empty sequence {tag} must be omitted: {json}");
            }
        }
        StoreResult {
            status: response.status,
            json,
        }
    }

    pub fn retrieve_url(&self) -> Option<String> {
        first_string(&self.json, RETRIEVE_URL, "UR")
    }

    fn items(&self, tag: &str) -> Vec<&Value> {
        attribute(&self.json, tag, "SQ")
            .and_then(|sequence| sequence["Value"].as_array())
            .map(|items| items.iter().collect())
            .unwrap_or_default()
    }

    pub fn stored(&self) -> Vec<Stored> {
        self.items(REFERENCED_SOP_SEQUENCE)
            .into_iter()
            .map(|item| Stored {
                class: first_string(item, REFERENCED_SOP_CLASS, "UI").expect("class UID"),
                sop: first_string(item, REFERENCED_SOP_INSTANCE, "UI").expect("instance UID"),
                url: first_string(item, RETRIEVE_URL, "UR").expect("instance RetrieveURL"),
            })
            .collect()
    }

    fn failures_in(&self, tag: &str) -> Vec<Failure> {
        let failures: Vec<Failure> = self
            .items(tag)
            .into_iter()
            .map(|item| Failure {
                class: first_string(item, REFERENCED_SOP_CLASS, "UI"),
                sop: first_string(item, REFERENCED_SOP_INSTANCE, "UI"),
                reason: attribute(item, FAILURE_REASON, "US")
                    .and_then(|reason| reason["Value"][0].as_u64())
                    .unwrap_or_else(|| panic!("FailureReason is a number in {item}")),
                comment: first_string(item, ERROR_COMMENT, "LO"),
            })
            .collect();
        for failure in &failures {
            let comment = failure.comment.as_deref().unwrap_or("");
            assert!(
                !comment.is_empty(),
                "failure without ErrorComment: {}",
                self.json
            );
        }
        failures
    }

    /// Items of the Failed SOP Sequence (failures tied to known SOP UIDs).
    pub fn failed(&self) -> Vec<Failure> {
        self.failures_in(FAILED_SOP_SEQUENCE)
    }

    /// Items of the Other Failures Sequence (failures with no known SOP UIDs).
    pub fn other_failures(&self) -> Vec<Failure> {
        self.failures_in(OTHER_FAILURES_SEQUENCE)
    }

    /// Every failure reason, from both sequences.
    pub fn all_reasons(&self) -> Vec<u64> {
        let mut reasons: Vec<u64> = self.failed().iter().map(|f| f.reason).collect();
        reasons.extend(self.other_failures().iter().map(|f| f.reason));
        reasons.sort_unstable();
        reasons
    }

    /// The Failed SOP item for `sop`, which must exist with `reason`.
    pub fn expect_failed(&self, sop: &str, reason: u64) {
        let failed = self.failed();
        let item = failed
            .iter()
            .find(|failure| failure.sop.as_deref() == Some(sop))
            .unwrap_or_else(|| panic!("no Failed SOP item for {sop}: {}", self.json));
        assert_eq!(
            item.reason, reason,
            "FailureReason for {sop}: {}",
            self.json
        );
        assert!(
            item.class.is_some(),
            "Failed SOP item without class UID: {}",
            self.json
        );
    }
}

/// The instance is in the Referenced SOP Sequence with its instance RetrieveURL, and its file
/// holds exactly the bytes sent.
pub fn expect_stored(server: &TestServer, result: &StoreResult, instance: &Instance) {
    let uids = &instance.uids;
    let stored = result.stored();
    let item = stored
        .iter()
        .find(|item| item.sop == uids.sop)
        .unwrap_or_else(|| {
            panic!(
                "{} not in the Referenced SOP Sequence: {}",
                uids.sop, result.json
            )
        });
    assert_eq!(item.class, uids.class);
    let expected_url = format!(
        "{}/studies/{}/series/{}/instances/{}",
        server.url_base(),
        uids.study,
        uids.series,
        uids.sop
    );
    assert_eq!(item.url, expected_url);
    let path = server.instance_path(&uids.study, &uids.series, &uids.sop);
    assert_stored_bytes(&path, &instance.bytes);
}
