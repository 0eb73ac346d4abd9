//! Tests of the multipart splitter over every chunking of real-client framings.
