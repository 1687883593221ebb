//! PATCH (RFC 7644 §3.5.2) as Entra ID and Okta really send it: capitalised ops, `"True"` and
//! `"False"` for booleans, path-less `replace` whose keys are dotted (`name.givenName`) or
//! URN-qualified, member removal as a value array or as `members[value eq "…"]`, Okta's
//! `{"op":"replace","value":{"active":false}}` and its group rename carrying the unchanged `id`.
//!
//! Operations apply to a copy; the resource changes only when all of them succeed, as the
//! RFC asks (a PATCH is atomic).

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::error::{ScimError, ScimType};
use crate::filter::{CompareOp, Filter, as_bool, get_ci};
use crate::path::{AttrPath, PatchPath};
use crate::schema::{AttrType, Attribute, Home, Mutability, ResourceSchema};

/// The schema URN of a PATCH body.
pub const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A PATCH operation's kind (read case-insensitively: Entra sends `Replace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Add values (appending to multi-valued attributes).
    Add,
    /// Remove the target, or the given values of it.
    Remove,
    /// Replace the target.
    Replace,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Remove => "remove",
            Op::Replace => "replace",
        }
    }
}

/// One operation of a PATCH body.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOp {
    /// What it does.
    pub op: Op,
    /// Where; `None`: the resource itself (`value` is an object of attributes).
    pub path: Option<PatchPath>,
    /// The value (absent for most removes).
    pub value: Option<Value>,
}

fn syntax(detail: String) -> ScimError {
    ScimError::bad(ScimType::InvalidSyntax, detail)
}

/// Reads a PATCH body: `schemas` must list the PatchOp URN and `Operations` hold at least one
/// operation; a 400 naming the operation and field that is wrong.
pub fn parse_patch(body: &Value) -> Result<Vec<PatchOp>, ScimError> {
    if !body.is_object() {
        return Err(syntax("the PATCH body is not a JSON object".into()));
    }
    let listed = get_ci(body, "schemas").and_then(Value::as_array).is_some_and(|s| {
        s.iter()
            .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(PATCH_URN)))
    });
    if !listed {
        return Err(syntax(format!(
            "the PATCH body's \"schemas\" must list \"{PATCH_URN}\""
        )));
    }
    let ops = match get_ci(body, "Operations") {
        Some(Value::Array(ops)) if !ops.is_empty() => ops,
        Some(Value::Array(_)) => return Err(syntax("\"Operations\" holds no operation".into())),
        _ => return Err(syntax("the PATCH body has no \"Operations\" array".into())),
    };
    ops.iter().enumerate().map(|(i, o)| parse_op(i, o)).collect()
}

fn parse_op(i: usize, o: &Value) -> Result<PatchOp, ScimError> {
    if !o.is_object() {
        return Err(syntax(format!("Operations[{i}] is not a JSON object")));
    }
    let op = match get_ci(o, "op").and_then(Value::as_str).map(str::trim) {
        Some(s) if s.eq_ignore_ascii_case("add") => Op::Add,
        Some(s) if s.eq_ignore_ascii_case("remove") => Op::Remove,
        Some(s) if s.eq_ignore_ascii_case("replace") => Op::Replace,
        other => {
            return Err(ScimError::bad(
                ScimType::InvalidSyntax,
                format!(
                    "Operations[{i}].op is {}; use \"add\", \"remove\" or \"replace\"",
                    other.map_or("missing".to_string(), |s| format!("{s:?}"))
                ),
            ));
        }
    };
    let path = match get_ci(o, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(
            PatchPath::parse(s.trim())
                .map_err(|e| ScimError::bad(ScimType::InvalidPath, format!("Operations[{i}].path: {}", e.detail)))?,
        ),
        Some(v) => {
            return Err(ScimError::bad(
                ScimType::InvalidPath,
                format!("Operations[{i}].path is {v}, not a string"),
            ));
        }
    };
    let value = get_ci(o, "value").cloned();
    match op {
        Op::Add | Op::Replace if value.is_none() => Err(ScimError::bad(
            ScimType::InvalidValue,
            format!("Operations[{i}] ({}) has no \"value\"", op.as_str()),
        )),
        Op::Remove if path.is_none() => Err(ScimError::bad(
            ScimType::NoTarget,
            format!("Operations[{i}] (remove) has no \"path\": say what to remove"),
        )),
        _ => Ok(PatchOp { op, path, value }),
    }
}

