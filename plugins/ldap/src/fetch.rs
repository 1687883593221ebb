//! A fetch, full or incremental, as passes over the directory, one search page per step:
//!
//! 1. users (paged): each becomes a record and a row of the [`Index`];
//! 2. with nested groups, the groups' DNs and ids (paged, one attribute): a member DN that is a
//!    group listed later is then known;
//! 3. groups (paged, with `member`, `uniqueMember`, `memberUid`; Active Directory's large
//!    `member` values by range retrieval): each becomes a record and its members memberships.
//!
//! An incremental fetch runs the same passes with the filters narrowed to what changed since the
//! mark (`modifyTimestamp` / `uSNChanged`) and starts from the last fetch's index: a changed
//! user is an update (a new DN or name included), a changed group's member list is complete, so
//! the members it no longer has are removed memberships. Deletions are not visible to either
//! mark; the scheduled full fetch finds them.

use std::collections::{BTreeSet, HashMap};

use roster_sdk::driver::{Next, Work};
use roster_sdk::ldap::{
    self, Connection, Entry, GeneralizedTime, Paging, Referrals, SearchRequest, complete_values, first_text,
    normalize_dn, search_once, values,
};
use roster_sdk::{Level, Membership, PluginError};

use crate::cursor::{Cursor, DeltaState, Index, Mark, Members, Mode, Pass, Skipped};
use crate::model::{self, DnKeys, Skip, name_key, strip_uid};
use crate::settings::{Flavour, Settings};

/// Group entries per page at most: each carries its whole member list, so a page of them is
/// far larger than a page of users.
pub const MAX_GROUP_PAGE: u32 = 200;

/// What a step works with.
pub struct Ctx<'a> {
    /// The settings.
    pub s: &'a Settings,
    /// The connection.
    pub conn: Connection,
    /// DN keys below `base_dn`.
    pub keys: DnKeys,
    /// The referrals a search ignores (`ignore_referrals`).
    pub referrals: Referrals,
}

impl<'a> Ctx<'a> {
    /// The context of one source's settings.
    pub fn new(s: &'a Settings) -> Self {
        Ctx {
            s,
            conn: s.connection(),
            keys: DnKeys::new(&s.base_dn),
            referrals: Referrals::ignoring(&s.ignore_referrals),
        }
    }

    fn user_attributes(&self) -> Vec<String> {
        let s = self.s;
        let mut out = vec![
            s.id_attribute().to_string(),
            s.username_attribute().to_string(),
            s.email_attribute.clone(),
            s.display_name_attribute.clone(),
            "cn".into(),
        ];
        out.extend(s.extra_attributes.iter().cloned());
        out.push(self.change_attribute().into());
        dedup(out)
    }

    fn group_attributes(&self) -> Vec<String> {
        let s = self.s;
        let mut out = vec![
            s.id_attribute().to_string(),
            s.group_name_attribute.clone(),
            "description".into(),
            "member".into(),
            "uniqueMember".into(),
            "memberUid".into(),
        ];
        out.extend(s.extra_attributes.iter().cloned());
        out.push(self.change_attribute().into());
        dedup(out)
    }

    /// OpenLDAP: the timestamp the mark follows (operational, so named); AD: the account's
    /// flags, for `active` (the USN mark comes from the rootDSE, not the entries).
    fn change_attribute(&self) -> &'static str {
        match self.s.flavour {
            Flavour::Openldap => "modifyTimestamp",
            Flavour::ActiveDirectory => "userAccountControl",
        }
    }

    fn filter(&self, base: &str, mode: &Mode) -> String {
        match mode {
            Mode::Incremental { since } => match since.since() {
                Some(clause) => format!("(&{base}{clause})"),
                None => base.to_string(),
            },
            Mode::Full => base.to_string(),
        }
    }

    fn request(
        &self,
        base: &str,
        scope: ldap::Scope,
        filter: String,
        attributes: &[String],
        page: u32,
    ) -> SearchRequest {
        let attrs: Vec<&str> = attributes.iter().map(String::as_str).collect();
        SearchRequest::new(base, scope, &filter, &attrs).paged(page)
    }
}

fn dedup(names: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for n in names {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(&n)) {
            out.push(n);
        }
    }
    out
}

