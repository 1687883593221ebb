//! Sources (`/ui/sources`): each source with its connector, state and schedule; a source's
//! page with a settings form generated from its connector's own settings JSON Schema (as
//! `GET /api/v1/plugins` gives it), its secrets write-only, test connection (the connector's
//! own reason, as `POST /api/v1/sources/{id}/check`), and the schedule's next fire times.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::Path;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Map, Value};

use roster_directory::{SecretConfig, SourceConfig};
use roster_runtime::secrets::Secret;

use super::format::{When, duration_ms, when, when_rfc3339};
use super::{Chrome, Nav, Ui, UiError, UiResult};

/// Whether a request came from htmx (which then gets a fragment, not the whole page).
pub fn is_htmx(headers: &HeaderMap) -> bool {
    headers.get("hx-request").is_some_and(|v| v == "true")
}

/// A source's row in the list.
pub struct SourceLine {
    id: String,
    plugin: String,
    enabled: bool,
    origin: String,
    schedule: String,
    next: Option<When>,
    transforms: String,
}

/// The sources page.
#[derive(Template, WebTemplate)]
#[template(path = "sources.html")]
pub struct SourcesPage {
    chrome: Chrome,
    sources: Vec<SourceLine>,
}

/// The schedule in words and its next fire times (none when not scheduled).
fn schedule_of(s: &SourceConfig, count: usize) -> (String, Vec<When>) {
    match s.schedule() {
        Ok(sch) if s.scheduled() && s.enabled => (
            sch.describe(),
            sch.upcoming(chrono::Utc::now(), count)
                .iter()
                .filter_map(|t| when_rfc3339(&t.to_rfc3339()))
                .collect(),
        ),
        Ok(_) if s.push.is_some() => ("when it pushes".into(), Vec::new()),
        Ok(sch) => (format!("not scheduled ({})", sch.describe()), Vec::new()),
        Err(e) => (format!("invalid schedule: {e}"), Vec::new()),
    }
}

/// `GET /ui/sources`.
pub async fn list(ui: Ui) -> UiResult<SourcesPage> {
    let sources = ui
        .service()
        .config()
        .sources
        .iter()
        .map(|s| {
            let (schedule, next) = schedule_of(s, 1);
            SourceLine {
                id: s.id.clone(),
                plugin: s.feed_label(),
                enabled: s.enabled,
                origin: s.origin.as_str().into(),
                schedule,
                next: next.into_iter().next(),
                transforms: s
                    .transforms
                    .iter()
                    .map(|t| t.plugin.as_str())
                    .collect::<Vec<_>>()
                    .join(" → "),
            }
        })
        .collect();
    Ok(SourcesPage {
        chrome: ui.chrome("Sources", Nav::Sources),
        sources,
    })
}

/// How a setting is entered, from its JSON Schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A line of text.
    Text,
    /// A whole number.
    Integer,
    /// A number.
    Number,
    /// A checkbox.
    Boolean,
    /// One of these values.
    Choice(Vec<String>),
    /// A list of strings, one per line.
    Lines,
    /// Anything else, as JSON.
    Json,
}

/// One setting of a connector, as its form shows it.
pub struct Field {
    name: String,
    kind: Kind,
    description: String,
    required: bool,
    /// The current value as the input shows it.
    value: String,
    /// The default, shown as the placeholder.
    placeholder: String,
    min: Option<String>,
    max: Option<String>,
}

impl Field {
    /// The `<input type>` of a one-line field.
    pub fn input_type(&self) -> &'static str {
        match self.kind {
            Kind::Integer | Kind::Number => "number",
            _ => "text",
        }
    }

    /// Whether the field is a checkbox.
    pub fn is_checkbox(&self) -> bool {
        self.kind == Kind::Boolean
    }

    /// Whether the field is several lines (lists, JSON).
    pub fn is_multiline(&self) -> bool {
        matches!(self.kind, Kind::Lines | Kind::Json)
    }

    /// The choices of a select, when it is one.
    pub fn choices(&self) -> Option<&[String]> {
        match &self.kind {
            Kind::Choice(c) => Some(c),
            _ => None,
        }
    }

    /// Whether a checkbox is ticked.
    pub fn checked(&self) -> bool {
        self.value == "true"
    }

    /// What to type, for fields whose form is not obvious.
    pub fn hint(&self) -> &'static str {
        match self.kind {
            Kind::Lines => "one per line",
            Kind::Json => "JSON",
            Kind::Integer => "a whole number",
            _ => "",
        }
    }
}

