//! A running simulator: its state behind a lock the handlers share, its server, its fault
//! rules, started on an address and stopped when dropped — the same for every vendor.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;

use super::{Faults, Pace, RequestLog, Server};

/// What the kit needs from a vendor's simulated state to run it.
pub trait SimState: Send + Sized + 'static {
    /// The vendor's name, for messages ("Bitbucket").
    const VENDOR: &'static str;

    /// Its fault rules; the running layers share them.
    fn faults(&self) -> &Faults;

    /// The vendor's routes over the shared state, with its fault and rate-limit layers.
    fn router(state: Arc<Mutex<Self>>) -> Router;
}

/// A running simulator of `S`; stops when dropped.
pub struct Sim<S> {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state, for seeding, fault injection and assertions.
    pub state: Arc<Mutex<S>>,
    faults: Faults,
    server: Server,
}

impl<S: SimState> Sim<S> {
    /// Starts a simulator on 127.0.0.1 with a free port; panics when it cannot bind.
    pub async fn start(state: S) -> Sim<S> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), state).await
    }

    /// Starts a simulator on the given address; panics when it cannot bind.
    pub async fn start_on(addr: SocketAddr, state: S) -> Sim<S> {
        Self::try_start_on(addr, state)
            .await
            .unwrap_or_else(|e| panic!("binding the {} simulator to {addr}: {e}", S::VENDOR))
    }

    /// Starts a simulator on the given address.
    pub async fn try_start_on(addr: SocketAddr, state: S) -> io::Result<Sim<S>> {
        let faults = state.faults().clone();
        let state = Arc::new(Mutex::new(state));
        let server = Server::start(addr, S::router(state.clone())).await?;
        Ok(Sim {
            addr: server.addr(),
            state,
            faults,
            server,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Locks the state.
    pub fn lock(&self) -> MutexGuard<'_, S> {
        lock(&self.state)
    }

    /// The fault rules applied to its requests (the same as the state's; no lock needed).
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Its latency and capacity (none until set).
    pub fn pace(&self) -> &Pace {
        self.server.pace()
    }

    /// Every request it answered, with who answered it.
    pub fn log(&self) -> &RequestLog {
        self.server.log()
    }
}

/// Locks a simulator's state: a handler that panicked leaves the state as it was, so later
/// requests still get answers.
pub fn lock<S>(state: &Mutex<S>) -> MutexGuard<'_, S> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}
