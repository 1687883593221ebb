//! The SCIM operations: discovery documents, and Users and Groups (create, read, list and
//! search, replace, patch, delete).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use roster_scim::filter::{CompareOp, Filter};
use roster_scim::list::{ListResponse, Paging};
use roster_scim::patch::{Op, PatchOp};
use roster_scim::path::AttrPath;
use roster_scim::project::Projection;
use roster_scim::resource::{group_record, user_record};
use roster_scim::schema::{self, GROUP_URN, ResourceSchema, USER_URN};
use roster_scim::sort::{SortOrder, sort};
use roster_scim::{ScimError, ScimType};
use roster_store::{
    MemberOp, MemberRef, Members, MirrorGroup, MirrorUser, Mirrored, ScimKind, ScimLookup, ScimResource, ScimWrite,
    ScimWriteError, Store,
};
use serde_json::{Value, json};

use super::{MAX_RESULTS, Pushing, ScimState, error_response, scim_json, service_provider_config};

type Result<T> = std::result::Result<T, ScimError>;

/// A handler's answer: a response, or a SCIM error.
pub(super) struct Reply(std::result::Result<Response, ScimError>);

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self.0 {
            Ok(r) => r,
            Err(e) => error_response(&e),
        }
    }
}

impl From<Result<Response>> for Reply {
    fn from(r: Result<Response>) -> Self {
        Reply(r)
    }
}

/// A failure of Roster's own (the store): logged with its cause, answered without it — a
/// store's words (paths, SQL) are no business of the identity provider's.
fn internal(e: impl std::fmt::Display) -> ScimError {
    tracing::error!("SCIM: the request failed: {e}");
    ScimError::status(
        500,
        "Roster could not complete the request; the server log has the details. Retry later",
    )
}

/// A store refusal as the SCIM error it is.
fn write_error(e: ScimWriteError) -> ScimError {
    match e {
        ScimWriteError::Store(e) => internal(e),
        e @ ScimWriteError::NotFound { .. } => ScimError::status(404, e.to_string()),
        e @ ScimWriteError::Taken { .. } => ScimError {
            status: 409,
            scim_type: Some(ScimType::Uniqueness),
            detail: e.to_string(),
        },
        e @ ScimWriteError::VersionMismatch { .. } => ScimError {
            status: 412,
            scim_type: Some(ScimType::InvalidVers),
            detail: e.to_string(),
        },
        e @ (ScimWriteError::UnknownMember { .. } | ScimWriteError::OwnMember { .. }) => {
            ScimError::bad(ScimType::InvalidValue, e.to_string())
        }
    }
}

fn kind_schema(kind: ScimKind) -> &'static ResourceSchema {
    match kind {
        ScimKind::User => ResourceSchema::user(),
        ScimKind::Group => ResourceSchema::group(),
    }
}

