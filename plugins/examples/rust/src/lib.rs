//! Example Roster transform, in Rust on `roster-transform-sdk`: **contractors**.
//!
//! - A user whose `employeeType` attribute (setting `attribute`) is one of `values` (default
//!   `["Contractor"]`, compared ignoring case and surrounding spaces) is a contractor: their
//!   username gets the suffix `-ext` (setting `suffix`), once; an inactive contractor is filtered
//!   out when `drop_inactive` is set (the default).
//! - A user whose attribute has two different values cannot be evaluated: that record gets an
//!   `error` and is skipped; the rest of the batch goes on.
//! - A group whose name starts with `Vendor-` (setting `vendor_prefix`) is a vendor group: it is
//!   kept and fans out to the group `contractors` too (setting `contractors_group`), so every
//!   vendor's people also join one Bitbucket group. A vendor group with nothing after the prefix
//!   gets an `error`.
//! - Everything else passes unchanged with no reason.
//!
//! The JavaScript (`../javascript/transform.js`) and Python (`../python/app.py`) examples do
//! exactly the same, message for message; `host/roster/tests/runtime/authoring.rs` checks all three against one
//! table. To start your own transform, copy this folder (see `../README.md`).

use roster_transform_sdk::{Group, GroupOutcome, PluginError, PluginInfo, Transform, User, UserOutcome};
use serde_json::Value;

/// JSON Schema of the settings; `describe` returns it and `roster` shows it to administrators.
const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "attribute": {"type": "string", "minLength": 1, "default": "employeeType",
      "description": "The user attribute that says whether someone is a contractor"},
    "values": {"type": "array", "items": {"type": "string"}, "minItems": 1, "default": ["Contractor"],
      "description": "Values of that attribute that mean contractor, compared ignoring case and surrounding spaces"},
    "suffix": {"type": "string", "minLength": 1, "default": "-ext",
      "description": "Appended to a contractor's username, once"},
    "drop_inactive": {"type": "boolean", "default": true,
      "description": "Filter out contractors whose account is disabled"},
    "vendor_prefix": {"type": "string", "minLength": 1, "default": "Vendor-",
      "description": "Groups whose name starts with this (case-sensitive) are vendor groups"},
    "contractors_group": {"type": "string", "minLength": 1, "default": "contractors",
      "description": "Every vendor group's members also join this Bitbucket group"}
  }
}"#;

/// The settings names, in the order error messages list them.
const KNOWN: [&str; 6] = [
    "attribute",
    "values",
    "suffix",
    "drop_inactive",
    "vendor_prefix",
    "contractors_group",
];

/// The settings, after validation.
struct Settings {
    attribute: String,
    /// Lower-cased and trimmed.
    values: Vec<String>,
    suffix: String,
    drop_inactive: bool,
    vendor_prefix: String,
    contractors_group: String,
}

fn invalid(message: String) -> PluginError {
    PluginError::Config(format!("invalid settings: {message}"))
}

fn text(v: &Value, name: &str) -> Result<String, PluginError> {
    match v.as_str() {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err(invalid(format!("`{name}` must be a non-empty string"))),
    }
}