/// Applies the operations to `resource` (an object) through `schema`, all or none; errors are
/// the RFC's 400s (`mutability`, `noTarget`, `invalidValue`, `invalidPath`) naming the
/// operation.
pub fn apply(resource: &mut Value, ops: &[PatchOp], schema: &ResourceSchema) -> Result<(), ScimError> {
    if !resource.is_object() {
        return Err(syntax("the resource to patch is not a JSON object".into()));
    }
    let mut work = resource.clone();
    for (i, op) in ops.iter().enumerate() {
        apply_one(&mut work, op, schema).map_err(|e| {
            let at = op
                .path
                .as_ref()
                .map(|p| format!(" {:?}", p.to_string()))
                .unwrap_or_default();
            ScimError {
                detail: format!("Operations[{i}] ({}{at}): {}", op.op.as_str(), e.detail),
                ..e
            }
        })?;
    }
    *resource = work;
    Ok(())
}

fn bad(kind: ScimType, detail: impl Into<String>) -> ScimError {
    ScimError::bad(kind, detail)
}

fn apply_one(work: &mut Value, op: &PatchOp, schema: &ResourceSchema) -> Result<(), ScimError> {
    let value = op.value.as_ref();
    match (&op.path, op.op, value) {
        (None, Op::Add | Op::Replace, Some(value)) => pathless(work, op.op, value, schema),
        (Some(path), Op::Add | Op::Replace, Some(value)) => {
            if let Some(urn) = whole_extension(path, schema) {
                let mut wrapped = Map::new();
                wrapped.insert(urn.to_string(), value.clone());
                return pathless(work, op.op, &Value::Object(wrapped), schema);
            }
            set(work, path, op.op, value, schema)
        }
        (Some(path), Op::Remove, value) => remove(work, path, value, schema),
        _ => Err(bad(ScimType::InvalidValue, "the operation lacks its path or value")),
    }
}

/// The extension URN a path names as a whole (`"path": "urn:…:enterprise:2.0:User"`).
fn whole_extension(path: &PatchPath, schema: &ResourceSchema) -> Option<&'static str> {
    if path.filter.is_some() || path.sub.is_some() {
        return None;
    }
    schema.extensions.iter().map(|(u, _)| *u).find(|u| path.attr.is_urn(u))
}

/// A path-less add or replace: `value` maps attribute paths (plain, dotted, URN-qualified,
/// even with a filter) or whole extension URNs to values.
fn pathless(work: &mut Value, op: Op, value: &Value, schema: &ResourceSchema) -> Result<(), ScimError> {
    let Some(obj) = value.as_object() else {
        return Err(bad(
            ScimType::InvalidValue,
            format!("without a path, \"value\" must be an object of attributes, not {value}"),
        ));
    };
    for (key, v) in obj {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(urn) = schema.extension_urn(key) {
            let Some(inner) = v.as_object() else {
                return Err(bad(
                    ScimType::InvalidValue,
                    format!("{urn} must be an object of its attributes, not {v}"),
                ));
            };
            for (k, x) in inner {
                let mut path =
                    PatchPath::parse(k).map_err(|e| bad(ScimType::InvalidPath, format!("{urn}: {}", e.detail)))?;
                path.attr.urn = Some(urn.to_string());
                set(work, &path, op, x, schema)?;
            }
            continue;
        }
        let path = PatchPath::parse(key).map_err(|e| bad(ScimType::InvalidPath, format!("value key: {}", e.detail)))?;
        if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
            && schema.locate(&path.attr).is_none()
            && path.filter.is_none()
            && let Value::Object(inner) = v
        {
            // A whole extension Roster does not model: kept as sent, merged.
            let map = object_mut(work)?;
            let slot = map.entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(m) = slot {
                for (k, x) in inner {
                    m.insert(k.clone(), x.clone());
                }
            }
            add_schema(work, key);
            continue;
        }
        set(work, &path, op, v, schema)?;
    }
    Ok(())
}

fn object_mut(v: &mut Value) -> Result<&mut Map<String, Value>, ScimError> {
    v.as_object_mut()
        .ok_or_else(|| bad(ScimType::InvalidValue, "the target is not an object"))
}

/// Lists an extension URN in `schemas` when a value under it is set.
fn add_schema(work: &mut Value, urn: &str) {
    if let Some(Value::Array(schemas)) = work.get_mut("schemas")
        && !schemas
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)))
    {
        schemas.push(Value::String(urn.to_string()));
    }
}

