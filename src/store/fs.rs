//! [`FsStore`]: the embedded default store.
//!
//! Layout: `<root>/studies/<study>/series/<series>/instances/<sop>.dcm`, every component a
//! validated UID. A new instance is written to `<root>/tmp/` and synced there; committing links
//! it under its final name (atomic: a concurrent writer of the same UID either wins or sees the
//! winner), so a crash leaves either nothing or a complete file. Directories that gained an
//! entry are synced before the request is answered (group commit). Stale temp files are swept
//! at startup.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::dicom::validator::is_valid_uid;

/// Name of the temp directory under the root.
const TMP_DIR: &str = "tmp";
/// Block size for comparing a duplicate with the stored file.
const COMPARE_BLOCK: usize = 64 * 1024;

/// The embedded filesystem store.
#[derive(Debug)]
pub struct FsStore {
    root: PathBuf,
    tmp: PathBuf,
    allow_overwrite: bool,
    /// Makes temp names unique within the process.
    next_temp: AtomicU64,
    /// This process's id, part of temp names (read once, not per file).
    pid: u32,
    /// The filesystem refused an unnamed temp file once: use named ones from then on.
    named_only: AtomicBool,
}

/// A new instance's file before it is visible: an unnamed file in `tmp/` (`O_TMPFILE`,
/// which vanishes by itself if never linked, even after a crash), or a named one there,
/// removed on drop unless committed.
#[derive(Debug)]
pub struct TempInstance {
    /// The named temp file, or `None` for an unnamed one.
    path: Option<PathBuf>,
    /// The unnamed file, kept open until it is linked.
    unnamed: Option<File>,
    committed: bool,
}

impl TempInstance {
    /// A path that names the file, for linking and reading it.
    fn source(&self) -> PathBuf {
        match (&self.path, &self.unnamed) {
            (Some(path), _) => path.clone(),
            (None, Some(file)) => unnamed_path(file),
            (None, None) => PathBuf::new(),
        }
    }
}

impl Drop for TempInstance {
    fn drop(&mut self) {
        if let (false, Some(path)) = (self.committed, &self.path) {
            let _ = fs::remove_file(path);
        }
    }
}

/// The `/proc` path of an open unnamed file.
#[cfg(target_os = "linux")]
fn unnamed_path(file: &File) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

#[cfg(not(target_os = "linux"))]
fn unnamed_path(_file: &File) -> PathBuf {
    PathBuf::new()
}

/// Links `source` (a `/proc/self/fd` path of an unnamed file, or a plain path) as `target`,
/// failing with `AlreadyExists` if `target` exists.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn link(source: &Path, target: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let to_c = |path: &Path| {
        CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
    };
    let (source, target) = (to_c(source)?, to_c(target)?);
    // SAFETY: both pointers are valid NUL-terminated strings that outlive the call; linkat
    // only reads them. AT_SYMLINK_FOLLOW makes a /proc/self/fd link name the open file.
    let result = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            source.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn link(source: &Path, target: &Path) -> io::Result<()> {
    fs::hard_link(source, target)
}

/// What committing an instance did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Newly stored (or replaced, with overwrite allowed).
    Stored,
    /// The same bytes were already stored: nothing changed.
    AlreadyStored,
    /// Different bytes are stored under this SOP Instance UID; nothing was overwritten.
    Conflict,
}

/// UIDs that locate an instance.
#[derive(Debug, Clone, Copy)]
pub struct InstanceKey<'a> {
    pub study: &'a str,
    pub series: &'a str,
    pub instance: &'a str,
}

impl FsStore {
    /// Opens (creating if needed) the store at `root` and sweeps temp files left by a crash.
    pub fn open(root: &Path, allow_overwrite: bool) -> io::Result<FsStore> {
        let tmp = root.join(TMP_DIR);
        fs::create_dir_all(root.join("studies"))?;
        fs::create_dir_all(&tmp)?;
        let store = FsStore {
            root: root.to_path_buf(),
            tmp,
            allow_overwrite,
            next_temp: AtomicU64::new(0),
            pid: std::process::id(),
            named_only: AtomicBool::new(!cfg!(target_os = "linux")),
        };
        let swept = store.sweep_temp()?;
        if swept > 0 {
            tracing::info!(swept, dir = %store.tmp.display(), "removed stale temp files");
        }
        Ok(store)
    }

