//! Attribute paths (RFC 7644 §3.10) and PATCH paths (§3.5.2): `userName`, `name.givenName`,
//! `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`,
//! `members[value eq "x"]`, `emails[type eq "work"].value`.

use std::fmt;

use crate::error::{ScimError, ScimType};
use crate::filter::{Filter, Parser};

/// An attribute, optionally schema-qualified, optionally one of its sub-attributes. Names are
/// kept as written and compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN it was qualified with.
    pub urn: Option<String>,
    /// The attribute's name.
    pub name: String,
    /// The sub-attribute's name.
    pub sub: Option<String>,
}

impl AttrPath {
    /// An unqualified attribute without a sub-attribute.
    pub fn new(name: impl Into<String>) -> AttrPath {
        AttrPath {
            urn: None,
            name: name.into(),
            sub: None,
        }
    }

    /// Reads `[urn:…:]name[.sub]` (for `sortBy`, `attributes`, `excludedAttributes`); a 400
    /// `invalidPath` naming the position when it is not one.
    pub fn parse(text: &str) -> Result<AttrPath, ScimError> {
        let mut p = Parser::new(text, ScimType::InvalidPath);
        let path = p.attr_path()?;
        p.end()?;
        Ok(path)
    }

    /// Whether this path, read as a whole (`urn:…:User` parses as URN `urn:…:2.0`, name
    /// `User`), is the URN `urn`: a client naming a whole extension.
    pub fn is_urn(&self, urn: &str) -> bool {
        match &self.urn {
            Some(u) if self.sub.is_none() => {
                urn.len() == u.len() + 1 + self.name.len()
                    && urn.get(..u.len()).is_some_and(|p| p.eq_ignore_ascii_case(u))
                    && urn.get(u.len()..u.len() + 1) == Some(":")
                    && urn
                        .get(u.len() + 1..)
                        .is_some_and(|n| n.eq_ignore_ascii_case(&self.name))
            }
            _ => false,
        }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// The `path` of a PATCH operation: an attribute path, or a value path with a filter and
/// optionally a sub-attribute after it.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute (with its sub-attribute when there is no filter: `name.givenName`).
    pub attr: AttrPath,
    /// The filter selecting values of a multi-valued attribute: `members[value eq "x"]`.
    pub filter: Option<Filter>,
    /// The sub-attribute after the filter: `emails[type eq "work"].value`.
    pub sub: Option<String>,
}

impl PatchPath {
    /// Reads a PATCH path; a 400 `invalidPath` naming the position when it is not one.
    pub fn parse(text: &str) -> Result<PatchPath, ScimError> {
        let mut p = Parser::new(text, ScimType::InvalidPath);
        let path = p.patch_path()?;
        p.end()?;
        Ok(path)
    }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_paths_split_urn_name_and_sub() {
        let p = AttrPath::parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value").unwrap();
        assert_eq!(
            p.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(p.name, "manager");
        assert_eq!(p.sub.as_deref(), Some("value"));
        let p = AttrPath::parse("name.givenName").unwrap();
        assert_eq!(
            (p.urn, p.name.as_str(), p.sub.as_deref()),
            (None, "name", Some("givenName"))
        );
        let whole = AttrPath::parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User").unwrap();
        assert!(whole.is_urn("URN:ietf:params:scim:schemas:extension:enterprise:2.0:user"));
        assert!(!p_is_urn("userName"));
        assert_eq!(AttrPath::parse("members.$ref").unwrap().sub.as_deref(), Some("$ref"));
    }

    fn p_is_urn(s: &str) -> bool {
        AttrPath::parse(s).unwrap().is_urn(s)
    }

    #[test]
    fn patch_paths_with_filters_and_subs() {
        let p = PatchPath::parse(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(p.attr, AttrPath::new("emails"));
        assert!(p.filter.is_some());
        assert_eq!(p.sub.as_deref(), Some("value"));
        assert_eq!(p.to_string(), r#"emails[type eq "work"].value"#);
        let p = PatchPath::parse(r#"members[value eq "7f4b"]"#).unwrap();
        assert_eq!(p.sub, None);
        assert_eq!(p.to_string(), r#"members[value eq "7f4b"]"#);
    }

    #[test]
    fn malformed_paths_are_invalid_path_with_a_position() {
        for (bad, at) in [
            ("", "character 1"),
            ("emails[type eq \"work\"", "character 22"),
            ("emails[type eq \"work\"]x", "character 23"),
            ("name.givenName.x", "character 15"),
            ("1abc", "character 1"),
            ("name.givenName[value eq \"x\"]", "character 15"),
            ("emails[type eq \"work\"].", "character 24"),
            ("urn:x:", "character 7"),
        ] {
            let e = PatchPath::parse(bad).unwrap_err();
            assert_eq!(e.scim_type, Some(ScimType::InvalidPath), "{bad}");
            assert!(e.detail.contains(at), "{bad}: {}", e.detail);
        }
    }
}
