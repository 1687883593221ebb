//! Bindings for `roster:plugin@0.1.x`, generated from `wit/`, and their conversions to the
//! runtime's plain types (`crate::types`). Nothing generated here leaves the runtime.
//!
//! The worlds share the `types` interface; the transform bindings reuse the connector's Rust
//! types so a generated `User` is one type throughout this module.
#![allow(missing_docs)]

pub mod connector {
    wasmtime::component::bindgen!({
        world: "connector-plugin",
        path: "../../wit",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

pub mod transform {
    wasmtime::component::bindgen!({
        world: "transform-plugin",
        path: "../../wit",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "roster:plugin/types": super::connector::roster::plugin::types,
        },
    });
}

/// The packed functions of transforms that export them (0.1.1; the Rust SDK always does).
pub mod transform_packed {
    wasmtime::component::bindgen!({
        world: "transform-plugin-packed",
        path: "../../wit",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "roster:plugin/types": super::connector::roster::plugin::types,
        },
    });
}

/// The `credentials` export of connectors that offer it (0.1.2; the `ldap` connector does).
pub mod connector_credentials {
    wasmtime::component::bindgen!({
        world: "connector-plugin-credentials",
        path: "../../wit",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "roster:plugin/types": super::connector::roster::plugin::types,
            "roster:plugin/host": super::connector::roster::plugin::host,
            "roster:plugin/ldap": super::connector::roster::plugin::ldap,
        },
    });
}

pub use connector::roster::plugin::types::{
    Group, Membership, Page, PluginError as GuestError, PluginInfo, Removal, RemovalKind, User,
};
pub use transform::exports::roster::plugin::transform::{GroupOutcome, UserOutcome};

use crate::error::GuestFailure;
use crate::types as plain;

// Conversions move fields, never copy strings: a batch crosses into and out of these types
// once per call.

impl From<plain::User> for User {
    fn from(u: plain::User) -> Self {
        User {
            id: u.id,
            username: u.username,
            email: u.email,
            display_name: u.display_name,
            active: u.active,
            attributes: u.attributes,
        }
    }
}

impl From<User> for plain::User {
    fn from(u: User) -> Self {
        plain::User {
            id: u.id,
            username: u.username,
            email: u.email,
            display_name: u.display_name,
            active: u.active,
            attributes: u.attributes,
        }
    }
}

impl From<plain::Group> for Group {
    fn from(g: plain::Group) -> Self {
        Group {
            id: g.id,
            name: g.name,
            description: g.description,
            attributes: g.attributes,
        }
    }
}

impl From<Group> for plain::Group {
    fn from(g: Group) -> Self {
        plain::Group {
            id: g.id,
            name: g.name,
            description: g.description,
            attributes: g.attributes,
        }
    }
}

impl From<Membership> for plain::Membership {
    fn from(m: Membership) -> Self {
        plain::Membership {
            group_id: m.group_id,
            member_id: m.member_id,
            member_is_group: m.member_is_group,
        }
    }
}

impl From<Removal> for plain::Removal {
    fn from(r: Removal) -> Self {
        plain::Removal {
            id: r.id,
            kind: match r.kind {
                RemovalKind::SoftDeleted => plain::RemovalKind::SoftDeleted,
                RemovalKind::Deleted => plain::RemovalKind::Deleted,
            },
        }
    }
}

impl From<Page> for plain::Page {
    fn from(p: Page) -> Self {
        fn all<A, B: From<A>>(v: Vec<A>) -> Vec<B> {
            v.into_iter().map(B::from).collect()
        }
        plain::Page {
            users: all(p.users),
            groups: all(p.groups),
            memberships: all(p.memberships),
            removed_users: all(p.removed_users),
            removed_groups: all(p.removed_groups),
            removed_memberships: all(p.removed_memberships),
            next: p.next,
            delta_token: p.delta_token,
            total_hint: p.total_hint,
        }
    }
}

impl From<PluginInfo> for plain::PluginInfo {
    fn from(i: PluginInfo) -> Self {
        plain::PluginInfo {
            name: i.name,
            version: i.version,
            description: i.description,
            settings_schema: i.settings_schema,
        }
    }
}

impl From<UserOutcome> for plain::UserOutcome {
    fn from(o: UserOutcome) -> Self {
        plain::UserOutcome {
            user: o.user.map(Into::into),
            reason: o.reason,
            error: o.error,
        }
    }
}

