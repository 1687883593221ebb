//! An LDAP test world: a real, throwaway OpenLDAP server (`roster_sim::slapd`) holding a sample
//! directory, the Bitbucket simulator, the `ldap` plugin, a store, and engines built from a
//! configuration an administrator would write (StartTLS with the server's CA, the reader's
//! password a secret bound to its DN).

use roster_directory::FetchReport;
use roster_serve::RunReport;
use roster_sim::bitbucket::BbState;
use roster_sim::directory::{DirUser, Directory};
use roster_sim::scenario::{LdapSource, ldap_source_config};
use roster_sim::slapd::{Layout, SizeLimit, Slapd};

use super::changes::IdpEdits;
use super::world::{SourceConfig, SourceWorld};

impl SourceConfig for LdapSource {
    fn config(&self, bb_url: &str, target_extra: &str) -> String {
        ldap_source_config(self, bb_url, target_extra)
    }
}

/// The ldap source's world: the throwaway server is `idp`.
pub type LdapWorld = SourceWorld<Slapd, LdapSource>;

impl LdapWorld {
    /// A server holding `d` (groups as `groupOfNames`, loaded with `ldapadd`), the reader
    /// without a size limit.
    pub async fn new(d: &Directory, bb: BbState) -> LdapWorld {
        Self::with(d, &Layout::default(), SizeLimit::Unlimited, bb).await
    }

    /// A server holding `d` laid out as `layout`, the reader limited to `limit`.
    pub async fn with(d: &Directory, layout: &Layout, limit: SizeLimit, bb: BbState) -> LdapWorld {
        let (d, layout) = (d.clone(), layout.clone());
        // slapd and the tools are processes this thread waits for: off the async workers.
        let slapd = tokio::task::spawn_blocking(move || {
            let s = Slapd::start(limit).expect("slapd starts");
            s.load_with(&d, &layout).expect("the directory loads");
            s
        })
        .await
        .expect("starting slapd");
        Self::over(slapd, bb).await
    }

    /// A world over a server already started and loaded (`Slapd::start_loaded` for
    /// benchmark-sized directories).
    pub async fn over(slapd: Slapd, bb: BbState) -> LdapWorld {
        SourceWorld::assemble(&[("ldap", "ldap.wasm")], slapd, bb, 6, |s, _| LdapSource::for_server(s)).await
    }

    /// Renames user `id` of `d` to uid `new` in the server (a modrdn: same entryUUID) and in `d`.
    pub fn rename_user(&self, d: &mut Directory, id: &str, new: &str) {
        let u = d
            .users
            .iter_mut()
            .find(|u| u.id == id)
            .expect("a user of the directory");
        self.idp.rename_user(&u.username, new).expect("ldapmodrdn");
        u.username = new.to_string();
    }
}

/// The run's report for the ldap source's fetch.
pub fn fetch_of(r: &RunReport) -> &FetchReport {
    super::fetch_named(r, "ldap")
}

impl IdpEdits for LdapWorld {
    fn set_display_name(&self, u: &DirUser, name: &str) {
        self.idp
            .set_display_name(&u.username, name)
            .expect("ldapmodify displayName");
    }

    fn set_email(&self, u: &DirUser, email: &str) {
        self.idp.set_email(&u.username, email).expect("ldapmodify mail");
    }

    fn join(&self, d: &Directory, group: &str, user: &str) {
        self.idp
            .add_user_to_group(&d.group_name(group), d.username(user))
            .expect("ldapmodify: add a member");
    }

    fn leave(&self, d: &Directory, group: &str, user: &str) {
        self.idp
            .remove_user_from_group(&d.group_name(group), d.username(user))
            .expect("ldapmodify: remove a member");
    }
}
