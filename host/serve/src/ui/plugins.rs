//! Plugins (`/ui/plugins`): the loaded components with world, version, sha256 and settings
//! schema; the files that failed to load with their reason; reload the folder (as
//! `POST /api/v1/plugins/reload`); upload a component (as `PUT /api/v1/plugins/{file}`:
//! checked before it replaces anything, a refusal leaves the folder as it was).

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Bytes;
use axum::extract::Query;
use axum::http::Method;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{Chrome, Nav, Ui, UiResult};
use crate::api::plugins::{install, list_now};

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
    let view = list_now(ui.service());
    Ok(PluginsPage {
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
        reloaded: q.reloaded.is_some(),
    })
}

/// `POST /ui/plugins/reload`.
pub async fn reload(ui: Ui) -> UiResult<Redirect> {
    ui.require(Method::POST, "/api/v1/plugins/reload")?;
    ui.service().runtime.reload().await;
    ui.caller.audit(ui.service(), "plugin.reload", "plugins", None).await?;
    Ok(Redirect::to("/ui/plugins?reloaded=1"))
}

/// The upload's query: the file name it is to have in the plugins folder.
#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    file: String,
}

/// `POST /ui/plugins/upload?file=NAME.wasm` with the component as the body (sent by `app.js`
/// with the session's CSRF header): installed as `PUT /api/v1/plugins/{file}` installs it, and
/// audited the same way, refusals included.
pub async fn upload(ui: Ui, Query(q): Query<UploadQuery>, body: Bytes) -> UiResult<Response> {
    ui.require(Method::PUT, "/api/v1/plugins/{file}")?;
    let state = ui.service();
    match install(state, &q.file, &body).await {
        Ok(label) => {
            let detail = format!("{} {} sha256 {}", label.name, label.version, label.sha256);
            ui.caller.audit(state, "plugin.upload", &q.file, Some(&detail)).await?;
            let message = format!(
                "{} loaded: plugin '{}' version {}, sha256 {}",
                q.file, label.name, label.version, label.sha256
            );
            Ok(UploadResult { ok: true, message }.into_response())
        }
        Err(refusal) => {
            let detail = format!("{} bytes: {}", body.len(), refusal.message());
            ui.caller
                .audit(state, "plugin.upload-refused", &q.file, Some(&detail))
                .await?;
            let message = format!(
                "{} was refused, and nothing was replaced: {}",
                q.file,
                refusal.message()
            );
            let status = refusal.status();
            Ok((status, UploadResult { ok: false, message }).into_response())
        }
    }
}
