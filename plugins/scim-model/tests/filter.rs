//! The filter grammar against realistic users and groups: every operator on every type,
//! precedence, grouping, `not`, value filters, case rules, invalid filters and their positions.

use roster_scim::filter::MAX_DEPTH;
use roster_scim::schema::{ENTERPRISE_URN, ResourceSchema};
use roster_scim::{AttrPath, Filter, ScimType};
use serde_json::{Value, json};

fn alice() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_URN],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "AbC-1",
        "userName": "Alice.Smith@Contoso.com",
        "displayName": "Alice Smith",
        "name": {"givenName": "Alice", "familyName": "Smith"},
        "active": true,
        "title": "",
        "emails": [
            {"value": "alice@contoso.com", "type": "work", "primary": true},
            {"value": "alice@home.example", "type": "home"}
        ],
        "x509Certificates": [{"value": "TUlJQw=="}],
        "meta": {"created": "2026-01-01T10:00:00+02:00", "lastModified": "2026-03-01T00:00:00Z",
                 "resourceType": "User", "version": "W/\"3\""},
        ENTERPRISE_URN: {"employeeNumber": "701984", "department": "R&D",
                         "manager": {"value": "26118915"}}
    })
}

fn bob() -> Value {
    json!({
        "id": "b", "userName": "bob", "active": "False",
        "emails": [{"value": "bob@fabrikam.com", "type": "work"}],
        "meta": {"created": "2025-06-01T00:00:00Z"}
    })
}

/// Which of alice and bob the filter matches.
fn who(filter: &str) -> Vec<&'static str> {
    let f = Filter::parse(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
    let user = ResourceSchema::user();
    let mut out = Vec::new();
    if f.matches(&alice(), user) {
        out.push("alice");
    }
    if f.matches(&bob(), user) {
        out.push("bob");
    }
    out
}

const BOTH: [&str; 2] = ["alice", "bob"];
const NONE: [&str; 0] = [];