fn endpoint(kind: ScimKind) -> &'static str {
    match kind {
        ScimKind::User => "Users",
        ScimKind::Group => "Groups",
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// The resource as served: its body, id, members and meta.
fn render(r: &ScimResource, base: &str) -> Value {
    let mut v = r.body.clone();
    if !v.is_object() {
        v = json!({});
    }
    v["id"] = json!(r.id);
    if r.kind == ScimKind::Group && !r.members.is_empty() {
        v["members"] = Value::Array(
            r.members
                .iter()
                .map(|m| {
                    let mut member = json!({
                        "value": m.value,
                        "$ref": format!("{base}/{}/{}", endpoint(m.kind), m.value),
                        "type": m.kind.as_str(),
                    });
                    if let Some(d) = &m.display {
                        member["display"] = json!(d);
                    }
                    member
                })
                .collect(),
        );
    }
    v["meta"] = json!({
        "resourceType": r.kind.as_str(),
        "created": rfc3339(r.created_at),
        "lastModified": rfc3339(r.modified_at),
        "location": format!("{base}/{}/{}", endpoint(r.kind), r.id),
        "version": etag(r.version),
    });
    v
}

/// The resource as a PATCH sees it: rendered, without `meta` (read-only, not patchable).
fn patchable(r: &ScimResource, base: &str) -> Value {
    let mut v = render(r, base);
    if let Some(o) = v.as_object_mut() {
        o.remove("meta");
    }
    v
}

/// The query parameters, names lower-cased (SCIM's are case-insensitive; Entra adds
/// `aadOptscim062020` with no value, which is read and ignored).
fn query(raw: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
        .collect()
}

fn projection(q: &HashMap<String, String>) -> Result<Projection> {
    Projection::from_query(
        q.get("attributes").map(String::as_str),
        q.get("excludedattributes").map(String::as_str),
    )
}

/// Whether an answer needs a group's members: not when the client excludes them or asks only
/// for other attributes (Entra and Okta list groups with `excludedAttributes=members`).
fn wants_members(q: &HashMap<String, String>) -> Members {
    let names = |key: &str| -> Option<Vec<String>> {
        q.get(key).map(|v| {
            v.split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .map(|s| s.rsplit(':').next().unwrap_or("").to_string())
                .collect()
        })
    };
    let mentions = |list: &[String]| list.iter().any(|n| n == "members" || n.starts_with("members."));
    if names("excludedattributes").is_some_and(|l| mentions(&l)) {
        return Members::Omit;
    }
    if names("attributes").is_some_and(|l| !l.is_empty() && !mentions(&l)) {
        return Members::Omit;
    }
    Members::Include
}

/// The body as JSON, or a 400 that says where it does not parse.
fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<Value> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if !(mime == super::MEDIA_TYPE || mime == "application/json" || mime.is_empty()) {
            return Err(ScimError::status(
                415,
                format!("the body is {mime}; send application/scim+json (or application/json)"),
            ));
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ScimError::bad(
            ScimType::InvalidSyntax,
            "the body is empty; send the resource as a JSON object",
        ));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ScimError::bad(
            ScimType::InvalidSyntax,
            format!("the body is not valid JSON ({e}); send the resource as a JSON object"),
        )
    })?;
    if !v.is_object() {
        return Err(ScimError::bad(
            ScimType::InvalidSyntax,
            "the body is not a JSON object; send the resource as a JSON object",
        ));
    }
    Ok(v)
}

/// The versions an `If-Match` / `If-None-Match` header names; `Some(None)` for `*`.
fn versions(headers: &HeaderMap, name: header::HeaderName) -> Option<Option<Vec<String>>> {
    let text = headers.get(name)?.to_str().ok()?.trim().to_string();
    if text == "*" {
        return Some(None);
    }
    Some(Some(
        text.split(',')
            .map(|t| t.trim().trim_start_matches("W/").trim_matches('"').to_string())
            .collect(),
    ))
}

/// What `If-Match` asks of a write.
enum Precondition {
    /// No `If-Match`, or `*`.
    None,
    /// This version.
    Version(i64),
    /// One of these versions (the current one is read to choose).
    AnyOf(Vec<i64>),
}

/// Reads `If-Match`; a 412 when it names no version Roster could have written.
fn if_match(headers: &HeaderMap) -> Result<Precondition> {
    let Some(Some(list)) = versions(headers, header::IF_MATCH) else {
        return Ok(Precondition::None);
    };
    let wanted: Vec<i64> = list.iter().filter_map(|v| v.parse().ok()).collect();
    match wanted.as_slice() {
        [] => Err(ScimError {
            status: 412,
            scim_type: Some(ScimType::InvalidVers),
            detail: format!(
                "If-Match names no version of this resource ({}); read it again and send its ETag",
                list.join(", ")
            ),
        }),
        [v] => Ok(Precondition::Version(*v)),
        _ => Ok(Precondition::AnyOf(wanted)),
    }
}

/// The version a write must find (the store refuses any other with a 412).
async fn expected_version(
    state: &Arc<ScimState>,
    who: &Pushing,
    kind: ScimKind,
    id: &str,
    headers: &HeaderMap,
) -> Result<Option<i64>> {
    match if_match(headers)? {
        Precondition::None => Ok(None),
        Precondition::Version(v) => Ok(Some(v)),
        Precondition::AnyOf(list) => {
            let (source, id) = (who.source.clone(), id.to_string());
            let current = store(state, move |s| s.scim_get(&source, kind, &id, Members::Omit))
                .await
                .map_err(internal)?
                .map(|r| r.version);
            match current {
                Some(c) if list.contains(&c) => Ok(Some(c)),
                // Not one of them: any of the list makes the store refuse it.
                Some(_) => Ok(list.first().copied()),
                None => Ok(None),
            }
        }
    }
}

