//! `cargo +nightly fuzz run --fuzz-dir tests/fuzz crowd_answers`: see `roster_fuzz::crowd`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roster_fuzz::crowd::run(data));
