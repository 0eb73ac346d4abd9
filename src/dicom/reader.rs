//! The async driver: runs the [`Tokenizer`] over a part's [`TrackableReadBuffer`], feeds the
//! listeners, and tees the raw bytes to the [`Part10Writer`]. Its only waits are
//! `ensure_available(n)` (bytes from the client) and the writer's bounded queue (the disk).
//!
//! Deflated data sets (PS3.5 A.5) are inflated on the fly for the tokenizer while the
//! compressed bytes go to disk unchanged.

use std::io;

use bytes::{Buf, Bytes};
use flate2::{Decompress, FlushDecompress, Status};

use super::listener::{Listener, Rejection, TokenContext};
use super::tokenizer::{Step, Token, TokenError, Tokenizer};
use super::writer::Part10Writer;
use crate::stream::{StreamError, TrackableReadBuffer};

/// Inflated bytes produced per step: bounds the memory a deflated part can take.
const INFLATE_STEP: usize = 64 * 1024;

/// Options of one part read.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// Deepest sequence nesting accepted.
    pub max_depth: usize,
    /// Consumed bytes that trigger a batch to the writer even when no wait is due.
    pub flush_bytes: usize,
}

/// Why a part could not be read to its end.
#[derive(Debug)]
pub enum ReadError {
    /// The bytes are not a readable Part 10 instance.
    Token(TokenError),
    /// A listener refused the instance.
    Rejected(Rejection),
    /// The part's stream was aborted (truncated body, client gone).
    Stream(StreamError),
    /// Writing the file failed.
    Write(io::Error),
    /// The deflated data set is corrupt.
    Inflate(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Token(error) => error.fmt(f),
            ReadError::Rejected(rejection) => f.write_str(&rejection.comment),
            ReadError::Stream(error) => error.fmt(f),
            ReadError::Write(error) => write!(f, "cannot write the instance: {error}"),
            ReadError::Inflate(message) => write!(f, "corrupt deflated data set: {message}"),
        }
    }
}

impl From<TokenError> for ReadError {
    fn from(error: TokenError) -> Self {
        ReadError::Token(error)
    }
}

impl From<Rejection> for ReadError {
    fn from(rejection: Rejection) -> Self {
        ReadError::Rejected(rejection)
    }
}

/// One part read: the buffer it comes from, where its bytes go, and who listens.
struct Driver<'a, 'l> {
    buffer: &'a TrackableReadBuffer,
    /// Where the raw bytes go; `None` drops them (reading files already stored).
    writer: Option<&'a mut Part10Writer>,
    listeners: &'a mut [&'l mut dyn Listener],
    options: ReadOptions,
}

impl Driver<'_, '_> {
    /// Hands consumed bytes to the writer when there are enough of them, or always when
    /// `waiting` (so the writer works while the reader waits, and the buffer has room).
    async fn flush(&mut self, waiting: bool) -> Result<(), ReadError> {
        let backlog = self.buffer.consumed_len();
        if backlog > 0 && (waiting || backlog >= self.options.flush_bytes) {
            let batch = self.buffer.take_consumed();
            if let Some(writer) = self.writer.as_deref_mut() {
                writer.write(batch).await.map_err(ReadError::Write)?;
            }
        }
        Ok(())
    }

    /// A view of at least `n` unconsumed raw bytes (fewer only at the end of the stream), and
    /// whether the stream ends after it.
    async fn raw_window(&mut self, n: usize) -> Result<(Bytes, bool), ReadError> {
        if let Some(window) = self.buffer.front_at_least(n) {
            self.flush(false).await?;
            return Ok(self.with_eof(window));
        }
        self.flush(true).await?;
        match self.buffer.ensure_available(n).await {
            Ok(()) => {}
            Err(StreamError::Eof { available }) => {
                let window = self.buffer.front_at_least(available).unwrap_or_default();
                return Ok((window, true));
            }
            Err(error) => return Err(ReadError::Stream(error)),
        }
        let window = self.buffer.front_at_least(n).unwrap_or_default();
        Ok(self.with_eof(window))
    }

    fn with_eof(&self, window: Bytes) -> (Bytes, bool) {
        let eof = self.buffer.is_complete() && window.len() >= self.buffer.available();
        (window, eof)
    }

    fn dispatch(&mut self, token: &Token<'_>, tokenizer: &Tokenizer) -> Result<(), Rejection> {
        let at = TokenContext {
            nesting: tokenizer.nesting(),
            position: tokenizer.position(),
        };
        for listener in self.listeners.iter_mut() {
            listener.on_token(token, at)?;
        }
        Ok(())
    }
}