fn with_etag(mut r: Response, version: i64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&etag(version)) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// Keys compared as SCIM compares attribute names.
fn remove_ci(o: &mut serde_json::Map<String, Value>, name: &str) -> Option<Value> {
    let key = o.keys().find(|k| k.eq_ignore_ascii_case(name))?.clone();
    o.remove(&key)
}

fn get_ci<'v>(v: &'v Value, name: &str) -> Option<&'v Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// What a user resource becomes: its stored body, its name and its mirror row.
fn user_write(id: &str, mut body: Value) -> Result<ScimWrite> {
    let o = body
        .as_object_mut()
        .ok_or_else(|| ScimError::bad(ScimType::InvalidSyntax, "the user is not a JSON object"))?;
    for readonly in ["id", "meta", "password", "groups"] {
        remove_ci(o, readonly);
    }
    o.insert("id".into(), json!(id));
    if !o.keys().any(|k| k.eq_ignore_ascii_case("schemas")) {
        o.insert("schemas".into(), json!([USER_URN]));
    }
    match get_ci(&body, "userName") {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        Some(other) => {
            return Err(ScimError::bad(
                ScimType::InvalidValue,
                format!("userName is {other}; it must be a non-empty string"),
            ));
        }
        None => {
            return Err(ScimError::bad(
                ScimType::InvalidValue,
                "userName is required: every user needs one, unique in this source",
            ));
        }
    }
    let rec = user_record(&body)?;
    Ok(ScimWrite {
        external_id: get_ci(&body, "externalId").and_then(Value::as_str).map(str::to_string),
        name: rec.user_name.clone(),
        mirror: Mirrored::User(MirrorUser {
            ext_id: id.to_string(),
            username: rec.user_name,
            email: rec.email,
            display_name: rec.display_name,
            active: rec.active,
            attributes: rec.attributes,
            removed: None,
        }),
        body,
        members: Vec::new(),
    })
}

/// What a group resource becomes: its stored body (without members), its name, its mirror
/// row and its members.
fn group_write(id: &str, mut body: Value) -> Result<ScimWrite> {
    let o = body
        .as_object_mut()
        .ok_or_else(|| ScimError::bad(ScimType::InvalidSyntax, "the group is not a JSON object"))?;
    for readonly in ["id", "meta"] {
        remove_ci(o, readonly);
    }
    o.insert("id".into(), json!(id));
    if !o.keys().any(|k| k.eq_ignore_ascii_case("schemas")) {
        o.insert("schemas".into(), json!([GROUP_URN]));
    }
    match get_ci(&body, "displayName") {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        _ => {
            return Err(ScimError::bad(
                ScimType::InvalidValue,
                "displayName is required: every group needs one, unique in this source",
            ));
        }
    }
    let rec = group_record(&body)?;
    let displays: HashMap<String, String> = get_ci(&body, "members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let value = get_ci(m, "value")?.as_str()?;
            let display = get_ci(m, "display")?.as_str()?;
            Some((value.to_string(), display.to_string()))
        })
        .collect();
    if let Some(o) = body.as_object_mut() {
        remove_ci(o, "members");
    }
    let external_id = get_ci(&body, "externalId").and_then(Value::as_str).map(str::to_string);
    let mut attributes = vec![("displayName".to_string(), rec.display_name.clone())];
    if let Some(e) = &external_id {
        attributes.push(("externalId".into(), e.clone()));
    }
    Ok(ScimWrite {
        external_id,
        name: rec.display_name.clone(),
        mirror: Mirrored::Group(MirrorGroup {
            ext_id: id.to_string(),
            name: rec.display_name,
            description: None,
            attributes,
            removed: None,
        }),
        body,
        members: rec
            .members
            .into_iter()
            .map(|m| MemberRef {
                display: displays.get(&m.value).cloned(),
                value: m.value,
            })
            .collect(),
    })
}

fn write_for(kind: ScimKind, id: &str, body: Value) -> Result<ScimWrite> {
    match kind {
        ScimKind::User => user_write(id, body),
        ScimKind::Group => group_write(id, body),
    }
}

/// Runs a store call off the async workers.
async fn store<T: Send + 'static>(state: &Arc<ScimState>, f: impl FnOnce(&Store) -> T + Send + 'static) -> T {
    state.service.store.blocking(f).await
}

/// Tells the service of a durable write.
fn pushed(state: &Arc<ScimState>, who: &Pushing) {
    tracing::debug!(source = who.source, token = who.token, ip = who.ip, "SCIM write");
    state.service.pushed(&who.source);
}

