//! One model of Crowd's `usermanagement/1` protocol (crowd-rest.md), shared by Roster's Crowd
//! endpoint (`roster-serve`) and the Crowd simulator (`roster-sim`), so the search-restriction
//! grammar, its matching, the XML text rules, the date format and the error reasons exist once.
//!
//! Entities are not modelled here: the endpoint writes Roster's served directory and the
//! simulator its own users (with links and attributes), each straight into a `String`.

pub mod date;
pub mod error;
pub mod restriction;
pub mod xml;

pub use date::{iso, parse_date};
pub use error::Reason;
pub use restriction::{Logic, Malformed, Mode, Prop, Restriction, Subject, Wanted};
pub use xml::{PROLOG, error_json, error_xml, escape, text};
