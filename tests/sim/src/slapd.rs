//! A throwaway OpenLDAP server for tests and benchmarks: Debian's `slapd` run in the
//! foreground on 127.0.0.1 with its own configuration, certificates and `back-mdb` database in
//! a temporary folder, changed only through the OpenLDAP command-line tools, as an
//! administrator changes a directory. No system service or file outside that folder is touched;
//! dropping the [`Slapd`] kills the server and removes the folder.
//!
//! What the server is:
//! - Suffix [`BASE_DN`] with `ou=people` (`inetOrgPerson` users, RDN `uid`) and `ou=groups`
//!   (`groupOfNames` by default; `groupOfUniqueNames` and `posixGroup` per group via
//!   [`Layout`]). The schemas are core, cosine, inetorgperson and nis (RFC 2307).
//! - The root DN [`ROOT_DN`] writes; the reader [`READER_DN`] (an entry with a password) reads
//!   everything but passwords, with a size limit that is unlimited by default or a number of
//!   entries ([`SizeLimit`]), changed live through `cn=config`. The reader is what Roster binds
//!   as: the root DN is exempt from limits, so a test through it would prove nothing.
//! - `ldap://` (StartTLS offered) and `ldaps://` listeners on free ports, with a server
//!   certificate for `127.0.0.1` and `localhost` issued by a CA made for this server
//!   ([`Slapd::ca_pem`]).
//! - The `refint` overlay keeps `member` and `uniqueMember` DNs right when a user or group is
//!   renamed or deleted, as directories that rename people run it. `memberUid` (posixGroup)
//!   holds uids, not DNs, and is left as it is, as in a real directory.
//!
//! How the sample [`Directory`] becomes LDAP: each active user is an entry
//! `uid=<username>,ou=people,…` with `cn` and `displayName` (the display name), `sn` (its last
//! word), `mail` and `employeeNumber` (the sample directory's id, so tests can map entries back;
//! Roster's id is the server's `entryUUID`). Inactive users are left out with their
//! memberships: OpenLDAP has no standard "disabled" flag for a connector to read. Each group is
//! `cn=<name>,ou=groups,…`; a subgroup is a member by its DN. `groupOfNames` and
//! `groupOfUniqueNames` must have a member, so an empty one holds the base DN as a placeholder
//! (the usual OpenLDAP practice; it is neither a user nor a group, and connectors ignore it).
//! `posixGroup`s get `gidNumber` 10000 + their index and cannot hold groups.

mod ldif;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use ldif::Entry;

use crate::directory::{DirUser, Directory};

/// The directory's suffix.
pub const BASE_DN: &str = "dc=example,dc=org";
/// The people container.
pub const PEOPLE_DN: &str = "ou=people,dc=example,dc=org";
/// The groups container.
pub const GROUPS_DN: &str = "ou=groups,dc=example,dc=org";
/// The root DN (no limits, writes everything).
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
/// The root DN's password.
pub const ROOT_PASSWORD: &str = "root-password-6d0e2c";
/// The DN Roster binds as: reads everything but passwords, limited by [`SizeLimit`].
pub const READER_DN: &str = "cn=reader,dc=example,dc=org";
/// The reader's password.
pub const READER_PASSWORD: &str = "reader-password-3a9f41";
/// The configuration database's administrator (live changes of limits).
const CONFIG_DN: &str = "cn=config";
const CONFIG_PASSWORD: &str = "config-password-81c7b5";
/// The `back-mdb` map size: far above what 10,000 users and 200,000 memberships take (about
/// 100 MiB); the file grows only as it is used.
const MAP_SIZE_BYTES: u64 = 4 << 30;
/// How long slapd may take to answer after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What installs the server and tools on Debian, without configuring a system directory.
pub const INSTALL_COMMAND: &str = "echo \"slapd slapd/no_configuration boolean true\" | debconf-set-selections && DEBIAN_FRONTEND=noninteractive apt-get install -y slapd ldap-utils openssl";

/// What went wrong running the server or its tools.
#[derive(Debug, thiserror::Error)]
pub enum SlapdError {
    /// A program is not installed and this process cannot install it.
    #[error("{programs} not found; install them as root with: {command}")]
    Missing {
        /// The programs missing.
        programs: String,
        /// The command that installs them.
        command: &'static str,
    },
    /// Installing the packages failed.
    #[error("installing slapd and ldap-utils failed ({status}): {stderr}; run as root: {command}")]
    Install {
        /// apt-get's exit status.
        status: String,
        /// What it said.
        stderr: String,
        /// The command that installs them.
        command: &'static str,
    },
    /// A program could not be run.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// A tool answered with an error.
    #[error("`{command}` failed with exit code {code}: {stderr}")]
    Tool {
        /// The command line (passwords left out).
        command: String,
        /// Its exit code (-1 when killed by a signal).
        code: i32,
        /// What it said.
        stderr: String,
    },
    /// slapd exited or did not answer in time.
    #[error("slapd did not start: {0}")]
    Start(String),
    /// The sample directory cannot be written as asked.
    #[error("{0}")]
    Layout(String),
    /// A file in the server's folder could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// How many entries one search by the reader may return in total, paged or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeLimit {
    /// No limit (`size.prtotal=unlimited`): what an administrator sets for a sync account.
    Unlimited,
    /// At most this many (`size.soft`/`size.hard`; a paged search stops with result code 4,
    /// "size limit exceeded", as OpenLDAP's default of 500 does).
    Entries(u32),
}

