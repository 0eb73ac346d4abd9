//! One STOW-RS request of the uploader over HTTP/1.1 (hyper's client on a tokio socket): the
//! target URL, the request with its streamed body ([`super::body`]), the response, and the
//! idle timeout that tells a slow transfer from a stalled one.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;

use super::body::{self, ChannelBody, Reading};
use super::scan::Candidate;

/// Largest response body read (a response for 10,000 instances is a few MiB).
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where STOW-RS requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port` for the Host header and the connection.
    pub authority: String,
    /// Request path, e.g. `/dicomweb/studies`.
    pub path: String,
}

impl Target {
    /// Parses the `--url` value: the server's DICOMweb root (`http://host:port/dicomweb`), or
    /// its STOW-RS endpoint itself (ending in `/studies` or `/studies/{StudyInstanceUID}`).
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = match url.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err(format!(
                    "--url {url:?}: https is not supported; use http:// (for a TLS server, \
                     through a local TLS-terminating proxy)"
                ))
            }
            _ => return Err(format!("--url {url:?} must start with http://")),
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') || path.contains(['?', '#']) {
            return Err(format!(
                "--url {url:?} must be http://HOST[:PORT][/PATH] (no credentials, query or fragment)"
            ));
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let path = path.trim_end_matches('/');
        let last = path.rsplit('/').next().unwrap_or_default();
        let before_last = path.rsplit('/').nth(1).unwrap_or_default();
        let path = if last == "studies" || before_last == "studies" {
            path.to_string()
        } else {
            format!("{path}/studies")
        };
        Ok(Target { authority, path })
    }
}

/// What a request brought back.
#[derive(Debug)]
pub enum Reply {
    /// The server answered.
    Response {
        status: StatusCode,
        body: Bytes,
        retry_after: Option<Duration>,
    },
    /// No answer: the connection failed, broke or stalled.
    Transport(String),
    /// A file could not be read or changed while it was sent; retrying will not help.
    File(String),
}

/// Everything one request needs besides its files.
pub struct RequestSpec<'a> {
    pub target: &'a Target,
    pub authorization: Option<&'a HeaderValue>,
    /// Longest time without sending a byte or receiving the response.
    pub idle_timeout: Duration,
    /// Incremented as file bytes are handed to a connection, by every request (progress).
    pub total_sent: &'a Arc<AtomicU64>,
}

/// Sends `files` as one STOW-RS request; also returns the file bytes it sent.
pub async fn send(spec: &RequestSpec<'_>, files: &[Candidate]) -> (Reply, u64) {
    let mut sent = 0;
    let reply = try_send(spec, files, &mut sent).await;
    (reply, sent)
}

async fn try_send(spec: &RequestSpec<'_>, files: &[Candidate], sent: &mut u64) -> Reply {
    let framing = body::Framing::new(files);
    let stream = match tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect(&spec.target.authority),
    )
    .await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            return Reply::Transport(format!(
                "cannot connect to {}: {error}",
                spec.target.authority
            ))
        }
        Err(_) => {
            return Reply::Transport(format!(
                "cannot connect to {}: no answer within {} s",
                spec.target.authority,
                CONNECT_TIMEOUT.as_secs()
            ))
        }
    };
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) =
        match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(error) => return Reply::Transport(format!("HTTP handshake failed: {error}")),
        };
    let driver = tokio::spawn(connection);

    let request = Request::builder()
        .method(Method::POST)
        .uri(spec.target.path.as_str())
        .header(HOST, spec.target.authority.as_str())
        .header(CONTENT_TYPE, framing.content_type())
        .header(ACCEPT, "application/dicom+json")
        .header(CONTENT_LENGTH, framing.length());
    let request = match spec.authorization {
        Some(value) => request.header(AUTHORIZATION, value.clone()),
        None => request,
    };
    let request = match request.body(()) {
        Ok(request) => request,
        Err(error) => return Reply::Transport(format!("cannot build the request: {error}")),
    };
    let (body, reading) = framing.start(spec.total_sent);
    let request = request.map(|()| body);

    let reply = exchange(&mut sender, request, spec.idle_timeout, &reading).await;
    *sent = reading.sent();
    drop(sender);
    driver.abort();
    match (reply, reading.stop()) {
        (Reply::Transport(_), Some(message)) => Reply::File(message),
        (reply, _) => reply,
    }
}

/// Sends the request and reads the response, giving up when nothing moves for the idle
/// timeout (neither body bytes sent nor a response received).
async fn exchange(
    sender: &mut hyper::client::conn::http1::SendRequest<ChannelBody>,
    request: Request<ChannelBody>,
    idle_timeout: Duration,
    reading: &Reading,
) -> Reply {
    let response = sender.send_request(request);
    tokio::pin!(response);
    let mut last_sent = reading.sent();
    let response = loop {
        match tokio::time::timeout(idle_timeout, &mut response).await {
            Ok(Ok(response)) => break response,
            Ok(Err(error)) => {
                return Reply::Transport(format!("request failed: {}", chain(&error)))
            }
            Err(_) => {
                let now = reading.sent();
                if now == last_sent {
                    return Reply::Transport(format!(
                        "no progress for {} s (nothing sent, no response)",
                        idle_timeout.as_secs()
                    ));
                }
                last_sent = now;
            }
        }
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(hyper::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let limited = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE);
    match tokio::time::timeout(idle_timeout, limited.collect()).await {
        Ok(Ok(body)) => Reply::Response {
            status,
            body: body.to_bytes(),
            retry_after,
        },
        Ok(Err(error)) => Reply::Transport(format!("reading the response failed: {error}")),
        Err(_) => Reply::Transport(format!(
            "the response body did not arrive within {} s",
            idle_timeout.as_secs()
        )),
    }
}

/// An error with its sources, e.g. `connection closed: broken pipe`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// `Authorization` value for HTTP basic authentication with `user:password`.
pub fn basic_authorization(credentials: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = credentials.as_bytes();
    let mut out = String::from("Basic ");
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(chunk.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(chunk.get(2).copied().unwrap_or(0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let root = Target::parse("http://127.0.0.1:5000/dicomweb").expect("valid");
        assert_eq!(root.authority, "127.0.0.1:5000");
        assert_eq!(root.path, "/dicomweb/studies");
        let endpoint = Target::parse("http://pacs/dicom-web/studies/").expect("valid");
        assert_eq!(endpoint.authority, "pacs:80");
        assert_eq!(endpoint.path, "/dicom-web/studies");
        let study = Target::parse("http://[::1]:8042/studies/1.2.3").expect("valid");
        assert_eq!(study.authority, "[::1]:8042");
        assert_eq!(study.path, "/studies/1.2.3");
        assert_eq!(
            Target::parse("http://host").expect("valid").path,
            "/studies"
        );
        assert!(Target::parse("https://host/dicomweb").is_err());
        assert!(Target::parse("ftp://host").is_err());
        assert!(Target::parse("http://user:pw@host/").is_err());
        assert!(Target::parse("http://host/x?y").is_err());
    }

    #[test]
    fn basic_credentials_are_base64() {
        assert_eq!(
            basic_authorization("alice:open sesame"),
            "Basic YWxpY2U6b3BlbiBzZXNhbWU="
        );
        assert_eq!(basic_authorization("a:b"), "Basic YTpi");
        assert_eq!(basic_authorization("ab:"), "Basic YWI6");
    }
}
