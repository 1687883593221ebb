//! Roster configurations for the simulators, as the tests, benchmarks and demo use them: a
//! `file`, an `entra` or `okta` (with the `normalize` transform), a `crowd`, an `ldap` or a
//! `onelogin` source syncing into a simulated Bitbucket.

/// `roster.toml` text: source `hr` reads `file` in the folder `files`; the target is the
/// Bitbucket simulator at `sim_url` (admin/password), with every active user in
/// `bitbucket-users`. `target_extra` adds lines to the `[target]` table.
pub fn file_source_config(sim_url: &str, files: &str, file: &str, target_extra: &str) -> String {
    format!(
        r#"[[source]]
id = "hr"
plugin = "file"
files = "{files}"
settings = {{ path = "{file}" }}

[[source.transforms]]
plugin = "normalize"

{}"#,
        target_config(sim_url, target_extra)
    )
}

/// An `entra` source reading the Graph simulator.
#[derive(Debug, Clone, Default)]
pub struct EntraSource {
    /// The Graph simulator's URL (Graph under `/v1.0`, tokens under `/{tenant}/…`).
    pub graph_url: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Application (client) id.
    pub client_id: String,
    /// The client secret's value.
    pub secret: String,
    /// Where tokens come from when not from `graph_url` (a proxy in front of Graph only).
    pub login_url: Option<String>,
    /// Lines added to the connector's settings table (`scope = "groups"`, …).
    pub settings: String,
    /// Lines added to the `[[source]]` table (`budget = …`, `limits = …`).
    pub source: String,
    /// Tables added after the client secret (`[[source.secrets]]` for a certificate).
    pub secrets: String,
}

/// `roster.toml` text: source `entra` reads the Graph simulator with the `entra` connector
/// (UPNs stripped of their domain by `normalize`) into the Bitbucket simulator at `sim_url`;
/// `target_extra` adds lines to `[target]`.
pub fn entra_source_config(e: &EntraSource, sim_url: &str, target_extra: &str) -> String {
    let EntraSource {
        graph_url,
        tenant_id,
        client_id,
        secret,
        login_url,
        settings,
        source,
        secrets,
    } = e;
    let login_url = login_url.as_deref().unwrap_or(graph_url);
    format!(
        r#"[[source]]
id = "entra"
plugin = "entra"
# The simulator listens on plain HTTP on 127.0.0.1; a real tenant needs neither opt-in.
allow_hosts = ["{graph_url}", "{login_url}"]
allow_insecure_http = true
allow_private_addresses = true
{source}

[source.settings]
tenant_id = "{tenant_id}"
client_id = "{client_id}"
graph_url = "{graph_url}"
login_url = "{login_url}"
{settings}

[[source.secrets]]
name = "client_secret"
value = "{secret}"
hosts = ["{login_url}"]
use = {{ form = "client_secret" }}
path = "/{tenant_id}/oauth2/"
{secrets}

[[source.transforms]]
plugin = "normalize"
settings = {{ strip_domain = true }}

{}"#,
        target_config(sim_url, target_extra)
    )
}

/// An `okta` source reading the Okta simulator with an API token.
#[derive(Debug, Clone, Default)]
pub struct OktaSource {
    /// The org URL (the simulator's, or a proxy's in front of it): the API is under `/api/v1`.
    pub org_url: String,
    /// The API token's value (the secret `api_token`; the connector sends `SSWS <token>`).
    pub api_token: String,
    /// Lines added to the connector's settings table (`scope = "groups"`, …).
    pub settings: String,
    /// Lines added to the `[[source]]` table (`budget = …`, `limits = …`).
    pub source: String,
    /// Tables added after the API token (`[[source.secrets]]` for a service app's key).
    pub secrets: String,
}

