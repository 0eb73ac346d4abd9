//! [`InstanceRecord`]: one instance as the index stores it, built from its DICOM JSON.

use serde_json::{Map, Value};

use super::attrs::{tag_key, Attr, ATTRS};
use super::layout::layout_json;
use crate::dicom::json::InstanceJson;
use crate::dicom::InstanceMeta;

/// One instance for the index: indexed attribute values, where its file is, and the JSON the
/// metadata routes serve.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRecord {
    pub study_uid: String,
    pub series_uid: String,
    pub sop_uid: String,
    pub sop_class_uid: String,
    pub transfer_syntax: String,
    /// Path relative to the storage root.
    pub path: String,
    pub size: u64,
    /// Indexed attribute values in DICOM string form (PN: the alphabetic group), by tag.
    pub values: Vec<(u32, String)>,
    /// The instance's DICOM JSON object (with bulk data markers).
    pub metadata_json: String,
    /// Where frames and bulk values sit in the file (JSON), for WADO-RS.
    pub layout_json: String,
}

impl InstanceRecord {
    /// The record of an instance read and validated (its UIDs present), stored at `path`
    /// (relative to the storage root) with `size` bytes.
    pub fn new(
        meta: &InstanceMeta,
        instance: InstanceJson,
        path: String,
        size: u64,
    ) -> InstanceRecord {
        InstanceRecord {
            study_uid: meta.study.clone().unwrap_or_default(),
            series_uid: meta.series.clone().unwrap_or_default(),
            sop_uid: meta.sop_instance.clone().unwrap_or_default(),
            sop_class_uid: meta.sop_class.clone().unwrap_or_default(),
            transfer_syntax: meta.transfer_syntax.clone().unwrap_or_default(),
            path,
            size,
            values: indexed_values(&instance.dataset),
            layout_json: layout_json(&instance),
            metadata_json: Value::Object(instance.dataset).to_string(),
        }
    }

    /// The value of an indexed attribute, if the instance has one.
    pub fn value(&self, attr: &Attr) -> Option<&str> {
        self.values
            .iter()
            .find(|(tag, _)| *tag == attr.tag)
            .map(|(_, value)| value.as_str())
    }
}

/// Indexed attribute values read from a DICOM JSON object (PS3.18 F.2): multiple values joined
/// with `\`, person names as their alphabetic group, numbers in decimal.
pub fn indexed_values(dataset: &Map<String, Value>) -> Vec<(u32, String)> {
    ATTRS
        .iter()
        .filter(|attr| !attr.computed)
        .filter_map(|attr| {
            let element = dataset.get(&tag_key(attr.tag))?;
            let values = element.get("Value")?.as_array()?;
            let texts: Vec<String> = values.iter().filter_map(value_text).collect();
            (!texts.is_empty()).then(|| (attr.tag, texts.join("\\")))
        })
        .collect()
}

fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Object(name) => name
            .get("Alphabetic")
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_come_from_dicom_json() {
        let dataset = json!({
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane", "Ideographic": "X"}]},
            "00080060": {"vr": "CS", "Value": ["CT"]},
            "00200013": {"vr": "IS", "Value": [7]},
            "00080061": {"vr": "CS", "Value": ["CT", "MR"]},
            "00081030": {"vr": "LO"}
        });
        let Value::Object(map) = dataset else {
            unreachable!("a JSON object literal")
        };
        let values = indexed_values(&map);
        assert!(values.contains(&(0x0010_0010, "Doe^Jane".into())));
        assert!(values.contains(&(0x0008_0060, "CT".into())));
        assert!(values.contains(&(0x0020_0013, "7".into())));
        // Computed attributes come from the index, not from the instance.
        assert!(!values.iter().any(|(tag, _)| *tag == 0x0008_0061));
        // An empty value is no value.
        assert!(!values.iter().any(|(tag, _)| *tag == 0x0008_1030));
    }
}
