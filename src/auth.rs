//! Access control for exposed deployments: optional bearer tokens (full or read-only) and
//! HTTP basic credentials, compared in constant time, plus the query length limit. 401 when
//! credentials are missing or wrong, 403 when a read-only token tries to store (PS3.18 §8.8.3
//! leaves authentication to HTTP, RFC 9110 §11).

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::{AuthScope, Config};
use crate::refusal::refuse;

/// Realm named in `WWW-Authenticate` challenges.
const REALM: &str = "dicomweb";

/// What a presented credential allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Full,
    Read,
}

/// The credentials the server accepts, loaded once at startup.
#[derive(Debug, Default)]
pub struct Credentials {
    full_token: Option<Vec<u8>>,
    read_token: Option<Vec<u8>>,
    /// `user:password`.
    basic: Option<Vec<u8>>,
    scope: Option<AuthScope>,
}

fn read_secret(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("{what} {}: {error}", path.display()))?;
    let secret = text.trim_end_matches(['\r', '\n']).as_bytes().to_vec();
    if secret.is_empty() {
        return Err(format!("{what} {} is empty", path.display()));
    }
    Ok(secret)
}

impl Credentials {
    /// Loads the configured secrets; none configured means no authentication.
    pub fn load(config: &Config) -> Result<Credentials, String> {
        let full_token = config
            .auth_token_file
            .as_deref()
            .map(|path| read_secret(path, "--auth-token-file"))
            .transpose()?;
        let read_token = config
            .auth_read_token_file
            .as_deref()
            .map(|path| read_secret(path, "--auth-read-token-file"))
            .transpose()?;
        let basic = config
            .auth_basic_file
            .as_deref()
            .map(|path| read_secret(path, "--auth-basic-file"))
            .transpose()?;
        if let Some(pair) = &basic {
            if !pair.contains(&b':') {
                return Err("--auth-basic-file must hold user:password".into());
            }
        }
        let any = full_token.is_some() || read_token.is_some() || basic.is_some();
        Ok(Credentials {
            full_token,
            read_token,
            basic,
            scope: any.then_some(config.auth_scope),
        })
    }

    fn check(&self, authorization: Option<&[u8]>) -> Option<Access> {
        let value = authorization?;
        if let Some(token) = strip_scheme(value, b"bearer") {
            if self.full_token.as_deref().is_some_and(|t| same(t, token)) {
                return Some(Access::Full);
            }
            if self.read_token.as_deref().is_some_and(|t| same(t, token)) {
                return Some(Access::Read);
            }
            return None;
        }
        if let Some(encoded) = strip_scheme(value, b"basic") {
            let decoded = decode_base64(encoded)?;
            if self
                .basic
                .as_deref()
                .is_some_and(|pair| same(pair, &decoded))
            {
                return Some(Access::Full);
            }
        }
        None
    }

    fn challenge(&self) -> Vec<HeaderValue> {
        let mut challenges = Vec::new();
        if self.full_token.is_some() || self.read_token.is_some() {
            challenges.push(format!("Bearer realm=\"{REALM}\""));
        }
        if self.basic.is_some() {
            challenges.push(format!("Basic realm=\"{REALM}\", charset=\"UTF-8\""));
        }
        challenges
            .into_iter()
            .filter_map(|challenge| HeaderValue::from_str(&challenge).ok())
            .collect()
    }
}

/// The credential after `scheme ` (case-insensitive scheme), if the value uses that scheme.
fn strip_scheme<'a>(value: &'a [u8], scheme: &[u8]) -> Option<&'a [u8]> {
    let (name, rest) = value.split_at_checked(scheme.len())?;
    if !name.eq_ignore_ascii_case(scheme) || rest.first() != Some(&b' ') {
        return None;
    }
    Some(rest[1..].trim_ascii())
}

/// Compares secrets in time that depends only on their lengths.
fn same(expected: &[u8], given: &[u8]) -> bool {
    if expected.len() != given.len() {
        return false;
    }
    expected
        .iter()
        .zip(given)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}

/// Standard base64 (RFC 4648) with padding; `None` if malformed.
fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    if text.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for quad in text.chunks(4) {
        let padding = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if padding > 2 {
            return None;
        }
        let mut bits = 0u32;
        for &c in &quad[..4 - padding] {
            bits = (bits << 6) | value(c)?;
        }
        bits <<= 6 * padding as u32;
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - padding]);
    }
    Some(out)
}

/// What the guard middleware checks.
#[derive(Debug)]
pub struct Guard {
    pub credentials: Credentials,
    pub max_query_bytes: usize,
}

/// The middleware: query length, then credentials where the scope requires them.
pub async fn guard(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let query_len = request.uri().query().map_or(0, str::len);
    if query_len > guard.max_query_bytes {
        return refuse(
            StatusCode::URI_TOO_LONG,
            format!(
                "the query string is {query_len} bytes, more than the limit of {}",
                guard.max_query_bytes
            ),
        )
        .into_response();
    }
    let credentials = &guard.credentials;
    let Some(scope) = credentials.scope else {
        return next.run(request).await;
    };
    // Probes of orchestrators carry no credentials; health says nothing about the data.
    if request.uri().path().contains("/health/") {
        return next.run(request).await;
    }
    let stores = request.method() == Method::POST;
    if scope == AuthScope::Stow && !stores {
        return next.run(request).await;
    }
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match credentials.check(authorization) {
        Some(Access::Full) => next.run(request).await,
        Some(Access::Read) if !stores => next.run(request).await,
        Some(Access::Read) => refuse(
            StatusCode::FORBIDDEN,
            "this credential may search and retrieve, not store",
        )
        .into_response(),
        None => {
            let mut response =
                refuse(StatusCode::UNAUTHORIZED, "valid credentials are required").into_response();
            for challenge in credentials.challenge() {
                response
                    .headers_mut()
                    .append(header::WWW_AUTHENTICATE, challenge);
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> Credentials {
        Credentials {
            full_token: Some(b"full-secret".to_vec()),
            read_token: Some(b"read-secret".to_vec()),
            basic: Some(b"alice:open sesame".to_vec()),
            scope: Some(AuthScope::All),
        }
    }

    #[test]
    fn credentials_grant_their_access() {
        let c = credentials();
        assert_eq!(c.check(Some(b"Bearer full-secret")), Some(Access::Full));
        assert_eq!(c.check(Some(b"bearer read-secret")), Some(Access::Read));
        // "alice:open sesame" in base64.
        assert_eq!(
            c.check(Some(b"Basic YWxpY2U6b3BlbiBzZXNhbWU=")),
            Some(Access::Full)
        );
        for wrong in [
            &b"Bearer full-secre"[..],
            b"Bearer full-secretX",
            b"Bearerfull-secret",
            b"Basic YWxpY2U6d3Jvbmc=",
            b"Basic !!!!",
            b"Digest x",
            b"",
        ] {
            assert_eq!(
                c.check(Some(wrong)),
                None,
                "{:?}",
                String::from_utf8_lossy(wrong)
            );
        }
        assert_eq!(c.check(None), None);
    }

    #[test]
    fn base64_decodes_with_padding() {
        assert_eq!(decode_base64(b"TWFu").as_deref(), Some(&b"Man"[..]));
        assert_eq!(decode_base64(b"TWE=").as_deref(), Some(&b"Ma"[..]));
        assert_eq!(decode_base64(b"TQ==").as_deref(), Some(&b"M"[..]));
        assert_eq!(decode_base64(b"TQ="), None);
        assert_eq!(decode_base64(b"T===").as_deref(), None);
    }
}
