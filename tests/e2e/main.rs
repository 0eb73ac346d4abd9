//! End-to-end tests of dicomwebserver: the real server (in-process on 127.0.0.1:0, or the real
//! binary), real HTTP/1.1 over TCP written byte by byte, and checks of the bytes on disk.
//! One integration test binary; each module names one area of behaviour.

mod support;

mod cli;
mod concurrency;
mod config_file;
mod diagnostics;
mod faults;
mod framing;
mod index;
mod large;
mod load;
mod malformed;
mod operations;
mod outcomes;
mod properties;
mod qido;
mod security;
mod structures;
mod syntaxes;
mod transport;
mod uids;
mod uploader;
mod wado;