/// The JSON type of a schema node (the first non-null one of a list).
fn json_type(node: &Value) -> Option<&str> {
    match node.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => None,
    }
}

/// Resolves a local `$ref` (`#/$defs/X`, `#/definitions/X`) once.
fn deref<'a>(schema: &'a Value, node: &'a Value) -> &'a Value {
    let Some(r) = node.get("$ref").and_then(Value::as_str) else {
        return node;
    };
    let path = r.trim_start_matches('#').split('/').filter(|p| !p.is_empty());
    let mut at = schema;
    for p in path {
        match at.get(p) {
            Some(next) => at = next,
            None => return node,
        }
    }
    at
}

fn kind_of(schema: &Value, node: &Value) -> Kind {
    let node = deref(schema, node);
    if let Some(e) = node.get("enum").and_then(Value::as_array)
        && e.iter().all(Value::is_string)
    {
        return Kind::Choice(e.iter().filter_map(Value::as_str).map(str::to_string).collect());
    }
    match json_type(node) {
        Some("string") => Kind::Text,
        Some("integer") => Kind::Integer,
        Some("number") => Kind::Number,
        Some("boolean") => Kind::Boolean,
        Some("array") if node.get("items").and_then(json_type) == Some("string") => Kind::Lines,
        _ => Kind::Json,
    }
}

/// A value as an input of `kind` shows it.
fn shown(kind: &Kind, v: &Value) -> String {
    match (kind, v) {
        (_, Value::Null) => String::new(),
        (_, Value::String(s)) => s.clone(),
        (Kind::Lines, Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).unwrap_or_else(|| i.to_string()))
            .collect::<Vec<_>>()
            .join("\n"),
        (Kind::Json, v) => serde_json::to_string_pretty(v).unwrap_or_default(),
        (_, v) => v.to_string(),
    }
}

/// The fields of a connector's settings schema, filled with `settings`.
pub fn fields(schema: &Value, settings: &Value) -> Vec<Field> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, node)| {
            let kind = kind_of(schema, node);
            let bound = |k: &str| node.get(k).filter(|v| v.is_number()).map(Value::to_string);
            Field {
                name: name.clone(),
                description: node
                    .get("description")
                    .or_else(|| deref(schema, node).get("description"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                required: required.contains(&name.as_str()),
                // A checkbox cannot show "the default": it shows the default's value.
                value: settings
                    .get(name)
                    .or(node.get("default").filter(|_| kind == Kind::Boolean))
                    .map(|v| shown(&kind, v))
                    .unwrap_or_default(),
                placeholder: node.get("default").map(|d| shown(&kind, d)).unwrap_or_default(),
                min: bound("minimum"),
                max: bound("maximum"),
                kind,
            }
        })
        .collect()
}

