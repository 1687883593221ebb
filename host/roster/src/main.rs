//! `roster`: the command line. Subcommands are thin: each builds what it needs from the
//! library and reports in plain words.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use roster_directory::FetchMode;
use roster_engine::Writes;
use roster_model::Trigger;
use roster_runtime::{LoadReport, Runtime, RuntimeConfig};
use roster_serve::SyncOptions;

mod cli;

/// A sync copies and frees millions of short strings (records through transforms, plans,
/// mirrors); mimalloc serves them about a fifth faster than the system allocator, and does not
/// stall consolidating freed blocks when a large buffer (a packed batch) is requested between
/// them (BENCHMARKS.md, the mapping benchmark).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps Bitbucket users, groups and memberships in step with identity providers.
#[derive(Parser)]
#[command(version, about)]
pub(crate) struct Cli {
    /// Where Roster keeps its state (plugin cache, database).
    #[arg(long, env = "ROSTER_DATA_DIR", default_value = ".roster", global = true)]
    pub(crate) data_dir: PathBuf,
    /// The folder scanned for plugin components (`.wasm`); default: DATA_DIR/plugins.
    #[arg(long, env = "ROSTER_PLUGINS_DIR", global = true)]
    pub(crate) plugins_dir: Option<PathBuf>,
    /// The configuration file (sources, target, policy).
    #[arg(long, env = "ROSTER_CONFIG", default_value = "roster.toml", global = true)]
    pub(crate) config: PathBuf,
    /// The time zone dates are shown in: an IANA name such as Europe/Berlin, or UTC; default:
    /// the system's.
    #[arg(long, env = "ROSTER_TZ", global = true)]
    pub(crate) tz: Option<String>,
    /// Log format: human or json.
    #[arg(long, env = "ROSTER_LOG_FORMAT", default_value = "human", global = true)]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the service: loads the plugins, watches their folder, serves HTTP.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "ROSTER_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Serve the API only: no scheduled runs.
        #[arg(long)]
        no_schedule: bool,
    },
    /// Creates, lists and revokes API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// SCIM push: the tokens identity providers push to a source with.
    Scim {
        #[command(subcommand)]
        command: ScimCommand,
    },
    /// The Crowd directory Roster serves: the applications that read it.
    Crowd {
        #[command(subcommand)]
        command: cli::crowd::CrowdCommand,
    },
    /// The demo: a simulated Bitbucket, a sample directory, one sync with its summary, then the
    /// service keeps running.
    Demo {
        /// The identity provider to simulate: `entra` (Microsoft Graph) or `jira` (a Jira user
        /// server, read through Crowd REST).
        #[arg(long, value_enum, default_value = "entra")]
        idp: cli::demo::DemoIdp,
        /// Users in the sample directory.
        #[arg(long, default_value_t = 200)]
        users: usize,
        /// Address of the service afterwards.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Sync, print the summary and exit instead of serving.
        #[arg(long)]
        once: bool,
    },
    /// Runs a sync: fetch the sources (all, or those named), then plan, guard and apply for
    /// each target in turn (one run each).
    Sync {
        /// Sources to fetch (default: every enabled source).
        sources: Vec<String>,
        /// Only this target (its id; default: every target).
        #[arg(long)]
        target: Option<String>,
        /// Plan only: show what would change and write nothing to Bitbucket.
        #[arg(long)]
        dry_run: bool,
        /// Use each source's delta token when it has one.
        #[arg(long)]
        incremental: bool,
        /// Print the run report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Asks each source's connector whether it can work: credentials, permissions, scope.
    Check {
        /// Sources to check (default: all).
        sources: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Reads sources into Roster's mirror without planning or writing to Bitbucket.
    Fetch {
        /// Sources to fetch (default: every enabled source).
        sources: Vec<String>,
        /// Use each source's delta token when it has one.
        #[arg(long)]
        incremental: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Shows what a source's transform chain makes of its records (or of sample records):
    /// each record before, after every step with the rule that decided, and at the end.
    /// Writes nothing.
    Preview {
        /// The source.
        source: String,
        /// Sample records instead of the source's mirror (the `file` connector's JSON form).
        #[arg(long)]
        sample: Option<PathBuf>,
        /// Only records whose id or name contains this.
        #[arg(long)]
        only: Option<String>,
        /// At most this many users and this many groups.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Explains why a user is (or is not) in a group: the path through nested groups.
    Why {
        /// Bitbucket username.
        user: String,
        /// Group name.
        group: String,
    },
    /// Shows, approves or rejects plans.
    Plan {
        #[command(subcommand)]
        command: cli::sync::PlanCommand,
    },
    /// Lists, shows and exports runs.
    Runs {
        #[command(subcommand)]
        command: cli::sync::RunsCommand,
    },
    /// Inspects plugin components.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// The secrets sealed in the database.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Forgets every sealed secret, when the key that sealed them is lost: sources from
    /// roster.toml are sealed again with the key in use at the next start; the secrets of
    /// sources and the target created through the API must be given again.
    Reset {
        /// Go ahead (without it, nothing is changed).
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Creates a token and prints it once; only its hash is kept.
    Create {
        /// admin, operator or viewer.
        #[arg(long)]
        role: roster_store::Role,
        /// Who or what it is for.
        #[arg(long, default_value = "api")]
        name: String,
    },
    /// Lists tokens (never their values).
    List,
    /// Revokes a token.
    Revoke {
        /// Its id (from `roster token list`).
        id: i64,
    },
}

#[derive(Subcommand)]
enum ScimCommand {
    /// Creates, lists and revokes the bearer tokens of push sources.
    Token {
        #[command(subcommand)]
        command: ScimTokenCommand,
    },
}

#[derive(Subcommand)]
enum ScimTokenCommand {
    /// Creates a token for a push source and prints it once; only its hash is kept. Give it to
    /// the identity provider as its secret token, with the tenant URL
    /// http(s)://HOST/scim/v2/SOURCE.
    Create {
        /// The source (`[[source]]` with `[source.push] protocol = "scim"`).
        source: String,
        /// Who or what it is for.
        #[arg(long, default_value = "scim")]
        name: String,
    },
    /// Lists the tokens of a source, or of every source (never their values).
    List {
        /// The source; all when omitted.
        source: Option<String>,
    },
    /// Revokes a token of a source.
    Revoke {
        /// The source.
        source: String,
        /// Its id (from `roster scim token list`).
        id: i64,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Lists the plugins in the plugins folder with world, version and sha256, and the files
    /// that failed to load with the reason.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Validates one component file and prints what it is, without installing it.
    Check {
        /// The `.wasm` file.
        file: PathBuf,
    },
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ROSTER_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Logs warnings and errors only, unless ROSTER_LOG says otherwise (commands that print reports).
fn init_quiet_tracing(format: &str) {
    if std::env::var_os("ROSTER_LOG").is_none() {
        let filter = tracing_subscriber::EnvFilter::new("warn");
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
        if format == "json" {
            builder.json().init()
        } else {
            builder.init()
        }
    } else {
        init_tracing(format);
    }
}

/// The plugin runtime; `store` gives the key the compiled-code cache is sealed with.
pub(crate) fn runtime(cli: &Cli, store: &roster_store::Store) -> anyhow::Result<Runtime> {
    let data_dir = cli::data_dir(cli)?;
    let plugins_dir = cli.plugins_dir.clone().unwrap_or_else(|| data_dir.join("plugins"));
    std::fs::create_dir_all(&plugins_dir)
        .with_context(|| format!("creating the plugins folder {}", plugins_dir.display()))?;
    // The cache's MAC key comes from the secret key, which the cache folder never holds.
    let cache_key = roster_runtime::CacheKey::new(store.derive_key("plugin-cache"));
    let config = RuntimeConfig::new(plugins_dir, data_dir.join("cache"), cache_key);
    Runtime::new(config).map_err(|e| anyhow::anyhow!("cannot start the plugin runtime: {e}"))
}

/// `roster sync`'s exit code for a run paused by the target's call budget: sysexits'
/// EX_TEMPFAIL ("try again later"), so a wrapper tells a plan to continue from a failure.
const EXIT_PAUSED: u8 = 75;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // anyhow's own report of an error returned from main.
            eprintln!("Error: {e:?}");
            if e.is::<cli::sync::Paused>() {
                std::process::ExitCode::from(EXIT_PAUSED)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Serve { listen, no_schedule } => {
            init_tracing(&cli.log_format);
            serve(&cli, &cli.config, *listen, !*no_schedule).await
        }
        Command::Token { command } => {
            init_quiet_tracing(&cli.log_format);
            token(&cli, command)
        }
        Command::Scim {
            command: ScimCommand::Token { command },
        } => {
            init_quiet_tracing(&cli.log_format);
            scim_token(&cli, command)
        }
        Command::Crowd { command } => {
            init_quiet_tracing(&cli.log_format);
            let clock = cli::time::Clock::from_cli(&cli)?;
            cli::crowd::run(&*cli::store(&cli)?, &clock, command)
        }
        Command::Demo {
            idp,
            users,
            listen,
            once,
        } => {
            init_tracing(&cli.log_format);
            cli::demo::run(&cli, *idp, *users, *listen, *once).await
        }
        Command::Sync {
            sources,
            target,
            dry_run,
            incremental,
            json,
        } => {
            init_quiet_tracing(&cli.log_format);
            let opts = SyncOptions {
                writes: if *dry_run { Writes::DryRun } else { Writes::Apply },
                target: target.clone(),
                ..cli_options(sources, fetch_mode(*incremental))
            };
            cli::sync::sync(&cli, &opts, *json).await
        }
        Command::Check { sources, json } => {
            init_quiet_tracing(&cli.log_format);
            cli::sync::check(&cli, sources, *json).await
        }
        Command::Fetch {
            sources,
            incremental,
            json,
        } => {
            init_quiet_tracing(&cli.log_format);
            let opts = cli_options(sources, fetch_mode(*incremental));
            cli::sync::fetch(&cli, &opts, *json).await
        }
        Command::Preview {
            source,
            sample,
            only,
            limit,
            json,
        } => {
            init_quiet_tracing(&cli.log_format);
            cli::preview::run(&cli, source, sample.as_deref(), only.as_deref(), *limit, *json).await
        }
        Command::Why { user, group } => {
            init_quiet_tracing(&cli.log_format);
            let runner = cli::runner(&cli).await?;
            println!("{}", runner.why(user, group).await?);
            Ok(())
        }
        Command::Plan { command } => {
            init_quiet_tracing(&cli.log_format);
            cli::sync::plan(&cli, command).await
        }
        Command::Runs { command } => {
            init_quiet_tracing(&cli.log_format);
            cli::sync::runs(&cli, command)
        }
        Command::Secrets {
            command: SecretsCommand::Reset { yes },
        } => {
            init_quiet_tracing(&cli.log_format);
            if !*yes {
                anyhow::bail!(
                    "this forgets every secret sealed in {} (the sources' secrets, and the target created through the API); run it again with --yes to go ahead",
                    cli.data_dir.join("roster.db").display()
                );
            }
            cli::reset_secrets(&cli)
        }
        Command::Plugins { command } => {
            if std::env::var_os("ROSTER_LOG").is_some() {
                init_tracing(&cli.log_format);
            }
            match command {
                PluginsCommand::List { json } => plugins_list(&cli, *json).await,
                PluginsCommand::Check { file } => plugins_check(&cli, file).await,
            }
        }
    }
}

async fn plugins_list(cli: &Cli, json: bool) -> anyhow::Result<()> {
    let store = cli::store(cli)?;
    let rt = runtime(cli, &store)?;
    rt.reload().await;
    let plugins = rt.plugins();
    let errors = rt.load_errors();
    if json {
        let list: Vec<_> = plugins
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.label.name, "world": p.world, "version": p.label.version,
                    "sha256": p.label.sha256, "file": p.path, "description": p.description,
                    "verifies_passwords": p.verifies_passwords(),
                })
            })
            .collect();
        let failed: Vec<_> = errors
            .iter()
            .map(|(f, e)| serde_json::json!({"file": f, "error": e}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"plugins": list, "failed": failed}))?
        );
        return Ok(());
    }
    println!("plugins folder: {}", rt.config().plugins_dir.display());
    if plugins.is_empty() {
        println!("no plugins loaded");
    } else {
        println!(
            "{:<16} {:<10} {:<10} {:<18} {:<16} FILE",
            "NAME", "WORLD", "VERSION", "VERIFIES PASSWORDS", "SHA256"
        );
        for p in &plugins {
            // Only a connector can say where its people's passwords are checked.
            let passwords = match (p.world, p.verifies_passwords()) {
                (roster_runtime::World::Transform, _) => "-",
                (_, true) => "yes",
                (_, false) => "no",
            };
            println!(
                "{:<16} {:<10} {:<10} {:<18} {:<16} {}",
                p.label.name,
                p.world,
                p.label.version,
                passwords,
                &p.label.sha256[..12],
                p.label.file
            );
        }
    }
    for (file, error) in &errors {
        println!("FAILED {}: {error}", file.display());
    }
    if !errors.is_empty() {
        anyhow::bail!("{} plugin file(s) failed to load", errors.len());
    }
    Ok(())
}

