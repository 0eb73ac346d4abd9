//! WADO-RS media type negotiation (PS3.18 §8.7.3): which transfer syntax each instance or
//! frame is sent in, from the `Accept` header and the syntax it is stored in.

use crate::dicom::syntax::EXPLICIT_VR_LE;
use crate::dicom::transcode::can_transcode;
use crate::stow::content_type::accepted;

/// What the client asked for, for one kind of payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// No transfer syntax named: the standard's default (explicit VR little endian) when the
    /// stored data can be served that way, else as stored.
    Default,
    /// `transfer-syntax=*`: as stored.
    AsStored,
    /// These syntaxes, in order of preference.
    Syntaxes(Vec<String>),
}

/// How one instance or frame is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The stored bytes.
    AsStored,
    /// Converted to explicit VR little endian.
    ExplicitLittle,
}

/// Reads the `Accept` header for payloads of media type `payload` (`application/dicom` or
/// `application/octet-stream`) inside `multipart/related`. `None`: nothing acceptable.
pub fn wanted(accept: Option<&str>, payload: &str) -> Option<Wanted> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Some(Wanted::Default);
    };
    let mut syntaxes = Vec::new();
    let mut default = false;
    for media in accepted(accept) {
        let type_ok = match media.essence.as_str() {
            "*/*" | "multipart/*" => true,
            "multipart/related" => media.param("type").is_none_or(|t| {
                t.eq_ignore_ascii_case(payload) || t == "*/*" || t.starts_with("image/")
            }),
            other => other == payload,
        };
        if !type_ok {
            continue;
        }
        match media.param("transfer-syntax") {
            None => default = true,
            Some(uid) => syntaxes.push(uid.to_string()),
        }
    }
    if syntaxes == ["*"] {
        return Some(Wanted::AsStored);
    }
    match (syntaxes.is_empty(), default) {
        (true, true) => Some(Wanted::Default),
        (true, false) => None,
        (false, true) => {
            syntaxes.push(String::new());
            Some(Wanted::Syntaxes(syntaxes))
        }
        (false, false) => Some(Wanted::Syntaxes(syntaxes)),
    }
}

/// How to send something stored in `stored` syntax, or `None` if the client accepts no way.
/// `converts` says whether this payload can be converted to explicit VR LE (uncompressed).
pub fn choose(wanted: &Wanted, stored: &str, converts: bool) -> Option<Output> {
    let default = || {
        if stored == EXPLICIT_VR_LE {
            Output::AsStored
        } else if converts {
            Output::ExplicitLittle
        } else {
            Output::AsStored
        }
    };
    match wanted {
        Wanted::Default => Some(default()),
        Wanted::AsStored => Some(Output::AsStored),
        Wanted::Syntaxes(list) => list.iter().find_map(|uid| match uid.as_str() {
            "*" => Some(Output::AsStored),
            // A range without a transfer syntax among named ones: the default.
            "" => Some(default()),
            uid if uid == stored => Some(Output::AsStored),
            EXPLICIT_VR_LE if converts => Some(Output::ExplicitLittle),
            _ => None,
        }),
    }
}

/// Whether a whole instance stored in `stored` can be converted to explicit VR LE.
pub fn instance_converts(stored: &str) -> bool {
    can_transcode(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DICOM: &str = "application/dicom";
    const JPEG: &str = "1.2.840.10008.1.2.4.50";
    const IMPLICIT: &str = "1.2.840.10008.1.2";

    #[test]
    fn no_accept_or_no_syntax_means_the_default() {
        for accept in [
            None,
            Some("*/*"),
            Some("multipart/related; type=\"application/dicom\""),
        ] {
            let wanted = wanted(accept, DICOM).expect("acceptable");
            assert_eq!(
                choose(&wanted, IMPLICIT, true),
                Some(Output::ExplicitLittle)
            );
            assert_eq!(choose(&wanted, JPEG, false), Some(Output::AsStored));
            assert_eq!(
                choose(&wanted, EXPLICIT_VR_LE, true),
                Some(Output::AsStored)
            );
        }
    }

    #[test]
    fn star_means_as_stored() {
        let wanted = wanted(
            Some("multipart/related; type=application/dicom; transfer-syntax=*"),
            DICOM,
        )
        .expect("acceptable");
        assert_eq!(choose(&wanted, IMPLICIT, true), Some(Output::AsStored));
    }

    #[test]
    fn a_named_syntax_that_cannot_be_served_is_refused() {
        let wanted = wanted(
            Some("multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.1"),
            DICOM,
        )
        .expect("acceptable media type");
        assert_eq!(choose(&wanted, JPEG, false), None);
        assert_eq!(
            choose(&wanted, IMPLICIT, true),
            Some(Output::ExplicitLittle)
        );
    }

    #[test]
    fn other_media_types_are_not_acceptable() {
        assert_eq!(wanted(Some("application/json"), DICOM), None);
        assert_eq!(
            wanted(Some("multipart/related; type=application/dicom+xml"), DICOM),
            None
        );
    }
}
