//! Runs a simulator until Ctrl-C; prints its URL on the first line.
//!
//! ```text
//! roster-sim [bitbucket] [ADDR]      Bitbucket Data Center (default 127.0.0.1:7990), admin / password
//! roster-sim crowd [ADDR] [OPTIONS]  Jira or Crowd as a user server (default 127.0.0.1:8095)
//!     --product jira|crowd           what X-Embedded-Crowd-Version names (default jira)
//!     --users N --groups N           a generated directory of that size (default 200 and 20),
//!     --per-user N                   each user a direct member of N groups (default 3)
//!     --app NAME --password SECRET   the application Roster authenticates as (default roster / roster)
//!     --allow ADDRESS                an allowed address or CIDR range, repeatable
//!                                    (default 127.0.0.1 and ::1)
//!     --users N --groups N           a generated directory of that size (default 200 and 20),
//!     --per-user N                   each user a direct member of N groups (default 3)
//! roster-sim okta [ADDR] [OPTIONS]   Okta's Management API (default 127.0.0.1:8096)
//!     --users N --groups N           a generated directory of that size (default 200 and 20),
//!     --per-user N                   each user a direct member of N groups (default 3)
//!     --domain DOMAIN                the logins' domain (default acme.example)
//!     --token TOKEN                  the API token Roster sends as `SSWS TOKEN` (default roster)
//! roster-sim onelogin [ADDR] [OPTIONS]  OneLogin API v2 and its token endpoint (default 127.0.0.1:8097)
//!     --users N --groups N           a generated directory of that size, its groups as roles
//!     --per-user N                   (default 200, 20 and 3)
//!     --client-id ID --secret SECRET the API credential (default roster / roster), scope Read users
//!     --rate-limit N                 API calls per hour (default 5000, OneLogin's)
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;

use roster_sim::bitbucket::{BbState, BitbucketSim};
use roster_sim::crowd::{CrowdSim, CrowdState, Product, parse_allowed_address};
use roster_sim::directory::Directory;
use roster_sim::okta::{OktaSim, OktaState};
use roster_sim::onelogin::{CredentialScope, DEFAULT_RATE_LIMIT, OneLoginSim, OneLoginState};

/// What to run.
#[derive(Debug, PartialEq)]
enum Command {
    Bitbucket(SocketAddr),
    Crowd(CrowdOptions),
    OneLogin(OneLoginOptions),
    Okta(OktaOptions),
}

/// The Okta simulator's options.
#[derive(Debug, PartialEq)]
struct OktaOptions {
    addr: SocketAddr,
    users: usize,
    groups: usize,
    per_user: usize,
    domain: String,
    token: String,
}

/// The Crowd simulator's options.
#[derive(Debug, PartialEq)]
struct CrowdOptions {
    addr: SocketAddr,
    product: Product,
    users: usize,
    groups: usize,
    per_user: usize,
    app: String,
    password: String,
    allow: Vec<String>,
}

/// The OneLogin simulator's options.
#[derive(Debug, PartialEq)]
struct OneLoginOptions {
    addr: SocketAddr,
    users: usize,
    groups: usize,
    per_user: usize,
    client_id: String,
    secret: String,
    rate_limit: u32,
}

fn addr(s: &str, example: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|e| format!("`{s}` is not an address such as {example}: {e}"))
}

fn count(flag: &str, v: &str) -> Result<usize, String> {
    v.parse().map_err(|_| format!("{flag} takes a whole number, not `{v}`"))
}

fn parse(args: &[String]) -> Result<Command, String> {
    match args.first().map(String::as_str) {
        None => Ok(Command::Bitbucket(addr("127.0.0.1:7990", "")?)),
        Some("bitbucket") => {
            let a = args.get(1).map_or("127.0.0.1:7990", String::as_str);
            Ok(Command::Bitbucket(addr(a, "127.0.0.1:7990")?))
        }
        Some("crowd") => parse_crowd(&args[1..]).map(Command::Crowd),
        Some("onelogin") => parse_onelogin(&args[1..]).map(Command::OneLogin),
        Some("okta") => parse_okta(&args[1..]).map(Command::Okta),
        Some(a) if !a.starts_with('-') => Ok(Command::Bitbucket(addr(a, "127.0.0.1:7990")?)),
        Some(other) => Err(format!("unknown argument `{other}`")),
    }
}

