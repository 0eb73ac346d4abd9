//! dicomwebserver: a streaming DICOMweb server.
//!
//! The upload path is one data flow: [`stow`] splits the request body into parts, each part's
//! bytes flow through a [`stream::TrackableReadBuffer`] into the incremental reader in
//! [`dicom`], whose events feed the listeners; [`store`] makes finished instances durable and
//! visible. See ARCHITECTURE.md for the map and its invariants.

pub mod auth;
pub mod config;
pub mod config_file;
pub mod cors;
pub mod diag;
pub mod dicom;
pub mod index;
pub mod metrics;
pub mod qido;
pub mod refusal;
pub mod reindex;
pub mod server;
pub mod store;
pub mod stow;
pub mod stream;
pub mod upload;
pub mod wado;

pub use config::Config;
