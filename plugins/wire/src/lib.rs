//! Roster's packed encoding of transform batches (`roster:plugin/transform-packed`).
//!
//! Carrying a batch across the component boundary record by record costs one guest allocation
//! call and one UTF-8 check per string — about forty per user, most of the price of a transform.
//! Packed, a batch crosses as one byte list each way; the host and the Rust SDK encode and
//! decode it here, on either side of the sandbox. Decoding never trusts its input: a short,
//! overlong or non-UTF-8 buffer is an error, never a panic (a guest may skip the UTF-8 check of
//! what its host sent, [`Reader::from_host`]). A transform may answer a kept user as a
//! [`Patch`] of the one it was sent, so what it left alone does not cross back.
//!
//! Layout (all integers little-endian `u32`):
//! - a batch: the magic `R1`, a count, then that many items;
//! - a string: its byte length, then UTF-8 bytes; an option: a byte 0 (none) or 1, then the value;
//! - a user: id, username, email?, display name?, active (a byte 0/1), then a count of attribute
//!   pairs and each pair's name and value;
//! - a group: id, name, description?, attribute pairs;
//! - a user outcome: a byte 0 (no user), 1 (a whole user follows) or 2 (a patch follows), then
//!   reason?, error?; a group outcome: a count of groups, the groups, reason?, error?;
//! - a patch (a kept user as changes to the user the host sent): username, email and display
//!   name each a byte 0 (the input's), 1 (none) or 2 then the new value; active a byte 0 (the
//!   input's), 1 (false) or 2 (true); then a count of attribute edits, applied in order, each a
//!   byte 0 and a name (remove every pair of that name, ASCII case-insensitive) or a byte 1, a
//!   name and a value (append the pair).

use std::fmt;

const MAGIC: &[u8; 2] = b"R1";

/// Attribute edits one patch may hold: far more than any directory gives one user, and it bounds
/// what reading a hostile patch reserves.
pub const MAX_EDITS: usize = 65_536;

/// One person, as the WIT `user` record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    /// The IdP's immutable id.
    pub id: String,
    /// The login name.
    pub username: String,
    /// Email.
    pub email: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Not disabled.
    pub active: bool,
    /// Raw attributes, (name, value).
    pub attributes: Vec<(String, String)>,
}

/// One group, as the WIT `group` record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    /// The IdP's immutable id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Raw attributes, (name, value).
    pub attributes: Vec<(String, String)>,
}

/// What became of one user, as the WIT `user-outcome` record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserOutcome {
    /// The mapped user; none: filtered out.
    pub user: Option<User>,
    /// Which rule decided.
    pub reason: Option<String>,
    /// Why it could not be evaluated.
    pub error: Option<String>,
}

/// What became of one group, as the WIT `group-outcome` record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupOutcome {
    /// The resulting groups.
    pub groups: Vec<Group>,
    /// Which rule decided.
    pub reason: Option<String>,
    /// Why it could not be evaluated.
    pub error: Option<String>,
}

/// A user's fields borrowed from a packed batch: what a transform reads when it should copy
/// nothing it does not change ([`Reader::user_view`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserView<'a> {
    /// The IdP's immutable id.
    pub id: &'a str,
    /// The login name.
    pub username: &'a str,
    /// Email.
    pub email: Option<&'a str>,
    /// Display name.
    pub display_name: Option<&'a str>,
    /// Not disabled.
    pub active: bool,
    /// Raw attributes.
    pub attributes: Vec<(&'a str, &'a str)>,
}

/// The fields of a kept user a patch changes; `None` keeps the input's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PatchFields<'a> {
    /// A new login name.
    pub username: Option<&'a str>,
    /// A new email (`Some(None)`: none).
    pub email: Option<Option<&'a str>>,
    /// A new display name (`Some(None)`: none).
    pub display_name: Option<Option<&'a str>>,
    /// A new active flag.
    pub active: Option<bool>,
}

/// One change to a user's attribute pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit<'a> {
    /// Remove every pair with this name (ASCII case-insensitive).
    Remove(&'a str),
    /// Append this pair.
    Append(&'a str, &'a str),
}

/// A kept user written as changes to the user the host sent ([`Writer::patched_user`]): the
/// host applies them to its own record ([`apply_patch`]), so what a transform left alone neither
/// crosses back nor is allocated again.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Patch<'a> {
    /// The fields changed.
    pub fields: PatchFields<'a>,
    /// The attribute edits, in order.
    pub edits: Vec<Edit<'a>>,
}

/// The user in a user outcome, as the transform wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeptUser<'a> {
    /// Every field given.
    Whole(UserView<'a>),
    /// Changes to the input user.
    Patch(Patch<'a>),
}

/// A user outcome borrowed from a packed batch ([`Reader::user_outcome_view`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserOutcomeView<'a> {
    /// The mapped user; none: filtered out.
    pub user: Option<KeptUser<'a>>,
    /// Which rule decided.
    pub reason: Option<&'a str>,
    /// Why it could not be evaluated.
    pub error: Option<&'a str>,
}

