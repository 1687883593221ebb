//! `cargo +nightly fuzz run --fuzz-dir tests/fuzz wire`: see `roster_fuzz::wire`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roster_fuzz::wire::run(data));
