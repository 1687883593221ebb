//! `cargo +nightly fuzz run --fuzz-dir tests/fuzz schedule`: see `roster_fuzz::schedule`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roster_fuzz::schedule::run(data));
