//! `mapping`: a Roster transform that applies a mapping written in the mapping language
//! (`roster-mapping`, in `plugins/mapping-lang`): Entra-style attribute expressions, user
//! scoping rules and group rules.
//!
//! The settings are the mapping's JSON. It is parsed once per distinct settings string and
//! kept in a thread-local cache, since the host calls `map-users` once per batch with the same
//! settings. A mapping that does not parse is a `config` error carrying the field path, line and
//! column, even for an empty batch: the host validates a new mapping with
//! `map-users(settings, [])` before using it.

use std::cell::RefCell;
use std::rc::Rc;

use roster_mapping::{GroupOutcome as Mapped, GroupRecord, Mapping, Outcome, Record, RecordView, Verdict};
use roster_transform_sdk::{
    Group, GroupOutcome, PackedTransform, PluginError, PluginInfo, Transform, User, UserOutcome, wire,
};

/// The transform this component exports.
pub struct MappingTransform;

/// JSON Schema of the settings (the mapping).
pub const SETTINGS_SCHEMA: &str = include_str!("schema.json");

thread_local! {
    static CACHE: RefCell<Option<(String, Rc<Mapping>)>> = const { RefCell::new(None) };
}

/// The parsed mapping for `settings`, parsed at most once while the settings stay the same.
pub fn mapping(settings: &str) -> Result<Rc<Mapping>, PluginError> {
    CACHE.with(|cache| {
        if let Some((text, m)) = &*cache.borrow()
            && text == settings
        {
            return Ok(m.clone());
        }
        let m = Rc::new(Mapping::parse(settings).map_err(|e| PluginError::Config(format!("invalid mapping: {e}")))?);
        *cache.borrow_mut() = Some((settings.to_string(), m.clone()));
        Ok(m)
    })
}

/// Maps one user, keeping its id.
pub fn map_user(m: &Mapping, u: User) -> UserOutcome {
    let User {
        id,
        username,
        email,
        display_name,
        active,
        attributes,
    } = u;
    let record = Record {
        username,
        email,
        display_name,
        active,
        attributes,
    };
    match m.map_user_owned(record) {
        Outcome::Keep { user, reason } => UserOutcome::keep(
            User {
                id,
                username: user.username,
                email: user.email,
                display_name: user.display_name,
                active: user.active,
                attributes: user.attributes,
            },
            reason,
        ),
        Outcome::Drop { reason } => UserOutcome::drop(reason),
        Outcome::Failed { error } => UserOutcome::failed(error),
    }
}

/// Maps one group; every resulting group keeps the input's id.
pub fn map_group(m: &Mapping, g: Group) -> GroupOutcome {
    let Group {
        id,
        name,
        description,
        attributes,
    } = g;
    let record = GroupRecord {
        name,
        description,
        attributes,
    };
    match m.map_group(&record) {
        Mapped::Mapped { groups, reason } => GroupOutcome::to(
            groups
                .into_iter()
                .map(|g| Group {
                    id: id.clone(),
                    name: g.name,
                    description: g.description,
                    attributes: g.attributes,
                })
                .collect(),
            reason,
        ),
        Mapped::Failed { error } => GroupOutcome {
            groups: Vec::new(),
            reason: None,
            error: Some(error),
        },
    }
}

impl Transform for MappingTransform {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "mapping".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description:
                "Maps users and groups with Entra-style attribute expressions, scoping filters and group rules".into(),
            settings_schema: SETTINGS_SCHEMA.into(),
        }
    }

    fn map_users(settings: String, users: Vec<User>) -> Result<Vec<UserOutcome>, PluginError> {
        let m = mapping(&settings)?;
        Ok(users.into_iter().map(|u| map_user(&m, u)).collect())
    }

    fn map_groups(settings: String, groups: Vec<Group>) -> Result<Vec<GroupOutcome>, PluginError> {
        let m = mapping(&settings)?;
        Ok(groups.into_iter().map(|g| map_group(&m, g)).collect())
    }
}

