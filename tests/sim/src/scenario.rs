//! Roster configurations for the simulators, as the tests, benchmarks and demo use them: a
//! `file`, an `entra` (with the `normalize` transform) or a `crowd` source syncing into a
//! simulated Bitbucket.

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

/// The `[target]` table for the Bitbucket simulator at `sim_url`.
fn target_config(sim_url: &str, target_extra: &str) -> String {
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
