//! Simulators of the vendor APIs Roster talks to. Each follows its vendor's published contract
//! (paging, errors, rate limits, quirks) closely enough that Roster's clients cannot tell the
//! difference on the endpoints they use; the Prism contract check in `.ci/run` holds them to the
//! vendor's OpenAPI document.

pub mod bitbucket;
pub mod directory;
pub mod scenario;
