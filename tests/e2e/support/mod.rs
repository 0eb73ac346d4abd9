//! Shared machinery for the end-to-end tests: the server under test, a raw HTTP/1.1 client,
//! DICOM and multipart generators, and the response model.

pub mod consistency;
pub mod dicom;
pub mod generated;
pub mod http;
pub mod instances;
pub mod multipart;
pub mod multipart_read;
pub mod response;
pub mod server;
pub mod stow;
pub mod studies;
