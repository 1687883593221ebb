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

/// Why a JSON answer did not decode, without quoting it (the parser's own words may repeat the
/// body, which can carry what the server should not have sent): what kind of fault, where, and
/// how long the body was.
pub fn json_fault(e: &serde_json::Error, body_len: usize) -> String {
    format!(
        "not the JSON its API documents ({} at line {}, column {} of a {body_len}-byte body)",
        match e.classify() {
            serde_json::error::Category::Data => "unexpected fields or types",
            serde_json::error::Category::Eof => "cut short",
            serde_json::error::Category::Syntax | serde_json::error::Category::Io => "not JSON",
        },
        e.line(),
        e.column()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_fault_says_where_and_never_quotes_the_body() {
        let body = br#"{"secret": "s3cr3t", "values": 5"#;
        let e = serde_json::from_slice::<serde_json::Value>(body).unwrap_err();
        let said = json_fault(&e, body.len());
        assert!(
            said.starts_with("not the JSON its API documents (cut short at line 1"),
            "{said}"
        );
        assert!(!said.contains("s3cr3t"), "{said}");
    }
}