/// The settings a submitted form gives: each field of the schema parsed by its kind; a field
/// left empty is left out (the connector's default applies). Settings the schema does not list
/// are kept as they were.
pub fn settings_from_form(fields: &[Field], form: &[(String, String)], before: &Value) -> Result<Value, String> {
    let mut out: Map<String, Value> = before.as_object().cloned().unwrap_or_default();
    let given = |name: &str| {
        form.iter()
            .find(|(k, _)| k.strip_prefix("s.") == Some(name))
            .map(|(_, v)| v.as_str())
    };
    for f in fields {
        out.remove(&f.name);
        let raw = given(&f.name).unwrap_or("").trim();
        if f.kind == Kind::Boolean {
            out.insert(f.name.clone(), Value::Bool(given(&f.name).is_some()));
            continue;
        }
        if raw.is_empty() {
            if f.required {
                return Err(format!("setting '{}' is required: {}", f.name, f.description));
            }
            continue;
        }
        let bad = |what: &str| format!("setting '{}' must be {what}, not {raw:?}", f.name);
        let v = match &f.kind {
            Kind::Text => Value::String(raw.to_string()),
            Kind::Integer => Value::from(raw.parse::<i64>().map_err(|_| bad("a whole number"))?),
            Kind::Number => serde_json::Number::from_f64(raw.parse::<f64>().map_err(|_| bad("a number"))?)
                .map(Value::Number)
                .ok_or_else(|| bad("a finite number"))?,
            Kind::Choice(c) if c.iter().any(|x| x == raw) => Value::String(raw.to_string()),
            Kind::Choice(c) => return Err(bad(&format!("one of {}", c.join(", ")))),
            Kind::Lines => Value::Array(
                raw.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(|l| Value::String(l.to_string()))
                    .collect(),
            ),
            Kind::Json => serde_json::from_str(raw).map_err(|e| {
                format!(
                    "setting '{}' is not JSON (line {}, column {}): {e}",
                    f.name,
                    e.line(),
                    e.column()
                )
            })?,
            Kind::Boolean => unreachable!("handled above"),
        };
        out.insert(f.name.clone(), v);
    }
    Ok(Value::Object(out))
}

/// A secret's row: its name and where it may be used; never its value.
pub struct SecretLine {
    name: String,
    binding: String,
    unusable: Option<String>,
}

/// What a connection test said.
pub struct CheckResult {
    ok: bool,
    error: Option<String>,
    took: String,
}

/// A source's page.
#[derive(Template, WebTemplate)]
#[template(path = "source.html")]
pub struct SourcePage {
    chrome: Chrome,
    id: String,
    plugin: String,
    origin: String,
    enabled: bool,
    fields: Vec<Field>,
    schema_missing: Option<String>,
    secrets: Vec<SecretLine>,
    schedule: String,
    next: Vec<When>,
    last_fire: Option<When>,
    last_success: Option<When>,
    transforms: Vec<String>,
    can_edit: bool,
    can_check: bool,
    why_read_only: String,
    check: Option<CheckResult>,
    saved: bool,
    error: Option<String>,
}

/// The test-connection answer, as htmx swaps it in.
#[derive(Template, WebTemplate)]
#[template(path = "source.html", block = "check")]
pub struct CheckFragment {
    check: Option<CheckResult>,
}

fn find(ui: &Ui, id: &str) -> UiResult<SourceConfig> {
    ui.service()
        .config()
        .sources
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| UiError::not_found(format!("no source named '{id}'; see the list (/ui/sources)")))
}

/// The settings schema of the connector `plugin`, or why there is none.
fn schema_of(ui: &Ui, plugin: &str) -> Result<Value, String> {
    let p = ui
        .service()
        .runtime
        .plugins()
        .into_iter()
        .find(|p| p.label.name == plugin)
        .ok_or_else(|| format!("the connector '{plugin}' is not loaded; see Plugins (/ui/plugins)"))?;
    serde_json::from_str(&p.settings_schema).map_err(|e| {
        format!("the connector '{plugin}' gives no usable settings schema ({e}); edit the source through the API")
    })
}

