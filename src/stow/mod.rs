//! STOW-RS (PS3.18 §10.5): routes, the multipart splitter, per-part storage, outcomes and the
//! Store Instances Response.

pub mod commit;
pub mod content_type;
pub mod multipart;
pub mod outcome;
mod part;
pub mod response;
pub mod routes;

#[cfg(test)]
mod multipart_tests;