/// `roster.toml` text: source `okta` reads the Okta simulator with the `okta` connector (logins
/// stripped of their domain by `normalize`) into the Bitbucket simulator at `sim_url`;
/// `target_extra` adds lines to `[target]`.
pub fn okta_source_config(o: &OktaSource, sim_url: &str, target_extra: &str) -> String {
    let OktaSource {
        org_url,
        api_token,
        settings,
        source,
        secrets,
    } = o;
    format!(
        r#"[[source]]
id = "okta"
plugin = "okta"
# The simulator listens on plain HTTP on 127.0.0.1; a real org needs neither opt-in.
allow_hosts = ["{org_url}"]
allow_insecure_http = true
allow_private_addresses = true
{source}

[source.settings]
org_url = "{org_url}"
{settings}

[[source.secrets]]
name = "api_token"
value = "{api_token}"
hosts = ["{org_url}"]
use = {{ header = "Authorization" }}
{secrets}

[[source.transforms]]
plugin = "normalize"
settings = {{ strip_domain = true }}

{}"#,
        target_config(sim_url, target_extra)
    )
}

/// A `google` source reading the Google Workspace simulator as a service account with
/// domain-wide delegation.
#[derive(Debug, Clone, Default)]
pub struct GoogleSource {
    /// The simulator's URL (the Directory API is under `/admin/directory/v1`, tokens at `/token`).
    pub api_url: String,
    /// The token endpoint when it is not `{api_url}/token` (the API read through a proxy).
    pub token_url: Option<String>,
    /// The service account's email.
    pub service_account: String,
    /// The admin it acts as.
    pub admin_email: String,
    /// The service account's JSON key file.
    pub key_file: String,
    /// Lines added to the connector's settings table (`nested_groups = "google"`, …).
    pub settings: String,
    /// Lines added to the `[[source]]` table (`budget = …`, `limits = …`).
    pub source: String,
}

/// `roster.toml` text: source `google` reads the Google simulator with the `google` connector
/// (usernames the local part of `primaryEmail`) into the Bitbucket simulator at `sim_url`;
/// `target_extra` adds lines to `[target]`.
pub fn google_source_config(g: &GoogleSource, sim_url: &str, target_extra: &str) -> String {
    let GoogleSource {
        api_url,
        token_url,
        service_account,
        admin_email,
        key_file,
        settings,
        source,
    } = g;
    let token_url = token_url.clone().unwrap_or_else(|| format!("{api_url}/token"));
    let token_origin = url::Url::parse(&token_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| api_url.clone());
    format!(
        r#"[[source]]
id = "google"
plugin = "google"
# The simulator listens on plain HTTP on 127.0.0.1; Google needs neither opt-in.
allow_hosts = ["{api_url}", "{token_origin}"]
allow_insecure_http = true
allow_private_addresses = true
{source}

[source.settings]
service_account = "{service_account}"
admin_email = "{admin_email}"
username = "email-local-part"
api_url = "{api_url}"
token_url = "{token_url}"
{settings}

[[source.secrets]]
name = "service_account_key"
kind = "signing-key"
file = "{key_file}"
client_id = "{service_account}"
subject = "{admin_email}"
audience = "{token_url}"

{}"#,
        target_config(sim_url, target_extra)
    )
}

/// A `crowd` source reading the Jira/Crowd simulator.
#[derive(Debug, Clone, Default)]
pub struct CrowdSource {
    /// The simulator's URL (the server URL an administrator gives: the API is under
    /// `/rest/usermanagement/1`).
    pub server_url: String,
    /// The application's name.
    pub application: String,
    /// The application's password.
    pub password: String,
    /// Lines added to the connector's settings table (`use_nested_groups = false`, …).
    pub settings: String,
    /// Lines added to the `[[source]]` table (`budget = …`, `limits = …`).
    pub source: String,
}

/// `roster.toml` text: source `jira` reads the Jira/Crowd simulator with the `crowd` connector
/// into the Bitbucket simulator at `sim_url`; `target_extra` adds lines to `[target]`.
pub fn crowd_source_config(c: &CrowdSource, sim_url: &str, target_extra: &str) -> String {
    let CrowdSource {
        server_url,
        application,
        password,
        settings,
        source,
    } = c;
    format!(
        r#"[[source]]
id = "jira"
plugin = "crowd"
# Jira and Crowd live inside the network; the simulator also speaks plain HTTP.
allow_hosts = ["{server_url}"]
allow_insecure_http = true
allow_private_addresses = true
{source}

[source.settings]
server_url = "{server_url}"
application_name = "{application}"
{settings}

[[source.secrets]]
name = "application_password"
value = "{password}"
hosts = ["{server_url}"]
use = {{ header = "Authorization" }}

{}"#,
        target_config(sim_url, target_extra)
    )
}