impl SizeLimit {
    /// The `limits` clause for the reader.
    fn clause(self) -> String {
        match self {
            SizeLimit::Unlimited => {
                format!("dn.exact=\"{READER_DN}\" size.soft=unlimited size.hard=unlimited size.prtotal=unlimited")
            }
            SizeLimit::Entries(n) => format!("dn.exact=\"{READER_DN}\" size.soft={n} size.hard={n}"),
        }
    }
}

/// The object class a group is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupClass {
    /// `groupOfNames`, members as DNs in `member`.
    #[default]
    GroupOfNames,
    /// `groupOfUniqueNames`, members as DNs in `uniqueMember`.
    GroupOfUniqueNames,
    /// `posixGroup` (RFC 2307), members as uids in `memberUid`; holds no groups.
    PosixGroup,
}

impl GroupClass {
    fn object_class(self) -> &'static str {
        match self {
            GroupClass::GroupOfNames => "groupOfNames",
            GroupClass::GroupOfUniqueNames => "groupOfUniqueNames",
            GroupClass::PosixGroup => "posixGroup",
        }
    }

    /// The attribute that holds members.
    pub fn member_attribute(self) -> &'static str {
        match self {
            GroupClass::GroupOfNames => "member",
            GroupClass::GroupOfUniqueNames => "uniqueMember",
            GroupClass::PosixGroup => "memberUid",
        }
    }

    /// Whether the schema makes a member mandatory (then an empty group holds the placeholder).
    fn needs_a_member(self) -> bool {
        !matches!(self, GroupClass::PosixGroup)
    }
}

/// Which object class each group of a [`Directory`] is written with; `groupOfNames` unless
/// said otherwise.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    classes: BTreeMap<String, GroupClass>,
}

impl Layout {
    /// Group `group_id` (an id of the directory) is written as `class`.
    pub fn with(mut self, group_id: &str, class: GroupClass) -> Layout {
        self.classes.insert(group_id.to_string(), class);
        self
    }

    fn class_of(&self, group_id: &str) -> GroupClass {
        self.classes.get(group_id).copied().unwrap_or_default()
    }
}

/// The OpenLDAP programs the harness runs.
#[derive(Debug, Clone)]
struct Tools {
    slapd: PathBuf,
    slapadd: PathBuf,
    ldapadd: PathBuf,
    ldapmodify: PathBuf,
    ldapdelete: PathBuf,
    ldapmodrdn: PathBuf,
    ldapsearch: PathBuf,
    openssl: PathBuf,
}

/// Finds `name` on `PATH` or in the system folders (`/usr/sbin` is not on a user's `PATH`).
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Tools {
    fn lookup() -> Result<Tools, Vec<&'static str>> {
        let names = [
            "slapd",
            "slapadd",
            "ldapadd",
            "ldapmodify",
            "ldapdelete",
            "ldapmodrdn",
            "ldapsearch",
            "openssl",
        ];
        let found: Vec<Option<PathBuf>> = names.iter().map(|n| which(n)).collect();
        let missing: Vec<&'static str> = names
            .iter()
            .zip(&found)
            .filter(|(_, p)| p.is_none())
            .map(|(n, _)| *n)
            .collect();
        if !missing.is_empty() {
            return Err(missing);
        }
        let mut it = found.into_iter().flatten();
        let mut next = || it.next().unwrap_or_default();
        Ok(Tools {
            slapd: next(),
            slapadd: next(),
            ldapadd: next(),
            ldapmodify: next(),
            ldapdelete: next(),
            ldapmodrdn: next(),
            ldapsearch: next(),
            openssl: next(),
        })
    }

    /// The installed tools; installs Debian's packages first when they are missing and this
    /// process is root (a CI container), otherwise says the command to run.
    fn get() -> Result<Tools, SlapdError> {
        // Once per process: parallel tests must not run apt-get side by side.
        static TOOLS: OnceLock<Mutex<Option<Tools>>> = OnceLock::new();
        let mut slot = TOOLS
            .get_or_init(|| Mutex::new(None))
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(t) = slot.as_ref() {
            return Ok(t.clone());
        }
        let tools = match Tools::lookup() {
            Ok(t) => t,
            Err(_) if running_as_root() => {
                install()?;
                Tools::lookup().map_err(|still| SlapdError::Missing {
                    programs: still.join(", "),
                    command: INSTALL_COMMAND,
                })?
            }
            Err(missing) => {
                return Err(SlapdError::Missing {
                    programs: missing.join(", "),
                    command: INSTALL_COMMAND,
                });
            }
        };
        *slot = Some(tools.clone());
        Ok(tools)
    }
}

/// Installs slapd and ldap-utils without configuring a directory, refreshing the package lists
/// once if they are stale (fresh containers have none).
fn install() -> Result<(), SlapdError> {
    let run = |script: &str| {
        Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::null())
            .output()
            .map_err(|source| SlapdError::Spawn {
                program: "sh".into(),
                source,
            })
    };
    let first = run(INSTALL_COMMAND)?;
    if first.status.success() {
        return Ok(());
    }
    let again = run(&format!("apt-get update && {INSTALL_COMMAND}"))?;
    if again.status.success() {
        return Ok(());
    }
    Err(SlapdError::Install {
        status: again.status.to_string(),
        stderr: String::from_utf8_lossy(&again.stderr).trim().to_string(),
        command: INSTALL_COMMAND,
    })
}

/// A port nobody listens on now, for slapd to take (retried if someone takes it first).
fn free_port() -> Result<u16, SlapdError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| SlapdError::Io {
            path: "127.0.0.1:0".into(),
            source,
        })
}

