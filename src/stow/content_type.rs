//! Parsing of `Content-Type` and `Accept` values (RFC 9110 §8.3, RFC 2387): case-insensitive
//! media types and parameter names, quoted or bare parameter values.

/// A media type with its parameters; type and parameter names are lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    pub essence: String,
    pub params: Vec<(String, String)>,
}

impl MediaType {
    /// Parses `type/subtype; name=value; name="quoted value"`. Returns `None` when there is no
    /// `type/subtype`.
    pub fn parse(value: &str) -> Option<MediaType> {
        let mut rest = value;
        let essence_end = rest.find(';').unwrap_or(rest.len());
        let essence = rest[..essence_end].trim().to_ascii_lowercase();
        if !essence.contains('/') {
            return None;
        }
        rest = &rest[essence_end..];
        let mut params = Vec::new();
        while let Some(after_semicolon) = rest.strip_prefix(';') {
            rest = after_semicolon.trim_start();
            let name_end = rest.find(['=', ';']).unwrap_or(rest.len());
            let name = rest[..name_end].trim().to_ascii_lowercase();
            rest = &rest[name_end..];
            let value = if let Some(after_eq) = rest.strip_prefix('=') {
                let (value, after) = parse_value(after_eq.trim_start());
                rest = after.trim_start();
                // Skip anything up to the next parameter (malformed trailing text).
                let skip = rest.find(';').unwrap_or(rest.len());
                rest = &rest[skip..];
                value
            } else {
                String::new()
            };
            if !name.is_empty() {
                params.push((name, value));
            }
        }
        Some(MediaType { essence, params })
    }

    /// The value of parameter `name` (lower-case), if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A quoted string (with `\` escapes) or a token up to `;`; returns the value and the rest.
fn parse_value(input: &str) -> (String, &str) {
    if let Some(quoted) = input.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '"' => return (value, &quoted[i + 1..]),
                other => value.push(other),
            }
        }
        return (value, "");
    }
    let end = input.find(';').unwrap_or(input.len());
    (input[..end].trim().to_string(), &input[end..])
}

/// Media types listed in an `Accept` header, in order (quality values are ignored).
pub fn accepted(value: &str) -> Vec<MediaType> {
    split_list(value)
        .into_iter()
        .filter_map(MediaType::parse)
        .collect()
}

/// Splits a comma-separated header list, keeping commas inside quoted strings.
fn split_list(value: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => {
                items.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&value[start..]);
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_variants_real_clients_send() {
        let check = |header: &str, boundary: &str| {
            let media = MediaType::parse(header).expect(header);
            assert_eq!(media.essence, "multipart/related", "{header}");
            assert_eq!(media.param("type"), Some("application/dicom"), "{header}");
            assert_eq!(media.param("boundary"), Some(boundary), "{header}");
        };
        check(
            r#"multipart/related; type="application/dicom"; boundary="abc""#,
            "abc",
        );
        check(
            "multipart/related; type=application/dicom; boundary=myboundary",
            "myboundary",
        );
        check(
            "Multipart/Related;Type=\"application/dicom\";BOUNDARY=--x-y",
            "--x-y",
        );
        check(
            r#"multipart/related; boundary="a;b c"; type="application/dicom""#,
            "a;b c",
        );
    }

    #[test]
    fn rejects_values_without_a_subtype() {
        assert_eq!(MediaType::parse("garbage"), None);
        assert_eq!(MediaType::parse(""), None);
    }

    #[test]
    fn accept_lists_keep_order() {
        let list = accepted(r#"application/dicom+xml, application/dicom+json;q=0.5, */*"#);
        let essences: Vec<_> = list.iter().map(|m| m.essence.as_str()).collect();
        assert_eq!(
            essences,
            ["application/dicom+xml", "application/dicom+json", "*/*"]
        );
    }
}
