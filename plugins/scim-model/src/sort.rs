//! `sortBy` / `sortOrder` (RFC 7644 §3.4.2.3): resources ordered by one attribute, compared
//! by its type and `caseExact`, resources without a value last.

use std::cmp::Ordering;

use serde_json::Value;

use crate::error::{ScimError, ScimType};
use crate::filter::{as_bool, compare_numbers, get_ci};
use crate::path::AttrPath;
use crate::schema::{AttrType, Attribute, Home, ResourceSchema};
use crate::time;

/// The direction of a sort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    /// Smallest first (the default).
    Ascending,
    /// Largest first.
    Descending,
}

impl SortOrder {
    /// Reads `sortOrder` (case-insensitive; absent is ascending); a 400 `invalidValue` otherwise.
    pub fn from_query(text: Option<&str>) -> Result<SortOrder, ScimError> {
        match text.map(str::trim) {
            None | Some("") => Ok(SortOrder::Ascending),
            Some(t) if t.eq_ignore_ascii_case("ascending") => Ok(SortOrder::Ascending),
            Some(t) if t.eq_ignore_ascii_case("descending") => Ok(SortOrder::Descending),
            Some(t) => Err(ScimError::bad(
                ScimType::InvalidValue,
                format!("sortOrder={t:?}: use \"ascending\" or \"descending\""),
            )),
        }
    }
}

/// The value a resource is sorted by: a multi-valued attribute's primary value, else its first.
fn key<'v>(resource: &'v Value, by: &AttrPath, schema: &ResourceSchema) -> Option<(&'v Value, Attribute)> {
    let (home, top) = schema.locate(by)?;
    let container = match home {
        Home::Core => resource,
        Home::Extension(urn) => get_ci(resource, urn)?,
    };
    let mut v = get_ci(container, top.name)?;
    if let Value::Array(items) = v {
        v = items
            .iter()
            .find(|i| get_ci(i, "primary").and_then(as_bool) == Some(true))
            .or_else(|| items.first())?;
    }
    let mut attr = top;
    let sub = by
        .sub
        .as_deref()
        .or_else(|| (top.kind == AttrType::Complex && top.sub("value").is_some()).then_some("value"));
    if let Some(sub) = sub {
        attr = top.sub(sub)?;
        v = get_ci(v, sub)?;
    }
    (!v.is_null()).then(|| (v, attr.clone()))
}

fn compare(a: &Value, b: &Value, attr: &Attribute) -> Ordering {
    match (a, b) {
        (Value::String(x), Value::String(y)) => {
            if attr.kind == AttrType::DateTime
                && let (Some(p), Some(q)) = (time::parse(x), time::parse(y))
            {
                return p.cmp(&q);
            }
            if attr.case_exact {
                x.cmp(y)
            } else {
                x.to_lowercase().cmp(&y.to_lowercase()).then_with(|| x.cmp(y))
            }
        }
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y).unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

/// Sorts resources by `by` (stable); resources without a value come last in either order.
/// An attribute the schema does not know leaves the order as it is.
pub fn sort(resources: &mut [Value], by: &AttrPath, order: SortOrder, schema: &ResourceSchema) {
    if schema.find(by).is_none() {
        return;
    }
    let mut keyed: Vec<(Option<(Value, Attribute)>, Value)> = resources
        .iter_mut()
        .map(|r| {
            let k = key(r, by, schema).map(|(v, a)| (v.clone(), a));
            (k, std::mem::take(r))
        })
        .collect();
    keyed.sort_by(|(a, _), (b, _)| match (a, b) {
        (Some((x, attr)), Some((y, _))) => {
            let o = compare(x, y, attr);
            if order == SortOrder::Descending { o.reverse() } else { o }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    });
    for (slot, (_, r)) in resources.iter_mut().zip(keyed) {
        *slot = r;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::ENTERPRISE_URN;

    fn names(rs: &[Value]) -> Vec<&str> {
        rs.iter().map(|r| r["id"].as_str().unwrap()).collect()
    }

    #[test]
    fn sorts_case_insensitively_with_missing_values_last() {
        let user = ResourceSchema::user();
        let mut rs = vec![
            json!({"id": "1", "userName": "bob"}),
            json!({"id": "2"}),
            json!({"id": "3", "userName": "Alice"}),
            json!({"id": "4", "userName": "carol"}),
        ];
        sort(&mut rs, &AttrPath::new("USERNAME"), SortOrder::Ascending, user);
        assert_eq!(names(&rs), ["3", "1", "4", "2"]);
        sort(&mut rs, &AttrPath::new("userName"), SortOrder::Descending, user);
        assert_eq!(names(&rs), ["4", "1", "3", "2"]);
    }

    #[test]
    fn sorts_by_primary_email_extension_and_time() {
        let user = ResourceSchema::user();
        let mut rs = vec![
            json!({"id": "1", "emails": [{"value": "z@x"}, {"value": "a@x", "primary": true}],
                   "meta": {"lastModified": "2026-01-01T10:00:00+02:00"}}),
            json!({"id": "2", "emails": [{"value": "m@x"}], ENTERPRISE_URN: {"employeeNumber": "7"},
                   "meta": {"lastModified": "2026-01-01T09:00:00Z"}}),
            json!({"id": "3", ENTERPRISE_URN: {"employeeNumber": "10"}}),
        ];
        sort(&mut rs, &AttrPath::new("emails"), SortOrder::Ascending, user);
        assert_eq!(names(&rs), ["1", "2", "3"]);
        sort(
            &mut rs,
            &AttrPath::parse("meta.lastModified").unwrap(),
            SortOrder::Ascending,
            user,
        );
        assert_eq!(names(&rs), ["1", "2", "3"], "08:00Z before 09:00Z");
        let by = AttrPath::parse(&format!("{ENTERPRISE_URN}:employeeNumber")).unwrap();
        sort(&mut rs, &by, SortOrder::Ascending, user);
        assert_eq!(names(&rs), ["3", "2", "1"], "strings: \"10\" < \"7\"");
        let before = rs.clone();
        sort(&mut rs, &AttrPath::new("nosuch"), SortOrder::Descending, user);
        assert_eq!(rs, before);
    }

    #[test]
    fn sort_order_reads_both_words() {
        assert_eq!(SortOrder::from_query(None).unwrap(), SortOrder::Ascending);
        assert_eq!(
            SortOrder::from_query(Some("DESCENDING")).unwrap(),
            SortOrder::Descending
        );
        assert_eq!(
            SortOrder::from_query(Some("up")).unwrap_err().scim_type,
            Some(ScimType::InvalidValue)
        );
    }
}