/// Applies `p` to a user's fields. The fields come one by one because the host's and the SDK's
/// records are distinct types with the same fields; new strings reuse the old ones' buffers.
pub fn apply_patch(
    p: &Patch<'_>,
    username: &mut String,
    email: &mut Option<String>,
    display_name: &mut Option<String>,
    active: &mut bool,
    attributes: &mut Vec<(String, String)>,
) {
    fn set(s: &mut String, v: &str) {
        s.clear();
        s.push_str(v);
    }
    fn set_opt(s: &mut Option<String>, v: Option<&str>) {
        match (s.as_mut(), v) {
            (Some(s), Some(v)) => set(s, v),
            (_, v) => *s = v.map(str::to_owned),
        }
    }
    let f = &p.fields;
    if let Some(u) = f.username {
        set(username, u);
    }
    if let Some(e) = f.email {
        set_opt(email, e);
    }
    if let Some(d) = f.display_name {
        set_opt(display_name, d);
    }
    if let Some(a) = f.active {
        *active = a;
    }
    // Applied one by one, every removal rescans the list: fine for the few edits a mapping
    // makes, quadratic for a hostile plugin's millions. Past a small size, the same result in
    // linear time.
    if p.edits.len().saturating_mul(attributes.len() + p.edits.len()) <= 4096 {
        apply_edits_in_order(&p.edits, attributes);
    } else {
        apply_edits_linear(&p.edits, attributes);
    }
}

fn apply_edits_in_order(edits: &[Edit<'_>], attributes: &mut Vec<(String, String)>) {
    for edit in edits {
        match *edit {
            Edit::Remove(name) => attributes.retain(|(n, _)| !n.eq_ignore_ascii_case(name)),
            Edit::Append(name, value) => attributes.push((name.to_owned(), value.to_owned())),
        }
    }
}

/// What [`apply_edits_in_order`] leaves, in one pass over the edits from the last: an appended
/// pair survives unless a later edit removes its name, an input pair unless any edit does.
fn apply_edits_linear(edits: &[Edit<'_>], attributes: &mut Vec<(String, String)>) {
    let mut removed: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut appended = Vec::new();
    for edit in edits.iter().rev() {
        match *edit {
            Edit::Remove(name) => {
                removed.insert(name.to_ascii_lowercase());
            }
            Edit::Append(name, value) => {
                if !removed.contains(&name.to_ascii_lowercase()) {
                    appended.push((name, value));
                }
            }
        }
    }
    if !removed.is_empty() {
        attributes.retain(|(n, _)| !removed.contains(&n.to_ascii_lowercase()));
    }
    attributes.extend(appended.into_iter().rev().map(|(n, v)| (n.to_owned(), v.to_owned())));
}

impl User {
    /// Applies a patch to this user ([`apply_patch`]).
    pub fn apply(&mut self, p: &Patch<'_>) {
        apply_patch(
            p,
            &mut self.username,
            &mut self.email,
            &mut self.display_name,
            &mut self.active,
            &mut self.attributes,
        );
    }
}

/// A user's fields, borrowed: the host encodes its records without copying them first.
#[derive(Debug, Clone, Copy)]
pub struct UserRef<'a> {
    /// The IdP's immutable id.
    pub id: &'a str,
    /// The login name.
    pub username: &'a str,
    /// Email.
    pub email: Option<&'a str>,
    /// Display name.
    pub display_name: Option<&'a str>,
    /// Not disabled.
    pub active: bool,
    /// Raw attributes.
    pub attributes: &'a [(String, String)],
}

/// A group's fields, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct GroupRef<'a> {
    /// The IdP's immutable id.
    pub id: &'a str,
    /// Name.
    pub name: &'a str,
    /// Description.
    pub description: Option<&'a str>,
    /// Raw attributes.
    pub attributes: &'a [(String, String)],
}

impl<'a> From<&'a User> for UserRef<'a> {
    fn from(u: &'a User) -> Self {
        UserRef {
            id: &u.id,
            username: &u.username,
            email: u.email.as_deref(),
            display_name: u.display_name.as_deref(),
            active: u.active,
            attributes: &u.attributes,
        }
    }
}

impl From<&UserView<'_>> for User {
    fn from(v: &UserView<'_>) -> Self {
        User {
            id: v.id.to_owned(),
            username: v.username.to_owned(),
            email: v.email.map(str::to_owned),
            display_name: v.display_name.map(str::to_owned),
            active: v.active,
            attributes: v
                .attributes
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }
}

impl<'a> From<&'a Group> for GroupRef<'a> {
    fn from(g: &'a Group) -> Self {
        GroupRef {
            id: &g.id,
            name: &g.name,
            description: g.description.as_deref(),
            attributes: &g.attributes,
        }
    }
}

