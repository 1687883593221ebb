//! `cargo +nightly fuzz run --fuzz-dir tests/fuzz crowd_search`: see `roster_fuzz::crowd_search`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roster_fuzz::crowd_search::run(data));
