//! List answers (RFC 7644 §3.4.2) and their paging: `startIndex` (1-based) and `count`.

use serde::ser::SerializeStruct;
use serde_json::Value;

use crate::error::{ScimError, ScimType};
use crate::filter::get_ci;
use crate::schema::LIST_RESPONSE_URN;

/// A ListResponse: one page of resources.
#[derive(Debug, Clone, PartialEq)]
pub struct ListResponse {
    /// How many resources match in all.
    pub total_results: u64,
    /// The 1-based index of the first resource of this page.
    pub start_index: u64,
    /// How many resources this page holds.
    pub items_per_page: u64,
    /// The resources.
    pub resources: Vec<Value>,
}

impl serde::Serialize for ListResponse {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("ListResponse", 5)?;
        st.serialize_field("schemas", &[LIST_RESPONSE_URN])?;
        st.serialize_field("totalResults", &self.total_results)?;
        st.serialize_field("startIndex", &self.start_index)?;
        st.serialize_field("itemsPerPage", &self.items_per_page)?;
        st.serialize_field("Resources", &self.resources)?;
        st.end()
    }
}

impl<'de> serde::Deserialize<'de> for ListResponse {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        ListResponse::parse(&v).map_err(|e| serde::de::Error::custom(e.detail))
    }
}

/// An integer a SCIM service sent, as a number or (some IdPs) a string.
fn lenient_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl ListResponse {
    /// One page of `resources`, of `total_results` in all, starting at `paging.start_index`.
    pub fn new(total_results: u64, paging: Paging, resources: Vec<Value>) -> ListResponse {
        ListResponse {
            total_results,
            start_index: paging.start_index,
            items_per_page: resources.len() as u64,
            resources,
        }
    }

    /// The JSON answer.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "schemas": [LIST_RESPONSE_URN],
            "totalResults": self.total_results,
            "startIndex": self.start_index,
            "itemsPerPage": self.items_per_page,
            "Resources": self.resources,
        })
    }

    /// Reads a list answer from a SCIM service: integers as numbers or strings, `Resources`
    /// under any case and absent when empty, `itemsPerPage` and `startIndex` optional.
    pub fn parse(body: &Value) -> Result<ListResponse, ScimError> {
        let invalid = |what: &str| ScimError::bad(ScimType::InvalidSyntax, format!("not a SCIM ListResponse: {what}"));
        if !body.is_object() {
            return Err(invalid("the body is not a JSON object"));
        }
        let resources = match get_ci(body, "Resources") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(_) => return Err(invalid("\"Resources\" is not an array")),
        };
        let number = |key: &str, default: u64| -> Result<u64, ScimError> {
            match get_ci(body, key) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => {
                    lenient_u64(v).ok_or_else(|| invalid(&format!("\"{key}\" is {v}, not a non-negative integer")))
                }
            }
        };
        let count = resources.len() as u64;
        let total_results = match get_ci(body, "totalResults") {
            None | Some(Value::Null) if resources.is_empty() => 0,
            None | Some(Value::Null) => return Err(invalid("\"totalResults\" is missing")),
            Some(_) => number("totalResults", 0)?,
        };
        Ok(ListResponse {
            total_results,
            start_index: number("startIndex", 1)?.max(1),
            items_per_page: number("itemsPerPage", count)?,
            resources,
        })
    }
}

/// Which page of a list a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// The 1-based index of the first resource.
    pub start_index: u64,
    /// How many resources at most.
    pub count: u32,
}

/// An integer query parameter: `None` when absent; out-of-range values saturate (the caller
/// clamps them); a 400 `invalidValue` when it is not an integer.
fn query_int(name: &str, text: Option<&str>) -> Result<Option<i128>, ScimError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let (negative, digits) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ScimError::bad(
            ScimType::InvalidValue,
            format!("{name}={text:?} is not an integer; send a whole number such as {name}=1"),
        ));
    }
    // Saturate: more than 30 digits is beyond any limit anyway.
    let trimmed = digits.trim_start_matches('0');
    let magnitude = if trimmed.len() > 30 {
        i128::MAX / 2
    } else {
        trimmed.parse::<i128>().unwrap_or(0)
    };
    Ok(Some(if negative { -magnitude } else { magnitude }))
}

