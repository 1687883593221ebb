//! The mapping editor (`/ui/sources/{id}/mapping`): an administrator edits a source's mapping
//! (the `mapping` transform's settings) in a textarea. As they type, htmx posts the draft to
//! `…/mapping/check`, which answers with the syntax error at its line and column, or with a
//! preview of the whole chain (the draft in place of the stored step) over the source's
//! mirror or pasted sample records: each record before, after each step with the rule that
//! decided, and after. It is the service behind `POST /api/v1/sources/{id}/preview` with a
//! draft chain. Saving goes through `PUT /api/v1/sources/{id}`'s service, which stores the
//! mapping only when the transform accepts it.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;

use roster_directory::transform::{StepTrace, Traces, UserView};
use roster_directory::{Sample, SourceConfig, TransformConfig};

use super::sources::is_htmx;
use super::{Chrome, Nav, Ui, UiError, UiResult};
use crate::service::ServiceError;

/// The transform plugin whose settings this page edits.
const MAPPING: &str = "mapping";
/// How many users and groups a preview shows.
const SHOWN: usize = 25;

/// Where a mapping went wrong, in the document the administrator typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

/// Why a draft mapping was not accepted.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// Where, when the error says (a JSON syntax error, an expression's parse error).
    pub at: Option<Position>,
    /// The error in full, as the transform (or the JSON parser) gave it.
    pub message: String,
    /// The offending line of the document.
    pub excerpt: String,
    /// Spaces and a caret under the column.
    pub caret: String,
}

impl Refusal {
    fn new(text: &str, at: Option<Position>, message: String) -> Refusal {
        let (excerpt, caret) = match &at {
            Some(p) => (
                text.lines().nth(p.line.saturating_sub(1)).unwrap_or("").to_string(),
                format!("{}^", " ".repeat(p.column.saturating_sub(1))),
            ),
            None => (String::new(), String::new()),
        };
        Refusal {
            at,
            message,
            excerpt,
            caret,
        }
    }
}

/// The `line L, column C` an error message carries, and the text before it.
fn line_column(message: &str) -> Option<(usize, usize, usize)> {
    let at = message.find("line ")?;
    let rest = &message[at + 5..];
    let (line, rest) = rest.split_once(", column ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.parse().ok()?, column.parse().ok()?, at))
}

/// The value at a mapping's field path (`user.username`, `groups.rules[2].match`).
fn at_path<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    let mut v = doc;
    for part in path.split('.') {
        let (name, indices) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            v = v.get(name)?;
        }
        for idx in indices.split(['[', ']']).filter(|s| !s.is_empty()) {
            v = v.get(idx.parse::<usize>().ok()?)?;
        }
    }
    Some(v)
}

/// 1-based line and column (in characters) of byte offset `at` of `text`.
fn position_of(text: &str, at: usize) -> Position {
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Position {
        line,
        column: text[line_start..at].chars().count() + 1,
    }
}

/// Where in the document an expression's error at (`line`, `column`) of the expression at
/// `path` is: the expression is a JSON string in the document, so its position is the
/// string's, plus the characters before the error as the document writes them (escapes
/// included). `None` when the expression cannot be found as written.
fn in_document(text: &str, doc: &Value, path: &str, line: usize, column: usize) -> Option<Position> {
    let expr = at_path(doc, path)?.as_str()?;
    let quoted = serde_json::to_string(expr).ok()?;
    let start = text.find(&quoted)?;
    // The error's character offset in the expression.
    let mut offset = 0;
    for (i, l) in expr.split('\n').enumerate() {
        if i + 1 == line {
            offset += column.saturating_sub(1).min(l.chars().count());
            break;
        }
        offset += l.chars().count() + 1;
    }
    let prefix: String = expr.chars().take(offset).collect();
    let written = serde_json::to_string(&prefix).ok()?;
    // The prefix as written, without its quotes, after the opening quote.
    let at = start + 1 + written.len() - 2;
    Some(position_of(text, at))
}

/// The refusal a transform's error gives: its position in the document when it names one.
pub fn refusal_of(text: &str, doc: &Value, message: String) -> Refusal {
    let at = line_column(&message).and_then(|(line, column, idx)| {
        // The field path is what precedes `: line …` after the last `: ` before it.
        let head = message[..idx].trim_end().trim_end_matches(':');
        let path = head.rsplit(": ").next().unwrap_or(head).trim();
        in_document(text, doc, path, line, column)
    });
    Refusal::new(text, at, message)
}