async fn render(
    ui: &Ui,
    s: &SourceConfig,
    check: Option<CheckResult>,
    outcome: Result<bool, String>,
) -> UiResult<SourcePage> {
    let plugin = s.plugin.clone().unwrap_or_default();
    let (fields, schema_missing) = match s.plugin.as_deref().map(|p| schema_of(ui, p)) {
        Some(Ok(schema)) => (fields(&schema, &s.settings), None),
        Some(Err(e)) => (Vec::new(), Some(e)),
        None => (
            Vec::new(),
            Some("this source pushes to Roster (SCIM); it has no connector settings".into()),
        ),
    };
    let id = s.id.clone();
    let (sealed, st) = ui
        .service()
        .store
        .blocking(move |store| {
            let sealed = store.source_secrets::<Secret>(&id).unwrap_or_default();
            store.schedule_state(&id).map(|st| (sealed, st))
        })
        .await?;
    let secrets = sealed
        .iter()
        .map(|x| SecretLine {
            name: x.name.clone(),
            binding: serde_json::to_string(&x.spec).unwrap_or_default(),
            unusable: x.unusable().map(str::to_string),
        })
        .collect();
    let (schedule, next) = schedule_of(s, 5);
    let path = "/api/v1/sources/{id}";
    let is_file = s.origin.as_str() == "file";
    let may_edit = ui.state.may(ui.caller.role, Method::PUT, path);
    let why_read_only = if is_file {
        "This source is defined in roster.toml; change it there.".to_string()
    } else if !may_edit {
        format!(
            "Changing a source needs the admin role; you have the {} role.",
            ui.caller.role.as_str()
        )
    } else {
        String::new()
    };
    let (saved, error) = match outcome {
        Ok(saved) => (saved, None),
        Err(e) => (false, Some(e)),
    };
    Ok(SourcePage {
        chrome: ui.chrome(format!("Source {}", s.id), Nav::Sources),
        id: s.id.clone(),
        plugin: if plugin.is_empty() { s.feed_label() } else { plugin },
        origin: s.origin.as_str().into(),
        enabled: s.enabled,
        fields,
        schema_missing,
        secrets,
        schedule,
        next,
        last_fire: st.last_fire_at.and_then(when),
        last_success: st.last_success_at.and_then(when),
        transforms: s.transforms.iter().map(|t| t.plugin.clone()).collect(),
        can_edit: may_edit && !is_file,
        can_check: ui.state.may(ui.caller.role, Method::POST, "/api/v1/sources/{id}/check"),
        why_read_only,
        check,
        saved,
        error,
    })
}

/// `GET /ui/sources/{id}`.
pub async fn page(
    ui: Ui,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> UiResult<SourcePage> {
    let s = find(&ui, &id)?;
    render(&ui, &s, None, Ok(q.contains_key("saved"))).await
}

/// `POST /ui/sources/{id}`: saves the settings (and any secret given) as
/// `PUT /api/v1/sources/{id}` does; a refusal is shown on the form, which keeps what was typed.
pub async fn save(
    ui: Ui,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<Vec<(String, String)>>,
) -> UiResult<Response> {
    ui.require(Method::PUT, "/api/v1/sources/{id}")?;
    let s = find(&ui, &id)?;
    let plugin = s
        .plugin
        .clone()
        .ok_or_else(|| UiError::bad_request("a push source has no connector settings to save"))?;
    let schema = schema_of(&ui, &plugin).map_err(UiError::bad_request)?;
    let mut draft = s.clone();
    let outcome = async {
        let f = fields(&schema, &s.settings);
        draft.settings = settings_from_form(&f, &form, &s.settings)?;
        draft.secrets = secrets_from_form(&ui, &id, &form).await?;
        ui.service()
            .put_source(draft.clone(), crate::service::Put::Replace)
            .await
            .map_err(|e| e.to_string())?;
        ui.caller
            .audit(ui.service(), "source.replace", &id, None)
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/ui/sources/{id}?saved=1")).into_response()),
        Err(e) => {
            // Show what was typed, with the refusal; secrets are never echoed back.
            let mut page = render(&ui, &draft, None, Err(e)).await?;
            page.saved = false;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

/// The secrets a form gives (`secret.NAME` fields not left empty), each bound as the stored
/// one is. Empty: keep every stored secret. Roster cannot read a sealed value back, so a
/// replacement must give every secret of the source at once.
async fn secrets_from_form(ui: &Ui, id: &str, form: &[(String, String)]) -> Result<Vec<SecretConfig>, String> {
    let given: Vec<(&str, &str)> = form
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("secret.")?, v.as_str())))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    if given.is_empty() {
        return Ok(Vec::new());
    }
    let id = id.to_string();
    let sealed = ui
        .service()
        .store
        .blocking(move |store| store.source_secrets::<Secret>(&id))
        .await
        .map_err(|e| e.to_string())?;
    let missing: Vec<&str> = sealed
        .iter()
        .map(|x| x.name.as_str())
        .filter(|n| !given.iter().any(|(g, _)| g == n))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "give every secret of the source together (Roster keeps them sealed and cannot re-seal the others): also {}",
            missing.join(", ")
        ));
    }
    given
        .iter()
        .map(|(name, value)| {
            let stored = sealed
                .iter()
                .find(|x| x.name == *name)
                .ok_or_else(|| format!("the source has no secret named '{name}'"))?;
            let input = crate::api::sources::SecretInput {
                name: (*name).to_string(),
                value: (*value).to_string(),
                binding: stored.spec.clone(),
            };
            serde_json::to_value(&input)
                .and_then(serde_json::from_value::<SecretConfig>)
                .map_err(|e| format!("secret '{name}': {e}"))
        })
        .collect()
}

