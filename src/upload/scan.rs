//! Finding what to upload: walking files and folders, and recognising DICOM Part 10 files by
//! their content (the `DICM` prefix after the preamble, or a file meta group right at the
//! start) rather than by name.

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::dicom::tokenizer::{Step, Token, TokenErrorKind, Tokenizer};

/// (0002,0003) Media Storage SOP Instance UID.
const MEDIA_STORAGE_SOP_INSTANCE: dicom_core::Tag = dicom_core::Tag(0x0002, 0x0003);

/// Most bytes read from the start of a file to find its meta group. Real meta groups are a
/// few hundred bytes; this leaves room for long private ones.
const HEAD_BYTES: usize = 64 * 1024;

/// Bytes read first: real meta groups end well within them.
const FIRST_READ: usize = 4096;

/// Longest UID kept from the meta group (UIDs are at most 64 characters).
const MAX_UID: usize = 64;

/// A regular file found under the paths given.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub path: PathBuf,
    pub size: u64,
}

/// What the start of a file says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A Part 10 file (possibly without preamble) and the SOP Instance UID its meta group
    /// names, if it names a valid one.
    Dicom { sop_instance: Option<String> },
    /// Not DICOM Part 10: skipped.
    NotDicom,
    /// Starts like DICOM but its meta group cannot be read: not sent.
    BadMeta(String),
}

/// Walks `paths` (files, and folders recursively) into regular files in a stable order:
/// each argument in turn, folder entries sorted by name. Symbolic links to files are followed;
/// links to folders are not (they could loop). An argument that cannot be read is an error;
/// unreadable entries inside folders are reported through `unreadable`.
pub fn walk(
    paths: &[PathBuf],
    unreadable: &mut Vec<(PathBuf, String)>,
) -> Result<Vec<Candidate>, String> {
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        if meta.is_dir() {
            walk_dir(path, &mut found, &mut seen, unreadable);
        } else if meta.is_file() {
            push_file(path.clone(), &meta, &mut found, &mut seen);
        } else {
            return Err(format!("{} is neither a file nor a folder", path.display()));
        }
    }
    Ok(found)
}

/// The same file reached twice (an argument inside another, a hard link, a link to a file) is
/// uploaded once: files are told apart by device and inode.
fn push_file(
    path: PathBuf,
    meta: &std::fs::Metadata,
    found: &mut Vec<Candidate>,
    seen: &mut HashSet<(u64, u64)>,
) {
    use std::os::unix::fs::MetadataExt;
    if seen.insert((meta.dev(), meta.ino())) {
        found.push(Candidate {
            path,
            size: meta.len(),
        });
    }
}

fn walk_dir(
    dir: &Path,
    found: &mut Vec<Candidate>,
    seen: &mut HashSet<(u64, u64)>,
    unreadable: &mut Vec<(PathBuf, String)>,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            unreadable.push((dir.to_path_buf(), error.to_string()));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => paths.push(entry.path()),
            Err(error) => unreadable.push((dir.to_path_buf(), error.to_string())),
        }
    }
    paths.sort();
    for path in paths {
        let link = std::fs::symlink_metadata(&path).map(|m| m.file_type().is_symlink());
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => {
                if !matches!(link, Ok(true)) {
                    walk_dir(&path, found, seen, unreadable);
                }
            }
            Ok(meta) if meta.is_file() => push_file(path, &meta, found, seen),
            Ok(_) => {}
            Err(error) => unreadable.push((path, error.to_string())),
        }
    }
}

/// Reads the start of `path` and tells whether it is DICOM Part 10: the first few KiB, and
/// more (up to [`HEAD_BYTES`]) only for a meta group that does not end within them.
pub fn probe(path: &Path) -> io::Result<Probe> {
    let mut file = std::fs::File::open(path)?;
    let mut head = Vec::with_capacity(FIRST_READ);
    (&mut file).take(FIRST_READ as u64).read_to_end(&mut head)?;
    if head.len() == FIRST_READ {
        if let Some(probe) = classify(&head, false) {
            return Ok(probe);
        }
        file.take((HEAD_BYTES - FIRST_READ) as u64)
            .read_to_end(&mut head)?;
    }
    Ok(probe_bytes(&head, head.len() < HEAD_BYTES))
}

/// Classifies a file from its first bytes; `whole` says they are the entire file.
pub fn probe_bytes(head: &[u8], whole: bool) -> Probe {
    classify(head, whole).unwrap_or_else(|| {
        Probe::BadMeta(format!(
            "file meta group not complete within the first {} bytes",
            head.len()
        ))
    })
}

/// Like [`probe_bytes`], or `None` when the bytes end inside the meta group.
fn classify(head: &[u8], whole: bool) -> Option<Probe> {
    let mut tokenizer = Tokenizer::new(1);
    let mut at = 0;
    // The value of (0002,0003) while it is being read.
    let mut capturing: Option<Vec<u8>> = None;
    let mut sop_instance = None;
    loop {
        let step = match tokenizer.next(&head[at..], whole) {
            Ok(step) => step,
            Err(error) if error.kind == TokenErrorKind::NotPart10 => return Some(Probe::NotDicom),
            Err(error) => return Some(Probe::BadMeta(error.to_string())),
        };
        let (consumed, token) = match step {
            Step::NeedMore(_) => return None,
            Step::Token { consumed, token } => (consumed, token),
        };
        at += consumed;
        match token {
            Token::Element(header) => {
                capturing = (header.tag == MEDIA_STORAGE_SOP_INSTANCE).then(Vec::new);
            }
            Token::Value { data, last } => {
                if let Some(value) = capturing.as_mut() {
                    value.extend_from_slice(&data[..data.len().min(MAX_UID + 1)]);
                }
                if last {
                    if let Some(value) = capturing.take() {
                        sop_instance = uid_text(&value);
                    }
                }
            }
            Token::MetaEnd { .. } => return Some(Probe::Dicom { sop_instance }),
            Token::End => {
                return Some(Probe::BadMeta(
                    "the file ends inside the file meta group".into(),
                ));
            }
            _ => {}
        }
    }
}

