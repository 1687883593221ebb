//! What the target cannot hold is never sent to it: a person whose username or email the
//! target would refuse is left out of the plan with a warning naming the record and what to
//! do, and their account (if any) is left exactly as it is; a display name longer than the
//! target takes is cut to fit. The others are planned as usual. Checked before planning, so one
//! bad record costs one warning, not a failed call per run or a run that dies.

use roster_model::Desired;

use crate::target::Fields;

/// At most this much of a refused value is quoted in a warning (a megabyte username must not
/// become a megabyte run summary).
const QUOTE: usize = 40;

fn quote(s: &str) -> String {
    let cut: String = s.chars().take(QUOTE).collect();
    let shown = format!("{cut:?}");
    if s.chars().count() > QUOTE {
        format!("{shown}… ({} characters)", s.chars().count())
    } else {
        shown
    }
}

/// Why `username` cannot be an account name of the target, if it cannot.
pub fn username_unfit(username: &str, fields: Fields) -> Option<String> {
    let n = username.chars().count();
    if n > fields.max_chars {
        return Some(format!("it is longer than {} characters", fields.max_chars));
    }
    if let Some(c) = username.chars().find(|c| c.is_control()) {
        return Some(format!("it holds the control character U+{:04X}", c as u32));
    }
    if username.chars().any(char::is_whitespace) {
        return Some("it holds whitespace".into());
    }
    if let Some(c) = username.chars().find(|c| fields.username_forbids.contains(*c)) {
        return Some(format!("it holds '{c}'"));
    }
    None
}

/// Takes out of `desired` the persons the target cannot hold and cuts display names to fit;
/// returns a warning for each. `product` names the target in them ("Bitbucket").
pub fn fit(desired: &mut Desired, fields: Fields, product: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut refused = Vec::new();
    for (key, p) in desired.persons.iter_mut() {
        let records: Vec<String> = p.records.iter().map(|(s, e)| format!("{s}/{e}")).collect();
        let who = records.join(", ");
        let bad_email = p
            .email
            .as_deref()
            .filter(|e| e.chars().count() > fields.max_chars || e.chars().any(|c| c.is_control() || c.is_whitespace()));
        let why = match (username_unfit(&p.username, fields), bad_email) {
            (Some(why), _) => Some(format!(
                "{who}: {} cannot be a {product} username: {why}",
                quote(&p.username)
            )),
            (None, Some(email)) => Some(format!(
                "{who}: the email {} cannot be a {product} email: longer than {} characters or holding whitespace or control characters",
                quote(email),
                fields.max_chars
            )),
            (None, None) => None,
        };
        if let Some(why) = why {
            warnings.push(format!(
                "{why}; the person is left out and any account of theirs left as it is — correct the record in the source, or map it with a transform"
            ));
            refused.push(key.clone());
            continue;
        }
        if let Some(name) = p.display_name.as_mut()
            && name.chars().count() > fields.max_chars
        {
            warnings.push(format!(
                "{who}: the display name {} is longer than {product} takes; cut to {} characters",
                quote(name),
                fields.max_chars
            ));
            *name = name.chars().take(fields.max_chars).collect();
        }
    }
    for key in refused {
        if let Some(p) = desired.persons.remove(&key) {
            // Still reported by its source: unknown this run, not gone (nothing is taken away).
            desired.unresolved.extend(p.records);
        }
        for members in desired.groups.values_mut() {
            members.remove(key.as_str());
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    const BB: Fields = Fields {
        max_chars: 255,
        username_forbids: "/\\",
    };

    #[test]
    fn usernames_the_target_refuses_are_named_with_the_reason() {
        for ok in ["alice", "o'brien@example.com", "jos\u{e9}", "a.b-c_d"] {
            assert_eq!(username_unfit(ok, BB), None, "{ok}");
        }
        for (bad, why) in [
            ("a/b", "'/'"),
            ("a\\b", "'\\'"),
            ("a b", "whitespace"),
            ("a\u{7}", "U+0007"),
            ("a\nb", "U+000A"),
            ("a\u{a0}b", "whitespace"),
        ] {
            let got = username_unfit(bad, BB).unwrap_or_else(|| panic!("{bad:?} passed"));
            assert!(got.contains(why), "{bad:?}: {got}");
        }
        assert!(username_unfit(&"x".repeat(256), BB).unwrap().contains("255"));
        assert_eq!(username_unfit(&"é".repeat(255), BB), None, "characters, not bytes");
        assert!(quote(&"x".repeat(1 << 20)).len() < 80);
    }
}
