//! The mapping: parsing and validation, user fields, scoping operators, group rules.

use roster_mapping::{GroupOutcome, GroupRecord, Mapping, Outcome, Record};

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

fn entra_user() -> Record {
    Record {
        username: "Jane.Doe@contoso.com".into(),
        email: Some("jane.doe@contoso.com".into()),
        display_name: None,
        active: true,
        attributes: pairs(&[
            ("userPrincipalName", "Jane.Doe@Contoso.com"),
            ("mail", "Jane.Doe@contoso.com"),
            ("givenName", "Jane"),
            ("surname", "Doe"),
            ("accountEnabled", "true"),
            ("employeeId", "1042"),
            ("department", "Engineering"),
            ("onPremisesSamAccountName", "jdoe"),
            ("otherMails", "jane@home.example"),
            ("otherMails", "jd@old.example"),
            ("userType", "Member"),
            ("extension_x_costCenter", "CC-7"),
        ]),
    }
}

fn mapping(json: &str) -> Mapping {
    Mapping::parse(json).unwrap_or_else(|e| panic!("{e}"))
}

fn kept(o: Outcome) -> (Record, String) {
    match o {
        Outcome::Keep { user, reason } => (user, reason),
        other => panic!("expected a kept user, got {other:?}"),
    }
}

const EXAMPLE: &str = r#"{
  "user": {
    "username": "ToLower(StripDomain([userPrincipalName]))",
    "email": "ToLower([mail])",
    "display_name": "Coalesce([displayName], Join(\" \", [givenName], [surname]))",
    "active": "[accountEnabled]",
    "attributes": {
      "costCenter": "[extension_x_costCenter]",
      "aliases": "[otherMails]",
      "userType": null,
      "nickname": "[missing]"
    }
  },
  "scope": {
    "rules": [
      { "name": "engineering", "all": [
          {"attribute": "department", "op": "equals", "value": "Engineering"},
          {"attribute": "employeeId", "op": "is-not-null"} ] },
      { "all": [ {"attribute": "userType", "op": "equals", "value": "Guest"} ] }
    ],
    "include_inactive": true
  },
  "groups": {
    "include": ["^bb-", "Developers", "re:^AAD-"],
    "exclude": ["bb-legacy"],
    "rules": [
      { "match": "^AAD-(.*)$", "to": ["$1"] },
      { "name": "Developers", "to": ["dev", "eng"] }
    ],
    "unmatched": "pass",
    "case": "lower"
  }
}"#;