/// The attribute a path names: where it lives, its schema entry when known, its key.
struct Target<'s> {
    extension: Option<String>,
    attr: Option<&'s Attribute>,
    name: String,
}

fn target<'s>(schema: &'s ResourceSchema, path: &AttrPath) -> Target<'s> {
    if let Some((home, attr)) = schema.locate(path) {
        return Target {
            extension: match home {
                Home::Core => None,
                Home::Extension(u) => Some(u.to_string()),
            },
            attr: Some(attr),
            name: attr.name.to_string(),
        };
    }
    // An attribute Roster does not model: kept where the client put it.
    let extension = match &path.urn {
        Some(u) if u.eq_ignore_ascii_case(schema.urn) => None,
        Some(u) => Some(schema.extension_urn(u).map_or_else(|| u.clone(), str::to_string)),
        None => None,
    };
    Target {
        extension,
        attr: None,
        name: path.name.clone(),
    }
}

/// The object holding the target's key (created, and listed in `schemas`, when asked).
fn container<'v>(
    work: &'v mut Value,
    t: &Target<'_>,
    create: bool,
) -> Result<Option<&'v mut Map<String, Value>>, ScimError> {
    let Some(urn) = &t.extension else {
        return object_mut(work).map(Some);
    };
    let existing = key_ci(object_mut(work)?, urn);
    let key = match existing {
        Some(k) => k,
        None if create => {
            add_schema(work, urn);
            urn.clone()
        }
        None => return Ok(None),
    };
    let map = object_mut(work)?;
    let slot = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        if !create {
            return Ok(None);
        }
        *slot = Value::Object(Map::new());
    }
    Ok(slot.as_object_mut())
}