// ---- discovery ----

pub(super) async fn root(Extension(who): Extension<Pushing>) -> Reply {
    Reply(Ok(scim_json(
        StatusCode::OK,
        &service_provider_config().to_json(&who.base_url),
    )))
}

pub(super) async fn provider_config(Extension(who): Extension<Pushing>) -> Reply {
    root(Extension(who)).await
}

pub(super) async fn resource_types(Extension(who): Extension<Pushing>) -> Reply {
    Reply(Ok(scim_json(
        StatusCode::OK,
        &schema::resource_types_document(&who.base_url),
    )))
}

pub(super) async fn resource_type(Extension(who): Extension<Pushing>, Path((_, id)): Path<(String, String)>) -> Reply {
    Reply(
        schema::resource_type_document(&who.base_url, &id)
            .map(|d| scim_json(StatusCode::OK, &d))
            .ok_or_else(|| ScimError::status(404, format!("no resource type '{id}'; there are User and Group"))),
    )
}

pub(super) async fn schemas() -> Reply {
    Reply(Ok(scim_json(StatusCode::OK, &schema::schemas_document())))
}

pub(super) async fn schema(Path((_, id)): Path<(String, String)>) -> Reply {
    Reply(
        schema::schema_document(&id)
            .map(|d| scim_json(StatusCode::OK, &d))
            .ok_or_else(|| ScimError::status(404, format!("no schema '{id}'; see /Schemas"))),
    )
}

pub(super) async fn no_such_endpoint() -> Response {
    super::not_found()
}

// ---- lists ----

/// The parameters of a list or a search.
#[derive(Debug, Default)]
struct ListQuery(HashMap<String, String>);

impl ListQuery {
    /// From a `.search` body: its members as if they were query parameters.
    fn from_search(body: &Value) -> Result<ListQuery> {
        let mut q = HashMap::new();
        let o = body
            .as_object()
            .ok_or_else(|| ScimError::bad(ScimType::InvalidSyntax, "the search request is not a JSON object"))?;
        for (k, v) in o {
            let key = k.to_ascii_lowercase();
            if key == "schemas" {
                continue;
            }
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string).unwrap_or_else(|| i.to_string()))
                    .collect::<Vec<_>>()
                    .join(","),
                Value::Null => continue,
                other => {
                    return Err(ScimError::bad(
                        ScimType::InvalidValue,
                        format!("{k} is {other}; give a string, a number or a list of strings"),
                    ));
                }
            };
            q.insert(key, text);
        }
        Ok(ListQuery(q))
    }
}

/// Where a list can be answered from an index: `attr eq "value"` on `id`, `externalId` or the
/// unique name.
fn indexed(filter: &Filter, kind: ScimKind) -> Option<ScimLookup> {
    let (path, value) = filter.equality()?;
    let value = value.as_str()?.to_string();
    let core = match kind {
        ScimKind::User => USER_URN,
        ScimKind::Group => GROUP_URN,
    };
    if path.sub.is_some() || path.urn.as_deref().is_some_and(|u| !u.eq_ignore_ascii_case(core)) {
        return None;
    }
    let name = path.name.to_ascii_lowercase();
    match (name.as_str(), kind) {
        ("id", _) => Some(ScimLookup::Id(value)),
        ("externalid", _) => Some(ScimLookup::ExternalId(value)),
        ("username", ScimKind::User) | ("displayname", ScimKind::Group) => Some(ScimLookup::Name(value)),
        _ => None,
    }
}

