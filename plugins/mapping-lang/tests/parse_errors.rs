//! Parse errors: exact line, column and message.

use roster_mapping::{Expr, MAX_DEPTH};

const CASES: &[(&str, &str)] = &[
    ("", "line 1, column 1: expected an expression, found end of input"),
    ("   ", "line 1, column 4: expected an expression, found end of input"),
    (
        r#"Trim([a]"#,
        "line 1, column 9: expected ')' after the arguments of Trim, found end of input",
    ),
    (
        r#"Replace([a], "b", "c""#,
        "line 1, column 22: expected ',' or ')' after argument 3 of Replace, found end of input",
    ),
    (
        r#"Left("x", 1, 2)"#,
        "line 1, column 1: Left takes 2 arguments (source, n), found 3",
    ),
    (
        r#"ToLower()"#,
        "line 1, column 1: ToLower takes 1 to 2 arguments (source, culture?), found 0",
    ),
    (
        r#"Join(" ")"#,
        "line 1, column 1: Join takes at least 2 arguments (separator, value, …), found 1",
    ),
    (
        r#"Switch([a], "d", "k")"#,
        "line 1, column 1: Switch takes an even number of arguments, at least 4 (source, default, key, value, …), found 3",
    ),
    (
        r#"Replace([a], "b")"#,
        "line 1, column 1: Replace takes 3 arguments (source, find, replacement) or Entra's 7 (source, oldValue, regexPattern, regexGroupName, replacementValue, replacementAttributeName, template), found 2",
    ),
    (
        "ToLowr([a])",
        "line 1, column 1: unknown function ToLowr; did you mean ToLower?",
    ),
    (
        "Frobnicate([a])",
        "line 1, column 1: unknown function Frobnicate; see the README for the list of functions",
    ),
    (
        "Now()",
        "line 1, column 1: Now is an Entra function Roster does not offer: transforms are pure (no clock, no randomness, no dates), so a record always maps the same way",
    ),
    (
        "Join(\" \",\n  [givenName],\n  Frob([x]))",
        "line 3, column 3: unknown function Frob; see the README for the list of functions",
    ),
    (
        r#"Coalesce([a], "unterminated)"#,
        "line 1, column 29: expected '\"' to close the string opened at line 1, column 15, found end of input",
    ),
    (
        "[mail",
        "line 1, column 6: expected ']' to close the attribute name opened at line 1, column 1, found end of input",
    ),
    (
        "Append([mail\n], \"x\")",
        "line 1, column 13: expected ']' to close the attribute name opened at line 1, column 8, found a line break",
    ),
    (
        "ToLower([])",
        "line 1, column 9: expected an attribute name between '[' and ']'",
    ),
    (
        "ToLower([mail]) x",
        "line 1, column 17: expected end of input after the expression, found the name x",
    ),
    (
        r#"RegexReplace([a], "(unclosed", "")"#,
        r#"line 1, column 19: RegexReplace: invalid regex "(unclosed": unclosed group"#,
    ),
    (
        "RegexMatch([a],\n    \"[z-a]\")",
        r#"line 2, column 5: RegexMatch: invalid regex "[z-a]": invalid character class range, the start must be <= the end"#,
    ),
    (
        "Left(, 2)",
        "line 1, column 6: expected an expression as an argument of Left, found an empty argument (only Entra's 7-argument Replace leaves arguments empty; write null)",
    ),
    (
        "mail",
        "line 1, column 1: expected an expression, found the name mail (strings need double quotes, attributes square brackets, functions parentheses)",
    ),
    (
        "ToLower [a]",
        "line 1, column 9: expected '(' after the function name ToLower, found the attribute [a]",
    ),
    (
        "ToLower(%)",
        "line 1, column 9: expected an expression as argument 1 of ToLower, found the character '%'",
    ),
    (
        r#"Append("Zoë" "x")"#,
        r#"line 1, column 14: expected ',' or ')' after argument 1 of Append, found the string "x""#,
    ),
    (
        r#"Join(",", [a], ToUpper([b] "x"))"#,
        r#"line 1, column 28: expected ',' or ')' after argument 1 of ToUpper, found the string "x""#,
    ),
    (
        "\tIIF(\r\n\t  true,\r\n\t  )",
        "line 3, column 4: expected an expression as an argument of IIF, found an empty argument (only Entra's 7-argument Replace leaves arguments empty; write null)",
    ),
    (
        r#"Replace([a], "x", "y", , , , )"#,
        "line 1, column 1: Replace with 7 arguments (source, oldValue, regexPattern, regexGroupName, replacementValue, replacementAttributeName, template) takes one of these sets: oldValue + replacementValue, oldValue + template, regexPattern + replacementValue, regexPattern + regexGroupName + replacementValue, regexPattern + regexGroupName + replacementAttributeName; leave the others empty",
    ),
    (
        r#"Replace([a], , "(?<n>x)", "m", "y", , )"#,
        r#"line 1, column 27: Replace: regexGroupName "m" is not a group of the pattern"#,
    ),
    (
        r#"Replace([a], , "(x", , "y", , )"#,
        r#"line 1, column 16: Replace: invalid regex "(x": unclosed group"#,
    ),
    (
        "ToLower(\"a\"))",
        "line 1, column 13: expected end of input after the expression, found ')'",
    ),
    (
        "ToLower(\"a\",,)",
        "line 1, column 13: expected an expression as an argument of ToLower, found an empty argument (only Entra's 7-argument Replace leaves arguments empty; write null)",
    ),
    (
        "1.",
        "line 1, column 2: expected end of input after the expression, found the character '.'",
    ),
    ("-", "line 1, column 1: expected an expression, found the character '-'"),
    (
        "1e999",
        "line 1, column 2: expected end of input after the expression, found the name e999",
    ),
];

