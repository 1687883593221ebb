//! Changes made in an identity provider and in the sample [`Directory`] that says what
//! Bitbucket must hold afterwards, whichever simulator plays the identity provider.

use roster_sim::directory::{DirMembership, DirUser, Directory};

/// An identity provider a test changes, in the sample directory's terms.
pub trait IdpEdits {
    /// Sets a user's display name.
    fn set_display_name(&self, u: &DirUser, name: &str);
    /// Sets a user's email.
    fn set_email(&self, u: &DirUser, email: &str);
    /// Makes user `user` a direct member of group `group` (ids of `d`).
    fn join(&self, d: &Directory, group: &str, user: &str);
    /// Ends user `user`'s direct membership of group `group` (ids of `d`).
    fn leave(&self, d: &Directory, group: &str, user: &str);
}

/// A working day, made in `idp` and in `d`: four display names, one email, a user joining each
/// of three head groups and one leaving each of two others. Returns the Bitbucket writes it
/// takes: ten, one per change.
pub fn working_day(d: &mut Directory, idp: &impl IdpEdits) -> u64 {
    for i in 0..4 {
        d.users[i].display_name = format!("Renamed User {i}");
        idp.set_display_name(&d.users[i], &d.users[i].display_name);
    }
    d.users[4].email = "new.address@example.com".into();
    idp.set_email(&d.users[4], &d.users[4].email);
    let heads = d.head_groups();
    let expected = d.expected_members();
    for h in &heads[..3] {
        let members = &expected[&d.group_name(h)];
        let newcomer = d.users[5..]
            .iter()
            .find(|u| !members.contains(&u.username))
            .expect("someone is not in the group yet")
            .id
            .clone();
        d.memberships.push(DirMembership {
            group: h.clone(),
            member: newcomer.clone(),
            member_is_group: false,
        });
        idp.join(d, h, &newcomer);
    }
    for h in &heads[3..5] {
        let leaver = d
            .only_direct_members(h)
            .into_iter()
            .find(|u| u.as_str() > "u-000005")
            .expect("a direct-only member beyond the renamed ones");
        d.memberships.retain(|m| !(&m.group == h && m.member == leaver));
        idp.leave(d, h, &leaver);
    }
    10
}
