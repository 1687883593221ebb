//! Bitbucket Data Center REST shapes (admin API, 1.0), as the 9.4 OpenAPI document and live
//! servers show them.

use serde::Deserialize;

/// `RestDetailedUser` (the fields Roster reads).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BbUser {
    /// Login name.
    pub name: String,
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// Email address.
    #[serde(default)]
    pub email_address: Option<String>,
    /// "Bitbucket Internal Directory", or an external directory.
    #[serde(default)]
    pub directory_name: Option<String>,
    /// False for users of read-only directories.
    #[serde(default = "yes")]
    pub mutable_details: bool,
    /// False when group membership cannot be changed here.
    #[serde(default = "yes")]
    pub mutable_groups: bool,
    /// The last sign-in (ms since the epoch); absent for someone who never signed in.
    #[serde(default)]
    pub last_authentication_timestamp: Option<i64>,
}

fn yes() -> bool {
    true
}

/// `RestDetailedGroup`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct BbGroup {
    /// Group name.
    pub name: String,
}

/// A page: `{size, limit, isLastPage, values, start, nextPageStart}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BbPage<T> {
    /// The items.
    pub values: Vec<T>,
    /// True on the last page.
    #[serde(default = "yes")]
    pub is_last_page: bool,
    /// Where the next page starts (absent on the last page).
    #[serde(default)]
    pub next_page_start: Option<u64>,
}

/// `RestPermittedGroup`.
#[derive(Debug, Deserialize)]
pub struct GroupPermission {
    /// The group.
    pub group: BbGroup,
    /// LICENSED_USER, PROJECT_CREATE, ADMIN, SYS_ADMIN.
    pub permission: String,
}

/// `RestPermittedUser`.
#[derive(Debug, Deserialize)]
pub struct UserPermission {
    /// The user.
    pub user: BbUser,
    /// LICENSED_USER, PROJECT_CREATE, ADMIN, SYS_ADMIN.
    pub permission: String,
}

/// `RestBitbucketLicense` (the fields Roster reads).
#[derive(Debug, Clone, Deserialize, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct License {
    /// Seat count; absent or negative when unlimited.
    #[serde(default)]
    pub maximum_number_of_users: Option<i64>,
    /// Unlimited seats.
    #[serde(default)]
    pub unlimited_number_of_users: bool,
    /// Current usage.
    #[serde(default)]
    pub status: Option<LicenseStatus>,
}

/// `status` of the licence.
#[derive(Debug, Clone, Deserialize, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseStatus {
    /// Users counted against the licence now.
    #[serde(default)]
    pub current_number_of_users: i64,
}

impl License {
    /// The seat limit, or `None` when unlimited.
    pub fn seats(&self) -> Option<i64> {
        if self.unlimited_number_of_users {
            return None;
        }
        self.maximum_number_of_users.filter(|m| *m >= 0)
    }
}

/// `{"errors":[{"context","message","exceptionName"}]}`.
#[derive(Debug, Deserialize)]
pub struct Errors {
    /// The errors.
    pub errors: Vec<ErrorItem>,
}

/// One error.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorItem {
    /// Message.
    #[serde(default)]
    pub message: Option<String>,
    /// Java exception class.
    #[serde(default)]
    pub exception_name: Option<String>,
}
