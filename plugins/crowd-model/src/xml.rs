//! XML text as Crowd's server writes it (JAXB): the prolog, escaping, simple elements, and the
//! error entity in XML and JSON.

use crate::Reason;

/// The prolog JAXB writes.
pub const PROLOG: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>";

/// Appends `s` escaped for XML text and attribute values.
pub fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all are dropped rather than break the document.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            '\u{FFFE}' | '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

/// Appends `<tag>escaped value</tag>`.
pub fn text(out: &mut String, tag: &str, value: &str) {
    out.push('<');
    out.push_str(tag);
    out.push('>');
    escape(out, value);
    out.push_str("</");
    out.push_str(tag);
    out.push('>');
}

/// The error entity (crowd-rest.md §3), with the prolog.
pub fn error_xml(reason: Reason, message: &str) -> String {
    let mut out = String::with_capacity(PROLOG.len() + message.len() + 64);
    out.push_str(PROLOG);
    out.push_str("<error>");
    text(&mut out, "reason", reason.as_str());
    text(&mut out, "message", message);
    out.push_str("</error>");
    out
}

/// The error entity in JSON.
pub fn error_json(reason: Reason, message: &str) -> String {
    serde_json::json!({"reason": reason.as_str(), "message": message}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped_and_control_characters_dropped_so_the_document_stays_well_formed() {
        let mut out = String::new();
        escape(&mut out, "a\u{1}b\u{FFFF}c\td <x> & \"'");
        assert_eq!(out, "abc\td &lt;x&gt; &amp; &quot;&apos;");
    }

    #[test]
    fn the_error_entity_names_its_reason_and_message() {
        assert_eq!(
            error_xml(Reason::UserNotFound, "User <bob> does not exist"),
            format!(
                "{PROLOG}<error><reason>USER_NOT_FOUND</reason><message>User &lt;bob&gt; does not exist</message></error>"
            )
        );
        let v: serde_json::Value = serde_json::from_str(&error_json(Reason::IllegalArgument, "no")).unwrap();
        assert_eq!(v, serde_json::json!({"reason": "ILLEGAL_ARGUMENT", "message": "no"}));
    }
}