/// The output of a search: the tool's exit code is the LDAP result code (0 success,
/// 4 size limit exceeded, 32 no such object, 49 invalid credentials, …).
#[derive(Debug, Clone)]
pub struct Found {
    /// The result code.
    pub code: i32,
    /// The entries returned before the result.
    pub entries: Vec<Entry>,
    /// What the tool said on stderr.
    pub stderr: String,
}

/// Who a search binds as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind {
    /// [`READER_DN`], under its size limit: what Roster sees.
    Reader,
    /// [`ROOT_DN`], without limits: what is really there.
    Root,
}

/// A running slapd; killed and its folder removed when dropped.
pub struct Slapd {
    child: Child,
    tools: Tools,
    ldap_port: u16,
    ldaps_port: u16,
    ca_pem: String,
    /// Class of each group by name (lower case), for membership edits.
    classes: Mutex<BTreeMap<String, GroupClass>>,
    /// Names LDIF files written for the tools.
    files: AtomicU64,
    /// Dropped after the process is killed, so slapd never writes to a removed folder.
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for Slapd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slapd")
            .field("ldap", &self.ldap_url())
            .field("ldaps", &self.ldaps_url())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        // back-mdb survives a kill; the database is thrown away anyway.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Slapd {
    /// Starts an empty server (the suffix, `ou=people`, `ou=groups` and the reader only), the
    /// reader limited as `limit` says.
    pub fn start(limit: SizeLimit) -> Result<Slapd, SlapdError> {
        Slapd::prepare(limit)?.run_with_retries()
    }

    /// Starts a server that already holds `d` (laid out as `layout`), loaded offline with
    /// `slapadd` before slapd starts: for benchmark-sized directories, which `ldapadd` takes
    /// minutes over. Each entry is stamped as created and last modified a day ago, as in a
    /// directory in use (a bulk load would give all of them the same second, the second an
    /// incremental read continues from).
    pub fn start_loaded(limit: SizeLimit, d: &Directory, layout: &Layout) -> Result<Slapd, SlapdError> {
        let s = Slapd::prepare(limit)?;
        let (text, classes) = directory_ldif(d, layout)?;
        let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
            .format("%Y%m%d%H%M%SZ")
            .to_string();
        let stamp = format!("createTimestamp: {yesterday}\nmodifyTimestamp: {yesterday}\n");
        let text: String = text
            .split_inclusive("\n\n")
            .map(|entry| match entry.strip_suffix('\n') {
                Some(body) if entry.ends_with("\n\n") => format!("{body}{stamp}\n"),
                _ => entry.to_string(),
            })
            .collect();
        let file = s.dir.path().join("bulk.ldif");
        std::fs::write(&file, format!("{}{text}", base_ldif())).map_err(|source| SlapdError::Io {
            path: file.clone(),
            source,
        })?;
        let conf = s.dir.path().join("slapd.conf");
        let mut cmd = Command::new(&s.tools.slapadd);
        // -q: no consistency checks for a file this harness wrote; -w: set contextCSN.
        cmd.arg("-q").arg("-w").arg("-f").arg(&conf).arg("-l").arg(&file);
        checked(cmd, "slapadd")?;
        let _ = std::fs::remove_file(&file);
        let s = s.run_with_retries()?;
        *s.classes.lock().unwrap_or_else(|e| e.into_inner()) = classes;
        Ok(s)
    }

    /// The folder, certificates and configuration; no process yet.
    fn prepare(limit: SizeLimit) -> Result<PreparedSlapd, SlapdError> {
        let tools = Tools::get()?;
        let dir = tempfile::Builder::new()
            .prefix("roster-slapd-")
            .tempdir()
            .map_err(|source| SlapdError::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data).map_err(|source| SlapdError::Io { path: data, source })?;
        let ca_pem = make_certificates(&tools, dir.path())?;
        write_config(dir.path(), limit)?;
        Ok(PreparedSlapd { tools, dir, ca_pem })
    }

