//! Table-driven tests of every function: normal input, null, lists, edge cases, Unicode.
//! Results are compared as displayed: `null`, `"text"`, `3`, `true`, `["a", "b"]`, or
//! `error: Function: message`.

use roster_mapping::{Expr, FUNCTIONS};

fn attrs() -> Vec<(String, String)> {
    [
        ("upn", "Jane.Doe@Contoso.com"),
        ("otherMails", "A@X.com"),
        ("otherMails", "b@x.com"),
        ("empty", ""),
        ("n", "42"),
        ("given", "Zoë"),
        ("accountEnabled", "true"),
        ("sam", "CONTOSO\\jdoe"),
        ("dept", "Eng"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect()
}

fn ev(src: &str) -> String {
    let e = Expr::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let a = attrs();
    match e.eval(&a) {
        Ok(v) => v.to_string(),
        Err(e) => format!("error: {e}"),
    }
}

const CASES: &[(&str, &str)] = &[
    // Literals and attribute references.
    (r#""plain""#, r#""plain""#),
    (r#""a \"b\" \\ c""#, r#""a \"b\" \\ c""#),
    (r#""\d+""#, r#""\\d+""#),
    ("-3", "-3"),
    ("2.5", "2.5"),
    ("NULL", "null"),
    ("True", "true"),
    ("false", "false"),
    ("[upn]", r#""Jane.Doe@Contoso.com""#),
    ("[UPN]", r#""Jane.Doe@Contoso.com""#),
    ("[ upn ]", r#""Jane.Doe@Contoso.com""#),
    ("[otherMails]", r#"["A@X.com", "b@x.com"]"#),
    ("[missing]", "null"),
    ("[empty]", r#""""#),
    // ToLower
    (r#"ToLower("ABC")"#, r#""abc""#),
    ("ToLower([upn])", r#""jane.doe@contoso.com""#),
    ("ToLower([missing])", "null"),
    ("ToLower([otherMails])", r#"["a@x.com", "b@x.com"]"#),
    (r#"ToLower("ÄÖÜ STRASSE")"#, r#""äöü strasse""#),
    (r#"ToLower("ABC", "en-US")"#, r#""abc""#),
    (r#"tolower("X")"#, r#""x""#),
    ("ToLower(12)", r#""12""#),
    // ToUpper
    (r#"ToUpper("straße")"#, r#""STRASSE""#),
    ("ToUpper(null)", "null"),
    ("ToUpper([otherMails])", r#"["A@X.COM", "B@X.COM"]"#),
    (r#"ToUpper("é", "fr-FR")"#, r#""É""#),
    // Trim
    (r#"Trim("  a b  ")"#, r#""a b""#),
    ("Trim(null)", "null"),
    (r#"Trim(Split(" a , b ", ","))"#, r#"["a", "b"]"#),
    ("Trim(\"\u{3000}x\u{a0}\")", r#""x""#),
    (r#"Trim("")"#, r#""""#),
    // Replace (literal, 3 arguments)
    (r#"Replace("a.b.c", ".", "-")"#, r#""a-b-c""#),
    (r#"Replace("abc", "", "x")"#, r#""abc""#),
    (r#"Replace(null, "a", "b")"#, "null"),
    (
        r#"Replace([otherMails], "x.com", "y.org")"#,
        r#"["A@X.com", "b@y.org"]"#,
    ),
    (r#"Replace("aaa", "a", null)"#, r#""""#),
    (r#"Replace("abc", "B", "x")"#, r#""abc""#),
    (r#"Replace("Zoë Zoë", "ë", "e")"#, r#""Zoe Zoe""#),
    (r#"Replace("abc", [missing], "x")"#, r#""abc""#),
    // Replace (Entra's 7 arguments)
    (
        r#"Replace("+1 555", , "\\+(?<isd>\\d+) (?<num>.*)", , "${num}", , )"#,
        r#""555""#,
    ),
    (r#"Replace("a-b-c", "-", , , "+", , )"#, r#""a+b+c""#),
    (r#"Replace("Jane", "NAME", , , , , "Hello NAME!")"#, r#""Hello Jane!""#),
    (r#"Replace([missing], "NAME", , , , , "Hello NAME!")"#, "null"),
    (
        r##"Replace("abc123def45", , "(?<d>\d+)", "d", "#", , )"##,
        r##""abc#def#""##,
    ),
    (r#"Replace("x1y2", , "[a-z](\d)", "1", "_", , )"#, r#""x_y_""#),
    (
        r#"Replace([missing], , "^(?<local>[^@]+)@", "local", , [upn], )"#,
        r#""Jane.Doe""#,
    ),
    (
        r#"Replace("given", , "^(?<local>[^@]+)@", "local", , [upn], )"#,
        r#""given""#,
    ),
    (
        r#"Replace([missing], , "^(?<local>[^@]+)@", "local", , [missing], )"#,
        "null",
    ),
    (r#"Replace([otherMails], , "@.*$", , "", , )"#, r#"["A", "b"]"#),
    // RegexReplace
    (r#"RegexReplace("AAD-Dev", "^AAD-(.*)$", "$1")"#, r#""Dev""#),
    (
        r#"RegexReplace("john.smith", "(?<first>\w+)\.(?<last>\w+)", "${last}, ${first}")"#,
        r#""smith, john""#,
    ),
    (r#"RegexReplace(null, "a", "b")"#, "null"),
    (r#"RegexReplace([otherMails], "@.*", "")"#, r#"["A", "b"]"#),
    (r##"RegexReplace("a1b2", Append("\\", "d"), "#")"##, r##""a#b#""##),
    (
        r#"RegexReplace("a", Append("(", ""), "")"#,
        r#"error: RegexReplace: invalid regex "(": unclosed group"#,
    ),
    (
        r#"RegexReplace("a", null, "")"#,
        "error: RegexReplace: the pattern is null",
    ),
    (r#"RegexReplace("ü1ö22", "\d", "")"#, r#""üö""#),
    (r#"RegexReplace("price", "p", "$$")"#, r#""$rice""#),
    (r#"RegexReplace("abc", "x", "y")"#, r#""abc""#),
    // RegexMatch
    (r#"RegexMatch("abc123", "\d+$")"#, "true"),
    (r#"RegexMatch("abc", "^\d")"#, "false"),
    (r#"RegexMatch(null, "x")"#, "false"),
    (r#"RegexMatch([otherMails], "^b@")"#, "true"),
    // Split
    (r#"Split("a,b,,c", ",")"#, r#"["a", "b", "", "c"]"#),
    (r#"Split(null, ",")"#, "null"),
    (r#"Split("", ",")"#, "[]"),
    (r#"Split("abc", "")"#, r#"["abc"]"#),
    (r#"Split([otherMails], "@")"#, r#"["A", "X.com", "b", "x.com"]"#),
    (r#"Split("a→b→c", "→")"#, r#"["a", "b", "c"]"#),
    (r#"Split(12, "")"#, r#"["12"]"#),
    // Join
    (r#"Join(" ", "Jane", "Doe")"#, r#""Jane Doe""#),
    (r#"Join(",", [otherMails], "c")"#, r#""A@X.com,b@x.com,c""#),
    (r#"Join(" ", [missing], "x", null)"#, r#""x""#),
    (r#"Join("-", 1, true)"#, r#""1-true""#),
    (r#"Join(" ", [missing])"#, r#""""#),
    (r#"Join(null, "a", "b")"#, r#""ab""#),
    // Left
    (r#"Left("abcdef", 3)"#, r#""abc""#),
    (r#"Left("ab", 5)"#, r#""ab""#),
    (r#"Left("Zoë Roy", 3)"#, r#""Zoë""#),
    ("Left(null, 2)", "null"),
    (r#"Left("abc", 0)"#, r#""""#),
    (r#"Left("abc", -1)"#, r#""abc""#),
    ("Left([otherMails], 1)", r#"["A", "b"]"#),
    (
        r#"Left("x", "a")"#,
        r#"error: Left: the count must be a whole number, got "a""#,
    ),
    (r#"Left("abc", "2")"#, r#""ab""#),
    (r#"Left("abc", [n])"#, r#""abc""#),
    (
        r#"Left("abc", 1.5)"#,
        "error: Left: the count must be a whole number, got 1.5",
    ),
    (
        r#"Left("abc", [otherMails])"#,
        "error: Left: the count must be a whole number, got a list of 2 values",
    ),
    (
        r#"Left("abc", null)"#,
        "error: Left: the count must be a whole number, got null",
    ),
    (
        r#"Left("abc", true)"#,
        "error: Left: the count must be a whole number, got a boolean",
    ),
    // Right
    (r#"Right("abcdef", 2)"#, r#""ef""#),
    (r#"Right("ab", 5)"#, r#""ab""#),
    (r#"Right("Zoë", 1)"#, r#""ë""#),
    ("Right(null, 1)", "null"),
    (r#"Right("abc", 0)"#, r#""""#),
    // Mid
    (r#"Mid("abcdef", 2, 3)"#, r#""bcd""#),
    (r#"Mid("abc", 3, 10)"#, r#""c""#),
    (r#"Mid("abc", 5, 2)"#, r#""""#),
    (r#"Mid("Zoë Roy", 3, 1)"#, r#""ë""#),
    ("Mid(null, 1, 1)", "null"),
    (r#"Mid("abc", 0, 1)"#, "error: Mid: start must be 1 or more, got 0"),
    (
        r#"Mid("abc", 1, -1)"#,
        "error: Mid: length must not be negative, got -1",
    ),
    ("Mid([otherMails], 1, 1)", r#"["A", "b"]"#),
    (r#"Mid("abc", 2, 0)"#, r#""""#),
    (r#"Mid("abc", 1, 99999999999999)"#, r#""abc""#),
    // Append
    (r#"Append("jdoe", "@contoso.com")"#, r#""jdoe@contoso.com""#),
    (r#"Append(null, "x")"#, "null"),
    (r#"Append("a", null)"#, r#""a""#),
    (r#"Append([otherMails], "!")"#, r#"["A@X.com!", "b@x.com!"]"#),
    (r#"Append(1, 2)"#, r#""12""#),
    // Coalesce
    (r#"Coalesce([missing], "", "x")"#, r#""x""#),
    ("Coalesce([missing], null)", "null"),
    (r#"Coalesce([otherMails], "x")"#, r#"["A@X.com", "b@x.com"]"#),
    (r#"Coalesce("a", Left("x", "bad"))"#, r#""a""#),
    (r#"Coalesce([empty], Split("", ","), [given])"#, r#""Zoë""#),
    // IIF
    (r#"IIF(true, "y", "n")"#, r#""y""#),
    (r#"IIF([accountEnabled], "on", "off")"#, r#""on""#),
    (r#"IIF([missing], "y", "n")"#, r#""n""#),
    (
        r#"IIF("maybe", 1, 2)"#,
        r#"error: IIF: the condition must be true or false, got "maybe""#,
    ),
    (r#"IIF(false, Left("x", "a"), "ok")"#, r#""ok""#),
    (r#"IIF(IsPresent([upn]), 1, 2)"#, "1"),
    (
        r#"IIF([otherMails], 1, 2)"#,
        "error: IIF: the condition must be true or false, got a list of 2 values",
    ),
    // Switch
    (r#"Switch([dept], "other", "Eng", "dev", "Sales", "sales")"#, r#""dev""#),
    (r#"Switch("HR", "other", "Eng", "dev", "Sales", "sales")"#, r#""other""#),
    (r#"Switch([missing], "other", "Eng", "dev")"#, r#""other""#),
    (r#"Switch("eng", "other", "Eng", "dev")"#, r#""other""#),
    (r#"Switch(1, "d", "1", "one")"#, r#""one""#),
    (r#"Switch("a", "d", "a", "first", "a", "second")"#, r#""first""#),
    (
        r#"Switch([otherMails], "d", "a", "b")"#,
        "error: Switch: the source must be one value, got a list of 2 values",
    ),
    // NormalizeDiacritics
    (r#"NormalizeDiacritics("Zoë Roy")"#, r#""Zoe Roy""#),
    (r#"NormalizeDiacritics("Łukasz Żółć")"#, r#""Lukasz Zolc""#),
    (r#"NormalizeDiacritics("Straße Ærø Øre")"#, r#""Strasse AEro Ore""#),
    (r#"NormalizeDiacritics("Ångström ČŠŽ ñ")"#, r#""Angstrom CSZ n""#),
    (r#"NormalizeDiacritics("한국 日本")"#, r#""한국 日本""#),
    ("NormalizeDiacritics(null)", "null"),
    (r#"NormalizeDiacritics(Split("é,ü", ","))"#, r#"["e", "u"]"#),
    (r#"NormalizeDiacritics("plain")"#, r#""plain""#),
    // StripSpaces
    ("StripSpaces(\" a b\tc \")", r#""abc""#),
    ("StripSpaces(null)", "null"),
    (r#"StripSpaces(Split("a b,c d", ","))"#, r#"["ab", "cd"]"#),
    (r#"StripSpaces("Zoë Roy")"#, r#""ZoëRoy""#),
    // Word
    (r#"Word("The quick brown fox", 3, " ")"#, r#""brown""#),
    (r#"Word("This,string!has&many separators", 3, ",!&#")"#, r#""has""#),
    (r#"Word("a  b", 2, " ")"#, r#""b""#),
    (r#"Word("a b", 5, " ")"#, r#""""#),
    (r#"Word("a b", 0, " ")"#, r#""""#),
    (r#"Word(null, 1, " ")"#, "null"),
    (r#"Word([otherMails], 1, "@")"#, r#"["A", "b"]"#),
    (r#"Word("Zoë·Roy", 2, "·")"#, r#""Roy""#),
    (
        r#"Word("a b", "x", " ")"#,
        r#"error: Word: the word number must be a whole number, got "x""#,
    ),
    // StripDomain
    (r#"StripDomain("jane@contoso.com")"#, r#""jane""#),
    (r#"StripDomain("CONTOSO\\jdoe")"#, r#""jdoe""#),
    ("StripDomain([sam])", r#""jdoe""#),
    (r#"StripDomain("plain")"#, r#""plain""#),
    ("StripDomain(null)", "null"),
    ("StripDomain([otherMails])", r#"["A", "b"]"#),
    (r#"StripDomain("a@b@c")"#, r#""a@b""#),
    (r#"StripDomain("zoë@exämple.de")"#, r#""zoë""#),
    // Not, And, Or
    ("Not(true)", "false"),
    (r#"Not("false")"#, "true"),
    ("Not(null)", "true"),
    (
        r#"Not("x")"#,
        r#"error: Not: the condition must be true or false, got "x""#,
    ),
    (r#"And(true, "true", 1)"#, "true"),
    ("And(true, false)", "false"),
    (r#"And(false, Left("x", "a"))"#, "false"),
    (r#"Or(false, null, "yes")"#, "true"),
    ("Or(false, false)", "false"),
    (r#"Or(true, Left("x", "a"))"#, "true"),
    // IsNull, IsNullOrEmpty, IsPresent, IsString
    ("IsNull([missing])", "true"),
    (r#"IsNull("")"#, "false"),
    ("IsNull([upn])", "false"),
    (r#"IsNullOrEmpty("")"#, "true"),
    ("IsNullOrEmpty([empty])", "true"),
    (r#"IsNullOrEmpty(Split("", ","))"#, "true"),
    (r#"IsNullOrEmpty("x")"#, "false"),
    ("IsNullOrEmpty(null)", "true"),
    ("IsPresent([upn])", "true"),
    ("IsPresent([missing])", "false"),
    (r#"IsPresent("")"#, "false"),
    ("IsPresent([otherMails])", "true"),
    (r#"IsString("x")"#, "true"),
    ("IsString(1)", "false"),
    ("IsString(null)", "false"),
    ("IsString([otherMails])", "false"),
    // Contains, StartsWith, EndsWith
    (r#"Contains([upn], "CONTOSO")"#, "true"),
    (r#"Contains("ÄBC", "äb")"#, "true"),
    (r#"Contains(null, "a")"#, "false"),
    (r#"Contains([otherMails], "B@")"#, "true"),
    (r#"Contains("abc", null)"#, "false"),
    (r#"Contains("abc", "")"#, "true"),
    (r#"Contains("ab", "abc")"#, "false"),
    (r#"StartsWith([upn], "jane")"#, "true"),
    (r#"StartsWith("ab", "abc")"#, "false"),
    (r#"StartsWith("Émile", "é")"#, "true"),
    (r#"StartsWith(null, "")"#, "false"),
    (r#"StartsWith([otherMails], "B")"#, "true"),
    (r#"EndsWith([upn], "@CONTOSO.COM")"#, "true"),
    (r#"EndsWith("a", "ba")"#, "false"),
    (r#"EndsWith("Zoë", "Ë")"#, "true"),
    (r#"EndsWith([missing], "x")"#, "false"),
    // Equals
    (r#"Equals("ABC", "abc")"#, "true"),
    ("Equals(1, 1.0)", "true"),
    ("Equals(null, null)", "true"),
    (r#"Equals(null, "")"#, "false"),
    (r#"Equals([otherMails], "B@X.COM")"#, "true"),
    (r#"Equals("1", 1)"#, "true"),
    (r#"Equals("Ä", "ä")"#, "true"),
    (r#"Equals("a", "b")"#, "false"),
    (
        r#"Equals("a", [otherMails])"#,
        "error: Equals: value2 must be one value, got a list of 2 values",
    ),
    // InStr
    (r#"InStr("abcabc", "c")"#, "3"),
    (r#"InStr("abcabc", "c", 4)"#, "6"),
    (r#"InStr("ABC", "b")"#, "0"),
    (r#"InStr("ABC", "b", 1, "vbTextCompare")"#, "2"),
    (r#"InStr("ABC", "B", 1, "vbBinaryCompare")"#, "2"),
    (r#"InStr(null, "a")"#, "0"),
    (r#"InStr("Zoë Roy", "R")"#, "5"),
    (
        r#"InStr("abc", "x", 0)"#,
        "error: InStr: start must be 1 or more, got 0",
    ),
    (
        r#"InStr("a", "a", 1, "nope")"#,
        r#"error: InStr: compareType must be vbBinaryCompare or vbTextCompare, got "nope""#,
    ),
    (r#"InStr("abc", "c", 10)"#, "0"),
    (r#"InStr("abc", "")"#, "1"),
    // PCase
    (r#"PCase("NEW ZEALAND")"#, r#""New Zealand""#),
    (r#"PCase("jean-luc picard")"#, r#""Jean-Luc Picard""#),
    (r#"PCase("joe_smith", "_")"#, r#""Joe_Smith""#),
    ("PCase(null)", "null"),
    (r#"PCase("élodie DURAND")"#, r#""Élodie Durand""#),
    (r#"PCase(Split("ann,BOB", ","))"#, r#"["Ann", "Bob"]"#),
    // RemoveDuplicates
    (r#"RemoveDuplicates(Split("a,b,a,c,b", ","))"#, r#"["a", "b", "c"]"#),
    (r#"RemoveDuplicates("x")"#, r#""x""#),
    ("RemoveDuplicates(null)", "null"),
    // Count
    ("Count([otherMails])", "2"),
    ("Count([upn])", "1"),
    ("Count([missing])", "0"),
    (r#"Count(Split("", ","))"#, "0"),
    // Item
    ("Item([otherMails], 2)", r#""b@x.com""#),
    ("Item([otherMails], 3)", "null"),
    ("Item([otherMails], 0)", "null"),
    ("Item([upn], 1)", r#""Jane.Doe@Contoso.com""#),
    ("Item(null, 1)", "null"),
    (
        r#"Item([otherMails], "x")"#,
        r#"error: Item: the index must be a whole number, got "x""#,
    ),
    // CStr
    ("CStr(42)", r#""42""#),
    ("CStr(1.5)", r#""1.5""#),
    ("CStr(true)", r#""true""#),
    ("CStr(null)", "null"),
    (r#"CStr("x")"#, r#""x""#),
    ("CStr([otherMails])", r#"["A@X.com", "b@x.com"]"#),
    // CBool
    (r#"CBool("TRUE")"#, "true"),
    (r#"CBool("no")"#, "false"),
    ("CBool(0)", "false"),
    (r#"CBool("2")"#, "true"),
    ("CBool(null)", "false"),
    ("CBool([accountEnabled])", "true"),
    (r#"CBool("maybe")"#, r#"error: CBool: cannot make a boolean of "maybe""#),
    // First, Last
    ("First([otherMails])", r#""A@X.com""#),
    ("Last([otherMails])", r#""b@x.com""#),
    ("First(null)", "null"),
    (r#"First("x")"#, r#""x""#),
    (r#"Last(Split("", ","))"#, "null"),
    ("Last(7)", r#""7""#),
    // Composition
    ("ToLower(StripDomain([upn]))", r#""jane.doe""#),
    (r#"Coalesce([displayName], Join(" ", [given], [surname]))"#, r#""Zoë""#),
    (
        r#"ToLower(Join(".", Left(NormalizeDiacritics([given]), 1), "roy"))"#,
        r#""z.roy""#,
    ),
    (
        r#"IIF(Equals([dept], "eng"), Append("dev-", [dept]), "other")"#,
        r#""dev-Eng""#,
    ),
];

#[test]
fn every_function_case() {
    let mut failures = Vec::new();
    for (src, want) in CASES {
        let got = ev(src);
        if got != *want {
            failures.push(format!("{src}\n    want {want}\n     got {got}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn every_function_has_cases() {
    for f in FUNCTIONS {
        let call = format!("{}(", f.name.to_lowercase());
        let n = CASES
            .iter()
            .filter(|(src, _)| src.to_lowercase().contains(&call))
            .count();
        assert!(n >= 2, "{} has {n} test cases", f.name);
    }
}

#[test]
fn every_function_is_documented_in_the_readme() {
    let readme = include_str!("../README.md");
    for f in FUNCTIONS {
        assert!(readme.contains(&format!("`{}(", f.name)), "README lacks {}", f.name);
    }
}

#[test]
fn expressions_are_reusable_and_values_borrow() {
    let e = Expr::parse("[upn]").unwrap();
    let a = attrs();
    for _ in 0..3 {
        match e.eval(&a).unwrap() {
            roster_mapping::Value::Str(std::borrow::Cow::Borrowed(s)) => assert_eq!(s, "Jane.Doe@Contoso.com"),
            other => panic!("expected a borrowed string, got {other:?}"),
        }
    }
    assert_eq!(e.source(), "[upn]");
}

#[test]
fn dynamic_patterns_beyond_the_cache_still_work() {
    let a = attrs();
    for i in 0..100 {
        let e = Expr::parse(&format!(r#"RegexReplace("x{i}y", Append("{i}", ""), "-")"#)).unwrap();
        assert_eq!(e.eval(&a).unwrap().to_string(), r#""x-y""#);
    }
}
