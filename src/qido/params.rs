//! QIDO-RS query parameters (PS3.18 §8.3.4): matching keys, `includefield`, `fuzzymatching`,
//! `limit` and `offset`, parsed into an [`index::Query`](crate::index::Query).

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_dictionary_std::StandardDataDictionary;

use crate::index::attrs::{by_tag, Attr, Level};
use crate::index::{Matcher, Query, QueryKey};

/// Results returned when the client gives no `limit` (and the most it may ask for).
pub const MAX_LIMIT: usize = 1000;

/// A parsed search: the index query, the extra attributes to return, and warnings for the
/// `Warning` header.
#[derive(Debug)]
pub struct Search {
    pub query: Query,
    /// Tags asked for with `includefield` beyond the indexed ones.
    pub include: Vec<u32>,
    /// `includefield=all`: every attribute of a representative instance (see
    /// [`super::render::render_row`]).
    pub include_all: bool,
    pub warnings: Vec<String>,
}

/// A query parameter that cannot be honoured: the message for the 400 response.
#[derive(Debug, PartialEq, Eq)]
pub struct BadQuery(pub String);

/// The tag named by a keyword or an 8-digit hex tag.
fn resolve_tag(name: &str) -> Option<u32> {
    if name.len() == 8 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return u32::from_str_radix(name, 16).ok();
    }
    let entry = StandardDataDictionary.by_name(name)?;
    let tag = entry.tag();
    Some((u32::from(tag.group()) << 16) | u32::from(tag.element()))
}

fn parse_number(name: &str, value: &str) -> Result<usize, BadQuery> {
    value.parse::<usize>().map_err(|_| {
        BadQuery(format!(
            "{name} must be a non-negative integer, got {value:?}"
        ))
    })
}

fn parse_bool(name: &str, value: &str) -> Result<bool, BadQuery> {
    match value.to_ascii_lowercase().as_str() {
        "" | "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(BadQuery(format!(
            "{name} must be true or false, got {value:?}"
        ))),
    }
}

fn is_date(value: &str) -> bool {
    value.len() == 8 && value.bytes().all(|b| b.is_ascii_digit())
}

fn is_time(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 16
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b':')
        && value.as_bytes()[0].is_ascii_digit()
}

/// The matcher for `value` of `attr` (PS3.4 C.2.2.2).
fn matcher(attr: &Attr, value: &str) -> Result<Matcher, BadQuery> {
    let bad = |why: &str| BadQuery(format!("{}={value:?}: {why}", attr.keyword));
    if value.is_empty() {
        return Ok(Matcher::Universal);
    }
    match attr.vr {
        "UI" => {
            let uids: Vec<String> = value
                .split([',', '\\'])
                .map(str::trim)
                .filter(|uid| !uid.is_empty())
                .map(str::to_string)
                .collect();
            if uids.iter().any(|uid| uid.contains(['*', '?'])) {
                return Err(bad("wildcards are not allowed in UIDs"));
            }
            Ok(if uids.len() == 1 {
                Matcher::Single(uids.into_iter().next().unwrap_or_default())
            } else {
                Matcher::List(uids)
            })
        }
        "DA" | "TM" => {
            let valid = if attr.vr == "DA" { is_date } else { is_time };
            if let Some((from, to)) = value.split_once('-') {
                let (from, to) = (from.trim(), to.trim());
                if (from.is_empty() && to.is_empty())
                    || (!from.is_empty() && !valid(from))
                    || (!to.is_empty() && !valid(to))
                {
                    return Err(bad("not a valid range"));
                }
                return Ok(Matcher::Range {
                    from: (!from.is_empty()).then(|| from.to_string()),
                    to: (!to.is_empty()).then(|| to.to_string()),
                });
            }
            if !valid(value) {
                return Err(bad(if attr.vr == "DA" {
                    "not a date (YYYYMMDD)"
                } else {
                    "not a time (HHMMSS.FFFFFF)"
                }));
            }
            Ok(Matcher::Single(value.to_string()))
        }
        _ if value.contains(['*', '?']) => {
            if value.bytes().all(|b| b == b'*') {
                Ok(Matcher::Universal)
            } else {
                Ok(Matcher::Wildcard(value.to_string()))
            }
        }
        _ => Ok(Matcher::Single(value.to_string())),
    }
}

