//! API tokens (`/ui/tokens`, administrators only, as `roster token` on the command line): the
//! list (never a token's value), create (the token shown once, on the answer to the form), and
//! revoke (which also ends the sessions opened with it).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::Path;
use axum::response::Redirect;
use serde::Deserialize;

use roster_store::{Role, TokenRow};

use super::format::{When, when};
use super::{Chrome, Nav, Ui, UiError, UiResult};

/// A token's row.
pub struct TokenLine {
    id: i64,
    name: String,
    role: &'static str,
    created: Option<When>,
    created_by: String,
    last_used: Option<When>,
    revoked: Option<When>,
}

impl From<&TokenRow> for TokenLine {
    fn from(t: &TokenRow) -> Self {
        TokenLine {
            id: t.id,
            name: t.name.clone(),
            role: t.role.as_str(),
            created: when(t.created_at),
            created_by: t.created_by.clone(),
            last_used: t.last_used_at.and_then(when),
            revoked: t.revoked_at.and_then(when),
        }
    }
}

/// The tokens page.
#[derive(Template, WebTemplate)]
#[template(path = "tokens.html")]
pub struct TokensPage {
    chrome: Chrome,
    tokens: Vec<TokenLine>,
    created: Option<NewToken>,
}

/// A token just created: its name and value, shown this once.
pub struct NewToken {
    name: String,
    token: String,
}

/// Tokens are not in the REST API (they are made on the command line); here only an
/// administrator sees or changes them.
fn admin_only(ui: &Ui) -> UiResult<()> {
    if ui.caller.role == Role::Admin {
        return Ok(());
    }
    Err(UiError::forbidden(format!(
        "API tokens are managed by administrators; you are logged in as {} with the {} role",
        ui.caller.actor,
        ui.caller.role.as_str()
    )))
}

async fn render(ui: &Ui, created: Option<NewToken>) -> UiResult<TokensPage> {
    let tokens = ui.service().store.blocking(|store| store.tokens()).await?;
    Ok(TokensPage {
        chrome: ui.chrome("API tokens", Nav::Tokens),
        tokens: tokens.iter().map(TokenLine::from).collect(),
        created,
    })
}

/// `GET /ui/tokens`.
pub async fn page(ui: Ui) -> UiResult<TokensPage> {
    admin_only(&ui)?;
    render(&ui, None).await
}

/// The create form.
#[derive(Debug, Deserialize)]
pub struct CreateForm {
    name: String,
    role: String,
}

/// `POST /ui/tokens`: creates a token and shows it once (the answer is never cached).
pub async fn create(ui: Ui, axum::Form(form): axum::Form<CreateForm>) -> UiResult<TokensPage> {
    admin_only(&ui)?;
    let name = form.name.trim().to_string();
    if name.is_empty() || name.len() > 64 {
        return Err(UiError::bad_request(
            "the token's name must be 1 to 64 characters: who or what it is for",
        ));
    }
    let role: Role = form.role.parse().map_err(UiError::bad_request)?;
    let (by, n) = (ui.caller.actor.clone(), name.clone());
    let (row, token) = ui
        .service()
        .store
        .blocking(move |store| store.create_token(&n, role, &by))
        .await?;
    // The same audit entry `roster token create` writes.
    ui.caller
        .audit(
            ui.service(),
            "token.create",
            &format!("token {}", row.id),
            Some(role.as_str()),
        )
        .await?;
    render(&ui, Some(NewToken { name, token })).await
}

/// `POST /ui/tokens/{id}/revoke`.
pub async fn revoke(ui: Ui, Path(id): Path<i64>) -> UiResult<Redirect> {
    admin_only(&ui)?;
    let revoked = ui.service().store.blocking(move |store| store.revoke_token(id)).await?;
    if !revoked {
        return Err(UiError::not_found(format!(
            "no live token {id}; see the list (/ui/tokens)"
        )));
    }
    ui.caller
        .audit(ui.service(), "token.revoke", &format!("token {id}"), None)
        .await?;
    Ok(Redirect::to("/ui/tokens"))
}
