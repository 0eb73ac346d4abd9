//! A small archive for the query and retrieve tests: three studies with distinct patient and
//! study attributes (one patient name accented), series of several modalities, and instances
//! in every layout WADO-RS serves differently: native single and multi-frame pixel data in
//! explicit VR LE, explicit VR BE and implicit VR LE, encapsulated JPEG with and without a
//! basic offset table, and an instance without pixel data. Built with the byte [`Builder`]
//! so that every byte (and the byte order of every pixel) is known to the test.

use super::dicom::{self, Builder, Syntax};
use super::instances::{syntax_of, Instance, Uids};
use super::server::TestServer;
use super::stow::store_all;

pub const CT_IMAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
pub const MR_IMAGE: &str = "1.2.840.10008.5.1.4.1.1.4";
pub const BASIC_TEXT_SR: &str = "1.2.840.10008.5.1.4.1.1.88.11";

/// Rows and columns of every image in the corpus.
pub const SIZE: u16 = 4;
/// Frames of the native multi-frame instances.
pub const FRAMES: usize = 3;
const PIXELS_PER_FRAME: usize = SIZE as usize * SIZE as usize;

/// The study-level attributes of one study (and the InstitutionName, which is not indexed).
#[derive(Clone, Copy, Debug)]
pub struct StudyAttrs {
    pub patient_name: &'static str,
    pub patient_id: &'static str,
    pub date: &'static str,
    pub time: &'static str,
    pub accession: &'static str,
    pub description: &'static str,
    pub institution: &'static str,
    /// Specific Character Set (0008,0005), when the text is not plain ASCII.
    pub charset: Option<&'static str>,
}

/// What an instance carries as pixel data.
#[derive(Clone, Copy, Debug)]
pub enum Pixels {
    /// No image attributes, no pixel data (a structured report).
    None,
    /// One 4x4 frame, 8 bits.
    Gray8,
    /// [`FRAMES`] 4x4 frames, 16 bits, in the byte order of the syntax.
    Frames16,
    /// JPEG baseline: two frames in two fragments, with or without a basic offset table.
    Jpeg { offset_table: bool },
}

/// The values of the 16-bit multi-frame pixel data: high and low bytes differ everywhere,
/// so a missing or wrong byte swap shows.
pub fn frame16_values(frame: usize) -> Vec<u16> {
    (0..PIXELS_PER_FRAME)
        .map(|i| (((frame + 1) as u16) << 12) | ((i as u16) << 4) | 0x3)
        .collect()
}

/// Frame `frame` (0-based) of the 16-bit pixel data, little endian.
pub fn frame16_le(frame: usize) -> Vec<u8> {
    frame16_values(frame)
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

/// Frame `frame` (0-based) of the 16-bit pixel data, big endian.
pub fn frame16_be(frame: usize) -> Vec<u8> {
    frame16_values(frame)
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect()
}

/// All 16-bit frames, little endian.
pub fn pixels16_le() -> Vec<u8> {
    (0..FRAMES).flat_map(frame16_le).collect()
}

/// All 16-bit frames, big endian.
pub fn pixels16_be() -> Vec<u8> {
    (0..FRAMES).flat_map(frame16_be).collect()
}

/// The single 8-bit frame.
pub fn pixels8() -> Vec<u8> {
    (0..PIXELS_PER_FRAME).map(|i| (i * 7) as u8).collect()
}

/// The two JPEG fragments (opaque to the server; even lengths, as items require).
pub fn jpeg_fragments() -> [Vec<u8>; 2] {
    [
        vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4, 0xFF, 0xD9],
        vec![0xFF, 0xD8, 9, 8, 7, 6, 5, 4, 3, 2, 0xFF, 0xD9],
    ]
}

/// One instance to build.
pub struct Spec<'a> {
    pub transfer_syntax: &'a str,
    pub study: &'a StudyAttrs,
    pub modality: &'a str,
    pub series_number: u32,
    pub instance_number: u32,
    pub pixels: Pixels,
}

/// A text element, skipped when `value` is empty.
fn text(b: &mut Builder, tag: (u16, u16), vr: &[u8; 2], value: &str) {
    if !value.is_empty() {
        b.text(tag, vr, value);
    }
}

