//! Runs the Bitbucket Data Center simulator until Ctrl-C: `roster-sim [ADDR]` (default
//! 127.0.0.1:7990). Credentials: admin / password. Prints its URL on the first line.

use std::net::SocketAddr;
use std::process::ExitCode;

use roster_sim::bitbucket::{BbState, BitbucketSim};

#[tokio::main]
async fn main() -> ExitCode {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:7990".into());
    let addr: SocketAddr = match arg.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("roster-sim: `{arg}` is not an address such as 127.0.0.1:7990: {e}");
            return ExitCode::from(2);
        }
    };
    let sim = match BitbucketSim::try_start_on(addr, BbState::new()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("roster-sim: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", sim.url());
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
