//! The bodies of Roster's fuzz targets, one module per parser of input Roster does not control.
//!
//! Each `fuzz_targets/<name>.rs` calls one `run` function here, so the same body runs under
//! libFuzzer (`cargo +nightly fuzz run --fuzz-dir tests/fuzz <name>`) and, on the stable
//! toolchain, over the committed corpus in `corpus/<name>/` (`cargo test` in this folder).
//!
//! A body panics only when the code under test broke a promise: a panic on input, or an
//! answer that contradicts another way of computing it (a round trip, a second reader, a
//! reference implementation). Errors for bad input are the expected outcome, not findings.

pub mod crowd;
pub mod crowd_search;
pub mod entra;
pub mod export;
pub mod ldap;
pub mod mapping;
pub mod schedule;
pub mod scim;
pub mod sdk;
pub mod split;
pub mod wire;

/// A target's body: one fuzz input.
pub type Body = fn(&[u8]);

/// The fuzz targets, by the name of their file in `fuzz_targets/` and of their corpus folder.
pub const TARGETS: &[(&str, Body)] = &[
    ("mapping_expr", mapping::expr),
    ("mapping_doc", mapping::document),
    ("schedule", schedule::run),
    ("wire", wire::run),
    ("export_json", export::json),
    ("export_jsonl", export::json_lines),
    ("entra_pages", entra::run),
    ("crowd_answers", crowd::run),
    ("crowd_search", crowd_search::run),
    ("ldap_answers", ldap::run),
    ("sdk_envelopes", sdk::run),
    ("scim_filter", scim::filter),
    ("scim_patch", scim::patch),
];

/// Every target's body over its committed corpus, on the stable toolchain: what `./dev test`
/// runs, so a corpus entry (a regression input among them) that panics fails the tests.
#[cfg(test)]
mod corpus {
    use std::path::Path;

    use super::TARGETS;

    #[test]
    fn every_target_runs_clean_over_its_corpus() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for (name, body) in TARGETS {
            assert!(
                root.join("fuzz_targets").join(format!("{name}.rs")).is_file(),
                "fuzz_targets/{name}.rs is missing"
            );
            let dir = root.join("corpus").join(name);
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.expect("a corpus entry").path())
                .collect();
            files.sort();
            assert!(!files.is_empty(), "{} holds no seeds", dir.display());
            for f in files {
                let data = std::fs::read(&f).expect("a corpus file");
                let run = std::panic::catch_unwind(|| body(&data));
                assert!(run.is_ok(), "{name} panicked on {}", f.display());
            }
        }
    }

    #[test]
    fn every_fuzz_target_file_is_listed() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz_targets");
        for entry in std::fs::read_dir(dir).expect("fuzz_targets/") {
            let path = entry.expect("an entry").path();
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            assert!(
                TARGETS.iter().any(|(name, _)| *name == stem),
                "{} is not in TARGETS, so its corpus is never run by the tests",
                path.display()
            );
        }
    }
}