fn parse_crowd(args: &[String]) -> Result<CrowdOptions, String> {
    let mut o = CrowdOptions {
        addr: addr("127.0.0.1:8095", "")?,
        product: Product::Jira,
        users: 200,
        groups: 20,
        per_user: 3,
        app: "roster".into(),
        password: "roster".into(),
        allow: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if !a.starts_with("--") {
            o.addr = addr(a, "127.0.0.1:8095")?;
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--product" => {
                o.product = match v.to_ascii_lowercase().as_str() {
                    "jira" => Product::Jira,
                    "crowd" => Product::Crowd,
                    _ => return Err(format!("--product is jira or crowd, not `{v}`")),
                }
            }
            "--users" => o.users = count(a, v)?,
            "--groups" => o.groups = count(a, v)?,
            "--per-user" => o.per_user = count(a, v)?,
            "--app" => o.app = v.clone(),
            "--password" => o.password = v.clone(),
            "--allow" => {
                parse_allowed_address(v)?;
                o.allow.push(v.clone());
            }
            _ => return Err(format!("unknown option `{a}` for crowd")),
        }
    }
    if o.allow.is_empty() {
        o.allow = vec!["127.0.0.1".into(), "::1".into()];
    }
    Ok(o)
}

fn parse_okta(args: &[String]) -> Result<OktaOptions, String> {
    let mut o = OktaOptions {
        addr: addr("127.0.0.1:8096", "")?,
        users: 200,
        groups: 20,
        per_user: 3,
        domain: "acme.example".into(),
        token: "roster".into(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if !a.starts_with("--") {
            o.addr = addr(a, "127.0.0.1:8096")?;
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--users" => o.users = count(a, v)?,
            "--groups" => o.groups = count(a, v)?,
            "--per-user" => o.per_user = count(a, v)?,
            "--domain" => o.domain = v.clone(),
            "--token" => o.token = v.clone(),
            _ => return Err(format!("unknown option `{a}` for okta")),
        }
    }
    Ok(o)
}

fn parse_onelogin(args: &[String]) -> Result<OneLoginOptions, String> {
    let mut o = OneLoginOptions {
        addr: addr("127.0.0.1:8097", "")?,
        users: 200,
        groups: 20,
        per_user: 3,
        client_id: "roster".into(),
        secret: "roster".into(),
        rate_limit: DEFAULT_RATE_LIMIT,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if !a.starts_with("--") {
            o.addr = addr(a, "127.0.0.1:8097")?;
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--users" => o.users = count(a, v)?,
            "--groups" => o.groups = count(a, v)?,
            "--per-user" => o.per_user = count(a, v)?,
            "--client-id" => o.client_id = v.clone(),
            "--secret" => o.secret = v.clone(),
            "--rate-limit" => o.rate_limit = v.parse().map_err(|_| format!("{a} takes a whole number, not `{v}`"))?,
            _ => return Err(format!("unknown option `{a}` for onelogin")),
        }
    }
    Ok(o)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "roster-sim: {e}\nusage: roster-sim [bitbucket] [ADDR] | roster-sim crowd [ADDR] [--product jira|crowd] [--users N] [--groups N] [--per-user N] [--app NAME] [--password SECRET] [--allow ADDRESS]… | roster-sim onelogin [ADDR] [--users N] [--groups N] [--per-user N] [--client-id ID] [--secret SECRET] [--rate-limit N] | roster-sim okta [ADDR] [--users N] [--groups N] [--per-user N] [--domain DOMAIN] [--token TOKEN]"
            );
            return ExitCode::from(2);
        }
    };
    // Each simulator stops when dropped: keep it until Ctrl-C.
    let _running = match command {
        Command::Bitbucket(addr) => match BitbucketSim::try_start_on(addr, BbState::new()).await {
            Ok(s) => {
                println!("{}", s.url());
                Box::new(s) as Box<dyn std::any::Any>
            }
            Err(e) => {
                eprintln!("roster-sim: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        },
        Command::Crowd(o) => {
            let d = Directory::generate(o.users, o.groups, o.per_user);
            let mut state = CrowdState::from_directory(&d, o.product);
            let allow: Vec<&str> = o.allow.iter().map(String::as_str).collect();
            state.add_application(&o.app, &o.password, &allow);
            match CrowdSim::try_start_on(o.addr, state).await {
                Ok(s) => {
                    println!("{}", s.url());
                    println!(
                        "{} user server: {} users, {} groups; application `{}` from {}",
                        o.product.version_header(),
                        o.users,
                        o.groups,
                        o.app,
                        o.allow.join(", ")
                    );
                    Box::new(s)
                }
                Err(e) => {
                    eprintln!("roster-sim: cannot listen on {}: {e}", o.addr);
                    return ExitCode::FAILURE;
                }
            }
        }
        Command::OneLogin(o) => {
            let d = Directory::generate(o.users, o.groups, o.per_user);
            let mut state = OneLoginState::from_directory(&d);
            state.add_credential(&o.client_id, &o.secret, CredentialScope::ReadUsers);
            state.set_rate_limit(o.rate_limit);
            match OneLoginSim::try_start_on(o.addr, state).await {
                Ok(s) => {
                    println!("{}", s.url());
                    println!(
                        "OneLogin account: {} users, {} roles; API credential `{}` (Read users), {} calls an hour",
                        o.users, o.groups, o.client_id, o.rate_limit
                    );
                    Box::new(s)
                }
                Err(e) => {
                    eprintln!("roster-sim: cannot listen on {}: {e}", o.addr);
                    return ExitCode::FAILURE;
                }
            }
        }
        Command::Okta(o) => {
            let d = Directory::generate(o.users, o.groups, o.per_user);
            let mut state = OktaState::from_directory(&d, &o.domain);
            state.add_api_token(&o.token);
            match OktaSim::try_start_on(o.addr, state).await {
                Ok(s) => {
                    println!("{}", s.url());
                    println!(
                        "Okta org: {} users (logins @{}), {} groups; API token `{}`",
                        o.users, o.domain, o.groups, o.token
                    );
                    Box::new(s)
                }
                Err(e) => {
                    eprintln!("roster-sim: cannot listen on {}: {e}", o.addr);
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn the_bitbucket_forms_still_work() {
        let bb = |a: &str| Command::Bitbucket(a.parse().unwrap());
        assert_eq!(parse(&args("")), Ok(bb("127.0.0.1:7990")));
        assert_eq!(parse(&args("127.0.0.1:9000")), Ok(bb("127.0.0.1:9000")));
        assert_eq!(parse(&args("bitbucket 127.0.0.1:9001")), Ok(bb("127.0.0.1:9001")));
        assert!(parse(&args("localhost")).unwrap_err().contains("localhost"));
    }

    #[test]
    fn crowd_takes_its_options_and_names_what_is_wrong() {
        let Ok(Command::Crowd(o)) = parse(&args(
            "crowd 127.0.0.1:0 --product crowd --users 5 --groups 2 --app bb --password pw --allow 10.0.0.0/8",
        )) else {
            panic!("crowd");
        };
        assert_eq!((o.product, o.users, o.groups, o.per_user), (Product::Crowd, 5, 2, 3));
        assert_eq!((o.app.as_str(), o.password.as_str()), ("bb", "pw"));
        assert_eq!(o.allow, ["10.0.0.0/8"]);
        let Ok(Command::Crowd(d)) = parse(&args("crowd")) else {
            panic!("crowd");
        };
        assert_eq!(d.addr, "127.0.0.1:8095".parse().unwrap());
        assert_eq!(d.allow, ["127.0.0.1", "::1"]);
        for (bad, says) in [
            ("crowd --allow 10.0.0.0/99", "10.0.0.0/99"),
            ("crowd --users many", "--users"),
            ("crowd --product ldap", "ldap"),
            ("crowd --colour red", "--colour"),
            ("crowd --app", "--app needs a value"),
            ("--help", "--help"),
        ] {
            assert!(parse(&args(bad)).unwrap_err().contains(says), "{bad}");
        }
    }

    #[test]
    fn onelogin_takes_its_options_and_names_what_is_wrong() {
        let Ok(Command::OneLogin(o)) = parse(&args(
            "onelogin 127.0.0.1:0 --users 5 --groups 2 --per-user 1 --client-id cid --secret pw --rate-limit 100000",
        )) else {
            panic!("onelogin");
        };
        assert_eq!((o.users, o.groups, o.per_user, o.rate_limit), (5, 2, 1, 100_000));
        assert_eq!((o.client_id.as_str(), o.secret.as_str()), ("cid", "pw"));
        let Ok(Command::OneLogin(d)) = parse(&args("onelogin")) else {
            panic!("onelogin");
        };
        assert_eq!(d.addr, "127.0.0.1:8097".parse().unwrap());
        assert_eq!(d.rate_limit, DEFAULT_RATE_LIMIT);
        for (bad, says) in [
            ("onelogin --rate-limit lots", "--rate-limit"),
            ("onelogin --product jira", "--product"),
            ("onelogin --secret", "--secret needs a value"),
            ("onelogin localhost", "localhost"),
        ] {
            assert!(parse(&args(bad)).unwrap_err().contains(says), "{bad}");
        }
    }

    #[test]
    fn okta_takes_its_options_and_names_what_is_wrong() {
        let Ok(Command::Okta(o)) = parse(&args(
            "okta 127.0.0.1:0 --users 5 --groups 2 --domain corp.example --token t0k",
        )) else {
            panic!("okta");
        };
        assert_eq!((o.users, o.groups, o.per_user), (5, 2, 3));
        assert_eq!((o.domain.as_str(), o.token.as_str()), ("corp.example", "t0k"));
        let Ok(Command::Okta(d)) = parse(&args("okta")) else {
            panic!("okta");
        };
        assert_eq!(d.addr, "127.0.0.1:8096".parse().unwrap());
        for (bad, says) in [
            ("okta --users many", "--users"),
            ("okta --colour red", "--colour"),
            ("okta --token", "--token needs a value"),
            ("okta nowhere", "nowhere"),
        ] {
            assert!(parse(&args(bad)).unwrap_err().contains(says), "{bad}");
        }
    }
}