/// The resources of `kinds` a list asks for, rendered, filtered and sorted.
async fn matching(
    state: &Arc<ScimState>,
    who: &Pushing,
    kinds: &[ScimKind],
    q: &HashMap<String, String>,
) -> Result<Vec<(ScimKind, Value)>> {
    let filter = match q.get("filter").map(|f| f.trim()).filter(|f| !f.is_empty()) {
        Some(text) => Some(Filter::parse(text)?),
        None => None,
    };
    let sort_by = match q.get("sortby").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        Some(s) => Some(
            AttrPath::parse(s).map_err(|e| ScimError::bad(ScimType::InvalidValue, format!("sortBy: {}", e.detail)))?,
        ),
        None => None,
    };
    let order = SortOrder::from_query(q.get("sortorder").map(String::as_str))?;
    let mut members = wants_members(q);
    if filter
        .as_ref()
        .is_some_and(|f| f.to_string().to_ascii_lowercase().contains("members"))
    {
        members = Members::Include;
    }
    let mut out = Vec::new();
    for &kind in kinds {
        let schema = kind_schema(kind);
        if let Some(f) = &filter {
            f.validate(schema)?;
        }
        let (source, lookup) = (who.source.clone(), filter.as_ref().and_then(|f| indexed(f, kind)));
        let (filter, sort_by, base) = (filter.clone(), sort_by.clone(), who.base_url.clone());
        // Read, rendered, filtered and sorted off the async workers: a scan of a large source
        // must not hold up the other requests (an indexed lookup, a push) of its worker.
        let found = store(state, move |s| {
            let rows = match &lookup {
                Some(l) => s.scim_find(&source, kind, l, members),
                None => s.scim_list(&source, kind, members),
            }?;
            let mut found: Vec<Value> = rows
                .iter()
                .map(|r| render(r, &base))
                .filter(|v| filter.as_ref().is_none_or(|f| f.matches(v, schema)))
                .collect();
            if let Some(by) = &sort_by {
                sort(&mut found, by, order, schema);
            }
            Ok::<_, roster_store::StoreError>(found)
        })
        .await
        .map_err(internal)?;
        out.extend(found.into_iter().map(|v| (kind, v)));
    }
    Ok(out)
}

async fn list(state: Arc<ScimState>, who: Pushing, kinds: &[ScimKind], q: HashMap<String, String>) -> Result<Response> {
    let projection = projection(&q)?;
    let paging = Paging::from_query(
        q.get("startindex").map(String::as_str),
        q.get("count").map(String::as_str),
        MAX_RESULTS,
    )?;
    let blank = |key: &str| q.get(key).is_none_or(|v| v.trim().is_empty());
    if let [kind] = kinds
        && blank("filter")
        && blank("sortby")
    {
        // No filter and the id order: the page and the count are read in SQL, not the source.
        SortOrder::from_query(q.get("sortorder").map(String::as_str))?;
        let (source, kind, members) = (who.source.clone(), *kind, wants_members(&q));
        let offset = paging.start_index.saturating_sub(1);
        let (total, rows) = store(&state, move |s| {
            s.scim_page(&source, kind, offset, paging.count, members)
        })
        .await
        .map_err(internal)?;
        let page = rows
            .iter()
            .map(|r| projection.apply(&render(r, &who.base_url), kind_schema(kind)))
            .collect();
        return Ok(scim_json(
            StatusCode::OK,
            &ListResponse::new(total, paging, page).to_json(),
        ));
    }
    let all = matching(&state, &who, kinds, &q).await?;
    let window = paging.window(all.len());
    let total = all.len() as u64;
    let page = all[window]
        .iter()
        .map(|(kind, v)| projection.apply(v, kind_schema(*kind)))
        .collect();
    Ok(scim_json(
        StatusCode::OK,
        &ListResponse::new(total, paging, page).to_json(),
    ))
}

async fn search(
    state: Arc<ScimState>,
    who: Pushing,
    kinds: &[ScimKind],
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let q = ListQuery::from_search(&json_body(&headers, &body)?)?;
    list(state, who, kinds, q.0).await
}

pub(super) async fn search_all(
    State(state): State<Arc<ScimState>>,
    Extension(who): Extension<Pushing>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    search(state, who, &[ScimKind::User, ScimKind::Group], headers, body)
        .await
        .into()
}

// ---- one resource ----

