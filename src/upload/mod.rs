//! `dicomwebserver stow`: uploads DICOM files and folders to any STOW-RS server.

use std::path::PathBuf;

/// Arguments of `dicomwebserver stow`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct StowArgs {
    /// Files and folders to upload (folders are walked; DICOM is recognised by content).
    #[arg(required = true, value_name = "PATHS")]
    pub paths: Vec<PathBuf>,
}

/// Runs the upload; the exit code is non-zero when anything failed.
pub async fn run(_args: StowArgs) -> std::process::ExitCode {
    std::process::ExitCode::from(1)
}