/// An `ldap` source reading a directory server (the tests' throwaway slapd).
#[derive(Debug, Clone, Default)]
pub struct LdapSource {
    /// `ldap://host:port` (StartTLS) or `ldaps://host:port`; also the allowed origin and the
    /// bind password's host.
    pub url: String,
    /// The PEM of the CA that issued the server's certificate, trusted instead of the system's.
    pub ca_certificate: Option<String>,
    /// The DN Roster binds as.
    pub bind_dn: String,
    /// Its password (the secret's value).
    pub bind_password: String,
    /// The suffix searched.
    pub base_dn: String,
    /// Lines added to the connector's settings table (`page_size = 50`, `transport = …`, …).
    pub settings: String,
    /// Lines added to the `[[source]]` table (`budget = …`, `allow_plain_ldap = true`, …).
    pub source: String,
}

impl LdapSource {
    /// The source for `server` over StartTLS, trusting its CA and binding as its reader.
    pub fn for_server(server: &crate::slapd::Slapd) -> LdapSource {
        LdapSource {
            url: server.ldap_url(),
            ca_certificate: Some(server.ca_pem().to_string()),
            bind_dn: crate::slapd::READER_DN.into(),
            bind_password: crate::slapd::READER_PASSWORD.into(),
            base_dn: crate::slapd::BASE_DN.into(),
            settings: String::new(),
            source: String::new(),
        }
    }
}

/// `roster.toml` text: source `ldap` reads the directory at `l.url` with the `ldap` connector
/// (OpenLDAP flavour, the bind password a secret bound to the bind DN) into the Bitbucket
/// simulator at `sim_url`; `target_extra` adds lines to `[target]`.
pub fn ldap_source_config(l: &LdapSource, sim_url: &str, target_extra: &str) -> String {
    let LdapSource {
        url,
        ca_certificate,
        bind_dn,
        bind_password,
        base_dn,
        settings,
        source,
    } = l;
    let ca = ca_certificate
        .as_deref()
        .map(|pem| format!("ca_certificate = \"\"\"\n{}\n\"\"\"\n", pem.trim()))
        .unwrap_or_default();
    format!(
        r#"[[source]]
id = "ldap"
plugin = "ldap"
# The directory lives inside the network (here: on 127.0.0.1).
allow_hosts = ["{url}"]
allow_private_addresses = true
{source}

[source.settings]
url = "{url}"
{ca}bind_dn = "{bind_dn}"
bind_password = "bind_password"
flavour = "openldap"
base_dn = "{base_dn}"
{settings}

[[source.secrets]]
name = "bind_password"
value = "{bind_password}"
hosts = ["{url}"]
use = {{ ldap_bind = "{bind_dn}" }}

{}"#,
        target_config(sim_url, target_extra)
    )
}

/// A `onelogin` source reading the OneLogin simulator.
#[derive(Debug, Clone, Default)]
pub struct OneLoginSource {
    /// The simulator's URL (the account's API domain: tokens under `/auth/oauth2/`, the API under
    /// `/api/`).
    pub api_url: String,
    /// The API credential's client id.
    pub client_id: String,
    /// Its client secret's value.
    pub secret: String,
    /// Lines added to the connector's settings table (`groups_from = "groups"`, …).
    pub settings: String,
    /// Lines added to the `[[source]]` table (`budget = …`, `limits = …`).
    pub source: String,
}

/// `roster.toml` text: source `onelogin` reads the OneLogin simulator with the `onelogin`
/// connector (the client secret, as the password of the token request's Basic credentials,
/// sent only to the token endpoint) into the Bitbucket simulator at `sim_url`; `target_extra`
/// adds lines to `[target]`.
pub fn onelogin_source_config(o: &OneLoginSource, sim_url: &str, target_extra: &str) -> String {
    let OneLoginSource {
        api_url,
        client_id,
        secret,
        settings,
        source,
    } = o;
    format!(
        r#"[[source]]
id = "onelogin"
plugin = "onelogin"
# The simulator listens on plain HTTP on 127.0.0.1; a real account needs neither opt-in.
allow_hosts = ["{api_url}"]
allow_insecure_http = true
allow_private_addresses = true
{source}

[source.settings]
api_url = "{api_url}"
client_id = "{client_id}"
client_secret = "client_secret"
{settings}

[[source.secrets]]
name = "client_secret"
value = "{secret}"
hosts = ["{api_url}"]
use = {{ header = "Authorization" }}
path = "/auth/oauth2/"

{}"#,
        target_config(sim_url, target_extra)
    )
}

