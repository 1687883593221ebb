//! `cargo +nightly fuzz run --fuzz-dir tests/fuzz mapping_expr`: see `roster_fuzz::mapping`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roster_fuzz::mapping::expr(data));