/// A draft's text parsed, or refused at its JSON syntax error.
pub fn parse_draft(text: &str) -> Result<Value, Refusal> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_str(text).map_err(|e| {
        let at = Position {
            line: e.line().max(1),
            column: e.column().max(1),
        };
        Refusal::new(
            text,
            Some(at.clone()),
            format!("line {}, column {}: the mapping is not JSON: {e}", at.line, at.column),
        )
    })
}

/// A user as a preview shows it.
pub struct UserLine {
    username: String,
    email: String,
    display_name: String,
    active: bool,
}

impl From<&UserView> for UserLine {
    fn from(u: &UserView) -> Self {
        UserLine {
            username: u.username.clone(),
            email: u.email.clone().unwrap_or_default(),
            display_name: u.display_name.clone().unwrap_or_default(),
            active: u.active,
        }
    }
}

/// One step of one record.
pub struct StepLine {
    plugin: String,
    outcome: String,
    user: Option<UserLine>,
    groups: Option<String>,
    reason: String,
    error: String,
}

impl From<&StepTrace> for StepLine {
    fn from(s: &StepTrace) -> Self {
        StepLine {
            plugin: s.plugin.clone(),
            outcome: s.outcome.clone(),
            user: s.user.as_ref().map(UserLine::from),
            groups: s.groups.as_ref().map(|g| g.join(", ")),
            reason: s.reason.clone().unwrap_or_default(),
            error: s.error.clone().unwrap_or_default(),
        }
    }
}

/// One user through the chain.
pub struct UserRow {
    id: String,
    before: UserLine,
    steps: Vec<StepLine>,
    after: Option<UserLine>,
}

/// One group through the chain.
pub struct GroupRow {
    id: String,
    before: String,
    steps: Vec<StepLine>,
    after: String,
}

/// What the live part of the editor shows.
pub enum Live {
    /// The draft was refused.
    Refused(Refusal),
    /// The preview could not run (no target, the mirror unreadable): why.
    Unavailable(String),
    /// Accepted: the chain's preview.
    Preview(Preview),
}

/// A chain's preview.
pub struct Preview {
    users: Vec<UserRow>,
    groups: Vec<GroupRow>,
    warnings: Vec<String>,
    matched_users: usize,
    matched_groups: usize,
    over: &'static str,
}

fn preview_of(mut t: Traces, only: Option<&str>, over: &'static str) -> Preview {
    let (matched_users, matched_groups) = t.narrow(only, SHOWN);
    Preview {
        users: t
            .users
            .iter()
            .map(|u| UserRow {
                id: u.id.clone(),
                before: UserLine::from(&u.before),
                steps: u.steps.iter().map(StepLine::from).collect(),
                after: u.after.as_ref().map(UserLine::from),
            })
            .collect(),
        groups: t
            .groups
            .iter()
            .map(|g| GroupRow {
                id: g.id.clone(),
                before: g.before.clone(),
                steps: g.steps.iter().map(StepLine::from).collect(),
                after: g.after.join(", "),
            })
            .collect(),
        warnings: t.warnings,
        matched_users,
        matched_groups,
        over,
    }
}

/// The editor page.
#[derive(Template, WebTemplate)]
#[template(path = "mapping.html")]
pub struct MappingPage {
    chrome: Chrome,
    id: String,
    step: usize,
    steps: usize,
    text: String,
    sample: String,
    only: String,
    can_save: bool,
    why_read_only: String,
    saved: bool,
    live: Live,
}

/// The live part alone, as htmx swaps it in.
#[derive(Template, WebTemplate)]
#[template(path = "mapping.html", block = "live")]
pub struct LiveFragment {
    live: Live,
}

/// The editor's query: which step, and whether it was just saved.
#[derive(Debug, Deserialize)]
pub struct StepQuery {
    step: Option<usize>,
    saved: Option<u8>,
}

/// What the editor posts.
#[derive(Debug, Deserialize)]
pub struct Draft {
    /// The mapping being written.
    #[serde(default)]
    mapping: String,
    /// Sample records (the `file` connector's JSON); empty: the mirror.
    #[serde(default)]
    sample: String,
    /// Only records whose id or name contains this.
    #[serde(default)]
    only: String,
    /// The chain step edited.
    step: Option<usize>,
}

