//! One bindings module per WIT track the host serves (the Zed pattern). Only `0.1.x` exists
//! today; an incompatible WIT change adds `v0_2` beside it and the runtime picks per plugin at
//! load time. Generated types never leave the runtime: `crate::types` is its public vocabulary.

pub(crate) mod v0_1;