/// A Part 10 instance of `spec` with `uids`, tags in ascending order.
pub fn build(uids: &Uids, spec: &Spec<'_>) -> Instance {
    let syntax = syntax_of(spec.transfer_syntax);
    let study = spec.study;
    let mut b = Builder::new(syntax);
    if let Some(charset) = study.charset {
        b.text((0x0008, 0x0005), b"CS", charset);
    }
    b.text((0x0008, 0x0016), b"UI", &uids.class)
        .text((0x0008, 0x0018), b"UI", &uids.sop)
        .text((0x0008, 0x0020), b"DA", study.date)
        .text((0x0008, 0x0030), b"TM", study.time)
        .text((0x0008, 0x0050), b"SH", study.accession)
        .text((0x0008, 0x0060), b"CS", spec.modality);
    text(&mut b, (0x0008, 0x0080), b"LO", study.institution);
    text(&mut b, (0x0008, 0x1030), b"LO", study.description);
    b.text((0x0010, 0x0010), b"PN", study.patient_name)
        .text((0x0010, 0x0020), b"LO", study.patient_id)
        .text((0x0020, 0x000D), b"UI", &uids.study)
        .text((0x0020, 0x000E), b"UI", &uids.series)
        .text((0x0020, 0x0011), b"IS", &spec.series_number.to_string())
        .text((0x0020, 0x0013), b"IS", &spec.instance_number.to_string());
    let (bits, frames) = match spec.pixels {
        Pixels::None => return finish(spec, uids, b),
        Pixels::Gray8 => (8, None),
        Pixels::Frames16 => (16, Some(FRAMES)),
        Pixels::Jpeg { .. } => (8, Some(2)),
    };
    b.us((0x0028, 0x0002), 1)
        .text((0x0028, 0x0004), b"CS", "MONOCHROME2");
    if let Some(frames) = frames {
        b.text((0x0028, 0x0008), b"IS", &frames.to_string());
    }
    b.us((0x0028, 0x0010), SIZE)
        .us((0x0028, 0x0011), SIZE)
        .us((0x0028, 0x0100), bits)
        .us((0x0028, 0x0101), bits)
        .us((0x0028, 0x0102), bits - 1)
        .us((0x0028, 0x0103), 0);
    match spec.pixels {
        Pixels::None => {}
        Pixels::Gray8 => {
            b.element((0x7FE0, 0x0010), b"OB", &pixels8());
        }
        Pixels::Frames16 => {
            let pixels = if syntax == Syntax::ExplicitBe {
                pixels16_be()
            } else {
                pixels16_le()
            };
            b.element((0x7FE0, 0x0010), b"OW", &pixels);
        }
        Pixels::Jpeg { offset_table } => {
            let fragments = jpeg_fragments();
            // Offsets count from the first fragment's item header (8 bytes each).
            let offsets = if offset_table {
                vec![0, 8 + fragments[0].len() as u32]
            } else {
                Vec::new()
            };
            b.encapsulated_pixels(&offsets, &fragments);
        }
    }
    finish(spec, uids, b)
}

fn finish(spec: &Spec<'_>, uids: &Uids, b: Builder) -> Instance {
    Instance {
        uids: uids.clone(),
        bytes: dicom::part10(&uids.class, &uids.sop, spec.transfer_syntax, &b.bytes),
    }
}

pub const STUDY_A: StudyAttrs = StudyAttrs {
    patient_name: "Doe^Jane",
    patient_id: "PID-A",
    date: "20200115",
    time: "083000",
    accession: "ACC-A",
    description: "Chest CT",
    institution: "General Hospital A",
    charset: None,
};

pub const STUDY_B: StudyAttrs = StudyAttrs {
    patient_name: "Müller^José",
    patient_id: "PID-B",
    date: "20210610",
    time: "141500.5",
    accession: "ACC-B",
    description: "Brain MR",
    institution: "Klinik B",
    charset: Some("ISO_IR 192"),
};

pub const STUDY_C: StudyAttrs = StudyAttrs {
    patient_name: "Smith^John",
    patient_id: "PID-C",
    date: "20221231",
    time: "235959",
    accession: "ACC-C",
    description: "Follow-up",
    institution: "Clinic C",
    charset: None,
};

/// The stored archive, by role.
pub struct Corpus {
    /// Study A, series 1 (CT): three instances, in InstanceNumber order (1, 2, 10).
    pub ct: Vec<Instance>,
    /// Study A, series 2 (SR): no pixel data.
    pub sr: Instance,
    /// Study B, series 1 (MR): the same multi-frame image in three syntaxes (InstanceNumber
    /// 1, 2, 3).
    pub frames_le: Instance,
    pub frames_be: Instance,
    pub frames_implicit: Instance,
    /// Study C, series 1 (CT): JPEG with a basic offset table (1) and without (2).
    pub jpeg_offsets: Instance,
    pub jpeg_plain: Instance,
    /// Study C, series 2 (MR): one 8-bit image.
    pub gray: Instance,
}

