//! The kit every simulator is built from, so that each vendor's simulator holds only what is
//! that vendor's (routes, bodies, quirks) and every one of them can be failed the same way:
//!
//! - [`server`]: bind, serve, stop on drop, log every request ([`Server`], [`RequestLog`]), let
//!   a simulator count what it answered ([`observe`]) and see who asked ([`peer`]);
//! - [`sim`]: a running simulator of a vendor's state ([`Sim`], [`SimState`]): started on an
//!   address, its state locked for seeding and assertions, stopped on drop;
//! - [`faults`]: faults as data ([`Fault`], [`FaultRule`]) applied by one layer ([`Faults::layer`]);
//! - [`pace`]: a real server's latency, jitter and capacity (a pool, a queue, then 503), for every
//!   simulator ([`Pace`], reached through [`Server::pace`] and [`Sim::pace`]);
//! - [`throttle`]: a token bucket answering 429 with the vendor's headers ([`Throttle`]);
//! - [`window`]: calls per caller over a rolling window, as hourly meters count them
//!   ([`RollingLimit`]);
//! - [`paging`]: offset, keyed-cursor, `Link`-header and page-token paging, with the paging
//!   faults built in ([`Offset`], [`keyed_page`], [`link_headers`], [`Cursor`], [`Sealer`]);
//! - [`request`]: a request as handlers see it, taken by one extractor ([`Req`]);
//! - [`errors`]: the vendor's words for what the kit answers on its behalf ([`Vendor`]);
//!
//! A simulator keeps a [`Faults`] and a [`Throttle`] in its state (so its setters reach the
//! running layers), implements [`Vendor`], adds the two layers and runs on [`Server`]; its
//! listing handlers take a [`PageFault`] and hand it to their paging helper:
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::http::{StatusCode, request::Parts};
//! use axum::{Json, Router, response::Response, routing::get};
//! use roster_sim::kit::{self, Faults, Offset, PageFault, RouteMatch, Server, Throttle, Vendor};
//! use serde_json::{Value, json};
//!
//! struct Acme;
//! impl Vendor for Acme {
//!     fn error(&self, _: &Parts, status: StatusCode) -> Response {
//!         kit::errors::json(status, "application/json", &json!({"error": status.as_u16()}))
//!     }
//!     fn expired_token(&self, req: &Parts) -> Response {
//!         self.error(req, StatusCode::UNAUTHORIZED)
//!     }
//! }
//!
//! async fn users(fault: PageFault) -> Json<Value> {
//!     let page = Offset::new(None, None, 25, 1000).page(0..100, &fault);
//!     Json(json!({"values": page.items, "nextPageStart": page.next}))
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let (faults, throttle) = (Faults::new(), Throttle::new(RouteMatch::prefix("/api/")));
//! let vendor: Arc<dyn Vendor> = Arc::new(Acme);
//! let router = Router::new()
//!     .route("/api/users", get(users))
//!     .layer(faults.layer(vendor.clone()))
//!     .layer(throttle.layer(vendor));
//! let server = Server::start(([127, 0, 0, 1], 0).into(), router).await?;
//! # Ok(())
//! # }
//! ```

mod conn;
pub mod errors;
pub mod faults;
pub(crate) mod ids;
pub mod layer;
pub mod pace;
pub mod paging;
pub mod request;
pub mod server;
pub mod sim;
pub mod throttle;
pub mod window;

#[cfg(test)]
mod tests;

pub use errors::Vendor;
pub use faults::{Cut, Fault, FaultRule, Faults, Injected, Methods, RouteMatch, RuleId, Times};
pub use pace::{Capacity, Pace, PaceCounts, PaceSettings};
pub use paging::{Cursor, Offset, Page, PageFault, Position, Sealer, keyed_page, link_headers};
pub use request::Req;
pub use server::{Logged, Outcome, RequestLog, Server, observe, peer};
pub use sim::{Sim, SimState};
pub use throttle::{RateLimited, Throttle, Throttled, TokenBucket};
pub use window::{Metered, RollingLimit, Window};