/// Maps a packed batch of users reading each one in place, and answers each kept user as a
/// patch of the input: only what a rule changed is allocated here and crosses back; the host
/// keeps the rest of its own record. Same outcomes as [`map_user`].
pub fn map_users_packed(m: &Mapping, mut r: wire::Reader<'_>) -> Result<Vec<u8>, wire::DecodeError> {
    let n = r.count();
    let mut w = wire::Writer::new(n, r.size() / 2);
    let mut attributes = Vec::new();
    for _ in 0..n {
        let u = r.user_view_in(attributes)?;
        let view = RecordView {
            username: u.username,
            email: u.email,
            display_name: u.display_name,
            active: u.active,
            attributes: u.attributes,
        };
        match m.decide(&view) {
            Verdict::Keep { reason, changes } => {
                // A rule that computes the value the user already has changes nothing.
                let fields = wire::PatchFields {
                    username: changes.username.as_deref().filter(|&u| u != view.username),
                    email: changes
                        .email
                        .as_ref()
                        .map(|e| e.as_deref())
                        .filter(|&e| e != view.email),
                    display_name: changes
                        .display_name
                        .as_ref()
                        .map(|d| d.as_deref())
                        .filter(|&d| d != view.display_name),
                    active: changes.active.filter(|&a| a != view.active),
                };
                // `Changes::apply`, as edits in the same order.
                let edits = changes.attributes.iter().flat_map(|(name, values)| {
                    std::iter::once(wire::Edit::Remove(name)).chain(values.iter().map(|v| wire::Edit::Append(name, v)))
                });
                w.patched_user(fields, edits, Some(&reason));
            }
            Verdict::Drop { reason } => w.no_user(Some(&reason), None),
            Verdict::Failed { error } => w.no_user(None, Some(&error)),
        }
        attributes = view.attributes;
    }
    r.end()?;
    Ok(w.finish())
}

impl PackedTransform for MappingTransform {
    fn map_users_packed(settings: String, users: Vec<u8>) -> Result<Vec<u8>, PluginError> {
        let m = mapping(&settings)?;
        // SAFETY: the host hands this export a batch it encoded from Rust strings.
        let r = unsafe { wire::Reader::from_host(&users) }.map_err(roster_transform_sdk::unreadable)?;
        map_users_packed(&m, r).map_err(roster_transform_sdk::unreadable)
    }
}

