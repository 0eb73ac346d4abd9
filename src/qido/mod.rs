//! QIDO-RS (PS3.18 §10.6): search for studies, series and instances in the index.

pub mod params;
pub mod render;
pub mod routes;