    /// Removes every temp file: at startup (left by a crash) and when shutdown abandons
    /// uploads. Nothing in `tmp/` was ever acknowledged. Returns how many were removed.
    pub fn sweep_temp(&self) -> io::Result<usize> {
        let mut swept = 0usize;
        for entry in fs::read_dir(&self.tmp)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                fs::remove_file(entry.path())?;
                swept += 1;
            }
        }
        Ok(swept)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates an empty temp file for a new instance.
    pub fn create_temp(&self) -> io::Result<(TempInstance, File)> {
        if !self.named_only.load(Ordering::Relaxed) {
            match self.create_unnamed() {
                Ok(created) => return Ok(created),
                Err(error) => {
                    tracing::info!(%error, "unnamed temp files are not available: using named ones");
                    self.named_only.store(true, Ordering::Relaxed);
                }
            }
        }
        let n = self.next_temp.fetch_add(1, Ordering::Relaxed);
        let path = self.tmp.join(format!("{}-{n}.part", self.pid));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok((
            TempInstance {
                path: Some(path),
                unnamed: None,
                committed: false,
            },
            file,
        ))
    }

    #[cfg(target_os = "linux")]
    fn create_unnamed(&self) -> io::Result<(TempInstance, File)> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .mode(0o644)
            .open(&self.tmp)?;
        let kept = file.try_clone()?;
        Ok((
            TempInstance {
                path: None,
                unnamed: Some(kept),
                committed: false,
            },
            file,
        ))
    }

    #[cfg(not(target_os = "linux"))]
    fn create_unnamed(&self) -> io::Result<(TempInstance, File)> {
        Err(io::Error::other("unnamed temp files need Linux"))
    }

    /// The final path of an instance, or `None` if a UID is not valid (the path guard).
    pub fn instance_path(&self, key: InstanceKey<'_>) -> Option<PathBuf> {
        if ![key.study, key.series, key.instance]
            .iter()
            .all(|uid| is_valid_uid(uid))
        {
            return None;
        }
        Some(
            self.root
                .join("studies")
                .join(key.study)
                .join("series")
                .join(key.series)
                .join("instances")
                .join(format!("{}.dcm", key.instance)),
        )
    }

    /// The final path of an instance relative to the root (as the index records it), or
    /// `None` if a UID is not valid.
    pub fn relative_path(&self, key: InstanceKey<'_>) -> Option<String> {
        let path = self.instance_path(key)?;
        let relative = path.strip_prefix(&self.root).ok()?;
        Some(relative.to_string_lossy().into_owned())
    }

    /// Makes a synced temp file visible under its final name. Directories that must be synced
    /// for the new entry to be durable are added to `dirty_dirs`. Blocking: call from a
    /// blocking thread.
    pub fn commit(
        &self,
        mut temp: TempInstance,
        key: InstanceKey<'_>,
        dirty_dirs: &mut BTreeSet<PathBuf>,
    ) -> io::Result<CommitOutcome> {
        let Some(path) = self.instance_path(key) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid UID in instance path",
            ));
        };
        let Some(dir) = path.parent() else {
            return Err(io::Error::other("instance path has no parent"));
        };
        refuse_symlinks(&self.root, &path)?;
        self.create_dirs(dir, dirty_dirs)?;
        let source = temp.source();
        if self.allow_overwrite {
            match &temp.path {
                Some(named) => fs::rename(named, &path)?,
                None => {
                    // Give the unnamed file a name beside its target, then replace atomically.
                    let n = self.next_temp.fetch_add(1, Ordering::Relaxed);
                    let staged = path.with_extension(format!("dcm.{}-{n}.new", self.pid));
                    link(&source, &staged)?;
                    if let Err(error) = fs::rename(&staged, &path) {
                        let _ = fs::remove_file(&staged);
                        return Err(error);
                    }
                }
            }
            temp.committed = true;
            dirty_dirs.insert(dir.to_path_buf());
            return Ok(CommitOutcome::Stored);
        }
        match link(&source, &path) {
            Ok(()) => {
                dirty_dirs.insert(dir.to_path_buf());
                // The temp name goes with `temp`'s drop; the data is already durable.
                Ok(CommitOutcome::Stored)
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                if same_contents(&source, &path)? {
                    // Another request may have linked it without having synced the entry
                    // yet: sync the whole chain before acknowledging it here too.
                    let mut ancestor = Some(dir);
                    while let Some(current) = ancestor.filter(|d| d.starts_with(&self.root)) {
                        dirty_dirs.insert(current.to_path_buf());
                        ancestor = current.parent();
                    }
                    Ok(CommitOutcome::AlreadyStored)
                } else {
                    Ok(CommitOutcome::Conflict)
                }
            }
            Err(error) => Err(error),
        }
    }

    /// Creates `dir` and its missing ancestors, noting each parent that gained an entry.
    fn create_dirs(&self, dir: &Path, dirty_dirs: &mut BTreeSet<PathBuf>) -> io::Result<()> {
        let mut missing = Vec::new();
        let mut current = dir;
        while !current.is_dir() {
            missing.push(current.to_path_buf());
            match current.parent() {
                Some(parent) if parent.starts_with(&self.root) => current = parent,
                _ => break,
            }
        }
        for created in missing.iter().rev() {
            match fs::create_dir(created) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
                Err(error) => return Err(error),
            }
            if let Some(parent) = created.parent() {
                dirty_dirs.insert(parent.to_path_buf());
            }
        }
        Ok(())
    }
}