/// Reads Active Directory's mark: the DC's `highestCommittedUSN`, `dnsHostName` and, from its
/// NTDS settings object, `invocationID`.
pub fn ad_mark(ctx: &Ctx<'_>, dir: &dyn ldap::Directory) -> Result<Mark, PluginError> {
    let what = "read the domain controller's highestCommittedUSN (rootDSE)";
    let root = search_once(
        dir,
        &ctx.conn,
        SearchRequest::new(
            "",
            ldap::Scope::Base,
            "(objectClass=*)",
            &["highestCommittedUSN", "dnsHostName", "dsServiceName"],
        ),
        what,
        &ctx.referrals,
    )?;
    let Some(root) = root.entries.first() else {
        return Ok(unavailable("the rootDSE could not be read"));
    };
    let usn = first_text(root, "highestCommittedUSN").and_then(|u| u.parse::<u64>().ok());
    let dc = first_text(root, "dnsHostName");
    let service = first_text(root, "dsServiceName");
    let (Some(usn), Some(dc), Some(service)) = (usn, dc, service) else {
        return Ok(unavailable(
            "the rootDSE has no highestCommittedUSN, dnsHostName or dsServiceName (not an Active Directory domain controller?)",
        ));
    };
    let what = "read the domain controller's invocationID";
    let ntds = search_once(
        dir,
        &ctx.conn,
        SearchRequest::new(service, ldap::Scope::Base, "(objectClass=*)", &["invocationId"]),
        what,
        &ctx.referrals,
    )?;
    let invocation = ntds
        .entries
        .first()
        .and_then(|e| values(e, "invocationId").next())
        .and_then(ldap::ad_guid);
    let Some(invocation) = invocation else {
        return Ok(unavailable(&format!("{service} has no readable invocationId")));
    };
    Ok(Mark::Usn {
        usn,
        dc: dc.to_string(),
        invocation,
    })
}

fn unavailable(why: &str) -> Mark {
    roster_sdk::log(
        Level::Warn,
        &format!("{why}: incremental synchronisation is not possible, every run reads the whole directory"),
    );
    Mark::Unavailable { why: why.into() }
}

/// The mark a fetch starting now builds.
fn fresh_mark(ctx: &Ctx<'_>, dir: &dyn ldap::Directory) -> Result<Mark, PluginError> {
    match ctx.s.flavour {
        Flavour::Openldap => Ok(Mark::Timestamp {
            at: None,
            from: None,
            seen: Default::default(),
        }),
        Flavour::ActiveDirectory => ad_mark(ctx, dir),
    }
}

/// The first cursor of a full fetch.
pub fn begin_full(ctx: &Ctx<'_>, dir: &dyn ldap::Directory) -> Result<Cursor, PluginError> {
    let mark = if ctx.s.use_incremental_sync {
        fresh_mark(ctx, dir)?
    } else {
        Mark::Unavailable {
            why: "use_incremental_sync is off".into(),
        }
    };
    Ok(Cursor {
        pass: Pass::Users {
            paging: Paging::default(),
        },
        mode: Mode::Full,
        mark,
        index: Index::default(),
        written: BTreeSet::new(),
        skipped: Skipped::default(),
        started: now(),
        window: Default::default(),
    })
}

fn expired(why: impl Into<String>) -> PluginError {
    PluginError::ExpiredDelta(why.into())
}

/// The first cursor of an incremental fetch from `state`.
pub fn begin_incremental(ctx: &Ctx<'_>, dir: &dyn ldap::Directory, state: DeltaState) -> Result<Cursor, PluginError> {
    if !ctx.s.use_incremental_sync {
        return Err(expired("use_incremental_sync is off"));
    }
    let mark = match &state.mark {
        Mark::Unavailable { why } => return Err(expired(format!("the last full fetch took no mark: {why}"))),
        Mark::Timestamp { at: None, .. } => {
            return Err(expired(
                "the last full fetch read no modifyTimestamp (the bind DN may not be allowed to read it)",
            ));
        }
        Mark::Timestamp { at, .. } => Mark::Timestamp {
            at: at.clone(),
            from: None,
            seen: Default::default(),
        },
        Mark::Usn { dc, invocation, .. } => {
            let now = ad_mark(ctx, dir)?;
            match &now {
                Mark::Usn {
                    dc: now_dc,
                    invocation: now_inv,
                    ..
                } => {
                    if !now_dc.eq_ignore_ascii_case(dc) {
                        return Err(expired(format!(
                            "the last fetch read domain controller {dc}, this one reaches {now_dc}: USNs are per domain controller"
                        )));
                    }
                    if now_inv != invocation {
                        return Err(expired(format!(
                            "domain controller {dc}'s invocationID changed from {invocation} to {now_inv} (restored from a backup?)"
                        )));
                    }
                }
                Mark::Unavailable { why } => return Err(expired(why.clone())),
                Mark::Timestamp { .. } => {}
            }
            now
        }
    };
    consistent(&state.index)?;
    Ok(Cursor {
        pass: Pass::Users {
            paging: Paging::default(),
        },
        mode: Mode::Incremental { since: state.mark },
        mark,
        index: state.index,
        written: BTreeSet::new(),
        skipped: Skipped::default(),
        started: now(),
        window: Default::default(),
    })
}