impl From<GroupOutcome> for plain::GroupOutcome {
    fn from(o: GroupOutcome) -> Self {
        plain::GroupOutcome {
            groups: o.groups.into_iter().map(Into::into).collect(),
            reason: o.reason,
            error: o.error,
        }
    }
}

impl From<GuestError> for GuestFailure {
    /// The plugin's words, with the sandbox's error numbers put in the user's.
    fn from(e: GuestError) -> Self {
        let words = |m: String| crate::errno::in_user_words(&m).into_owned();
        match e {
            GuestError::Config(m) => GuestFailure::Config(words(m)),
            GuestError::Auth(m) => GuestFailure::Auth(words(m)),
            GuestError::Transient(m) => GuestFailure::Transient(words(m)),
            GuestError::ExpiredDelta(m) => GuestFailure::ExpiredDelta(words(m)),
            GuestError::Fatal(m) => GuestFailure::Fatal(words(m)),
        }
    }
}

impl From<connector_credentials::exports::roster::plugin::credentials::PasswordCheck> for plain::PasswordCheck {
    fn from(c: connector_credentials::exports::roster::plugin::credentials::PasswordCheck) -> Self {
        use connector_credentials::exports::roster::plugin::credentials::PasswordCheck as Wit;
        match c {
            Wit::LdapBind(b) => plain::PasswordCheck::LdapBind(crate::ldap::BindAs {
                url: b.url,
                transport: b.transport.into(),
                ca_certificates: b.ca_certificates,
                dn: b.dn,
            }),
        }
    }
}

mod ldap_conversions {
    //! The `ldap` import's records to and from `crate::ldap`'s plain types.
    use super::connector::roster::plugin::ldap as wit;
    use super::connector::roster::plugin::types::PluginError;
    use crate::ldap as plain;

    impl From<wit::Transport> for plain::Transport {
        fn from(t: wit::Transport) -> Self {
            match t {
                wit::Transport::Ldaps => plain::Transport::Ldaps,
                wit::Transport::StartTls => plain::Transport::StartTls,
                wit::Transport::Plain => plain::Transport::Plain,
            }
        }
    }

    impl From<wit::Connection> for plain::Connection {
        fn from(c: wit::Connection) -> Self {
            plain::Connection {
                url: c.url,
                transport: c.transport.into(),
                ca_certificates: c.ca_certificates,
                bind_dn: c.bind_dn,
                password_secret: c.password_secret,
            }
        }
    }

    impl From<wit::SearchRequest> for plain::SearchRequest {
        fn from(r: wit::SearchRequest) -> Self {
            plain::SearchRequest {
                base: r.base,
                scope: match r.scope {
                    wit::Scope::Base => plain::Scope::Base,
                    wit::Scope::OneLevel => plain::Scope::OneLevel,
                    wit::Scope::Subtree => plain::Scope::Subtree,
                },
                filter: r.filter,
                attributes: r.attributes,
                page_size: r.page_size,
                cookie: r.cookie,
                controls: r
                    .controls
                    .into_iter()
                    .map(|c| plain::Control {
                        oid: c.oid,
                        critical: c.critical,
                        value: c.value,
                    })
                    .collect(),
            }
        }
    }

    impl From<plain::SearchPage> for wit::SearchPage {
        fn from(p: plain::SearchPage) -> Self {
            wit::SearchPage {
                entries: p
                    .entries
                    .into_iter()
                    .map(|e| wit::Entry {
                        dn: e.dn,
                        attributes: e
                            .attributes
                            .into_iter()
                            .map(|a| wit::Attribute {
                                name: a.name,
                                values: a.values,
                            })
                            .collect(),
                    })
                    .collect(),
                referrals: p.referrals,
                cookie: p.cookie,
                result_code: p.result_code,
                message: p.message,
            }
        }
    }

    impl From<plain::LdapFailure> for wit::LdapError {
        fn from(f: plain::LdapFailure) -> Self {
            match f {
                plain::LdapFailure::Config(m) => wit::LdapError::Failed(PluginError::Config(m)),
                plain::LdapFailure::Auth(m) => wit::LdapError::Failed(PluginError::Auth(m)),
                plain::LdapFailure::Transient(m) => wit::LdapError::Failed(PluginError::Transient(m)),
                plain::LdapFailure::Fatal(m) => wit::LdapError::Failed(PluginError::Fatal(m)),
                plain::LdapFailure::CookieExpired => wit::LdapError::CookieExpired,
            }
        }
    }
}
