//! `/api/v1/crowd/applications`: the applications (Bitbucket, Jira, …) that read the Crowd
//! directory Roster serves under `/rest/usermanagement/1`. An application signs in with its
//! name and a password Roster generates; the password is shown once, when the application is
//! created or its password rotated, and Roster keeps only its hash. Each application is also
//! held to the addresses it may connect from and, optionally, to the groups it may see.
//!
//! The checks of a name, an allow-list and a list of groups live here, with the routes, so the
//! command line (`roster crowd apps`) refuses exactly what the API refuses.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::{ApiError, ApiResult, AppState, ErrorBody, Json, Path};
use roster_store::{AppLicence, CrowdApp, Store};

/// The longest application name.
pub const MAX_NAME: usize = 100;
/// The most addresses or ranges one application may list.
pub const MAX_ALLOWED: usize = 100;
/// The most groups one application may be limited to.
pub const MAX_GROUPS: usize = 1000;
/// The longest group name (the served directory's limit).
pub const MAX_GROUP_NAME: usize = 255;

/// Why an application's name or settings are refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AppInputError {
    /// The name breaks the naming rule.
    #[error(
        "the application name {0:?} is not allowed: use 1 to {MAX_NAME} letters, digits, '.', '_' or '-', starting with a letter or digit (it is the user name of HTTP Basic, so no ':' or spaces)"
    )]
    Name(String),
    /// No address at all: the application could never connect.
    #[error(
        "the allow-list is empty: list the addresses the application connects from (a single address such as 10.0.0.5, or a range such as 10.0.0.0/24)"
    )]
    NoAddress,
    /// Too many addresses.
    #[error("the allow-list has {0} entries; at most {MAX_ALLOWED} are allowed: use CIDR ranges")]
    TooManyAddresses(usize),
    /// An entry that is neither an address nor a CIDR range.
    #[error("the allow-list entry {0}")]
    Address(String),
    /// `groups` given but empty: the application would see nothing.
    #[error(
        "the list of groups is empty, which would hide every user: leave it out (or use --all-groups) to let the application see every group"
    )]
    NoGroups,
    /// Too many groups.
    #[error("{0} groups listed; at most {MAX_GROUPS} are allowed")]
    TooManyGroups(usize),
    /// A blank or overlong group name.
    #[error("the group name {0:?} is not allowed: group names are 1 to {MAX_GROUP_NAME} characters, not only spaces")]
    GroupName(String),
    /// A negative number of seats.
    #[error(
        "seats: {0} is not a number of seats; give the number of users the application's licence allows (0 or more), or leave it out for no limit"
    )]
    Seats(i64),
    /// Too many licensed groups.
    #[error("{0} licensed groups listed; at most {MAX_GROUPS} are allowed")]
    TooManyLicensedGroups(usize),
    /// A blank or overlong licensed group name.
    #[error(
        "the licensed group name {0:?} is not allowed: group names are 1 to {MAX_GROUP_NAME} characters, not only spaces"
    )]
    LicensedGroupName(String),
}

/// What an application may do, checked: what the store is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSettings {
    /// Addresses and CIDR ranges, as written (trimmed), duplicates left out.
    pub allowed: Vec<String>,
    /// The groups it sees (trimmed, duplicates left out without regard to case); None: every group.
    pub groups: Option<Vec<String>>,
}

/// Checks an application name: it is the user name of HTTP Basic and a path segment.
pub fn check_name(name: &str) -> Result<(), AppInputError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if first_ok && rest_ok && name.len() <= MAX_NAME {
        Ok(())
    } else {
        Err(AppInputError::Name(name.to_string()))
    }
}

