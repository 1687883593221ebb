//! What a job's `Store` carries, and the host imports a connector calls.

use std::sync::Arc;

use tokio::time::Instant;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::v0_1::connector::roster::plugin::{host, ldap, types};
use crate::limits::Limits;
use crate::net::{NetError, OutRequest, SourceAccess};

/// Longest log line a plugin may write; the rest is cut.
const MAX_LOG_LINE: usize = 4096;
/// Log lines a job may write before the host stops recording them.
const MAX_LOG_LINES: u32 = 10_000;
/// How much of the plugin's stderr is kept (panic messages land there).
pub(crate) const STDERR_CAPACITY: usize = 16 * 1024;

/// Per-job state inside the `Store`.
pub(crate) struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) store_limits: StoreLimits,
    pub(crate) limits: Limits,
    /// Wall-clock deadline of the current call; the epoch callback traps past it.
    pub(crate) deadline: Instant,
    pub(crate) access: Arc<SourceAccess>,
    /// "name version" for log attribution.
    pub(crate) plugin: Arc<str>,
    pub(crate) stderr: MemoryOutputPipe,
    pub(crate) log_lines: u32,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    async fn http(&mut self, req: host::Request) -> wasmtime::Result<Result<host::Response, types::PluginError>> {
        let out = OutRequest {
            method: req.method,
            url: req.url,
            headers: req.headers,
            body: req.body,
        };
        let result = self.access.send(out, &self.limits, self.deadline, &self.plugin).await;
        Ok(match result {
            Ok(r) => Ok(host::Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
            }),
            Err(NetError::Refused(m)) => Err(types::PluginError::Config(m)),
            Err(NetError::Transient(m)) => Err(types::PluginError::Transient(m)),
        })
    }

    async fn sign_jwt(
        &mut self,
        key_secret: String,
        header_json: String,
        claims_json: String,
    ) -> wasmtime::Result<Result<String, types::PluginError>> {
        let secrets = self.access.secrets();
        Ok(crate::jwt::sign(secrets, &key_secret, &header_json, &claims_json)
            .map_err(|m| types::PluginError::Config(secrets.redact_str(&m))))
    }

    async fn log(&mut self, level: host::Level, message: String) -> wasmtime::Result<()> {
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES {
            if self.log_lines == MAX_LOG_LINES + 1 {
                tracing::warn!(plugin = %self.plugin, source = self.access.source(), "plugin log limit of {MAX_LOG_LINES} lines reached; further lines are dropped");
            }
            return Ok(());
        }
        let mut message = self.access.secrets().redact_str(&message);
        if message.len() > MAX_LOG_LINE {
            let cut = (0..=MAX_LOG_LINE)
                .rev()
                .find(|i| message.is_char_boundary(*i))
                .unwrap_or(0);
            message.truncate(cut);
            message.push('…');
        }
        let (plugin, source) = (&*self.plugin, self.access.source());
        match level {
            host::Level::Trace => tracing::trace!(target: "roster::plugin", plugin, source, "{message}"),
            host::Level::Debug => tracing::debug!(target: "roster::plugin", plugin, source, "{message}"),
            host::Level::Info => tracing::info!(target: "roster::plugin", plugin, source, "{message}"),
            host::Level::Warn => tracing::warn!(target: "roster::plugin", plugin, source, "{message}"),
            host::Level::Error => tracing::error!(target: "roster::plugin", plugin, source, "{message}"),
        }
        Ok(())
    }
}

impl ldap::Host for HostState {
    async fn search(
        &mut self,
        conn: ldap::Connection,
        req: ldap::SearchRequest,
    ) -> wasmtime::Result<Result<ldap::SearchPage, ldap::LdapError>> {
        let page = self
            .access
            .ldap_search(&conn.into(), req.into(), &self.limits, self.deadline)
            .await;
        Ok(page.map(Into::into).map_err(Into::into))
    }
}