fn with_class(mut uids: Uids, class: &str) -> Uids {
    uids.class = class.to_string();
    uids
}

impl Corpus {
    pub fn new() -> Corpus {
        let ct_uids = with_class(Uids::fresh(), CT_IMAGE);
        let spec = |study, modality, series_number, instance_number, pixels, syntax| Spec {
            transfer_syntax: syntax,
            study,
            modality,
            series_number,
            instance_number,
            pixels,
        };
        let le = dicom::EXPLICIT_LE;
        let ct: Vec<Instance> = [1, 2, 10]
            .into_iter()
            .map(|number| {
                let uids = Uids {
                    sop: ct_uids.sibling().sop,
                    ..ct_uids.clone()
                };
                build(&uids, &spec(&STUDY_A, "CT", 1, number, Pixels::Gray8, le))
            })
            .collect();
        let sr = build(
            &with_class(Uids::in_study(&ct_uids.study), BASIC_TEXT_SR),
            &spec(&STUDY_A, "SR", 2, 1, Pixels::None, le),
        );
        let mr_uids = with_class(Uids::fresh(), MR_IMAGE);
        let frames = |uids: &Uids, number, syntax| {
            build(
                uids,
                &spec(&STUDY_B, "MR", 1, number, Pixels::Frames16, syntax),
            )
        };
        let frames_le = frames(&mr_uids, 1, le);
        let frames_be = frames(&mr_uids.sibling(), 2, dicom::EXPLICIT_BE);
        let frames_implicit = frames(&mr_uids.sibling(), 3, dicom::IMPLICIT_LE);
        let jpeg_uids = with_class(Uids::fresh(), CT_IMAGE);
        let jpeg = |uids: &Uids, number, offset_table| {
            build(
                uids,
                &spec(
                    &STUDY_C,
                    "CT",
                    1,
                    number,
                    Pixels::Jpeg { offset_table },
                    dicom::JPEG_BASELINE,
                ),
            )
        };
        let jpeg_offsets = jpeg(&jpeg_uids, 1, true);
        let jpeg_plain = jpeg(&jpeg_uids.sibling(), 2, false);
        let gray = build(
            &with_class(Uids::in_study(&jpeg_uids.study), MR_IMAGE),
            &spec(&STUDY_C, "MR", 2, 1, Pixels::Gray8, le),
        );
        Corpus {
            ct,
            sr,
            frames_le,
            frames_be,
            frames_implicit,
            jpeg_offsets,
            jpeg_plain,
            gray,
        }
    }

    /// Every instance, in the order they are sent (the CT series out of InstanceNumber
    /// order, so that result order is the server's doing).
    pub fn all(&self) -> Vec<&Instance> {
        vec![
            &self.ct[1],
            &self.ct[2],
            &self.ct[0],
            &self.sr,
            &self.frames_le,
            &self.frames_be,
            &self.frames_implicit,
            &self.jpeg_offsets,
            &self.jpeg_plain,
            &self.gray,
        ]
    }

    pub fn study_a(&self) -> &str {
        &self.ct[0].uids.study
    }

    pub fn study_b(&self) -> &str {
        &self.frames_le.uids.study
    }

    pub fn study_c(&self) -> &str {
        &self.jpeg_offsets.uids.study
    }

    /// Builds the corpus and stores it through STOW-RS, one request per study.
    pub async fn stored(server: &TestServer) -> Corpus {
        let corpus = Corpus::new();
        let all = corpus.all();
        store_all(server, &all[..4]).await;
        store_all(server, &all[4..7]).await;
        store_all(server, &all[7..]).await;
        corpus
    }
}

/// `http://host/prefix/studies/{s}[/series/{se}[/instances/{i}]]` of an instance's levels.
pub fn instance_url(server: &TestServer, instance: &Instance) -> String {
    let uids = &instance.uids;
    format!(
        "{}/studies/{}/series/{}/instances/{}",
        server.url_base(),
        uids.study,
        uids.series,
        uids.sop
    )
}

/// The route of an instance, under the prefix.
pub fn instance_route(server: &TestServer, instance: &Instance) -> String {
    let uids = &instance.uids;
    server.route(&format!(
        "/studies/{}/series/{}/instances/{}",
        uids.study, uids.series, uids.sop
    ))
}