/// Checks an allow-list and a list of groups.
pub fn check_settings(allowed: &[String], groups: Option<&[String]>) -> Result<AppSettings, AppInputError> {
    if allowed.is_empty() {
        return Err(AppInputError::NoAddress);
    }
    if allowed.len() > MAX_ALLOWED {
        return Err(AppInputError::TooManyAddresses(allowed.len()));
    }
    let mut addresses: Vec<String> = Vec::with_capacity(allowed.len());
    for a in allowed {
        roster_http::addr::parse_range(a).map_err(AppInputError::Address)?;
        let a = a.trim().to_string();
        if !addresses.contains(&a) {
            addresses.push(a);
        }
    }
    let groups = match groups {
        None => None,
        Some([]) => return Err(AppInputError::NoGroups),
        Some(list) if list.len() > MAX_GROUPS => return Err(AppInputError::TooManyGroups(list.len())),
        Some(list) => {
            let mut kept: Vec<String> = Vec::with_capacity(list.len());
            for g in list {
                let name = g.trim();
                if name.is_empty() || name.chars().count() > MAX_GROUP_NAME {
                    return Err(AppInputError::GroupName(g.clone()));
                }
                // The served directory compares group names without case.
                if !kept.iter().any(|k| k.to_lowercase() == name.to_lowercase()) {
                    kept.push(name.to_string());
                }
            }
            Some(kept)
        }
    };
    Ok(AppSettings {
        allowed: addresses,
        groups,
    })
}

/// Checks what an application licenses: seats are 0 or more (none: unlimited); licensed
/// groups are trimmed, each kept once without regard to case.
pub fn check_licence(licensed_groups: &[String], seats: Option<i64>) -> Result<AppLicence, AppInputError> {
    if let Some(n) = seats.filter(|n| *n < 0) {
        return Err(AppInputError::Seats(n));
    }
    if licensed_groups.len() > MAX_GROUPS {
        return Err(AppInputError::TooManyLicensedGroups(licensed_groups.len()));
    }
    let mut kept: Vec<String> = Vec::with_capacity(licensed_groups.len());
    for g in licensed_groups {
        let name = g.trim();
        if name.is_empty() || name.chars().count() > MAX_GROUP_NAME {
            return Err(AppInputError::LicensedGroupName(g.clone()));
        }
        if !kept.iter().any(|k| k.to_lowercase() == name.to_lowercase()) {
            kept.push(name.to_string());
        }
    }
    Ok(AppLicence {
        licensed_groups: kept,
        seats,
    })
}

/// Warnings for the groups of `settings` and `licence` that the served directory does not
/// hold (yet), and for licensed groups the application cannot see: a misspelt name would
/// otherwise hide users, or leave seats uncounted, without a word.
pub fn unknown_groups(
    store: &Store,
    settings: &AppSettings,
    licence: &AppLicence,
) -> roster_store::Result<Vec<String>> {
    let mut warnings = Vec::new();
    for g in settings.groups.iter().flatten() {
        if store.served_group(g)?.is_none() {
            warnings.push(format!(
                "no group '{g}' in the Crowd directory Roster serves (yet): check its name; the application sees its members once a run creates it"
            ));
        }
    }
    for g in &licence.licensed_groups {
        let seen = settings
            .groups
            .as_ref()
            .is_none_or(|list| list.iter().any(|s| s.to_lowercase() == g.to_lowercase()));
        if !seen {
            warnings.push(format!(
                "licensed group '{g}' is not among the groups the application sees: it licenses no one there, and the licence guard does not count it; add it to the groups, or leave it out"
            ));
        } else if store.served_group(g)?.is_none() {
            warnings.push(format!(
                "no licensed group '{g}' in the Crowd directory Roster serves (yet): check its name; the licence guard counts its members once a run creates it"
            ));
        }
    }
    Ok(warnings)
}

/// The audit log's detail for an application's settings and licence.
pub fn audit_detail(settings: &AppSettings, licence: &AppLicence) -> String {
    let groups = match &settings.groups {
        None => "every group".to_string(),
        Some(list) => list.join(", "),
    };
    let base = format!("allowed: {}; groups: {groups}", settings.allowed.join(", "));
    // An application that licenses nothing Roster counts is audited as before licences were.
    if *licence == AppLicence::default() {
        base
    } else {
        format!("{base}; {}", licence_text(licence))
    }
}

/// What an application licenses, in words: `licensed groups: jira-users; seats: 10`.
pub fn licence_text(licence: &AppLicence) -> String {
    let groups = if licence.licensed_groups.is_empty() {
        "none".to_string()
    } else {
        licence.licensed_groups.join(", ")
    };
    let seats = licence.seats.map_or("unlimited".to_string(), |n| n.to_string());
    format!("licensed groups: {groups}; seats: {seats}")
}

/// The audit log's subject for an application.
pub fn audit_subject(name: &str) -> String {
    format!("crowd application {name}")
}

