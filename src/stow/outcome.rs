//! What happened to each part of a STOW-RS request, and the one place where outcomes become an
//! HTTP status (PS3.18 Table 10.5.3-1).

use axum::http::StatusCode;

/// Failure Reason codes used by this server (PS3.18 Table I.2-2, PS3.7 Annex C).
pub mod reason {
    /// Processing failure.
    pub const PROCESSING_FAILURE: u16 = 0x0110;
    /// Duplicate SOP Instance: different bytes already stored under this UID.
    pub const DUPLICATE_SOP_INSTANCE: u16 = 0x0111;
    /// Refused: out of resources (disk full, write error).
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    /// Error: data set does not match SOP class (missing or invalid required UIDs).
    pub const INVALID_DATASET: u16 = crate::dicom::validator::REASON_INVALID_DATASET;
    /// Error: cannot understand (not DICOM, truncated, malformed).
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    /// Transfer syntax not supported.
    pub const TRANSFER_SYNTAX_NOT_SUPPORTED: u16 = 0xC122;
    /// Study Instance UID differs from the one in the request URL.
    pub const STUDY_MISMATCH: u16 = crate::dicom::validator::REASON_STUDY_MISMATCH;
}

/// A failure of one part (or of the body itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// SOP Class and Instance UIDs, when they were read before the failure.
    pub sop_class: Option<String>,
    pub sop_instance: Option<String>,
    pub reason: u16,
    /// Error Comment (0000,0902).
    pub comment: String,
}

impl Failure {
    /// A failure not tied to a known instance (it goes to the Other Failures Sequence).
    pub fn other(reason: u16, comment: impl Into<String>) -> Failure {
        Failure {
            sop_class: None,
            sop_instance: None,
            reason,
            comment: comment.into(),
        }
    }

    /// Whether the failure is about the syntax of the request (the 400 class), as opposed to
    /// a conflict with what the server holds or accepts (the 409 class).
    pub fn is_syntax(&self) -> bool {
        self.reason == reason::CANNOT_UNDERSTAND
    }
}

/// A stored instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub sop_class: String,
    pub sop_instance: String,
    pub study: String,
    pub series: String,
}

/// The outcome of one part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartOutcome {
    Stored(Stored),
    Failed(Failure),
}

/// HTTP status for a request's outcomes (Table 10.5.3-1): 200 when everything was stored,
/// 202 when some was, 400 when nothing was because of bad syntax only, 409 otherwise.
pub fn status_for(outcomes: &[PartOutcome]) -> StatusCode {
    let stored = outcomes
        .iter()
        .filter(|o| matches!(o, PartOutcome::Stored(_)))
        .count();
    let failures: Vec<&Failure> = outcomes
        .iter()
        .filter_map(|o| match o {
            PartOutcome::Failed(failure) => Some(failure),
            PartOutcome::Stored(_) => None,
        })
        .collect();
    match (stored, failures.is_empty()) {
        (_, true) if stored > 0 => StatusCode::OK,
        (0, true) => StatusCode::BAD_REQUEST,
        (0, false) if failures.iter().all(|f| f.is_syntax()) => StatusCode::BAD_REQUEST,
        (0, false) => StatusCode::CONFLICT,
        _ => StatusCode::ACCEPTED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> PartOutcome {
        PartOutcome::Stored(Stored {
            sop_class: "1.2".into(),
            sop_instance: "1.3".into(),
            study: "1.4".into(),
            series: "1.5".into(),
        })
    }

    fn failed(reason: u16) -> PartOutcome {
        PartOutcome::Failed(Failure::other(reason, "x"))
    }

    #[test]
    fn statuses_follow_table_10_5_3_1() {
        assert_eq!(status_for(&[stored(), stored()]), StatusCode::OK);
        assert_eq!(
            status_for(&[stored(), failed(reason::CANNOT_UNDERSTAND)]),
            StatusCode::ACCEPTED
        );
        assert_eq!(
            status_for(&[failed(reason::CANNOT_UNDERSTAND)]),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(status_for(&[]), StatusCode::BAD_REQUEST);
        assert_eq!(
            status_for(&[failed(reason::STUDY_MISMATCH)]),
            StatusCode::CONFLICT
        );
        assert_eq!(
            status_for(&[
                failed(reason::CANNOT_UNDERSTAND),
                failed(reason::DUPLICATE_SOP_INSTANCE)
            ]),
            StatusCode::CONFLICT
        );
    }
}