/// `POST /ui/sources/{id}/check`: the connector checks credentials, permissions and scope, as
/// `POST /api/v1/sources/{id}/check`; htmx gets the answer alone.
pub async fn check(ui: Ui, headers: HeaderMap, Path(id): Path<String>) -> UiResult<Response> {
    ui.require(Method::POST, "/api/v1/sources/{id}/check")?;
    let s = find(&ui, &id)?;
    let mut reports = ui
        .service()
        .runner()
        .check(std::slice::from_ref(&id))
        .await
        .map_err(crate::api::ApiError::from)?;
    let r = reports.remove(0);
    let result = CheckResult {
        ok: r.ok,
        error: r.error,
        took: duration_ms(r.ms),
    };
    if is_htmx(&headers) {
        return Ok(CheckFragment { check: Some(result) }.into_response());
    }
    Ok(render(&ui, &s, Some(result), Ok(false)).await?.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        serde_json::json!({
            "type": "object",
            "required": ["tenant"],
            "properties": {
                "tenant": {"type": "string", "description": "The tenant"},
                "page_size": {"type": "integer", "default": 999, "minimum": 1, "maximum": 999},
                "guests": {"type": "boolean", "default": true},
                "attributes": {"type": "array", "items": {"type": "string"}, "default": []},
                "mode": {"$ref": "#/$defs/Mode"}
            },
            "$defs": {"Mode": {"type": "string", "enum": ["full", "delta"]}}
        })
    }

    #[test]
    fn a_schema_gives_one_typed_field_per_setting() {
        let f = fields(&schema(), &serde_json::json!({"tenant": "t", "attributes": ["a", "b"]}));
        let by = |n: &str| f.iter().find(|x| x.name == n).unwrap();
        assert_eq!(by("tenant").value, "t");
        assert!(by("tenant").required);
        assert_eq!(by("page_size").input_type(), "number");
        assert_eq!(by("page_size").placeholder, "999");
        assert_eq!(by("page_size").max.as_deref(), Some("999"));
        // A checkbox shows the default when the setting is not given.
        assert!(by("guests").checked());
        assert_eq!(by("attributes").value, "a\nb");
        assert_eq!(by("mode").choices().unwrap(), ["full", "delta"]);
    }

    #[test]
    fn a_form_gives_typed_settings_and_names_a_wrong_one() {
        let before = serde_json::json!({"tenant": "t", "unlisted": 1});
        let f = fields(&schema(), &before);
        let form = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let out = settings_from_form(
            &f,
            &form(&[
                ("s.tenant", "u"),
                ("s.page_size", "50"),
                ("s.attributes", "x\n\n y "),
                ("s.mode", ""),
            ]),
            &before,
        )
        .unwrap();
        assert_eq!(
            out,
            serde_json::json!({"tenant": "u", "page_size": 50, "guests": false, "attributes": ["x", "y"], "unlisted": 1})
        );
        let e = settings_from_form(&f, &form(&[("s.tenant", "u"), ("s.page_size", "many")]), &before).unwrap_err();
        assert!(e.contains("'page_size' must be a whole number"), "{e}");
        let e = settings_from_form(&f, &form(&[("s.tenant", " ")]), &before).unwrap_err();
        assert!(e.contains("'tenant' is required"), "{e}");
        let e = settings_from_form(&f, &form(&[("s.tenant", "u"), ("s.mode", "sideways")]), &before).unwrap_err();
        assert!(e.contains("one of full, delta"), "{e}");
    }
}