fn find(ui: &Ui, id: &str) -> UiResult<SourceConfig> {
    ui.service()
        .config()
        .sources
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| UiError::not_found(format!("no source named '{id}'; see the list (/ui/sources)")))
}

/// The step edited: the one asked for when it is a mapping, else the source's first mapping,
/// else a new last step.
fn step_of(s: &SourceConfig, asked: Option<usize>) -> UiResult<usize> {
    match asked {
        Some(i) if s.transforms.get(i).is_some_and(|t| t.plugin == MAPPING) => Ok(i),
        Some(i) if i == s.transforms.len() => Ok(i),
        Some(i) => Err(UiError::bad_request(format!(
            "step {} of source '{}' is not a mapping; the chain is {}",
            i + 1,
            s.id,
            s.transforms
                .iter()
                .map(|t| t.plugin.as_str())
                .collect::<Vec<_>>()
                .join(" → ")
        ))),
        None => Ok(s
            .transforms
            .iter()
            .position(|t| t.plugin == MAPPING)
            .unwrap_or(s.transforms.len())),
    }
}

/// The chain with `settings` as step `step`'s (a new mapping step when it is one past the end).
fn draft_chain(s: &SourceConfig, step: usize, settings: Value) -> Vec<TransformConfig> {
    let mut chain = s.transforms.clone();
    match chain.get_mut(step) {
        Some(t) => {
            t.settings = settings;
            t.settings_file = None;
        }
        None => chain.push(TransformConfig {
            plugin: MAPPING.into(),
            settings,
            settings_file: None,
            limits: Default::default(),
        }),
    }
    chain
}

/// Checks a draft and previews the chain with it.
async fn live(ui: &Ui, s: &SourceConfig, step: usize, draft: &Draft) -> Live {
    let doc = match parse_draft(&draft.mapping) {
        Ok(doc) => doc,
        Err(r) => return Live::Refused(r),
    };
    let sample = if draft.sample.trim().is_empty() {
        None
    } else {
        match Sample::from_json(&draft.sample) {
            Ok(sample) => Some(sample),
            Err(e) => return Live::Unavailable(format!("the sample records are not usable: {e}")),
        }
    };
    let over = if sample.is_some() {
        "the sample records"
    } else {
        "the source's mirror"
    };
    let chain = draft_chain(s, step, doc.clone());
    match ui.service().preview_chain(&s.id, Some(chain), sample).await {
        Ok(t) => {
            let only = Some(draft.only.trim()).filter(|o| !o.is_empty());
            Live::Preview(preview_of(t, only, over))
        }
        Err(ServiceError::Invalid(msg)) => Live::Refused(refusal_of(&draft.mapping, &doc, msg)),
        Err(e) => Live::Unavailable(e.to_string()),
    }
}

fn page_of(ui: &Ui, s: &SourceConfig, step: usize, draft: Draft, live: Live, saved: bool) -> MappingPage {
    let may = ui.state.may(ui.caller.role, Method::PUT, "/api/v1/sources/{id}");
    let is_file = s.origin.as_str() == "file";
    let why_read_only = if is_file {
        "This source is defined in roster.toml: preview drafts here, and change the file to keep one.".to_string()
    } else if !may {
        format!(
            "Saving a mapping needs the admin role; you have the {} role. Drafts can still be previewed.",
            ui.caller.role.as_str()
        )
    } else {
        String::new()
    };
    MappingPage {
        chrome: ui.chrome(format!("Mapping of {}", s.id), Nav::Sources),
        id: s.id.clone(),
        step,
        steps: s.transforms.len(),
        text: draft.mapping,
        sample: draft.sample,
        only: draft.only,
        can_save: may && !is_file,
        why_read_only,
        saved,
        live,
    }
}

/// `GET /ui/sources/{id}/mapping?step=N`: the stored mapping and its preview over the mirror.
pub async fn page(ui: Ui, Path(id): Path<String>, Query(q): Query<StepQuery>) -> UiResult<MappingPage> {
    ui.require(Method::POST, "/api/v1/sources/{id}/preview")?;
    let s = find(&ui, &id)?;
    let step = step_of(&s, q.step)?;
    let text = match s.transforms.get(step) {
        Some(t) if t.settings_file.is_some() => String::new(),
        Some(t) => serde_json::to_string_pretty(&t.settings).unwrap_or_default(),
        None => "{\n  \"user\": {\n    \"username\": \"[username]\"\n  }\n}".into(),
    };
    let draft = Draft {
        mapping: text,
        sample: String::new(),
        only: String::new(),
        step: Some(step),
    };
    let live = live(&ui, &s, step, &draft).await;
    Ok(page_of(&ui, &s, step, draft, live, q.saved.is_some()))
}