/// Conversions between this crate's records and generated bindings with the same fields: the
/// host's (wasmtime `bindgen!`) and the SDK's (`wit_bindgen::generate!`) are distinct types, so
/// each side expands this once instead of writing the field lists again. Defines `user_ref`,
/// `group_ref`, `user`, `group`, `patch_user`, `user_outcome` and `group_outcome` in the calling
/// module.
#[macro_export]
macro_rules! conversions {
    ($user:ident, $group:ident, $user_outcome:ident, $group_outcome:ident) => {
        #[allow(dead_code)]
        fn user_ref(u: &$user) -> $crate::UserRef<'_> {
            $crate::UserRef {
                id: &u.id,
                username: &u.username,
                email: u.email.as_deref(),
                display_name: u.display_name.as_deref(),
                active: u.active,
                attributes: &u.attributes,
            }
        }

        #[allow(dead_code)]
        fn group_ref(g: &$group) -> $crate::GroupRef<'_> {
            $crate::GroupRef {
                id: &g.id,
                name: &g.name,
                description: g.description.as_deref(),
                attributes: &g.attributes,
            }
        }

        #[allow(dead_code)]
        fn user(u: $crate::User) -> $user {
            $user {
                id: u.id,
                username: u.username,
                email: u.email,
                display_name: u.display_name,
                active: u.active,
                attributes: u.attributes,
            }
        }

        #[allow(dead_code)]
        fn group(g: $crate::Group) -> $group {
            $group {
                id: g.id,
                name: g.name,
                description: g.description,
                attributes: g.attributes,
            }
        }

        #[allow(dead_code)]
        fn patch_user(u: &mut $user, p: &$crate::Patch<'_>) {
            $crate::apply_patch(
                p,
                &mut u.username,
                &mut u.email,
                &mut u.display_name,
                &mut u.active,
                &mut u.attributes,
            )
        }

        #[allow(dead_code)]
        fn user_outcome(o: $crate::UserOutcome) -> $user_outcome {
            $user_outcome {
                user: o.user.map(user),
                reason: o.reason,
                error: o.error,
            }
        }

        #[allow(dead_code)]
        fn group_outcome(o: $crate::GroupOutcome) -> $group_outcome {
            $group_outcome {
                groups: o.groups.into_iter().map(group).collect(),
                reason: o.reason,
                error: o.error,
            }
        }
    };
}

/// Why a buffer could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset where decoding stopped.
    pub at: usize,
    /// What was wrong there.
    pub what: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "packed batch: {} at byte {}", self.what, self.at)
    }
}

impl std::error::Error for DecodeError {}

/// Builds a packed batch.
#[derive(Debug)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// A batch of `count` items, with room for about `bytes` bytes.
    pub fn new(count: usize, bytes: usize) -> Writer {
        let mut buf = Vec::with_capacity(bytes + 6);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&(count as u32).to_le_bytes());
        Writer { buf }
    }

    /// The encoded batch.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    #[inline(always)]
    fn len(&mut self, n: usize) {
        self.buf.extend_from_slice(&(n as u32).to_le_bytes());
    }

    #[inline(always)]
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.buf.extend_from_slice(s.as_bytes());
    }

    #[inline(always)]
    fn opt(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.buf.push(1);
                self.str(s);
            }
            None => self.buf.push(0),
        }
    }

    fn pairs(&mut self, pairs: &[(String, String)]) {
        self.len(pairs.len());
        for (n, v) in pairs {
            self.str(n);
            self.str(v);
        }
    }

    /// Appends a user.
    pub fn user(&mut self, u: UserRef<'_>) {
        self.str(u.id);
        self.str(u.username);
        self.opt(u.email);
        self.opt(u.display_name);
        self.buf.push(u.active as u8);
        self.pairs(u.attributes);
    }

    /// Appends the outcome "kept, as the input user with these changes".
    pub fn patched_user<'b>(
        &mut self,
        fields: PatchFields<'_>,
        edits: impl IntoIterator<Item = Edit<'b>>,
        reason: Option<&str>,
    ) {
        self.buf.push(2);
        self.tri(fields.username.map(Some));
        self.tri(fields.email);
        self.tri(fields.display_name);
        self.buf.push(match fields.active {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        });
        // The count is written once the edits are (a transform streams them from its changes).
        let at = self.buf.len();
        self.len(0);
        let mut count = 0usize;
        for edit in edits {
            match edit {
                Edit::Remove(name) => {
                    self.buf.push(0);
                    self.str(name);
                }
                Edit::Append(name, value) => {
                    self.buf.push(1);
                    self.str(name);
                    self.str(value);
                }
            }
            count += 1;
        }
        self.buf[at..at + 4].copy_from_slice(&(count as u32).to_le_bytes());
        self.opt(reason);
        self.opt(None);
    }

    /// A patched field: 0 the input's, 1 none, 2 this value.
    #[inline(always)]
    fn tri(&mut self, v: Option<Option<&str>>) {
        match v {
            None => self.buf.push(0),
            Some(None) => self.buf.push(1),
            Some(Some(s)) => {
                self.buf.push(2);
                self.str(s);
            }
        }
    }

    /// Appends an outcome without a user: filtered out (`reason`) or failed (`error`).
    pub fn no_user(&mut self, reason: Option<&str>, error: Option<&str>) {
        self.buf.push(0);
        self.opt(reason);
        self.opt(error);
    }

    /// Appends a group.
    pub fn group(&mut self, g: GroupRef<'_>) {
        self.str(g.id);
        self.str(g.name);
        self.opt(g.description);
        self.pairs(g.attributes);
    }

    /// Appends a user outcome.
    pub fn user_outcome(&mut self, user: Option<UserRef<'_>>, reason: Option<&str>, error: Option<&str>) {
        match user {
            Some(u) => {
                self.buf.push(1);
                self.user(u);
            }
            None => self.buf.push(0),
        }
        self.opt(reason);
        self.opt(error);
    }

    /// Appends a group outcome.
    pub fn group_outcome<'a>(
        &mut self,
        groups: impl ExactSizeIterator<Item = GroupRef<'a>>,
        reason: Option<&str>,
        error: Option<&str>,
    ) {
        self.len(groups.len());
        for g in groups {
            self.group(g);
        }
        self.opt(reason);
        self.opt(error);
    }
}

