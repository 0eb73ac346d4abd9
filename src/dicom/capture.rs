//! [`ValueCapture`]: collects the values of a chosen set of top-level elements from the token
//! stream, each up to a size cap, so listeners never hold bulk data.

use dicom_core::Tag;

use super::tokenizer::Token;

/// Values longer than this are not captured (text and UIDs are far shorter; bulk data is
/// never wanted).
pub const MAX_CAPTURED_VALUE: usize = 1024;

/// Captures top-level values of `tags`.
#[derive(Debug)]
pub struct ValueCapture {
    tags: &'static [Tag],
    /// The wanted element whose value is arriving.
    current: Option<Tag>,
    buf: Vec<u8>,
    values: Vec<(Tag, String)>,
}

impl ValueCapture {
    pub fn new(tags: &'static [Tag]) -> ValueCapture {
        ValueCapture {
            tags,
            current: None,
            buf: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Feeds one token; returns the tag whose value just completed, if any.
    pub fn on_token(&mut self, token: &Token<'_>, nesting: usize) -> Option<Tag> {
        match token {
            Token::Element(header) if nesting == 0 => {
                let wanted = self.tags.contains(&header.tag)
                    && header
                        .length
                        .get()
                        .is_some_and(|len| len as usize <= MAX_CAPTURED_VALUE);
                self.current = wanted.then_some(header.tag);
                self.buf.clear();
                None
            }
            Token::Value { data, last } => {
                let tag = self.current?;
                self.buf.extend_from_slice(data);
                if !last {
                    return None;
                }
                self.current = None;
                let text = String::from_utf8_lossy(&self.buf);
                let text = text.trim_end_matches(['\0', ' ']).trim_start_matches(' ');
                self.values.retain(|(t, _)| *t != tag);
                self.values.push((tag, text.to_string()));
                Some(tag)
            }
            _ => {
                self.current = None;
                None
            }
        }
    }

    /// The captured value of `tag`, if it appeared.
    pub fn get(&self, tag: Tag) -> Option<&str> {
        self.values
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, value)| value.as_str())
    }
}
