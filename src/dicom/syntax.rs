//! How a data set's bytes are laid out: byte order and VR encoding, derived from the
//! Transfer Syntax UID of the meta group (PS3.5 §10 and Annex A).

use dicom_core::VR;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};

/// Implicit VR Little Endian (PS3.5 A.1), also used inside CP-246 `UN` sequences.
pub const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
/// Explicit VR Little Endian (PS3.5 A.2), the meta group's encoding.
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
/// Explicit VR Big Endian (retired, PS3.5 A.3).
pub const EXPLICIT_VR_BE: &str = "1.2.840.10008.1.2.2";
/// Deflated Explicit VR Little Endian (PS3.5 A.5).
pub const DEFLATED_EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1.99";
/// JPIP Referenced Deflate (PS3.5 A.6): also a deflated explicit VR little endian data set.
pub const JPIP_REFERENCED_DEFLATE: &str = "1.2.840.10008.1.2.4.95";

/// Byte order and VR encoding of a run of elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    ExplicitLittle,
    ImplicitLittle,
    ExplicitBig,
}

impl Syntax {
    /// Whether the element header carries the VR.
    pub fn explicit_vr(self) -> bool {
        !matches!(self, Syntax::ImplicitLittle)
    }

    /// Whether numbers are big endian.
    pub fn big_endian(self) -> bool {
        matches!(self, Syntax::ExplicitBig)
    }

    pub(crate) fn u16_at(self, bytes: &[u8], at: usize) -> u16 {
        let pair = [bytes[at], bytes[at + 1]];
        if self.big_endian() {
            u16::from_be_bytes(pair)
        } else {
            u16::from_le_bytes(pair)
        }
    }

    pub(crate) fn u32_at(self, bytes: &[u8], at: usize) -> u32 {
        let quad = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if self.big_endian() {
            u32::from_be_bytes(quad)
        } else {
            u32::from_le_bytes(quad)
        }
    }
}

/// Explicit VRs whose header has two reserved bytes and a 32-bit length (PS3.5 7.1.2).
pub fn has_long_length(vr: VR) -> bool {
    matches!(
        vr,
        VR::OB
            | VR::OD
            | VR::OF
            | VR::OL
            | VR::OV
            | VR::OW
            | VR::SQ
            | VR::SV
            | VR::UC
            | VR::UN
            | VR::UR
            | VR::UT
            | VR::UV
    )
}

/// Size of the numbers a value of `vr` is made of, which big endian stores reversed
/// (PS3.5 §7.3); 1 for text and bytes. `AT` is a pair of 16-bit numbers.
pub fn swap_unit(vr: VR) -> usize {
    match vr {
        VR::US | VR::SS | VR::OW | VR::AT => 2,
        VR::UL | VR::SL | VR::FL | VR::OF | VR::OL => 4,
        VR::FD | VR::OD | VR::SV | VR::UV | VR::OV => 8,
        _ => 1,
    }
}

/// How the data set after the meta group is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetEncoding {
    pub syntax: Syntax,
    /// The data set is a raw deflate stream (PS3.5 A.5) to be inflated before tokenizing.
    pub deflated: bool,
}

/// The encoding of a data set in transfer syntax `uid`, or `None` when the UID is not a
/// transfer syntax this server knows. Every known syntax other than the three native
/// variants is explicit VR little endian (encapsulated pixel data included).
pub fn dataset_encoding(uid: &str) -> Option<DatasetEncoding> {
    let uid = uid.trim_end_matches(['\0', ' ']);
    let (syntax, deflated) = match uid {
        IMPLICIT_VR_LE => (Syntax::ImplicitLittle, false),
        EXPLICIT_VR_BE => (Syntax::ExplicitBig, false),
        DEFLATED_EXPLICIT_VR_LE | JPIP_REFERENCED_DEFLATE => (Syntax::ExplicitLittle, true),
        EXPLICIT_VR_LE => (Syntax::ExplicitLittle, false),
        other => {
            TransferSyntaxRegistry.get(other)?;
            (Syntax::ExplicitLittle, false)
        }
    };
    Some(DatasetEncoding { syntax, deflated })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_syntaxes_map_to_their_encoding() {
        let check = |uid: &str, syntax: Syntax, deflated: bool| {
            assert_eq!(
                dataset_encoding(uid),
                Some(DatasetEncoding { syntax, deflated }),
                "{uid}"
            );
        };
        check(IMPLICIT_VR_LE, Syntax::ImplicitLittle, false);
        check("1.2.840.10008.1.2\0", Syntax::ImplicitLittle, false);
        check(EXPLICIT_VR_LE, Syntax::ExplicitLittle, false);
        check(EXPLICIT_VR_BE, Syntax::ExplicitBig, false);
        check(DEFLATED_EXPLICIT_VR_LE, Syntax::ExplicitLittle, true);
        check("1.2.840.10008.1.2.4.50", Syntax::ExplicitLittle, false);
        check("1.2.840.10008.1.2.4.90", Syntax::ExplicitLittle, false);
        check("1.2.840.10008.1.2.5", Syntax::ExplicitLittle, false);
        assert_eq!(dataset_encoding("1.2.3.4.5"), None);
    }
}