/// What the raw phase ended with.
enum RawEnd {
    End,
    Deflated,
}

/// Reads one part to its end: every token goes to `listeners`, every byte to `writer` (or
/// nowhere with `None`). On success the writer has been handed every byte of the part (call
/// [`Part10Writer::finish`] to make them durable).
pub async fn read_part(
    buffer: &TrackableReadBuffer,
    listeners: &mut [&mut dyn Listener],
    writer: Option<&mut Part10Writer>,
    options: ReadOptions,
) -> Result<(), ReadError> {
    let mut driver = Driver {
        buffer,
        writer,
        listeners,
        options,
    };
    let mut tokenizer = Tokenizer::new(options.max_depth);
    match read_raw(&mut driver, &mut tokenizer).await? {
        RawEnd::End => {}
        RawEnd::Deflated => read_deflated(&mut driver, &mut tokenizer).await?,
    }
    for listener in driver.listeners.iter_mut() {
        listener.finish()?;
    }
    driver.flush(true).await
}

/// Tokenizes the raw bytes until the data set ends, or until the meta group says the rest
/// is deflated.
async fn read_raw(
    driver: &mut Driver<'_, '_>,
    tokenizer: &mut Tokenizer,
) -> Result<RawEnd, ReadError> {
    let (mut window, mut eof) = driver.raw_window(1).await?;
    loop {
        let (consumed, end) = match tokenizer.next(&window, eof)? {
            Step::NeedMore(n) => {
                (window, eof) = driver.raw_window(n).await?;
                continue;
            }
            Step::Token { consumed, token } => {
                let end = match &token {
                    Token::End => Some(RawEnd::End),
                    Token::MetaEnd { encoding, .. } if encoding.deflated => Some(RawEnd::Deflated),
                    _ => None,
                };
                driver.dispatch(&token, tokenizer)?;
                (consumed, end)
            }
        };
        driver.buffer.consume(consumed);
        window.advance(consumed);
        if let Some(end) = end {
            return Ok(end);
        }
    }
}

/// Inflates the rest of the part for the tokenizer; the compressed bytes are consumed (and
/// so written) as they are fed to the inflater.
async fn read_deflated(
    driver: &mut Driver<'_, '_>,
    tokenizer: &mut Tokenizer,
) -> Result<(), ReadError> {
    let mut inflater = Decompress::new(false);
    // Inflated bytes not yet consumed by the tokenizer: `inflated[start..]`.
    let mut inflated: Vec<u8> = Vec::with_capacity(INFLATE_STEP);
    let mut start = 0usize;
    let mut stream_end = false;
    loop {
        let eof = stream_end;
        let consumed = match tokenizer.next(&inflated[start..], eof)? {
            Step::NeedMore(n) => {
                if start > 0 {
                    inflated.drain(..start);
                    start = 0;
                }
                while inflated.len() < n && !stream_end {
                    stream_end = inflate_step(driver, &mut inflater, &mut inflated).await?;
                }
                continue;
            }
            Step::Token { consumed, token } => {
                let end = matches!(token, Token::End);
                driver.dispatch(&token, tokenizer)?;
                if end {
                    break;
                }
                consumed
            }
        };
        start += consumed;
    }
    // Bytes after the end of the deflate stream are kept in the file as received.
    loop {
        let (window, eof) = driver.raw_window(1).await?;
        driver.buffer.consume(window.len());
        if eof {
            return Ok(());
        }
    }
}

/// Feeds the next raw chunk to the inflater; returns whether the deflate stream ended.
async fn inflate_step(
    driver: &mut Driver<'_, '_>,
    inflater: &mut Decompress,
    out: &mut Vec<u8>,
) -> Result<bool, ReadError> {
    let (window, eof) = driver.raw_window(1).await?;
    if window.is_empty() && eof {
        return Err(ReadError::Inflate(
            "the part ends before the end of the deflate stream".into(),
        ));
    }
    out.reserve(INFLATE_STEP);
    let before_in = inflater.total_in();
    let before_out = inflater.total_out();
    let status = inflater
        .decompress_vec(&window, out, FlushDecompress::None)
        .map_err(|error| ReadError::Inflate(error.to_string()))?;
    let used = (inflater.total_in() - before_in) as usize;
    let produced = inflater.total_out() - before_out;
    driver.buffer.consume(used);
    if status == Status::StreamEnd {
        return Ok(true);
    }
    if used == 0 && produced == 0 && eof {
        return Err(ReadError::Inflate(
            "the deflate stream does not progress".into(),
        ));
    }
    Ok(false)
}
