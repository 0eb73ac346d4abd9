//! Writes the seed corpus under `fuzz/corpus/<target>/`: a few valid inputs per target, so
//! the fuzzer starts from bodies and instances the server accepts. Small on purpose (the
//! fuzzer grows its working corpus in `fuzz/work/`). Regenerate with
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds`.

use std::path::Path;

use dicomwebserver_fuzz::instances::{instance, Kind};
use dicomwebserver_fuzz::multipart::{Multipart, Part, BOUNDARY};

fn main() -> std::io::Result<()> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let explicit = instance(Kind::ExplicitLe);

    // multipart_splitter: [boundary length][boundary][header cap][chunk plan][body].
    let splitter_input = |boundary: &str, plan: &[u8], body: &[u8]| {
        let mut input = vec![(boundary.len() - 1) as u8];
        input.extend_from_slice(boundary.as_bytes());
        input.push(255);
        input.extend_from_slice(plan);
        input.extend_from_slice(body);
        input
    };
    let two_parts = Multipart::new(vec![Part::dicom(b"first part"), Part::bare(b"second")]);
    let mut lenient = Multipart::new(vec![Part::dicom(b"a\r\n--notit\r\n")]);
    lenient.boundary = "b".to_string();
    lenient.start = b"preamble\r\n".to_vec();
    lenient.close = false;
    let mut padded = Multipart::of(&[&explicit[..64]]);
    padded.boundary = "xyz".to_string();
    padded.end = b"\r\nepilogue".to_vec();
    write(
        &corpus,
        "multipart_splitter",
        &[
            (
                "two-parts",
                splitter_input(BOUNDARY, &[0, 255], &two_parts.encode()),
            ),
            (
                "byte-by-byte",
                splitter_input("b", &[0, 0], &lenient.encode()),
            ),
            (
                "mixed-chunks",
                splitter_input("xyz", &[2, 3, 130, 6], &padded.encode()),
            ),
        ],
    )?;

    // tokenizer: [max depth][chunk plan][stream].
    let mut tokenizer = Vec::new();
    for kind in Kind::ALL {
        let mut input = vec![32, 0, if kind == Kind::ExplicitLe { 11 } else { 255 }];
        input.extend_from_slice(&instance(kind));
        tokenizer.push((format!("{kind:?}"), input));
    }
    let mut no_preamble = vec![32, 0, 255];
    no_preamble.extend_from_slice(&explicit[128..]);
    tokenizer.push(("no-preamble".to_string(), no_preamble));
    write_owned(&corpus, "tokenizer", tokenizer)?;

    // qido_params: [selector][query string].
    let qido = |selector: u8, query: &str| {
        let mut input = vec![selector];
        input.extend_from_slice(query.as_bytes());
        input
    };
    write(&corpus, "qido_params", &[
        ("studies", qido(0, "PatientName=*doe*&PatientID=&StudyDate=20200101-20201231&ModalitiesInStudy=CT&limit=101&offset=0&fuzzymatching=true&includefield=00081030,StudyDescription")),
        ("series", qido(5, "Modality=CT&SeriesInstanceUID=1.2.3%5C1.2.4&SeriesNumber=1&includefield=all")),
        ("instances", qido(14, "SOPInstanceUID=1.2.3,1.2.4&StudyTime=-101500&0020000D=1.2.3&limit=5&offset=2")),
    ])?;

    // stow: [framing][mode bytes]; see fuzz/src/stow_input.rs.
    let mut raw = vec![0];
    raw.extend_from_slice(&Multipart::of(&[&explicit]).encode());
    let mut listed = vec![1 | 0b100];
    for (content_type, body) in [(0u8, &explicit[..]), (2, b"not dicom")] {
        listed.push(content_type);
        listed.extend_from_slice(&(body.len() as u16).to_le_bytes());
        listed.extend_from_slice(body);
    }
    let mut stow = vec![
        ("raw-explicit".to_string(), raw),
        ("listed".to_string(), listed),
    ];
    for (index, kind) in Kind::ALL.into_iter().enumerate() {
        stow.push((format!("instance-{kind:?}"), vec![2, index as u8, 0]));
    }
    stow.push(("duplicate-sop".to_string(), vec![2 | 0b1_0000, 0, 0b10]));
    stow.push((
        "instance-and-parts".to_string(),
        vec![3, 1, 0, 0xFF, 0xFF, 4, 3, 0, b'a', b'b', b'c'],
    ));
    write_owned(&corpus, "stow", stow)
}

fn write(corpus: &Path, target: &str, seeds: &[(&str, Vec<u8>)]) -> std::io::Result<()> {
    let owned = seeds
        .iter()
        .map(|(name, bytes)| (name.to_string(), bytes.clone()))
        .collect();
    write_owned(corpus, target, owned)
}

fn write_owned(corpus: &Path, target: &str, seeds: Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
    let dir = corpus.join(target);
    std::fs::create_dir_all(&dir)?;
    for (name, bytes) in seeds {
        std::fs::write(dir.join(format!("seed-{name}")), bytes)?;
    }
    Ok(())
}