    /// `ldap://127.0.0.1:PORT` (StartTLS offered).
    pub fn ldap_url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.ldap_port)
    }

    /// `ldaps://127.0.0.1:PORT`.
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps_port)
    }

    /// The port of the `ldap://` listener.
    pub fn ldap_port(&self) -> u16 {
        self.ldap_port
    }

    /// The port of the `ldaps://` listener.
    pub fn ldaps_port(&self) -> u16 {
        self.ldaps_port
    }

    /// The PEM of the CA that issued the server's certificate (trust it to talk TLS).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The server's folder (configuration, certificates, database, `slapd.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The DN of the user with uid `uid`.
    pub fn user_dn(uid: &str) -> String {
        format!("uid={},{PEOPLE_DN}", ldif::escape_rdn(uid))
    }

    /// The DN of the group named `name`.
    pub fn group_dn(name: &str) -> String {
        format!("cn={},{GROUPS_DN}", ldif::escape_rdn(name))
    }

    /// Loads `d` (groups as `groupOfNames`) with `ldapadd`, as the root DN.
    pub fn load(&self, d: &Directory) -> Result<(), SlapdError> {
        self.load_with(d, &Layout::default())
    }

    /// Loads `d` with `ldapadd`, each group with the class `layout` gives it.
    pub fn load_with(&self, d: &Directory, layout: &Layout) -> Result<(), SlapdError> {
        let (text, classes) = directory_ldif(d, layout)?;
        self.as_root(&self.tools.ldapadd, "ldapadd", &[], &text)?;
        self.classes.lock().unwrap_or_else(|e| e.into_inner()).extend(classes);
        Ok(())
    }

    /// Runs `ldapsearch` with `args` (base, scope, filter, attributes, `-E pr=…`) over
    /// StartTLS with the server's CA, bound as `bind`; the result code is in [`Found::code`].
    pub fn search(&self, bind: Bind, args: &[&str]) -> Result<Found, SlapdError> {
        let (dn, password) = match bind {
            Bind::Reader => (READER_DN, READER_PASSWORD),
            Bind::Root => (ROOT_DN, ROOT_PASSWORD),
        };
        let mut cmd = self.tool(&self.tools.ldapsearch);
        cmd.args(["-x", "-ZZ", "-LLL", "-o", "ldif-wrap=no", "-H"])
            .arg(self.ldap_url())
            .args(["-D", dn, "-w", password])
            .args(args);
        let out = output(cmd, "ldapsearch")?;
        Ok(Found {
            code: out.status.code().unwrap_or(-1),
            entries: ldif::parse(&String::from_utf8_lossy(&out.stdout)),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }

    /// The entries under the suffix matching `filter`, read as the root DN with `attrs`
    /// (operational ones such as `entryUUID` must be named, or `+`).
    pub fn entries(&self, filter: &str, attrs: &[&str]) -> Result<Vec<Entry>, SlapdError> {
        let mut args = vec!["-b", BASE_DN, filter];
        args.extend_from_slice(attrs);
        let found = self.search(Bind::Root, &args)?;
        match found.code {
            0 => Ok(found.entries),
            code => Err(SlapdError::Tool {
                command: format!("ldapsearch -b {BASE_DN} {filter}"),
                code,
                stderr: found.stderr,
            }),
        }
    }

    /// How many entries under the suffix match `filter`.
    pub fn count(&self, filter: &str) -> Result<usize, SlapdError> {
        Ok(self.entries(filter, &["1.1"])?.len())
    }

    /// The `entryUUID` of the entry at `dn`.
    pub fn entry_uuid(&self, dn: &str) -> Result<String, SlapdError> {
        let found = self.search(Bind::Root, &["-b", dn, "-s", "base", "(objectClass=*)", "entryUUID"])?;
        found
            .entries
            .first()
            .and_then(|e| e.first("entryUUID"))
            .map(str::to_string)
            .ok_or(SlapdError::Tool {
                command: format!("ldapsearch -b {dn} -s base entryUUID"),
                code: found.code,
                stderr: format!("no entryUUID: {}", found.stderr),
            })
    }

    /// Changes the reader's size limit now, through `cn=config` (open connections keep
    /// working; searches started afterwards get the new limit).
    pub fn set_reader_size_limit(&self, limit: SizeLimit) -> Result<(), SlapdError> {
        let mut text = String::from("dn: olcDatabase={1}mdb,cn=config\nchangetype: modify\nreplace: olcLimits\n");
        ldif::line(&mut text, "olcLimits", &limit.clause());
        self.run_ldif(
            &self.tools.ldapmodify,
            "ldapmodify",
            (CONFIG_DN, CONFIG_PASSWORD),
            &[],
            &text,
        )
        .map(drop)
    }

    /// Renames user `old` to `new` with a modrdn (the old `uid` value removed); the entry keeps
    /// its `entryUUID`, and `refint` rewrites the DN in every group that holds it.
    pub fn rename_user(&self, old: &str, new: &str) -> Result<(), SlapdError> {
        let (dn, rdn) = (Slapd::user_dn(old), format!("uid={}", ldif::escape_rdn(new)));
        let mut cmd = self.tool(&self.tools.ldapmodrdn);
        cmd.args(["-x", "-r", "-H"])
            .arg(self.ldap_url())
            .args(["-D", ROOT_DN, "-w", ROOT_PASSWORD, &dn, &rdn]);
        checked(cmd, &format!("ldapmodrdn -r {dn} {rdn}")).map(drop)
    }

    /// Replaces attribute `attr` of the entry at `dn` with `values` (none removes it).
    pub fn set_attribute(&self, dn: &str, attr: &str, values: &[&str]) -> Result<(), SlapdError> {
        let mut text = format!("dn: {dn}\nchangetype: modify\nreplace: {attr}\n");
        for v in values {
            ldif::line(&mut text, attr, v);
        }
        self.modify(&text)
    }

    /// Sets user `uid`'s `displayName`.
    pub fn set_display_name(&self, uid: &str, name: &str) -> Result<(), SlapdError> {
        self.set_attribute(&Slapd::user_dn(uid), "displayName", &[name])
    }

    /// Sets user `uid`'s `mail`.
    pub fn set_email(&self, uid: &str, email: &str) -> Result<(), SlapdError> {
        self.set_attribute(&Slapd::user_dn(uid), "mail", &[email])
    }

    /// Adds user `u` (active or not: the entry is the same) to `ou=people`.
    pub fn add_user(&self, u: &DirUser) -> Result<(), SlapdError> {
        self.as_root(&self.tools.ldapadd, "ldapadd", &[], &user_ldif(u))
            .map(drop)
    }

    /// Deletes user `uid`; `refint` takes it out of `member`/`uniqueMember` everywhere.
    pub fn delete_user(&self, uid: &str) -> Result<(), SlapdError> {
        self.delete(&Slapd::user_dn(uid))
    }

    /// Adds an empty group `name` of class `class`.
    pub fn add_group(&self, name: &str, class: GroupClass) -> Result<(), SlapdError> {
        let gid = 20000 + self.classes.lock().unwrap_or_else(|e| e.into_inner()).len();
        let text = group_ldif(name, class, gid, &[]);
        self.as_root(&self.tools.ldapadd, "ldapadd", &[], &text)?;
        self.classes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_lowercase(), class);
        Ok(())
    }

    /// Deletes group `name`; `refint` takes it out of the groups that held it.
    pub fn delete_group(&self, name: &str) -> Result<(), SlapdError> {
        self.delete(&Slapd::group_dn(name))?;
        self.classes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&name.to_lowercase());
        Ok(())
    }

    /// Makes user `uid` a direct member of group `group`.
    pub fn add_user_to_group(&self, group: &str, uid: &str) -> Result<(), SlapdError> {
        let class = self.class_of(group)?;
        let value = match class {
            GroupClass::PosixGroup => uid.to_string(),
            _ => Slapd::user_dn(uid),
        };
        self.change_members(group, class, Change::Add, &value)
    }

    /// Ends user `uid`'s direct membership of group `group`.
    pub fn remove_user_from_group(&self, group: &str, uid: &str) -> Result<(), SlapdError> {
        let class = self.class_of(group)?;
        let value = match class {
            GroupClass::PosixGroup => uid.to_string(),
            _ => Slapd::user_dn(uid),
        };
        self.change_members(group, class, Change::Remove, &value)
    }

    /// Makes group `child` a member of group `parent` (not a `posixGroup`).
    pub fn add_group_to_group(&self, parent: &str, child: &str) -> Result<(), SlapdError> {
        let class = self.class_of(parent)?;
        if class == GroupClass::PosixGroup {
            return Err(SlapdError::Layout(format!(
                "group {parent} is a posixGroup, whose memberUid holds uids: it cannot hold group {child}"
            )));
        }
        self.change_members(parent, class, Change::Add, &Slapd::group_dn(child))
    }

    /// Takes group `child` out of group `parent`.
    pub fn remove_group_from_group(&self, parent: &str, child: &str) -> Result<(), SlapdError> {
        let class = self.class_of(parent)?;
        self.change_members(parent, class, Change::Remove, &Slapd::group_dn(child))
    }

    /// A working day, made in this server and in `day` (the directory loaded here, head groups
    /// as `groupOfNames`): `changes` changes, in turn a display name, an email, a user joining
    /// a head group (one nothing contains, so one Bitbucket group changes) and a direct-only
    /// member leaving one, each on a different user, all in one `ldapmodify` (`day` is left as
    /// it was if that fails). Returns the Bitbucket writes they take: one each.
    pub fn working_day(&self, day: &mut Directory, changes: usize) -> Result<u64, SlapdError> {
        // Changed on a copy, kept only once the server took the changes.
        let mut next = day.clone();
        let d = &mut next;
        let expected = d.expected_members();
        let heads = d.head_groups();
        let name_of: BTreeMap<String, String> = d.groups.iter().map(|g| (g.id.clone(), g.name.clone())).collect();
        let username_of: BTreeMap<String, String> = d
            .users
            .iter()
            .filter(|u| u.active)
            .map(|u| (u.id.clone(), u.username.clone()))
            .collect();
        // Direct member values per group (users and subgroups), to keep the placeholder right.
        let mut direct_count: BTreeMap<String, usize> = BTreeMap::new();
        let mut subgroups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for m in &d.memberships {
            if m.member_is_group || username_of.contains_key(&m.member) {
                *direct_count.entry(m.group.clone()).or_default() += 1;
            }
            if m.member_is_group {
                subgroups.entry(m.group.clone()).or_default().push(m.member.clone());
            }
        }
        let mut touched: BTreeSet<String> = BTreeSet::new();
        let mut fresh_user = d
            .users
            .iter()
            .filter(|u| u.active)
            .map(|u| u.id.clone())
            .collect::<Vec<_>>()
            .into_iter();
        let mut text = String::new();
        let too_small = |what: &str| {
            SlapdError::Layout(format!(
                "the directory is too small for {changes} changes: no {what} left; generate more users or groups"
            ))
        };
        for i in 0..changes {
            match i % 4 {
                0 | 1 => {
                    let id = fresh_user
                        .by_ref()
                        .find(|id| !touched.contains(id))
                        .ok_or_else(|| too_small("user"))?;
                    touched.insert(id.clone());
                    let u = d
                        .users
                        .iter_mut()
                        .find(|u| u.id == id)
                        .ok_or_else(|| too_small("user"))?;
                    let (attr, value) = if i % 4 == 0 {
                        u.display_name = format!("{} (day {i})", u.display_name);
                        ("displayName", u.display_name.clone())
                    } else {
                        u.email = format!("{}.day{i}@example.com", u.username);
                        ("mail", u.email.clone())
                    };
                    text.push_str(&format!(
                        "dn: {}\nchangetype: modify\nreplace: {attr}\n",
                        Slapd::user_dn(&u.username)
                    ));
                    ldif::line(&mut text, attr, &value);
                    text.push('\n');
                }
                2 => {
                    let h = heads
                        .get((i / 4) % heads.len().max(1))
                        .ok_or_else(|| too_small("group"))?;
                    let members = &expected[&name_of[h]];
                    let newcomer = username_of
                        .iter()
                        .find(|(id, name)| !touched.contains(*id) && !members.contains(&name.to_lowercase()))
                        .map(|(id, _)| id.clone())
                        .ok_or_else(|| too_small("user outside a head group"))?;
                    touched.insert(newcomer.clone());
                    let count = direct_count.entry(h.clone()).or_default();
                    text.push_str(&format!("dn: {}\nchangetype: modify\n", Slapd::group_dn(&name_of[h])));
                    text.push_str(&format!(
                        "add: member\nmember: {}\n-\n",
                        Slapd::user_dn(&username_of[&newcomer])
                    ));
                    if *count == 0 {
                        text.push_str(&format!("delete: member\nmember: {BASE_DN}\n-\n"));
                    }
                    text.push('\n');
                    *count += 1;
                    d.memberships.push(crate::directory::DirMembership {
                        group: h.clone(),
                        member: newcomer,
                        member_is_group: false,
                    });
                }
                _ => {
                    let h = heads
                        .get((i / 4) % heads.len().max(1))
                        .ok_or_else(|| too_small("group"))?;
                    let through_subgroups: BTreeSet<&String> = subgroups
                        .get(h)
                        .into_iter()
                        .flatten()
                        .flat_map(|s| expected[&name_of[s]].iter())
                        .collect();
                    let leaver = d
                        .memberships
                        .iter()
                        .filter(|m| &m.group == h && !m.member_is_group && !touched.contains(&m.member))
                        .filter_map(|m| username_of.get(&m.member).map(|n| (m.member.clone(), n)))
                        .find(|(_, n)| !through_subgroups.contains(&n.to_lowercase()))
                        .map(|(id, _)| id)
                        .ok_or_else(|| too_small("direct-only member of a head group"))?;
                    touched.insert(leaver.clone());
                    let count = direct_count.entry(h.clone()).or_default();
                    text.push_str(&format!("dn: {}\nchangetype: modify\n", Slapd::group_dn(&name_of[h])));
                    if *count == 1 {
                        text.push_str(&format!("add: member\nmember: {BASE_DN}\n-\n"));
                    }
                    text.push_str(&format!(
                        "delete: member\nmember: {}\n-\n\n",
                        Slapd::user_dn(&username_of[&leaver])
                    ));
                    *count -= 1;
                    d.memberships.retain(|m| !(&m.group == h && m.member == leaver));
                }
            }
        }
        if !text.is_empty() {
            self.modify(&text)?;
        }
        *day = next;
        Ok(changes as u64)
    }

    fn class_of(&self, group: &str) -> Result<GroupClass, SlapdError> {
        self.classes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&group.to_lowercase())
            .copied()
            .ok_or_else(|| SlapdError::Layout(format!("no group {group} was loaded or added through this harness")))
    }

    /// Adds or removes one member value, keeping the placeholder as the schema needs: the
    /// placeholder goes when a first member arrives and comes back when the last one leaves,
    /// in the same modify operation (the schema is checked once, at its end).
    fn change_members(&self, group: &str, class: GroupClass, change: Change, value: &str) -> Result<(), SlapdError> {
        let attr = class.member_attribute();
        let dn = Slapd::group_dn(group);
        let current = self.search(Bind::Root, &["-b", &dn, "-s", "base", "(objectClass=*)", attr])?;
        let values: Vec<String> = current
            .entries
            .first()
            .map(|e| e.values(attr).to_vec())
            .unwrap_or_default();
        let is_placeholder = |v: &String| v.eq_ignore_ascii_case(BASE_DN);
        let mut text = format!("dn: {dn}\nchangetype: modify\n");
        match change {
            Change::Add => {
                text.push_str(&format!("add: {attr}\n"));
                ldif::line(&mut text, attr, value);
                text.push_str("-\n");
                if class.needs_a_member() && values.iter().any(is_placeholder) {
                    text.push_str(&format!("delete: {attr}\n{attr}: {BASE_DN}\n-\n"));
                }
            }
            Change::Remove => {
                if class.needs_a_member() && values.iter().filter(|v| !is_placeholder(v)).count() == 1 {
                    text.push_str(&format!("add: {attr}\n{attr}: {BASE_DN}\n-\n"));
                }
                text.push_str(&format!("delete: {attr}\n"));
                ldif::line(&mut text, attr, value);
                text.push_str("-\n");
            }
        }
        self.modify(&text)
    }

    fn modify(&self, text: &str) -> Result<(), SlapdError> {
        self.as_root(&self.tools.ldapmodify, "ldapmodify", &[], text).map(drop)
    }

    fn delete(&self, dn: &str) -> Result<(), SlapdError> {
        let mut cmd = self.tool(&self.tools.ldapdelete);
        cmd.args(["-x", "-H"])
            .arg(self.ldap_url())
            .args(["-D", ROOT_DN, "-w", ROOT_PASSWORD, dn]);
        checked(cmd, &format!("ldapdelete {dn}")).map(drop)
    }

    /// Runs an LDIF-reading tool as the root DN.
    fn as_root(&self, program: &Path, name: &str, args: &[&str], text: &str) -> Result<Output, SlapdError> {
        self.run_ldif(program, name, (ROOT_DN, ROOT_PASSWORD), args, text)
    }

    /// Runs `program -f <file holding text>` bound as `who`. A file, not stdin: the tools print
    /// a line per entry, and a pipe in both directions would need a second thread.
    fn run_ldif(
        &self,
        program: &Path,
        name: &str,
        who: (&str, &str),
        args: &[&str],
        text: &str,
    ) -> Result<Output, SlapdError> {
        let n = self.files.fetch_add(1, Ordering::Relaxed);
        let file = self.dir.path().join(format!("change-{n}.ldif"));
        std::fs::write(&file, text).map_err(|source| SlapdError::Io {
            path: file.clone(),
            source,
        })?;
        let mut cmd = self.tool(program);
        cmd.args(["-x", "-H"])
            .arg(self.ldap_url())
            .args(["-D", who.0, "-w", who.1])
            .args(args)
            .arg("-f")
            .arg(&file);
        let out = checked(cmd, &format!("{name} -f {}", file.display()));
        let _ = std::fs::remove_file(&file);
        out
    }

    /// A command for an OpenLDAP client tool that trusts this server's CA and no other
    /// configuration's defaults that matter here (`-H`, `-D`, `-b` are always given).
    fn tool(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("LDAPTLS_CACERT", self.dir.path().join("ca.pem"))
            .env("LDAPTLS_REQCERT", "demand")
            .stdin(Stdio::null());
        cmd
    }
}

