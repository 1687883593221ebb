//! A record's raw attributes from an IdP's JSON object: every property as `(name, value)`
//! pairs, one per value, so transforms and scoping rules read any property without the
//! connector knowing which ones they need.

use serde_json::{Map, Value};

/// The values of one JSON property as attribute values: a string as is, booleans and numbers
/// as their JSON text, each element of an array (nested arrays flattened), an object as its
/// JSON text; `null` has none.
pub fn values(v: &Value) -> Vec<String> {
    match v {
        Value::Null => vec![],
        Value::String(s) => vec![s.clone()],
        Value::Bool(b) => vec![b.to_string()],
        Value::Number(n) => vec![n.to_string()],
        Value::Array(items) => items.iter().flat_map(values).collect(),
        Value::Object(_) => vec![v.to_string()],
    }
}

/// The properties of `object` that `keep` admits (by name), one `(name, value)` pair per value.
pub fn from_object(object: &Map<String, Value>, keep: impl Fn(&str) -> bool) -> Vec<(String, String)> {
    object
        .iter()
        .filter(|(k, _)| keep(k))
        .flat_map(|(k, v)| values(v).into_iter().map(move |x| (k.clone(), x)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_becomes_a_pair_and_nulls_none() {
        let o: Map<String, Value> = serde_json::from_str(
            r#"{"id":"1","mail":"a@x","enabled":true,"n":3,"other":["b@x",["c@x"]],"gone":null,"p":{"a":1}}"#,
        )
        .unwrap();
        let pairs = from_object(&o, |k| k != "id");
        let get = |k: &str| {
            pairs
                .iter()
                .filter(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("other"), vec!["b@x", "c@x"]);
        assert_eq!((get("enabled"), get("n")), (vec!["true"], vec!["3"]));
        assert_eq!(get("p"), vec![r#"{"a":1}"#]);
        assert!(get("gone").is_empty() && get("id").is_empty());
    }
}
