//! `cargo +nightly fuzz run --fuzz-dir tests/fuzz scim_patch`: see `roster_fuzz::scim`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roster_fuzz::scim::patch(data));
