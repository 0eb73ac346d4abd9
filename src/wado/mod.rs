//! WADO-RS (PS3.18 §10.4): retrieve instances, metadata, frames and bulk data, streamed from
//! the stored files.

pub mod body;
pub mod multipart;
pub mod negotiate;
pub mod routes;
