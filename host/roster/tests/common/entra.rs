//! An Entra test world: the Graph simulator with a tenant, the Bitbucket simulator, the
//! `entra` and `normalize` plugins, a store, and engines built from a configuration an
//! administrator would write.

use roster_serve::RunReport;
use roster_sim::bitbucket::BbState;
use roster_sim::directory::{DirUser, Directory};
use roster_sim::graph::{GraphGroup, GraphSim, GraphState, GraphUser};
use roster_sim::scenario::{EntraSource, entra_source_config};

use super::changes::IdpEdits;
use super::world::{SourceConfig, SourceWorld};

pub const TENANT: &str = "8f0e4b1c-2a3d-4e5f-9a6b-7c8d9e0f1a2b";
pub const DOMAIN: &str = "contoso.example";
pub const CLIENT: &str = "4a5b6c7d-8e9f-4012-8345-6789abcdef01";
pub const SECRET: &str = "Ab1~graph-client-secret-value";
pub const ALL_PERMISSIONS: &[&str] = &["User.Read.All", "GroupMember.Read.All", "Application.Read.All"];

/// A tenant holding `d` (UPN = username@contoso.example), with Roster's app registration.
pub fn tenant(d: &Directory) -> GraphState {
    let mut g = GraphState::from_directory(d, TENANT, DOMAIN);
    g.add_client(CLIENT, Some(SECRET), ALL_PERMISSIONS);
    g
}

impl SourceConfig for EntraSource {
    fn config(&self, bb_url: &str, target_extra: &str) -> String {
        entra_source_config(self, bb_url, target_extra)
    }
}

/// The entra source's world: the simulator is `idp`.
pub type EntraWorld = SourceWorld<GraphSim, EntraSource>;

impl EntraWorld {
    pub async fn new(graph: GraphState, bb: BbState) -> EntraWorld {
        let idp = GraphSim::start(graph).await;
        SourceWorld::assemble(
            &[("entra", "entra.wasm"), ("normalize", "normalize.wasm")],
            idp,
            bb,
            7,
            |idp, _| EntraSource {
                graph_url: idp.url(),
                tenant_id: TENANT.into(),
                client_id: CLIENT.into(),
                secret: SECRET.into(),
                ..EntraSource::default()
            },
        )
        .await
    }

    /// Graph requests answered since the last call (token requests excluded), by route.
    pub fn take_graph_calls(&self) -> (u64, std::collections::BTreeMap<String, u64>) {
        super::api_calls(std::mem::take(&mut self.idp.lock().calls))
    }
}

/// The run's report for the entra source's fetch.
pub fn fetch_of(r: &RunReport) -> &roster_directory::FetchReport {
    super::fetch_named(r, "entra")
}

/// The Enterprise Application's application id in [`add_app`].
pub const APP_ID: &str = "0a1b2c3d-0000-4000-8000-00000000b17b";

/// Adds an Enterprise Application to `g`: group bb-a (assigned) ⊃ bb-b ⊃ bb-c, users ann (bb-a),
/// ben (bb-b), cat (bb-c), dan (assigned directly), and eve in an unassigned group `marketing`
/// (with ann). Returns the service principal's id.
pub fn add_app(g: &mut GraphState) -> String {
    let user = |g: &mut GraphState, name: &str| {
        g.add_user(GraphUser {
            user_principal_name: format!("{name}@{DOMAIN}"),
            mail: Some(format!("{name}@{DOMAIN}")),
            display_name: name.to_uppercase(),
            account_enabled: true,
            user_type: "Member".into(),
            ..GraphUser::default()
        })
    };
    let group = |g: &mut GraphState, name: &str| {
        g.add_group(GraphGroup {
            display_name: name.into(),
            security_enabled: true,
            ..GraphGroup::default()
        })
    };
    let (a, b, c, other) = (
        group(g, "bb-a"),
        group(g, "bb-b"),
        group(g, "bb-c"),
        group(g, "marketing"),
    );
    let (ann, ben, cat, dan, eve) = (
        user(g, "ann"),
        user(g, "ben"),
        user(g, "cat"),
        user(g, "dan"),
        user(g, "eve"),
    );
    g.add_member(&a, &b);
    g.add_member(&b, &c);
    g.add_member(&a, &ann);
    g.add_member(&b, &ben);
    g.add_member(&c, &cat);
    g.add_member(&other, &eve);
    g.add_member(&other, &ann);
    let sp = g.add_service_principal(APP_ID, "Bitbucket");
    g.assign(&sp, &a);
    g.assign(&sp, &dan);
    sp
}

/// A tenant holding only [`add_app`]'s objects, with Roster's app registration.
pub fn app_tenant() -> (GraphState, String) {
    let mut g = GraphState::new(TENANT, DOMAIN);
    g.add_client(CLIENT, Some(SECRET), ALL_PERMISSIONS);
    let sp = add_app(&mut g);
    (g, sp)
}

impl IdpEdits for EntraWorld {
    fn set_display_name(&self, u: &DirUser, name: &str) {
        self.idp.lock().update_user(&u.id, |x| x.display_name = name.into());
    }

    fn set_email(&self, u: &DirUser, email: &str) {
        self.idp.lock().update_user(&u.id, |x| x.mail = Some(email.into()));
    }

    fn join(&self, _: &Directory, group: &str, user: &str) {
        self.idp.lock().add_member(group, user);
    }

    fn leave(&self, _: &Directory, group: &str, user: &str) {
        self.idp.lock().remove_member(group, user);
    }
}
