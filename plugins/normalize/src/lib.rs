//! `normalize`: a Roster transform that trims and lower-cases usernames and emails, collapses
//! whitespace in names, and can strip UPN domains and drop inactive users.

pub mod rules;

use roster_transform_sdk::{Group, GroupOutcome, PluginError, PluginInfo, Transform, User, UserOutcome};

struct Normalize;

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "lowercase_username": {"type": "boolean", "default": true},
    "strip_domain": {"type": "boolean", "default": false},
    "drop_inactive": {"type": "boolean", "default": false}
  }
}"#;

fn settings(raw: &str) -> Result<rules::Settings, PluginError> {
    if raw.trim().is_empty() {
        return Ok(rules::Settings::default());
    }
    roster_transform_sdk::parse_settings(raw)
}

impl Transform for Normalize {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "normalize".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Trims and lower-cases usernames and emails; can strip UPN domains and drop inactive users"
                .into(),
            settings_schema: SCHEMA.into(),
        }
    }

    fn map_users(settings_json: String, users: Vec<User>) -> Result<Vec<UserOutcome>, PluginError> {
        let s = settings(&settings_json)?;
        Ok(users
            .into_iter()
            .map(|mut u| {
                if let Some(reason) = rules::drop_reason(&s, u.active) {
                    return UserOutcome::drop(reason);
                }
                u.username = rules::username(&s, &u.username);
                u.email = u.email.as_deref().and_then(rules::email);
                u.display_name = u.display_name.as_deref().and_then(rules::display_name);
                UserOutcome::pass(u)
            })
            .collect())
    }

    fn map_groups(settings_json: String, groups: Vec<Group>) -> Result<Vec<GroupOutcome>, PluginError> {
        settings(&settings_json)?;
        Ok(groups
            .into_iter()
            .map(|mut g| {
                g.name = rules::group_name(&g.name);
                GroupOutcome::to(vec![g], "normalized")
            })
            .collect())
    }
}

roster_transform_sdk::export_transform!(Normalize);
