//! The `stow` uploader against the real server.
