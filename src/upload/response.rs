//! Reading a server's Store Instances Response (PS3.18 Annex I, DICOM JSON) into one outcome
//! per uploaded file.

use std::collections::HashMap;

use hyper::StatusCode;
use serde_json::Value;

use crate::stow::outcome::reason::DUPLICATE_SOP_INSTANCE;
use crate::stow::response::{
    ERROR_COMMENT, FAILED_SOP_SEQUENCE, FAILURE_REASON, OTHER_FAILURES_SEQUENCE,
    REFERENCED_SOP_INSTANCE_UID, REFERENCED_SOP_SEQUENCE, WARNING_REASON,
};

/// What the server said about one instance or about the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub code: Option<u16>,
    pub comment: Option<String>,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code {
            Some(code) => write!(f, "{code:#06X} {}", reason_name(code))?,
            None => write!(f, "no reason given")?,
        }
        match &self.comment {
            Some(comment) => write!(f, ": {comment}"),
            None => Ok(()),
        }
    }
}

/// Names of the Failure and Warning Reasons of PS3.18 Table I.2-1/2 and PS3.7 Annex C.
pub fn reason_name(code: u16) -> &'static str {
    match code {
        0x0110 => "processing failure",
        0x0111 => "duplicate SOP instance (other content already stored)",
        0x0117 => "invalid object instance",
        0x0122 => "SOP class not supported",
        0x0124 => "not authorized",
        0xA700..=0xA7FF => "out of resources",
        0xA900..=0xA9FF => "data set does not match SOP class",
        0xB000 => "coercion of data elements",
        0xB006 => "elements discarded",
        0xB007 => "data set does not match SOP class (warning)",
        0xC122 => "transfer syntax not supported",
        0xC000..=0xCFFF => "cannot understand",
        _ => "unknown reason",
    }
}

/// The parts of a Store Instances Response the uploader uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StoreResponse {
    /// Stored instances by SOP Instance UID, with their warning if any.
    pub stored: HashMap<String, Option<Reason>>,
    /// Failed instances by SOP Instance UID.
    pub failed: HashMap<String, Reason>,
    /// Failures not tied to an instance (Other Failures Sequence, or failed items without a
    /// UID).
    pub other: Vec<Reason>,
}

impl StoreResponse {
    /// Parses a DICOM JSON response body; `None` if it is not one.
    pub fn parse(body: &[u8]) -> Option<StoreResponse> {
        let root: Value = serde_json::from_slice(body).ok()?;
        let root = root.as_object()?;
        let mut response = StoreResponse::default();
        for item in items(root.get(REFERENCED_SOP_SEQUENCE)) {
            if let Some(uid) = text(item, REFERENCED_SOP_INSTANCE_UID) {
                let warning = number(item, WARNING_REASON).map(|code| Reason {
                    code: Some(code),
                    comment: text(item, ERROR_COMMENT),
                });
                response.stored.insert(uid, warning);
            }
        }
        for item in items(root.get(FAILED_SOP_SEQUENCE)) {
            let reason = Reason {
                code: number(item, FAILURE_REASON),
                comment: text(item, ERROR_COMMENT),
            };
            match text(item, REFERENCED_SOP_INSTANCE_UID) {
                Some(uid) => {
                    response.failed.insert(uid, reason);
                }
                None => response.other.push(reason),
            }
        }
        for item in items(root.get(OTHER_FAILURES_SEQUENCE)) {
            response.other.push(Reason {
                code: number(item, FAILURE_REASON),
                comment: text(item, ERROR_COMMENT),
            });
        }
        Some(response)
    }
}

/// The items of a sequence attribute (none when absent or empty).
fn items(attribute: Option<&Value>) -> impl Iterator<Item = &serde_json::Map<String, Value>> {
    attribute
        .and_then(|a| a.get("Value"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

fn first<'a>(item: &'a serde_json::Map<String, Value>, tag: &str) -> Option<&'a Value> {
    item.get(tag)?.get("Value")?.as_array()?.first()
}

fn text(item: &serde_json::Map<String, Value>, tag: &str) -> Option<String> {
    let value = first(item, tag)?.as_str()?.trim();
    (!value.is_empty()).then(|| value.to_string())
}

fn number(item: &serde_json::Map<String, Value>, tag: &str) -> Option<u16> {
    let value = first(item, tag)?;
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
        .and_then(|n| u16::try_from(n).ok())
}

/// What became of one uploaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    /// Stored, with the server's warning if it gave one.
    Stored(Option<Reason>),
    /// The server already holds other content under this SOP Instance UID.
    Conflict(Reason),
    /// Not stored.
    Failed(String),
}

