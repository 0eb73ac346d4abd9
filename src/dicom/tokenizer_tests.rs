//! Tests of the tokenizer against dicom-parser as an oracle.