/// Whether `b` is all ASCII, eight bytes at a time and without branching per chunk: strings in
/// a batch are short and nearly always ASCII, where `<[u8]>::is_ascii`'s alignment handling
/// costs more than the check inside a WebAssembly guest.
#[inline]
fn is_ascii(b: &[u8]) -> bool {
    let (chunks, rest) = b.as_chunks::<8>();
    let high = chunks.iter().fold(0u64, |acc, c| acc | u64::from_ne_bytes(*c));
    let tail = rest.iter().fold(0u8, |acc, &c| acc | c);
    high & 0x8080_8080_8080_8080 == 0 && tail < 0x80
}

/// Reads a packed batch.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
    /// Items announced by the header and not read yet.
    remaining: usize,
    /// Strings are taken as UTF-8 without checking ([`Reader::from_host`]).
    trusted: bool,
}

impl<'a> Reader<'a> {
    /// Checks the header; then read exactly [`Reader::count`] items.
    pub fn new(buf: &'a [u8]) -> Result<Reader<'a>, DecodeError> {
        if buf.len() < 6 || &buf[..2] != MAGIC {
            return Err(DecodeError {
                at: 0,
                what: "not a packed batch (no R1 header)",
            });
        }
        let count = u32::from_le_bytes([buf[2], buf[3], buf[4], buf[5]]) as usize;
        Ok(Reader {
            buf,
            at: 6,
            remaining: count,
            trusted: false,
        })
    }

    /// [`Reader::new`] for a guest reading the batch its host sent. In release builds for
    /// WebAssembly, strings are taken as UTF-8 without checking, as `wit-bindgen` lifts the
    /// strings a host passes; lengths and counts are still checked, so a broken batch is still
    /// an error. The host reads a guest's answers with [`Reader::new`]: that is where the trust
    /// boundary is.
    ///
    /// # Safety
    ///
    /// Every string in `buf` must be UTF-8: true of a batch the Roster host encoded (from Rust
    /// strings) and handed to this component.
    pub unsafe fn from_host(buf: &'a [u8]) -> Result<Reader<'a>, DecodeError> {
        let mut r = Reader::new(buf)?;
        r.trusted = cfg!(target_arch = "wasm32") && !cfg!(debug_assertions);
        Ok(r)
    }

    /// The batch's size in bytes: a trusted bound for sizing an answer (a count is not).
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    /// How many items the batch holds.
    pub fn count(&self) -> usize {
        self.remaining
    }

    fn fail<T>(&self, what: &'static str) -> Result<T, DecodeError> {
        Err(DecodeError { at: self.at, what })
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        match self.buf.get(self.at..self.at.saturating_add(n)) {
            Some(s) if self.at.checked_add(n).is_some() => {
                self.at += n;
                Ok(s)
            }
            _ => self.fail("truncated"),
        }
    }

    #[inline(always)]
    fn len(&mut self) -> Result<usize, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    /// A count of items that each take at least `min` bytes: refused when the rest of the
    /// buffer cannot hold them, so a hostile count cannot make us reserve gigabytes.
    #[inline(always)]
    fn count_of(&mut self, min: usize) -> Result<usize, DecodeError> {
        let n = self.len()?;
        if n.saturating_mul(min) > self.buf.len() - self.at {
            return self.fail("count larger than the batch");
        }
        Ok(n)
    }

    #[inline(always)]
    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    #[inline(always)]
    fn flag(&mut self) -> Result<bool, DecodeError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => {
                self.at -= 1;
                self.fail("flag is neither 0 nor 1")
            }
        }
    }