#[test]
fn parse_errors_have_positions_and_expectations() {
    let mut failures = Vec::new();
    for (src, want) in CASES {
        let got = match Expr::parse(src) {
            Ok(_) => "parsed".to_string(),
            Err(e) => e.to_string(),
        };
        if got != *want {
            failures.push(format!("{src:?}\n    want {want}\n     got {got}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn error_fields_are_one_based() {
    let e = Expr::parse("Left(\n  [a],\n  2,\n  3)").unwrap_err();
    assert_eq!((e.line, e.column), (1, 1));
    let e = Expr::parse("ToLower(\n  [a]\n  [b])").unwrap_err();
    assert_eq!((e.line, e.column), (3, 3));
    assert!(
        e.message.starts_with("expected ',' or ')' after argument 1 of ToLower"),
        "{}",
        e.message
    );
}

#[test]
fn nesting_is_limited_without_overflowing_the_stack() {
    let ok = format!("{}[a]{}", "ToLower(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(Expr::parse(&ok).is_ok());
    let deep = format!("{}[a]{}", "ToLower(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
    let e = Expr::parse(&deep).unwrap_err();
    assert_eq!(e.column as usize, MAX_DEPTH * 8 + 1);
    assert!(e.message.contains("nest"), "{}", e.message);
    let hostile = "ToLower(".repeat(100_000);
    assert!(Expr::parse(&hostile).is_err());
}

#[test]
fn names_and_keywords_are_case_insensitive_and_whitespace_is_free() {
    for src in [
        "toLOWER( [a] )",
        "  ToLower(\n\t[a]\n)  ",
        "IIF(TRUE, NULL, False)",
        "replace([a], \"x\", \"y\")",
        "REGEXREPLACE([a],\"x\",\"y\")",
    ] {
        assert!(Expr::parse(src).is_ok(), "{src}");
    }
}

#[test]
fn numbers_too_large_for_f64_are_refused() {
    let big = "9".repeat(400);
    let e = Expr::parse(&big).unwrap_err();
    assert_eq!((e.line, e.column), (1, 1));
    assert!(e.message.contains("out of range"), "{}", e.message);
}
