//! Shared machinery of the fuzz targets: fuzzer-chosen chunk boundaries, valid generated
//! instances to mutate, the STOW input decoder, and the in-process server the STOW target
//! posts to.
//!
//! The DICOM and multipart builders are the end-to-end tests' own (`tests/e2e/support`),
//! included by path so that the fuzzer's seeds and the tests describe the same bytes.

pub mod chunks;
pub mod instances;
pub mod server;
pub mod stow_input;

/// The e2e tests' annotated DICOM byte builder.
#[allow(dead_code)]
#[path = "../../tests/e2e/support/dicom.rs"]
pub mod dicom;

/// The e2e tests' multipart body builder.
#[allow(dead_code)]
#[path = "../../tests/e2e/support/multipart.rs"]
pub mod multipart;

pub use chunks::ChunkPlan;