impl Paging {
    /// Reads `startIndex` and `count` and clamps them as RFC 7644 §3.4.2.4 says: a
    /// `startIndex` below 1 is 1, a negative `count` is 0, a `count` above `max` (or none) is
    /// `max`.
    pub fn from_query(start_index: Option<&str>, count: Option<&str>, max: u32) -> Result<Paging, ScimError> {
        let start = query_int("startIndex", start_index)?.unwrap_or(1);
        let count = query_int("count", count)?.unwrap_or(i128::from(max));
        Ok(Paging {
            start_index: u64::try_from(start.clamp(1, i128::from(u64::MAX))).unwrap_or(1),
            count: u32::try_from(count.clamp(0, i128::from(max))).unwrap_or(max),
        })
    }

    /// The indexes (0-based, end exclusive) of `total` resources this page holds.
    pub fn window(&self, total: usize) -> std::ops::Range<usize> {
        let start = usize::try_from(self.start_index.saturating_sub(1))
            .unwrap_or(usize::MAX)
            .min(total);
        let end = start.saturating_add(self.count as usize).min(total);
        start..end
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn paging_clamps_as_the_rfc_says() {
        let p = |s, c| Paging::from_query(s, c, 100).unwrap();
        assert_eq!(
            p(None, None),
            Paging {
                start_index: 1,
                count: 100
            }
        );
        assert_eq!(
            p(Some("0"), Some("-5")),
            Paging {
                start_index: 1,
                count: 0
            }
        );
        assert_eq!(
            p(Some("-7"), Some("1000")),
            Paging {
                start_index: 1,
                count: 100
            }
        );
        assert_eq!(
            p(Some("3"), Some("10")),
            Paging {
                start_index: 3,
                count: 10
            }
        );
        assert_eq!(
            p(
                Some("99999999999999999999999999999999999999999"),
                Some("99999999999999999999999")
            ),
            Paging {
                start_index: u64::MAX,
                count: 100
            }
        );
        for bad in ["abc", "1.5", "-", "1e3", " 2x"] {
            let e = Paging::from_query(Some(bad), None, 100).unwrap_err();
            assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{bad}");
            assert!(e.detail.contains("startIndex"), "{}", e.detail);
        }
    }

    #[test]
    fn the_window_never_runs_past_the_list() {
        let p = Paging {
            start_index: 3,
            count: 10,
        };
        assert_eq!(p.window(5), 2..5);
        assert_eq!(p.window(1), 1..1);
        assert_eq!(
            Paging {
                start_index: u64::MAX,
                count: 100
            }
            .window(5),
            5..5
        );
        assert_eq!(
            Paging {
                start_index: 1,
                count: 0
            }
            .window(5),
            0..0
        );
    }

    #[test]
    fn list_responses_serialise_with_integers_and_read_leniently() {
        let page = ListResponse::new(
            7,
            Paging {
                start_index: 3,
                count: 2,
            },
            vec![json!({"id": "a"})],
        );
        let v = serde_json::to_value(&page).unwrap();
        assert_eq!(v, page.to_json());
        assert_eq!(v["totalResults"], json!(7));
        assert_eq!(v["itemsPerPage"], json!(1));
        assert_eq!(v["Resources"][0]["id"], "a");
        assert_eq!(v["schemas"][0], LIST_RESPONSE_URN);
        assert_eq!(ListResponse::parse(&v).unwrap(), page);
        let strings = json!({"totalResults": "2", "startIndex": "1", "itemsPerPage": "2", "resources": [{}, {}]});
        let l = ListResponse::parse(&strings).unwrap();
        assert_eq!(
            (l.total_results, l.start_index, l.items_per_page, l.resources.len()),
            (2, 1, 2, 2)
        );
        let empty = ListResponse::parse(&json!({"schemas": [LIST_RESPONSE_URN], "totalResults": 0})).unwrap();
        assert!(empty.resources.is_empty());
        for bad in [
            json!([]),
            json!({"Resources": {}}),
            json!({"Resources": [{}]}),
            json!({"totalResults": -1}),
        ] {
            assert!(ListResponse::parse(&bad).is_err(), "{bad}");
        }
        let back: ListResponse = serde_json::from_value(v).unwrap();
        assert_eq!(back, page);
    }
}