/// A server whose folder is ready, not yet running.
struct PreparedSlapd {
    tools: Tools,
    dir: tempfile::TempDir,
    ca_pem: String,
}

impl PreparedSlapd {
    /// Starts slapd on two free ports, again on others if one was taken in between.
    fn run_with_retries(self) -> Result<Slapd, SlapdError> {
        let mut last = String::new();
        for _ in 0..5 {
            let (ldap_port, ldaps_port) = (free_port()?, free_port()?);
            if ldap_port == ldaps_port {
                continue;
            }
            match self.run(ldap_port, ldaps_port) {
                Ok(child) => {
                    let s = Slapd {
                        child,
                        tools: self.tools,
                        ldap_port,
                        ldaps_port,
                        ca_pem: self.ca_pem,
                        classes: Mutex::new(BTreeMap::new()),
                        files: AtomicU64::new(0),
                        dir: self.dir,
                    };
                    return s.ready();
                }
                Err(Retry::PortTaken(log)) => last = log,
                Err(Retry::Fatal(e)) => return Err(e),
            }
        }
        Err(SlapdError::Start(format!("no free ports after five tries: {last}")))
    }

    fn run(&self, ldap_port: u16, ldaps_port: u16) -> Result<Child, Retry> {
        let log_path = self.dir.path().join("slapd.log");
        let log = std::fs::File::create(&log_path).map_err(|source| {
            Retry::Fatal(SlapdError::Io {
                path: log_path.clone(),
                source,
            })
        })?;
        let log2 = log.try_clone().map_err(|source| {
            Retry::Fatal(SlapdError::Io {
                path: log_path.clone(),
                source,
            })
        })?;
        // -d 0: stay in the foreground as this process's child, logging only what always logs.
        let mut child = Command::new(&self.tools.slapd)
            .arg("-d")
            .arg("0")
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{ldap_port}/ ldaps://127.0.0.1:{ldaps_port}/"))
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|source| {
                Retry::Fatal(SlapdError::Spawn {
                    program: self.tools.slapd.display().to_string(),
                    source,
                })
            })?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let text = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(if text.contains("Address already in use") {
                    Retry::PortTaken(text)
                } else {
                    Retry::Fatal(SlapdError::Start(format!("slapd exited ({status}): {}", text.trim())))
                });
            }
            let probe = Command::new(&self.tools.ldapsearch)
                .args([
                    "-x",
                    "-H",
                    &format!("ldap://127.0.0.1:{ldap_port}"),
                    "-b",
                    "",
                    "-s",
                    "base",
                    "1.1",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if probe.is_ok_and(|s| s.success()) {
                return Ok(child);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let text = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(Retry::Fatal(SlapdError::Start(format!(
                    "no answer on port {ldap_port} within {START_TIMEOUT:?}: {}",
                    text.trim()
                ))));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

enum Retry {
    PortTaken(String),
    Fatal(SlapdError),
}

#[derive(Clone, Copy)]
enum Change {
    Add,
    Remove,
}

impl Slapd {
    /// Adds the containers and the reader unless the database already has them (slapadd put
    /// them there), then checks the reader can bind.
    fn ready(self) -> Result<Slapd, SlapdError> {
        if self.count_base()? == 0 {
            self.as_root(&self.tools.ldapadd, "ldapadd", &[], &base_ldif())?;
        }
        let who = self.search(Bind::Reader, &["-b", READER_DN, "-s", "base", "1.1"])?;
        if who.code != 0 {
            return Err(SlapdError::Start(format!(
                "the reader {READER_DN} cannot read its own entry (code {}): {}",
                who.code, who.stderr
            )));
        }
        Ok(self)
    }

    fn count_base(&self) -> Result<usize, SlapdError> {
        let found = self.search(Bind::Root, &["-b", BASE_DN, "-s", "base", "1.1"])?;
        match found.code {
            0 => Ok(found.entries.len()),
            32 => Ok(0),
            code => Err(SlapdError::Tool {
                command: format!("ldapsearch -b {BASE_DN} -s base"),
                code,
                stderr: found.stderr,
            }),
        }
    }
}

/// Runs `cmd` and returns its output whatever its exit code.
fn output(mut cmd: Command, name: &str) -> Result<Output, SlapdError> {
    cmd.output().map_err(|source| SlapdError::Spawn {
        program: name.to_string(),
        source,
    })
}

/// Runs `cmd`; a non-zero exit is an error carrying what it said.
fn checked(cmd: Command, name: &str) -> Result<Output, SlapdError> {
    let out = output(cmd, name)?;
    if out.status.success() {
        return Ok(out);
    }
    Err(SlapdError::Tool {
        command: name.to_string(),
        code: out.status.code().unwrap_or(-1),
        stderr: format!(
            "{} {}",
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        )
        .trim()
        .to_string(),
    })
}

/// Makes a CA and a server certificate for `127.0.0.1` and `localhost` signed by it (P-256,
/// valid two days) in `dir`; returns the CA's PEM.
fn make_certificates(tools: &Tools, dir: &Path) -> Result<String, SlapdError> {
    let ext = dir.join("server-ext.cnf");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|source| SlapdError::Io { path: ext.clone(), source })?;
    let openssl = |args: &[&str]| {
        let mut cmd = Command::new(&tools.openssl);
        cmd.current_dir(dir).args(args).stdin(Stdio::null());
        checked(cmd, &format!("openssl {}", args.first().copied().unwrap_or_default()))
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=Roster test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat(),
    )?;
    openssl(
        &[
            &["req", "-new"][..],
            &ec,
            &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
        ]
        .concat(),
    )?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server-ext.cnf",
    ])?;
    let ca = dir.join("ca.pem");
    std::fs::read_to_string(&ca).map_err(|source| SlapdError::Io { path: ca, source })
}

