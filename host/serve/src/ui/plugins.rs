//! Plugins (`/ui/plugins`): the loaded components with world, version, sha256 and settings
//! schema; the files that failed to load with their reason; reload the folder (as
//! `POST /api/v1/plugins/reload`); upload a component (as `PUT /api/v1/plugins/{file}`:
//! checked before it replaces anything, a refusal leaves the folder as it was).

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Query, Request};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{Chrome, Nav, Ui, UiError, UiResult};
use crate::api::plugins::{MAX_UPLOAD_BYTES, install, list_now};

/// A loaded component.
pub struct PluginLine {
    name: String,
    world: String,
    version: String,
    sha256: String,
    file: String,
    description: String,
    schema: String,
}

/// A file that did not load.
pub struct FailedLine {
    file: String,
    error: String,
}

/// The plugins page.
#[derive(Template, WebTemplate)]
#[template(path = "plugins.html")]
pub struct PluginsPage {
    chrome: Chrome,
    plugins: Vec<PluginLine>,
    failed: Vec<FailedLine>,
    can_upload: bool,
    can_reload: bool,
    reloaded: bool,
    upload: Option<UploadResult>,
}

/// The answer to an upload, as `app.js` puts it under the form.
#[derive(Template, WebTemplate)]
#[template(path = "plugin_upload.html")]
pub struct UploadResult {
    ok: bool,
    message: String,
}

/// The page's query.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    reloaded: Option<u8>,
}

/// `GET /ui/plugins`.
pub async fn page(ui: Ui, Query(q): Query<PageQuery>) -> UiResult<PluginsPage> {
    Ok(view(&ui, q.reloaded.is_some(), None))
}

/// The plugins page, with an upload's outcome when it answers a plain form.
fn view(ui: &Ui, reloaded: bool, upload: Option<UploadResult>) -> PluginsPage {
    let view = list_now(ui.service());
    PluginsPage {
        chrome: ui.chrome("Plugins", Nav::Plugins),
        plugins: view
            .plugins
            .into_iter()
            .map(|p| PluginLine {
                name: p.name,
                world: p.world,
                version: p.version,
                sha256: p.sha256,
                file: p.file,
                description: p.description,
                schema: serde_json::to_string_pretty(&p.settings_schema).unwrap_or_default(),
            })
            .collect(),
        failed: view
            .failed
            .into_iter()
            .map(|f| FailedLine {
                file: f.file,
                error: f.error,
            })
            .collect(),
        can_upload: ui.state.may(ui.caller.role, Method::PUT, "/api/v1/plugins/{file}"),
        can_reload: ui.state.may(ui.caller.role, Method::POST, "/api/v1/plugins/reload"),
        reloaded,
        upload,
    }
}

/// `POST /ui/plugins/reload`.
pub async fn reload(ui: Ui) -> UiResult<Redirect> {
    ui.require(Method::POST, "/api/v1/plugins/reload")?;
    ui.service().runtime.reload().await;
    ui.caller.audit(ui.service(), "plugin.reload", "plugins", None).await?;
    Ok(Redirect::to("/ui/plugins?reloaded=1"))
}

/// The upload's query: the file name it is to have in the plugins folder (the JavaScript path;
/// a plain form sends it as its `file` field).
#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    file: Option<String>,
}

/// What an upload carried.
struct Upload {
    file: String,
    body: Bytes,
}

/// Who sent the upload, which decides the answer's shape.
enum Sender {
    /// `app.js`: the component as the body; the answer is a fragment put under the form.
    Script,
    /// A plain multipart form (no JavaScript): the answer is the whole plugins page.
    PlainForm,
}

/// The component and its name from a plain multipart form: `component` (the file), `file` (the
/// name to save it as; empty: the file's own name).
async fn from_form(req: Request) -> UiResult<Upload> {
    let mut form = Multipart::from_request(req, &())
        .await
        .map_err(|e| UiError::bad_request(format!("the upload form was not understood: {e}")))?;
    let (mut name, mut own_name, mut body) = (None, None, None);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| UiError::bad_request(format!("the upload form was not understood: {e}")))?
    {
        match field.name() {
            Some("file") => {
                let text = field.text().await.unwrap_or_default();
                name = Some(text.trim().to_string()).filter(|t| !t.is_empty());
            }
            Some("component") => {
                own_name = field.file_name().map(str::to_string);
                body = Some(field.bytes().await.map_err(|e| {
                    UiError::bad_request(format!("the component could not be read from the form: {e}"))
                })?);
            }
            _ => {}
        }
    }
    let body = body
        .filter(|b| !b.is_empty())
        .ok_or_else(|| UiError::bad_request("choose a component (.wasm file) to upload"))?;
    let file = name
        .or(own_name)
        .ok_or_else(|| UiError::bad_request("name the file to save the component as (e.g. mapping.wasm)"))?;
    Ok(Upload { file, body })
}

/// `POST /ui/plugins/upload`: from `app.js`, `?file=NAME.wasm` with the component as the body
/// (and the session's CSRF header); from a plain form, multipart with the component, its name
/// and the `csrf_token` field. Installed as `PUT /api/v1/plugins/{file}` installs it, and
/// audited the same way, refusals included.
pub async fn upload(ui: Ui, Query(q): Query<UploadQuery>, req: Request) -> UiResult<Response> {
    ui.require(Method::PUT, "/api/v1/plugins/{file}")?;
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let (sender, upload) = if multipart {
        (Sender::PlainForm, from_form(req).await?)
    } else {
        let file = q
            .file
            .ok_or_else(|| UiError::bad_request("name the file: /ui/plugins/upload?file=NAME.wasm"))?;
        let body = axum::body::to_bytes(req.into_body(), MAX_UPLOAD_BYTES)
            .await
            .map_err(|_| UiError::new(StatusCode::PAYLOAD_TOO_LARGE, "the component is too large"))?;
        (Sender::Script, Upload { file, body })
    };
    let state = ui.service();
    let (status, outcome) = match install(state, &upload.file, &upload.body).await {
        Ok(label) => {
            let detail = format!("{} {} sha256 {}", label.name, label.version, label.sha256);
            ui.caller
                .audit(state, "plugin.upload", &upload.file, Some(&detail))
                .await?;
            let message = format!(
                "{} loaded: plugin '{}' version {}, sha256 {}",
                upload.file, label.name, label.version, label.sha256
            );
            (StatusCode::OK, UploadResult { ok: true, message })
        }
        Err(refusal) => {
            let detail = format!("{} bytes: {}", upload.body.len(), refusal.message());
            ui.caller
                .audit(state, "plugin.upload-refused", &upload.file, Some(&detail))
                .await?;
            let message = format!(
                "{} was refused, and nothing was replaced: {}",
                upload.file,
                refusal.message()
            );
            (refusal.status(), UploadResult { ok: false, message })
        }
    };
    Ok(match sender {
        Sender::Script => (status, outcome).into_response(),
        Sender::PlainForm => (status, view(&ui, false, Some(outcome))).into_response(),
    })
}