/// Parses and checks the settings. Every error is a `config` error that names the setting, so
/// the host refuses the step before any record is touched. An empty string means `{}`.
fn settings(raw: &str) -> Result<Settings, PluginError> {
    let mut s = Settings {
        attribute: "employeeType".into(),
        values: vec!["contractor".into()],
        suffix: "-ext".into(),
        drop_inactive: true,
        vendor_prefix: "Vendor-".into(),
        contractors_group: "contractors".into(),
    };
    if raw.trim().is_empty() {
        return Ok(s);
    }
    let json: Value = serde_json::from_str(raw).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let Value::Object(fields) = json else {
        return Err(invalid("expected a JSON object".into()));
    };
    // Checked in a fixed order, so every language reports the same mistake first.
    let mut unknown: Vec<&str> = fields
        .keys()
        .map(String::as_str)
        .filter(|k| !KNOWN.contains(k))
        .collect();
    if !unknown.is_empty() {
        unknown.sort();
        let names: Vec<String> = unknown.iter().map(|k| format!("`{k}`")).collect();
        return Err(invalid(format!(
            "unknown setting {} (known: {})",
            names.join(", "),
            KNOWN.join(", ")
        )));
    }
    if let Some(v) = fields.get("attribute") {
        s.attribute = text(v, "attribute")?;
    }
    if let Some(v) = fields.get("values") {
        let values: Option<Vec<String>> = v
            .as_array()
            .filter(|l| !l.is_empty())
            .and_then(|l| l.iter().map(|x| x.as_str().map(|x| x.trim().to_lowercase())).collect());
        s.values = values.ok_or_else(|| invalid("`values` must be a non-empty list of strings".into()))?;
    }
    if let Some(v) = fields.get("suffix") {
        s.suffix = text(v, "suffix")?;
    }
    if let Some(v) = fields.get("drop_inactive") {
        s.drop_inactive = v
            .as_bool()
            .ok_or_else(|| invalid("`drop_inactive` must be true or false".into()))?;
    }
    if let Some(v) = fields.get("vendor_prefix") {
        s.vendor_prefix = text(v, "vendor_prefix")?;
    }
    if let Some(v) = fields.get("contractors_group") {
        s.contractors_group = text(v, "contractors_group")?;
    }
    Ok(s)
}

/// What becomes of one user.
fn map_user(s: &Settings, mut user: User) -> UserOutcome {
    // Multi-valued attributes appear once per value: collect the distinct ones (ignoring case).
    let mut distinct: Vec<&str> = Vec::new();
    for (name, value) in &user.attributes {
        let value = value.trim();
        if name == &s.attribute && !distinct.iter().any(|d| d.to_lowercase() == value.to_lowercase()) {
            distinct.push(value);
        }
    }
    if distinct.len() > 1 {
        return UserOutcome::failed(format!(
            "{} has {} different values ({}); expected one",
            s.attribute,
            distinct.len(),
            distinct.join(", ")
        ));
    }
    let Some(value) = distinct.first().filter(|v| s.values.contains(&v.to_lowercase())) else {
        return UserOutcome::pass(user);
    };
    let why = format!("contractor ({}={value})", s.attribute);
    if !user.active && s.drop_inactive {
        return UserOutcome::drop(format!("{why}: inactive, dropped"));
    }
    if user.username.ends_with(&s.suffix) {
        return UserOutcome::keep(user, format!("{why}: username already ends with {}", s.suffix));
    }
    let renamed = format!("{}{}", user.username, s.suffix);
    let reason = format!("{why}: {} → {renamed}", user.username);
    user.username = renamed;
    UserOutcome::keep(user, reason)
}

/// What becomes of one group.
fn map_group(s: &Settings, group: Group) -> GroupOutcome {
    let Some(rest) = group.name.strip_prefix(&s.vendor_prefix) else {
        return GroupOutcome {
            groups: vec![group],
            reason: None,
            error: None,
        };
    };
    let vendor = rest.trim();
    if vendor.is_empty() {
        return GroupOutcome {
            groups: Vec::new(),
            reason: None,
            error: Some(format!(
                "vendor group \"{}\" has no vendor name after \"{}\"",
                group.name, s.vendor_prefix
            )),
        };
    }
    let reason = format!("vendor group {vendor}: members also join {}", s.contractors_group);
    // Fan-out: the host gives every resulting group the input group's members.
    let everyone = Group {
        id: group.id.clone(),
        name: s.contractors_group.clone(),
        description: None,
        attributes: Vec::new(),
    };
    GroupOutcome::to(vec![group, everyone], reason)
}

struct Contractors;

impl Transform for Contractors {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "contractors-rust".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Contractors get a username suffix; vendor groups also feed a contractors group".into(),
            settings_schema: SCHEMA.into(),
        }
    }

    fn map_users(settings_json: String, users: Vec<User>) -> Result<Vec<UserOutcome>, PluginError> {
        let s = settings(&settings_json)?;
        Ok(users.into_iter().map(|u| map_user(&s, u)).collect())
    }

    fn map_groups(settings_json: String, groups: Vec<Group>) -> Result<Vec<GroupOutcome>, PluginError> {
        let s = settings(&settings_json)?;
        Ok(groups.into_iter().map(|g| map_group(&s, g)).collect())
    }
}

roster_transform_sdk::export_transform!(Contractors);
