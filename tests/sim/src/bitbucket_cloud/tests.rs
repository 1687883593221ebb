//! Tests of the Bitbucket Cloud simulator, over HTTP with `reqwest` against `CloudSim::start`.
