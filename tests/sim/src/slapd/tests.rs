use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpStream;

use super::*;

fn started(d: &Directory) -> Slapd {
    let s = Slapd::start(SizeLimit::Unlimited).unwrap();
    s.load(d).unwrap();
    s
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// uid → (displayName, mail).
type Users = BTreeMap<String, (String, String)>;
/// Group name → usernames of its members, subgroups flattened.
type Members = BTreeMap<String, BTreeSet<String>>;

/// What the server holds, read back as the root DN.
fn read_back(s: &Slapd) -> (Users, Members) {
    let users: Users = s
        .entries("(objectClass=inetOrgPerson)", &["uid", "displayName", "mail"])
        .unwrap()
        .into_iter()
        .map(|e| {
            let uid = e.first("uid").unwrap().to_string();
            let shown = e.first("displayName").unwrap_or_default().to_string();
            let mail = e.first("mail").unwrap_or_default().to_string();
            (uid, (shown, mail))
        })
        .collect();
    let groups = s.entries("(objectClass=groupOfNames)", &["cn", "member"]).unwrap();
    let by_dn: BTreeMap<String, &Entry> = groups.iter().map(|g| (g.dn.to_lowercase(), g)).collect();
    let mut flat = BTreeMap::new();
    for g in &groups {
        let mut seen = BTreeSet::from([g.dn.to_lowercase()]);
        let mut stack = vec![g];
        let mut members = BTreeSet::new();
        while let Some(h) = stack.pop() {
            for m in h.values("member") {
                let m = m.to_lowercase();
                if let Some(sub) = by_dn.get(&m) {
                    if seen.insert(m.clone()) {
                        stack.push(*sub);
                    }
                } else if let Some(uid) = m.strip_prefix("uid=").and_then(|r| r.split(',').next()) {
                    members.insert(uid.to_string());
                }
            }
        }
        flat.insert(g.first("cn").unwrap().to_string(), members);
    }
    (users, flat)
}

#[test]
fn a_loaded_directory_is_read_over_start_tls_with_its_ca() {
    let d = Directory::generate(6, 4, 2);
    let s = started(&d);
    let users = s
        .search(
            Bind::Reader,
            &[
                "-b",
                PEOPLE_DN,
                "(objectClass=inetOrgPerson)",
                "uid",
                "mail",
                "entryUUID",
            ],
        )
        .unwrap();
    assert_eq!(users.code, 0, "{}", users.stderr);
    let uids: BTreeSet<&str> = users.entries.iter().filter_map(|e| e.first("uid")).collect();
    assert_eq!(uids, d.users.iter().map(|u| u.username.as_str()).collect());
    for e in &users.entries {
        let uuid = e.first("entryUUID").unwrap_or_default();
        assert!(is_uuid(uuid), "{}: entryUUID {uuid:?}", e.dn);
    }
    let (read, flat) = read_back(&s);
    assert_eq!(
        read["user000003"],
        ("User 000003".into(), "user000003@example.com".into())
    );
    assert_eq!(
        flat,
        d.expected_members(),
        "members, nested groups included, are what the directory says"
    );
    let head = s
        .search(
            Bind::Reader,
            &[
                "-b",
                &Slapd::group_dn("team-00000"),
                "-s",
                "base",
                "(objectClass=*)",
                "member",
            ],
        )
        .unwrap();
    assert!(
        head.entries[0]
            .values("member")
            .contains(&Slapd::group_dn("team-00001")),
        "a subgroup is a member by its DN: {:?}",
        head.entries[0]
    );

    // LDAPS with the CA too, and neither without it: the certificate is really checked.
    let ldaps = |ca: &Path| {
        s.tool(&s.tools.ldapsearch)
            .env("LDAPTLS_CACERT", ca)
            .args([
                "-x",
                "-LLL",
                "-H",
                &s.ldaps_url(),
                "-D",
                READER_DN,
                "-w",
                READER_PASSWORD,
            ])
            .args(["-b", BASE_DN, "-s", "base", "1.1"])
            .output()
            .unwrap()
    };
    assert!(ldaps(&s.dir().join("ca.pem")).status.success());
    let other = Slapd::start(SizeLimit::Unlimited).unwrap();
    let refused = ldaps(&other.dir().join("ca.pem"));
    assert!(
        !refused.status.success(),
        "a server certificate from another CA is refused"
    );
}

#[test]
fn a_renamed_user_keeps_its_entry_uuid_and_its_groups() {
    let d = Directory::generate(5, 4, 2);
    let s = started(&d);
    let before = s.entry_uuid(&Slapd::user_dn("user000002")).unwrap();
    let groups_before = s.count(&format!("(member={})", Slapd::user_dn("user000002"))).unwrap();
    assert!(groups_before > 0);

    s.rename_user("user000002", "ada.lovelace").unwrap();

    assert_eq!(s.entry_uuid(&Slapd::user_dn("ada.lovelace")).unwrap(), before);
    assert_eq!(s.count("(uid=user000002)").unwrap(), 0, "the old uid value is gone");
    assert_eq!(
        s.count(&format!("(member={})", Slapd::user_dn("ada.lovelace")))
            .unwrap(),
        groups_before,
        "refint moved the memberships to the new DN"
    );
    assert_eq!(
        s.count(&format!("(member={})", Slapd::user_dn("user000002"))).unwrap(),
        0
    );
}

#[test]
fn the_size_limit_caps_the_readers_paged_search_and_changes_live() {
    let d = Directory::generate(30, 0, 0);
    let s = Slapd::start(SizeLimit::Entries(12)).unwrap();
    s.load(&d).unwrap();
    let paged = |bind| {
        s.search(bind, &["-E", "pr=5/noprompt", "-b", PEOPLE_DN, "(uid=*)", "1.1"])
            .unwrap()
    };
    let capped = paged(Bind::Reader);
    assert_eq!(capped.code, 4, "size limit exceeded: {}", capped.stderr);
    assert_eq!(capped.entries.len(), 12);
    assert_eq!(paged(Bind::Root).entries.len(), 30, "the root DN has no limit");

    s.set_reader_size_limit(SizeLimit::Unlimited).unwrap();
    let all = paged(Bind::Reader);
    assert_eq!((all.code, all.entries.len()), (0, 30), "{}", all.stderr);

    s.set_reader_size_limit(SizeLimit::Entries(7)).unwrap();
    let capped = paged(Bind::Reader);
    assert_eq!((capped.code, capped.entries.len()), (4, 7), "{}", capped.stderr);
}

#[test]
fn a_wrong_password_is_refused_with_invalid_credentials() {
    let s = Slapd::start(SizeLimit::Unlimited).unwrap();
    let out = s
        .tool(&s.tools.ldapsearch)
        .args([
            "-x",
            "-ZZ",
            "-H",
            &s.ldap_url(),
            "-D",
            READER_DN,
            "-w",
            "not-the-password",
        ])
        .args(["-b", BASE_DN, "-s", "base", "1.1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(49), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn dropping_the_server_kills_it_and_removes_its_folder() {
    let s = Slapd::start(SizeLimit::Unlimited).unwrap();
    let (port, dir) = (s.ldap_port(), s.dir().to_path_buf());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    drop(s);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens on {port}"
    );
    assert!(!dir.exists(), "{} was removed", dir.display());
}

#[test]
fn membership_edits_keep_each_group_class_valid() {
    let d = Directory::generate(4, 3, 0);
    let layout = Layout::default()
        .with("g-00001", GroupClass::GroupOfUniqueNames)
        .with("g-00002", GroupClass::PosixGroup);
    let mut flat = d.clone();
    flat.memberships.clear();
    let s = Slapd::start(SizeLimit::Unlimited).unwrap();
    s.load_with(&flat, &layout).unwrap();
    let group = |name: &str, attr: &str| -> Vec<String> {
        s.entries(&format!("(cn={name})"), &[attr]).unwrap()[0]
            .values(attr)
            .to_vec()
    };
    assert_eq!(
        group("team-00000", "member"),
        [BASE_DN],
        "an empty groupOfNames holds the placeholder"
    );
    assert_eq!(group("team-00001", "uniqueMember"), [BASE_DN]);
    assert!(group("team-00002", "memberUid").is_empty());

    s.add_user_to_group("team-00000", "user000001").unwrap();
    s.add_user_to_group("team-00001", "user000001").unwrap();
    s.add_user_to_group("team-00002", "user000001").unwrap();
    assert_eq!(group("team-00000", "member"), [Slapd::user_dn("user000001")]);
    assert_eq!(group("team-00001", "uniqueMember"), [Slapd::user_dn("user000001")]);
    assert_eq!(group("team-00002", "memberUid"), ["user000001"]);

    s.add_group_to_group("team-00000", "team-00001").unwrap();
    let refused = s.add_group_to_group("team-00002", "team-00000").unwrap_err();
    assert!(refused.to_string().contains("posixGroup"), "{refused}");

    s.remove_user_from_group("team-00001", "user000001").unwrap();
    assert_eq!(
        group("team-00001", "uniqueMember"),
        [BASE_DN],
        "the last member leaving brings the placeholder back"
    );

    s.delete_user("user000001").unwrap();
    assert_eq!(
        group("team-00000", "member"),
        [Slapd::group_dn("team-00001")],
        "refint dropped the deleted user"
    );
    assert_eq!(
        group("team-00002", "memberUid"),
        ["user000001"],
        "memberUid is a uid, not a DN: left as it is"
    );

    s.delete_group("team-00001").unwrap();
    assert_eq!(
        group("team-00000", "member"),
        [BASE_DN],
        "refint's placeholder for the deleted group"
    );
    s.add_user(&d.users[1]).unwrap();
    s.set_email("user000001", "back@example.com").unwrap();
    s.set_display_name("user000001", "Zoë Back").unwrap();
    let (users, _) = read_back(&s);
    assert_eq!(users["user000001"], ("Zoë Back".into(), "back@example.com".into()));
    s.add_group("newcomers", GroupClass::GroupOfNames).unwrap();
    s.add_user_to_group("newcomers", "user000001").unwrap();
    assert_eq!(group("newcomers", "member"), [Slapd::user_dn("user000001")]);
}

#[test]
fn a_posix_group_cannot_hold_groups_and_the_load_says_which() {
    let d = Directory::generate(4, 4, 1);
    let err = directory_ldif(&d, &Layout::default().with("g-00000", GroupClass::PosixGroup)).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("g-00000") && text.contains("team-00001"), "{text}");
}

#[test]
fn a_working_day_makes_the_changes_it_counts_and_the_directory_follows() {
    let mut d = Directory::generate(40, 12, 2);
    let s = started(&d);
    let before = read_back(&s);

    let writes = s.working_day(&mut d, 11).unwrap();

    assert_eq!(writes, 11);
    let after = read_back(&s);
    let expected_users: Users = d
        .users
        .iter()
        .map(|u| (u.username.clone(), (u.display_name.clone(), u.email.clone())))
        .collect();
    assert_eq!(after.0, expected_users);
    assert_eq!(after.1, d.expected_members());
    let changed_users = before.0.iter().filter(|(k, v)| after.0[*k] != **v).count();
    let changed_memberships: usize = before
        .1
        .iter()
        .map(|(g, m)| m.symmetric_difference(&after.1[g]).count())
        .sum();
    assert_eq!(
        (changed_users, changed_memberships),
        (6, 5),
        "three display names and three emails; three joins and two leaves, each in one group"
    );
    let too_many = s.working_day(&mut d, 400).unwrap_err();
    assert!(too_many.to_string().contains("too small"), "{too_many}");
}

#[test]
fn a_directory_loaded_offline_is_the_same_as_one_loaded_with_ldapadd() {
    let d = Directory::generate(8, 5, 2);
    let offline = Slapd::start_loaded(SizeLimit::Entries(3), &d, &Layout::default()).unwrap();
    let online = started(&d);
    assert_eq!(read_back(&offline), read_back(&online));
    let uuid = offline.entry_uuid(&Slapd::user_dn("user000004")).unwrap();
    assert!(is_uuid(&uuid), "slapadd gave the entry an entryUUID: {uuid:?}");
    let stamped = offline.count("(modifyTimestamp>=20000101000000Z)").unwrap();
    assert_eq!(
        stamped,
        offline.count("(objectClass=*)").unwrap(),
        "every entry has a modifyTimestamp"
    );
    // Stamped as last changed a day ago, as in a directory in use: nothing from the last hour.
    let hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1))
        .format("%Y%m%d%H%M%SZ")
        .to_string();
    let loaded = d.users.len() + d.groups.len();
    assert_eq!(
        offline.count(&format!("(!(modifyTimestamp>={hour_ago}))")).unwrap(),
        loaded,
        "every user and group is a day old"
    );
    let capped = offline
        .search(
            Bind::Reader,
            &["-E", "pr=2/noprompt", "-b", PEOPLE_DN, "(uid=*)", "1.1"],
        )
        .unwrap();
    assert_eq!(
        (capped.code, capped.entries.len()),
        (4, 3),
        "the limit applies as configured"
    );
    let (users, members) = read_back(&offline);
    let outsider = users.keys().find(|u| !members["team-00004"].contains(*u)).unwrap();
    offline.add_user_to_group("team-00004", outsider).unwrap();
    assert!(read_back(&offline).1["team-00004"].contains(outsider));
}
