//! Runs a simulator until Ctrl-C; prints its URL on the first line. `roster-sim --help` and
//! `roster-sim SIMULATOR --help` list the options; `roster-sim [ADDR]` alone runs Bitbucket.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use roster_sim::bitbucket::{BbState, BitbucketSim};
use roster_sim::bitbucket_cloud::{Administration, AutoAccept, CloudSim, CloudState};
use roster_sim::crowd::{CrowdSim, CrowdState, Product, parse_allowed_address};
use roster_sim::directory::Directory;
use roster_sim::keycloak::{GroupsApi, KeycloakSim, KeycloakState, Role};
use roster_sim::kit::{Capacity, PaceSettings};
use roster_sim::okta::{OktaSim, OktaState};
use roster_sim::onelogin::{CredentialScope, DEFAULT_RATE_LIMIT, OneLoginSim, OneLoginState};

/// The vendor simulators Roster's tests use, run alone: for the demo, or to try a connector.
#[derive(Debug, Parser)]
#[command(name = "roster-sim", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    sim: Option<Sim>,
    /// Bitbucket Data Center's address, when no simulator is named.
    #[arg(default_value = "127.0.0.1:7990")]
    addr: SocketAddr,
    #[command(flatten)]
    pace: PaceArgs,
}

/// A real server's pace, for any simulator: what benchmarks against it should measure.
#[derive(Debug, Args)]
struct PaceArgs {
    /// Milliseconds added to every call.
    #[arg(long, global = true, default_value_t = 0)]
    latency_ms: u64,
    /// Up to this many milliseconds more per call, at random.
    #[arg(long, global = true, default_value_t = 0)]
    jitter_ms: u64,
    /// Calls served at once (the server's worker pool); calls past it queue, then get 503.
    #[arg(long, global = true)]
    capacity: Option<usize>,
    /// Calls that may wait for a worker before the server answers 503 (with --capacity).
    #[arg(long, global = true, default_value_t = 0)]
    queue: usize,
}

impl PaceArgs {
    fn settings(&self) -> Result<PaceSettings, String> {
        let capacity = match self.capacity {
            Some(0) => return Err("--capacity must be at least 1 (leave it out for no limit)".into()),
            Some(pool) => Some(Capacity {
                pool,
                queue: self.queue,
            }),
            None if self.queue > 0 => return Err("--queue needs --capacity (the pool it queues for)".into()),
            None => None,
        };
        Ok(PaceSettings {
            latency: std::time::Duration::from_millis(self.latency_ms),
            jitter: std::time::Duration::from_millis(self.jitter_ms),
            capacity,
        })
    }

    fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.latency_ms > 0 || self.jitter_ms > 0 {
            parts.push(format!(
                "{} ms latency + up to {} ms jitter per call",
                self.latency_ms, self.jitter_ms
            ));
        }
        if let Some(pool) = self.capacity {
            parts.push(format!("{pool} calls at once, {} queued, then 503", self.queue));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// Which simulator.
#[derive(Debug, Subcommand)]
enum Sim {
    /// Bitbucket Data Center (admin / password).
    Bitbucket {
        /// Where to listen.
        #[arg(default_value = "127.0.0.1:7990")]
        addr: SocketAddr,
    },
    /// Bitbucket Cloud: 2.0 members, 1.0 groups and invitations, the Atlassian SCIM directory.
    BitbucketCloud(CloudOptions),
    /// Jira or Crowd as a user server (Crowd REST `usermanagement/1`).
    Crowd(CrowdOptions),
    /// Okta's Management API.
    Okta(OktaOptions),
    /// OneLogin API v2 (v1 for groups) and its token endpoint.
    Onelogin(OneLoginOptions),
    /// A Keycloak realm's Admin REST API and token endpoint.
    Keycloak(KeycloakOptions),
}

/// The generated directory a simulator serves.
#[derive(Debug, Args)]
struct Size {
    /// Users.
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// Groups (chains nested three deep where the vendor nests).
    #[arg(long, default_value_t = 20)]
    groups: usize,
    /// Groups each user is a direct member of.
    #[arg(long, default_value_t = 3)]
    per_user: usize,
}

impl Size {
    fn directory(&self) -> Directory {
        Directory::generate(self.users, self.groups, self.per_user)
    }
}

#[derive(Debug, Args)]
struct CloudOptions {
    /// Where to listen.
    #[arg(default_value = "127.0.0.1:7991")]
    addr: SocketAddr,
    /// The workspace's slug.
    #[arg(long, default_value = "acme")]
    workspace: String,
    /// The Basic-auth user Roster acts as.
    #[arg(long, default_value = "roster-bot")]
    username: String,
    /// Its app password (or API token).
    #[arg(long, default_value = "roster")]
    password: String,
    /// Members seeded in the group `developers` (`userN@acme.example`).
    #[arg(long, default_value_t = 0)]
    members: usize,
    /// Serve a workspace whose administration moved to admin.atlassian.com (SCIM provisions).
    #[arg(long)]
    admin_hub: bool,
    /// The SCIM directory id.
    #[arg(long, default_value = "roster-directory")]
    directory_id: String,
    /// The SCIM directory's API key.
    #[arg(long, default_value = "roster")]
    api_key: String,
    /// Calls each user may make per rolling hour; 0 for no limit.
    #[arg(long, default_value_t = 1000)]
    calls_per_hour: u64,
    /// Invitations are accepted as soon as they are sent.
    #[arg(long)]
    auto_accept: bool,
}

#[derive(Debug, Args)]
struct CrowdOptions {
    /// Where to listen.
    #[arg(default_value = "127.0.0.1:8095")]
    addr: SocketAddr,
    /// What `X-Embedded-Crowd-Version` names: jira or crowd.
    #[arg(long, default_value = "jira", value_parser = product)]
    product: Product,
    #[command(flatten)]
    size: Size,
    /// The application Roster authenticates as.
    #[arg(long, default_value = "roster")]
    app: String,
    /// Its password.
    #[arg(long, default_value = "roster")]
    password: String,
    /// An address or CIDR range the application may call from (repeatable; default 127.0.0.1 and ::1).
    #[arg(long, value_parser = allowed)]
    allow: Vec<String>,
}

#[derive(Debug, Args)]
struct OktaOptions {
    /// Where to listen.
    #[arg(default_value = "127.0.0.1:8096")]
    addr: SocketAddr,
    #[command(flatten)]
    size: Size,
    /// The logins' domain.
    #[arg(long, default_value = "acme.example")]
    domain: String,
    /// The API token Roster sends as `SSWS TOKEN`.
    #[arg(long, default_value = "roster")]
    token: String,
}

#[derive(Debug, Args)]
struct OneLoginOptions {
    /// Where to listen.
    #[arg(default_value = "127.0.0.1:8097")]
    addr: SocketAddr,
    /// The directory; its groups are served as roles.
    #[command(flatten)]
    size: Size,
    /// The API credential's client id (scope Read users).
    #[arg(long, default_value = "roster")]
    client_id: String,
    /// Its secret.
    #[arg(long, default_value = "roster")]
    secret: String,
    /// API calls an hour (OneLogin's default).
    #[arg(long, default_value_t = DEFAULT_RATE_LIMIT)]
    rate_limit: u32,
}

#[derive(Debug, Args)]
struct KeycloakOptions {
    /// Where to listen.
    #[arg(default_value = "127.0.0.1:8098")]
    addr: SocketAddr,
    /// The directory; nested groups are served as sub-groups.
    #[command(flatten)]
    size: Size,
    /// The realm.
    #[arg(long, default_value = "acme")]
    realm: String,
    /// The confidential client Roster signs in as (its service account holds view-users and
    /// query-groups).
    #[arg(long, default_value = "roster")]
    client_id: String,
    /// Its secret.
    #[arg(long, default_value = "roster")]
    secret: String,
    /// Serve as Keycloak before 17: everything under `/auth`.
    #[arg(long)]
    auth_prefix: bool,
    /// Serve sub-groups inline in `subGroups`, as Keycloak before 23 does (no `/children`).
    #[arg(long)]
    inline_subgroups: bool,
}

fn product(v: &str) -> Result<Product, String> {
    match v.to_ascii_lowercase().as_str() {
        "jira" => Ok(Product::Jira),
        "crowd" => Ok(Product::Crowd),
        _ => Err("jira or crowd".into()),
    }
}

fn allowed(v: &str) -> Result<String, String> {
    parse_allowed_address(v).map(|_| v.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Each simulator stops when dropped: keep it until Ctrl-C.
    let _running: Box<dyn std::any::Any> = match start(cli).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!("roster-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}

/// Starts the simulator asked for and prints its URL, then what it serves.
async fn start(cli: Cli) -> Result<Box<dyn std::any::Any>, String> {
    let listen = |addr: SocketAddr| move |e: std::io::Error| format!("cannot listen on {addr}: {e}");
    let pace = cli.pace.settings()?;
    if let Some(d) = cli.pace.describe() {
        eprintln!("paced: {d}");
    }
    match cli.sim.unwrap_or(Sim::Bitbucket { addr: cli.addr }) {
        Sim::Bitbucket { addr } => {
            let s = BitbucketSim::try_start_on(addr, BbState::new())
                .await
                .map_err(listen(addr))?;
            s.pace().set(pace);
            println!("{}", s.url());
            Ok(Box::new(s))
        }
        Sim::BitbucketCloud(o) => {
            let administration = if o.admin_hub {
                Administration::AdminHub
            } else {
                Administration::Bitbucket
            };
            let mut state = CloudState::new(&o.workspace, administration);
            state.credentials(&o.username, &o.password);
            state.scim_directory(&o.directory_id, &o.api_key);
            if o.auto_accept {
                state.auto_accept(AutoAccept::Immediately);
            }
            if o.calls_per_hour > 0 {
                state.hourly_limit(o.calls_per_hour, std::time::Duration::from_secs(3600));
            }
            let group = state.add_group("developers", Some("write"));
            for i in 0..o.members {
                let id = state.add_account(
                    &format!("user{i}"),
                    &format!("User {i}"),
                    &format!("user{i}@acme.example"),
                );
                state.join(&id, &group);
            }
            let s = CloudSim::try_start_on(o.addr, state).await.map_err(listen(o.addr))?;
            s.pace().set(pace);
            println!("{}", s.url());
            println!(
                "Bitbucket Cloud workspace `{}` ({}): {} members in developers; Basic `{}`; SCIM directory `{}` with key `{}`; {} calls an hour",
                o.workspace,
                if o.admin_hub {
                    "administered at admin.atlassian.com"
                } else {
                    "administered in Bitbucket"
                },
                o.members,
                o.username,
                o.directory_id,
                o.api_key,
                if o.calls_per_hour > 0 {
                    o.calls_per_hour.to_string()
                } else {
                    "unlimited".into()
                }
            );
            Ok(Box::new(s))
        }
        Sim::Crowd(o) => {
            let mut state = CrowdState::from_directory(&o.size.directory(), o.product);
            let allow = if o.allow.is_empty() {
                vec!["127.0.0.1".to_string(), "::1".to_string()]
            } else {
                o.allow
            };
            let allowed: Vec<&str> = allow.iter().map(String::as_str).collect();
            state.add_application(&o.app, &o.password, &allowed);
            let s = CrowdSim::try_start_on(o.addr, state).await.map_err(listen(o.addr))?;
            s.pace().set(pace);
            println!("{}", s.url());
            println!(
                "{} user server: {} users, {} groups; application `{}` from {}",
                o.product.version_header(),
                o.size.users,
                o.size.groups,
                o.app,
                allow.join(", ")
            );
            Ok(Box::new(s))
        }
        Sim::Okta(o) => {
            let mut state = OktaState::from_directory(&o.size.directory(), &o.domain);
            state.add_api_token(&o.token);
            let s = OktaSim::try_start_on(o.addr, state).await.map_err(listen(o.addr))?;
            s.pace().set(pace);
            println!("{}", s.url());
            println!(
                "Okta org: {} users (logins @{}), {} groups; API token `{}`",
                o.size.users, o.domain, o.size.groups, o.token
            );
            Ok(Box::new(s))
        }
        Sim::Onelogin(o) => {
            let mut state = OneLoginState::from_directory(&o.size.directory());
            state.add_credential(&o.client_id, &o.secret, CredentialScope::ReadUsers);
            state.set_rate_limit(o.rate_limit);
            let s = OneLoginSim::try_start_on(o.addr, state).await.map_err(listen(o.addr))?;
            s.pace().set(pace);
            println!("{}", s.url());
            println!(
                "OneLogin account: {} users, {} roles; API credential `{}` (Read users), {} calls an hour",
                o.size.users, o.size.groups, o.client_id, o.rate_limit
            );
            Ok(Box::new(s))
        }
        Sim::Keycloak(o) => {
            let mut state = KeycloakState::from_directory(&o.realm, &o.size.directory());
            state.add_client(&o.client_id, &o.secret, &[Role::ViewUsers, Role::QueryGroups]);
            if o.auth_prefix {
                state.set_auth_prefix();
            }
            if o.inline_subgroups {
                state.set_groups_api(GroupsApi::Inline);
            }
            let s = KeycloakSim::try_start_on(o.addr, state).await.map_err(listen(o.addr))?;
            s.pace().set(pace);
            println!("{}", s.base_url());
            println!(
                "Keycloak realm `{}`: {} users, {} groups; client `{}` (view-users, query-groups)",
                o.realm, o.size.users, o.size.groups, o.client_id
            );
            Ok(Box::new(s))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Cli, String> {
        Cli::try_parse_from(std::iter::once("roster-sim").chain(s.split_whitespace())).map_err(|e| e.to_string())
    }

    fn sim(s: &str) -> Sim {
        let cli = parse(s).unwrap();
        cli.sim.unwrap_or(Sim::Bitbucket { addr: cli.addr })
    }

    #[test]
    fn the_bitbucket_forms_still_work() {
        let bb = |s: &str| match sim(s) {
            Sim::Bitbucket { addr } => addr.to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(bb(""), "127.0.0.1:7990");
        assert_eq!(bb("127.0.0.1:9000"), "127.0.0.1:9000");
        assert_eq!(bb("bitbucket 127.0.0.1:9001"), "127.0.0.1:9001");
        assert!(parse("localhost").unwrap_err().contains("localhost"));
    }

    #[test]
    fn crowd_takes_its_options_and_names_what_is_wrong() {
        let Sim::Crowd(o) =
            sim("crowd 127.0.0.1:0 --product crowd --users 5 --groups 2 --app bb --password pw --allow 10.0.0.0/8")
        else {
            panic!("crowd");
        };
        assert_eq!(
            (o.product, o.size.users, o.size.groups, o.size.per_user),
            (Product::Crowd, 5, 2, 3)
        );
        assert_eq!((o.app.as_str(), o.password.as_str()), ("bb", "pw"));
        assert_eq!(o.allow, ["10.0.0.0/8"]);
        let Sim::Crowd(d) = sim("crowd") else { panic!("crowd") };
        assert_eq!(d.addr, "127.0.0.1:8095".parse().unwrap());
        for (bad, says) in [
            ("crowd --allow 10.0.0.0/99", "10.0.0.0/99"),
            ("crowd --users many", "--users"),
            ("crowd --product ldap", "ldap"),
            ("crowd --colour red", "--colour"),
            ("crowd --app", "--app"),
        ] {
            assert!(parse(bad).unwrap_err().contains(says), "{bad}");
        }
    }

    #[test]
    fn onelogin_takes_its_options_and_names_what_is_wrong() {
        let Sim::Onelogin(o) = sim(
            "onelogin 127.0.0.1:0 --users 5 --groups 2 --per-user 1 --client-id cid --secret pw --rate-limit 100000",
        ) else {
            panic!("onelogin");
        };
        assert_eq!(
            (o.size.users, o.size.groups, o.size.per_user, o.rate_limit),
            (5, 2, 1, 100_000)
        );
        assert_eq!((o.client_id.as_str(), o.secret.as_str()), ("cid", "pw"));
        let Sim::Onelogin(d) = sim("onelogin") else {
            panic!("onelogin")
        };
        assert_eq!(
            (d.addr, d.rate_limit),
            ("127.0.0.1:8097".parse().unwrap(), DEFAULT_RATE_LIMIT)
        );
        for (bad, says) in [
            ("onelogin --rate-limit lots", "--rate-limit"),
            ("onelogin --product jira", "--product"),
            ("onelogin --secret", "--secret"),
            ("onelogin localhost", "localhost"),
        ] {
            assert!(parse(bad).unwrap_err().contains(says), "{bad}");
        }
    }

    #[test]
    fn okta_takes_its_options_and_names_what_is_wrong() {
        let Sim::Okta(o) = sim("okta 127.0.0.1:0 --users 5 --groups 2 --domain corp.example --token t0k") else {
            panic!("okta");
        };
        assert_eq!((o.size.users, o.size.groups, o.size.per_user), (5, 2, 3));
        assert_eq!((o.domain.as_str(), o.token.as_str()), ("corp.example", "t0k"));
        let Sim::Okta(d) = sim("okta") else { panic!("okta") };
        assert_eq!(d.addr, "127.0.0.1:8096".parse().unwrap());
        for (bad, says) in [
            ("okta --users many", "--users"),
            ("okta --colour red", "--colour"),
            ("okta --token", "--token"),
            ("okta nowhere", "nowhere"),
        ] {
            assert!(parse(bad).unwrap_err().contains(says), "{bad}");
        }
    }

    #[test]
    fn keycloak_takes_its_options() {
        let Sim::Keycloak(o) = sim("keycloak --realm corp --client-id bb --secret pw --auth-prefix --inline-subgroups")
        else {
            panic!("keycloak");
        };
        assert_eq!(
            (o.realm.as_str(), o.client_id.as_str(), o.secret.as_str()),
            ("corp", "bb", "pw")
        );
        assert!(o.auth_prefix && o.inline_subgroups);
        let Sim::Keycloak(d) = sim("keycloak") else {
            panic!("keycloak")
        };
        assert_eq!((d.addr, d.auth_prefix), ("127.0.0.1:8098".parse().unwrap(), false));
        assert!(parse("keycloak --realm").unwrap_err().contains("--realm"));
    }

    #[test]
    fn pace_options_reach_any_simulator_and_name_mistakes() {
        let cli = parse("okta 127.0.0.1:0 --latency-ms 20 --jitter-ms 5 --capacity 4 --queue 2").unwrap();
        assert_eq!(
            cli.pace.settings().unwrap(),
            PaceSettings {
                latency: std::time::Duration::from_millis(20),
                jitter: std::time::Duration::from_millis(5),
                capacity: Some(Capacity { pool: 4, queue: 2 }),
            }
        );
        assert_eq!(parse("").unwrap().pace.settings().unwrap(), PaceSettings::default());
        let says = |s: &str| parse(s).unwrap().pace.settings().unwrap_err();
        assert!(says("--capacity 0").contains("--capacity must be at least 1"));
        assert!(says("bitbucket --queue 3").contains("--queue needs --capacity"));
        assert!(parse("--latency-ms soon").unwrap_err().contains("--latency-ms"));
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let running = start(parse("bitbucket 127.0.0.1:0 --latency-ms 150").unwrap())
                .await
                .unwrap();
            let s = running.downcast_ref::<BitbucketSim>().unwrap();
            let t = std::time::Instant::now();
            let answer = reqwest::Client::new()
                .get(format!("{}/rest/api/1.0/admin/users", s.url()))
                .basic_auth("admin", Some("password"))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
            assert!(
                t.elapsed() >= std::time::Duration::from_millis(150),
                "{:?}",
                t.elapsed()
            );
        });
    }

    #[test]
    fn bitbucket_cloud_takes_its_options_and_serves_its_members() {
        let Sim::BitbucketCloud(o) = sim("bitbucket-cloud --workspace corp --members 3 --admin-hub --calls-per-hour 0")
        else {
            panic!("bitbucket-cloud");
        };
        assert_eq!(
            (o.workspace.as_str(), o.members, o.admin_hub, o.calls_per_hour),
            ("corp", 3, true, 0)
        );
        assert!(
            parse("bitbucket-cloud --members many")
                .unwrap_err()
                .contains("--members")
        );
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let running = start(parse("bitbucket-cloud 127.0.0.1:0 --members 3").unwrap())
                .await
                .unwrap();
            let s = running.downcast_ref::<CloudSim>().unwrap();
            let answer = reqwest::Client::new()
                .get(format!("{}/2.0/workspaces/acme/members", s.url()))
                .basic_auth("roster-bot", Some("roster"))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
            assert_eq!(answer.headers()["x-ratelimit-limit"], "1000");
        });
    }

    #[test]
    fn a_started_keycloak_answers_its_token_endpoint() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let running = start(parse("keycloak 127.0.0.1:0 --users 3 --groups 2").unwrap())
                .await
                .unwrap();
            let s = running.downcast_ref::<KeycloakSim>().unwrap();
            let answer = reqwest::Client::new()
                .post(format!("{}/realms/acme/protocol/openid-connect/token", s.base_url()))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials&client_id=roster&client_secret=roster")
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
        });
    }
}
