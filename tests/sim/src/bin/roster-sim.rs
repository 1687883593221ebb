//! Runs the Bitbucket Data Center simulator until Ctrl-C: `roster-sim [ADDR]` (default
//! 127.0.0.1:7990). Credentials: admin / password. Prints its URL on the first line.

use roster_sim::bitbucket::{BbState, BitbucketSim};

#[tokio::main]
async fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:7990".into());
    let addr = addr
        .parse()
        .unwrap_or_else(|e| panic!("`{addr}` is not an address: {e}"));
    let sim = BitbucketSim::start_on(addr, BbState::new()).await;
    println!("{}", sim.url());
    let _ = tokio::signal::ctrl_c().await;
}