/// The `[target]` table for the Bitbucket simulator at `sim_url`.
pub fn target_config(sim_url: &str, target_extra: &str) -> String {
    format!(
        r#"[target]
url = "{sim_url}"
username = "admin"
password = {{ value = "password" }}
default_groups = ["bitbucket-users"]
{target_extra}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_onelogin_secret_goes_only_to_the_token_endpoint_in_the_authorization_header() {
        let text = onelogin_source_config(
            &OneLoginSource {
                api_url: "http://127.0.0.1:8097".into(),
                client_id: "cid".into(),
                secret: "s3cret".into(),
                settings: "groups_from = \"roles-and-groups\"".into(),
                source: "budget = 10".into(),
            },
            "http://127.0.0.1:7990",
            "",
        );
        let doc: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
        let source = &doc["source"][0];
        assert_eq!(source["plugin"].as_str(), Some("onelogin"));
        assert_eq!(source["budget"].as_integer(), Some(10));
        assert_eq!(source["allow_hosts"][0].as_str(), Some("http://127.0.0.1:8097"));
        let settings = &source["settings"];
        assert_eq!(settings["api_url"].as_str(), Some("http://127.0.0.1:8097"));
        assert_eq!(settings["client_id"].as_str(), Some("cid"));
        assert_eq!(settings["groups_from"].as_str(), Some("roles-and-groups"));
        let secret = &source["secrets"][0];
        assert_eq!(secret["name"].as_str(), settings["client_secret"].as_str());
        assert_eq!(secret["value"].as_str(), Some("s3cret"));
        assert_eq!(secret["use"]["header"].as_str(), Some("Authorization"));
        assert_eq!(secret["hosts"][0].as_str(), Some("http://127.0.0.1:8097"));
        assert_eq!(
            secret["path"]
                .as_str()
                .map(|p| crate::onelogin::TOKEN_PATH.starts_with(p)),
            Some(true)
        );
        assert_eq!(doc["target"]["url"].as_str(), Some("http://127.0.0.1:7990"));
    }
    use crate::slapd::{READER_DN, SizeLimit, Slapd};

    #[test]
    fn the_okta_source_sends_its_api_token_as_the_authorization_header_to_the_org_only() {
        let text = okta_source_config(
            &OktaSource {
                org_url: "http://127.0.0.1:4010".into(),
                api_token: "00abc".into(),
                settings: "scope = \"groups\"\ngroups = [\"team-00000\"]".into(),
                ..OktaSource::default()
            },
            "http://127.0.0.1:7990",
            "",
        );
        let doc: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
        let source = &doc["source"][0];
        assert_eq!(source["plugin"].as_str(), Some("okta"));
        assert_eq!(source["settings"]["org_url"].as_str(), Some("http://127.0.0.1:4010"));
        assert_eq!(source["settings"]["scope"].as_str(), Some("groups"));
        let secret = &source["secrets"][0];
        assert_eq!(secret["name"].as_str(), Some("api_token"));
        assert_eq!(secret["value"].as_str(), Some("00abc"));
        assert_eq!(secret["use"]["header"].as_str(), Some("Authorization"));
        assert_eq!(secret["hosts"][0].as_str(), Some("http://127.0.0.1:4010"));
        assert_eq!(
            source["transforms"][0]["settings"]["strip_domain"].as_bool(),
            Some(true)
        );
    }

    #[test]
    fn the_ldap_source_binds_as_the_reader_over_start_tls_trusting_the_servers_ca() {
        let server = Slapd::start(SizeLimit::Unlimited).unwrap();
        let text = ldap_source_config(
            &LdapSource {
                settings: "page_size = 50".into(),
                ..LdapSource::for_server(&server)
            },
            "http://127.0.0.1:7990",
            "",
        );
        let doc: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
        let source = &doc["source"][0];
        let url = server.ldap_url();
        assert_eq!(source["allow_hosts"][0].as_str(), Some(url.as_str()));
        let settings = &source["settings"];
        assert_eq!(settings["url"].as_str(), Some(url.as_str()));
        assert_eq!(
            settings["ca_certificate"].as_str().map(str::trim),
            Some(server.ca_pem().trim())
        );
        assert_eq!(settings["bind_dn"].as_str(), Some(READER_DN));
        assert_eq!(settings["page_size"].as_integer(), Some(50));
        let secret = &source["secrets"][0];
        assert_eq!(secret["name"].as_str(), settings["bind_password"].as_str());
        assert_eq!(secret["use"]["ldap_bind"].as_str(), Some(READER_DN));
        assert_eq!(secret["hosts"][0].as_str(), Some(url.as_str()));
    }
}

/// A `keycloak` source reading the Keycloak simulator.
#[derive(Debug, Clone, Default)]
pub struct KeycloakSource {
    /// The simulator's origin, `http://127.0.0.1:PORT` (what `allow_hosts` and the secret name).
    pub server_url: String,
    /// The connector's `base_url`: the origin, with `/auth` for a Keycloak before 17.
    pub base_url: String,
    /// The realm.
    pub realm: String,
    /// The confidential client's id.
    pub client_id: String,
    /// Its client secret's value.
    pub secret: String,
    /// Lines added to the connector's settings table (`group_names = "name"`, …).
    pub settings: String,
    /// Lines added to the `[[source]]` table (`budget = …`, `limits = …`).
    pub source: String,
}

/// `roster.toml` text: source `keycloak` reads the Keycloak simulator with the `keycloak`
/// connector (the client secret as a form field, sent only to the realm's token endpoint) into
/// the Bitbucket simulator at `sim_url`; `target_extra` adds lines to `[target]`.
pub fn keycloak_source_config(k: &KeycloakSource, sim_url: &str, target_extra: &str) -> String {
    let KeycloakSource {
        server_url,
        base_url,
        realm,
        client_id,
        secret,
        settings,
        source,
    } = k;
    let token_path = format!(
        "{}/realms/{realm}/protocol/openid-connect/",
        base_url.strip_prefix(server_url.as_str()).unwrap_or("")
    );
    format!(
        r#"[[source]]
id = "keycloak"
plugin = "keycloak"
# The simulator listens on plain HTTP on 127.0.0.1; a real server needs neither opt-in.
allow_hosts = ["{server_url}"]
allow_insecure_http = true
allow_private_addresses = true
{source}

[source.settings]
base_url = "{base_url}"
realm = "{realm}"
client_id = "{client_id}"
client_secret = "client_secret"
{settings}

[[source.secrets]]
name = "client_secret"
value = "{secret}"
hosts = ["{server_url}"]
use = {{ form = "client_secret" }}
path = "{token_path}"

{}"#,
        target_config(sim_url, target_extra)
    )
}

/// A `scim` source reading a SCIM 2.0 service with a bearer token.
#[derive(Debug, Clone, Default)]
pub struct ScimSource {
    /// The service's origin, `http://127.0.0.1:PORT` (what `allow_hosts` and the secret name).
    pub origin: String,
    /// The connector's `base_url`, the SCIM base URL.
    pub base_url: String,
    /// The bearer token's value (the secret `token`).
    pub token: String,
    /// Lines added to the connector's settings table (`page_size = 7`, …).
    pub settings: String,
    /// Lines added to the `[[source]]` table (`budget = …`, `limits = …`).
    pub source: String,
}

/// `roster.toml` text: source `scim` reads a SCIM service with the `scim` connector (the
/// token in the `Authorization` header, sent only to the service) into the Bitbucket simulator
/// at `sim_url`; `target_extra` adds lines to `[target]`.
pub fn scim_source_config(s: &ScimSource, sim_url: &str, target_extra: &str) -> String {
    let ScimSource {
        origin,
        base_url,
        token,
        settings,
        source,
    } = s;
    format!(
        r#"[[source]]
id = "scim"
plugin = "scim"
# The service listens on plain HTTP on 127.0.0.1; a real one needs neither opt-in.
allow_hosts = ["{origin}"]
allow_insecure_http = true
allow_private_addresses = true
{source}

[source.settings]
base_url = "{base_url}"
{settings}

[[source.secrets]]
name = "token"
value = "{token}"
hosts = ["{origin}"]
use = {{ header = "Authorization" }}

{}"#,
        target_config(sim_url, target_extra)
    )
}
