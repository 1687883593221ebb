//! The packed wire (`roster-wire`): a batch of users, groups or outcomes as the host and its
//! transforms exchange it, read by the checking reader (the host reading a guest's answer)
//! and the trusting one (a guest reading its host's batch).
//!
//! Input: the batch's bytes, as they would cross the component boundary.

use roster_wire::{
    Edit, KeptUser, Patch, Reader, User, UserOutcome, Writer, decode_group_outcomes, decode_groups,
    decode_user_outcomes, decode_user_outcomes_over, decode_users, encode_groups, encode_users,
};

/// Every reading of `data`; whatever decodes must encode back to the same bytes (the format
/// has one encoding per value), and the readers must agree with each other.
pub fn run(data: &[u8]) {
    users(data);
    groups(data);
    outcomes(data);
    patched_outcomes(data);
    trusted(data);
}

fn users(data: &[u8]) {
    let Ok(users) = decode_users(data) else { return };
    assert_eq!(
        encode_users(users.iter().map(Into::into)),
        data,
        "users re-encode differently"
    );
    let mut r = Reader::new(data).expect("decoded once");
    let mut scratch = Vec::new();
    for u in &users {
        let view = r.user_view_in(std::mem::take(&mut scratch)).expect("decoded once");
        assert_eq!(&User::from(&view), u, "user_view_in and user disagree");
        scratch = view.attributes;
        scratch.clear();
    }
    r.end().expect("decoded once");
}

fn groups(data: &[u8]) {
    let Ok(groups) = decode_groups(data) else { return };
    assert_eq!(
        encode_groups(groups.iter().map(Into::into)),
        data,
        "groups re-encode differently"
    );
}

fn outcomes(data: &[u8]) {
    if let Ok(outcomes) = decode_user_outcomes(data) {
        let mut w = Writer::new(outcomes.len(), data.len());
        for o in &outcomes {
            w.user_outcome(o.user.as_ref().map(Into::into), o.reason.as_deref(), o.error.as_deref());
        }
        assert_eq!(w.finish(), data, "user outcomes re-encode differently");
    }
    if let Ok(outcomes) = decode_group_outcomes(data) {
        let mut w = Writer::new(outcomes.len(), data.len());
        for o in &outcomes {
            w.group_outcome(o.groups.iter().map(Into::into), o.reason.as_deref(), o.error.as_deref());
        }
        assert_eq!(w.finish(), data, "group outcomes re-encode differently");
    }
}

/// The inputs a transform's answer is read over: as many as the batch announces.
fn inputs(data: &[u8]) -> Option<Vec<User>> {
    let n = Reader::new(data).ok()?.count();
    (n <= 256).then(|| {
        (0..n)
            .map(|i| User {
                id: format!("id-{i}"),
                username: format!("user{i}"),
                email: (i % 2 == 0).then(|| format!("user{i}@example.com")),
                display_name: None,
                active: i % 3 != 0,
                attributes: vec![
                    ("department".into(), "R&D".into()),
                    ("Mail".into(), format!("u{i}@x")),
                    ("department".into(), "Ops".into()),
                ],
            })
            .collect()
    })
}

/// What applying `p` must give: the fields it sets, then its edits one by one, in order.
fn reference_patch(mut u: User, p: &Patch<'_>) -> User {
    if let Some(name) = p.fields.username {
        u.username = name.to_string();
    }
    if let Some(e) = p.fields.email {
        u.email = e.map(str::to_string);
    }
    if let Some(d) = p.fields.display_name {
        u.display_name = d.map(str::to_string);
    }
    if let Some(a) = p.fields.active {
        u.active = a;
    }
    for edit in &p.edits {
        match *edit {
            Edit::Remove(name) => u.attributes.retain(|(n, _)| !n.eq_ignore_ascii_case(name)),
            Edit::Append(name, value) => u.attributes.push((name.to_string(), value.to_string())),
        }
    }
    u
}

/// Answers written as patches of the inputs: the host's reading (which applies large patches
/// by a faster route) must match applying each edit in order.
fn patched_outcomes(data: &[u8]) {
    let Some(inputs) = inputs(data) else { return };
    let Ok(decoded) = decode_user_outcomes_over(&inputs, data) else {
        return;
    };
    let mut r = Reader::new(data).expect("decoded once");
    for (input, got) in inputs.iter().zip(&decoded) {
        let view = r.user_outcome_view().expect("decoded once");
        let user = view.user.map(|kept| match kept {
            KeptUser::Whole(v) => User::from(&v),
            KeptUser::Patch(p) => reference_patch(input.clone(), &p),
        });
        let expected = UserOutcome {
            user,
            reason: view.reason.map(str::to_string),
            error: view.error.map(str::to_string),
        };
        assert_eq!(
            got, &expected,
            "a patched outcome differs from applying its edits in order"
        );
    }
}

/// The trusting reader on a batch whose strings are all UTF-8 (every byte ASCII, so any
/// slice of it is): it may skip the UTF-8 check, nothing else, so it reads what the checking
/// reader reads.
fn trusted(data: &[u8]) {
    let ascii: Vec<u8> = data.iter().map(|b| b & 0x7f).collect();
    let read = |r: Result<Reader<'_>, _>| {
        r.and_then(|r: Reader<'_>| r.all(Reader::user_outcome_view))
            .map(|v| format!("{v:?}"))
            .map_err(|e| e.to_string())
    };
    let checked = read(Reader::new(&ascii));
    // SAFETY: every byte of `ascii` is ASCII, so every string in it is UTF-8.
    let trusting = read(unsafe { Reader::from_host(&ascii) });
    assert_eq!(checked, trusting, "the trusting and checking readers disagree");
    let users = |r: Result<Reader<'_>, _>| r.and_then(|r: Reader<'_>| r.all(Reader::user));
    // SAFETY: as above.
    assert_eq!(users(Reader::new(&ascii)), users(unsafe { Reader::from_host(&ascii) }));
}
