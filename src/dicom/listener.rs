//! The listener trait: a synchronous push sink for tokens, in the spirit of ripgrep's `Sink`.
//!
//! The reader calls [`Listener::on_token`] for every token in stream order and
//! [`Listener::finish`] once after the last one; `finish` is not called after an error.
//! A listener that returns a [`Rejection`] stops the reading of the part.

use super::tokenizer::Token;

/// A listener's verdict that the instance cannot be stored, with a DICOM failure reason
/// (PS3.18 Table I.2-2, PS3.7 Annex C).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Failure Reason (0008,1197).
    pub reason: u16,
    /// Human-readable explanation, sent as Error Comment (0000,0902).
    pub comment: String,
}

impl Rejection {
    pub fn new(reason: u16, comment: impl Into<String>) -> Rejection {
        Rejection {
            reason,
            comment: comment.into(),
        }
    }
}

/// Where a token sits in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenContext {
    /// Open sequences and items after the token (0 for a top-level element and its values).
    pub nesting: usize,
    /// Stream position right after the token: for an `Element` or `Fragment`, where its value
    /// starts; for a `Value` chunk, where the chunk ends. Positions count the bytes of the
    /// part, except inside a deflated data set, where they count inflated bytes.
    pub position: u64,
}

/// Receives the tokens of one part.
pub trait Listener: Send {
    /// One token and where it sits.
    fn on_token(&mut self, token: &Token<'_>, at: TokenContext) -> Result<(), Rejection>;

    /// The stream ended cleanly.
    fn finish(&mut self) -> Result<(), Rejection> {
        Ok(())
    }
}