impl From<AppInputError> for ApiError {
    fn from(e: AppInputError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

/// An application as listed (never its password).
#[derive(Debug, Serialize, ToSchema)]
pub struct CrowdAppView {
    /// The application name it signs in with.
    pub name: String,
    /// The addresses and CIDR ranges it may connect from.
    pub allowed: Vec<String>,
    /// The groups it sees (and only the users in them); null: every group.
    pub groups: Option<Vec<String>>,
    /// When it was added (RFC 3339, UTC).
    #[serde(with = "roster_model::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// When it last made a request (RFC 3339, UTC; to the minute).
    #[serde(with = "roster_model::time::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<i64>,
    /// The groups whose members hold a licence in it (those it sees): the licence guard counts
    /// their active members against its seats.
    pub licensed_groups: Vec<String>,
    /// The users its licence allows; null: unlimited.
    pub seats: Option<i64>,
}

impl From<CrowdApp> for CrowdAppView {
    fn from(a: CrowdApp) -> Self {
        CrowdAppView {
            name: a.name,
            allowed: a.allowed,
            groups: a.groups,
            created_at: a.created_at,
            created_by: a.created_by,
            last_used_at: a.last_used_at,
            licensed_groups: a.licence.licensed_groups,
            seats: a.licence.seats,
        }
    }
}

/// A field that may be left out (`None`) or given, null included (`Some(None)`).
fn given<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A new application.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CrowdAppInput {
    /// The application name it will sign in with (as Bitbucket's or Jira's "Application
    /// name"); unique without regard to case.
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]*$", min_length = 1, max_length = 100)]
    pub name: String,
    /// The addresses (10.0.0.5, 2001:db8::5) and CIDR ranges (10.0.0.0/24) it may connect
    /// from; requests from anywhere else are refused.
    #[schema(min_items = 1, max_items = 100)]
    pub allowed: Vec<String>,
    /// The groups it sees, and only the users in them; leave out for every group.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 1000)]
    pub groups: Option<Vec<String>>,
    /// The groups whose members hold a licence in it (Bitbucket's groups with the "Bitbucket
    /// User" global permission, Jira's application-access groups); only those it sees count.
    #[serde(default)]
    #[schema(max_items = 1000)]
    pub licensed_groups: Vec<String>,
    /// The users its licence allows; leave out for no limit. A plan that would license more
    /// is refused.
    #[serde(default)]
    #[schema(minimum = 0)]
    pub seats: Option<i64>,
}

/// An application's settings: the allow-list and the groups it sees are replaced as a whole;
/// what it licenses is changed only when given.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CrowdAppSettings {
    /// The addresses and CIDR ranges it may connect from.
    #[schema(min_items = 1, max_items = 100)]
    pub allowed: Vec<String>,
    /// The groups it sees, and only the users in them; leave out (or null) for every group.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 1000)]
    pub groups: Option<Vec<String>>,
    /// Replaces the groups whose members hold a licence in it ([] for none); left out:
    /// unchanged.
    #[serde(default)]
    #[schema(max_items = 1000)]
    pub licensed_groups: Option<Vec<String>>,
    /// Replaces the users its licence allows (null: unlimited); left out: unchanged, so a
    /// change of addresses never lifts a limit by accident.
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = Option<i64>, minimum = 0)]
    pub seats: Option<Option<i64>>,
}

/// A new application: its password is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CrowdAppCreated {
    /// The application as listed.
    #[serde(flatten)]
    pub app: CrowdAppView,
    /// Its password: enter it as the "Application password" of the Crowd directory in
    /// Bitbucket or Jira. Roster keeps only its hash and never shows it again.
    pub password: String,
    /// What may be wrong but was accepted (a group the served directory does not hold yet).
    pub warnings: Vec<String>,
}

/// An application after a change.
#[derive(Debug, Serialize, ToSchema)]
pub struct CrowdAppChanged {
    /// The application as listed.
    #[serde(flatten)]
    pub app: CrowdAppView,
    /// What may be wrong but was accepted (a group the served directory does not hold yet).
    pub warnings: Vec<String>,
}

/// A new password, shown this once; the old one no longer signs in.
#[derive(Debug, Serialize, ToSchema)]
pub struct CrowdAppPassword {
    /// The application.
    pub name: String,
    /// Its new password: enter it in Bitbucket or Jira in place of the old one. Roster keeps
    /// only its hash and never shows it again.
    pub password: String,
}

