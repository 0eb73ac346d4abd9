//! Reading `multipart/related` responses (RFC 2046 §5.1.1, RFC 2387) as WADO-RS sends them:
//! the boundary from the response's Content-Type, then each part's headers and exact bytes.

use memchr::memmem;

use super::http::Response;

/// One part of a multipart response.
#[derive(Debug)]
pub struct ReadPart {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ReadPart {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The part's Content-Type, as sent.
    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }
}

/// A parameter of a media type (`type`, `boundary`, `transfer-syntax`), quotes removed.
pub fn media_param(media_type: &str, name: &str) -> Option<String> {
    media_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"').to_string())
    })
}

/// The parts of a 200 `multipart/related` response whose `type` parameter is `payload`.
/// Panics with the response text when the framing is not what RFC 2046 requires.
pub fn parts(response: &Response, payload: &str) -> Vec<ReadPart> {
    assert_eq!(response.status, 200, "{}", response.text());
    let content_type = response.header("content-type").unwrap_or("");
    assert_eq!(response.media_type(), "multipart/related", "{content_type}");
    assert_eq!(
        media_param(content_type, "type").as_deref(),
        Some(payload),
        "{content_type}"
    );
    let boundary = media_param(content_type, "boundary")
        .unwrap_or_else(|| panic!("no boundary in {content_type:?}"));
    split(&response.body, &boundary)
}

/// Splits `body` on `--boundary` delimiters; a delimiter inside a part is preceded by CRLF.
pub fn split(body: &[u8], boundary: &str) -> Vec<ReadPart> {
    let dash_boundary = format!("--{boundary}");
    let delimiter = format!("\r\n--{boundary}");
    let first = memmem::find(body, dash_boundary.as_bytes()).expect("a first delimiter");
    assert!(
        first == 0 || body[..first].ends_with(b"\r\n"),
        "first delimiter not at a line start"
    );
    let mut at = first + dash_boundary.len();
    let mut parts = Vec::new();
    loop {
        if body[at..].starts_with(b"--") {
            return parts;
        }
        assert!(
            body[at..].starts_with(b"\r\n"),
            "delimiter of part {} not followed by CRLF",
            parts.len()
        );
        at += 2;
        let head_end = memmem::find(&body[at..], b"\r\n\r\n").map(|end| at + end);
        let (headers, body_start) = if body[at..].starts_with(b"\r\n") {
            (Vec::new(), at + 2)
        } else {
            let end = head_end.expect("part headers end with CRLF CRLF");
            let text = std::str::from_utf8(&body[at..end]).expect("part headers are UTF-8");
            let headers = text
                .split("\r\n")
                .map(|line| {
                    let (name, value) = line.split_once(':').expect("header has a colon");
                    (name.trim().to_string(), value.trim().to_string())
                })
                .collect();
            (headers, end + 4)
        };
        let body_end = memmem::find(&body[body_start..], delimiter.as_bytes())
            .map(|end| body_start + end)
            .unwrap_or_else(|| panic!("part {} has no closing delimiter", parts.len()));
        parts.push(ReadPart {
            headers,
            body: body[body_start..body_end].to_vec(),
        });
        at = body_end + delimiter.len();
    }
}
