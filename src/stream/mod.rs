//! Request bytes in flight. Only this module holds bytes of a request body, and never more
//! than a buffer's capacity (plus one pending `ensure_available` request).

mod buffer;

pub use buffer::{BufferOptions, StreamError, TrackableReadBuffer};