async fn plugins_check(cli: &Cli, file: &std::path::Path) -> anyhow::Result<()> {
    let store = cli::store(cli)?;
    let rt = runtime(cli, &store)?;
    let p = rt.prepare(file).await?;
    println!("{} {} {} — {}", p.label.name, p.world, p.label.version, p.description);
    println!("sha256 {}", p.label.sha256);
    println!("settings schema: {}", p.settings_schema);
    Ok(())
}

fn token(cli: &Cli, command: &TokenCommand) -> anyhow::Result<()> {
    let store = cli::store(cli)?;
    match command {
        TokenCommand::Create { role, name } => {
            let (row, token) = store.create_token(name, *role, &cli::actor())?;
            store.audit(
                &cli::actor(),
                "local",
                "token.create",
                &format!("token {}", row.id),
                Some(role.as_str()),
            )?;
            println!("{token}");
            eprintln!(
                "token {} ({}, {}) created; it is shown this once — Roster keeps only its hash",
                row.id,
                row.name,
                row.role.as_str()
            );
        }
        TokenCommand::List => {
            println!("{:>4} {:<9} {:<20} {:<16} STATE", "ID", "ROLE", "NAME", "CREATED BY");
            for t in store.tokens()? {
                let state = if t.revoked_at.is_some() { "revoked" } else { "live" };
                println!(
                    "{:>4} {:<9} {:<20} {:<16} {state}",
                    t.id,
                    t.role.as_str(),
                    t.name,
                    t.created_by
                );
            }
        }
        TokenCommand::Revoke { id } => {
            if !store.revoke_token(*id)? {
                anyhow::bail!("no live token {id}; see `roster token list`");
            }
            store.audit(&cli::actor(), "local", "token.revoke", &format!("token {id}"), None)?;
            println!("token {id} revoked");
        }
    }
    Ok(())
}