fn no_such_app(name: &str) -> ApiError {
    ApiError::not_found(format!(
        "no Crowd application named '{name}'; GET /api/v1/crowd/applications lists them"
    ))
}

/// The application named `name`, or 404.
async fn existing(state: &AppState, name: &str) -> ApiResult<CrowdApp> {
    let n = name.to_string();
    state
        .store
        .blocking(move |s| s.crowd_app(&n))
        .await?
        .ok_or_else(|| no_such_app(name))
}

/// The applications that read the served Crowd directory (never their passwords).
#[utoipa::path(get, path = "/api/v1/crowd/applications", tag = "crowd", security(("token" = ["viewer"])),
    responses((status = 200, body = [CrowdAppView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<CrowdAppView>>> {
    let apps = state.store.blocking(|s| s.crowd_apps()).await?;
    Ok(Json(apps.into_iter().map(Into::into).collect()))
}

/// Creates an application with a generated password; the answer is the only time the
/// password is shown.
#[utoipa::path(post, path = "/api/v1/crowd/applications", tag = "crowd", security(("token" = ["admin"])),
    request_body = CrowdAppInput,
    responses((status = 201, body = CrowdAppCreated), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Json(body): Json<CrowdAppInput>,
) -> ApiResult<(StatusCode, Json<CrowdAppCreated>)> {
    check_name(&body.name)?;
    let settings = check_settings(&body.allowed, body.groups.as_deref())?;
    let licence = check_licence(&body.licensed_groups, body.seats)?;
    let (name, actor, wanted, licensed) = (
        body.name.clone(),
        caller.actor.clone(),
        settings.clone(),
        licence.clone(),
    );
    let made = state
        .store
        .blocking(move |s| -> roster_store::Result<Result<_, String>> {
            if let Some(there) = s.crowd_app(&name)? {
                return Ok(Err(there.name));
            }
            // Read before the password is made: failing here loses no password.
            let warnings = unknown_groups(s, &wanted, &licensed)?;
            let made =
                s.crowd_app_create_licensed(&name, &wanted.allowed, wanted.groups.as_deref(), &licensed, &actor)?;
            Ok(Ok((made, warnings)))
        })
        .await?;
    let ((app, password), warnings) = made.map_err(|there| {
        ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "a Crowd application named '{there}' exists already (names are compared without case); choose another name, or change it with PUT /api/v1/crowd/applications/{there}"
            ),
        )
    })?;
    caller
        .audit(
            &state,
            "crowd-app.create",
            &audit_subject(&app.name),
            Some(&audit_detail(&settings, &licence)),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CrowdAppCreated {
            app: app.into(),
            password,
            warnings,
        }),
    ))
}