/// Writes `slapd.conf`: the schemas, `back-mdb` in `data/`, the root DN, the reader's access
/// and limit, TLS, the writable `cn=config` (for live limit changes) and `refint`.
fn write_config(dir: &Path, limit: SizeLimit) -> Result<(), SlapdError> {
    let d = dir.display();
    let text = format!(
        r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload refint
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
loglevel none
TLSCACertificateFile {d}/ca.pem
TLSCertificateFile {d}/server.pem
TLSCertificateKeyFile {d}/server.key

database config
rootdn "{CONFIG_DN}"
rootpw {CONFIG_PASSWORD}

database mdb
maxsize {MAP_SIZE_BYTES}
suffix "{BASE_DN}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PASSWORD}
directory {d}/data
index objectClass eq
index uid,cn,mail,entryUUID eq
index member,uniqueMember,memberUid eq
limits {limit}
access to attrs=userPassword by anonymous auth by * none
access to * by dn.exact="{READER_DN}" read by * none
overlay refint
refint_attributes member uniqueMember
refint_nothing "{BASE_DN}"
"#,
        limit = limit.clause()
    );
    let path = dir.join("slapd.conf");
    std::fs::write(&path, text).map_err(|source| SlapdError::Io { path, source })
}

/// The suffix, the two containers and the reader.
fn base_ldif() -> String {
    let mut t = format!("dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n");
    t.push_str(&format!(
        "dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people\n\n"
    ));
    t.push_str(&format!(
        "dn: {GROUPS_DN}\nobjectClass: organizationalUnit\nou: groups\n\n"
    ));
    t.push_str(&format!(
        "dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\nuserPassword: {READER_PASSWORD}\ndescription: Roster's read-only account\n\n"
    ));
    t
}

