//! The `ldap` connector end to end: a real, throwaway OpenLDAP server (`slapd` on 127.0.0.1,
//! StartTLS or LDAPS with a test CA) → Roster → the Bitbucket simulator.

use crate::common;

use common::Configured;
use common::changes::working_day;
use common::ldap::{LdapWorld, fetch_of};
use common::world::{assert_bitbucket_matches, bitbucket, groups_of};
use roster_sim::directory::Directory;
use roster_sim::slapd::{GroupClass, Layout, SizeLimit};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openldap_directory_syncs_exactly_over_start_tls_with_nested_groups_and_a_second_run_writes_nothing() {
    let d = Directory::generate(300, 40, 3);
    let mut w = LdapWorld::new(&d, bitbucket()).await;
    w.source.settings = "page_size = 100".into();
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let f = fetch_of(&r);
    assert!(f.complete && f.mode == "full", "{f:?}");
    assert_eq!((f.users, f.groups), (300, 40), "{f:?}");
    assert_bitbucket_matches(&w.bb, &d);
    // Paged: three pages of users at least, and the groups; never one search per user.
    assert!((4..=20).contains(&f.idp_requests), "{f:?}");

    w.assert_a_second_run_writes_nothing().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_run_after_ldapmodify_reads_only_the_changes_and_writes_exactly_them() {
    let mut d = Directory::generate(200, 24, 2);
    let w = LdapWorld::new(&d, bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    let writes_before = w.bb_writes();

    let changes = working_day(&mut d, &w);

    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    let f = fetch_of(&r);
    assert_eq!(f.mode, "incremental", "{f:?}");
    assert_bitbucket_matches(&w.bb, &d);
    assert_eq!(w.bb_writes() - writes_before, changes, "{:?}", r.summary.planned);
    // Only what changed is read: five users (four names, one email) and the five groups
    // joined or left, not the 200 users and 24 groups.
    assert_eq!((f.users, f.groups), (5, 5), "{f:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uid_renamed_in_the_directory_is_one_rename_in_bitbucket_with_its_groups_kept() {
    let mut d = Directory::generate(60, 8, 2);
    let w = LdapWorld::new(&d, bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    // Incrementally: the entry keeps its entryUUID, so it is the same person.
    let id = d.users[7].id.clone();
    let old = d.users[7].username.clone();
    let groups = groups_of(&w.bb, &old);
    assert!(!groups.is_empty());
    w.rename_user(&mut d, &id, "renamed.seven");
    let r = w.sync_incremental().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(fetch_of(&r).mode, "incremental");
    assert_eq!(
        r.summary.planned.get("rename-user"),
        Some(&1),
        "{:?}",
        r.summary.planned
    );
    assert_eq!(groups_of(&w.bb, "renamed.seven"), groups);
    assert!(!w.bb.lock().users().contains_key(&old));
    assert_bitbucket_matches(&w.bb, &d);
    // And in a full read.
    let id = d.users[9].id.clone();
    let old = d.users[9].username.clone();
    let groups = groups_of(&w.bb, &old);
    w.rename_user(&mut d, &id, "renamed.nine");
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(
        r.summary.planned.get("rename-user"),
        Some(&1),
        "{:?}",
        r.summary.planned
    );
    assert_eq!(groups_of(&w.bb, "renamed.nine"), groups);
    assert_bitbucket_matches(&w.bb, &d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_size_limit_below_the_directory_is_an_incomplete_fetch_that_deprovisions_nobody() {
    let d = Directory::generate(120, 10, 2);
    let w = LdapWorld::new(&d, bitbucket()).await;
    assert_eq!(w.sync().await.state, "succeeded");
    // Two people leave; a complete read would deprovision them.
    let gone = [d.users[20].username.clone(), d.users[21].username.clone()];
    for uid in &gone {
        w.idp.delete_user(uid).expect("ldapdelete");
    }
    // The server now stops every search of the reader after 50 entries (OpenLDAP's default
    // is 500), paged or not: the other 68 users would look gone.
    w.idp.set_reader_size_limit(SizeLimit::Entries(50)).unwrap();
    let writes = w.bb_writes();
    let r = w.sync().await;
    assert_eq!(r.state, "failed", "{:?}", r.summary);
    let f = fetch_of(&r);
    assert!(!f.complete, "{f:?}");
    let why = f.error.clone().unwrap_or_default();
    assert!(why.contains("size limit") && why.contains("50"), "{why}");
    assert!(why.contains("size.prtotal=unlimited"), "says how to lift it: {why}");
    assert_eq!(w.bb_writes(), writes, "{:?}", r.summary.planned);
    let licensed = w.bb.lock().licensed_users();
    assert!(licensed.contains(&gone[0]), "nobody was deprovisioned");
    // Lifted, the same run deprovisions exactly the two who left.
    w.idp.set_reader_size_limit(SizeLimit::Unlimited).unwrap();
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_eq!(
        r.summary.planned.get("deactivate-user"),
        Some(&2),
        "{:?}",
        r.summary.planned
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_bind_password_fails_check_with_the_reason_and_a_run_writes_nothing() {
    let d = Directory::generate(20, 3, 1);
    let mut w = LdapWorld::new(&d, bitbucket()).await;
    w.source.bind_password = "not-the-password".into();
    let c = w.check().await;
    assert!(!c.ok);
    let why = c.error.unwrap();
    assert!(
        why.contains("cn=reader") && why.contains("invalid credentials"),
        "{why}"
    );
    assert!(!why.contains("not-the-password"), "{why}");
    let r = w.sync().await;
    assert_eq!(r.state, "failed");
    assert_eq!(w.bb_writes(), 0);
    assert!(r.plan_id.is_none(), "nothing was planned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldaps_works_with_the_servers_ca_and_an_untrusted_certificate_is_named() {
    let d = Directory::generate(30, 4, 2);
    let mut w = LdapWorld::new(&d, bitbucket()).await;
    w.source.url = w.idp.ldaps_url();
    let c = w.check().await;
    assert!(c.ok, "{:?}", c.error);
    assert_eq!(w.sync().await.state, "succeeded");
    assert_bitbucket_matches(&w.bb, &d);
    // Without the test CA the system's roots do not trust the server.
    w.source.ca_certificate = None;
    let untrusted = "the server's certificate is not signed by a trusted CA (UnknownIssuer)";
    let why = w.check().await.error.unwrap();
    assert!(why.contains(untrusted), "{why}");
    // And StartTLS the same.
    w.source.url = w.idp.ldap_url();
    let why = w.check().await.error.unwrap();
    assert!(why.contains(untrusted), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_names_and_posix_groups_are_read_as_groups_of_names_are() {
    let d = Directory::generate(80, 10, 2);
    // Groups that hold no groups can be posixGroups (memberUid holds uids only).
    let heads = d.head_groups();
    let leaves: Vec<String> = d
        .groups
        .iter()
        .map(|g| g.id.clone())
        .filter(|g| !d.memberships.iter().any(|m| &m.group == g && m.member_is_group))
        .collect();
    assert!(leaves.len() >= 2, "{leaves:?}");
    let layout = Layout::default()
        .with(&heads[0], GroupClass::GroupOfUniqueNames)
        .with(&leaves[0], GroupClass::PosixGroup)
        .with(&leaves[1], GroupClass::PosixGroup);
    let w = LdapWorld::with(&d, &layout, SizeLimit::Unlimited, bitbucket()).await;
    let r = w.sync().await;
    assert_eq!(r.state, "succeeded", "{:?}", r.summary.warnings);
    assert_bitbucket_matches(&w.bb, &d);
}
