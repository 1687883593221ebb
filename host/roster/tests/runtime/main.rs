//! The plugin runtime: hostile plugins in the sandbox, loading and hot swap, and (ignored by
//! `cargo test`, run by `.ci/run`) transforms authored in JavaScript and Python.
//!
//! One test binary for all of them (`cargo test -p roster --test runtime`).

#[path = "../common/mod.rs"]
mod common;

mod authoring;
mod loading;
mod sandbox;
