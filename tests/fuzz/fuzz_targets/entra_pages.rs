//! `cargo +nightly fuzz run --fuzz-dir tests/fuzz entra_pages`: see `roster_fuzz::entra`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roster_fuzz::entra::run(data));
