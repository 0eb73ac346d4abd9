//! Where an instance's frames and bulk values sit in its stored file, recorded at ingest so a
//! frame or bulk data retrieve is a seek, not a parse. Stored in the index as JSON.

use serde_json::{json, Map, Value};

use crate::dicom::json::{Frames, InstanceJson};

/// The layout of `instance` as JSON for the index.
pub fn layout_json(instance: &InstanceJson) -> String {
    let frames = match &instance.frames {
        None => Value::Null,
        Some(Frames::Native {
            offset,
            frame_length,
            count,
        }) => {
            json!({ "native": { "offset": offset, "frameLength": frame_length, "count": count } })
        }
        Some(Frames::Encapsulated {
            fragments,
            basic_offset_table,
        }) => json!({ "encapsulated": {
            "fragments": fragments.iter().map(|(o, l)| json!([o, l])).collect::<Vec<_>>(),
            "basicOffsetTable": basic_offset_table,
        } }),
    };
    let mut bulk = Map::new();
    for value in &instance.bulk {
        bulk.insert(
            value.path.clone(),
            json!({ "vr": value.vr.to_string(), "offset": value.offset, "length": value.length }),
        );
    }
    json!({
        "deflated": instance.deflated,
        "bigEndian": instance.big_endian,
        "frames": frames,
        "bulk": bulk,
    })
    .to_string()
}

/// A stored layout, read back for a retrieve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Positions count inflated bytes: the file must be inflated to reach them.
    pub deflated: bool,
    pub big_endian: bool,
    pub frames: Option<FrameLayout>,
    /// Bulk values by path: (VR, offset, length).
    pub bulk: Vec<(String, String, u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameLayout {
    Native {
        offset: u64,
        frame_length: u64,
        count: u64,
    },
    Encapsulated {
        fragments: Vec<(u64, u64)>,
        basic_offset_table: Vec<u64>,
    },
}

impl Layout {
    /// Reads a layout written by [`layout_json`]; `None` if it is not one.
    pub fn parse(text: &str) -> Option<Layout> {
        let value: Value = serde_json::from_str(text).ok()?;
        let frames = match value.get("frames") {
            Some(Value::Object(frames)) => {
                if let Some(native) = frames.get("native") {
                    Some(FrameLayout::Native {
                        offset: native.get("offset")?.as_u64()?,
                        frame_length: native.get("frameLength")?.as_u64()?,
                        count: native.get("count")?.as_u64()?,
                    })
                } else {
                    let encapsulated = frames.get("encapsulated")?;
                    let fragments = encapsulated
                        .get("fragments")?
                        .as_array()?
                        .iter()
                        .map(|pair| Some((pair.get(0)?.as_u64()?, pair.get(1)?.as_u64()?)))
                        .collect::<Option<Vec<_>>>()?;
                    let basic_offset_table = encapsulated
                        .get("basicOffsetTable")?
                        .as_array()?
                        .iter()
                        .map(Value::as_u64)
                        .collect::<Option<Vec<_>>>()?;
                    Some(FrameLayout::Encapsulated {
                        fragments,
                        basic_offset_table,
                    })
                }
            }
            _ => None,
        };
        let bulk = value
            .get("bulk")?
            .as_object()?
            .iter()
            .filter_map(|(path, entry)| {
                Some((
                    path.clone(),
                    entry.get("vr")?.as_str()?.to_string(),
                    entry.get("offset")?.as_u64()?,
                    entry.get("length")?.as_u64()?,
                ))
            })
            .collect();
        Some(Layout {
            deflated: value.get("deflated")?.as_bool()?,
            big_endian: value.get("bigEndian")?.as_bool()?,
            frames,
            bulk,
        })
    }
}