fn user_ldif(u: &DirUser) -> String {
    let shown = if u.display_name.trim().is_empty() {
        u.username.as_str()
    } else {
        u.display_name.trim()
    };
    let sn = shown.rsplit(' ').next().unwrap_or(shown);
    let mut t = format!("dn: {}\nobjectClass: inetOrgPerson\n", Slapd::user_dn(&u.username));
    ldif::line(&mut t, "uid", &u.username);
    ldif::line(&mut t, "cn", shown);
    ldif::line(&mut t, "sn", sn);
    if !u.display_name.is_empty() {
        ldif::line(&mut t, "displayName", &u.display_name);
    }
    if !u.email.is_empty() {
        ldif::line(&mut t, "mail", &u.email);
    }
    ldif::line(&mut t, "employeeNumber", &u.id);
    t.push('\n');
    t
}

fn group_ldif(name: &str, class: GroupClass, gid: usize, members: &[String]) -> String {
    let mut t = format!("dn: {}\nobjectClass: {}\n", Slapd::group_dn(name), class.object_class());
    ldif::line(&mut t, "cn", name);
    if class == GroupClass::PosixGroup {
        t.push_str(&format!("gidNumber: {gid}\n"));
    }
    let attr = class.member_attribute();
    for m in members {
        ldif::line(&mut t, attr, m);
    }
    if members.is_empty() && class.needs_a_member() {
        ldif::line(&mut t, attr, BASE_DN);
    }
    t.push('\n');
    t
}