/// The answer carrying one resource: projected by the query, with its ETag.
fn one(r: &ScimResource, who: &Pushing, q: &HashMap<String, String>, status: StatusCode) -> Result<Response> {
    let body = projection(q)?.apply(&render(r, &who.base_url), kind_schema(r.kind));
    let mut resp = with_etag(scim_json(status, &body), r.version);
    if status == StatusCode::CREATED
        && let Ok(v) = HeaderValue::from_str(&format!("{}/{}/{}", who.base_url, endpoint(r.kind), r.id))
    {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

async fn get_one(
    state: Arc<ScimState>,
    who: Pushing,
    kind: ScimKind,
    id: String,
    headers: HeaderMap,
    q: HashMap<String, String>,
) -> Result<Response> {
    let source = who.source.clone();
    let members = wants_members(&q);
    let found = store(&state, move |s| s.scim_get(&source, kind, &id, members))
        .await
        .map_err(internal)?;
    let r = found.ok_or_else(|| ScimError::status(404, format!("no {} with this id in this source", kind.as_str())))?;
    if let Some(Some(list)) = versions(&headers, header::IF_NONE_MATCH)
        && list.iter().any(|v| *v == r.version.to_string())
    {
        return Ok(with_etag(StatusCode::NOT_MODIFIED.into_response(), r.version));
    }
    if let Some(None) = versions(&headers, header::IF_NONE_MATCH) {
        return Ok(with_etag(StatusCode::NOT_MODIFIED.into_response(), r.version));
    }
    one(&r, &who, &q, StatusCode::OK)
}

async fn create(
    state: Arc<ScimState>,
    who: Pushing,
    kind: ScimKind,
    headers: HeaderMap,
    q: HashMap<String, String>,
    body: Bytes,
) -> Result<Response> {
    let body = json_body(&headers, &body)?;
    let id = roster_store::new_scim_id().map_err(internal)?;
    let write = write_for(kind, &id, body)?;
    let source = who.source.clone();
    let created = store(&state, move |s| s.scim_create(&source, kind, &id, &write))
        .await
        .map_err(write_error)?;
    pushed(&state, &who);
    one(&created, &who, &q, StatusCode::CREATED)
}

/// Checks a body's `id`, if it gives one, against the path's.
fn same_id(body: &Value, id: &str) -> Result<()> {
    match get_ci(body, "id").and_then(Value::as_str) {
        Some(given) if given != id => Err(ScimError::bad(
            ScimType::Mutability,
            format!("the body's id '{given}' is not the path's '{id}'; id is assigned by Roster and cannot change"),
        )),
        _ => Ok(()),
    }
}

async fn replace(
    state: Arc<ScimState>,
    who: Pushing,
    kind: ScimKind,
    id: String,
    headers: HeaderMap,
    q: HashMap<String, String>,
    body: Bytes,
) -> Result<Response> {
    let body = json_body(&headers, &body)?;
    same_id(&body, &id)?;
    let expect = expected_version(&state, &who, kind, &id, &headers).await?;
    let write = write_for(kind, &id, body)?;
    let source = who.source.clone();
    let replaced = store(&state, move |s| {
        s.scim_replace(&source, kind, &id, expect, |_| Ok::<_, ScimError>(write))
    })
    .await
    .map_err(write_error)??;
    pushed(&state, &who);
    one(&replaced, &who, &q, StatusCode::OK)
}

/// The members a PATCH value names: `[{"value": "id", "display": …}, …]` or one such object.
fn member_refs(v: &Value) -> Option<Vec<MemberRef>> {
    member_items(v)?
        .into_iter()
        .map(|i| {
            Some(MemberRef {
                value: get_ci(i, "value")?.as_str()?.to_string(),
                display: get_ci(i, "display").and_then(Value::as_str).map(str::to_string),
            })
        })
        .collect()
}

fn member_items(v: &Value) -> Option<Vec<&Value>> {
    match v {
        Value::Array(a) => Some(a.iter().collect()),
        o @ Value::Object(_) => Some(vec![o]),
        _ => None,
    }
}

/// The member ids a PATCH value names: `[{"value": "id"}, …]` or one such object.
fn member_values(v: &Value) -> Option<Vec<String>> {
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        o @ Value::Object(_) => vec![o],
        _ => return None,
    };
    items
        .into_iter()
        .map(|i| get_ci(i, "value").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// `value eq "id"`, the filter of `members[value eq "id"]`.
fn member_filter_value(f: &Filter) -> Option<String> {
    match f {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: Value::String(v),
        } if path.urn.is_none() && path.sub.is_none() && path.name.eq_ignore_ascii_case("value") => Some(v.clone()),
        _ => None,
    }
}

/// One PATCH operation as a member insert or delete, when it is one (what Entra and Okta send
/// for each membership change).
fn member_op(op: &PatchOp) -> Option<MemberOp> {
    let path = op.path.as_ref()?;
    let attr = &path.attr;
    if !attr.name.eq_ignore_ascii_case("members")
        || attr.sub.is_some()
        || path.sub.is_some()
        || attr.urn.as_deref().is_some_and(|u| !u.eq_ignore_ascii_case(GROUP_URN))
    {
        return None;
    }
    match (&op.op, &path.filter, &op.value) {
        (Op::Add, None, Some(v)) => member_refs(v).map(MemberOp::Add),
        (Op::Remove, None, None) => Some(MemberOp::RemoveAll),
        (Op::Remove, None, Some(v)) => member_values(v).map(MemberOp::Remove),
        (Op::Remove, Some(f), None) => member_filter_value(f).map(|v| MemberOp::Remove(vec![v])),
        _ => None,
    }
}

/// Whether an operation that is no member insert or delete may still change the members (a
/// `replace` of them all, a path-less value naming them or a schema URN): then the group is
/// patched whole.
fn may_touch_members(op: &PatchOp) -> bool {
    match (&op.path, &op.value) {
        (Some(p), _) => p.attr.name.eq_ignore_ascii_case("members"),
        (None, Some(Value::Object(o))) => o.keys().any(|k| {
            let k = k.to_ascii_lowercase();
            k == "members" || k.starts_with("members.") || k.starts_with("urn:")
        }),
        (None, _) => true,
    }
}

/// A group's PATCH split into member inserts and deletes and the other operations (which
/// change the group without reading its members), when no other operation touches the
/// members — a rename alone (Entra's `Replace displayName`) included, which then rewrites no
/// member row.
fn split_group_patch(ops: &[PatchOp]) -> Option<(Vec<MemberOp>, Vec<PatchOp>)> {
    let (mut members, mut others) = (Vec::new(), Vec::new());
    for op in ops {
        match member_op(op) {
            Some(m) => members.push(m),
            None if may_touch_members(op) => return None,
            None => others.push(op.clone()),
        }
    }
    Some((members, others))
}

async fn patch(
    state: Arc<ScimState>,
    who: Pushing,
    kind: ScimKind,
    id: String,
    headers: HeaderMap,
    q: HashMap<String, String>,
    body: Bytes,
) -> Result<Response> {
    let body = json_body(&headers, &body)?;
    let ops = roster_scim::patch::parse_patch(&body)?;
    let expect = expected_version(&state, &who, kind, &id, &headers).await?;
    let source = who.source.clone();
    if kind == ScimKind::Group
        && let Some((member_ops, others)) = split_group_patch(&ops)
    {
        let renamed_only = member_ops.is_empty();
        let base = who.base_url.clone();
        let patched = store(&state, move |s| {
            s.scim_patch_group(&source, &id, expect, &member_ops, |current| {
                if others.is_empty() {
                    return Ok(None);
                }
                // `current` comes without its members, which these operations do not touch.
                let mut resource = patchable(current, &base);
                roster_scim::patch::apply(&mut resource, &others, kind_schema(kind))?;
                same_id(&resource, &current.id)?;
                group_write(&current.id, resource).map(Some)
            })
        })
        .await
        .map_err(write_error)??;
        pushed(&state, &who);
        // The group is answered without its members (which may be many): 204, as RFC 7644
        // §3.5.2 allows, unless the client asked for attributes. A PATCH of other attributes
        // only is answered with the group, as a whole-resource PATCH is (its members are read,
        // not written).
        if renamed_only || q.contains_key("attributes") || q.contains_key("excludedattributes") {
            let (source, id) = (who.source.clone(), patched.id.clone());
            let members = wants_members(&q);
            let full = store(&state, move |s| s.scim_get(&source, ScimKind::Group, &id, members))
                .await
                .map_err(internal)?
                .ok_or_else(|| ScimError::status(404, "the group was deleted meanwhile"))?;
            return one(&full, &who, &q, StatusCode::OK);
        }
        return Ok(with_etag(StatusCode::NO_CONTENT.into_response(), patched.version));
    }
    let base = who.base_url.clone();
    let patched = store(&state, move |s| {
        s.scim_replace(&source, kind, &id, expect, |current| {
            let mut resource = patchable(current, &base);
            roster_scim::patch::apply(&mut resource, &ops, kind_schema(kind))?;
            same_id(&resource, &current.id)?;
            write_for(kind, &current.id, resource)
        })
    })
    .await
    .map_err(write_error)??;
    pushed(&state, &who);
    one(&patched, &who, &q, StatusCode::OK)
}

async fn delete(
    state: Arc<ScimState>,
    who: Pushing,
    kind: ScimKind,
    id: String,
    headers: HeaderMap,
) -> Result<Response> {
    let expect = expected_version(&state, &who, kind, &id, &headers).await?;
    let source = who.source.clone();
    store(&state, move |s| s.scim_delete(&source, kind, &id, expect))
        .await
        .map_err(write_error)?;
    pushed(&state, &who);
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- the handlers, one per operation for both endpoints ----

/// A resource endpoint, `/Users` or `/Groups`: the handlers below serve both, so each route
/// names its kind (`r::get_one_of::<r::Users>`) rather than each having a copy per kind.
pub(super) trait Endpoint {
    /// The kind of resource it serves.
    const KIND: ScimKind;
}

/// `/Users`.
pub(super) struct Users;
impl Endpoint for Users {
    const KIND: ScimKind = ScimKind::User;
}

/// `/Groups`.
pub(super) struct Groups;
impl Endpoint for Groups {
    const KIND: ScimKind = ScimKind::Group;
}

pub(super) async fn list_of<E: Endpoint>(
    State(state): State<Arc<ScimState>>,
    Extension(who): Extension<Pushing>,
    RawQuery(raw): RawQuery,
) -> Reply {
    list(state, who, &[E::KIND], query(raw.as_deref())).await.into()
}

pub(super) async fn search_of<E: Endpoint>(
    State(state): State<Arc<ScimState>>,
    Extension(who): Extension<Pushing>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    search(state, who, &[E::KIND], headers, body).await.into()
}

pub(super) async fn get_one_of<E: Endpoint>(
    State(state): State<Arc<ScimState>>,
    Extension(who): Extension<Pushing>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Reply {
    get_one(state, who, E::KIND, id, headers, query(raw.as_deref()))
        .await
        .into()
}

pub(super) async fn create_of<E: Endpoint>(
    State(state): State<Arc<ScimState>>,
    Extension(who): Extension<Pushing>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Reply {
    create(state, who, E::KIND, headers, query(raw.as_deref()), body)
        .await
        .into()
}

pub(super) async fn replace_of<E: Endpoint>(
    State(state): State<Arc<ScimState>>,
    Extension(who): Extension<Pushing>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Reply {
    replace(state, who, E::KIND, id, headers, query(raw.as_deref()), body)
        .await
        .into()
}

pub(super) async fn patch_of<E: Endpoint>(
    State(state): State<Arc<ScimState>>,
    Extension(who): Extension<Pushing>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Reply {
    patch(state, who, E::KIND, id, headers, query(raw.as_deref()), body)
        .await
        .into()
}

pub(super) async fn delete_of<E: Endpoint>(
    State(state): State<Arc<ScimState>>,
    Extension(who): Extension<Pushing>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    delete(state, who, E::KIND, id, headers).await.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(v: Value) -> Vec<PatchOp> {
        roster_scim::patch::parse_patch(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": v,
        }))
        .unwrap()
    }

    /// Entra renames a group with `Replace displayName` alone: the member-preserving path, which
    /// writes no member row, takes it; an operation that may touch the members does not.
    #[test]
    fn a_rename_only_group_patch_keeps_its_members_untouched() {
        for rename in [
            json!([{"op": "Replace", "path": "displayName", "value": "devs"}]),
            json!([{"op": "replace", "value": {"displayName": "devs", "externalId": "x"}}]),
        ] {
            let (members, others) = split_group_patch(&ops(rename.clone())).expect("the member-preserving path");
            assert!(members.is_empty(), "{rename}");
            assert_eq!(others.len(), 1, "{rename}");
        }
        let both = ops(json!([
            {"op": "Replace", "path": "displayName", "value": "devs"},
            {"op": "Add", "path": "members", "value": [{"value": "u1"}]},
        ]));
        let (members, others) = split_group_patch(&both).unwrap();
        assert_eq!((members.len(), others.len()), (1, 1));
        for whole in [
            json!([{"op": "replace", "path": "members", "value": [{"value": "u1"}]}]),
            json!([{"op": "replace", "value": {"members": [{"value": "u1"}]}}]),
        ] {
            assert!(split_group_patch(&ops(whole.clone())).is_none(), "{whole}");
        }
    }

    /// A store failure's words (paths, SQL) are not in the answer.
    #[test]
    fn a_500_does_not_repeat_the_stores_error() {
        let e = internal("database error: disk I/O error at /var/lib/roster/roster.db");
        assert_eq!(e.status, 500);
        assert!(!e.detail.contains("roster.db"), "{}", e.detail);
        assert!(!e.detail.contains("I/O"), "{}", e.detail);
    }
}
