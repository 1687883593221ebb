//! `roster crowd apps`: the applications (Bitbucket, Jira, …) that read the Crowd directory
//! Roster serves, managed on the store directly like `roster token`. The checks are the API's
//! (`roster_serve::api::crowd_apps`), so both refuse the same things.

use clap::{Args, Subcommand};
use roster_serve::api::crowd_apps::{
    AppSettings, audit_detail, audit_subject, check_name, check_settings, unknown_groups,
};
use roster_store::{CrowdApp, Store};

/// `roster crowd …`.
#[derive(Subcommand)]
pub enum CrowdCommand {
    /// The applications that read Roster's Crowd directory: each signs in with its name and a
    /// password Roster generates, from the addresses it is allowed.
    Apps {
        #[command(subcommand)]
        command: AppsCommand,
    },
}

/// `roster crowd apps …`.
#[derive(Subcommand)]
pub enum AppsCommand {
    /// Lists the applications (never their passwords).
    List,
    /// Creates an application and prints its password once; only its hash is kept.
    Add {
        /// The application name it signs in with (letters, digits, '.', '_', '-').
        name: String,
        /// An address (10.0.0.5) or CIDR range (10.0.0.0/24) it may connect from; repeat or
        /// list several.
        #[arg(long = "allow", value_name = "ADDR", required = true, num_args = 1..)]
        allow: Vec<String>,
        /// A group it sees, with its members; repeat or list several. Default: every group.
        #[arg(long = "group", value_name = "GROUP", num_args = 1..)]
        groups: Vec<String>,
        /// Roster's address as Bitbucket reaches it, for the instructions printed.
        #[arg(long, value_name = "URL")]
        server_url: Option<String>,
    },
    /// Changes an application's allow-list or groups; its password stays.
    Set {
        /// The application.
        name: String,
        /// Replaces the allow-list: addresses and CIDR ranges.
        #[arg(long = "allow", value_name = "ADDR", num_args = 1..)]
        allow: Vec<String>,
        #[command(flatten)]
        groups: GroupsArg,
    },
    /// Gives an application a new password and prints it once; the old one stops working.
    Rotate {
        /// The application.
        name: String,
    },
    /// Removes an application: its next request is refused.
    Remove {
        /// The application.
        name: String,
    },
}

/// The groups `roster crowd apps set` gives: a list, every group, or (neither) unchanged.
#[derive(Args)]
#[group(multiple = false)]
pub struct GroupsArg {
    /// Replaces the groups it sees; repeat or list several.
    #[arg(long = "group", value_name = "GROUP", num_args = 1..)]
    groups: Vec<String>,
    /// Lets it see every group.
    #[arg(long)]
    all_groups: bool,
}

/// Runs `roster crowd …` on the store.
pub fn run(store: &Store, command: &CrowdCommand) -> anyhow::Result<()> {
    let CrowdCommand::Apps { command } = command;
    match command {
        AppsCommand::List => list(store),
        AppsCommand::Add {
            name,
            allow,
            groups,
            server_url,
        } => add(store, name, allow, groups, server_url.as_deref()),
        AppsCommand::Set { name, allow, groups } => set(store, name, allow, groups),
        AppsCommand::Rotate { name } => rotate(store, name),
        AppsCommand::Remove { name } => remove(store, name),
    }
}

/// The application named `name`, or an error saying how to find the names.
fn existing(store: &Store, name: &str) -> anyhow::Result<CrowdApp> {
    store
        .crowd_app(name)?
        .ok_or_else(|| anyhow::anyhow!("no Crowd application named '{name}'; see `roster crowd apps list`"))
}

fn groups_text(groups: Option<&[String]>) -> String {
    groups.map_or_else(|| "every group".to_string(), |g| g.join(", "))
}

fn list(store: &Store) -> anyhow::Result<()> {
    let apps = store.crowd_apps()?;
    if apps.is_empty() {
        println!("no Crowd applications; add one with `roster crowd apps add NAME --allow ADDR`");
        return Ok(());
    }
    println!(
        "{:<20} {:<32} {:<32} {:<16} LAST USED",
        "NAME", "ALLOWED", "GROUPS", "CREATED BY"
    );
    for a in apps {
        let used = a
            .last_used_at
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map_or_else(|| "never".to_string(), |d| d.format("%Y-%m-%d %H:%M").to_string());
        println!(
            "{:<20} {:<32} {:<32} {:<16} {used}",
            a.name,
            a.allowed.join(","),
            groups_text(a.groups.as_deref()),
            a.created_by
        );
    }
    Ok(())
}

