//! `cargo +nightly fuzz run --fuzz-dir tests/fuzz mapping_doc`: see `roster_fuzz::mapping`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roster_fuzz::mapping::document(data));
