//! The Store Instances Response Module (PS3.18 Annex I, Table I.1-1), encoded as DICOM JSON
//! (PS3.18 Annex F) or as the Native DICOM Model XML (PS3.19 Annex A).

use serde_json::{json, Map, Value};

use super::outcome::{Failure, PartOutcome, Stored};

// The attributes of the module as DICOM JSON keys (the uploader reads them too).
const RETRIEVE_URL: &str = "00081190";
pub const FAILED_SOP_SEQUENCE: &str = "00081198";
pub const REFERENCED_SOP_SEQUENCE: &str = "00081199";
pub const OTHER_FAILURES_SEQUENCE: &str = "0008119A";
const REFERENCED_SOP_CLASS_UID: &str = "00081150";
pub const REFERENCED_SOP_INSTANCE_UID: &str = "00081155";
pub const FAILURE_REASON: &str = "00081197";
/// Warning Reason: this server never sends one, other servers may.
pub const WARNING_REASON: &str = "00081196";
pub const ERROR_COMMENT: &str = "00000902";

/// Error Comment is LO: at most 64 characters.
const MAX_ERROR_COMMENT: usize = 64;

/// One attribute of the response, independent of the encoding.
enum Attr {
    Text {
        tag: &'static str,
        vr: &'static str,
        keyword: &'static str,
        value: String,
    },
    Number {
        tag: &'static str,
        keyword: &'static str,
        value: u16,
    },
    Sequence {
        tag: &'static str,
        keyword: &'static str,
        items: Vec<Vec<Attr>>,
    },
}

/// Builds the response for `outcomes`; URLs start with `base` (`http://host/prefix`).
pub struct StoreResponse {
    attrs: Vec<Attr>,
}

impl StoreResponse {
    pub fn new(base: &str, outcomes: &[PartOutcome]) -> StoreResponse {
        let stored: Vec<&Stored> = outcomes
            .iter()
            .filter_map(|o| match o {
                PartOutcome::Stored(s) => Some(s),
                PartOutcome::Failed(_) => None,
            })
            .collect();
        let failures = outcomes.iter().filter_map(|o| match o {
            PartOutcome::Failed(f) => Some(f),
            PartOutcome::Stored(_) => None,
        });
        let (failed, other): (Vec<&Failure>, Vec<&Failure>) =
            failures.partition(|f| f.sop_class.is_some() && f.sop_instance.is_some());

        let mut attrs = Vec::new();
        if let Some(first) = stored.first() {
            if stored.iter().all(|s| s.study == first.study) {
                attrs.push(text(
                    RETRIEVE_URL,
                    "UR",
                    "RetrieveURL",
                    format!("{base}/studies/{}", first.study),
                ));
            }
        }
        if !failed.is_empty() {
            attrs.push(Attr::Sequence {
                tag: FAILED_SOP_SEQUENCE,
                keyword: "FailedSOPSequence",
                items: failed.iter().map(|f| failure_item(f)).collect(),
            });
        }
        if !stored.is_empty() {
            attrs.push(Attr::Sequence {
                tag: REFERENCED_SOP_SEQUENCE,
                keyword: "ReferencedSOPSequence",
                items: stored.iter().map(|s| stored_item(base, s)).collect(),
            });
        }
        if !other.is_empty() {
            attrs.push(Attr::Sequence {
                tag: OTHER_FAILURES_SEQUENCE,
                keyword: "OtherFailuresSequence",
                items: other.iter().map(|f| failure_item(f)).collect(),
            });
        }
        StoreResponse { attrs }
    }

    /// `application/dicom+json`.
    pub fn to_json(&self) -> String {
        Value::Object(json_object(&self.attrs)).to_string()
    }

    /// `application/dicom+xml`.
    pub fn to_xml(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str(
            "<NativeDicomModel xmlns=\"http://dicom.nema.org/PS3.19/models/NativeDICOM\">",
        );
        xml_attrs(&self.attrs, &mut out);
        out.push_str("</NativeDicomModel>\n");
        out
    }
}

