//! Simulators of the vendor APIs Roster talks to. Each follows its vendor's published contract
//! (paging, errors, rate limits, quirks) closely enough that Roster's clients cannot tell the
//! difference on the endpoints they use; the Prism contract check in `.ci/run` holds them to the
//! vendor's OpenAPI document.
//! [`bitbucket`] simulates Bitbucket Data Center's admin REST API (the target).
//! [`bitbucket_cloud`] simulates Bitbucket Cloud (2.0, the 1.0 groups and invitations) and the Atlassian SCIM directory API (the Cloud target).
//! [`graph`] simulates Microsoft Graph v1.0 and the Entra ID token endpoint (Entra ID connector).
//! [`crowd`] simulates Jira or Crowd as a user server, `usermanagement/1` (`crowd` connector).
//! [`onelogin`] simulates OneLogin API v2 (and v1 groups) with its token endpoint (`onelogin` connector).
//! [`keycloak`] simulates a Keycloak realm's Admin REST API and token endpoint (`keycloak` connector).
//! [`google`] simulates Google Workspace's Admin SDK Directory API and its service-account token endpoint (`google` connector).
//! [`okta`] simulates Okta's Management API and its service-app token endpoint (`okta` connector).
//! [`slapd`] is no simulator: it runs a real, throwaway OpenLDAP server (`ldap` connector).
//! [`scim2_server`] is none either: it runs PyPI's `scim2-server`, a real SCIM 2.0 service (`scim` connector).

pub mod bitbucket;
pub mod bitbucket_cloud;
pub mod crowd;
pub mod directory;
pub mod google;
pub mod graph;
pub mod keycloak;
pub mod kit;
pub mod okta;
pub mod onelogin;
pub mod scenario;
pub mod scim2_server;
pub mod slapd;