    #[inline(always)]
    fn str_ref(&mut self) -> Result<&'a str, DecodeError> {
        let n = self.len()?;
        let start = self.at;
        let bytes = self.take(n)?;
        if self.trusted {
            // SAFETY: the caller of `from_host` vouched that every string is UTF-8.
            return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
        }
        // Most directory strings are ASCII, and checking that is cheaper than full UTF-8
        // validation.
        if is_ascii(bytes) {
            // SAFETY: ASCII bytes are valid UTF-8.
            return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
        }
        std::str::from_utf8(bytes).map_err(|_| DecodeError {
            at: start,
            what: "string is not UTF-8",
        })
    }

    fn str(&mut self) -> Result<String, DecodeError> {
        self.str_ref().map(str::to_owned)
    }

    #[inline(always)]
    fn opt_ref(&mut self) -> Result<Option<&'a str>, DecodeError> {
        if self.flag()? {
            self.str_ref().map(Some)
        } else {
            Ok(None)
        }
    }

    fn opt(&mut self) -> Result<Option<String>, DecodeError> {
        self.opt_ref().map(|o| o.map(str::to_owned))
    }

    fn pairs(&mut self) -> Result<Vec<(String, String)>, DecodeError> {
        let n = self.count_of(8)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push((self.str()?, self.str()?));
        }
        Ok(out)
    }

    fn item(&mut self) -> Result<(), DecodeError> {
        if self.remaining == 0 {
            return self.fail("more items read than the batch holds");
        }
        self.remaining -= 1;
        Ok(())
    }

    fn read_user(&mut self) -> Result<User, DecodeError> {
        Ok(User {
            id: self.str()?,
            username: self.str()?,
            email: self.opt()?,
            display_name: self.opt()?,
            active: self.flag()?,
            attributes: self.pairs()?,
        })
    }

    fn read_group(&mut self) -> Result<Group, DecodeError> {
        Ok(Group {
            id: self.str()?,
            name: self.str()?,
            description: self.opt()?,
            attributes: self.pairs()?,
        })
    }

    /// The next user.
    pub fn user(&mut self) -> Result<User, DecodeError> {
        self.item()?;
        self.read_user()
    }

    /// The next user, its strings borrowed from the batch (only the attribute list is
    /// allocated).
    pub fn user_view(&mut self) -> Result<UserView<'a>, DecodeError> {
        self.user_view_in(Vec::new())
    }

    /// [`Reader::user_view`] filling `attributes` (cleared first): a transform reading a batch
    /// reuses one list for every user instead of allocating one each.
    pub fn user_view_in(&mut self, mut attributes: Vec<(&'a str, &'a str)>) -> Result<UserView<'a>, DecodeError> {
        self.item()?;
        let (id, username) = (self.str_ref()?, self.str_ref()?);
        let (email, display_name) = (self.opt_ref()?, self.opt_ref()?);
        let active = self.flag()?;
        let n = self.count_of(8)?;
        attributes.clear();
        attributes.reserve(n);
        for _ in 0..n {
            attributes.push((self.str_ref()?, self.str_ref()?));
        }
        Ok(UserView {
            id,
            username,
            email,
            display_name,
            active,
            attributes,
        })
    }

    /// The next group.
    pub fn group(&mut self) -> Result<Group, DecodeError> {
        self.item()?;
        self.read_group()
    }

    /// The next user outcome, when it carries no patch (a patch needs the input it patches:
    /// read those with [`Reader::user_outcome_view`] or [`decode_user_outcomes_over`]).
    pub fn user_outcome(&mut self) -> Result<UserOutcome, DecodeError> {
        self.item()?;
        let user = match self.byte()? {
            0 => None,
            1 => Some(self.read_user()?),
            _ => {
                self.at -= 1;
                return self.fail("a patched user where whole ones were expected");
            }
        };
        Ok(UserOutcome {
            user,
            reason: self.opt()?,
            error: self.opt()?,
        })
    }

    /// The next user outcome, its strings borrowed from the batch.
    pub fn user_outcome_view(&mut self) -> Result<UserOutcomeView<'a>, DecodeError> {
        let user = match self.buf.get(self.at) {
            Some(0) => {
                self.item()?;
                self.at += 1;
                None
            }
            Some(1) => {
                self.at += 1;
                Some(KeptUser::Whole(self.user_view()?))
            }
            Some(2) => {
                self.item()?;
                self.at += 1;
                Some(KeptUser::Patch(self.patch()?))
            }
            Some(_) => return self.fail("user tag is not 0, 1 or 2"),
            None => return self.fail("truncated"),
        };
        Ok(UserOutcomeView {
            user,
            reason: self.opt_ref()?,
            error: self.opt_ref()?,
        })
    }

    fn patch(&mut self) -> Result<Patch<'a>, DecodeError> {
        let username = match self.tri()? {
            Some(None) => {
                self.at -= 1;
                return self.fail("a patch cannot remove the username");
            }
            u => u.flatten(),
        };
        let (email, display_name) = (self.tri()?, self.tri()?);
        let active = match self.byte()? {
            0 => None,
            1 => Some(false),
            2 => Some(true),
            _ => {
                self.at -= 1;
                return self.fail("active tag is not 0, 1 or 2");
            }
        };
        let n = self.count_of(5)?;
        if n > MAX_EDITS {
            return self.fail("a patch of more than 65,536 attribute edits");
        }
        let mut edits = Vec::with_capacity(n);
        for _ in 0..n {
            edits.push(match self.byte()? {
                0 => Edit::Remove(self.str_ref()?),
                1 => Edit::Append(self.str_ref()?, self.str_ref()?),
                _ => {
                    self.at -= 1;
                    return self.fail("edit tag is neither 0 nor 1");
                }
            });
        }
        Ok(Patch {
            fields: PatchFields {
                username,
                email,
                display_name,
                active,
            },
            edits,
        })
    }

    /// A patched field: 0 the input's, 1 none, 2 a value.
    fn tri(&mut self) -> Result<Option<Option<&'a str>>, DecodeError> {
        match self.byte()? {
            0 => Ok(None),
            1 => Ok(Some(None)),
            2 => Ok(Some(Some(self.str_ref()?))),
            _ => {
                self.at -= 1;
                self.fail("field tag is not 0, 1 or 2")
            }
        }
    }

    /// The next group outcome.
    pub fn group_outcome(&mut self) -> Result<GroupOutcome, DecodeError> {
        self.item()?;
        let n = self.count_of(13)?;
        let mut groups = Vec::with_capacity(n);
        for _ in 0..n {
            groups.push(self.read_group()?);
        }
        Ok(GroupOutcome {
            groups,
            reason: self.opt()?,
            error: self.opt()?,
        })
    }

    /// Every item is read and no byte is left over.
    pub fn end(&self) -> Result<(), DecodeError> {
        if self.remaining != 0 {
            return self.fail("fewer items than the header announced");
        }
        if self.at != self.buf.len() {
            return self.fail("bytes left after the last item");
        }
        Ok(())
    }

    /// Reads all items with `next`, then checks the end.
    pub fn all<T>(mut self, mut next: impl FnMut(&mut Self) -> Result<T, DecodeError>) -> Result<Vec<T>, DecodeError> {
        let mut out = Vec::with_capacity(self.remaining.min(self.buf.len() / 4));
        while self.remaining > 0 {
            out.push(next(&mut self)?);
        }
        self.end()?;
        Ok(out)
    }
}