/// One application (never its password).
#[utoipa::path(get, path = "/api/v1/crowd/applications/{name}", tag = "crowd", security(("token" = ["viewer"])),
    params(("name" = String, Path, description = "Application name")),
    responses((status = 200, body = CrowdAppView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn show(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<CrowdAppView>> {
    Ok(Json(existing(&state, &name).await?.into()))
}

/// Replaces an application's allow-list and groups, and what it licenses when given; its
/// password stays.
#[utoipa::path(put, path = "/api/v1/crowd/applications/{name}", tag = "crowd", security(("token" = ["admin"])),
    params(("name" = String, Path, description = "Application name")),
    request_body = CrowdAppSettings,
    responses((status = 200, body = CrowdAppChanged), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(name): Path<String>,
    Json(body): Json<CrowdAppSettings>,
) -> ApiResult<Json<CrowdAppChanged>> {
    let settings = check_settings(&body.allowed, body.groups.as_deref())?;
    let app = existing(&state, &name).await?;
    let licence = check_licence(
        body.licensed_groups.as_deref().unwrap_or(&app.licence.licensed_groups),
        body.seats.unwrap_or(app.licence.seats),
    )?;
    let (wanted, licensed, stored_name) = (settings.clone(), licence.clone(), app.name.clone());
    let (app, warnings) = state
        .store
        .blocking(move |s| -> roster_store::Result<_> {
            s.crowd_app_update(&stored_name, &wanted.allowed, wanted.groups.as_deref())?;
            let app = s.crowd_app_set_licence(&stored_name, &licensed)?;
            Ok((app, unknown_groups(s, &wanted, &licensed)?))
        })
        .await?;
    caller
        .audit(
            &state,
            "crowd-app.update",
            &audit_subject(&app.name),
            Some(&audit_detail(&settings, &licence)),
        )
        .await?;
    Ok(Json(CrowdAppChanged {
        app: app.into(),
        warnings,
    }))
}

/// Gives an application a new generated password, shown this once; the old one stops working
/// at once.
#[utoipa::path(post, path = "/api/v1/crowd/applications/{name}/password", tag = "crowd", security(("token" = ["admin"])),
    params(("name" = String, Path, description = "Application name")),
    responses((status = 200, body = CrowdAppPassword), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn rotate(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Json<CrowdAppPassword>> {
    let app = existing(&state, &name).await?;
    let stored_name = app.name.clone();
    let password = state.store.blocking(move |s| s.crowd_app_rotate(&stored_name)).await?;
    caller
        .audit(&state, "crowd-app.rotate", &audit_subject(&app.name), None)
        .await?;
    Ok(Json(CrowdAppPassword {
        name: app.name,
        password,
    }))
}

/// Removes an application: its next request is refused.
#[utoipa::path(delete, path = "/api/v1/crowd/applications/{name}", tag = "crowd", security(("token" = ["admin"])),
    params(("name" = String, Path, description = "Application name")),
    responses((status = 204, description = "Removed"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let app = existing(&state, &name).await?;
    let stored_name = app.name.clone();
    if !state.store.blocking(move |s| s.crowd_app_delete(&stored_name)).await? {
        return Err(no_such_app(&name));
    }
    caller
        .audit(&state, "crowd-app.delete", &audit_subject(&app.name), None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, delete))
        .routes(routes!(rotate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_basic_auth_user_names_and_path_segments() {
        for ok in ["bitbucket", "jira-prod", "bb.eu_1", "A"] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "-bb", "bit bucket", "bb:1", "bb/1", "é", &"a".repeat(MAX_NAME + 1)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn settings_name_the_bad_address_and_keep_each_entry_once() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let ok = check_settings(
            &s(&[" 10.0.0.5", "10.0.0.0/24", "10.0.0.5", "2001:db8::/32"]),
            Some(&s(&["Devs", "devs", " bitbucket-users "])),
        )
        .unwrap();
        assert_eq!(ok.allowed, s(&["10.0.0.5", "10.0.0.0/24", "2001:db8::/32"]));
        assert_eq!(ok.groups, Some(s(&["Devs", "bitbucket-users"])));
        let bad = check_settings(&s(&["10.0.0.5", "10.0.0.0/33"]), None).unwrap_err();
        assert!(bad.to_string().contains("\"10.0.0.0/33\""), "{bad}");
        assert_eq!(check_settings(&[], None), Err(AppInputError::NoAddress));
        assert_eq!(
            check_settings(&s(&["10.0.0.5"]), Some(&[])),
            Err(AppInputError::NoGroups)
        );
        assert!(matches!(
            check_settings(&s(&["10.0.0.5"]), Some(&s(&["  "]))),
            Err(AppInputError::GroupName(_))
        ));
        assert_eq!(check_settings(&s(&["10.0.0.5"]), None).unwrap().groups, None);
    }

    #[test]
    fn a_licence_has_sane_group_names_and_no_negative_seats() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let ok = check_licence(&s(&[" jira-users", "JIRA-USERS", "jira-software"]), Some(0)).unwrap();
        assert_eq!(ok.licensed_groups, s(&["jira-users", "jira-software"]));
        assert_eq!(ok.seats, Some(0), "0 seats is a licence that allows no one");
        let e = check_licence(&[], Some(-3)).unwrap_err();
        assert_eq!(e, AppInputError::Seats(-3));
        assert!(e.to_string().contains("seats: -3 is not a number of seats"), "{e}");
        assert!(matches!(
            check_licence(&s(&["  "]), None),
            Err(AppInputError::LicensedGroupName(_))
        ));
        assert!(matches!(
            check_licence(&s(&[&"g".repeat(MAX_GROUP_NAME + 1)]), None),
            Err(AppInputError::LicensedGroupName(_))
        ));
        assert_eq!(check_licence(&[], None).unwrap(), AppLicence::default());
    }
}