/// The key of `map` equal to `name` ignoring case.
fn key_ci(map: &Map<String, Value>, name: &str) -> Option<String> {
    if map.contains_key(name) {
        return Some(name.to_string());
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// Refuses a change the attribute's mutability forbids; setting a read-only or immutable
/// attribute to the value it has is allowed (Okta's group rename sends the group's `id`).
fn check_mutability(
    name: &str,
    attr: Option<&Attribute>,
    current: Option<&Value>,
    new: Option<&Value>,
) -> Result<(), ScimError> {
    let Some(attr) = attr else { return Ok(()) };
    let current = current.filter(|c| !c.is_null());
    let unchanged = new.is_some() && current == new;
    match attr.mutability {
        Mutability::ReadOnly if !unchanged => Err(bad(
            ScimType::Mutability,
            format!("{name} is read-only: the server sets it; leave it out of the PATCH"),
        )),
        Mutability::Immutable if current.is_some() && !unchanged => Err(bad(
            ScimType::Mutability,
            format!("{name} is immutable: it was set once and cannot change"),
        )),
        _ => Ok(()),
    }
}

fn type_error(name: &str, v: &Value, wanted: &str) -> ScimError {
    bad(ScimType::InvalidValue, format!("{name}: {v} is not {wanted}"))
}

/// A value brought to the attribute's type: Entra's `"True"`, a manager sent as a bare id, a
/// single value for a multi-valued attribute.
fn coerce(name: &str, attr: Option<&Attribute>, v: &Value) -> Result<Value, ScimError> {
    let Some(attr) = attr else { return Ok(v.clone()) };
    if v.is_null() {
        return Ok(Value::Null);
    }
    if attr.multi_valued {
        let items: Vec<&Value> = match v {
            Value::Array(items) => items.iter().collect(),
            v => vec![v],
        };
        return items
            .into_iter()
            .map(|i| {
                // Entra sends `"$ref": null` in member values: a null sub-attribute is no value.
                coerce_single(name, attr, i).map(|mut v| {
                    if let Value::Object(o) = &mut v {
                        o.retain(|_, x| !x.is_null());
                    }
                    v
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    coerce_single(name, attr, v)
}

fn coerce_single(name: &str, attr: &Attribute, v: &Value) -> Result<Value, ScimError> {
    match attr.kind {
        AttrType::Boolean => as_bool(v)
            .map(Value::Bool)
            .ok_or_else(|| type_error(name, v, "true or false")),
        AttrType::String | AttrType::Reference | AttrType::Binary | AttrType::DateTime => match v {
            Value::String(_) => Ok(v.clone()),
            // IdPs send an employee number as a number now and then.
            Value::Number(n) => Ok(Value::String(n.to_string())),
            Value::Bool(b) => Ok(Value::String(b.to_string())),
            _ => Err(type_error(name, v, "a string")),
        },
        AttrType::Integer | AttrType::Decimal => {
            let n = match v {
                Value::Number(n) => Some(n.clone()),
                Value::String(s) => serde_json::from_str::<serde_json::Number>(s.trim()).ok(),
                _ => None,
            };
            match n {
                Some(n) if attr.kind == AttrType::Decimal || n.is_i64() || n.is_u64() => Ok(Value::Number(n)),
                _ => Err(type_error(name, v, "a number")),
            }
        }
        AttrType::Complex => match v {
            Value::Object(o) => {
                let mut out = Map::new();
                for (k, x) in o {
                    let sub = attr.sub(k);
                    let key = sub.map_or_else(|| k.clone(), |s| s.name.to_string());
                    out.insert(key, coerce(&format!("{name}.{k}"), sub, x)?);
                }
                Ok(Value::Object(out))
            }
            // Entra sends the manager as a bare id.
            Value::String(_) if attr.sub("value").is_some() => {
                let mut o = Map::new();
                o.insert("value".into(), v.clone());
                Ok(Value::Object(o))
            }
            // ... or as a one-element array.
            Value::Array(items) if items.len() == 1 => coerce_single(name, attr, &items[0]),
            _ => Err(type_error(name, v, "an object of sub-attributes")),
        },
    }
}

/// The identity of a multi-valued attribute's value, for "append without duplicates" and
/// "remove these values": `value` (and `type`, except for members), else the whole value.
fn identity(attr_name: &str, v: &Value) -> String {
    match get_ci(v, "value") {
        Some(val) if attr_name.eq_ignore_ascii_case("members") => val.to_string(),
        Some(val) => {
            let kind = get_ci(v, "type")
                .and_then(Value::as_str)
                .map(str::to_lowercase)
                .unwrap_or_default();
            format!("{val}\u{0}{kind}")
        }
        None => v.to_string(),
    }
}

fn is_primary(v: &Value) -> bool {
    get_ci(v, "primary").and_then(as_bool) == Some(true)
}

/// Appends `new` to `list`, skipping values already there; a new primary value demotes the
/// others (one primary per attribute, RFC 7643 §2.4).
fn append(attr_name: &str, list: &mut Vec<Value>, new: Vec<Value>) {
    let mut seen: HashSet<String> = list.iter().map(|v| identity(attr_name, v)).collect();
    for v in new {
        if !seen.insert(identity(attr_name, &v)) {
            continue;
        }
        if is_primary(&v) {
            demote(list);
        }
        list.push(v);
    }
}

fn demote(list: &mut [Value]) {
    for item in list.iter_mut() {
        if is_primary(item)
            && let Some(o) = item.as_object_mut()
            && let Some(k) = key_ci(o, "primary")
        {
            o.insert(k, Value::Bool(false));
        }
    }
}

/// Sets sub-attributes of `obj` from `value` (an object), a null removing one.
fn merge(obj: &mut Map<String, Value>, value: &Value) {
    if let Value::Object(v) = value {
        for (k, x) in v {
            let key = key_ci(obj, k);
            if let Some(old) = &key {
                obj.remove(old);
            }
            if !x.is_null() {
                obj.insert(k.clone(), x.clone());
            }
        }
    }
}

fn set(work: &mut Value, path: &PatchPath, op: Op, value: &Value, schema: &ResourceSchema) -> Result<(), ScimError> {
    let t = target(schema, &path.attr);
    if path.filter.is_some() {
        return set_filtered(work, path, &t, op, value);
    }
    let shown = path.attr.to_string();
    if let Some(sub) = &path.attr.sub {
        return set_sub(work, &t, sub, &shown, value);
    }
    let map = container(work, &t, true)?.ok_or_else(|| bad(ScimType::InvalidPath, "no such container"))?;
    let key = key_ci(map, &t.name);
    let current = key.as_ref().and_then(|k| map.get(k));
    let new = coerce(&shown, t.attr, value)?;
    check_mutability(&shown, t.attr, current, Some(&new))?;
    if new.is_null() {
        if t.attr.is_some_and(|a| a.required) {
            return Err(bad(
                ScimType::InvalidValue,
                format!("{shown} is required; it cannot be emptied"),
            ));
        }
        if let Some(k) = key {
            map.remove(&k);
        }
        return Ok(());
    }
    let multi = t
        .attr
        .map_or(new.is_array() && current.is_some_and(Value::is_array), |a| {
            a.multi_valued
        });
    let complex = t
        .attr
        .map_or(new.is_object() && current.is_some_and(Value::is_object), |a| {
            a.kind == AttrType::Complex
        });
    let mut current = key.and_then(|k| map.remove(&k));
    let result = match (multi, op, new) {
        (true, Op::Add, Value::Array(items)) => {
            let mut list = match current.take() {
                Some(Value::Array(list)) => list,
                _ => Vec::new(),
            };
            append(&t.name, &mut list, items);
            Value::Array(list)
        }
        (true, _, Value::Array(mut items)) => {
            // A replaced list keeps one primary: the last one marked so.
            if let Some(last) = items.iter().rposition(is_primary) {
                let (before, after) = items.split_at_mut(last);
                demote(before);
                demote(&mut after[1..]);
            }
            Value::Array(items)
        }
        (false, _, new @ Value::Object(_)) if complex => {
            let mut obj = match current.take() {
                Some(Value::Object(o)) => o,
                _ => Map::new(),
            };
            merge(&mut obj, &new);
            Value::Object(obj)
        }
        (_, _, new) => new,
    };
    map.insert(t.name.clone(), result);
    Ok(())
}

/// `name.givenName`, `urn:…:manager.value`, `emails.value`: a sub-attribute of a complex
/// attribute (of each of its values when multi-valued).
fn set_sub(work: &mut Value, t: &Target<'_>, sub: &str, shown: &str, value: &Value) -> Result<(), ScimError> {
    let sub_attr = sub_attribute(t, sub, shown)?;
    let new = coerce(shown, sub_attr, value)?;
    let map = container(work, t, true)?.ok_or_else(|| bad(ScimType::InvalidPath, "no such container"))?;
    let key = key_ci(map, &t.name).unwrap_or_else(|| t.name.clone());
    // A read-only parent (meta) refuses every sub-attribute.
    if t.attr.is_some_and(|a| a.mutability == Mutability::ReadOnly) {
        check_mutability(shown, t.attr, None, None)?;
    }
    let slot = map.entry(key).or_insert(Value::Null);
    let multi = t.attr.is_some_and(|a| a.multi_valued);
    let sub_key = sub_attr.map_or(sub, |s| s.name);
    let set_in = |o: &mut Map<String, Value>| -> Result<(), ScimError> {
        let k = key_ci(o, sub_key);
        check_mutability(shown, sub_attr, k.as_ref().and_then(|k| o.get(k)), Some(&new))?;
        if let Some(k) = k {
            o.remove(&k);
        }
        if !new.is_null() {
            o.insert(sub_key.to_string(), new.clone());
        }
        Ok(())
    };
    match slot {
        Value::Array(items) if multi && !items.is_empty() => {
            for item in items.iter_mut() {
                if let Value::Object(o) = item {
                    set_in(o)?;
                }
            }
        }
        Value::Object(o) if !multi => set_in(o)?,
        slot => {
            let mut o = Map::new();
            set_in(&mut o)?;
            *slot = if multi {
                Value::Array(vec![Value::Object(o)])
            } else {
                Value::Object(o)
            };
        }
    }
    Ok(())
}

fn sub_attribute<'s>(t: &Target<'s>, sub: &str, shown: &str) -> Result<Option<&'s Attribute>, ScimError> {
    match t.attr {
        None => Ok(None),
        Some(a) if a.kind != AttrType::Complex => Err(bad(
            ScimType::InvalidPath,
            format!("{shown}: {} has no sub-attributes", a.name),
        )),
        Some(a) => a.sub(sub).map(Some).ok_or_else(|| {
            bad(
                ScimType::InvalidPath,
                format!(
                    "{shown}: {} has no sub-attribute {sub:?} (it has {})",
                    a.name,
                    a.sub_attributes.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
                ),
            )
        }),
    }
}

/// The sub-attribute values a filter of `eq` comparisons joined by `and` pins down, so that a
/// value it matches can be created when none exists (Entra's
/// `emails[type eq "work"].value` on a user without a work email).
fn seed(filter: &Filter, out: &mut Map<String, Value>) -> bool {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.urn.is_none() && path.sub.is_none() && !value.is_null() => {
            out.insert(path.name.clone(), value.clone());
            true
        }
        Filter::And(fs) => fs.iter().all(|f| seed(f, out)),
        _ => false,
    }
}

fn filtered_attribute<'s>(t: &Target<'s>, path: &PatchPath) -> Result<&'s Attribute, ScimError> {
    match t.attr {
        Some(a) if a.kind == AttrType::Complex && a.multi_valued => Ok(a),
        Some(a) => Err(bad(
            ScimType::InvalidPath,
            format!(
                "{path}: a filter selects values of a multi-valued complex attribute; {} is not one",
                a.name
            ),
        )),
        None => Err(bad(
            ScimType::InvalidPath,
            format!("{path}: {} is not an attribute of this resource", path.attr),
        )),
    }
}

fn set_filtered(work: &mut Value, path: &PatchPath, t: &Target<'_>, op: Op, value: &Value) -> Result<(), ScimError> {
    let attr = filtered_attribute(t, path)?;
    let Some(filter) = &path.filter else { return Ok(()) };
    let shown = path.to_string();
    let sub_attr = match &path.sub {
        Some(sub) => sub_attribute(t, sub, &shown)?,
        None => None,
    };
    let new = match sub_attr {
        Some(s) => coerce(&shown, Some(s), value)?,
        None => coerce_single(&shown, attr, value)?,
    };
    check_mutability(&shown, Some(attr), None, None)?;
    let map = container(work, t, true)?.ok_or_else(|| bad(ScimType::InvalidPath, "no such container"))?;
    let key = key_ci(map, &t.name).unwrap_or_else(|| t.name.clone());
    let slot = map.entry(key).or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        *slot = Value::Array(match slot.take() {
            Value::Null => Vec::new(),
            v => vec![v],
        });
    }
    let Value::Array(items) = slot else { return Ok(()) };
    let mut matched = 0;
    for item in items.iter_mut() {
        if !filter.matches_value(item, attr) {
            continue;
        }
        matched += 1;
        let Value::Object(o) = item else { continue };
        match (sub_attr, op) {
            (Some(s), _) => {
                let k = key_ci(o, s.name);
                check_mutability(&shown, Some(s), k.as_ref().and_then(|k| o.get(k)), Some(&new))?;
                if let Some(k) = k {
                    o.remove(&k);
                }
                if !new.is_null() {
                    o.insert(s.name.to_string(), new.clone());
                }
            }
            (None, Op::Add) => merge(o, &new),
            (None, _) => {
                if let Value::Object(n) = &new {
                    *o = n.clone();
                }
            }
        }
    }
    if matched > 0 {
        if is_primary(&new) || sub_attr.is_some_and(|s| s.name == "primary") && new == Value::Bool(true) {
            // Keep one primary: the values just set win.
            let chosen: Vec<bool> = items.iter().map(|i| filter.matches_value(i, attr)).collect();
            for (item, keep) in items.iter_mut().zip(chosen) {
                if !keep {
                    demote(std::slice::from_mut(item));
                }
            }
        }
        return Ok(());
    }
    let mut fresh = Map::new();
    if !seed(filter, &mut fresh) {
        return Err(bad(
            ScimType::NoTarget,
            format!(
                "no value of {} matches [{filter}], and the filter does not say what to create",
                attr.name
            ),
        ));
    }
    match sub_attr {
        Some(s) if !new.is_null() => {
            fresh.insert(s.name.to_string(), new);
        }
        Some(_) => return Ok(()),
        None => merge(&mut fresh, &new),
    }
    let fresh = coerce_single(&shown, attr, &Value::Object(fresh))?;
    if is_primary(&fresh) {
        demote(items);
    }
    items.push(fresh);
    Ok(())
}

fn remove(work: &mut Value, path: &PatchPath, value: Option<&Value>, schema: &ResourceSchema) -> Result<(), ScimError> {
    if let Some(urn) = whole_extension(path, schema) {
        if let Some(map) = work.as_object_mut()
            && let Some(k) = key_ci(map, urn)
        {
            map.remove(&k);
        }
        if let Some(Value::Array(schemas)) = work.get_mut("schemas") {
            schemas.retain(|s| !s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)));
        }
        return Ok(());
    }
    let t = target(schema, &path.attr);
    let shown = path.to_string();
    if t.attr.is_some_and(|a| a.mutability == Mutability::ReadOnly) {
        return check_mutability(&shown, t.attr, Some(&Value::Bool(true)), None);
    }
    if let Some(filter) = &path.filter {
        let attr = filtered_attribute(&t, path)?;
        let sub_attr = match &path.sub {
            Some(sub) => sub_attribute(&t, sub, &shown)?,
            None => None,
        };
        if let Some(s) = sub_attr {
            check_mutability(&shown, Some(s), Some(&Value::Bool(true)), None)?;
        }
        let items = match container(work, &t, false)?.and_then(|m| {
            let k = key_ci(m, &t.name)?;
            m.get_mut(&k)
        }) {
            Some(Value::Array(items)) => Some(items),
            _ => None,
        };
        let mut matched = 0;
        if let Some(items) = items {
            match sub_attr {
                Some(s) => {
                    for item in items.iter_mut().filter(|i| filter.matches_value(i, attr)) {
                        matched += 1;
                        if let Some(o) = item.as_object_mut()
                            && let Some(k) = key_ci(o, s.name)
                        {
                            o.remove(&k);
                        }
                    }
                }
                None => {
                    let before = items.len();
                    items.retain(|i| !filter.matches_value(i, attr));
                    matched = before - items.len();
                }
            }
        }
        drop_empty(work, &t)?;
        // Removing a member that is not there is what an IdP retrying expects to succeed.
        if matched == 0 && !(attr.name == "members" && sub_attr.is_none()) {
            return Err(bad(
                ScimType::NoTarget,
                format!("no value of {} matches [{filter}]", attr.name),
            ));
        }
        return Ok(());
    }
    if let Some(sub) = &path.attr.sub {
        let sub_attr = sub_attribute(&t, sub, &shown)?;
        check_mutability(&shown, sub_attr, Some(&Value::Bool(true)), None)?;
        if let Some(map) = container(work, &t, false)?
            && let Some(k) = key_ci(map, &t.name)
            && let Some(slot) = map.get_mut(&k)
        {
            let sub_key = sub_attr.map_or(sub.as_str(), |s| s.name);
            let items: Vec<&mut Value> = match slot {
                Value::Array(items) => items.iter_mut().collect(),
                v => vec![v],
            };
            for item in items {
                if let Some(o) = item.as_object_mut()
                    && let Some(k) = key_ci(o, sub_key)
                {
                    o.remove(&k);
                }
            }
        }
        return Ok(());
    }
    check_mutability(&shown, t.attr, Some(&Value::Bool(true)), None)?;
    let multi = t.attr.is_some_and(|a| a.multi_valued);
    match value {
        // Entra's legacy member removal: `"path": "members", "value": [{"value": "u1"}]`.
        Some(v) if multi && !v.is_null() => {
            let gone: HashSet<String> = match v {
                Value::Array(items) => items.iter().map(|i| identity(&t.name, i)).collect(),
                v => std::iter::once(identity(&t.name, v)).collect(),
            };
            if let Some(map) = container(work, &t, false)?
                && let Some(k) = key_ci(map, &t.name)
                && let Some(Value::Array(items)) = map.get_mut(&k)
            {
                items.retain(|i| !gone.contains(&identity(&t.name, i)) && !gone.contains(&loose_identity(&t.name, i)));
            }
            drop_empty(work, &t)
        }
        _ => {
            if t.attr.is_some_and(|a| a.required) {
                return Err(bad(
                    ScimType::InvalidValue,
                    format!("{shown} is required; it cannot be removed"),
                ));
            }
            if let Some(map) = container(work, &t, false)?
                && let Some(k) = key_ci(map, &t.name)
            {
                map.remove(&k);
            }
            Ok(())
        }
    }
}

/// A value's identity by `value` alone: a removal naming `{"value": "x"}` without its `type`
/// removes the value whatever its type.
fn loose_identity(attr_name: &str, v: &Value) -> String {
    match get_ci(v, "value") {
        Some(val) if !attr_name.eq_ignore_ascii_case("members") => format!("{val}\u{0}"),
        _ => identity(attr_name, v),
    }
}

/// An emptied multi-valued attribute is unassigned (RFC 7643 §2.4).
fn drop_empty(work: &mut Value, t: &Target<'_>) -> Result<(), ScimError> {
    if let Some(map) = container(work, t, false)?
        && let Some(k) = key_ci(map, &t.name)
        && map.get(&k).is_some_and(|v| v.as_array().is_some_and(Vec::is_empty))
    {
        map.remove(&k);
    }
    Ok(())
}