/// Parses the query parameters of a search at `level`.
pub fn parse(level: Level, pairs: &[(String, String)]) -> Result<Search, BadQuery> {
    let mut query = Query {
        level,
        study_uid: None,
        series_uid: None,
        keys: Vec::new(),
        fuzzy: false,
        limit: MAX_LIMIT,
        offset: 0,
    };
    let mut include = Vec::new();
    let mut include_all = false;
    let mut warnings = Vec::new();
    for (name, value) in pairs {
        match name.as_str() {
            "limit" => {
                let limit = parse_number(name, value)?;
                if limit > MAX_LIMIT {
                    warnings.push(format!(
                        "limit {limit} is above the maximum; at most {MAX_LIMIT} results are returned"
                    ));
                }
                query.limit = limit.min(MAX_LIMIT);
            }
            "offset" => query.offset = parse_number(name, value)?,
            "fuzzymatching" => query.fuzzy = parse_bool(name, value)?,
            "includefield" => {
                for field in value.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                    if field == "all" {
                        include_all = true;
                        continue;
                    }
                    let tag = resolve_tag(field).ok_or_else(|| {
                        BadQuery(format!("includefield: unknown attribute {field:?}"))
                    })?;
                    include.push(tag);
                }
            }
            _ => {
                if name.contains('.') {
                    return Err(BadQuery(format!(
                        "{name}: sequence attribute paths are not supported as query keys"
                    )));
                }
                let tag = resolve_tag(name)
                    .ok_or_else(|| BadQuery(format!("unknown query parameter {name:?}")))?;
                let Some(attr) = by_tag(tag) else {
                    warnings.push(format!(
                        "{name} is not supported as a matching key and was ignored"
                    ));
                    continue;
                };
                if attr.level > level {
                    return Err(BadQuery(format!(
                        "{} is a {:?}-level attribute: it cannot be matched in a {:?}-level search",
                        attr.keyword, attr.level, level
                    )));
                }
                query.keys.push(QueryKey {
                    attr,
                    matcher: matcher(attr, value)?,
                });
            }
        }
    }
    Ok(Search {
        query,
        include,
        include_all,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn key(search: &Search, keyword: &str) -> Matcher {
        search
            .query
            .keys
            .iter()
            .find(|k| k.attr.keyword == keyword)
            .map(|k| k.matcher.clone())
            .unwrap_or_else(|| panic!("no key {keyword}"))
    }

    #[test]
    fn ohif_study_search_parses() {
        let search = parse(
            Level::Study,
            &pairs(&[
                ("PatientName", "*doe*"),
                ("PatientID", ""),
                ("StudyDate", "20200101-20201231"),
                ("ModalitiesInStudy", "CT"),
                ("StudyInstanceUID", "1.2.3\\1.2.4"),
                ("limit", "101"),
                ("offset", "0"),
                ("fuzzymatching", "true"),
                ("includefield", "00081030,00080060"),
            ]),
        )
        .expect("valid");
        assert_eq!(
            key(&search, "PatientName"),
            Matcher::Wildcard("*doe*".into())
        );
        assert_eq!(key(&search, "PatientID"), Matcher::Universal);
        assert_eq!(
            key(&search, "StudyDate"),
            Matcher::Range {
                from: Some("20200101".into()),
                to: Some("20201231".into())
            }
        );
        assert_eq!(
            key(&search, "StudyInstanceUID"),
            Matcher::List(vec!["1.2.3".into(), "1.2.4".into()])
        );
        assert_eq!(search.query.limit, 101);
        assert!(search.query.fuzzy);
        assert_eq!(search.include, vec![0x0008_1030, 0x0008_0060]);
    }

    #[test]
    fn tags_work_as_keys_and_open_ranges_parse() {
        let search = parse(
            Level::Series,
            &pairs(&[("00080060", "MR"), ("00080021", "-20200101")]),
        )
        .expect("valid");
        assert_eq!(key(&search, "Modality"), Matcher::Single("MR".into()));
        assert_eq!(
            key(&search, "SeriesDate"),
            Matcher::Range {
                from: None,
                to: Some("20200101".into())
            }
        );
    }

    #[test]
    fn invalid_queries_are_refused_with_a_reason() {
        for bad in [
            vec![("StudyDate", "2020")],
            vec![("StudyDate", "-")],
            vec![("limit", "-1")],
            vec![("NoSuchKeyword", "x")],
            vec![("StudyInstanceUID", "1.2.*")],
            vec![("SOPInstanceUID", "1.2.3")],
            vec![("fuzzymatching", "maybe")],
            vec![("includefield", "Bogus")],
        ] {
            assert!(parse(Level::Study, &pairs(&bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unindexed_keys_are_ignored_with_a_warning() {
        let search = parse(Level::Study, &pairs(&[("InstitutionName", "X")])).expect("valid");
        assert!(search.query.keys.is_empty());
        assert_eq!(search.warnings.len(), 1);
    }
}
