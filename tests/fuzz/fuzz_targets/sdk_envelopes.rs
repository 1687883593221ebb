//! `cargo +nightly fuzz run --fuzz-dir tests/fuzz sdk_envelopes`: see `roster_fuzz::sdk`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roster_fuzz::sdk::run(data));
