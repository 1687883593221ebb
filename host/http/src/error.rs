//! Error chains from the HTTP stack: the innermost cause is the one that says what happened
//! ("connection refused", "certificate expired"), so that is what users are shown.

/// The innermost source of an error chain, as text.
pub fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(s) = last.source() {
        last = s;
    }
    last.to_string()
}
