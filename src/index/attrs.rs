//! The attributes the index stores and QIDO-RS matches and returns (PS3.18 Tables 10.6.3-3
//! to 10.6.3-5, the attributes OHIF asks for), with their tag, VR, level and column.

/// Query/retrieve level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Study,
    Series,
    Instance,
}

/// One indexed attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attr {
    pub tag: u32,
    pub keyword: &'static str,
    pub vr: &'static str,
    pub level: Level,
    /// Column in the level's table.
    pub column: &'static str,
    /// Computed by the index (counts, ModalitiesInStudy): returned, matched where possible.
    pub computed: bool,
}

const fn attr(
    tag: u32,
    keyword: &'static str,
    vr: &'static str,
    level: Level,
    column: &'static str,
) -> Attr {
    Attr {
        tag,
        keyword,
        vr,
        level,
        column,
        computed: false,
    }
}

const fn computed(
    tag: u32,
    keyword: &'static str,
    vr: &'static str,
    level: Level,
    column: &'static str,
) -> Attr {
    Attr {
        tag,
        keyword,
        vr,
        level,
        column,
        computed: true,
    }
}

use Level::{Instance, Series, Study};

/// Every indexed attribute. Order within a level is the order of returned attributes.
pub const ATTRS: &[Attr] = &[
    attr(0x0020_000D, "StudyInstanceUID", "UI", Study, "study_uid"),
    attr(0x0008_0020, "StudyDate", "DA", Study, "study_date"),
    attr(0x0008_0030, "StudyTime", "TM", Study, "study_time"),
    attr(
        0x0008_0050,
        "AccessionNumber",
        "SH",
        Study,
        "accession_number",
    ),
    attr(
        0x0008_0090,
        "ReferringPhysicianName",
        "PN",
        Study,
        "referring_physician_name",
    ),
    attr(
        0x0008_1030,
        "StudyDescription",
        "LO",
        Study,
        "study_description",
    ),
    attr(0x0010_0010, "PatientName", "PN", Study, "patient_name"),
    attr(0x0010_0020, "PatientID", "LO", Study, "patient_id"),
    attr(
        0x0010_0030,
        "PatientBirthDate",
        "DA",
        Study,
        "patient_birth_date",
    ),
    attr(0x0010_0040, "PatientSex", "CS", Study, "patient_sex"),
    attr(0x0020_0010, "StudyID", "SH", Study, "study_id"),
    computed(0x0008_0061, "ModalitiesInStudy", "CS", Study, "modalities"),
    computed(
        0x0020_1206,
        "NumberOfStudyRelatedSeries",
        "IS",
        Study,
        "n_series",
    ),
    computed(
        0x0020_1208,
        "NumberOfStudyRelatedInstances",
        "IS",
        Study,
        "n_instances",
    ),
    attr(0x0020_000E, "SeriesInstanceUID", "UI", Series, "series_uid"),
    attr(0x0008_0060, "Modality", "CS", Series, "modality"),
    attr(0x0008_0021, "SeriesDate", "DA", Series, "series_date"),
    attr(0x0008_0031, "SeriesTime", "TM", Series, "series_time"),
    attr(
        0x0008_103E,
        "SeriesDescription",
        "LO",
        Series,
        "series_description",
    ),
    attr(0x0018_0015, "BodyPartExamined", "CS", Series, "body_part"),
    attr(0x0020_0011, "SeriesNumber", "IS", Series, "series_number"),
    attr(
        0x0040_0244,
        "PerformedProcedureStepStartDate",
        "DA",
        Series,
        "pps_start_date",
    ),
    computed(
        0x0020_1209,
        "NumberOfSeriesRelatedInstances",
        "IS",
        Series,
        "n_instances",
    ),
    attr(0x0008_0018, "SOPInstanceUID", "UI", Instance, "sop_uid"),
    attr(0x0008_0016, "SOPClassUID", "UI", Instance, "sop_class_uid"),
    attr(
        0x0020_0013,
        "InstanceNumber",
        "IS",
        Instance,
        "instance_number",
    ),
    attr(0x0028_0010, "Rows", "US", Instance, "rows"),
    attr(0x0028_0011, "Columns", "US", Instance, "columns"),
    attr(
        0x0028_0008,
        "NumberOfFrames",
        "IS",
        Instance,
        "number_of_frames",
    ),
    attr(
        0x0008_3002,
        "AvailableTransferSyntaxUID",
        "UI",
        Instance,
        "transfer_syntax",
    ),
];

/// The attribute with this tag, if indexed.
pub fn by_tag(tag: u32) -> Option<&'static Attr> {
    ATTRS.iter().find(|attr| attr.tag == tag)
}

/// `GGGGEEEE` for a tag.
pub fn tag_key(tag: u32) -> String {
    format!("{tag:08X}")
}
