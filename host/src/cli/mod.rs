//! Subcommands that need more than a few lines.

pub mod demo;
pub mod preview;
pub mod progress;
pub mod sync;

use std::sync::Arc;

use anyhow::Context;
use roster::store::Store;
use roster::store::crypto::Key;
use roster::sync::Engine;

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

/// The store in the data folder (created on first use), with the secret key.
pub fn store(cli: &Cli) -> anyhow::Result<Arc<Store>> {
    std::fs::create_dir_all(&cli.data_dir)
        .with_context(|| format!("creating the data folder {}", cli.data_dir.display()))?;
    let key = Key::load(
        std::env::var("ROSTER_SECRET_KEY").ok().as_deref(),
        &cli.data_dir.join("secret.key"),
    )?;
    Ok(Arc::new(Store::open(&cli.data_dir.join("roster.db"), key)?))
}

/// The engine for the configuration file, with the plugins loaded.
pub async fn engine(cli: &Cli) -> anyhow::Result<Engine> {
    engine_for(cli, &cli.config).await
}

/// The engine for a given configuration file, with the sources and target created through
/// the API (the same configuration `roster serve` runs with).
pub async fn engine_for(cli: &Cli, config: &std::path::Path) -> anyhow::Result<Engine> {
    let store = store(cli)?;
    let config = roster::service::merged_config(config, &store)?;
    let rt = crate::runtime(cli)?;
    for r in rt.reload().await {
        if let roster::runtime::LoadReport::Failed { error, .. } = r {
            eprintln!("warning: {error}");
        }
    }
    Ok(Engine::new(store, rt, config)?)
}
