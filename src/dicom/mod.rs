//! Incremental DICOM reading: a sans-IO [`tokenizer`], the async [`reader`] that drives it
//! over a [`crate::stream::TrackableReadBuffer`], and the listeners fed by its tokens.
//!
//! Nothing here knows about HTTP: this module never imports axum or hyper.

pub mod capture;
pub mod json;
mod json_frames;
mod json_values;
pub mod listener;
pub mod metadata;
pub mod reader;
pub mod syntax;
pub mod tags;
pub mod tokenizer;
pub mod transcode;
pub mod validator;
pub mod writer;

pub use listener::{Listener, Rejection, TokenContext};
pub use metadata::{InstanceMeta, MetadataListener};
pub use reader::{read_part, ReadError, ReadOptions};
pub use tokenizer::{Step, Token, TokenError, Tokenizer};
pub use validator::Validator;
pub use writer::Part10Writer;

#[cfg(test)]
mod json_tests;
#[cfg(test)]
mod tokenizer_tests;
#[cfg(test)]
mod transcode_tests;