/// The users and groups of `d` as LDIF (without the suffix and containers), and each group's
/// class by lower-case name.
fn directory_ldif(d: &Directory, layout: &Layout) -> Result<(String, BTreeMap<String, GroupClass>), SlapdError> {
    let users: BTreeMap<&str, &DirUser> = d
        .users
        .iter()
        .filter(|u| u.active)
        .map(|u| (u.id.as_str(), u))
        .collect();
    let groups: BTreeMap<&str, &str> = d.groups.iter().map(|g| (g.id.as_str(), g.name.as_str())).collect();
    let mut members: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for m in &d.memberships {
        let class = layout.class_of(&m.group);
        let value = if m.member_is_group {
            let Some(child) = groups.get(m.member.as_str()) else {
                continue;
            };
            if class == GroupClass::PosixGroup {
                return Err(SlapdError::Layout(format!(
                    "group {} cannot be a posixGroup: it holds group {child}, and memberUid holds only uids; pick a group without subgroups",
                    m.group
                )));
            }
            Slapd::group_dn(child)
        } else {
            let Some(u) = users.get(m.member.as_str()) else {
                continue;
            };
            match class {
                GroupClass::PosixGroup => u.username.clone(),
                _ => Slapd::user_dn(&u.username),
            }
        };
        members.entry(m.group.as_str()).or_default().push(value);
    }
    let mut text = String::new();
    for u in users.values() {
        text.push_str(&user_ldif(u));
    }
    let mut classes = BTreeMap::new();
    for (i, g) in d.groups.iter().enumerate() {
        let class = layout.class_of(&g.id);
        let mine = members.get(g.id.as_str()).map_or(&[][..], Vec::as_slice);
        text.push_str(&group_ldif(&g.name, class, 10000 + i, mine));
        classes.insert(g.name.to_lowercase(), class);
    }
    Ok((text, classes))
}
