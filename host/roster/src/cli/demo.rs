//! `roster demo`: a simulated identity provider (a Microsoft Entra ID tenant behind the Graph
//! simulator, a Jira user server, or a throwaway OpenLDAP server) and a simulated Bitbucket, a check of the source, a full
//! sync, a few changes in the identity provider and an incremental sync that reads only them;
//! then the service keeps running so the state can be explored.

use std::net::SocketAddr;

use anyhow::Context;
use roster_directory::FetchMode;
use roster_model::Trigger;
use roster_serve::{RunReport, Runner, SyncOptions};
use roster_sim::bitbucket::{BbState, BitbucketSim, Permission};
use roster_sim::crowd::{CrowdSim, CrowdState, Product};
use roster_sim::directory::Directory;
use roster_sim::graph::{GraphSim, GraphState};
use roster_sim::scenario::{
    CrowdSource, EntraSource, LdapSource, crowd_source_config, entra_source_config, ldap_source_config,
};
use roster_sim::slapd::{SizeLimit, Slapd};

use super::progress::Bars;
use crate::Cli;

const TENANT: &str = "8f0e4b1c-2a3d-4e5f-9a6b-7c8d9e0f1a2b";
const CLIENT: &str = "4a5b6c7d-8e9f-4012-8345-6789abcdef01";
const SECRET: &str = "demo-client-secret";
const APPLICATION: &str = "roster";
const APPLICATION_PASSWORD: &str = "demo-application-password";

/// Which identity provider the demo simulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoIdp {
    /// A Microsoft Entra ID tenant, read through Microsoft Graph (`entra` connector).
    Entra,
    /// A Jira user server, read through Crowd REST as Bitbucket's own directory reads it
    /// (`crowd` connector).
    Jira,
    /// An OpenLDAP server (a throwaway `slapd` on 127.0.0.1, StartTLS with its own CA), read
    /// through the host's LDAP import (`ldap` connector). Needs Debian's `slapd` and
    /// `ldap-utils`, installed when missing if Roster runs as root.
    Ldap,
}

/// The running identity-provider simulator.
enum Idp {
    Entra(GraphSim),
    Jira(CrowdSim),
    Ldap(Box<Slapd>),
}

impl Idp {
    async fn start(kind: DemoIdp, directory: &Directory) -> anyhow::Result<Idp> {
        Ok(match kind {
            DemoIdp::Entra => {
                let mut tenant = GraphState::from_directory(directory, TENANT, "contoso.example");
                tenant.add_client(CLIENT, Some(SECRET), &["User.Read.All", "GroupMember.Read.All"]);
                Idp::Entra(GraphSim::start(tenant).await)
            }
            DemoIdp::Jira => {
                let mut jira = CrowdState::from_directory(directory, Product::Jira);
                jira.add_application(APPLICATION, APPLICATION_PASSWORD, &["127.0.0.1", "::1"]);
                Idp::Jira(CrowdSim::start(jira).await)
            }
            DemoIdp::Ldap => {
                let directory = directory.clone();
                // slapd and the LDAP tools are processes to wait for: off the async workers.
                let slapd = tokio::task::spawn_blocking(move || -> anyhow::Result<Slapd> {
                    let slapd = Slapd::start(SizeLimit::Unlimited).context("starting slapd")?;
                    slapd.load(&directory).context("loading the directory into slapd")?;
                    Ok(slapd)
                })
                .await??;
                Idp::Ldap(Box::new(slapd))
            }
        })
    }

    /// The configuration's text for this source into the Bitbucket at `bb_url`.
    fn config(&self, bb_url: &str) -> String {
        let target = "deprovision = \"disable\"";
        match self {
            Idp::Entra(graph) => {
                let source = EntraSource {
                    graph_url: graph.url(),
                    tenant_id: TENANT.into(),
                    client_id: CLIENT.into(),
                    secret: SECRET.into(),
                    ..EntraSource::default()
                };
                format!(
                    "# Written by `roster demo`: a simulated Entra ID tenant into a simulated Bitbucket.\n{}",
                    entra_source_config(&source, bb_url, target)
                )
            }
            Idp::Jira(jira) => {
                let source = CrowdSource {
                    server_url: jira.url(),
                    application: APPLICATION.into(),
                    password: APPLICATION_PASSWORD.into(),
                    ..CrowdSource::default()
                };
                format!(
                    "# Written by `roster demo`: a simulated Jira user server into a simulated Bitbucket.\n{}",
                    crowd_source_config(&source, bb_url, target)
                )
            }
            Idp::Ldap(slapd) => format!(
                "# Written by `roster demo`: a throwaway OpenLDAP server into a simulated Bitbucket.\n{}",
                ldap_source_config(&LdapSource::for_server(slapd), bb_url, target)
            ),
        }
    }

    fn describe(&self) -> String {
        match self {
            Idp::Entra(graph) => format!("Entra ID (Graph) simulator: {}/v1.0, tenant {TENANT}", graph.url()),
            Idp::Jira(jira) => format!(
                "Jira user server simulator: {}/rest/usermanagement/1, application {APPLICATION}",
                jira.url()
            ),
            Idp::Ldap(slapd) => format!(
                "OpenLDAP server (slapd, StartTLS): {}, base {}, bind as {}",
                slapd.ldap_url(),
                roster_sim::slapd::BASE_DN,
                roster_sim::slapd::READER_DN
            ),
        }
    }

