//! Roster configurations for the simulators: one `file` source (with the `normalize`
//! transform) syncing into a simulated Bitbucket, as the tests, benchmarks and demo use it.

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

[target]
url = "{sim_url}"
username = "admin"
password = {{ value = "password" }}
default_groups = ["bitbucket-users"]
{target_extra}
"#
    )
}