/// `POST /ui/sources/{id}/mapping/check`: the draft's syntax error or its preview (htmx: the
/// live part alone; without JavaScript: the page).
pub async fn check(
    ui: Ui,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(draft): axum::Form<Draft>,
) -> UiResult<Response> {
    ui.require(Method::POST, "/api/v1/sources/{id}/preview")?;
    let s = find(&ui, &id)?;
    let step = step_of(&s, draft.step)?;
    let live = live(&ui, &s, step, &draft).await;
    if is_htmx(&headers) {
        return Ok(LiveFragment { live }.into_response());
    }
    Ok(page_of(&ui, &s, step, draft, live, false).into_response())
}

/// `POST /ui/sources/{id}/mapping`: saves the mapping as `PUT /api/v1/sources/{id}` would, so
/// only a mapping the transform accepts is stored; a refusal comes back on the page, with the
/// draft as typed.
pub async fn save(ui: Ui, Path(id): Path<String>, axum::Form(draft): axum::Form<Draft>) -> UiResult<Response> {
    ui.require(Method::PUT, "/api/v1/sources/{id}")?;
    let s = find(&ui, &id)?;
    let step = step_of(&s, draft.step)?;
    let doc = match parse_draft(&draft.mapping) {
        Ok(doc) => doc,
        Err(r) => {
            let page = page_of(&ui, &s, step, draft, Live::Refused(r), false);
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let mut next = s.clone();
    next.transforms = draft_chain(&s, step, doc.clone());
    // Secrets are write-only: none given keeps the stored ones.
    next.secrets = Vec::new();
    match ui.service().put_source(next, crate::service::Put::Replace).await {
        Ok(()) => {
            ui.caller
                .audit(
                    ui.service(),
                    "source.replace",
                    &id,
                    Some("mapping edited in the admin pages"),
                )
                .await?;
            Ok(Redirect::to(&format!("/ui/sources/{id}/mapping?step={step}&saved=1")).into_response())
        }
        Err(ServiceError::Invalid(msg)) => {
            let live = Live::Refused(refusal_of(&draft.mapping, &doc, msg));
            let page = page_of(&ui, &s, step, draft, live, false);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_syntax_error_is_placed_at_its_line_and_column() {
        let text = "{\n  \"user\": {\n    \"username\": \"[mail]\",,\n  }\n}";
        let r = parse_draft(text).unwrap_err();
        // The second comma.
        assert_eq!(r.at, Some(Position { line: 3, column: 26 }));
        assert_eq!(r.excerpt, "    \"username\": \"[mail]\",,");
        assert!(r.message.starts_with("line 3, column 26"), "{}", r.message);
    }

    #[test]
    fn an_expression_error_is_placed_in_the_document_not_in_the_expression() {
        let text = "{\n  \"user\": {\n    \"email\": \"[mail]\",\n    \"username\": \"Append([a], \\\"x\\\"\"\n  }\n}";
        let doc: Value = serde_json::from_str(text).unwrap();
        // As the mapping transform words it: the field path, then the expression's position.
        let msg = "transform step 1 (mapping) refused its settings: config: invalid mapping: user.username: line 1, column 16: expected ')' after the arguments of Append, found end of input".to_string();
        let r = refusal_of(text, &doc, msg);
        // The opening quote is at column 17; the expression's 15 characters are written as 17
        // (two escaped quotes), so its end (column 16) is the closing quote, column 35.
        assert_eq!(r.at, Some(Position { line: 4, column: 35 }));
        assert_eq!(r.caret.len(), 35);
    }

    #[test]
    fn an_error_without_a_position_has_none() {
        let doc = serde_json::json!({"groups": {"case": "sideways"}});
        let r = refusal_of("{}", &doc, "groups.case: unknown variant `sideways`".into());
        assert_eq!(r.at, None);
        assert!(r.excerpt.is_empty());
    }
}
