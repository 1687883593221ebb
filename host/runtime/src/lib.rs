//! The sandboxed plugin runtime.
//!
//! One wasmtime `Engine` (pooling allocator, epoch interruption driven by a ticker thread), one
//! `Linker` per world, an `InstancePre` per loaded plugin, and a fresh `Store` per [`Job`]. The
//! registry maps plugin names to the version currently served; swapping in a new version is an
//! `Arc` replacement, so jobs already running finish on the version they started with.
//!
//! Invariants: a plugin reaches nothing but its source's [`SourceAccess`]; secrets never enter a
//! store; a trapped instance is never entered again; a broken new file never replaces a working
//! version.

mod bindings;
pub mod capability;
pub mod errno;
pub mod error;
pub mod job;
pub mod jwt;
pub mod ldap;
pub mod limits;
pub mod loader;
pub mod net;
pub mod secrets;
mod state;
pub mod types;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use error::{GuestFailure, JobError, JobFailure, LoadError, PluginLabel};
pub use job::{Job, StepOutcome};
pub use limits::{Limits, RuntimeConfig};
pub use loader::{CacheKey, WIT_VERSION, World};
pub use net::{RequestCounts, SourceAccess};

use bindings::v0_1::connector::{ConnectorPlugin, ConnectorPluginPre};
use bindings::v0_1::transform::TransformPluginPre;
use state::HostState;

/// The linked, ready-to-instantiate form of a plugin.
pub(crate) enum Prepared {
    /// `credentials`: it also exports `credentials` (checked at load), so it can say where a
    /// person's password is checked.
    Connector {
        pre: ConnectorPluginPre<HostState>,
        credentials: bool,
    },
    /// `packed`: it also exports `transform-packed` (checked at load), so batches cross packed.
    Transform {
        pre: TransformPluginPre<HostState>,
        packed: bool,
    },
}

/// One version of a plugin, as loaded from one file.
pub struct LoadedPlugin {
    /// Name, version, sha and file.
    pub label: PluginLabel,
    /// Connector or transform.
    pub world: World,
    /// One line for administrators.
    pub description: String,
    /// JSON Schema of its settings.
    pub settings_schema: String,
    /// The file it came from.
    pub path: PathBuf,
    /// When it was loaded.
    pub loaded_at: SystemTime,
    /// Whether the precompiled code came from the disk cache.
    pub from_cache: bool,
    pub(crate) prepared: Prepared,
}

impl LoadedPlugin {
    /// Whether this connector can say where a person's password is checked (it exports
    /// `credentials`, WIT 0.1.2): its sources can verify passwords. False for transforms and
    /// for connectors built before 0.1.2.
    pub fn verifies_passwords(&self) -> bool {
        matches!(self.prepared, Prepared::Connector { credentials: true, .. })
    }
}

/// What happened to one file during a (re)load.
#[derive(Debug)]
pub enum LoadReport {
    /// A plugin was loaded for the first time.
    Loaded(PluginLabel),
    /// A new version replaced the one that was served.
    Replaced {
        /// The version that was served before.
        old: PluginLabel,
        /// The version served from now on.
        new: PluginLabel,
    },
    /// The file is gone; the plugin is no longer offered to new jobs.
    Removed(PluginLabel),
    /// The file could not be loaded; any previous version keeps serving.
    Failed {
        /// The file.
        path: PathBuf,
        /// Why, in plain words.
        error: String,
    },
}

struct Registry {
    by_name: HashMap<String, Arc<LoadedPlugin>>,
    /// Last load error per file, for `plugins list`.
    errors: HashMap<PathBuf, String>,
}

struct Inner {
    engine: Engine,
    connector_linker: Linker<HostState>,
    transform_linker: Linker<HostState>,
    registry: RwLock<Registry>,
    /// Serialises reloads so two watchers' events never interleave a swap.
    reload_lock: tokio::sync::Mutex<()>,
    slots: Arc<Semaphore>,
    config: RuntimeConfig,
}

/// The plugin runtime. Cheap to clone; all clones share one engine and registry.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

