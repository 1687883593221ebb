//! `cargo +nightly fuzz run --fuzz-dir tests/fuzz export_jsonl`: see `roster_fuzz::export`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roster_fuzz::export::json_lines(data));
