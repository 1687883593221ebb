//! Roster's packed encoding of transform batches (`roster:plugin/transform-packed`).
//!
//! Carrying a batch across the component boundary record by record costs one guest allocation
//! call and one UTF-8 check per string — about forty per user, most of the price of a transform.
//! Packed, a batch crosses as one byte list each way; the host and the Rust SDK encode and
//! decode it here, on either side of the sandbox. Decoding never trusts its input: a short,
//! overlong or non-UTF-8 buffer is an error, never a panic.
//!
//! Layout (all integers little-endian `u32`):
//! - a batch: the magic `R1`, a count, then that many items;
//! - a string: its byte length, then UTF-8 bytes; an option: a byte 0 (none) or 1, then the value;
//! - a user: id, username, email?, display name?, active (a byte 0/1), then a count of attribute
//!   pairs and each pair's name and value;
//! - a group: id, name, description?, attribute pairs;
//! - a user outcome: user?, reason?, error?; a group outcome: a count of groups, the groups,
//!   reason?, error?.

use std::fmt;

const MAGIC: &[u8; 2] = b"R1";

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
/// `group_ref`, `user`, `group`, `user_outcome` and `group_outcome` in the calling module.
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

    fn len(&mut self, n: usize) {
        self.buf.extend_from_slice(&(n as u32).to_le_bytes());
    }

    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.buf.extend_from_slice(s.as_bytes());
    }

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
        self.user_fields(
            u.id,
            u.username,
            u.email,
            u.display_name,
            u.active,
            u.attributes.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        );
    }

    /// Appends a user given field by field (attributes from any source of pairs).
    pub fn user_fields<'b>(
        &mut self,
        id: &str,
        username: &str,
        email: Option<&str>,
        display_name: Option<&str>,
        active: bool,
        attributes: impl ExactSizeIterator<Item = (&'b str, &'b str)>,
    ) {
        self.str(id);
        self.str(username);
        self.opt(email);
        self.opt(display_name);
        self.buf.push(active as u8);
        self.len(attributes.len());
        for (n, v) in attributes {
            self.str(n);
            self.str(v);
        }
    }

    /// Appends the outcome "kept as this user", the user given field by field.
    #[allow(clippy::too_many_arguments)]
    pub fn kept_user<'b>(
        &mut self,
        id: &str,
        username: &str,
        email: Option<&str>,
        display_name: Option<&str>,
        active: bool,
        attributes: impl ExactSizeIterator<Item = (&'b str, &'b str)>,
        reason: Option<&str>,
    ) {
        self.buf.push(1);
        self.user_fields(id, username, email, display_name, active, attributes);
        self.opt(reason);
        self.opt(None);
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

/// Reads a packed batch.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
    /// Items announced by the header and not read yet.
    remaining: usize,
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
        })
    }

    /// How many items the batch holds.
    pub fn count(&self) -> usize {
        self.remaining
    }

    fn fail<T>(&self, what: &'static str) -> Result<T, DecodeError> {
        Err(DecodeError { at: self.at, what })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        match self.buf.get(self.at..self.at.saturating_add(n)) {
            Some(s) if self.at.checked_add(n).is_some() => {
                self.at += n;
                Ok(s)
            }
            _ => self.fail("truncated"),
        }
    }

    fn len(&mut self) -> Result<usize, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    /// A count of items that each take at least `min` bytes: refused when the rest of the
    /// buffer cannot hold them, so a hostile count cannot make us reserve gigabytes.
    fn count_of(&mut self, min: usize) -> Result<usize, DecodeError> {
        let n = self.len()?;
        if n.saturating_mul(min) > self.buf.len() - self.at {
            return self.fail("count larger than the batch");
        }
        Ok(n)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

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

    fn str_ref(&mut self) -> Result<&'a str, DecodeError> {
        let n = self.len()?;
        let start = self.at;
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError {
            at: start,
            what: "string is not UTF-8",
        })
    }

    fn str(&mut self) -> Result<String, DecodeError> {
        self.str_ref().map(str::to_owned)
    }

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
        self.item()?;
        let (id, username) = (self.str_ref()?, self.str_ref()?);
        let (email, display_name) = (self.opt_ref()?, self.opt_ref()?);
        let active = self.flag()?;
        let n = self.count_of(8)?;
        let mut attributes = Vec::with_capacity(n);
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

    /// The next user outcome.
    pub fn user_outcome(&mut self) -> Result<UserOutcome, DecodeError> {
        self.item()?;
        let user = if self.flag()? { Some(self.read_user()?) } else { None };
        Ok(UserOutcome {
            user,
            reason: self.opt()?,
            error: self.opt()?,
        })
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
pub fn encode_users<'a>(users: impl ExactSizeIterator<Item = UserRef<'a>>) -> Vec<u8> {
    let mut w = Writer::new(users.len(), users.len() * 256);
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
        let users = vec![alice(), User::default()];
        let batch = encode_users(users.iter().map(UserRef::from));
        let mut r = Reader::new(&batch).unwrap();
        let views: Vec<UserView<'_>> = (0..r.count()).map(|_| r.user_view().unwrap()).collect();
        r.end().unwrap();
        assert_eq!(views[0].username, "alice@contoso.example");
        assert_eq!(views[0].display_name, None);
        assert_eq!(views[0].attributes, vec![("department", "R&D"), ("", "")]);
        assert_eq!(views[1], UserView::default());
        let mut w = Writer::new(2, 0);
        let v = &views[0];
        w.kept_user(
            v.id,
            v.username,
            v.email,
            v.display_name,
            v.active,
            v.attributes.iter().copied(),
            Some("r"),
        );
        w.no_user(None, Some("bad"));
        let got = decode_user_outcomes(&w.finish()).unwrap();
        assert_eq!(got[0].user.as_ref().unwrap(), &alice());
        assert_eq!(got[0].reason.as_deref(), Some("r"));
        assert_eq!((got[1].user.is_none(), got[1].error.as_deref()), (true, Some("bad")));
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