/// Prints the warnings about groups the served directory does not hold.
fn warn_unknown(store: &Store, settings: &AppSettings) -> anyhow::Result<()> {
    for w in unknown_groups(store, settings)? {
        eprintln!("warning: {w}");
    }
    Ok(())
}

fn add(store: &Store, name: &str, allow: &[String], groups: &[String], server_url: Option<&str>) -> anyhow::Result<()> {
    check_name(name)?;
    let groups = (!groups.is_empty()).then_some(groups);
    let settings = check_settings(allow, groups)?;
    if let Some(there) = store.crowd_app(name)? {
        anyhow::bail!(
            "a Crowd application named '{}' exists already (names are compared without case); change it with `roster crowd apps set {}`, or give it a new password with `roster crowd apps rotate {}`",
            there.name,
            there.name,
            there.name
        );
    }
    // Read before the password is made: failing here loses no password.
    let warnings = unknown_groups(store, &settings)?;
    let actor = super::actor();
    let (app, password) = store.crowd_app_create(name, &settings.allowed, settings.groups.as_deref(), &actor)?;
    store.audit(
        &actor,
        "local",
        "crowd-app.create",
        &audit_subject(&app.name),
        Some(&audit_detail(&settings)),
    )?;
    println!("{password}");
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let url = server_url.unwrap_or("http(s)://ROSTER-HOST:PORT (the address Bitbucket reaches `roster serve` at)");
    eprintln!(
        "Crowd application '{}' created, allowed from {}, seeing {}.\n\
         Its password (the line above) is shown this once: Roster keeps only its hash.\n\
         In Bitbucket: Administration → User directories → Add directory → Atlassian Crowd:\n\
         \x20 Server URL            {url}\n\
         \x20 Application name      {}\n\
         \x20 Application password  the password above",
        app.name,
        app.allowed.join(", "),
        groups_text(app.groups.as_deref()),
        app.name,
    );
    Ok(())
}

fn set(store: &Store, name: &str, allow: &[String], groups: &GroupsArg) -> anyhow::Result<()> {
    if allow.is_empty() && groups.groups.is_empty() && !groups.all_groups {
        anyhow::bail!("nothing to change: give --allow ADDR…, --group GROUP… or --all-groups");
    }
    let app = existing(store, name)?;
    let allow = if allow.is_empty() { &app.allowed[..] } else { allow };
    let groups = match (groups.all_groups, &groups.groups[..]) {
        (true, _) => None,
        (false, []) => app.groups.as_deref(),
        (false, list) => Some(list),
    };
    let settings = check_settings(allow, groups)?;
    let app = store.crowd_app_update(&app.name, &settings.allowed, settings.groups.as_deref())?;
    store.audit(
        &super::actor(),
        "local",
        "crowd-app.update",
        &audit_subject(&app.name),
        Some(&audit_detail(&settings)),
    )?;
    warn_unknown(store, &settings)?;
    println!(
        "Crowd application '{}' is allowed from {} and sees {}",
        app.name,
        app.allowed.join(", "),
        groups_text(app.groups.as_deref())
    );
    Ok(())
}

fn rotate(store: &Store, name: &str) -> anyhow::Result<()> {
    let app = existing(store, name)?;
    let password = store.crowd_app_rotate(&app.name)?;
    store.audit(
        &super::actor(),
        "local",
        "crowd-app.rotate",
        &audit_subject(&app.name),
        None,
    )?;
    println!("{password}");
    eprintln!(
        "Crowd application '{}' has a new password (the line above), shown this once; the old one no longer signs in. Enter it as the Application password of its Crowd directory in Bitbucket (Administration → User directories → Edit).",
        app.name
    );
    Ok(())
}

fn remove(store: &Store, name: &str) -> anyhow::Result<()> {
    let app = existing(store, name)?;
    if !store.crowd_app_delete(&app.name)? {
        anyhow::bail!("no Crowd application named '{name}'; see `roster crowd apps list`");
    }
    store.audit(
        &super::actor(),
        "local",
        "crowd-app.delete",
        &audit_subject(&app.name),
        None,
    )?;
    println!("Crowd application '{}' removed: its next request is refused", app.name);
    Ok(())
}