roster_transform_sdk::export_transform!(MappingTransform, packed);

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, attrs: &[(&str, &str)]) -> User {
        User {
            id: id.into(),
            username: format!("{id}@contoso.com"),
            email: None,
            display_name: None,
            active: true,
            attributes: attrs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        }
    }

    fn group(id: &str, name: &str) -> Group {
        Group {
            id: id.into(),
            name: name.into(),
            description: Some("from the IdP".into()),
            attributes: vec![],
        }
    }

    const SETTINGS: &str = r#"{
      "user": {
        "username": "ToLower(StripDomain([userPrincipalName]))",
        "email": "[mail]",
        "display_name": "Join(\" \", [givenName], [surname])",
        "attributes": {"employee": "Left([employeeId], [digits])"}
      },
      "scope": {"rules": [{"name": "staff", "all": [{"attribute": "employeeId", "op": "is-not-null"}]}]},
      "groups": {
        "exclude": ["bb-legacy"],
        "rules": [{"match": "^AAD-(.*)$", "to": ["$1"]}, {"name": "Engineering", "to": ["dev", "eng"]}],
        "unmatched": "skip",
        "case": "lower"
      }
    }"#;

    #[test]
    fn describe_names_the_transform_and_gives_a_json_schema() {
        let info = MappingTransform::describe();
        assert_eq!(info.name, "mapping");
        assert!(!info.description.contains('\n'));
        let schema: serde_json::Value = serde_json::from_str(&info.settings_schema).unwrap();
        assert_eq!(schema["type"], "object");
        for key in ["user", "scope", "groups"] {
            assert!(schema["properties"][key].is_object(), "{key}");
        }
    }

    #[test]
    fn users_are_mapped_in_order_with_reasons_and_ids_kept() {
        let users = vec![
            user(
                "1",
                &[
                    ("userPrincipalName", "Jane.Doe@Contoso.com"),
                    ("mail", "jane@contoso.com"),
                    ("givenName", "Jane"),
                    ("surname", "Doe"),
                    ("employeeId", "000123"),
                    ("digits", "3"),
                ],
            ),
            user("2", &[("userPrincipalName", "guest@other.com")]),
            user(
                "3",
                &[
                    ("userPrincipalName", "x@contoso.com"),
                    ("employeeId", "7"),
                    ("digits", "many"),
                ],
            ),
        ];
        let out = MappingTransform::map_users(SETTINGS.into(), users).unwrap();
        assert_eq!(out.len(), 3);
        let u = out[0].user.as_ref().unwrap();
        assert_eq!((u.id.as_str(), u.username.as_str()), ("1", "jane.doe"));
        assert_eq!(u.email.as_deref(), Some("jane@contoso.com"));
        assert_eq!(u.display_name.as_deref(), Some("Jane Doe"));
        assert!(u.attributes.contains(&("employee".into(), "000".into())));
        assert_eq!(
            out[0].reason.as_deref(),
            Some("scope rule 'staff'; mapped username, email, display_name, attributes.employee")
        );
        assert!(out[0].error.is_none());
        assert!(out[1].user.is_none());
        assert_eq!(out[1].reason.as_deref(), Some("out of scope: no scoping rule matched"));
        assert!(out[2].user.is_none());
        assert_eq!(
            out[2].error.as_deref(),
            Some(r#"user.attributes.employee: Left: the count must be a whole number, got "many""#)
        );
    }

    #[test]
    fn groups_are_renamed_fanned_out_or_dropped_keeping_their_id() {
        let groups = vec![
            group("g1", "AAD-Platform"),
            group("g2", "Engineering"),
            group("g3", "bb-legacy"),
            group("g4", "Marketing"),
        ];
        let out = MappingTransform::map_groups(SETTINGS.into(), groups).unwrap();
        let names = |i: usize| {
            out[i]
                .groups
                .iter()
                .map(|g| (g.id.as_str(), g.name.as_str()))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(0), [("g1", "platform")]);
        assert_eq!(out[0].reason.as_deref(), Some("rule 1: ^AAD-(.*)$ → $1"));
        assert_eq!(names(1), [("g2", "dev"), ("g2", "eng")]);
        assert_eq!(out[1].groups[1].description.as_deref(), Some("from the IdP"));
        assert!(names(2).is_empty());
        assert_eq!(out[2].reason.as_deref(), Some("excluded by 'bb-legacy'"));
        assert!(names(3).is_empty());
        assert_eq!(out[3].reason.as_deref(), Some("no rule matched; skipped"));

        let bad = MappingTransform::map_groups(
            r#"{"groups": {"rules": [{"match": "^x-(.*)$", "to": ["$1"]}]}}"#.into(),
            vec![group("g5", "x-")],
        )
        .unwrap();
        assert!(bad[0].groups.is_empty());
        assert!(bad[0].error.as_deref().unwrap().contains("empty group name"));
    }

    #[test]
    fn a_broken_mapping_is_a_config_error_even_for_an_empty_batch() {
        let broken = r#"{"user": {"display_name": "Coalesce([displayName], Join(\" \", [givenName]"}}"#;
        match MappingTransform::map_users(broken.into(), vec![]) {
            Err(PluginError::Config(msg)) => assert_eq!(
                msg,
                "invalid mapping: user.display_name: line 1, column 46: expected ',' or ')' after argument 2 of Join, found end of input"
            ),
            other => panic!("expected a config error, got {other:?}"),
        }
        assert!(matches!(
            MappingTransform::map_groups(r#"{"groups": {"rules": [{"match": "(", "to": ["x"]}]}}"#.into(), vec![]),
            Err(PluginError::Config(m)) if m.contains("groups.rules[0].match")
        ));
        assert!(matches!(
            MappingTransform::map_users("not json".into(), vec![]),
            Err(PluginError::Config(_))
        ));
        // A good mapping after a broken one works (the cache holds only good ones).
        assert!(MappingTransform::map_users(SETTINGS.into(), vec![]).unwrap().is_empty());
    }

    #[test]
    fn blank_settings_pass_everything() {
        let out = MappingTransform::map_users(String::new(), vec![user("1", &[])]).unwrap();
        assert_eq!(out[0].user.as_ref().unwrap().username, "1@contoso.com");
        assert_eq!(out[0].reason.as_deref(), Some("no user mapping; unchanged"));
        let out = MappingTransform::map_groups("{}".into(), vec![group("g", "Any")]).unwrap();
        assert_eq!(out[0].groups[0].name, "Any");
    }

    /// The in-place packed path and the record-by-record one give the same outcomes: kept
    /// (fields and attributes rewritten, others copied in order), out of scope, failed.
    #[test]
    fn packed_batches_map_exactly_as_records_do() {
        let users = [
            user(
                "1",
                &[
                    ("userPrincipalName", "Ann@Contoso.com"),
                    ("mail", "ann@contoso.com"),
                    ("givenName", "Ann"),
                    ("surname", "Lee"),
                    ("employeeId", "123456"),
                    ("digits", "3"),
                    ("employee", "stale"),
                    ("EMPLOYEE", "stale too"),
                    ("other", "kept"),
                ],
            ),
            user("2", &[("userPrincipalName", "Bo@Contoso.com")]),
            user(
                "3",
                &[
                    ("userPrincipalName", "Cy@Contoso.com"),
                    ("employeeId", "9"),
                    ("digits", "x"),
                ],
            ),
            User {
                email: Some("zoë@contoso.com".into()),
                display_name: Some("Zoë".into()),
                ..user(
                    "4",
                    &[
                        ("userPrincipalName", "Zoë@Contoso.com"),
                        ("employeeId", "77"),
                        ("digits", "1"),
                    ],
                )
            },
        ];
        let m = mapping(SETTINGS).unwrap();
        let expected: Vec<wire::UserOutcome> = users
            .iter()
            .map(|u| {
                let o = map_user(&m, u.clone());
                wire::UserOutcome {
                    user: o.user.map(|u| wire::User {
                        id: u.id,
                        username: u.username,
                        email: u.email,
                        display_name: u.display_name,
                        active: u.active,
                        attributes: u.attributes,
                    }),
                    reason: o.reason,
                    error: o.error,
                }
            })
            .collect();
        let batch = {
            wire::conversions!(User, Group, UserOutcome, GroupOutcome);
            wire::encode_users(users.iter().map(user_ref))
        };
        let inputs = wire::decode_users(&batch).unwrap();
        let packed = wire::decode_user_outcomes_over(
            &inputs,
            &map_users_packed(&m, wire::Reader::new(&batch).unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(packed, expected);
        assert!(expected[0].user.is_some() && expected[1].user.is_none() && expected[2].error.is_some());
        // A batch that is not one is an error, not a panic.
        let bad = wire::Reader::new(b"R1\xff\xff\xff\x7f").unwrap();
        assert!(map_users_packed(&m, bad).is_err());
    }

    #[test]
    fn the_mapping_is_parsed_once_per_settings_string() {
        let a = mapping(SETTINGS).unwrap();
        let b = mapping(SETTINGS).unwrap();
        assert!(Rc::ptr_eq(&a, &b));
        let c = mapping("{}").unwrap();
        assert!(!Rc::ptr_eq(&a, &c));
        let d = mapping(SETTINGS).unwrap();
        assert!(!Rc::ptr_eq(&a, &d), "only the latest settings are kept");
    }
}
