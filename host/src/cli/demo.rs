//! `roster demo`: the simulated Bitbucket, a generated sample directory, one sync with its
//! summary, then the service keeps running so the state can be explored.

use std::net::SocketAddr;

use anyhow::Context;
use roster::sync::SyncOptions;
use roster_sim::bitbucket::{BbState, BitbucketSim, Permission};
use roster_sim::directory::Directory;

use super::progress::Bars;
use crate::Cli;

pub async fn run(cli: &Cli, users: usize, listen: SocketAddr, once: bool) -> anyhow::Result<()> {
    let dir = cli.data_dir.join("demo");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let directory = Directory::generate(users, (users / 10).max(8), 3);
    directory.write_json(&dir.join("directory.json"))?;

    let mut state = BbState::new();
    state.max_users = Some(users as u32 + 50);
    state.add_group("bitbucket-users", &[]);
    state.grant_group("bitbucket-users", Permission::LicensedUser);
    // An account from another directory whose name collides with an IdP user: reported, left alone.
    state.add_user("user000003", "Someone Else", "someone@ldap.example", false);
    let sim = BitbucketSim::start(state).await;
    let config = dir.join("roster.toml");
    let text = roster_sim::scenario::file_source_config(&sim.url(), ".", "directory.json", "deprovision = \"disable\"");
    std::fs::write(
        &config,
        format!("# Written by `roster demo`: one file source into the simulated Bitbucket.\n{text}"),
    )?;
    println!("Bitbucket simulator: {} (admin / password)", sim.url());
    println!(
        "sample directory: {} users, {} groups, {} memberships in {}",
        directory.users.len(),
        directory.groups.len(),
        directory.memberships.len(),
        dir.join("directory.json").display()
    );
    let engine = super::engine_for(cli, &config).await?;
    let opts = SyncOptions {
        trigger: "demo".into(),
        actor: super::actor(),
        ..SyncOptions::default()
    };
    let report = engine.sync(&opts, &Bars::default()).await?;
    super::sync::print_report_pub(&report);
    {
        let s = sim.lock();
        println!(
            "Bitbucket now has {} users, {} groups, {} licensed",
            s.users().len(),
            s.groups().len(),
            s.licensed_users().len()
        );
    }
    if once {
        return Ok(());
    }
    println!("\nTry, in another terminal:");
    println!("  roster --config {} sync --dry-run", config.display());
    println!("  roster --config {} runs list", config.display());
    println!(
        "  roster --config {} runs export {} --format csv",
        config.display(),
        report.run_id
    );
    crate::serve(cli, listen).await
}