/// Refuses a source that the configuration (roster.toml and the sources created through the
/// API) does not define as a push source.
fn push_source(cli: &Cli, store: &roster_store::Store, source: &str) -> anyhow::Result<()> {
    let config = roster_serve::service::merged_config(&cli.config, store, &cli::target_kinds())
        .with_context(|| format!("loading {}", cli.config.display()))?;
    match config.source(source).map(|s| s.feed()) {
        Some(roster_directory::Feed::Push(_)) => Ok(()),
        Some(roster_directory::Feed::Pull(_)) => anyhow::bail!(
            "the source '{source}' is pulled by a plugin; give it [source.push] protocol = \"scim\" in {} to accept SCIM pushes",
            cli.config.display()
        ),
        None => anyhow::bail!("no source named '{source}' in {}", cli.config.display()),
    }
}

fn scim_token(cli: &Cli, command: &ScimTokenCommand) -> anyhow::Result<()> {
    match command {
        ScimTokenCommand::Create { source, name } => {
            let store = cli::store(cli)?;
            push_source(cli, &store, source)?;
            let (row, token) = store.create_scim_token(source, name, &cli::actor())?;
            store.audit(
                &cli::actor(),
                "local",
                "scim-token.create",
                &format!("source {source}"),
                Some(&format!("token {} ({})", row.id, row.name)),
            )?;
            println!("{token}");
            eprintln!(
                "SCIM token {} ({}) for the source '{source}' created; it is shown this once — Roster keeps only its hash. The tenant URL is http(s)://HOST/scim/v2/{source}",
                row.id, row.name
            );
        }
        ScimTokenCommand::List { source } => {
            let clock = cli::time::Clock::from_cli(cli)?;
            let store = cli::store(cli)?;
            println!(
                "{:>4} {:<16} {:<20} {:<16} {:<23} STATE",
                "ID", "SOURCE", "NAME", "CREATED BY", "LAST USED"
            );
            for t in store.scim_tokens(source.as_deref())? {
                let state = if t.revoked_at.is_some() { "revoked" } else { "live" };
                let used = clock.show_or(t.last_used_at, "never");
                println!(
                    "{:>4} {:<16} {:<20} {:<16} {:<23} {state}",
                    t.id, t.source, t.name, t.created_by, used
                );
            }
        }
        ScimTokenCommand::Revoke { source, id } => {
            let store = cli::store(cli)?;
            if !store.revoke_scim_token(Some(source), *id)? {
                anyhow::bail!(
                    "no live SCIM token {id} of the source '{source}'; see `roster scim token list {source}`"
                );
            }
            store.audit(
                &cli::actor(),
                "local",
                "scim-token.revoke",
                &format!("source {source}"),
                Some(&format!("token {id}")),
            )?;
            println!("SCIM token {id} of the source '{source}' revoked");
        }
    }
    Ok(())
}

