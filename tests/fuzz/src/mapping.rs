//! The mapping language (`roster-mapping`): expressions and mapping documents, applied to
//! small records.
//!
//! Input: the expression or the mapping document, then optionally a NUL and bytes that
//! [`arbitrary`] turns into the records to apply it to (without them, a few fixed records).

use arbitrary::{Arbitrary, Unstructured};
use roster_mapping::{Expr, GroupOutcome, GroupRecord, Mapping, Outcome, Record, RecordView, Verdict};

use crate::split::{parts, text};

/// Attribute names the corpus's expressions read, so generated records often have them.
const NAMES: &[&str] = &[
    "mail",
    "otherMails",
    "userPrincipalName",
    "department",
    "n",
    "upn",
    "givenName",
    "surname",
    "employeeType",
    "extension_1_costCenter",
];

#[derive(Arbitrary, Debug)]
struct ArbRecord {
    username: String,
    email: Option<String>,
    display_name: Option<String>,
    active: bool,
    attributes: Vec<(u8, Option<String>, String)>,
}

impl ArbRecord {
    fn record(self) -> Record {
        Record {
            username: self.username,
            email: self.email,
            display_name: self.display_name,
            active: self.active,
            attributes: self
                .attributes
                .into_iter()
                .take(16)
                .map(|(i, name, value)| {
                    let name = name.unwrap_or_else(|| NAMES[usize::from(i) % NAMES.len()].to_string());
                    (name, value)
                })
                .collect(),
        }
    }
}

fn fixed_records() -> Vec<Record> {
    let pairs = |p: &[(&str, &str)]| p.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
    vec![
        Record {
            username: "Alice.Smith@Contoso.com".into(),
            email: Some("alice.smith@contoso.com".into()),
            display_name: Some("Alice Smith".into()),
            active: true,
            attributes: pairs(&[
                ("userPrincipalName", "Alice.Smith@Contoso.com"),
                ("mail", "alice.smith@contoso.com"),
                ("otherMails", "a@x.example"),
                ("otherMails", "b@x.example"),
                ("department", "R&D"),
                ("givenName", "Álice"),
                ("n", "42"),
            ]),
        },
        Record {
            username: "bob".into(),
            active: false,
            ..Record::default()
        },
        Record::default(),
    ]
}

/// The records to apply the parsed text to: from the bytes after the first NUL, or fixed.
fn records(rest: &[&[u8]]) -> Vec<Record> {
    let Some(bytes) = rest.first() else {
        return fixed_records();
    };
    let mut u = Unstructured::new(bytes);
    let mut out = Vec::new();
    while out.len() < 4 && !u.is_empty() {
        match ArbRecord::arbitrary(&mut u) {
            Ok(r) => out.push(r.record()),
            Err(_) => break,
        }
    }
    if out.is_empty() { fixed_records() } else { out }
}

fn view(r: &Record) -> RecordView<'_> {
    RecordView {
        username: &r.username,
        email: r.email.as_deref(),
        display_name: r.display_name.as_deref(),
        active: r.active,
        attributes: r.attributes.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect(),
    }
}

/// An expression: parsed, then evaluated against each record, owned and borrowed alike.
pub fn expr(data: &[u8]) {
    let p = parts(data);
    let source = text(p[0]);
    match Expr::parse(&source) {
        Err(e) => {
            assert!(e.line >= 1 && e.column >= 1, "a parse error without a position: {e:?}");
            assert!(e.to_string().starts_with("line "), "{e}");
        }
        Ok(e) => {
            assert_eq!(e.source(), source);
            for r in records(&p[1..]) {
                let owned = format!("{:?}", e.eval(&r));
                let borrowed = format!("{:?}", e.eval(&view(&r)));
                assert_eq!(owned, borrowed, "a record and its view evaluate differently");
                assert_eq!(owned, format!("{:?}", e.eval(&r)), "evaluation is not repeatable");
            }
        }
    }
}

/// A mapping document: parsed, then applied to each record and to group names, by every
/// entry point (borrowed, owned, decided on a view), which must agree.
pub fn document(data: &[u8]) {
    let p = parts(data);
    let json = text(p[0]);
    let m = match Mapping::parse(&json) {
        Ok(m) => m,
        Err(e) => {
            assert!(!e.to_string().is_empty(), "an empty error for {json:?}");
            return;
        }
    };
    for r in records(&p[1..]) {
        let borrowed = m.map_user(&r);
        assert_eq!(
            borrowed,
            m.map_user_owned(r.clone()),
            "map_user and map_user_owned differ"
        );
        let decided = match m.decide(&view(&r)) {
            Verdict::Keep { reason, changes } => {
                let mut user = r.clone();
                changes.apply(&mut user);
                Outcome::Keep {
                    user,
                    reason: reason.into_owned(),
                }
            }
            Verdict::Drop { reason } => Outcome::Drop {
                reason: reason.into_owned(),
            },
            Verdict::Failed { error } => Outcome::Failed { error },
        };
        assert_eq!(borrowed, decided, "deciding on a borrowed view differs from map_user");
        let names = [r.username.as_str(), r.display_name.as_deref().unwrap_or("AAD-dev"), ""];
        for name in names {
            let group = GroupRecord {
                name: name.to_string(),
                description: r.email.clone(),
                attributes: r.attributes.clone(),
            };
            let outcome = m.map_group(&group);
            match (&outcome, m.map_group_name(name)) {
                (GroupOutcome::Mapped { groups, reason }, Ok((names, why))) => {
                    assert_eq!(reason, &why);
                    assert_eq!(groups.iter().map(|g| g.name.clone()).collect::<Vec<_>>(), names);
                    assert!(
                        groups.iter().all(|g| !g.name.is_empty()),
                        "group {name:?} mapped to an empty name: {outcome:?}"
                    );
                }
                (GroupOutcome::Failed { error }, Err(e)) => assert_eq!(error, &e),
                (o, n) => panic!("map_group and map_group_name disagree: {o:?} / {n:?}"),
            }
        }
    }
}
