//! Compiling regexes: one-line error messages, size limits, and a small per-thread cache for
//! patterns only known at evaluation time.

use std::cell::RefCell;

use regex::{Regex, RegexBuilder};

/// Compiled size limit of one regex (bytes); a hostile pattern cannot eat the sandbox's memory.
const SIZE_LIMIT: usize = 1 << 20;
/// Patterns computed at evaluation time kept compiled, per thread.
const CACHE_SIZE: usize = 32;

/// Compiles `pattern`; the error is one line: `invalid regex "(a": unclosed group`.
pub(crate) fn compile(pattern: &str) -> Result<Regex, String> {
    build(pattern, false)
}

/// Compiles `pattern`, case-insensitive unless the pattern says `(?-i)`.
pub(crate) fn compile_ci(pattern: &str) -> Result<Regex, String> {
    build(pattern, true)
}

fn build(pattern: &str, case_insensitive: bool) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .case_insensitive(case_insensitive)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let detail = match &e {
                regex::Error::Syntax(text) => text
                    .lines()
                    .rev()
                    .find_map(|l| l.trim().strip_prefix("error:"))
                    .map(|l| l.trim().to_string())
                    .unwrap_or_else(|| text.lines().last().unwrap_or("syntax error").trim().to_string()),
                regex::Error::CompiledTooBig(_) => "the compiled pattern is too big".to_string(),
                other => other.to_string(),
            };
            format!("invalid regex {}: {detail}", crate::value::quote(pattern))
        })
}

thread_local! {
    static CACHE: RefCell<Vec<(String, Regex)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with the compiled `pattern`, compiling it at most once per thread while it stays
/// among the `CACHE_SIZE` most recently used patterns.
pub(crate) fn with_dynamic<T>(pattern: &str, f: impl FnOnce(&Regex) -> T) -> Result<T, String> {
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(i) = cache.iter().position(|(p, _)| p == pattern) {
            if i != 0 {
                let hit = cache.remove(i);
                cache.insert(0, hit);
            }
        } else {
            let re = compile(pattern)?;
            if cache.len() >= CACHE_SIZE {
                cache.pop();
            }
            cache.insert(0, (pattern.to_string(), re));
        }
        Ok(f(&cache[0].1))
    })
}
