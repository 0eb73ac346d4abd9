//! QIDO-RS results as DICOM JSON (PS3.18 §10.6.3.3, Annex F): indexed values in their VR's
//! JSON form, the Retrieve URL of each match, and included fields from stored metadata.

use serde_json::{json, Map, Value};

use crate::index::attrs::{tag_key, Attr, Level};
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

/// One match as a DICOM JSON object. `sample` is the stored metadata of a representative
/// instance, consulted for `include` tags the index does not hold.
pub fn render_row(
    base: &str,
    level: Level,
    row: &ResultRow,
    include: &[u32],
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
        for tag in include {
            let key = tag_key(*tag);
            if object.contains_key(&key) {
                continue;
            }
            if let Some(element) = sample.get(&key) {
                object.insert(key, element.clone());
            }
        }
    }
    // DICOM JSON objects list attributes in tag order.
    let mut sorted: Vec<(String, Value)> = object.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(sorted.into_iter().collect())
}
