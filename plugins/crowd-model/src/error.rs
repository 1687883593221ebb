//! The reasons of Crowd's error entity (crowd-rest.md §3).

/// A `<reason>` of the `<error>` entity: only values Crowd's client knows, so it maps each to
/// its own exception.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A parameter or body the client got wrong (400).
    IllegalArgument,
    /// No such user (404).
    UserNotFound,
    /// No such group (404).
    GroupNotFound,
    /// The membership tested does not hold (404).
    MembershipNotFound,
    /// The event token is unknown or older than the log kept (410).
    EventTokenExpired,
    /// The server keeps no event log to synchronise from (410).
    IncrementalSyncNotAvailable,
    /// The user's credentials were refused (400 on `POST /authentication`).
    InvalidUserAuthentication,
    /// The user is deactivated (400 on `POST /authentication`).
    InactiveAccount,
    /// The user's password is right but expired or must be changed (400 on
    /// `POST /authentication`).
    ExpiredCredential,
    /// The application may not do this, such as a write (403).
    ApplicationPermissionDenied,
    /// A resource or method the server does not have (404, 405).
    UnsupportedOperation,
    /// The server's own failure (500).
    OperationFailed,
}

impl Reason {
    /// The reason as the entity spells it (`ILLEGAL_ARGUMENT`).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::IllegalArgument => "ILLEGAL_ARGUMENT",
            Reason::UserNotFound => "USER_NOT_FOUND",
            Reason::GroupNotFound => "GROUP_NOT_FOUND",
            Reason::MembershipNotFound => "MEMBERSHIP_NOT_FOUND",
            Reason::EventTokenExpired => "EVENT_TOKEN_EXPIRED",
            Reason::IncrementalSyncNotAvailable => "INCREMENTAL_SYNC_NOT_AVAILABLE",
            Reason::InvalidUserAuthentication => "INVALID_USER_AUTHENTICATION",
            Reason::InactiveAccount => "INACTIVE_ACCOUNT",
            Reason::ExpiredCredential => "EXPIRED_CREDENTIAL",
            Reason::ApplicationPermissionDenied => "APPLICATION_PERMISSION_DENIED",
            Reason::UnsupportedOperation => "UNSUPPORTED_OPERATION",
            Reason::OperationFailed => "OPERATION_FAILED",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