/// The outcome of each file of a request that got an HTTP answer, in order. `uids` are the
/// files' SOP Instance UIDs from their meta groups.
pub fn outcomes(status: StatusCode, body: &[u8], uids: &[Option<String>]) -> Vec<FileOutcome> {
    let parsed = StoreResponse::parse(body);
    let understood = parsed.is_some();
    let http = || {
        let reason = status.canonical_reason().unwrap_or("");
        let text = String::from_utf8_lossy(&body[..body.len().min(200)])
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let hint = match status.as_u16() {
            413 => "; the file alone is larger than the server accepts in one request",
            401 => "; give credentials with --token-file or --basic-auth-file",
            403 => "; the credentials do not allow storing",
            _ => "",
        };
        if understood || text.is_empty() {
            format!("HTTP {} {reason}{hint}", status.as_u16())
        } else {
            format!("HTTP {} {reason}{hint}: {text}", status.as_u16())
        }
    };
    let Some(parsed) = parsed else {
        return uids
            .iter()
            .map(|_| {
                if status == StatusCode::OK {
                    FileOutcome::Stored(None)
                } else {
                    FileOutcome::Failed(http())
                }
            })
            .collect();
    };
    let mut unclaimed_other = parsed.other.iter();
    uids.iter()
        .map(|uid| {
            let stored = uid.as_ref().and_then(|uid| parsed.stored.get(uid));
            let failed = uid.as_ref().and_then(|uid| parsed.failed.get(uid));
            match (stored, failed) {
                (_, Some(reason)) if reason.code == Some(DUPLICATE_SOP_INSTANCE) => {
                    FileOutcome::Conflict(reason.clone())
                }
                (_, Some(reason)) => FileOutcome::Failed(reason.to_string()),
                (Some(warning), None) => FileOutcome::Stored(warning.clone()),
                (None, None) if status == StatusCode::OK => FileOutcome::Stored(None),
                (None, None) => match unclaimed_other.next() {
                    Some(reason) => FileOutcome::Failed(reason.to_string()),
                    None if status.is_success() => {
                        FileOutcome::Failed(format!("not in the server's response ({})", http()))
                    }
                    None => FileOutcome::Failed(http()),
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{
        "00081199": {"vr": "SQ", "Value": [
            {"00081155": {"vr": "UI", "Value": ["1.1"]}},
            {"00081155": {"vr": "UI", "Value": ["1.2"]}, "00081196": {"vr": "US", "Value": [45056]}}
        ]},
        "00081198": {"vr": "SQ", "Value": [
            {"00081155": {"vr": "UI", "Value": ["1.3"]}, "00081197": {"vr": "US", "Value": [273]}},
            {"00081155": {"vr": "UI", "Value": ["1.4"]}, "00081197": {"vr": "US", "Value": [49152]},
             "00000902": {"vr": "LO", "Value": ["truncated"]}}
        ]},
        "0008119A": {"vr": "SQ", "Value": [{"00081197": {"vr": "US", "Value": [49152]}}]}
    }"#;

    #[test]
    fn maps_each_file_to_its_item() {
        let uids = ["1.1", "1.2", "1.3", "1.4", "1.5"].map(|u| Some(u.to_string()));
        let got = outcomes(StatusCode::ACCEPTED, BODY.as_bytes(), &uids);
        assert_eq!(got[0], FileOutcome::Stored(None));
        assert!(matches!(&got[1], FileOutcome::Stored(Some(w)) if w.code == Some(0xB000)));
        assert!(matches!(&got[2], FileOutcome::Conflict(r) if r.code == Some(0x0111)));
        assert_eq!(
            got[3],
            FileOutcome::Failed("0xC000 cannot understand: truncated".into())
        );
        // Not named: the one Other Failures item is the best explanation there is.
        assert_eq!(
            got[4],
            FileOutcome::Failed("0xC000 cannot understand".into())
        );
    }

    #[test]
    fn answers_without_a_response_body() {
        let uids = [Some("1.1".to_string()), None];
        assert_eq!(
            outcomes(StatusCode::OK, b"", &uids),
            vec![FileOutcome::Stored(None), FileOutcome::Stored(None)]
        );
        let refused = outcomes(StatusCode::PAYLOAD_TOO_LARGE, b"too big", &uids);
        assert!(
            matches!(&refused[0], FileOutcome::Failed(text) if text.starts_with("HTTP 413 Payload Too Large; ") && text.ends_with(": too big")),
            "{refused:?}"
        );
    }

    #[test]
    fn an_empty_response_with_a_failure_status_fails_every_file() {
        let body = r#"{"00081198": {"vr": "SQ"}, "00081199": {"vr": "SQ"}}"#;
        let got = outcomes(
            StatusCode::BAD_REQUEST,
            body.as_bytes(),
            &[Some("1.1".into())],
        );
        assert_eq!(
            got,
            vec![FileOutcome::Failed("HTTP 400 Bad Request".into())]
        );
    }
}
