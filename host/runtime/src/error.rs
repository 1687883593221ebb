//! Errors of the plugin runtime. Each names the plugin (name, version, sha) and says in plain
//! words what happened and what to do.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Which plugin: printed as `'entra' 1.2.0 (sha256 3f2a…, entra.wasm)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginLabel {
    /// The plugin's name from `describe`.
    pub name: String,
    /// The plugin's version from `describe`.
    pub version: String,
    /// sha256 of the `.wasm` file, hex.
    pub sha256: String,
    /// The file it was loaded from.
    pub file: String,
}

impl fmt::Display for PluginLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "plugin '{}' {} (sha256 {}, {})",
            self.name,
            self.version,
            &self.sha256[..12.min(self.sha256.len())],
            self.file
        )
    }
}

/// Why a `.wasm` file was not loaded. The previous version of the plugin, if any, keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not a WebAssembly component (a core module, or not wasm at all).
    #[error("{path}: not a WebAssembly component: {detail}. Build plugins with `cargo build --target wasm32-wasip2`")]
    NotAComponent {
        /// The file.
        path: PathBuf,
        /// wasmtime's words.
        detail: String,
    },
    /// Built against a `roster:plugin` version this host does not serve.
    #[error("{path}: built for roster:plugin@{found}, but this Roster serves roster:plugin@{supported}; {advice}")]
    IncompatibleVersion {
        /// The file.
        path: PathBuf,
        /// The version in the component.
        found: String,
        /// The version this host implements.
        supported: String,
        /// What to do.
        advice: &'static str,
    },
    /// Exports neither world's interface.
    #[error(
        "{path}: exports neither roster:plugin/connector nor roster:plugin/transform (it exports: {exports}); it is not a Roster plugin"
    )]
    UnknownWorld {
        /// The file.
        path: PathBuf,
        /// What it exports.
        exports: String,
    },
    /// Imports something the host does not provide to that kind of plugin.
    #[error("{path}: a {world} may not import {imports}; {advice}")]
    UnexpectedImports {
        /// The file.
        path: PathBuf,
        /// connector or transform.
        world: &'static str,
        /// The offending imports.
        imports: String,
        /// What is allowed.
        advice: &'static str,
    },
    /// Compilation or linking failed.
    #[error("{path}: cannot be prepared: {detail}")]
    Prepare {
        /// The file.
        path: PathBuf,
        /// wasmtime's words.
        detail: String,
    },
    /// `describe` failed or returned something unusable.
    #[error("{path}: describe() failed: {detail}")]
    Describe {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// Another file already provides a plugin of that name.
    #[error("{path}: plugin name '{name}' is already provided by {other}; remove one of the two files")]
    DuplicateName {
        /// The file.
        path: PathBuf,
        /// The name both claim.
        name: String,
        /// The file that has it.
        other: String,
    },
}

/// The error a plugin returned as a value (the WIT `plugin-error` variant).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuestFailure {
    /// The source's settings are wrong.
    #[error("configuration error: {0}")]
    Config(String),
    /// Credentials refused or a permission missing.
    #[error("authentication error: {0}")]
    Auth(String),
    /// Worth retrying later.
    #[error("transient error: {0}")]
    Transient(String),
    /// The incremental token is no longer valid; a full fetch is needed.
    #[error("expired delta token: {0}")]
    ExpiredDelta(String),
    /// Anything else.
    #[error("fatal error: {0}")]
    Fatal(String),
}

/// What went wrong in a job.
#[derive(Debug, thiserror::Error)]
pub enum JobFailure {
    /// The plugin returned an error value.
    #[error("{0}")]
    Guest(GuestFailure),
    /// The call ran past its wall-clock deadline and was stopped.
    #[error("ran past its deadline of {0:?} and was stopped (raise `call_timeout_secs` if the source is just slow)")]
    Deadline(Duration),
    /// The plugin tried to grow its memory past the cap.
    #[error(
        "tried to use more than its memory cap of {0} MiB and was stopped (raise `memory_mib` if the data really needs it)"
    )]
    Memory(u32),
    /// The plugin panicked or aborted.
    #[error("panicked: {0}")]
    Panic(String),
    /// Any other trap.
    #[error("crashed ({kind}){detail}")]
    Trap {
        /// The trap in plain words.
        kind: String,
        /// The plugin's stderr, if it wrote any.
        detail: String,
    },
    /// The result was larger than `max_output_bytes`.
    #[error(
        "returned {size} bytes, more than the output cap of {cap} bytes (raise `max_output_bytes` or return smaller pages)"
    )]
    OutputTooLarge {
        /// What it returned.
        size: usize,
        /// The cap.
        cap: usize,
    },
    /// The plugin answered something the contract forbids (e.g. fewer outcomes than inputs).
    #[error("broke the plugin contract: {0}")]
    Contract(String),
    /// The job could not start.
    #[error("could not start: {0}")]
    Start(String),
    /// No plugin of that name is loaded.
    #[error("no plugin named '{0}' is loaded; see `roster plugins list`")]
    NotLoaded(String),
    /// The plugin is of the other world.
    #[error("is a {actual}, not a {wanted}")]
    WrongWorld {
        /// What it is.
        actual: &'static str,
        /// What was asked for.
        wanted: &'static str,
    },
}

/// A job's failure, attributed to the plugin.
#[derive(Debug, thiserror::Error)]
#[error("{plugin}: {failure}")]
pub struct JobError {
    /// Which plugin (boxed: errors travel far, labels are big).
    pub plugin: Box<PluginLabel>,
    /// What went wrong.
    pub failure: JobFailure,
}

impl JobError {
    /// The guest's own error, if the plugin returned one.
    pub fn guest(&self) -> Option<&GuestFailure> {
        match &self.failure {
            JobFailure::Guest(g) => Some(g),
            _ => None,
        }
    }
}