/// Refuses a state whose member numbers point past its users or groups (not one this
/// connector wrote): continuing from it would link members to the wrong ids.
fn consistent(index: &Index) -> Result<(), PluginError> {
    let (users, groups) = (index.users.len(), index.groups.len());
    let fits = (index.members.is_empty() || index.members.len() == groups)
        && index
            .members
            .iter()
            .all(|m| m.users.iter().all(|u| (*u as usize) < users) && m.groups.iter().all(|g| (*g as usize) < groups));
    if fits {
        Ok(())
    } else {
        Err(expired(
            "the delta token's member lists do not match its users and groups",
        ))
    }
}

/// Roster's clock in Unix seconds (a connector reads the real wall clock).
fn now() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// The entry's `modifyTimestamp`.
fn changed_at(entry: &Entry) -> Option<GeneralizedTime> {
    first_text(entry, "modifyTimestamp").and_then(GeneralizedTime::parse)
}

/// A digest of what was read of an entry: its DN and attributes, whatever their order.
fn digest(entry: &Entry) -> u64 {
    let mut parts: Vec<(String, &Vec<Vec<u8>>)> = entry
        .attributes
        .iter()
        .map(|a| (a.name.to_ascii_lowercase(), &a.values))
        .collect();
    parts.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes.iter().chain([0xffu8].iter()) {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(model::name_key(&entry.dn).as_bytes());
    for (name, vals) in parts {
        eat(name.as_bytes());
        for v in vals {
            eat(v);
        }
    }
    h
}

/// An entry read, as the mark's window knows it.
struct Read {
    key: String,
    at: Option<GeneralizedTime>,
    digest: u64,
}

impl Read {
    /// Notes the entry's timestamp in the mark, unless it is later than Roster's clock and
    /// the overlap: a replica with a wrong clock or an imported LDIF can stamp an entry in the
    /// future, and a mark taken from it would make every later fetch ask for changes after it
    /// and miss every real one.
    fn of(cur: &mut Cursor, key: String, entry: &Entry, s: &Settings) -> Self {
        let at = changed_at(entry);
        if let Some(at) = at {
            if at.unix() > now().saturating_add(i64::from(s.change_overlap_seconds)) {
                cur.skipped.future += 1;
                cur.skipped.future_dn.get_or_insert_with(|| entry.dn.clone());
            } else {
                cur.mark.observe(&at.format());
            }
        }
        Read {
            key,
            at,
            digest: digest(entry),
        }
    }

    /// True when the last fetch read the entry as it is now.
    fn before(&self, cur: &Cursor) -> bool {
        match &cur.mode {
            Mode::Incremental { since } => since.already_read(&self.key, self.digest),
            Mode::Full => false,
        }
    }

    /// Keeps the digest, so the next fetch skips the entry while it is in the window and
    /// unchanged.
    fn keep(self, cur: &mut Cursor) {
        if let (Some(at), Mark::Timestamp { .. }) = (self.at, &cur.mark) {
            cur.window.insert(self.key, (at.unix(), self.digest));
        }
    }
}

/// Whether every member value of a group named a user or group read so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolved {
    /// Every one, or those that did not are outside `base_dn`.
    All,
    /// A DN below `base_dn`, or a `memberUid`, named nobody read: perhaps a user added after
    /// the users pass or a group added after the group ids pass, whom the next fetch reads.
    /// The whole suffix counts, not only the user base: with split bases a nested group lies
    /// outside the users' one.
    Partly,
}

fn count(skipped: &mut Skipped, why: Skip) {
    match why {
        Skip::NoId => skipped.no_id += 1,
        Skip::NoName => skipped.no_name += 1,
    }
}