fn text(tag: &'static str, vr: &'static str, keyword: &'static str, value: String) -> Attr {
    Attr::Text {
        tag,
        vr,
        keyword,
        value,
    }
}

fn stored_item(base: &str, stored: &Stored) -> Vec<Attr> {
    vec![
        text(
            REFERENCED_SOP_CLASS_UID,
            "UI",
            "ReferencedSOPClassUID",
            stored.sop_class.clone(),
        ),
        text(
            REFERENCED_SOP_INSTANCE_UID,
            "UI",
            "ReferencedSOPInstanceUID",
            stored.sop_instance.clone(),
        ),
        text(
            RETRIEVE_URL,
            "UR",
            "RetrieveURL",
            format!(
                "{base}/studies/{}/series/{}/instances/{}",
                stored.study, stored.series, stored.sop_instance
            ),
        ),
    ]
}

fn failure_item(failure: &Failure) -> Vec<Attr> {
    let mut item = Vec::new();
    if let (Some(class), Some(instance)) = (&failure.sop_class, &failure.sop_instance) {
        item.push(text(
            REFERENCED_SOP_CLASS_UID,
            "UI",
            "ReferencedSOPClassUID",
            class.clone(),
        ));
        item.push(text(
            REFERENCED_SOP_INSTANCE_UID,
            "UI",
            "ReferencedSOPInstanceUID",
            instance.clone(),
        ));
    }
    item.push(Attr::Number {
        tag: FAILURE_REASON,
        keyword: "FailureReason",
        value: failure.reason,
    });
    item.push(text(
        ERROR_COMMENT,
        "LO",
        "ErrorComment",
        truncate_comment(&failure.comment),
    ));
    item
}

/// Error Comment is LO (64 characters, no backslash or control characters).
fn truncate_comment(comment: &str) -> String {
    comment
        .chars()
        .map(|c| if c == '\\' || c.is_control() { ' ' } else { c })
        .take(MAX_ERROR_COMMENT)
        .collect()
}

fn json_object(attrs: &[Attr]) -> Map<String, Value> {
    let mut object = Map::new();
    for attr in attrs {
        let (tag, value) = match attr {
            Attr::Text { tag, vr, value, .. } => (tag, json!({ "vr": vr, "Value": [value] })),
            Attr::Number { tag, value, .. } => (tag, json!({ "vr": "US", "Value": [value] })),
            Attr::Sequence { tag, items, .. } => {
                let items: Vec<Value> = items
                    .iter()
                    .map(|item| Value::Object(json_object(item)))
                    .collect();
                (tag, json!({ "vr": "SQ", "Value": items }))
            }
        };
        object.insert((*tag).to_string(), value);
    }
    object
}

fn xml_attrs(attrs: &[Attr], out: &mut String) {
    for attr in attrs {
        match attr {
            Attr::Text {
                tag,
                vr,
                keyword,
                value,
            } => {
                out.push_str(&format!(
                    "<DicomAttribute tag=\"{tag}\" vr=\"{vr}\" keyword=\"{keyword}\"><Value number=\"1\">{}</Value></DicomAttribute>",
                    xml_escape(value)
                ));
            }
            Attr::Number {
                tag,
                keyword,
                value,
            } => {
                out.push_str(&format!(
                    "<DicomAttribute tag=\"{tag}\" vr=\"US\" keyword=\"{keyword}\"><Value number=\"1\">{value}</Value></DicomAttribute>"
                ));
            }
            Attr::Sequence {
                tag,
                keyword,
                items,
            } => {
                out.push_str(&format!(
                    "<DicomAttribute tag=\"{tag}\" vr=\"SQ\" keyword=\"{keyword}\">"
                ));
                for (number, item) in items.iter().enumerate() {
                    out.push_str(&format!("<Item number=\"{}\">", number + 1));
                    xml_attrs(item, out);
                    out.push_str("</Item>");
                }
                out.push_str("</DicomAttribute>");
            }
        }
    }
}

fn xml_escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            other => escaped.push(other),
        }
    }
    escaped
}
