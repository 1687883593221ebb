//! Subcommands that need more than a few lines.

pub mod demo;
pub mod preview;
pub mod progress;
pub mod sync;

use std::sync::Arc;

use anyhow::Context;
use roster_engine::TargetKinds;
use roster_serve::Runner;
use roster_store::Store;
use roster_store::crypto::Key;

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

/// The secret key (`ROSTER_SECRET_KEY`, or the key file in the data folder, created on first use).
pub fn secret_key(cli: &Cli) -> anyhow::Result<Key> {
    std::fs::create_dir_all(&cli.data_dir)
        .with_context(|| format!("creating the data folder {}", cli.data_dir.display()))?;
    Ok(Key::load(
        std::env::var("ROSTER_SECRET_KEY").ok().as_deref(),
        &cli.data_dir.join("secret.key"),
    )?)
}

/// The store in the data folder (created on first use), with the secret key.
pub fn store(cli: &Cli) -> anyhow::Result<Arc<Store>> {
    let key = secret_key(cli)?;
    Ok(Arc::new(Store::open(&cli.data_dir.join("roster.db"), key)?))
}

/// The kinds of target this binary writes to: the one place that names them.
pub fn target_kinds() -> TargetKinds {
    TargetKinds::new([Arc::new(roster_target_bitbucket_dc::Kind) as Arc<dyn roster_engine::TargetKind>])
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
    let rt = crate::runtime(cli)?;
    for r in rt.reload().await {
        if let roster_runtime::LoadReport::Failed { error, .. } = r {
            eprintln!("warning: {error}");
        }
    }
    Ok(Runner::new(store, rt, config, &kinds)?)
}