/// Runs one step.
pub fn step(ctx: &Ctx<'_>, mut cur: Cursor, work: &mut Work<'_>) -> Result<Next<Cursor, DeltaState>, PluginError> {
    let s = ctx.s;
    match cur.pass.clone() {
        Pass::Users { mut paging } => {
            let filter = ctx.filter(s.user_filter(), &cur.mode);
            let what = format!(
                "list users (search {} {} for {filter})",
                s.user_base(),
                ldap::scope_name(s.user_scope.scope())
            );
            let req = ctx.request(
                s.user_base(),
                s.user_scope.scope(),
                filter,
                &ctx.user_attributes(),
                s.page_size,
            );
            let found = paging.next(work.ldap(), &ctx.conn, req, &what, &ctx.referrals)?;
            if found.entries.is_empty() && found.more {
                work.empty_page();
            }
            let mut by_id: HashMap<String, usize> = cur
                .index
                .users
                .iter()
                .enumerate()
                .map(|(i, u)| (u.2.clone(), i))
                .collect();
            let mut added = 0u64;
            for entry in &found.entries {
                let user = match model::user(entry, s) {
                    Ok(u) => u,
                    Err(why) => {
                        count(&mut cur.skipped, why);
                        continue;
                    }
                };
                let read = Read::of(&mut cur, format!("u:{}", user.id), entry, s);
                let unchanged = read.before(&cur);
                read.keep(&mut cur);
                if unchanged {
                    continue;
                }
                let row = (ctx.keys.key(&entry.dn), name_key(&user.username), user.id.clone());
                match by_id.get(&user.id) {
                    // Listed again after the search started over.
                    Some(_) if cur.mode == Mode::Full => continue,
                    Some(&i) => cur.index.users[i] = row,
                    None => {
                        by_id.insert(user.id.clone(), cur.index.users.len());
                        cur.index.users.push(row);
                    }
                }
                added += 1;
                work.out.users.push(user);
            }
            work.expect(added);
            if found.more {
                cur.pass = Pass::Users { paging };
            } else {
                if cur.mode == Mode::Full && cur.index.users.is_empty() {
                    return Err(PluginError::Config(format!(
                        "the user search returned nobody ({} {} for {} as {}): check user_base_dn and user_filter",
                        s.user_base(),
                        ldap::scope_name(s.user_scope.scope()),
                        s.user_filter(),
                        s.who()
                    )));
                }
                cur.pass = if s.nested_groups {
                    Pass::GroupIds {
                        paging: Paging::default(),
                    }
                } else {
                    Pass::Groups {
                        paging: Paging::default(),
                    }
                };
            }
        }
        Pass::GroupIds { mut paging } => {
            let filter = ctx.filter(s.group_filter(), &cur.mode);
            let what = format!("list group ids (search {} for {filter})", s.group_base());
            let attrs = [s.id_attribute().to_string()];
            let req = ctx.request(s.group_base(), s.group_scope.scope(), filter, &attrs, s.page_size);
            let found = paging.next(work.ldap(), &ctx.conn, req, &what, &ctx.referrals)?;
            if found.entries.is_empty() && found.more {
                work.empty_page();
            }
            let by_id: HashMap<String, usize> = group_numbers(&cur.index);
            for entry in &found.entries {
                let Some(id) = model::id(entry, s.id_attribute()) else {
                    continue;
                };
                let key = ctx.keys.key(&entry.dn);
                match by_id.get(&id) {
                    Some(&i) => cur.index.groups[i].0 = key,
                    None => add_group(&mut cur.index, key, id, s),
                }
            }
            cur.pass = if found.more {
                Pass::GroupIds { paging }
            } else {
                if cur.mode == Mode::Full {
                    work.expect(cur.index.groups.len() as u64);
                }
                Pass::Groups {
                    paging: Paging::default(),
                }
            };
        }
        Pass::Groups { mut paging } => {
            let filter = ctx.filter(s.group_filter(), &cur.mode);
            let what = format!(
                "list groups (search {} {} for {filter})",
                s.group_base(),
                ldap::scope_name(s.group_scope.scope())
            );
            let req = ctx.request(
                s.group_base(),
                s.group_scope.scope(),
                filter,
                &ctx.group_attributes(),
                s.page_size.min(MAX_GROUP_PAGE),
            );
            let found = paging.next(work.ldap(), &ctx.conn, req, &what, &ctx.referrals)?;
            if found.entries.is_empty() && found.more {
                work.empty_page();
            }
            let users_by_dn: HashMap<String, u32> = numbered(cur.index.users.iter().map(|u| u.0.clone()));
            let users_by_name: HashMap<String, u32> = numbered(cur.index.users.iter().map(|u| u.1.clone()));
            let mut groups_by_dn: HashMap<String, u32> = numbered(cur.index.groups.iter().map(|g| g.0.clone()));
            let mut by_id = group_numbers(&cur.index);
            let counted_before = cur.index.groups.len();
            let mut written_now = 0u64;
            if s.use_incremental_sync && cur.index.members.len() < cur.index.groups.len() {
                cur.index.members.resize(cur.index.groups.len(), Members::default());
            }
            for entry in &found.entries {
                let group = match model::group(entry, s) {
                    Ok(g) => g,
                    Err(why) => {
                        count(&mut cur.skipped, why);
                        continue;
                    }
                };
                let read = Read::of(&mut cur, format!("g:{}", group.id), entry, s);
                if read.before(&cur) {
                    read.keep(&mut cur);
                    continue;
                }
                let key = ctx.keys.key(&entry.dn);
                let gi = match by_id.get(&group.id) {
                    Some(&i) => i,
                    None => {
                        let i = cur.index.groups.len();
                        add_group(&mut cur.index, key.clone(), group.id.clone(), s);
                        by_id.insert(group.id.clone(), i);
                        i
                    }
                };
                let number = gi as u32;
                if cur.mode == Mode::Full && !cur.written.insert(number) {
                    continue;
                }
                groups_by_dn.insert(key.clone(), number);
                cur.index.groups[gi].0 = key;
                let (members, resolved) = read_members(
                    ctx,
                    work,
                    entry,
                    &what,
                    &users_by_dn,
                    &users_by_name,
                    &groups_by_dn,
                    &mut cur.skipped,
                )?;
                if resolved == Resolved::All {
                    read.keep(&mut cur);
                }
                let before = cur.index.members.get(gi).cloned().unwrap_or_default();
                let gid = group.id.clone();
                let link = |member: &u32, is_group: bool, index: &Index| Membership {
                    group_id: gid.clone(),
                    member_id: if is_group {
                        index.groups[*member as usize].1.clone()
                    } else {
                        index.users[*member as usize].2.clone()
                    },
                    member_is_group: is_group,
                };
                match cur.mode {
                    Mode::Full => {
                        work.out
                            .memberships
                            .extend(members.users.iter().map(|m| link(m, false, &cur.index)));
                        work.out
                            .memberships
                            .extend(members.groups.iter().map(|m| link(m, true, &cur.index)));
                    }
                    Mode::Incremental { .. } => {
                        for (now, was, is_group) in [
                            (&members.users, &before.users, false),
                            (&members.groups, &before.groups, true),
                        ] {
                            let now_set: BTreeSet<&u32> = now.iter().collect();
                            let was_set: BTreeSet<&u32> = was.iter().collect();
                            work.out
                                .memberships
                                .extend(now_set.difference(&was_set).map(|m| link(m, is_group, &cur.index)));
                            work.out
                                .removed_memberships
                                .extend(was_set.difference(&now_set).map(|m| link(m, is_group, &cur.index)));
                        }
                    }
                }
                if s.use_incremental_sync {
                    cur.index.members[gi] = members;
                }
                written_now += 1;
                work.out.groups.push(group);
            }
            work.expect(if cur.mode == Mode::Full && s.nested_groups {
                // The ids pass counted the others.
                (cur.index.groups.len() - counted_before) as u64
            } else {
                written_now
            });
            if found.more {
                cur.pass = Pass::Groups { paging };
            } else {
                same_domain_controller(ctx, work.ldap(), &cur.mark)?;
                report(&cur.skipped, s);
                let state = s
                    .use_incremental_sync
                    .then(|| cur.into_state(now(), s.change_overlap_seconds));
                return Ok(Next::Done(state));
            }
        }
    }
    Ok(Next::Continue(cur))
}

