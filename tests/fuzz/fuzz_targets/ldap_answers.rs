//! `cargo +nightly fuzz run --fuzz-dir tests/fuzz ldap_answers`: see `roster_fuzz::ldap`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roster_fuzz::ldap::run(data));