/// Fails if any existing component of `path` below `root` is a symbolic link: the store never
/// creates one, so one there could only lead out of the storage root.
pub fn refuse_symlinks(root: &Path, path: &Path) -> io::Result<()> {
    let Ok(relative) = path.strip_prefix(root) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path outside the storage root",
        ));
    };
    let mut current = root.to_path_buf();
    for component in relative.components() {
        current.push(component);
        match fs::symlink_metadata(&current) {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} is a symbolic link: refusing to follow it out of the storage root",
                        current.display()
                    ),
                ))
            }
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Opens the stored file at `relative` (as the index records it) under `root`, refusing
/// symbolic links on the way.
pub fn open_stored(root: &Path, relative: &str) -> io::Result<File> {
    let path = root.join(relative);
    refuse_symlinks(root, &path)?;
    File::open(path)
}

/// Syncs directories so that new entries in them survive a crash. Blocking.
pub fn sync_dirs(dirs: &BTreeSet<PathBuf>) -> io::Result<()> {
    for dir in dirs {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Whether two files hold the same bytes.
fn same_contents(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let mut ba = vec![0u8; COMPARE_BLOCK];
    let mut bb = vec![0u8; COMPARE_BLOCK];
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbolic_links_below_the_root_are_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("x.dcm"), b"secret").expect("write");
        let studies = root.path().join("studies");
        std::fs::create_dir_all(&studies).expect("mkdir");
        std::os::unix::fs::symlink(outside.path(), studies.join("1.2")).expect("symlink");
        assert!(open_stored(root.path(), "studies/1.2/x.dcm").is_err());
        assert!(refuse_symlinks(root.path(), &studies.join("1.2").join("x.dcm")).is_err());
        std::fs::create_dir_all(studies.join("1.3")).expect("mkdir");
        std::fs::write(studies.join("1.3").join("y.dcm"), b"ok").expect("write");
        assert!(open_stored(root.path(), "studies/1.3/y.dcm").is_ok());
        // Paths not created yet are fine.
        assert!(refuse_symlinks(root.path(), &studies.join("1.4").join("z.dcm")).is_ok());
    }
}
