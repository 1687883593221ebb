//! The configuration file: defaults, and every mistake named with its field.

use std::path::Path;

use roster_engine::Deprovision;
use roster_serve::Config;

use crate::common::kinds;

const GOOD: &str = r#"
    [[source]]
    id = "hr"
    plugin = "file"
    settings = { path = "directory.json" }
    allow_hosts = ["https://login.example"]
    [[source.secrets]]
    name = "client_secret"
    value = "s3cret"
    hosts = ["https://login.example"]
    use = { form = "client_secret" }
    path = "/tenant/oauth2/"
    [[source.transforms]]
    plugin = "normalize"
    settings = { strip_domain = true }

    [target]
    url = "http://127.0.0.1:7990"
    username = "admin"
    password = { value = "password" }
    deprovision = "delete"
    threshold = { count = 5, percent = 20 }
"#;

#[test]
fn a_good_file_parses_with_defaults() {
    let c = Config::parse(GOOD, Path::new("."), &kinds()).unwrap();
    assert_eq!(c.sources[0].priority, 100);
    assert_eq!(c.sources[0].transforms[0].plugin, "normalize");
    let t = c.target().unwrap();
    assert_eq!(t.deprovision, Deprovision::Delete);
    assert_eq!(t.threshold.count, 5);
    let secrets = c.sources[0].resolved_secrets(&c.base_dir).unwrap();
    assert_eq!(secrets[0]["value"], "s3cret");
}

#[test]
fn a_file_without_a_target_parses_and_says_how_to_add_one() {
    let text = &GOOD[..GOOD.find("[target]").unwrap()];
    let c = Config::parse(text, Path::new("."), &kinds()).unwrap();
    let err = c.target().unwrap_err();
    assert!(err.contains("PUT /api/v1/targets/bitbucket"), "{err}");
}

#[test]
fn mistakes_are_named() {
    let cases = [
        (
            GOOD.replace("deprovision = \"delete\"", "deprovision = \"nuke\""),
            "unknown variant `nuke`",
        ),
        (
            GOOD.replace("plugin = \"file\"", "plugin = \"file\"\npriorty = 3"),
            "unknown field `priorty`",
        ),
        (
            GOOD.replace(
                "https://login.example\"]\n    [[source.secrets]]",
                "http://login.example\"]\n    [[source.secrets]]",
            ),
            "allow_insecure_http",
        ),
        (
            GOOD.replace("password = { value = \"password\" }", ""),
            "exactly one of `password` or `token`",
        ),
        (
            GOOD.replace("value = \"s3cret\"", "env = \"ROSTER_TEST_SURELY_UNSET\""),
            "ROSTER_TEST_SURELY_UNSET is not set",
        ),
        (GOOD.replace("id = \"hr\"", "id = \"h r\""), "source id \"h r\""),
        // A secret says where it goes, to exact hosts.
        (
            GOOD.replace("    use = { form = \"client_secret\" }\n", ""),
            "source 'hr' secret 'client_secret': say where its value goes: `use = { header",
        ),
        (
            GOOD.replace(
                "hosts = [\"https://login.example\"]\n    use",
                "hosts = [\"https://*.example\"]\n    use",
            ),
            "`hosts` entry https://*.example is a wildcard",
        ),
        (
            GOOD.replace(
                "use = { form = \"client_secret\" }",
                "use = { body = \"client_secret\" }",
            ),
            "unknown variant `body`",
        ),
        (
            GOOD.replace("path = \"/tenant/oauth2/\"", "pth = \"/tenant/oauth2/\""),
            "unknown field `pth`",
        ),
    ];
    for (text, expected) in cases {
        let err = Config::parse(&text, Path::new("."), &kinds()).unwrap_err().to_string();
        assert!(err.contains(expected), "expected {expected:?} in: {err}");
    }
}
