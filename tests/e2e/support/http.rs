//! A tiny HTTP/1.1 client over a real TCP socket, so the tests control every byte on the wire:
//! body framing (Content-Length or chunked with chosen chunk sizes), `Expect: 100-continue`,
//! and truncated bodies. Responses are read with Content-Length, chunked, or read-to-close.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One parsed HTTP response (interim 1xx responses are recorded separately).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Status codes of the interim (1xx) responses that preceded this one.
    pub interim: Vec<u16>,
}

impl Response {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The media type of the response, lowercased, without parameters.
    pub fn media_type(&self) -> String {
        let value = self.header("content-type").unwrap_or("");
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("response body is not JSON ({error}): {}", self.text()))
    }
}

/// An open connection on which a request is written piece by piece.
pub struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> Connection {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to the server");
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        Connection {
            reader: BufReader::new(stream),
        }
    }

    /// The client's side of the connection (how the server's `/status` names the client).
    pub fn local_addr(&self) -> SocketAddr {
        self.reader.get_ref().local_addr().expect("local address")
    }

    /// Writes the request line and headers (plus `Host` and `Connection: close`).
    pub async fn write_head(&mut self, method: &str, path: &str, headers: &[(&str, &str)]) {
        let addr = self.reader.get_ref().peer_addr().expect("peer address");
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("host"))
        {
            head.push_str(&format!("Host: {addr}\r\n"));
        }
        head.push_str("Connection: close\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.write(head.as_bytes()).await;
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        self.reader
            .get_mut()
            .write_all(bytes)
            .await
            .expect("write to the server");
    }

    /// Writes, tolerating a server that already answered and closed (e.g. 415 before the body).
    pub async fn write_lenient(&mut self, bytes: &[u8]) {
        let _ = self.reader.get_mut().write_all(bytes).await;
    }

    /// Writes one chunk of a chunked body (a zero-length slice is skipped, not the terminator).
    pub async fn write_chunk(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut frame = format!("{:x}\r\n", bytes.len()).into_bytes();
        frame.extend_from_slice(bytes);
        frame.extend_from_slice(b"\r\n");
        self.write(&frame).await;
    }

    pub async fn finish_chunks(&mut self) {
        self.write(b"0\r\n\r\n").await;
    }

    /// Drops the connection with a reset (RST, `SO_LINGER` 0) instead of an orderly close.
    pub fn reset(self) {
        let _ = self.reader.get_ref().set_zero_linger();
    }

    /// Closes the write half: the server sees end of stream.
    pub async fn shutdown_write(&mut self) {
        let _ = self.reader.get_mut().shutdown().await;
    }

    /// Reads one response head: status and headers.
    async fn read_head(&mut self) -> Option<(u16, Vec<(String, String)>)> {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            match self.reader.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ if head.is_empty() => return None,
                _ => panic!("connection ended inside a response head: {head:?}"),
            }
        }
        let text = String::from_utf8(head).expect("response head is UTF-8");
        let mut lines = text.split("\r\n");
        let status_line = lines.next().expect("status line");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers = lines
            .filter(|line| !line.is_empty())
            .map(|line| {
                let (name, value) = line.split_once(':').expect("header has a colon");
                (name.trim().to_string(), value.trim().to_string())
            })
            .collect();
        Some((status, headers))
    }

    /// Reads an interim response that must arrive before the body is sent.
    pub async fn read_interim(&mut self) -> u16 {
        let (status, _) = self.read_head().await.expect("an interim response");
        status
    }

    /// Reads the final response, skipping (and recording) interim 1xx responses.
    pub async fn read_response(mut self) -> Response {
        self.try_read_response().await.expect("the server answered")
    }

    /// Like [`Connection::read_response`], but `None` when the server closed without answering.
    pub async fn try_read_response(&mut self) -> Option<Response> {
        let mut interim = Vec::new();
        let (status, headers) = loop {
            let (status, headers) = self.read_head().await?;
            if (100..200).contains(&status) {
                interim.push(status);
                continue;
            }
            break (status, headers);
        };
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
            interim,
        };
        let chunked = response
            .header("transfer-encoding")
            .is_some_and(|value| value.to_ascii_lowercase().contains("chunked"));
        if chunked {
            response.body = self.read_chunked_body().await;
        } else if let Some(length) = response.header("content-length") {
            let length: usize = length.parse().expect("numeric Content-Length");
            let mut body = vec![0u8; length];
            self.reader
                .read_exact(&mut body)
                .await
                .expect("read response body");
            response.body = body;
        } else {
            self.reader
                .read_to_end(&mut response.body)
                .await
                .expect("read response body");
        }
        Some(response)
    }

    async fn read_line(&mut self) -> String {
        let mut line = Vec::new();
        while !line.ends_with(b"\r\n") {
            line.push(self.reader.read_u8().await.expect("read chunk framing"));
        }
        line.truncate(line.len() - 2);
        String::from_utf8(line).expect("chunk framing is UTF-8")
    }

    async fn read_chunked_body(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let size_line = self.read_line().await;
            let size_text = size_line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16).expect("hex chunk size");
            if size == 0 {
                while !self.read_line().await.is_empty() {}
                return body;
            }
            let start = body.len();
            body.resize(start + size, 0);
            self.reader
                .read_exact(&mut body[start..])
                .await
                .expect("read chunk");
            assert!(
                self.read_line().await.is_empty(),
                "chunk not followed by CRLF"
            );
        }
    }
}

/// GET without a body.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut connection = Connection::open(addr).await;
    connection.write_head("GET", path, headers).await;
    connection.read_response().await
}

/// POST with a Content-Length body.
pub async fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut connection = Connection::open(addr).await;
    let length = body.len().to_string();
    let mut all_headers = headers.to_vec();
    all_headers.push(("Content-Length", &length));
    connection.write_head("POST", path, &all_headers).await;
    connection.write_lenient(body).await;
    connection.read_response().await
}

/// POST with a chunked body, cutting it into chunks whose sizes cycle through `chunk_sizes`.
pub async fn post_chunked(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    chunk_sizes: &[usize],
) -> Response {
    let mut connection = Connection::open(addr).await;
    let mut all_headers = headers.to_vec();
    all_headers.push(("Transfer-Encoding", "chunked"));
    connection.write_head("POST", path, &all_headers).await;
    let mut rest = body;
    for size in chunk_sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at((*size).clamp(1, rest.len()));
        connection.write_chunk(chunk).await;
        rest = tail;
    }
    connection.finish_chunks().await;
    connection.read_response().await
}