fn group_numbers(index: &Index) -> HashMap<String, usize> {
    index.groups.iter().enumerate().map(|(i, g)| (g.1.clone(), i)).collect()
}

fn numbered(keys: impl Iterator<Item = String>) -> HashMap<String, u32> {
    keys.enumerate().map(|(i, k)| (k, i as u32)).collect()
}

fn add_group(index: &mut Index, key: String, id: String, s: &Settings) {
    index.groups.push((key, id));
    if s.use_incremental_sync {
        index.members.resize(index.groups.len(), Members::default());
    }
}

/// Fails a fetch whose domain controller is not the one its USN mark was taken from: a
/// cookie that expired with its connection may have reconnected to another DC behind the same
/// name, whose USNs mean nothing for this mark.
fn same_domain_controller(ctx: &Ctx<'_>, dir: &dyn ldap::Directory, mark: &Mark) -> Result<(), PluginError> {
    let Mark::Usn { dc, invocation, .. } = mark else {
        return Ok(());
    };
    let now = ad_mark(ctx, dir)?;
    let (now_dc, now_inv) = match &now {
        Mark::Usn {
            dc: now_dc,
            invocation: now_inv,
            ..
        } => (now_dc.as_str(), now_inv.as_str()),
        _ => ("a server that is no readable domain controller", "none"),
    };
    if now_dc.eq_ignore_ascii_case(dc) && now_inv == invocation {
        return Ok(());
    }
    Err(PluginError::Transient(format!(
        "the domain controller changed during the read ({dc}, invocationID {invocation} → {now_dc}, invocationID {now_inv}): the next run reads again"
    )))
}