/// Encodes a batch of users.
pub fn encode_users<'a>(users: impl ExactSizeIterator<Item = UserRef<'a>> + Clone) -> Vec<u8> {
    // The exact size first: one allocation, no larger than the batch.
    let opt = |s: Option<&str>| 1 + s.map_or(0, |s| 4 + s.len());
    let bytes = users
        .clone()
        .map(|u| {
            8 + u.id.len()
                + u.username.len()
                + opt(u.email)
                + opt(u.display_name)
                + 5
                + u.attributes.iter().map(|(n, v)| 8 + n.len() + v.len()).sum::<usize>()
        })
        .sum();
    let mut w = Writer::new(users.len(), bytes);
    for u in users {
        w.user(u);
    }
    w.finish()
}

/// Encodes a batch of groups.
pub fn encode_groups<'a>(groups: impl ExactSizeIterator<Item = GroupRef<'a>>) -> Vec<u8> {
    let mut w = Writer::new(groups.len(), groups.len() * 128);
    for g in groups {
        w.group(g);
    }
    w.finish()
}

/// Decodes a batch of users.
pub fn decode_users(buf: &[u8]) -> Result<Vec<User>, DecodeError> {
    Reader::new(buf)?.all(Reader::user)
}

/// Decodes a batch of groups.
pub fn decode_groups(buf: &[u8]) -> Result<Vec<Group>, DecodeError> {
    Reader::new(buf)?.all(Reader::group)
}

/// Decodes a batch of user outcomes.
pub fn decode_user_outcomes(buf: &[u8]) -> Result<Vec<UserOutcome>, DecodeError> {
    Reader::new(buf)?.all(Reader::user_outcome)
}

/// Decodes a batch of user outcomes written for `inputs`, patches applied to copies of them. A
/// whole user keeps the id the transform gave it (the host, unlike this, always keeps the
/// input's).
pub fn decode_user_outcomes_over(inputs: &[User], buf: &[u8]) -> Result<Vec<UserOutcome>, DecodeError> {
    let mut r = Reader::new(buf)?;
    if r.count() != inputs.len() {
        return r.fail("a different number of outcomes than inputs");
    }
    let mut out = Vec::with_capacity(inputs.len());
    for input in inputs {
        let o = r.user_outcome_view()?;
        let user = o.user.map(|kept| match kept {
            KeptUser::Whole(v) => User::from(&v),
            KeptUser::Patch(p) => {
                let mut u = input.clone();
                u.apply(&p);
                u
            }
        });
        out.push(UserOutcome {
            user,
            reason: o.reason.map(str::to_owned),
            error: o.error.map(str::to_owned),
        });
    }
    r.end()?;
    Ok(out)
}