#[test]
fn string_operators_case_insensitive_where_the_schema_says() {
    assert_eq!(who(r#"userName eq "alice.smith@contoso.com""#), ["alice"]);
    assert_eq!(who(r#"userName ne "alice.smith@contoso.com""#), ["bob"]);
    assert_eq!(who(r#"userName co "SMITH""#), ["alice"]);
    assert_eq!(who(r#"userName sw "AL""#), ["alice"]);
    assert_eq!(who(r#"userName ew ".COM""#), ["alice"]);
    assert_eq!(who(r#"userName gt "b""#), ["bob"]);
    assert_eq!(who(r#"userName ge "bob""#), ["bob"]);
    assert_eq!(who(r#"userName lt "b""#), ["alice"]);
    assert_eq!(who(r#"userName le "BOB""#), BOTH);
    // caseExact: id and externalId.
    assert_eq!(who(r#"externalId eq "AbC-1""#), ["alice"]);
    assert_eq!(who(r#"externalId eq "abc-1""#), NONE);
    assert_eq!(who(r#"externalId co "bC""#), ["alice"]);
    assert_eq!(who(r#"externalId co "BC""#), NONE);
    assert_eq!(who(r#"id sw "2819C""#), NONE);
    // A string attribute never equals a number.
    assert_eq!(who("userName eq 5"), NONE);
}

#[test]
fn attribute_names_and_operators_ignore_case() {
    assert_eq!(who(r#"USERNAME EQ "bob""#), ["bob"]);
    assert_eq!(who(r#"UserName Eq "bob" OR Name.GivenName sW "al""#), BOTH);
    assert_eq!(who(r#"EMAILS[TYPE eq "work" AnD Value co "fabrikam"]"#), ["bob"]);
    assert_eq!(who(r#"userName eq "bob" and ACTIVE eq FALSE"#), ["bob"]);
    assert_eq!(who("title pr or NOT (userName pr)"), NONE);
}

#[test]
fn booleans_including_entras_strings() {
    assert_eq!(who("active eq true"), ["alice"]);
    assert_eq!(who("active eq false"), ["bob"]);
    assert_eq!(who("active ne true"), ["bob"]);
    assert_eq!(who("emails.primary eq true"), ["alice"]);
    assert_eq!(
        who(r#"active eq "true""#),
        ["alice"],
        "a string literal reads as a boolean too"
    );
    assert_eq!(who("active co true"), NONE);
}

#[test]
fn ordering_a_boolean_or_binary_is_an_invalid_filter() {
    let user = ResourceSchema::user();
    for text in [
        "active gt false",
        "x509Certificates.value lt \"a\"",
        "emails[primary ge true]",
    ] {
        let f = Filter::parse(text).unwrap();
        let e = f.validate(user).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidFilter), "{text}");
        assert!(!f.matches(&alice(), user), "{text}");
    }
    for fine in [
        "active eq false",
        "userName gt \"a\"",
        "meta.created lt \"2026-01-01T00:00:00Z\"",
        "nosuch gt 1",
    ] {
        Filter::parse(fine).unwrap().validate(user).unwrap();
    }
}

#[test]
fn date_times_compare_as_instants() {
    // alice's 10:00+02:00 is 08:00Z.
    assert_eq!(who(r#"meta.created eq "2026-01-01T08:00:00Z""#), ["alice"]);
    assert_eq!(who(r#"meta.created gt "2026-01-01T07:59:59.999Z""#), ["alice"]);
    assert_eq!(who(r#"meta.created ge "2026-01-01T08:00:00Z""#), ["alice"]);
    assert_eq!(who(r#"meta.created lt "2026-01-01T08:00:00Z""#), ["bob"]);
    assert_eq!(who(r#"meta.created le "2026-01-01T09:00:00+01:00""#), BOTH);
    assert_eq!(who(r#"meta.created ne "2025-06-01T02:00:00+02:00""#), ["alice"]);
    assert_eq!(who(r#"meta.created sw "2025""#), ["bob"]);
    assert_eq!(who(r#"meta.lastModified gt "not a time""#), NONE);
    assert_eq!(who(r#"meta.lastModified pr"#), ["alice"]);
}

#[test]
fn numbers_against_a_decimal_attribute() {
    // Roster's schemas have no numeric attribute, so a schema of its own shows them.
    let mut schema = ResourceSchema::user().clone();
    let mut score = schema.attributes.iter().find(|a| a.name == "title").unwrap().clone();
    score.name = "score";
    score.kind = roster_scim::schema::AttrType::Decimal;
    schema.attributes.push(score);
    let r = json!({"score": 2.5, "userName": "n"});
    let m = |f: &str| Filter::parse(f).unwrap().matches(&r, &schema);
    assert!(m("score eq 2.5"));
    assert!(m("score gt 2") && m("score ge 2.5") && m("score lt 3") && m("score le 25e-1"));
    assert!(!m("score gt 2.5") && !m("score lt -1") && !m("score eq \"2.5\""));
    assert!(m("score ne 3") && !m("score co 2"));
    let big = json!({"score": 18446744073709551615u64});
    assert!(
        Filter::parse("score gt 18446744073709551614")
            .unwrap()
            .matches(&big, &schema)
    );
}

#[test]
fn present_and_null() {
    assert_eq!(who("title pr"), NONE, "an empty string is not present");
    assert_eq!(who("name pr"), ["alice"]);
    assert_eq!(who("emails pr"), BOTH);
    assert_eq!(who("name.givenName eq null"), ["bob"]);
    assert_eq!(who("name.givenName ne null"), ["alice"]);
    assert_eq!(who("displayName pr"), ["alice"]);
}

#[test]
fn precedence_not_over_and_over_or() {
    // or binds loosest: (false and …) or true.
    assert_eq!(
        who(r#"userName eq "nobody" and active eq true or userName eq "bob""#),
        ["bob"]
    );
    // Parentheses change it.
    assert_eq!(
        who(r#"userName eq "nobody" and (active eq true or userName eq "bob")"#),
        NONE
    );
    assert_eq!(
        who(r#"userName eq "bob" or userName sw "a" and active eq false"#),
        ["bob"]
    );
    assert_eq!(
        who(r#"(userName eq "bob" or userName sw "a") and active eq true"#),
        ["alice"]
    );
    assert_eq!(who(r#"not (userName eq "bob") and active eq true"#), ["alice"]);
    assert_eq!(who(r#"not (userName eq "bob" or active eq true)"#), NONE);
    assert_eq!(who(r#"not(not(userName eq "bob"))"#), ["bob"]);
    assert_eq!(who(r#"((((userName eq "bob"))))"#), ["bob"]);
    let f = Filter::parse(r#"a eq 1 or b eq 2 and c eq 3 or not (d pr)"#).unwrap();
    match f {
        Filter::Or(terms) => {
            assert_eq!(terms.len(), 3);
            assert!(matches!(terms[1], Filter::And(_)));
            assert!(matches!(terms[2], Filter::Not(_)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn value_filters_on_multi_valued_attributes() {
    assert_eq!(who(r#"emails[type eq "work" and value co "@contoso"]"#), ["alice"]);
    assert_eq!(who(r#"emails[type eq "home"]"#), ["alice"]);
    assert_eq!(
        who(r#"emails[type eq "work" and value co "@fabrikam" or primary eq true]"#),
        BOTH
    );
    assert_eq!(who(r#"emails[not (type eq "work")]"#), ["alice"]);
    assert_eq!(who(r#"emails[type eq "home"] and userName eq "bob""#), NONE);
    // The type and value must hold for one email, not across two.
    assert_eq!(who(r#"emails[type eq "home" and value co "contoso"]"#), NONE);
    // A multi-valued complex attribute compared whole is compared by its value.
    assert_eq!(who(r#"emails co "fabrikam""#), ["bob"]);
    assert_eq!(who(r#"emails.value ew "home.example""#), ["alice"]);
    assert_eq!(who(r#"emails.type eq "home""#), ["alice"]);
    // An unknown sub-attribute in a value filter matches nothing.
    assert_eq!(who(r#"emails[nosuch eq "x"]"#), NONE);
    let group =
        json!({"id": "g", "displayName": "Eng", "members": [{"value": "u1"}, {"value": "U2", "type": "Group"}]});
    let g = ResourceSchema::group();
    assert!(Filter::parse(r#"members[value eq "u1"]"#).unwrap().matches(&group, g));
    assert!(
        !Filter::parse(r#"members[value eq "u2"]"#).unwrap().matches(&group, g),
        "members.value is caseExact"
    );
    assert!(Filter::parse(r#"members.type eq "group""#).unwrap().matches(&group, g));
    assert!(Filter::parse(r#"displayName eq "ENG""#).unwrap().matches(&group, g));
}

#[test]
fn urn_qualified_paths() {
    assert_eq!(
        who(&format!(r#"{ENTERPRISE_URN}:employeeNumber eq "701984""#)),
        ["alice"]
    );
    assert_eq!(
        who(&format!(r#"{}:department eq "r&d""#, ENTERPRISE_URN.to_uppercase())),
        ["alice"]
    );
    assert_eq!(
        who(&format!(r#"{ENTERPRISE_URN}:manager.value eq "26118915""#)),
        ["alice"]
    );
    assert_eq!(
        who(r#"employeeNumber eq "701984""#),
        ["alice"],
        "unqualified extension attribute"
    );
    assert_eq!(
        who(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bob""#),
        ["bob"]
    );
    assert_eq!(
        who(r#"urn:ietf:params:scim:schemas:core:2.0:Group:displayName pr"#),
        NONE
    );
    assert_eq!(who(r#"urn:example:other:1.0:User:userName eq "bob""#), NONE);
}

#[test]
fn an_unknown_attribute_matches_nothing() {
    assert_eq!(who(r#"favouriteColour eq "blue""#), NONE);
    assert_eq!(who(r#"favouriteColour ne "blue""#), NONE);
    assert_eq!(who("favouriteColour pr"), NONE);
    assert_eq!(who("name.nickname pr"), NONE);
    assert_eq!(who(r#"favouriteColour eq "x" or userName eq "bob""#), ["bob"]);
}

#[test]
fn string_literals_with_json_escapes_and_literals() {
    let r = json!({"id": "1", "userName": "quote\"back\\slash\ttab é 😀"});
    let user = ResourceSchema::user();
    let m = |f: &str| Filter::parse(f).unwrap().matches(&r, user);
    assert!(m(r#"userName eq "quote\"back\\slash\ttab \u00e9 \ud83d\ude00""#));
    assert!(m(r#"userName co "\u00C9""#), "case-insensitive beyond ASCII");
    assert!(m(r#"userName co "😀""#));
    assert_eq!(
        Filter::parse("title eq NULL").unwrap(),
        Filter::Compare {
            path: AttrPath::new("title"),
            op: roster_scim::CompareOp::Eq,
            value: Value::Null
        }
    );
}

/// The position (1-based character) an invalid filter's error names.
fn error_at(filter: &str) -> String {
    let e = Filter::parse(filter).expect_err(filter);
    assert_eq!(e.status, 400);
    assert_eq!(e.scim_type, Some(ScimType::InvalidFilter), "{filter}");
    e.detail
}

#[test]
fn invalid_filters_name_the_position_and_what_was_expected() {
    let cases: &[(&str, &str, &str)] = &[
        ("", "character 1", "an attribute name"),
        ("userName", "character 9", "an operator"),
        ("userName eq", "character 12", "a value"),
        (r#"userName xx "a""#, "character 10", "an operator"),
        (r#"userName eq "open"#, "character 13", "a string closed"),
        (r#"userName eq 'single'"#, "character 13", "a value"),
        (r#"userName eq "a" and"#, "character 20", "an attribute name"),
        (r#"userName eq "a" nand x pr"#, "character 17", "\"and\", \"or\""),
        (r#"(userName eq "a""#, "character 17", "\")\""),
        (r#"userName eq "a")"#, "character 16", "the end of the filter"),
        (r#"emails[type eq "work""#, "character 22", "\"]\""),
        (r#"emails[type[value eq "x"]]"#, "character 12", "cannot hold another"),
        (r#"userName eq "\x""#, "character 13", "a JSON string"),
        ("userName eq 01", "character 13", "a JSON number"),
        ("userName eq 1e999", "character 13", "a JSON number"),
        ("userName eq yes", "character 13", "a value"),
        ("name..givenName pr", "character 6", "a sub-attribute name"),
        ("name.givenName.x pr", "character 15", "one level"),
        ("not userName pr", "character 5", "an operator"),
        ("é eq 1", "character 1", "an attribute name"),
        (r#"userName eq "é" or ü pr"#, "character 20", "an attribute name"),
    ];
    for (filter, at, expected) in cases {
        let detail = error_at(filter);
        assert!(detail.contains(at), "{filter}: {detail}");
        assert!(detail.contains(expected), "{filter}: {detail}");
    }
}

#[test]
fn nesting_is_bounded() {
    let deep = |n: usize| format!("{}userName pr{}", "(".repeat(n), ")".repeat(n));
    assert!(Filter::parse(&deep(MAX_DEPTH - 1)).is_ok());
    let detail = error_at(&deep(MAX_DEPTH + 1));
    assert!(detail.contains("levels"), "{detail}");
    let nots = format!("{}userName pr{}", "not (".repeat(10_000), ")".repeat(10_000));
    assert!(error_at(&nots).contains("levels"));
    // A long flat chain is not deep: it parses and evaluates.
    let chain = vec![r#"userName eq "bob""#; 5_000].join(" and ");
    assert_eq!(who(&chain), ["bob"]);
}

#[test]
fn equality_is_offered_for_top_level_eq_only() {
    let f = Filter::parse(r#"userName eq "6ff5a0f3-e0a7-4a5f-9e56-5f0b9a9d9c8a""#).unwrap();
    let (path, value) = f.equality().unwrap();
    assert_eq!(path, &AttrPath::new("userName"));
    assert_eq!(value, &json!("6ff5a0f3-e0a7-4a5f-9e56-5f0b9a9d9c8a"));
    for not_indexable in [
        r#"userName ne "x""#,
        r#"userName eq "x" and active eq true"#,
        r#"emails[value eq "x"]"#,
    ] {
        assert_eq!(
            Filter::parse(not_indexable).unwrap().equality(),
            None,
            "{not_indexable}"
        );
    }
}

#[test]
fn display_parses_back_to_the_same_filter() {
    for text in [
        r#"userName eq "a\"b" or (active eq true and not (title pr))"#,
        r#"(a eq 1 or b eq 2) and c eq -1.5e3"#,
        r#"emails[type eq "work" and (value co "@x" or primary eq true)]"#,
        &format!(r#"{ENTERPRISE_URN}:manager.value eq null"#),
    ] {
        let f = Filter::parse(text).unwrap();
        assert_eq!(Filter::parse(&f.to_string()).unwrap(), f, "{text} → {f}");
    }
}
