//! A SCIM test world: PyPI's `scim2-server` (a real SCIM 2.0 service, started on 127.0.0.1
//! and filled through its SCIM API), the Bitbucket simulator, the `scim` plugin, a store, and
//! engines built from a configuration an administrator would write.

use roster_serve::RunReport;
use roster_sim::bitbucket::BbState;
use roster_sim::directory::Directory;
use roster_sim::scenario::{ScimSource, scim_source_config};
use roster_sim::scim2_server::{Scim2Error, Scim2Server};

use super::world::{SourceConfig, SourceWorld};

/// The bearer token the service accepts.
pub const TOKEN: &str = "scim-token-7d1f0c9a2b";

impl SourceConfig for ScimSource {
    fn config(&self, bb_url: &str, target_extra: &str) -> String {
        scim_source_config(self, bb_url, target_extra)
    }
}

/// The scim source's world: the service is `idp`.
pub type ScimWorld = SourceWorld<Scim2Server, ScimSource>;

/// `scim2-server` holding `d`; `None` (a skip, said on stderr) only when it is not installed
/// and pip cannot install it.
pub async fn server(d: &Directory) -> Option<Scim2Server> {
    let s = match Scim2Server::start(TOKEN).await {
        Ok(s) => s,
        Err(e @ Scim2Error::Missing { .. }) => {
            eprintln!("SKIPPED: {e}");
            return None;
        }
        Err(e) => panic!("{e}"),
    };
    s.load(d).await.expect("the directory loads into scim2-server");
    Some(s)
}

impl ScimWorld {
    /// A world over `scim2-server` holding `d` with `settings` in the source's table; `None`
    /// when the test is skipped (see [`server`]).
    pub async fn new(d: &Directory, bb: BbState, settings: &str) -> Option<ScimWorld> {
        let s = server(d).await?;
        Some(Self::over(s, bb, settings).await)
    }

    /// A world over a server already started and filled.
    pub async fn over(s: Scim2Server, bb: BbState, settings: &str) -> ScimWorld {
        SourceWorld::assemble(&[("scim", "scim.wasm")], s, bb, 10, |s, _| ScimSource {
            origin: s.origin(),
            base_url: s.base_url(),
            token: TOKEN.into(),
            settings: settings.into(),
            ..ScimSource::default()
        })
        .await
    }
}

/// The run's report for the scim source's fetch.
pub fn fetch_of(r: &RunReport) -> &roster_directory::FetchReport {
    super::fetch_named(r, "scim")
}
