//! A whole connector on the SDK: settings, `check`, and a fetch as [`Fetch`] steps; the SDK
//! writes `describe` (with the schema derived from the settings), parses and validates the
//! settings for every call, and drives the pages.
//!
//! ```ignore
//! struct Okta { s: Settings }
//! impl Idp for Okta {
//!     const NAME: &'static str = "okta";
//!     const DESCRIPTION: &'static str = "Okta users, groups and memberships";
//!     type Settings = Settings;
//!     fn new(s: Settings) -> Self { Okta { s } }
//!     fn check(&self, host: &Imports<'_>) -> Result<(), PluginError> { /* host.http … */ }
//! }
//! impl Fetch for Okta { /* see the driver */ }
//! roster_sdk::export_idp!(Okta);
//! ```

use std::cell::RefCell;

use crate::driver::{Budget, Driver, Fetch, Job};
use crate::settings::{self, Fingerprint, SourceSettings};
use crate::{Imports, Page, PluginError, PluginInfo};

/// A connector written on the SDK.
pub trait Idp: Fetch + Sized {
    /// The stable name sources refer to, e.g. `okta`.
    const NAME: &'static str;
    /// One line for administrators.
    const DESCRIPTION: &'static str;
    /// The settings struct; its JSON Schema is what `describe` returns.
    type Settings: SourceSettings;

    /// The connector for validated settings.
    fn new(settings: Self::Settings) -> Self;

    /// Can the connector work with these settings: reachable, credentials accepted,
    /// permissions present, configured groups found? In seconds, with the precise reason.
    fn check(&self, host: &Imports<'_>) -> Result<(), PluginError>;

    /// How much one `fetch` call may do.
    fn budget(&self) -> Budget {
        Budget::default()
    }
}

thread_local! {
    /// One driver per component instance, which the host keeps for the whole fetch.
    static DRIVER: RefCell<Driver> = RefCell::new(Driver::default());
}

/// `describe` of a connector built as `version`.
pub fn describe<T: Idp>(version: &str) -> PluginInfo {
    PluginInfo {
        name: T::NAME.into(),
        version: version.into(),
        description: T::DESCRIPTION.into(),
        settings_schema: settings::schema::<T::Settings>(),
    }
}

/// `check` with the settings JSON.
pub fn check<T: Idp>(settings: &str, host: &Imports<'_>) -> Result<(), PluginError> {
    T::new(settings::read(settings)?).check(host)
}

/// `fetch` with the settings JSON: one page, driven by this instance's [`Driver`].
pub fn fetch<T: Idp>(
    settings: &str,
    cursor: Option<&str>,
    delta: Option<&str>,
    host: &Imports<'_>,
) -> Result<Page, PluginError> {
    let s: T::Settings = settings::read(settings)?;
    let scope = Fingerprint::of(&s)?;
    let connector = T::new(s);
    let job = Job {
        connector: T::NAME,
        http: host.http,
        ldap: host.ldap,
        budget: connector.budget(),
        scope,
    };
    DRIVER.with(|d| d.borrow_mut().page(&connector, &job, cursor, delta))
}

/// Exports a type implementing [`Idp`] as this component's connector (only in wasm32 builds,
/// so the connector's crate also builds natively for its unit tests).
///
/// `export_idp!(T)` gives the connector HTTP only; `export_idp!(T, ldap)` HTTP and LDAP. A
/// connector imports only what it is exported with, so an HTTP connector's component never
/// imports `roster:plugin/ldap` (the host refuses imports a connector has no business with).
#[macro_export]
macro_rules! export_idp {
    (@with $t:ty, $imports:expr) => {
        /// The exported connector: the SDK's adapter around the crate's `Idp`.
        #[doc(hidden)]
        pub struct __RosterIdpExport;

        impl $crate::Connector for __RosterIdpExport {
            fn describe() -> $crate::PluginInfo {
                $crate::idp::describe::<$t>(env!("CARGO_PKG_VERSION"))
            }

            fn check(settings: String) -> Result<(), $crate::PluginError> {
                $crate::idp::check::<$t>(&settings, &$imports)
            }

            fn fetch(
                settings: String,
                cursor: Option<String>,
                delta: Option<String>,
            ) -> Result<$crate::Page, $crate::PluginError> {
                $crate::idp::fetch::<$t>(
                    &settings,
                    cursor.as_deref(),
                    delta.as_deref(),
                    &$imports,
                )
            }
        }

        $crate::export_connector!(__RosterIdpExport);
    };
    ($t:ty, ldap) => {
        $crate::export_idp!(@with $t, $crate::Imports::host());
    };
    ($t:ty) => {
        $crate::export_idp!(@with $t, $crate::Imports::http(&$crate::http::HostTransport));
    };
}