#[test]
fn whole_mapping_from_json() {
    let m = mapping(EXAMPLE);
    let (u, reason) = kept(m.map_user(&entra_user()));
    assert_eq!(u.username, "jane.doe");
    assert_eq!(u.email.as_deref(), Some("jane.doe@contoso.com"));
    assert_eq!(u.display_name.as_deref(), Some("Jane Doe"));
    assert!(u.active);
    let get = |n: &str| {
        u.attributes
            .iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(get("costCenter"), ["CC-7"]);
    assert_eq!(get("aliases"), ["jane@home.example", "jd@old.example"]);
    assert!(get("userType").is_empty(), "null removes the attribute");
    assert!(
        get("nickname").is_empty(),
        "an expression evaluating to null sets nothing"
    );
    assert_eq!(get("department"), ["Engineering"], "other attributes are kept");
    assert_eq!(
        reason,
        "scope rule 'engineering'; mapped username, email, display_name, active, attributes.aliases, \
         attributes.costCenter, attributes.nickname, attributes.userType"
    );

    // The second, unnamed rule admits guests.
    let mut guest = entra_user();
    guest.attributes.retain(|(n, _)| n != "department");
    guest.attributes.retain(|(n, _)| n != "userType");
    guest.attributes.push(("userType".into(), "Guest".into()));
    let (_, reason) = kept(m.map_user(&guest));
    assert!(reason.starts_with("scope rule 2; mapped username"), "{reason}");

    // Nobody else.
    let mut other = entra_user();
    other.attributes.retain(|(n, _)| n != "department");
    assert_eq!(
        m.map_user(&other),
        Outcome::Drop {
            reason: "out of scope: no scoping rule matched".into()
        }
    );

    // map_user_owned gives the same result.
    assert_eq!(m.map_user_owned(entra_user()), m.map_user(&entra_user()));

    // Groups through the same mapping.
    let names = |n: &str| m.map_group_name(n).unwrap();
    assert_eq!(
        names("AAD-Platform"),
        (
            vec!["platform".to_string()],
            "included by 're:^AAD-'; rule 1: ^AAD-(.*)$ → $1".to_string()
        )
    );
    assert_eq!(names("Developers").0, ["dev", "eng"]);
    assert_eq!(
        names("bb-Ops"),
        (
            vec!["bb-ops".to_string()],
            "included by '^bb-'; no rule matched; passed through".into()
        )
    );
    assert_eq!(names("bb-legacy"), (vec![], "excluded by 'bb-legacy'".into()));
    assert_eq!(
        names("Sales"),
        (vec![], "not included: matches none of groups.include".into())
    );
}

#[test]
fn fields_see_the_input_record_and_accept_constants() {
    let m = mapping(r#"{"user": {"username": "[email]", "email": "[username]", "active": false, "display_name": 42}}"#);
    let (u, reason) = kept(m.map_user(&entra_user()));
    assert_eq!(u.username, "jane.doe@contoso.com");
    assert_eq!(u.email.as_deref(), Some("Jane.Doe@contoso.com"));
    assert!(!u.active);
    assert_eq!(u.display_name.as_deref(), Some("42"));
    assert_eq!(reason, "mapped username, email, display_name, active");
}

#[test]
fn empty_mappings_pass_users_and_groups_unchanged() {
    for json in ["", "  ", "{}", r#"{"user": {}, "groups": {}}"#] {
        let m = mapping(json);
        let (u, reason) = kept(m.map_user(&entra_user()));
        assert_eq!(u, entra_user());
        assert_eq!(reason, "no user mapping; unchanged");
        assert_eq!(
            m.map_group_name("X").unwrap(),
            (vec!["X".to_string()], "no rule matched; passed through".into())
        );
    }
}

#[test]
fn field_results_are_checked() {
    let cases = [
        (
            r#"{"user": {"username": "[missing]"}}"#,
            "user.username: evaluated to null; a user needs a username",
        ),
        (
            r#"{"user": {"username": "\"\""}}"#,
            "user.username: evaluated to an empty string; a user needs a username",
        ),
        (
            r#"{"user": {"username": "[otherMails]"}}"#,
            "user.username: evaluated to a list of 2 values; pick one with First(), Item() or Join()",
        ),
        (
            r#"{"user": {"username": "Left([mail], \"a\")"}}"#,
            r#"user.username: Left: the count must be a whole number, got "a""#,
        ),
        (
            r#"{"user": {"active": "[missing]"}}"#,
            "user.active: evaluated to null; expected true or false",
        ),
        (
            r#"{"user": {"active": "[department]"}}"#,
            r#"user.active: expected true or false, got "Engineering""#,
        ),
        (
            r#"{"user": {"attributes": {"x": "IIF([department], 1, 2)"}}}"#,
            r#"user.attributes.x: IIF: the condition must be true or false, got "Engineering""#,
        ),
    ];
    for (json, want) in cases {
        assert_eq!(
            mapping(json).map_user(&entra_user()),
            Outcome::Failed { error: want.into() },
            "{json}"
        );
    }
    // An error for one user leaves the others alone.
    let m = mapping(r#"{"user": {"username": "Left([mail], [employeeId])"}}"#);
    let mut bad = entra_user();
    bad.attributes.retain(|(n, _)| n != "employeeId");
    bad.attributes.push(("employeeId".into(), "n/a".into()));
    assert!(matches!(m.map_user(&bad), Outcome::Failed { .. }));
    assert!(matches!(m.map_user(&entra_user()), Outcome::Keep { .. }));
    // Empty email and display name become none.
    let (u, _) = kept(mapping(r#"{"user": {"email": "[missing]", "display_name": "\"\""}}"#).map_user(&entra_user()));
    assert_eq!((u.email, u.display_name), (None, None));
}

#[test]
fn mapping_errors_name_the_field_and_position() {
    let cases = [
        (
            r#"{"user": {"display_name": "Coalesce([displayName], Join(\" \", [givenName]"}}"#,
            "user.display_name: line 1, column 46: expected ',' or ')' after argument 2 of Join, found end of input",
        ),
        (
            r#"{"user": {"username": "ToLowr([upn])"}}"#,
            "user.username: line 1, column 1: unknown function ToLowr; did you mean ToLower?",
        ),
        (
            r#"{"user": {"attributes": {"cc": "Left([a])"}}}"#,
            "user.attributes.cc: line 1, column 1: Left takes 2 arguments (source, n), found 1",
        ),
        (
            r#"{"user": {"attributes": {"cc": ["x"]}}}"#,
            r#"user.attributes.cc: expected an expression (a string), found ["x"]"#,
        ),
        (
            r#"{"user": {"attributes": ["x"]}}"#,
            r#"user.attributes: expected an object of attribute name → expression, found ["x"]"#,
        ),
        (
            r#"{"user": {"mail": "[mail]"}}"#,
            "user.mail: unknown field; expected username, email, display_name, active or attributes",
        ),
        (r#"{"usr": {}}"#, "usr: unknown field; expected user, scope or groups"),
        (r#"[]"#, "the mapping must be a JSON object with user, scope and groups"),
        (
            r#"{"scope": {"rules": [{"all": [{"attribute": "a", "op": "equal", "value": "x"}]}]}}"#,
            r#"scope.rules[0].all[0].op: unknown operator "equal"; expected one of equals, not-equals, regex-match, not-regex-match, is-null, is-not-null, greater-than, less-than, is-true, is-false"#,
        ),
        (
            r#"{"scope": {"rules": [{"all": [{"attribute": "a", "op": "equals"}]}]}}"#,
            "scope.rules[0].all[0].value: operator equals needs a value",
        ),
        (
            r#"{"scope": {"rules": [{"all": [{"attribute": "a", "op": "is-null", "value": "x"}]}]}}"#,
            "scope.rules[0].all[0].value: operator is-null takes no value",
        ),
        (
            r#"{"scope": {"rules": [{}, {"all": [{"attribute": "a", "op": "regex-match", "value": "(x"}]}]}}"#,
            r#"scope.rules[1].all[0].value: invalid regex "(x": unclosed group"#,
        ),
        (
            r#"{"scope": {"rules": [{"any": []}]}}"#,
            "scope.rules[0]: unknown field `any`, expected `name` or `all`",
        ),
        (
            r#"{"scope": {"rules": [{"all": [{"attribute": " ", "op": "is-null"}]}]}}"#,
            "scope.rules[0].all[0].attribute: expected an attribute name",
        ),
        (
            r#"{"scope": {"include_inactive": "no"}}"#,
            r#"scope: invalid type: string "no", expected a boolean"#,
        ),
        (
            r#"{"groups": {"include": ["(x"]}}"#,
            r#"groups.include[0]: invalid regex "(x": unclosed group"#,
        ),
        (
            r#"{"groups": {"exclude": ["ok", "re:["]}}"#,
            r#"groups.exclude[1]: invalid regex "[": unclosed character class"#,
        ),
        (
            r#"{"groups": {"rules": [{"match": "(", "to": ["x"]}]}}"#,
            r#"groups.rules[0].match: invalid regex "(": unclosed group"#,
        ),
        (
            r#"{"groups": {"rules": [{"match": "x", "name": "y", "to": ["x"]}]}}"#,
            "groups.rules[0]: a rule has either match (a regex) or name (a group name), not both",
        ),
        (
            r#"{"groups": {"rules": [{"name": "y"}]}}"#,
            "groups.rules[0]: missing field `to`",
        ),
        (
            r#"{"groups": {"rules": [{"name": "y", "to": ["a", " "]}]}}"#,
            "groups.rules[0].to[1]: expected a group name",
        ),
        (
            r#"{"groups": {"unmatched": "drop"}}"#,
            "groups: unknown variant `drop`, expected `pass` or `skip`",
        ),
        (
            r#"{"groups": {"case": "title"}}"#,
            "groups: unknown variant `title`, expected one of `lower`, `upper`, `keep`",
        ),
        (
            r#"{"user": "#,
            "invalid mapping JSON: EOF while parsing a value at line 1 column 9",
        ),
    ];
    for (json, want) in cases {
        match Mapping::parse(json) {
            Ok(_) => panic!("{json} parsed"),
            Err(e) => assert_eq!(e.to_string(), want, "{json}"),
        }
    }
    let e = Mapping::parse(r#"{"user": {"email": "ToLower("}}"#).unwrap_err();
    assert_eq!(e.path, "user.email");
    assert!(e.message.starts_with("line 1, column 9: "), "{}", e.message);
}

/// One condition against a user with the given attributes.
fn admits(attribute: &str, op: &str, value: Option<&str>, attrs: &[(&str, &str)], active: bool) -> bool {
    let value = value.map_or(String::new(), |v| format!(r#", "value": {v:?}"#));
    let json =
        format!(r#"{{"scope": {{"rules": [{{"all": [{{"attribute": "{attribute}", "op": "{op}"{value}}}]}}]}}}}"#);
    let user = Record {
        username: "jdoe".into(),
        email: Some("jdoe@contoso.com".into()),
        display_name: None,
        active,
        attributes: pairs(attrs),
    };
    match mapping(&json).map_user(&user) {
        Outcome::Keep { .. } => true,
        Outcome::Drop { .. } => false,
        Outcome::Failed { error } => panic!("{error}"),
    }
}

#[test]
fn every_scoping_operator() {
    let d = [
        ("department", "Engineering"),
        ("level", "10"),
        ("otherMails", "a@x"),
        ("otherMails", "b@y"),
        ("blank", ""),
    ];
    #[rustfmt::skip]
    let cases: &[(&str, &str, Option<&str>, bool)] = &[
        ("department", "equals", Some("Engineering"), true),
        ("department", "equals", Some("engineering"), false), // case-sensitive, like Entra
        ("missing", "equals", Some("x"), false),
        ("otherMails", "equals", Some("b@y"), true),          // any value of a multi-valued attribute
        ("department", "not-equals", Some("Sales"), true),
        ("department", "not-equals", Some("Engineering"), false),
        ("missing", "not-equals", Some("x"), true),
        ("otherMails", "not-equals", Some("a@x"), false),
        ("department", "regex-match", Some("^Eng"), true),
        ("department", "regex-match", Some("^eng"), false),
        ("department", "regex-match", Some("(?i)^eng"), true),
        ("missing", "regex-match", Some(".*"), false),
        ("otherMails", "regex-match", Some("@y$"), true),
        ("department", "not-regex-match", Some("^Sales"), true),
        ("department", "not-regex-match", Some("neer"), false),
        ("missing", "not-regex-match", Some("x"), true),
        ("missing", "is-null", None, true),
        ("blank", "is-null", None, true),
        ("department", "is-null", None, false),
        ("missing", "is-not-null", None, false),
        ("blank", "is-not-null", None, false),
        ("otherMails", "is-not-null", None, true),
        ("level", "greater-than", Some("9"), true),           // numeric: 10 > 9
        ("level", "greater-than", Some("10"), false),
        ("level", "less-than", Some("100"), true),            // numeric, not "10" < "100" by chance
        ("level", "less-than", Some("9"), false),
        ("department", "greater-than", Some("Design"), true), // strings compare as strings
        ("department", "less-than", Some("Design"), false),
        ("missing", "greater-than", Some("0"), false),
        ("missing", "less-than", Some("0"), false),
        ("active", "is-true", None, true),
        ("active", "is-false", None, false),
        ("username", "equals", Some("jdoe"), true),
        ("email", "regex-match", Some("@contoso\\.com$"), true),
        ("display_name", "is-null", None, true),
    ];
    for (attribute, op, value, want) in cases {
        assert_eq!(
            admits(attribute, op, *value, &d, true),
            *want,
            "{attribute} {op} {value:?}"
        );
    }
    assert!(admits("active", "is-false", None, &d, false));
    assert!(admits("enabled", "is-true", None, &[("enabled", "TRUE")], true));
    assert!(admits("enabled", "is-false", None, &[("enabled", "False")], true));
    assert!(!admits("enabled", "is-true", None, &[("enabled", "yes")], true));
    assert!(!admits("enabled", "is-false", None, &[], true));
    // Numbers in JSON, Entra's own spelling of the operators.
    assert!(admits("level", "GREATER_THAN", Some("5"), &d, true));
    assert!(admits("department", "NOT EQUALS", Some("Sales"), &d, true));
    let numeric =
        mapping(r#"{"scope": {"rules": [{"all": [{"attribute": "level", "op": "less-than", "value": 11}]}]}}"#);
    let user = Record {
        attributes: pairs(&d),
        ..Record::default()
    };
    assert!(matches!(numeric.map_user(&user), Outcome::Keep { .. }));
}

#[test]
fn scope_rules_and_within_or_across_and_inactive_users() {
    let m = mapping(
        r#"{"scope": {"rules": [
            {"name": "eng-staff", "all": [{"attribute": "department", "op": "equals", "value": "Eng"},
                                          {"attribute": "userType", "op": "equals", "value": "Member"}]},
            {"name": "contractors", "all": [{"attribute": "userType", "op": "equals", "value": "Contractor"}]}
        ], "include_inactive": false}}"#,
    );
    let user = |attrs: &[(&str, &str)], active: bool| Record {
        username: "u".into(),
        active,
        attributes: pairs(attrs),
        ..Record::default()
    };
    let reason = |o: Outcome| match o {
        Outcome::Keep { reason, .. } | Outcome::Drop { reason } => reason,
        Outcome::Failed { error } => panic!("{error}"),
    };
    assert_eq!(
        reason(m.map_user(&user(&[("department", "Eng"), ("userType", "Member")], true))),
        "scope rule 'eng-staff'"
    );
    assert_eq!(
        reason(m.map_user(&user(&[("department", "Eng")], true))),
        "out of scope: no scoping rule matched"
    );
    assert_eq!(
        reason(m.map_user(&user(&[("userType", "Contractor")], true))),
        "scope rule 'contractors'"
    );
    assert_eq!(
        reason(m.map_user(&user(&[("userType", "Contractor")], false))),
        "out of scope: inactive users are excluded (scope.include_inactive is false)"
    );
    // By default inactive users reach the engine, which deprovisions them.
    let m = mapping(r#"{"scope": {"rules": [{"all": [{"attribute": "userType", "op": "is-not-null"}]}]}}"#);
    assert_eq!(
        reason(m.map_user(&user(&[("userType", "Member")], false))),
        "scope rule 1"
    );
    // No rules, or a rule without conditions: everyone.
    assert_eq!(
        reason(mapping(r#"{"scope": {}}"#).map_user(&user(&[], true))),
        "no user mapping; unchanged"
    );
    assert_eq!(
        reason(mapping(r#"{"scope": {"rules": [{"name": "all"}]}}"#).map_user(&user(&[], true))),
        "scope rule 'all'"
    );
}

fn group(m: &Mapping, name: &str) -> (Vec<String>, String) {
    let g = GroupRecord {
        name: name.into(),
        description: Some("d".into()),
        attributes: pairs(&[("k", "v")]),
    };
    match m.map_group(&g) {
        GroupOutcome::Mapped { groups, reason } => {
            for out in &groups {
                assert_eq!(
                    (out.description.as_deref(), out.attributes.len()),
                    (Some("d"), 1),
                    "description and attributes kept"
                );
            }
            (groups.into_iter().map(|g| g.name).collect(), reason)
        }
        GroupOutcome::Failed { error } => (vec![], format!("error: {error}")),
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn group_include_and_exclude() {
    let m = mapping(
        r#"{"groups": {"include": ["^bb-", "Developers", "name:Sales (EMEA)", "team.ops"], "exclude": ["bb-legacy", "re:-old$"]}}"#,
    );
    #[rustfmt::skip]
    let cases: &[(&str, &[&str], &str)] = &[
        ("bb-dev", &["bb-dev"], "included by '^bb-'; no rule matched; passed through"),
        ("BB-Dev", &["BB-Dev"], "included by '^bb-'; no rule matched; passed through"), // case-insensitive
        ("xbb-dev", &[], "not included: matches none of groups.include"),
        ("developers", &["developers"], "included by 'Developers'; no rule matched; passed through"),
        ("Developers2", &[], "not included: matches none of groups.include"),       // a name is exact
        ("Sales (EMEA)", &["Sales (EMEA)"], "included by 'name:Sales (EMEA)'; no rule matched; passed through"),
        ("Sales EMEA", &[], "not included: matches none of groups.include"),
        ("team.ops", &["team.ops"], "included by 'team.ops'; no rule matched; passed through"), // a dot alone is literal
        ("teamXops", &[], "not included: matches none of groups.include"),
        ("bb-legacy", &[], "excluded by 'bb-legacy'"),
        ("bb-legacy-2", &["bb-legacy-2"], "included by '^bb-'; no rule matched; passed through"),
        ("bb-tools-old", &[], "excluded by 're:-old$'"),
    ];
    for (name, want, reason) in cases {
        assert_eq!(group(&m, name), (strings(want), reason.to_string()), "{name}");
    }
    // No include list: everything not excluded.
    let m = mapping(r#"{"groups": {"exclude": ["^tmp-"]}}"#);
    assert_eq!(
        group(&m, "anything"),
        (strings(&["anything"]), "no rule matched; passed through".into())
    );
    assert_eq!(group(&m, "tmp-x"), (vec![], "excluded by '^tmp-'".into()));
}

#[test]
fn group_rules_first_match_wins() {
    let m = mapping(
        r#"{"groups": {"rules": [
            {"match": "^AAD-(.*)$", "to": ["$1"]},
            {"name": "Engineering", "to": ["dev", "eng"]},
            {"match": "^(?P<team>[a-z]+)-(?P<env>prod|test)$", "to": ["${team}", "${team}-${env}"]},
            {"match": "^AAD-Special$", "to": ["never"]},
            {"name": "Retired", "to": []},
            {"match": "^Empty-(.*)$", "to": ["$1"]}
        ], "unmatched": "skip"}}"#,
    );
    #[rustfmt::skip]
    let cases: &[(&str, &[&str], &str)] = &[
        ("AAD-Platform", &["Platform"], "rule 1: ^AAD-(.*)$ → $1"),
        ("AAD-Special", &["Special"], "rule 1: ^AAD-(.*)$ → $1"),          // rule 1 comes first
        ("Engineering", &["dev", "eng"], "rule 2: Engineering → dev, eng"),  // manual fan-out
        ("engineering", &["dev", "eng"], "rule 2: Engineering → dev, eng"),
        ("web-prod", &["web", "web-prod"], "rule 3: ^(?P<team>[a-z]+)-(?P<env>prod|test)$ → ${team}, ${team}-${env}"),
        ("Retired", &[], "rule 5: Retired → nothing (dropped)"),
        ("Marketing", &[], "no rule matched; skipped"),
        ("Empty-", &[], "error: rule 6: ^Empty-(.*)$ → $1: the result for \"Empty-\" is an empty group name"),
    ];
    for (name, want, reason) in cases {
        assert_eq!(group(&m, name), (strings(want), reason.to_string()), "{name}");
    }
    let pass = mapping(r#"{"groups": {"rules": [{"name": "a", "to": ["b"]}], "unmatched": "pass"}}"#);
    assert_eq!(
        group(&pass, "Marketing"),
        (strings(&["Marketing"]), "no rule matched; passed through".into())
    );
}

#[test]
fn group_case_rules() {
    let rules = r#""rules": [{"name": "Eng", "to": ["Dev-Team", "DEV-team"]}]"#;
    let m = |case: &str| mapping(&format!(r#"{{"groups": {{{rules}, "case": "{case}"}}}}"#));
    assert_eq!(
        group(&m("lower"), "Eng").0,
        ["dev-team"],
        "fan-out duplicates after case folding are merged"
    );
    assert_eq!(group(&m("upper"), "Eng").0, ["DEV-TEAM"]);
    assert_eq!(group(&m("keep"), "Eng").0, ["Dev-Team"]);
    assert_eq!(
        group(&m("lower"), "Straße Ä").0,
        ["straße ä"],
        "passed-through names get the case rule too"
    );
    assert_eq!(group(&m("upper"), "Straße").0, ["STRASSE"]);
    assert_eq!(group(&mapping("{}"), "MiXed").0, ["MiXed"], "keep is the default");
}

#[test]
fn record_lookups_prefer_fields_for_reserved_names() {
    use roster_mapping::{Attributes, Value};
    let r = Record {
        username: "field-user".into(),
        email: None,
        display_name: Some("Dee".into()),
        active: false,
        attributes: pairs(&[("username", "raw-user"), ("Dept", "x")]),
    };
    assert_eq!(r.lookup("username"), Value::str("field-user"));
    assert_eq!(r.lookup("email"), Value::Null);
    assert_eq!(r.lookup("DISPLAY_NAME"), Value::str("Dee"));
    assert_eq!(r.lookup("active"), Value::Bool(false));
    assert_eq!(r.lookup("dept"), Value::str("x"));
    let g = GroupRecord {
        name: "g".into(),
        description: None,
        attributes: pairs(&[("mailNickname", "gg")]),
    };
    assert_eq!(g.lookup("name"), Value::str("g"));
    assert_eq!(g.lookup("description"), Value::Null);
    assert_eq!(g.lookup("mailnickname"), Value::str("gg"));
}

#[test]
fn mappings_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    let m = std::sync::Arc::new(mapping(EXAMPLE));
    send_sync(&*m);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || kept(m.map_user(&entra_user())).0.username)
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), "jane.doe");
    }
}