/// A group entry's direct members by number: `member` and `uniqueMember` DNs matched against
/// the users and (with nested groups) the groups, `memberUid` against user names.
#[allow(clippy::too_many_arguments)]
fn read_members(
    ctx: &Ctx<'_>,
    work: &Work<'_>,
    entry: &Entry,
    what: &str,
    users_by_dn: &HashMap<String, u32>,
    users_by_name: &HashMap<String, u32>,
    groups_by_dn: &HashMap<String, u32>,
    skipped: &mut Skipped,
) -> Result<(Members, Resolved), PluginError> {
    let mut users = BTreeSet::new();
    let mut resolved = Resolved::All;
    let suffix = normalize_dn(&ctx.s.base_dn);
    let mut groups = BTreeSet::new();
    let mut dns: Vec<Vec<u8>> = complete_values(work.ldap(), &ctx.conn, entry, "member", what, &ctx.referrals)?;
    dns.extend(values(entry, "uniqueMember").map(<[u8]>::to_vec));
    for raw in &dns {
        let Ok(text) = std::str::from_utf8(raw) else {
            skipped.members += 1;
            continue;
        };
        let key = ctx.keys.key(strip_uid(text));
        if let Some(&u) = users_by_dn.get(&key) {
            users.insert(u);
        } else if let Some(&g) = groups_by_dn.get(&key) {
            if ctx.s.nested_groups {
                groups.insert(g);
            }
        } else {
            skipped.members += 1;
            let dn = normalize_dn(strip_uid(text));
            if dn == suffix || dn.ends_with(&format!(",{suffix}")) {
                resolved = Resolved::Partly;
            }
        }
    }
    for raw in values(entry, "memberUid") {
        match std::str::from_utf8(raw)
            .ok()
            .and_then(|n| users_by_name.get(&name_key(n)))
        {
            Some(&u) => {
                users.insert(u);
            }
            None => {
                skipped.members += 1;
                resolved = Resolved::Partly;
            }
        }
    }
    let members = Members {
        users: users.into_iter().collect(),
        groups: groups.into_iter().collect(),
    };
    Ok((members, resolved))
}

/// Logs what the fetch skipped, once.
fn report(skipped: &Skipped, s: &Settings) {
    if skipped.no_id + skipped.no_name > 0 {
        roster_sdk::log(
            Level::Warn,
            &format!(
                "{} entries had no {} and {} no {} or {}; they were skipped (check id_attribute, username_attribute and group_name_attribute)",
                skipped.no_id,
                s.id_attribute(),
                skipped.no_name,
                s.username_attribute(),
                s.group_name_attribute
            ),
        );
    }
    if let Some(dn) = &skipped.future_dn {
        roster_sdk::log(
            Level::Warn,
            &format!(
                "{} entries carry a modifyTimestamp later than Roster's clock (more than change_overlap_seconds ahead), {dn} among them; their timestamps were not taken as the incremental mark, so they do not hide later changes (check the directory servers' clocks)",
                skipped.future
            ),
        );
    }
    if skipped.members > 0 {
        roster_sdk::log(
            Level::Info,
            &format!(
                "{} member values named no user or group of the user and group searches; they were skipped",
                skipped.members
            ),
        );
    }
}
