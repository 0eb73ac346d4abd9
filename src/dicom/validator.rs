//! [`Validator`]: decides whether a part is an instance this server may store. It wraps the
//! [`MetadataListener`] (so UIDs are captured once) and checks, as soon as each value is known,
//! the rules of PS3.18 §10.5: the Study Instance UID matches the route, the SOP Class and
//! Instance UIDs are present and agree with the file meta group, and every UID that becomes a
//! path component is well formed.

use super::listener::{Listener, Rejection, TokenContext};
use super::metadata::{InstanceMeta, MetadataListener};
use super::tokenizer::Token;

/// Failure reason: the data set does not match the SOP class / lacks required UIDs (PS3.7).
pub const REASON_INVALID_DATASET: u16 = 0xA900;
/// Failure reason used by peers for a Study Instance UID that differs from the route's.
pub const REASON_STUDY_MISMATCH: u16 = 0xC409;

/// Longest UID allowed by PS3.5 §9.1.
const MAX_UID_LEN: usize = 64;

/// Whether `uid` is a well-formed UID: digits and dots, at most 64 characters, no empty
/// component. Only such UIDs ever become path components.
pub fn is_valid_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= MAX_UID_LEN
        && uid
            .split('.')
            .all(|component| !component.is_empty() && component.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks one part against the route and the UID rules.
#[derive(Debug)]
pub struct Validator {
    metadata: MetadataListener,
    /// Study Instance UID from `POST /studies/{study}`, if that route was used.
    route_study: Option<String>,
}

impl Validator {
    pub fn new(route_study: Option<String>) -> Validator {
        Validator {
            metadata: MetadataListener::default(),
            route_study,
        }
    }

    /// The instance's identifying attributes, as far as they have been read.
    pub fn meta(&self) -> &InstanceMeta {
        self.metadata.meta()
    }

    fn check_study(&self) -> Result<(), Rejection> {
        let meta = self.metadata.meta();
        if let (Some(route), Some(study)) = (&self.route_study, &meta.study) {
            if route != study {
                return Err(Rejection::new(
                    REASON_STUDY_MISMATCH,
                    format!("Study Instance UID {study:?} does not match the request's {route:?}"),
                ));
            }
        }
        Ok(())
    }
}

fn require(value: &Option<String>, name: &str) -> Result<(), Rejection> {
    match value {
        None => Err(Rejection::new(
            REASON_INVALID_DATASET,
            format!("{name} is missing"),
        )),
        Some(uid) if !is_valid_uid(uid) => Err(Rejection::new(
            REASON_INVALID_DATASET,
            format!("{name} {uid:?} is not a valid UID"),
        )),
        Some(_) => Ok(()),
    }
}

impl Listener for Validator {
    fn on_token(&mut self, token: &Token<'_>, at: TokenContext) -> Result<(), Rejection> {
        self.metadata.on_token(token, at)?;
        if matches!(token, Token::Value { last: true, .. }) && at.nesting == 0 {
            self.check_study()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Rejection> {
        self.metadata.finish()?;
        let meta = self.metadata.meta();
        require(&meta.sop_class, "SOP Class UID (0008,0016)")?;
        require(&meta.sop_instance, "SOP Instance UID (0008,0018)")?;
        require(&meta.study, "Study Instance UID (0020,000D)")?;
        require(&meta.series, "Series Instance UID (0020,000E)")?;
        if let Some(meta_instance) = &meta.meta_sop_instance {
            if Some(meta_instance) != meta.sop_instance.as_ref() {
                return Err(Rejection::new(
                    REASON_INVALID_DATASET,
                    format!(
                        "Media Storage SOP Instance UID {meta_instance:?} differs from SOP Instance UID {:?}",
                        meta.sop_instance.as_deref().unwrap_or_default()
                    ),
                ));
            }
        }
        if let Some(meta_class) = &meta.meta_sop_class {
            if Some(meta_class) != meta.sop_class.as_ref() {
                return Err(Rejection::new(
                    REASON_INVALID_DATASET,
                    format!(
                        "Media Storage SOP Class UID {meta_class:?} differs from SOP Class UID {:?}",
                        meta.sop_class.as_deref().unwrap_or_default()
                    ),
                ));
            }
        }
        self.check_study()
    }
}

#[cfg(test)]
mod tests {
    use super::is_valid_uid;

    #[test]
    fn uid_rules_guard_paths() {
        for good in ["1.2.840.10008.5.1.4.1.1.2", "0", "1.2.3"] {
            assert!(is_valid_uid(good), "{good}");
        }
        let too_long = "1.".repeat(32) + "1";
        for bad in [
            "",
            "..",
            "../../etc",
            "1..2",
            ".1",
            "1.",
            "1.2.abc",
            "1/2",
            &too_long,
        ] {
            assert!(!is_valid_uid(bad), "{bad}");
        }
    }
}
