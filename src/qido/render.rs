//! QIDO-RS results as DICOM JSON (PS3.18 §10.6.3.3, Annex F): indexed values in their VR's
//! JSON form, the Retrieve URL of each match, and included fields from stored metadata.

use serde_json::{json, Map, Value};

use crate::index::attrs::{by_tag, tag_key, Attr, Level};
use crate::index::ResultRow;

/// The JSON values of an indexed attribute's stored string form.
fn values(attr: &Attr, text: &str) -> Vec<Value> {
    let parts: Vec<&str> = if matches!(attr.vr, "LT" | "ST" | "UT") {
        vec![text]
    } else {
        text.split('\\').collect()
    };
    parts
        .into_iter()
        .map(|part| match attr.vr {
            "PN" => json!({ "Alphabetic": part }),
            "IS" | "US" => part
                .trim()
                .parse::<i64>()
                .map_or_else(|_| json!(part), |n| json!(n)),
            _ => json!(part),
        })
        .collect()
}

/// The URL a match can be retrieved from.
pub fn retrieve_url(base: &str, level: Level, row: &ResultRow) -> String {
    let study = format!("{base}/studies/{}", row.study_uid);
    match (level, &row.series_uid, &row.sop_uid) {
        (Level::Study, _, _) => study,
        (Level::Series, Some(series), _) => format!("{study}/series/{series}"),
        (Level::Instance, Some(series), Some(sop)) => {
            format!("{study}/series/{series}/instances/{sop}")
        }
        _ => study,
    }
}

/// Which stored attributes a search adds to the indexed ones.
#[derive(Debug, Clone, Copy)]
pub enum Include<'a> {
    /// These tags.
    Tags(&'a [u32]),
    /// `includefield=all`: every attribute of the representative instance, except bulk and
    /// inline binary values and, above the instance level, the indexed attributes of the
    /// levels below (they would describe one instance, not the study or series).
    All,
}

/// Whether `key` (an attribute of the representative instance) is returned with `all`.
fn returned_with_all(level: Level, key: &str, element: &Value) -> bool {
    if element.get("BulkDataURI").is_some() || element.get("InlineBinary").is_some() {
        return false;
    }
    let Ok(tag) = u32::from_str_radix(key, 16) else {
        return false;
    };
    by_tag(tag).is_none_or(|attr| attr.level <= level)
}

/// One match as a DICOM JSON object. `sample` is the stored metadata of a representative
/// instance, consulted for included attributes the index does not hold.
pub fn render_row(
    base: &str,
    level: Level,
    row: &ResultRow,
    include: Include<'_>,
    sample: Option<&Map<String, Value>>,
) -> Value {
    let mut object = Map::new();
    for (attr, text) in &row.values {
        object.insert(
            tag_key(attr.tag),
            json!({ "vr": attr.vr, "Value": values(attr, text) }),
        );
    }
    object.insert(
        "00081190".into(),
        json!({ "vr": "UR", "Value": [retrieve_url(base, level, row)] }),
    );
    if let Some(sample) = sample {
        match include {
            Include::Tags(tags) => {
                for tag in tags {
                    let key = tag_key(*tag);
                    if object.contains_key(&key) {
                        continue;
                    }
                    if let Some(element) = sample.get(&key) {
                        object.insert(key, element.clone());
                    }
                }
            }
            Include::All => {
                for (key, element) in sample {
                    if !object.contains_key(key) && returned_with_all(level, key, element) {
                        object.insert(key.clone(), element.clone());
                    }
                }
            }
        }
    }
    // DICOM JSON objects list attributes in tag order.
    let mut sorted: Vec<(String, Value)> = object.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(sorted.into_iter().collect())
}
