//! Where Roster writes: Bitbucket Data Center today (Cloud and a Crowd-compatible server later).

pub mod bitbucket_dc;
