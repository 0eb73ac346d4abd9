//! One STOW-RS request of the uploader: a `multipart/related; type="application/dicom"` body
//! streamed from the files of a batch in fixed-size chunks (never a whole file in memory),
//! sent over HTTP/1.1 with an exact Content-Length.

use std::io::{self, Read};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

use super::scan::Candidate;

/// Bytes read from a file per body chunk.
const CHUNK: usize = 256 * 1024;

/// Chunks queued between the file reader and the socket.
const QUEUED_CHUNKS: usize = 4;

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
    pub authorization: Option<&'a str>,
    /// Longest time without sending a byte or receiving the response.
    pub idle_timeout: Duration,
    /// Incremented as file bytes are handed to the connection.
    pub sent: &'a Arc<AtomicU64>,
}

/// Sends `files` as one STOW-RS request.
pub async fn send(spec: &RequestSpec<'_>, files: &[Candidate]) -> Reply {
    let boundary = boundary();
    let headers: Vec<Vec<u8>> = files
        .iter()
        .map(|file| {
            format!(
                "--{boundary}\r\nContent-Type: application/dicom\r\nContent-Length: {}\r\n\r\n",
                file.size
            )
            .into_bytes()
        })
        .collect();
    let closing = format!("--{boundary}--\r\n").into_bytes();
    let length = files
        .iter()
        .zip(&headers)
        .map(|(file, header)| header.len() as u64 + file.size + 2)
        .sum::<u64>()
        + closing.len() as u64;

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

    let (tx, rx) = mpsc::channel(QUEUED_CHUNKS);
    let file_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let reader = {
        let files = files.to_vec();
        let sent = Arc::clone(spec.sent);
        let file_error = Arc::clone(&file_error);
        tokio::task::spawn_blocking(move || {
            if let Err(Stop::File(message)) = produce(&files, headers, closing, &tx, &sent) {
                if let Ok(mut slot) = file_error.lock() {
                    *slot = Some(message.clone());
                }
                let _ = tx.blocking_send(Err(io::Error::other(message)));
            }
        })
    };

    let mut request = Request::builder()
        .method(Method::POST)
        .uri(spec.target.path.as_str())
        .header(HOST, spec.target.authority.as_str())
        .header(
            CONTENT_TYPE,
            format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"),
        )
        .header(ACCEPT, "application/dicom+json")
        .header(CONTENT_LENGTH, length);
    if let Some(value) = spec.authorization {
        match HeaderValue::from_str(value) {
            Ok(value) => request = request.header(AUTHORIZATION, value),
            Err(_) => {
                return Reply::File(
                    "the credentials contain characters not allowed in an HTTP header".into(),
                )
            }
        }
    }
    let request = match request.body(ChannelBody {
        rx,
        remaining: length,
    }) {
        Ok(request) => request,
        Err(error) => return Reply::Transport(format!("cannot build the request: {error}")),
    };

    let reply = exchange(&mut sender, request, spec).await;
    drop(sender);
    driver.abort();
    reader.abort();
    let file_error = file_error.lock().ok().and_then(|mut slot| slot.take());
    match (reply, file_error) {
        (Reply::Transport(_), Some(message)) => Reply::File(message),
        (reply, _) => reply,
    }
}

