//! Subcommands that need more than a few lines.

pub mod crowd;
pub mod demo;
pub mod preview;
pub mod progress;
pub mod sync;
pub mod time;

use std::sync::Arc;

use anyhow::Context;
use roster_engine::TargetKinds;
use roster_serve::Runner;
use roster_store::Store;
use roster_store::crypto::KeySource;

use crate::Cli;

/// Who runs the command, for the audit log.
pub fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "unknown".into())
    )
}

/// The data folder, created 0700 (or tightened to it, with a warning) before anything is
/// written into it.
pub fn data_dir(cli: &Cli) -> anyhow::Result<&std::path::Path> {
    roster_store::prepare_data_dir(&cli.data_dir)
        .with_context(|| format!("creating the data folder {}", cli.data_dir.display()))?;
    Ok(&cli.data_dir)
}

/// Where the key that seals secrets comes from: `ROSTER_SECRET_KEY`, else the key file.
pub fn key_source(cli: &Cli) -> KeySource {
    KeySource::from_env_or(cli.data_dir.join("secret.key"))
}

/// The store in the data folder (created on first use), with the secret key; a key that does
/// not open the secrets sealed there, or a missing key file while some are, is refused.
pub fn store(cli: &Cli) -> anyhow::Result<Arc<Store>> {
    let dir = data_dir(cli)?;
    let store = Store::open_with(&dir.join("roster.db"), &key_source(cli))?;
    // A run whose process was killed would otherwise show `running` forever.
    for id in store.interrupt_orphans()? {
        tracing::warn!(
            run_id = id,
            "run {id} was interrupted: its process ended before the run did"
        );
    }
    Ok(Arc::new(store))
}

/// `roster secrets reset`: forgets the sealed secrets so a new key can seal from now on.
pub fn reset_secrets(cli: &Cli) -> anyhow::Result<()> {
    let dir = data_dir(cli)?;
    let db = dir.join("roster.db");
    let forgotten = Store::reset_sealed(&db, &key_source(cli))?;
    let store = Store::open_with(&db, &key_source(cli))?;
    let detail = format!(
        "sources: [{}]; targets: [{}]",
        forgotten.sources.join(", "),
        forgotten.targets.join(", ")
    );
    store.audit(&actor(), "local", "secrets.reset", "sealed secrets", Some(&detail))?;
    println!(
        "forgot the sealed secrets of {} source(s){}",
        forgotten.sources.len(),
        match forgotten.targets.as_slice() {
            [] => String::new(),
            [t] => format!(" and the target '{t}' created through the API"),
            ts => format!(" and the targets {} created through the API", ts.join(", ")),
        }
    );
    println!(
        "sources from roster.toml are sealed again at the next start; give the secrets of sources created through the API again (PUT /api/v1/sources/ID with `secrets`), and create the target again (PUT /api/v1/targets/ID) if there was one"
    );
    Ok(())
}

/// The kinds of target this binary writes to: the one place that names them.
pub fn target_kinds() -> TargetKinds {
    TargetKinds::new([
        Arc::new(roster_target_bitbucket_dc::Kind) as Arc<dyn roster_engine::TargetKind>,
        Arc::new(roster_target_crowd_directory::Kind),
        Arc::new(roster_target_bitbucket_cloud::Kind),
    ])
}

/// The runner for the configuration file, with the plugins loaded.
pub async fn runner(cli: &Cli) -> anyhow::Result<Runner> {
    runner_for(cli, &cli.config).await
}

/// The runner for a given configuration file, with the sources and target created through
/// the API (the same configuration `roster serve` runs with).
pub async fn runner_for(cli: &Cli, config: &std::path::Path) -> anyhow::Result<Runner> {
    let store = store(cli)?;
    let kinds = target_kinds();
    let config = roster_serve::service::merged_config(config, &store, &kinds)?;
    let rt = crate::runtime(cli, &store)?;
    for r in rt.reload().await {
        if let roster_runtime::LoadReport::Failed { error, .. } = r {
            eprintln!("warning: {error}");
        }
    }
    // A source naming a plugin that is not there is refused now, not at its first run.
    for s in &config.sources {
        s.check_plugins(&rt).map_err(anyhow::Error::msg)?;
    }
    Ok(Runner::new(store, rt, config, &kinds)?)
}