    /// A working day: two people renamed (display names), one leaves, one joins a group.
    fn change(&self, directory: &Directory) -> anyhow::Result<()> {
        // Someone not yet in the first group, not even through a nested one.
        let first = &directory.groups[0];
        let members = directory.expected_members().remove(&first.name).unwrap_or_default();
        let joiner = directory.users[13..].iter().find(|u| !members.contains(&u.username));
        match self {
            Idp::Entra(graph) => {
                let mut g = graph.lock();
                for u in &directory.users[10..12] {
                    g.update_user(&u.id, |x| x.display_name = format!("{} (renamed)", x.display_name));
                }
                g.soft_delete_user(&directory.users[12].id);
                if let Some(u) = joiner {
                    g.add_member(&first.id, &u.id);
                }
                g.calls.clear();
            }
            Idp::Jira(jira) => {
                let mut j = jira.lock();
                for u in &directory.users[10..12] {
                    j.update_user(&u.username, |x| {
                        x.display_name = format!("{} (renamed)", x.display_name)
                    });
                }
                j.update_user(&directory.users[12].username, |x| x.active = false);
                if let Some(u) = joiner {
                    j.add_user_to_group(&u.username, &first.name);
                }
            }
            Idp::Ldap(slapd) => {
                for u in &directory.users[10..12] {
                    slapd.set_display_name(&u.username, &format!("{} (renamed)", u.display_name))?;
                }
                // OpenLDAP has no standard "disabled" flag: the person's entry is deleted.
                slapd.delete_user(&directory.users[12].username)?;
                if let Some(u) = joiner {
                    slapd.add_user_to_group(&first.name, &u.username)?;
                }
            }
        }
        Ok(())
    }
}

async fn sync(runner: &Runner, fetch: FetchMode) -> anyhow::Result<RunReport> {
    let opts = SyncOptions {
        fetch,
        ..SyncOptions::new(Trigger::Demo, &super::actor())
    };
    let report = runner.sync(&opts, &Bars::default()).await?;
    super::sync::print_report_pub(&report);
    Ok(report)
}

pub async fn run(cli: &Cli, idp: DemoIdp, users: usize, listen: SocketAddr, once: bool) -> anyhow::Result<()> {
    let dir = super::data_dir(cli)?.join("demo");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let directory = Directory::generate(users, (users / 10).max(8), 3);
    let idp = Idp::start(idp, &directory).await?;

    let mut state = BbState::new();
    state.max_users = Some(users as u32 + 50);
    state.add_group("bitbucket-users", &[]);
    state.grant_group("bitbucket-users", Permission::LicensedUser);
    // An account from another directory whose name collides with an IdP user: reported, left alone.
    state.add_user("user000003", "Someone Else", "someone@ldap.example", false);
    let bb = BitbucketSim::start(state).await;

    let config = dir.join("roster.toml");
    std::fs::write(&config, idp.config(&bb.url()))?;
    println!("{}", idp.describe());
    println!("Bitbucket simulator: {} (admin / password)", bb.url());
    println!(
        "directory: {} users, {} groups (nested 3 deep), {} memberships; configuration in {}",
        directory.users.len(),
        directory.groups.len(),
        directory.memberships.len(),
        config.display()
    );
    let runner = super::runner_for(cli, &config).await?;
    for c in runner.check(&[]).await? {
        match &c.error {
            None => println!("\n== check: source {} ({}) is ready ({} ms)", c.source, c.plugin, c.ms),
            Some(e) => anyhow::bail!("source {} failed its check: {e}", c.source),
        }
    }

    println!("\n== full sync");
    sync(&runner, FetchMode::Full).await?;

    println!("\n== in the identity provider: 2 people renamed, 1 leaves, 1 joins a group");
    idp.change(&directory)?;
    println!("\n== incremental sync (changes only)");
    let report = sync(&runner, FetchMode::Incremental).await?;
    let requests: u64 = report.summary.fetch.iter().map(|f| f.idp_requests).sum();
    println!("  identity-provider requests for the changes: {requests}");
    if let Idp::Ldap(_) = idp {
        println!(
            "\n== full sync: an LDAP directory shows an incremental read no deletions; the scheduled full fetch (`full_every_hours`) finds the person who left"
        );
        sync(&runner, FetchMode::Full).await?;
    }
    {
        let s = bb.lock();
        println!(
            "\nBitbucket now has {} users, {} groups, {} licensed",
            s.users().len(),
            s.groups().len(),
            s.licensed_users().len()
        );
    }
    if once {
        return Ok(());
    }
    println!("\nTry, in another terminal:");
    println!("  roster --config {} check", config.display());
    println!("  roster --config {} sync --dry-run", config.display());
    println!("  roster --config {} why user000013 team-00000", config.display());
    println!("  roster --config {} runs list", config.display());
    println!(
        "  roster --config {} runs export {} --format csv",
        config.display(),
        report.run_id
    );
    crate::serve(cli, &config, listen, false).await
}