/// Decodes a batch of group outcomes.
pub fn decode_group_outcomes(buf: &[u8]) -> Result<Vec<GroupOutcome>, DecodeError> {
    Reader::new(buf)?.all(Reader::group_outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> User {
        User {
            id: "0b1c-ü".into(),
            username: "alice@contoso.example".into(),
            email: Some("alice@contoso.example".into()),
            display_name: None,
            active: true,
            attributes: vec![("department".into(), "R&D".into()), ("".into(), "".into())],
        }
    }

    fn dev() -> Group {
        Group {
            id: "g1".into(),
            name: "AAD-dev".into(),
            description: Some("Developers".into()),
            attributes: vec![],
        }
    }

    #[test]
    fn batches_round_trip() {
        let users = vec![alice(), User::default(), alice()];
        let bytes = encode_users(users.iter().map(UserRef::from));
        assert_eq!(bytes.capacity(), bytes.len(), "a user batch is sized exactly");
        assert_eq!(
            decode_users(&encode_users(users.iter().map(UserRef::from))).unwrap(),
            users
        );
        let groups = vec![dev(), Group::default()];
        assert_eq!(
            decode_groups(&encode_groups(groups.iter().map(GroupRef::from))).unwrap(),
            groups
        );
        let mut w = Writer::new(3, 0);
        w.user_outcome(Some((&alice()).into()), Some("rule 1"), None);
        w.user_outcome(None, Some("out of scope"), None);
        w.user_outcome(None, None, Some("bad expression"));
        let got = decode_user_outcomes(&w.finish()).unwrap();
        assert_eq!(got[0].user.as_ref().unwrap(), &alice());
        assert_eq!(got[1].reason.as_deref(), Some("out of scope"));
        assert_eq!(got[2].error.as_deref(), Some("bad expression"));
        let mut w = Writer::new(2, 0);
        let two = [dev(), Group::default()];
        w.group_outcome(two.iter().map(GroupRef::from), Some("fan out"), None);
        w.group_outcome(std::iter::empty(), None, None);
        let got = decode_group_outcomes(&w.finish()).unwrap();
        assert_eq!(got[0].groups, two);
        assert!(got[1].groups.is_empty());
        assert_eq!(decode_users(&encode_users(std::iter::empty())).unwrap(), vec![]);
    }

    #[test]
    fn views_borrow_what_users_own_and_outcomes_written_by_parts_read_back() {
        let users = [alice(), User::default()];
        let batch = encode_users(users.iter().map(UserRef::from));
        let mut r = Reader::new(&batch).unwrap();
        let views: Vec<UserView<'_>> = (0..r.count()).map(|_| r.user_view().unwrap()).collect();
        r.end().unwrap();
        assert_eq!(views[0].username, "alice@contoso.example");
        assert_eq!(views[0].display_name, None);
        assert_eq!(views[0].attributes, vec![("department", "R&D"), ("", "")]);
        assert_eq!(views[1], UserView::default());
        let mut w = Writer::new(2, 0);
        let owned = User::from(&views[0]);
        w.user_outcome(Some((&owned).into()), Some("r"), None);
        w.no_user(None, Some("bad"));
        let got = decode_user_outcomes(&w.finish()).unwrap();
        assert_eq!(got[0].user.as_ref().unwrap(), &alice());
        assert_eq!(got[0].reason.as_deref(), Some("r"));
        assert_eq!((got[1].user.is_none(), got[1].error.as_deref()), (true, Some("bad")));
    }

    /// Outcomes written as patches of `alice()`: every kind of change, and none.
    fn patched_batch() -> Vec<u8> {
        let mut w = Writer::new(3, 0);
        w.patched_user(
            PatchFields {
                username: Some("alice"),
                email: Some(None),
                display_name: Some(Some("Alice")),
                active: Some(false),
            },
            [
                Edit::Append("costCenter", "0001"),
                Edit::Remove("DEPARTMENT"),
                Edit::Remove("COSTCENTER"),
                Edit::Append("costCenter", "4711"),
                Edit::Append("costCenter", "4712"),
            ],
            Some("rule 2"),
        );
        w.patched_user(PatchFields::default(), [], None);
        w.no_user(None, Some("bad"));
        w.finish()
    }

    #[test]
    fn patches_apply_over_the_input_and_need_it() {
        let inputs = [alice(), alice(), alice()];
        let got = decode_user_outcomes_over(&inputs, &patched_batch()).unwrap();
        let changed = got[0].user.as_ref().unwrap();
        assert_eq!(changed.id, "0b1c-ü", "the id is always the input's");
        assert_eq!(changed.username, "alice");
        assert_eq!(changed.email, None);
        assert_eq!(changed.display_name.as_deref(), Some("Alice"));
        assert!(!changed.active);
        assert_eq!(
            changed.attributes,
            vec![
                ("".to_string(), "".to_string()),
                ("costCenter".to_string(), "4711".to_string()),
                ("costCenter".to_string(), "4712".to_string()),
            ],
            "edits in order: department removed whatever its case, a pair appended then replaced"
        );
        assert_eq!(got[0].reason.as_deref(), Some("rule 2"));
        assert_eq!(got[1].user.as_ref().unwrap(), &alice(), "an empty patch is the input");
        assert_eq!(got[2].error.as_deref(), Some("bad"));
        // Without the inputs, or over too few of them, a patched batch is an error.
        assert!(decode_user_outcomes(&patched_batch()).is_err());
        assert!(decode_user_outcomes_over(&inputs[..2], &patched_batch()).is_err());
        // Whole users read the same through either decoder.
        let mut w = Writer::new(1, 0);
        w.user_outcome(Some((&alice()).into()), None, None);
        let whole = w.finish();
        assert_eq!(
            decode_user_outcomes_over(&[User::default()], &whole).unwrap(),
            decode_user_outcomes(&whole).unwrap()
        );
    }

    /// Edits past the small-patch size take the linear path, with the same result as applying
    /// them one by one; more than `MAX_EDITS` are refused before anything is reserved.
    #[test]
    fn large_patches_apply_in_linear_time_with_the_same_result() {
        let names = ["a", "B", "c", "A", "b"];
        let edits: Vec<Edit<'_>> = (0..3000)
            .map(|i| {
                let name = names[i % names.len()];
                if i % 7 == 0 {
                    Edit::Remove(name)
                } else {
                    Edit::Append(name, "v")
                }
            })
            .collect();
        let input: Vec<(String, String)> = ["a", "x", "C", "y"]
            .iter()
            .map(|n| (n.to_string(), "in".to_string()))
            .collect();
        let (mut one_by_one, mut linear) = (input.clone(), input.clone());
        apply_edits_in_order(&edits, &mut one_by_one);
        apply_edits_linear(&edits, &mut linear);
        assert_eq!(linear, one_by_one);
        assert!(linear.iter().any(|(n, _)| n == "x"), "a name never removed stays");
        assert!(
            !linear.iter().any(|(n, v)| n == "a" && v == "in"),
            "a removed input pair goes"
        );
        assert!(
            linear.iter().any(|(_, v)| v == "v"),
            "appends after the last removal stay"
        );
        let mut w = Writer::new(1, 0);
        w.patched_user(PatchFields::default(), (0..=MAX_EDITS).map(|_| Edit::Remove("x")), None);
        let err = decode_user_outcomes_over(&[alice()], &w.finish()).unwrap_err();
        assert_eq!(err.what, "a patch of more than 65,536 attribute edits");
    }

    #[test]
    fn hostile_buffers_are_errors_not_panics() {
        let good = encode_users([alice(), alice()].iter().map(UserRef::from));
        // Every truncation, and every single-byte corruption, decodes to a value or an error.
        for cut in 0..good.len() {
            assert!(decode_users(&good[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..good.len() {
            for b in [0u8, 1, 2, 0x7f, 0xff] {
                let mut bad = good.clone();
                bad[i] = b;
                let _ = decode_users(&bad);
                if let Ok(mut r) = Reader::new(&bad) {
                    for _ in 0..r.count().min(4) {
                        if r.user_view().is_err() {
                            break;
                        }
                    }
                }
                let _ = decode_user_outcomes(&bad);
                let _ = decode_group_outcomes(&bad);
            }
        }
        let patched = patched_batch();
        let inputs = [alice(), alice(), alice()];
        for cut in 0..patched.len() {
            assert!(
                decode_user_outcomes_over(&inputs, &patched[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        for i in 0..patched.len() {
            for b in [0u8, 1, 2, 3, 0x7f, 0xff] {
                let mut bad = patched.clone();
                bad[i] = b;
                let _ = decode_user_outcomes_over(&inputs, &bad);
            }
        }
        let mut extra = good.clone();
        extra.push(0);
        assert_eq!(decode_users(&extra).unwrap_err().what, "bytes left after the last item");
        // A count of four billion items in a few bytes is refused before anything is reserved.
        let mut huge = b"R1".to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_users(&huge).is_err());
        let mut pairs = Writer::new(1, 0);
        pairs.str("id");
        pairs.str("name");
        pairs.opt(None);
        pairs.len(u32::MAX as usize);
        assert_eq!(
            decode_groups(&pairs.finish()).unwrap_err().what,
            "count larger than the batch"
        );
        // Not UTF-8.
        let mut w = Writer::new(1, 0);
        w.user((&User::default()).into());
        let mut bytes = w.finish();
        bytes.splice(10..10, [0xff]);
        bytes[6] = 1; // the id now has one byte: 0xff
        assert!(decode_users(&bytes).is_err());
        assert!(decode_users(b"XX\0\0\0\0").is_err());
    }
}