/// `roster serve`: the API, the scheduler (unless `schedule` is false) and the plugin watcher,
/// until Ctrl-C or SIGTERM.
pub(crate) async fn serve(
    cli: &Cli,
    config: &std::path::Path,
    listen: SocketAddr,
    schedule: bool,
) -> anyhow::Result<()> {
    let store = cli::store(cli)?;
    let rt = runtime(cli, &store)?;
    for report in rt.reload().await {
        if let LoadReport::Failed { path, error } = report {
            tracing::warn!(file = %path.display(), "{error}");
        }
    }
    for p in rt.plugins() {
        tracing::info!(
            "serving plugin {} {} ({}, sha256 {})",
            p.label.name,
            p.label.version,
            p.world,
            &p.label.sha256[..12]
        );
    }
    let service = roster_serve::Service::new(store, rt, config, cli::target_kinds())
        .with_context(|| format!("loading {}", config.display()))?;
    let _watch = service.watch_plugins()?;
    service.resume_pushes();
    let (app, _) = roster_serve::api::routes(service.clone());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    tracing::info!(
        "Roster listening on http://{} (API under /api/v1, document at /api/v1/openapi.json; SCIM push under /scim/v2/{{source}})",
        listener.local_addr()?
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let scheduler = schedule.then(|| tokio::spawn(roster_serve::scheduler::run(service.clone(), stopped)));
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown())
        .await?;
    let _ = stop.send(true);
    if let Some(s) = scheduler {
        let _ = s.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// `--incremental` as the fetch mode it asks for.
fn fetch_mode(incremental: bool) -> FetchMode {
    match incremental {
        true => FetchMode::Incremental,
        false => FetchMode::Full,
    }
}

/// The options of a run asked for on the command line: these sources, fetched this way.
fn cli_options(sources: &[String], fetch: FetchMode) -> SyncOptions {
    SyncOptions {
        sources: sources.to_vec(),
        fetch,
        ..SyncOptions::new(Trigger::Cli, &cli::actor())
    }
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
