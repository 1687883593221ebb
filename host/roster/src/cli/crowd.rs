//! `roster crowd apps`: the applications (Bitbucket, Jira, …) that read the Crowd directory
//! Roster serves, managed on the store directly like `roster token`. The checks are the API's
//! (`roster_serve::api::crowd_apps`), so both refuse the same things.

use clap::{Args, Subcommand};
use roster_serve::api::crowd_apps::{
    AppSettings, audit_detail, audit_subject, check_licence, check_name, check_settings, licence_text, unknown_groups,
};
use roster_store::{AppLicence, CrowdApp, Store};

use super::time::Clock;

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
        /// A group whose members hold a licence in the application (Bitbucket's groups with
        /// "Bitbucket User", Jira's application-access groups); repeat or list several.
        #[arg(long = "licensed-group", value_name = "GROUP", num_args = 1..)]
        licensed_groups: Vec<String>,
        /// The users the application's licence allows; the licence guard refuses a plan that
        /// would license more. Default: unlimited.
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        seats: Option<i64>,
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
        #[command(flatten)]
        licensed: LicensedArg,
        #[command(flatten)]
        seats: SeatsArg,
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

/// The licensed groups `roster crowd apps set` gives: a list, none, or (neither) unchanged.
#[derive(Args)]
#[group(multiple = false)]
pub struct LicensedArg {
    /// Replaces the groups whose members hold a licence in it; repeat or list several.
    #[arg(long = "licensed-group", value_name = "GROUP", num_args = 1..)]
    licensed_groups: Vec<String>,
    /// It licenses no one Roster counts.
    #[arg(long)]
    no_licensed_groups: bool,
}

/// The seats `roster crowd apps set` gives: a number, unlimited, or (neither) unchanged.
#[derive(Args)]
#[group(multiple = false)]
pub struct SeatsArg {
    /// Replaces the users its licence allows.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    seats: Option<i64>,
    /// Its licence allows any number of users.
    #[arg(long)]
    unlimited: bool,
}

/// Runs `roster crowd …` on the store.
pub fn run(store: &Store, clock: &Clock, command: &CrowdCommand) -> anyhow::Result<()> {
    let CrowdCommand::Apps { command } = command;
    match command {
        AppsCommand::List => list(store, clock),
        AppsCommand::Add {
            name,
            allow,
            groups,
            licensed_groups,
            seats,
            server_url,
        } => add(
            store,
            name,
            allow,
            groups,
            &check_licence(licensed_groups, *seats)?,
            server_url.as_deref(),
        ),
        AppsCommand::Set {
            name,
            allow,
            groups,
            licensed,
            seats,
        } => set(store, name, allow, groups, licensed, seats),
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

fn list(store: &Store, clock: &Clock) -> anyhow::Result<()> {
    let apps = store.crowd_apps()?;
    if apps.is_empty() {
        println!("no Crowd applications; add one with `roster crowd apps add NAME --allow ADDR`");
        return Ok(());
    }
    println!(
        "{:<20} {:<32} {:<32} {:<24} {:<9} {:<16} LAST USED",
        "NAME", "ALLOWED", "GROUPS", "LICENSED GROUPS", "SEATS", "CREATED BY"
    );
    for a in apps {
        let used = clock.show_or(a.last_used_at, "never");
        let licensed = if a.licence.licensed_groups.is_empty() {
            "-".to_string()
        } else {
            a.licence.licensed_groups.join(",")
        };
        let seats = a.licence.seats.map_or("unlimited".to_string(), |n| n.to_string());
        println!(
            "{:<20} {:<32} {:<32} {:<24} {:<9} {:<16} {used}",
            a.name,
            a.allowed.join(","),
            groups_text(a.groups.as_deref()),
            licensed,
            seats,
            a.created_by
        );
    }
    Ok(())
}

/// Prints the warnings about groups the served directory does not hold.
fn warn_unknown(store: &Store, settings: &AppSettings, licence: &AppLicence) -> anyhow::Result<()> {
    for w in unknown_groups(store, settings, licence)? {
        eprintln!("warning: {w}");
    }
    Ok(())
}

fn add(
    store: &Store,
    name: &str,
    allow: &[String],
    groups: &[String],
    licence: &AppLicence,
    server_url: Option<&str>,
) -> anyhow::Result<()> {
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
    let warnings = unknown_groups(store, &settings, licence)?;
    let actor = super::actor();
    let (app, password) =
        store.crowd_app_create_licensed(name, &settings.allowed, settings.groups.as_deref(), licence, &actor)?;
    store.audit(
        &actor,
        "local",
        "crowd-app.create",
        &audit_subject(&app.name),
        Some(&audit_detail(&settings, licence)),
    )?;
    println!("{password}");
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let url = server_url.unwrap_or("http(s)://ROSTER-HOST:PORT (the address Bitbucket reaches `roster serve` at)");
    eprintln!(
        "Crowd application '{}' created, allowed from {}, seeing {}; {}.\n\
         Its password (the line above) is shown this once: Roster keeps only its hash.\n\
         In Bitbucket: Administration → User directories → Add directory → Atlassian Crowd:\n\
         \x20 Server URL            {url}\n\
         \x20 Application name      {}\n\
         \x20 Application password  the password above",
        app.name,
        app.allowed.join(", "),
        groups_text(app.groups.as_deref()),
        licence_text(&app.licence),
        app.name,
    );
    Ok(())
}

fn set(
    store: &Store,
    name: &str,
    allow: &[String],
    groups: &GroupsArg,
    licensed: &LicensedArg,
    seats: &SeatsArg,
) -> anyhow::Result<()> {
    if allow.is_empty()
        && groups.groups.is_empty()
        && !groups.all_groups
        && licensed.licensed_groups.is_empty()
        && !licensed.no_licensed_groups
        && seats.seats.is_none()
        && !seats.unlimited
    {
        anyhow::bail!(
            "nothing to change: give --allow ADDR…, --group GROUP…, --all-groups, --licensed-group GROUP…, --no-licensed-groups, --seats N or --unlimited"
        );
    }
    let app = existing(store, name)?;
    let allow = if allow.is_empty() { &app.allowed[..] } else { allow };
    let groups = match (groups.all_groups, &groups.groups[..]) {
        (true, _) => None,
        (false, []) => app.groups.as_deref(),
        (false, list) => Some(list),
    };
    let settings = check_settings(allow, groups)?;
    let licensed_groups = match (licensed.no_licensed_groups, &licensed.licensed_groups[..]) {
        (true, _) => &[][..],
        (false, []) => &app.licence.licensed_groups[..],
        (false, list) => list,
    };
    let seats = match (seats.unlimited, seats.seats) {
        (true, _) => None,
        (false, None) => app.licence.seats,
        (false, n) => n,
    };
    let licence = check_licence(licensed_groups, seats)?;
    store.crowd_app_update(&app.name, &settings.allowed, settings.groups.as_deref())?;
    let app = store.crowd_app_set_licence(&app.name, &licence)?;
    store.audit(
        &super::actor(),
        "local",
        "crowd-app.update",
        &audit_subject(&app.name),
        Some(&audit_detail(&settings, &licence)),
    )?;
    warn_unknown(store, &settings, &licence)?;
    println!(
        "Crowd application '{}' is allowed from {}, sees {}; {}",
        app.name,
        app.allowed.join(", "),
        groups_text(app.groups.as_deref()),
        licence_text(&app.licence)
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
