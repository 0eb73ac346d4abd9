//! [`MetadataListener`]: the identifying attributes of an instance, as the store, the index and
//! the Store Instances Response need them.

use dicom_core::Tag;

use super::capture::ValueCapture;
use super::listener::{Listener, Rejection, TokenContext};
use super::tokenizer::Token;

pub const MEDIA_STORAGE_SOP_CLASS_UID: Tag = Tag(0x0002, 0x0002);
pub const MEDIA_STORAGE_SOP_INSTANCE_UID: Tag = Tag(0x0002, 0x0003);
pub const SOP_CLASS_UID: Tag = Tag(0x0008, 0x0016);
pub const SOP_INSTANCE_UID: Tag = Tag(0x0008, 0x0018);
pub const STUDY_INSTANCE_UID: Tag = Tag(0x0020, 0x000D);
pub const SERIES_INSTANCE_UID: Tag = Tag(0x0020, 0x000E);

/// Tags captured for every instance.
const CAPTURED: &[Tag] = &[
    MEDIA_STORAGE_SOP_CLASS_UID,
    MEDIA_STORAGE_SOP_INSTANCE_UID,
    SOP_CLASS_UID,
    SOP_INSTANCE_UID,
    STUDY_INSTANCE_UID,
    SERIES_INSTANCE_UID,
];

/// What the server knows about an instance once its part is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceMeta {
    pub transfer_syntax: Option<String>,
    pub meta_sop_class: Option<String>,
    pub meta_sop_instance: Option<String>,
    pub sop_class: Option<String>,
    pub sop_instance: Option<String>,
    pub study: Option<String>,
    pub series: Option<String>,
}

impl InstanceMeta {
    /// SOP Class UID for the response: the data set's, else the meta group's.
    pub fn best_sop_class(&self) -> Option<&str> {
        self.sop_class.as_deref().or(self.meta_sop_class.as_deref())
    }

    /// SOP Instance UID for the response: the data set's, else the meta group's.
    pub fn best_sop_instance(&self) -> Option<&str> {
        self.sop_instance
            .as_deref()
            .or(self.meta_sop_instance.as_deref())
    }
}

/// Collects [`InstanceMeta`] from the token stream.
#[derive(Debug)]
pub struct MetadataListener {
    capture: ValueCapture,
    meta: InstanceMeta,
}

impl Default for MetadataListener {
    fn default() -> Self {
        MetadataListener {
            capture: ValueCapture::new(CAPTURED),
            meta: InstanceMeta::default(),
        }
    }
}

impl MetadataListener {
    /// What was collected so far (complete after the stream ended).
    pub fn meta(&self) -> &InstanceMeta {
        &self.meta
    }
}

impl Listener for MetadataListener {
    fn on_token(&mut self, token: &Token<'_>, at: TokenContext) -> Result<(), Rejection> {
        if let Token::MetaEnd {
            transfer_syntax, ..
        } = token
        {
            self.meta.transfer_syntax = Some(transfer_syntax.clone());
            return Ok(());
        }
        let Some(tag) = self.capture.on_token(token, at.nesting) else {
            return Ok(());
        };
        let value = self.capture.get(tag).map(str::to_string);
        let slot = match tag {
            MEDIA_STORAGE_SOP_CLASS_UID => &mut self.meta.meta_sop_class,
            MEDIA_STORAGE_SOP_INSTANCE_UID => &mut self.meta.meta_sop_instance,
            SOP_CLASS_UID => &mut self.meta.sop_class,
            SOP_INSTANCE_UID => &mut self.meta.sop_instance,
            STUDY_INSTANCE_UID => &mut self.meta.study,
            SERIES_INSTANCE_UID => &mut self.meta.series,
            _ => return Ok(()),
        };
        *slot = value;
        Ok(())
    }
}