fn engine(config: &RuntimeConfig) -> wasmtime::Result<Engine> {
    let mut cfg = Config::new();
    cfg.wasm_component_model(true);
    cfg.epoch_interruption(true);
    cfg.max_wasm_stack(1 << 20);
    cfg.async_stack_size(2 << 20);
    // `ROSTER_PERFMAP=1` lets `perf report` name plugin functions (a /tmp/perf-PID.map file),
    // for finding where a slow plugin spends its time.
    if std::env::var_os("ROSTER_PERFMAP").is_some() {
        cfg.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let jobs = config.max_concurrent_jobs.max(1);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(jobs)
        .total_core_instances(jobs * 16)
        .total_memories(jobs * 4)
        .total_tables(jobs * 8)
        .total_stacks(jobs)
        .max_core_instances_per_component(32)
        .max_memories_per_component(4)
        .max_tables_per_component(16)
        .max_memory_size((config.max_memory_mib as usize) << 20);
    cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&cfg)
}

/// Advances the epoch from a dedicated thread, so deadlines fire even when every executor
/// thread is busy; stops when the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine, every: Duration) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("roster-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                match weak.upgrade() {
                    Some(e) => e.increment_epoch(),
                    None => break,
                }
            }
        })
        .expect("spawning the epoch thread");
}