/// A UID value without its padding, if it looks like one.
fn uid_text(value: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(value).ok()?;
    let uid = text.trim_end_matches(['\0', ' ']).trim();
    let valid = !uid.is_empty()
        && uid.len() <= MAX_UID
        && uid.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    valid.then(|| uid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta_element(tag: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(vr);
        out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        out.extend_from_slice(value);
        out
    }

    fn meta(instance: &[u8]) -> Vec<u8> {
        let mut group = Vec::new();
        group.extend(meta_element(0x0002, b"UI", b"1.2.840.10008.5.1.4.1.1.7\0"));
        group.extend(meta_element(0x0003, b"UI", instance));
        group.extend(meta_element(0x0010, b"UI", b"1.2.840.10008.1.2.1\0"));
        let mut out = meta_element(0x0000, b"UL", &(group.len() as u32).to_le_bytes());
        out.extend(group);
        // (0008,0016) so the meta group has an end.
        out.extend_from_slice(&[0x08, 0x00, 0x16, 0x00, b'U', b'I', 2, 0, b'1', 0]);
        out
    }

    #[test]
    fn reads_uids_with_and_without_preamble() {
        let expected = Probe::Dicom {
            sop_instance: Some("1.2.3.4".into()),
        };
        let bare = meta(b"1.2.3.4\0");
        assert_eq!(probe_bytes(&bare, true), expected);
        let mut part10 = vec![0u8; 128];
        part10.extend_from_slice(b"DICM");
        part10.extend_from_slice(&bare);
        assert_eq!(probe_bytes(&part10, true), expected);
    }

    #[test]
    fn other_content_is_not_dicom() {
        assert_eq!(
            probe_bytes(b"hello, this is a text file\n", true),
            Probe::NotDicom
        );
        assert_eq!(probe_bytes(&[], true), Probe::NotDicom);
        assert_eq!(probe_bytes(&[0u8; 300], true), Probe::NotDicom);
    }

    #[test]
    fn a_broken_meta_group_is_reported() {
        let mut part10 = vec![0u8; 128];
        part10.extend_from_slice(b"DICM");
        part10.extend_from_slice(&meta(b"1.2.3.4\0")[..20]);
        assert!(matches!(probe_bytes(&part10, true), Probe::BadMeta(_)));
    }

    #[test]
    fn a_meta_group_longer_than_the_first_read_is_read_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut part10 = vec![0u8; 128];
        part10.extend_from_slice(b"DICM");
        let mut group = meta_element(0x0002, b"UI", b"1.2.840.10008.5.1.4.1.1.7\0");
        group.extend(meta_element(0x0003, b"UI", b"1.2.3.4\0"));
        group.extend(meta_element(0x0010, b"UI", b"1.2.840.10008.1.2.1\0"));
        // (0002,0102) Private Information, OB: a long header (4-byte length).
        group.extend_from_slice(&[0x02, 0x00, 0x02, 0x01, b'O', b'B', 0, 0]);
        group.extend_from_slice(&6000u32.to_le_bytes());
        group.extend(std::iter::repeat_n(0xAB, 6000));
        part10.extend(meta_element(
            0x0000,
            b"UL",
            &(group.len() as u32).to_le_bytes(),
        ));
        part10.extend(group);
        part10.extend_from_slice(&[0x08, 0x00, 0x16, 0x00, b'U', b'I', 2, 0, b'1', 0]);
        let path = dir.path().join("long-meta");
        std::fs::write(&path, &part10).expect("write");
        assert!(matches!(
            probe(&path).expect("probe"),
            Probe::Dicom { sop_instance: Some(uid) } if uid == "1.2.3.4"
        ));
    }

    #[test]
    fn each_file_is_found_once_and_linked_folders_are_not_walked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).expect("folders");
        std::fs::write(root.join("a/one"), b"1").expect("write");
        std::fs::write(root.join("a/b/two"), b"22").expect("write");
        std::fs::hard_link(root.join("a/one"), root.join("a/one-again")).expect("hard link");
        std::os::unix::fs::symlink(root.join("a/b/two"), root.join("a/two-link")).expect("link");
        std::os::unix::fs::symlink(root.join("a"), root.join("a/b/loop")).expect("link");
        let mut unreadable = Vec::new();
        let found = walk(&[root.join("a"), root.join("a/b/two")], &mut unreadable).expect("walk");
        let names: Vec<String> = found
            .iter()
            .map(|c| {
                c.path
                    .strip_prefix(root)
                    .expect("inside")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["a/b/two", "a/one"]);
        assert_eq!(found[0].size, 2);
        assert!(unreadable.is_empty());
        assert!(walk(&[root.join("missing")], &mut unreadable).is_err());
    }

    #[test]
    fn uid_text_rejects_non_uids() {
        assert_eq!(uid_text(b"1.2.3\0"), Some("1.2.3".into()));
        assert_eq!(uid_text(b"abc"), None);
        assert_eq!(uid_text(b""), None);
    }
}
