//! The server the STOW target posts to: `server::run` on 127.0.0.1:0 with a temporary storage
//! root, started once per fuzzing process on its own tokio runtime, and a blocking HTTP/1.1
//! client (one connection per request, `Connection: close`).
//!
//! A panic anywhere in the server (handler, part task, writer) aborts the process through
//! libFuzzer's panic hook, so it is reported as a crash with the input that caused it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use dicomwebserver::Config;

/// How long one request may take before the target reports a hang. Generous: a watchdog
/// against a stuck upload, not a performance bound; below the -timeout run.sh gives
/// libFuzzer, so a hang is reported with this message.
const REQUEST_WATCHDOG: Duration = Duration::from_secs(45);

/// The running server.
pub struct FuzzServer {
    pub addr: SocketAddr,
    /// Storage root: `<tempdir>/root`.
    pub root: PathBuf,
    /// The configured route prefix, e.g. `/dicomweb`.
    pub prefix: String,
    /// Keeps the storage alive for the process's life (libFuzzer exits without dropping it;
    /// `fuzz/run.sh` points TMPDIR at a directory it removes afterwards).
    _tempdir: tempfile::TempDir,
}

/// The process's server, started on first use.
pub fn server() -> &'static FuzzServer {
    static SERVER: OnceLock<FuzzServer> = OnceLock::new();
    SERVER.get_or_init(start)
}

fn start() -> FuzzServer {
    ignore_sigpipe();
    let tempdir = tempfile::tempdir().expect("create a temporary directory");
    let root = tempdir.path().join("root");
    std::fs::create_dir(&root).expect("create the storage root");
    let config = Config::with_dir(&root)
        .validate()
        .expect("a valid default configuration");
    let prefix = config.server_path.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener for tokio");
    let addr = listener.local_addr().expect("listener address");
    std::thread::Builder::new()
        .name("fuzz-server".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("register the listener");
                dicomwebserver::server::run(listener, config, std::future::pending())
                    .await
                    .expect("the server runs until the process exits");
            });
        })
        .expect("spawn the server thread");
    FuzzServer {
        addr,
        root,
        prefix,
        _tempdir: tempdir,
    }
}

/// libFuzzer's `main` is not Rust's, so SIGPIPE keeps its default action (death): a write
/// to a connection the peer closed must fail with EPIPE instead, as in the real binary.
fn ignore_sigpipe() {
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code; it runs
    // once, before the server's threads start.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// One HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// POSTs `body` with a Content-Length and reads the whole response.
pub fn post(server: &FuzzServer, path: &str, content_type: &str, body: &[u8]) -> Response {
    let mut stream = TcpStream::connect(server.addr).expect("connect to the server");
    stream
        .set_read_timeout(Some(REQUEST_WATCHDOG))
        .expect("set a read timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        server.addr,
        body.len()
    );
    // The server may answer and close before reading the whole body; the answer still counts.
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body));
    let mut raw = Vec::new();
    if let Err(error) = stream.read_to_end(&mut raw) {
        assert!(
            raw.windows(4).any(|w| w == b"\r\n\r\n"),
            "no response within {REQUEST_WATCHDOG:?} ({error}); got {:?}",
            String::from_utf8_lossy(&raw)
        );
    }
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "the server closed the connection without a complete response: {:?}",
                String::from_utf8_lossy(raw)
            )
        });
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect();
    let rest = &raw[head_end + 4..];
    let chunked = headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Response {
        status,
        headers,
        body,
    }
}

/// Decodes a chunked body (the response is read to the close, so it is all there).
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size line");
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
        rest = &rest[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Every regular file below `dir` (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}