impl Runtime {
    /// Builds the engine and linkers; loads nothing yet (see [`Runtime::reload`]).
    pub fn new(config: RuntimeConfig) -> Result<Runtime, String> {
        let wt = |e: wasmtime::Error| loader::root_cause(&e);
        let engine = engine(&config).map_err(wt)?;
        spawn_epoch_ticker(&engine, config.epoch_tick);
        let mut connector_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut connector_linker).map_err(wt)?;
        ConnectorPlugin::add_to_linker::<_, HasSelf<HostState>>(&mut connector_linker, |s| s).map_err(wt)?;
        let mut transform_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut transform_linker).map_err(wt)?;
        bindings::v0_1::connector::roster::plugin::types::add_to_linker::<_, HasSelf<HostState>>(
            &mut transform_linker,
            |s| s,
        )
        .map_err(wt)?;
        let slots = Arc::new(Semaphore::new(config.max_concurrent_jobs.max(1) as usize));
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                connector_linker,
                transform_linker,
                registry: RwLock::new(Registry {
                    by_name: HashMap::new(),
                    errors: HashMap::new(),
                }),
                reload_lock: tokio::sync::Mutex::new(()),
                slots,
                config,
            }),
        })
    }

    /// The engine-wide settings.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// The plugin currently served under `name`.
    pub fn plugin(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.read().by_name.get(name).cloned()
    }

    /// Every plugin currently served, by name.
    pub fn plugins(&self) -> Vec<Arc<LoadedPlugin>> {
        let mut all: Vec<_> = self.read().by_name.values().cloned().collect();
        all.sort_by(|a, b| a.label.name.cmp(&b.label.name));
        all
    }

    /// Files that failed to load, with the reason.
    pub fn load_errors(&self) -> Vec<(PathBuf, String)> {
        let mut all: Vec<_> = self.read().errors.iter().map(|(p, e)| (p.clone(), e.clone())).collect();
        all.sort();
        all
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.inner.registry.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.inner.registry.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Compiles (or takes from the cache), validates, links and describes one file, without
    /// registering it.
    pub async fn prepare(&self, path: &Path) -> Result<LoadedPlugin, LoadError> {
        let bytes = tokio::fs::read(path).await.map_err(|source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let sha = loader::sha256_hex(&bytes);
        let sha256 = sha.clone();
        let inner = self.inner.clone();
        let p = path.to_path_buf();
        let (component, from_cache, world) = tokio::task::spawn_blocking(move || {
            let (component, hit) = loader::compile_cached(
                &inner.engine,
                &inner.config.cache_dir,
                &inner.config.cache_key,
                &p,
                &bytes,
                &sha,
            )?;
            let world = loader::classify(&inner.engine, &component, &p)?;
            Ok::<_, LoadError>((component, hit, world))
        })
        .await
        .map_err(|e| LoadError::Prepare {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })??;
        let link = |e: wasmtime::Error| LoadError::Prepare {
            path: path.to_path_buf(),
            detail: loader::root_cause(&e),
        };
        let prepared = match world {
            World::Connector => {
                let instance_pre = self.inner.connector_linker.instantiate_pre(&component).map_err(link)?;
                let credentials = loader::exports_credentials(&self.inner.engine, &component);
                if credentials {
                    // Type-checks the export now, so a wrong signature fails the load.
                    bindings::v0_1::connector_credentials::ConnectorPluginCredentialsPre::new(instance_pre.clone())
                        .map_err(link)?;
                }
                Prepared::Connector {
                    pre: ConnectorPluginPre::new(instance_pre).map_err(link)?,
                    credentials,
                }
            }
            World::Transform => {
                let instance_pre = self.inner.transform_linker.instantiate_pre(&component).map_err(link)?;
                let packed = loader::exports_packed(&self.inner.engine, &component);
                if packed {
                    // Type-checks the packed exports now, so a wrong signature fails the load.
                    bindings::v0_1::transform_packed::TransformPluginPackedPre::new(instance_pre.clone())
                        .map_err(link)?;
                }
                Prepared::Transform {
                    pre: TransformPluginPre::new(instance_pre).map_err(link)?,
                    packed,
                }
            }
        };
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let label = PluginLabel {
            name: file.trim_end_matches(".wasm").to_string(),
            version: "?".into(),
            sha256,
            file,
        };
        let mut plugin = LoadedPlugin {
            label,
            world,
            description: String::new(),
            settings_schema: String::new(),
            path: path.to_path_buf(),
            loaded_at: SystemTime::now(),
            from_cache,
            prepared,
        };
        let describe_limits = Limits {
            call_timeout_secs: 10.0,
            memory_mib: 64,
            ..Limits::default()
        };
        // describe() runs on a throwaway Arc; the real one is built with what it returns.
        let probe = Arc::new(plugin);
        let info = {
            let mut job = self
                .start(probe.clone(), describe_limits, SourceAccess::none())
                .await
                .map_err(|e| LoadError::Describe {
                    path: path.to_path_buf(),
                    detail: e.failure.to_string(),
                })?;
            job.describe().await.map_err(|e| LoadError::Describe {
                path: path.to_path_buf(),
                detail: e.failure.to_string(),
            })?
        };
        plugin = Arc::try_unwrap(probe).map_err(|_| LoadError::Describe {
            path: path.to_path_buf(),
            detail: "describe job still running".into(),
        })?;
        validate_info(&info).map_err(|detail| LoadError::Describe {
            path: path.to_path_buf(),
            detail,
        })?;
        plugin.label.name = info.name;
        plugin.label.version = info.version;
        plugin.description = info.description;
        plugin.settings_schema = info.settings_schema;
        Ok(plugin)
    }

    /// Loads or reloads one file and swaps it in. On failure the previous version, if any,
    /// keeps serving and the error is recorded for `plugins list`.
    pub async fn load_file(&self, path: &Path) -> LoadReport {
        let result = self.prepare(path).await;
        self.install(path, result)
    }

    fn install(&self, path: &Path, result: Result<LoadedPlugin, LoadError>) -> LoadReport {
        let plugin = match result {
            Ok(p) => p,
            Err(e) => {
                let error = e.to_string();
                tracing::error!(file = %path.display(), "plugin not loaded: {error}");
                self.write().errors.insert(path.to_path_buf(), error.clone());
                return LoadReport::Failed {
                    path: path.to_path_buf(),
                    error,
                };
            }
        };
        let mut reg = self.write();
        if let Some(other) = reg.by_name.get(&plugin.label.name).filter(|o| o.path != plugin.path) {
            let error = LoadError::DuplicateName {
                path: path.to_path_buf(),
                name: plugin.label.name.clone(),
                other: other.path.display().to_string(),
            }
            .to_string();
            tracing::error!("plugin not loaded: {error}");
            reg.errors.insert(path.to_path_buf(), error.clone());
            return LoadReport::Failed {
                path: path.to_path_buf(),
                error,
            };
        }
        reg.errors.remove(path);
        // The same file may now carry a different name: the old name goes.
        let old = reg
            .by_name
            .iter()
            .find(|(_, p)| p.path == plugin.path)
            .map(|(n, p)| (n.clone(), p.label.clone()));
        if let Some((old_name, _)) = &old {
            reg.by_name.remove(old_name);
        }
        let label = plugin.label.clone();
        tracing::info!(plugin = %label.name, version = %label.version, world = %plugin.world, sha256 = %label.sha256, cached = plugin.from_cache, "plugin loaded");
        reg.by_name.insert(label.name.clone(), Arc::new(plugin));
        match old {
            Some((_, old)) => LoadReport::Replaced { old, new: label },
            None => LoadReport::Loaded(label),
        }
    }

    /// Rescans the plugins folder: loads new and changed files, drops removed ones.
    pub async fn reload(&self) -> Vec<LoadReport> {
        let _guard = self.inner.reload_lock.lock().await;
        let dir = self.inner.config.plugins_dir.clone();
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
                .collect(),
            Err(e) => {
                let error = format!("cannot read the plugins folder {}: {e}", dir.display());
                tracing::error!("{error}");
                return vec![LoadReport::Failed { path: dir, error }];
            }
        };
        files.sort();
        let mut reports = Vec::new();
        for path in &files {
            let Ok(bytes) = std::fs::read(path) else { continue };
            let sha = loader::sha256_hex(&bytes);
            let unchanged = self
                .read()
                .by_name
                .values()
                .any(|p| &p.path == path && p.label.sha256 == sha);
            if !unchanged {
                reports.push(self.load_file(path).await);
            }
        }
        let gone: Vec<Arc<LoadedPlugin>> = self
            .read()
            .by_name
            .values()
            .filter(|p| !files.contains(&p.path))
            .cloned()
            .collect();
        let mut reg = self.write();
        for p in gone {
            tracing::info!(plugin = %p.label.name, "plugin file removed; no new jobs will use it");
            reg.by_name.remove(&p.label.name);
            reports.push(LoadReport::Removed(p.label.clone()));
        }
        reg.errors.retain(|p, _| files.contains(p));
        reports
    }

    /// Watches the plugins folder and reloads on changes, until the handle is dropped;
    /// `on_reload` is told what each reload that changed something did (the service audits it).
    pub fn watch(&self, on_reload: impl Fn(Vec<LoadReport>) + Send + 'static) -> notify::Result<WatchHandle> {
        use notify::Watcher;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            if let Ok(ev) = ev
                && ev.paths.iter().any(|p| p.extension().is_some_and(|x| x == "wasm"))
            {
                let _ = tx.send(());
            }
        })?;
        watcher.watch(&self.inner.config.plugins_dir, notify::RecursiveMode::NonRecursive)?;
        let weak = Arc::downgrade(&self.inner);
        let task = tokio::spawn(async move {
            while rx.recv().await.is_some() {
                // Let a copy in progress finish, and fold a burst of events into one reload.
                tokio::time::sleep(Duration::from_millis(200)).await;
                while rx.try_recv().is_ok() {}
                let Some(inner) = weak.upgrade() else { break };
                let reports = Runtime { inner }.reload().await;
                if !reports.is_empty() {
                    on_reload(reports);
                }
            }
        });
        Ok(WatchHandle {
            _watcher: watcher,
            task,
        })
    }

    /// Starts a job on the version of `name` served now, with the source's limits and access.
    pub async fn job(&self, name: &str, limits: Limits, access: Arc<SourceAccess>) -> Result<Job, JobError> {
        let plugin = self.plugin(name).ok_or_else(|| JobError {
            plugin: Box::new(PluginLabel {
                name: name.to_string(),
                version: "-".into(),
                sha256: "-".into(),
                file: "-".into(),
            }),
            failure: JobFailure::NotLoaded(name.to_string()),
        })?;
        self.start(plugin, limits, access).await
    }

    /// Starts a job on a specific loaded plugin version.
    pub async fn start(
        &self,
        plugin: Arc<LoadedPlugin>,
        limits: Limits,
        access: Arc<SourceAccess>,
    ) -> Result<Job, JobError> {
        let max = self.inner.config.max_memory_mib;
        let limits = Limits {
            memory_mib: limits.memory_mib.min(max),
            ..limits
        };
        let permit = self.inner.slots.clone().acquire_owned().await.map_err(|_| JobError {
            plugin: Box::new(plugin.label.clone()),
            failure: JobFailure::Start("the runtime is shutting down".into()),
        })?;
        Job::start(plugin, limits, access, permit, &self.inner.engine).await
    }
}

/// Keeps the plugins folder watched while it lives.
pub struct WatchHandle {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn validate_info(info: &types::PluginInfo) -> Result<(), String> {
    let name_ok = !info.name.is_empty()
        && info.name.len() <= 64
        && info
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !name_ok {
        return Err(format!(
            "plugin name {:?} must be 1–64 characters of a-z, 0-9, '-' or '_'",
            info.name
        ));
    }
    semver::Version::parse(&info.version)
        .map_err(|e| format!("plugin version {:?} is not semver: {e}", info.version))?;
    serde_json::from_str::<serde_json::Value>(&info.settings_schema)
        .map_err(|e| format!("settings schema is not JSON: {e}"))?;
    Ok(())
}

// Compile-time proof that the pieces shared across tasks are thread-safe.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Runtime>();
    fn assert_send<T: Send>() {}
    assert_send::<Job>();
};