/// Sends the request and reads the response, giving up when nothing moves for the idle
/// timeout (neither body bytes sent nor a response received).
async fn exchange(
    sender: &mut hyper::client::conn::http1::SendRequest<ChannelBody>,
    request: Request<ChannelBody>,
    spec: &RequestSpec<'_>,
) -> Reply {
    let response = sender.send_request(request);
    tokio::pin!(response);
    let mut last_sent = spec.sent.load(Ordering::Relaxed);
    let response = loop {
        match tokio::time::timeout(spec.idle_timeout, &mut response).await {
            Ok(Ok(response)) => break response,
            Ok(Err(error)) => {
                return Reply::Transport(format!("request failed: {}", chain(&error)))
            }
            Err(_) => {
                let now = spec.sent.load(Ordering::Relaxed);
                if now == last_sent {
                    return Reply::Transport(format!(
                        "no progress for {} s (nothing sent, no response)",
                        spec.idle_timeout.as_secs()
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
    match tokio::time::timeout(spec.idle_timeout, limited.collect()).await {
        Ok(Ok(body)) => Reply::Response {
            status,
            body: body.to_bytes(),
            retry_after,
        },
        Ok(Err(error)) => Reply::Transport(format!("reading the response failed: {error}")),
        Err(_) => Reply::Transport(format!(
            "the response body did not arrive within {} s",
            spec.idle_timeout.as_secs()
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

/// Why the file reader stopped early.
enum Stop {
    /// The request ended (the channel closed); the request's own error says why.
    Closed,
    /// A file could not be read, or changed.
    File(String),
}

/// Reads the batch's files into the body channel (on a blocking thread). Each file must still
/// have the size it had when it was scanned: a file that changed is an error, never a part
/// with other bytes than announced.
fn produce(
    files: &[Candidate],
    headers: Vec<Vec<u8>>,
    closing: Vec<u8>,
    tx: &mpsc::Sender<io::Result<Bytes>>,
    sent: &AtomicU64,
) -> Result<(), Stop> {
    // Only file bytes are counted, so progress adds up to the files' sizes.
    let push = |chunk: Bytes, content: bool| -> Result<(), Stop> {
        let len = chunk.len() as u64;
        tx.blocking_send(Ok(chunk)).map_err(|_| Stop::Closed)?;
        if content {
            sent.fetch_add(len, Ordering::Relaxed);
        }
        Ok(())
    };
    let pool = ChunkPool::new();
    for (file, header) in files.iter().zip(headers) {
        push(Bytes::from(header), false)?;
        let mut reader = std::fs::File::open(&file.path)
            .map_err(|error| Stop::File(format!("cannot open {}: {error}", file.path.display())))?;
        let mut left = file.size;
        while left > 0 {
            let mut chunk = pool.take((left.min(CHUNK as u64)) as usize);
            let mut filled = 0;
            while filled < chunk.len() {
                match reader.read(&mut chunk[filled..]) {
                    Ok(0) => {
                        return Err(Stop::File(format!(
                            "{} shrank while it was being sent",
                            file.path.display()
                        )))
                    }
                    Ok(n) => filled += n,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => {
                        return Err(Stop::File(format!(
                            "cannot read {}: {error}",
                            file.path.display()
                        )))
                    }
                }
            }
            left -= chunk.len() as u64;
            push(pool.bytes(chunk), true)?;
        }
        let mut probe = [0u8; 1];
        if matches!(reader.read(&mut probe), Ok(n) if n > 0) {
            return Err(Stop::File(format!(
                "{} grew while it was being sent",
                file.path.display()
            )));
        }
        push(Bytes::from_static(b"\r\n"), false)?;
    }
    push(Bytes::from(closing), false)
}

/// Chunk buffers that come back once the connection has written them, so that a request
/// reuses a few buffers instead of allocating (and faulting in) fresh memory for every chunk.
struct ChunkPool {
    home: std::sync::mpsc::SyncSender<Vec<u8>>,
    returned: std::sync::mpsc::Receiver<Vec<u8>>,
}

/// A pooled buffer inside a [`Bytes`]: dropping the last `Bytes` sends it back.
struct Pooled {
    data: Vec<u8>,
    home: std::sync::mpsc::SyncSender<Vec<u8>>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        // A full pool (or one whose request ended) lets the buffer go.
        let _ = self.home.try_send(std::mem::take(&mut self.data));
    }
}

impl ChunkPool {
    fn new() -> ChunkPool {
        // Enough for the queued chunks and those the connection is writing.
        let (home, returned) = std::sync::mpsc::sync_channel(QUEUED_CHUNKS + 4);
        ChunkPool { home, returned }
    }

    /// A buffer of `len` bytes (at most [`CHUNK`]): a returned one if there is one.
    fn take(&self, len: usize) -> Vec<u8> {
        let mut buffer = self
            .returned
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        // Only a buffer that grows is written to here; reused ones keep their bytes until
        // the file's bytes overwrite them.
        buffer.resize(len, 0);
        buffer
    }

    /// `buffer` as a chunk that comes back to this pool when the connection is done with it.
    fn bytes(&self, buffer: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled {
            data: buffer,
            home: self.home.clone(),
        })
    }
}

/// A boundary that does not occur in DICOM data by chance: a fixed prefix and 128 bits from
/// the clock, the process id and a counter, mixed.
fn boundary() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seed = nanos
        ^ (u128::from(std::process::id()) << 64)
        ^ u128::from(COUNTER.fetch_add(1, Ordering::Relaxed)) << 96;
    let mixed = seed.wrapping_mul(0x2545_f491_4f6c_dd1d_9e37_79b9_7f4a_7c15);
    format!("dicomwebserver-stow-{mixed:032x}")
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

/// The request body: chunks from the file reader, with the exact length announced.
pub struct ChannelBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    remaining: u64,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error))),
            Poll::Ready(None) if self.remaining > 0 => {
                Poll::Ready(Some(Err(io::Error::other("the request body ended early"))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
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

    /// Runs the file reader over one file announced with `size` bytes.
    fn produce_one(content: &[u8], size: u64) -> (Result<(), Stop>, Vec<u8>, u64) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("file");
        std::fs::write(&path, content).expect("write");
        let (tx, mut rx) = mpsc::channel(64);
        let sent = AtomicU64::new(0);
        let files = [Candidate { path, size }];
        let result = produce(&files, vec![b"H".to_vec()], b"C".to_vec(), &tx, &sent);
        drop(tx);
        let mut body = Vec::new();
        while let Ok(chunk) = rx.try_recv() {
            match chunk {
                Ok(bytes) => body.extend_from_slice(&bytes),
                Err(_) => body.extend_from_slice(b"<error>"),
            }
        }
        (result, body, sent.load(Ordering::Relaxed))
    }

    #[test]
    fn the_body_frames_each_file_and_counts_file_bytes_only() {
        let content = vec![7u8; CHUNK + 10];
        let (result, body, sent) = produce_one(&content, content.len() as u64);
        assert!(result.is_ok());
        let mut expected = b"H".to_vec();
        expected.extend_from_slice(&content);
        expected.extend_from_slice(b"\r\nC");
        assert_eq!(body, expected);
        assert_eq!(sent, content.len() as u64);
    }

    #[test]
    fn a_file_that_changed_since_the_scan_is_an_error() {
        let (result, _, _) = produce_one(b"0123456789", 20);
        assert!(
            matches!(result, Err(Stop::File(m)) if m.ends_with("shrank while it was being sent"))
        );
        let (result, _, _) = produce_one(b"0123456789", 5);
        assert!(
            matches!(result, Err(Stop::File(m)) if m.ends_with("grew while it was being sent"))
        );
    }

    #[test]
    fn boundaries_differ() {
        assert_ne!(boundary(), boundary());
    }
}
