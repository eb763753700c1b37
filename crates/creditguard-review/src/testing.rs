//! A real PostgreSQL server for tests, so that the PostgreSQL backend is tested against the
//! database it ships for rather than a stand-in.
//!
//! [`TempPostgres::start`] runs `initdb` and `pg_ctl start` from the installed PostgreSQL (Debian's
//! postgresql-15 in CI, installed by `.ci/install-postgres`) in a fresh temporary directory. The
//! server listens on 127.0.0.1 on a free port, with its unix socket in that directory,
//! `fsync=off` and trust authentication for the superuser `creditguard`. Tests then take a
//! database of their own with [`TempPostgres::fresh_database`]. Most tests share one server per
//! process through [`shared`] (a server starts in about a second; a database in milliseconds).
//!
//! Finding the binaries: `CREDITGUARD_PG_BIN` if set, else `pg_config --bindir`, else the newest
//! `/usr/lib/postgresql/<version>/bin`, else the directory `initdb` on `PATH` resolves to. When
//! none is found, `start` returns `Ok(None)` and callers skip with [`INSTALL_HINT`], unless
//! `CREDITGUARD_REQUIRE_POSTGRES=1` (CI), where it is an error.
//!
//! PostgreSQL refuses to run as root; as root, `initdb`, `pg_ctl` and `createdb` run through
//! `runuser -u postgres --` (the Debian package creates that user) on a directory chowned to it.
//!
//! No server outlives its test process:
//! - dropping a [`TempPostgres`] stops the server (`pg_ctl stop -m immediate`) and removes its
//!   directory;
//! - every server also has a watchdog, a `sh` that waits for end of file on a pipe from the test
//!   process and then does the same. The pipe closes however the process ends (including a
//!   panic=abort or SIGKILL), which matters for the [`shared`] server: statics are never dropped.
//!   The watchdog ignores SIGINT/SIGHUP/SIGTERM, so Ctrl-C on `cargo test` (which signals the
//!   whole process group; the postmaster itself is in its own session) still cleans up;
//! - should the watchdog be killed too, the directory (`creditguard-pg-<pid>-<random>` under
//!   [`std::env::temp_dir`]) names the test process: the first `start` of a later test process
//!   stops the servers of, and removes, every such directory whose pid is no longer running
//!   (`/proc/<pid>` is gone; Linux only).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once, OnceLock};

/// What to tell the user when PostgreSQL is not installed (tests print it when they skip).
pub const INSTALL_HINT: &str = "PostgreSQL is not installed: run `bash .ci/install-postgres` \
(Debian/Ubuntu: apt-get install postgresql postgresql-client), or set CREDITGUARD_PG_BIN to a \
directory with initdb, pg_ctl, createdb and psql";

/// The superuser `initdb` creates; every database URL connects as this user (trust auth).
const USER: &str = "creditguard";
/// Prefix of the temporary directories: `creditguard-pg-<pid>-<random>`.
const DIR_PREFIX: &str = "creditguard-pg-";
/// The programs a usable bin directory has.
const TOOLS: [&str; 4] = ["initdb", "pg_ctl", "createdb", "psql"];
/// How often `start` picks another port when the chosen one was taken in the meantime.
const START_ATTEMPTS: usize = 10;

/// Stops the server of directory `$0` with the command in `"$@"` and removes the directory,
/// once standard input reaches end of file (when the test process closes the pipe or dies).
const WATCHDOG: &str = r#"trap "" INT HUP TERM; cat >/dev/null; "$@" >/dev/null 2>&1; rm -rf "$0""#;

static SHARED: OnceLock<Result<Option<TempPostgres>, (io::ErrorKind, String)>> = OnceLock::new();
static SWEEP: Once = Once::new();
static DATABASES: AtomicU64 = AtomicU64::new(0);

/// A PostgreSQL server in a temporary directory, stopped and removed on drop.
pub struct TempPostgres {
    /// Holds `data/` (the cluster), `log` (the server log) and the unix socket.
    dir: tempfile::TempDir,
    port: u16,
    /// The directory with initdb, pg_ctl, createdb and psql.
    bin: PathBuf,
    /// True when running as root: the server tools run as the `postgres` user.
    as_postgres: bool,
    /// See the module docs; `None` once dropped.
    watchdog: Mutex<Option<Child>>,
}

impl TempPostgres {
    /// Starts a fresh server. `Ok(None)` when no PostgreSQL is installed and the environment
    /// variable `CREDITGUARD_REQUIRE_POSTGRES` is not `1` (callers then skip, printing
    /// [`INSTALL_HINT`]); `Err` when it is required but missing, or when the server fails to
    /// start (the error includes the tail of the server log).
    pub fn start() -> io::Result<Option<TempPostgres>> {
        let Some(bin) = find_bin()? else {
            if std::env::var("CREDITGUARD_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("CREDITGUARD_REQUIRE_POSTGRES=1 but {INSTALL_HINT}"),
                ));
            }
            return Ok(None);
        };
        let as_postgres = running_as_root();
        if as_postgres {
            let user = Command::new("id")
                .args(["-u", "postgres"])
                .stdin(Stdio::null())
                .output();
            if !user.map(|o| o.status.success()).unwrap_or(false) {
                return Err(io::Error::other(
                    "running as root, which PostgreSQL refuses, and there is no `postgres` user \
                     to run it as (the Debian package creates one); run the tests as another user",
                ));
            }
        }
        SWEEP.call_once(|| sweep_stale(&bin, as_postgres));

        let prefix = format!("{DIR_PREFIX}{}-", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir_in(std::env::temp_dir())?;
        if as_postgres {
            let mut chown = Command::new("chown");
            chown.arg("-R").arg("postgres:").arg(dir.path());
            run(chown)?;
        }
        let watchdog = spawn_watchdog(&bin, as_postgres, dir.path())?;
        // From here on, an early return drops `pg`, which stops whatever was started.
        let mut pg = TempPostgres {
            dir,
            port: 0,
            bin,
            as_postgres,
            watchdog: Mutex::new(Some(watchdog)),
        };
        let mut initdb = pg.tool("initdb");
        initdb.arg("-D").arg(pg.data_dir()).args([
            "-U",
            USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        run(initdb)?;
        pg.port = pg.start_server()?;
        Ok(Some(pg))
    }

    /// The server shared by all tests of this process, started on first use; see [`shared`].
    pub fn shared() -> io::Result<Option<&'static TempPostgres>> {
        shared()
    }

    /// A new, empty database with a random unique name (createdb from the same bin dir), as a
    /// URL `postgres://creditguard@127.0.0.1:PORT/NAME`.
    pub fn fresh_database(&self) -> io::Result<String> {
        let seq = DATABASES.fetch_add(1, Ordering::Relaxed);
        let random = RandomState::new().hash_one(seq);
        let name = format!("cg_{}_{seq}_{random:016x}", std::process::id());
        let mut createdb = self.tool("createdb");
        createdb
            .args(["-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(["-U", USER])
            .arg(&name);
        run(createdb)?;
        Ok(format!("postgres://{USER}@127.0.0.1:{}/{name}", self.port))
    }

    /// Runs one SQL statement with psql against the database URL (for tests that tamper with
    /// rows behind the application's back, e.g. to edit an audit record) and returns stdout:
    /// unaligned, tuples only, so `select 1` gives `"1\n"` and columns are separated by `|`.
    /// An SQL error is an `Err` with psql's message.
    pub fn psql(&self, url: &str, sql: &str) -> io::Result<String> {
        let mut psql = Command::new(self.bin.join("psql"));
        psql.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ]);
        let out = run(psql)?;
        String::from_utf8(out.stdout).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// The TCP port the server listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// A command for one of the PostgreSQL tools, as the `postgres` user when we are root.
    fn tool(&self, name: &str) -> Command {
        tool_command(&self.bin, self.as_postgres, name)
    }

    /// `pg_ctl start` on a free port; a port taken between choosing and binding it is retried
    /// with another one. Returns the port.
    fn start_server(&self) -> io::Result<u16> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            // pg_ctl appends to the log; start each attempt with an empty one.
            let _ = std::fs::remove_file(self.log_path());
            let mut pg_ctl = self.tool("pg_ctl");
            pg_ctl
                .arg("-D")
                .arg(self.data_dir())
                .arg("-o")
                .arg(format!(
                    // pg_ctl hands this string to sh, hence the quoting of the socket directory.
                    // 200 connections: many tests, each with a sqlx pool, share one server.
                    "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
                    shell_quote(&self.dir.path().to_string_lossy())
                ))
                .arg("-l")
                .arg(self.log_path())
                .args(["-w", "-t", "60", "start"]);
            let described = format!("{pg_ctl:?}");
            let out = pg_ctl.output()?;
            if out.status.success() {
                return Ok(port);
            }
            let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
            if log.contains("Address already in use") && attempt < START_ATTEMPTS {
                continue;
            }
            return Err(io::Error::other(format!(
                "PostgreSQL did not start ({described} exited with {}: {}{}); last lines of the \
                 server log {}:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim(),
                self.log_path().display(),
                tail(&log, 30)
            )));
        }
    }
}

impl Drop for TempPostgres {
    /// `pg_ctl stop -m immediate -w`, then the watchdog (which finds nothing left to stop) and
    /// the temporary directory go.
    fn drop(&mut self) {
        let mut stop = self.tool("pg_ctl");
        stop.arg("stop")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = stop.status();
        let watchdog = self.watchdog.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(mut child) = watchdog.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

/// The server shared by all tests of this process: started once (on first call), never dropped
/// (its watchdog stops it when the process exits; see the module docs). `Ok(None)` and `Err` as
/// for [`TempPostgres::start`], and the same answer on every call. Tests call
/// `TempPostgres::shared()?` and then `fresh_database()`.
pub fn shared() -> io::Result<Option<&'static TempPostgres>> {
    let started =
        SHARED.get_or_init(|| TempPostgres::start().map_err(|e| (e.kind(), e.to_string())));
    match started {
        Ok(pg) => Ok(pg.as_ref()),
        Err((kind, message)) => Err(io::Error::new(*kind, message.clone())),
    }
}

/// `bin/name`, run through `runuser -u postgres --` when `as_postgres`; stdin is /dev/null.
fn tool_command(bin: &Path, as_postgres: bool, name: &str) -> Command {
    let program = bin.join(name);
    let mut command = if as_postgres {
        let mut runuser = Command::new(runuser_path());
        runuser.args(["-u", "postgres", "--"]).arg(program);
        runuser
    } else {
        Command::new(program)
    };
    command.stdin(Stdio::null());
    command
}

/// `runuser` lives in /usr/sbin, which is not always on a test's PATH.
fn runuser_path() -> PathBuf {
    ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("runuser"))
}

/// Whether the effective uid is 0, from `id -u` (no libc).
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs `command`; a failure to spawn or a non-zero exit is an `Err` naming the command, with
/// its output.
fn run(mut command: Command) -> io::Result<Output> {
    let described = format!("{command:?}");
    let out = command
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("{described}: {e}")))?;
    if out.status.success() {
        return Ok(out);
    }
    Err(io::Error::other(format!(
        "{described} exited with {}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim(),
        String::from_utf8_lossy(&out.stdout).trim()
    )))
}

/// The PostgreSQL bin directory: `CREDITGUARD_PG_BIN`, `pg_config --bindir`, the newest
/// `/usr/lib/postgresql/*/bin`, or where `initdb` on PATH really lives. `Ok(None)` when none
/// has all of [`TOOLS`]; `Err` when `CREDITGUARD_PG_BIN` is set to a directory without them.
fn find_bin() -> io::Result<Option<PathBuf>> {
    if let Some(dir) = std::env::var_os("CREDITGUARD_PG_BIN").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if has_tools(&dir) {
            return Ok(Some(dir));
        }
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "CREDITGUARD_PG_BIN={} lacks one of {}",
                dir.display(),
                TOOLS.join(", ")
            ),
        ));
    }
    let pg_config = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    if let Ok(out) = pg_config {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_tools(&dir) {
            return Ok(Some(dir));
        }
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| {
                    let key = version_key(&entry.file_name().to_string_lossy());
                    (key, entry.path().join("bin"))
                })
                .filter(|(_, bin)| has_tools(bin))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(Some(bin));
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("initdb"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for initdb in on_path {
        // Symlinks (e.g. Homebrew's, or /usr/local/bin/initdb) lead to the real bin directory.
        let dir = std::fs::canonicalize(&initdb)
            .ok()
            .and_then(|real| real.parent().map(Path::to_path_buf));
        if let Some(dir) = dir.filter(|d| has_tools(d)) {
            return Ok(Some(dir));
        }
    }
    Ok(None)
}

fn has_tools(dir: &Path) -> bool {
    TOOLS.iter().all(|tool| dir.join(tool).is_file())
}

/// `"15"` → `[15]`, `"9.6"` → `[9, 6]`: sorts PostgreSQL version directories numerically.
fn version_key(name: &str) -> Vec<u32> {
    name.split('.')
        .map(|part| part.parse().unwrap_or(0))
        .collect()
}

/// `s` as one sh word.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Starts the watchdog of the server in `dir` (see the module docs).
fn spawn_watchdog(bin: &Path, as_postgres: bool, dir: &Path) -> io::Result<Child> {
    let mut stop = tool_command(bin, as_postgres, "pg_ctl");
    stop.arg("stop")
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-m", "immediate", "-w"]);
    let mut watchdog = Command::new("sh");
    watchdog
        .arg("-c")
        .arg(WATCHDOG)
        .arg(dir)
        .arg(stop.get_program())
        .args(stop.get_args())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    watchdog.spawn()
}

/// Stops the servers of, and removes, the `creditguard-pg-<pid>-*` directories of test
/// processes that are gone (their watchdog was killed with them). Linux only (`/proc`); errors
/// are ignored: a directory we may not touch belongs to someone else.
fn sweep_stale(bin: &Path, as_postgres: bool) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let dir = entry.path();
        if dir.join("data").join("postmaster.pid").exists() {
            let mut stop = tool_command(bin, as_postgres, "pg_ctl");
            stop.arg("stop")
                .arg("-D")
                .arg(dir.join("data"))
                .args(["-m", "immediate", "-w"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = stop.status();
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_gives_separate_databases_and_goes_away_on_drop() {
        let Some(pg) = TempPostgres::start().expect("start PostgreSQL") else {
            eprintln!("SKIP: {INSTALL_HINT}");
            return;
        };
        let a = pg.fresh_database().expect("first database");
        let b = pg.fresh_database().expect("second database");
        assert_ne!(a, b);
        let prefix = format!("postgres://creditguard@127.0.0.1:{}/", pg.port());
        assert!(a.starts_with(&prefix), "{a}");
        assert_eq!(pg.psql(&a, "select 1").expect("psql a"), "1\n");
        assert_eq!(pg.psql(&b, "select 1").expect("psql b"), "1\n");

        pg.psql(&a, "create table t (x int)").expect("create table");
        pg.psql(&a, "insert into t values (7)").expect("insert");
        assert_eq!(
            pg.psql(&a, "select x, x + 1 from t").expect("select"),
            "7|8\n"
        );
        let err = pg
            .psql(&b, "select x from t")
            .expect_err("t exists only in a");
        assert!(err.to_string().contains("does not exist"), "{err}");

        let dir = pg.dir.path().to_path_buf();
        let port = pg.port();
        drop(pg);
        assert!(!dir.exists(), "{} still exists", dir.display());
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }

    #[test]
    fn the_shared_server_is_started_once() {
        let Some(first) = shared().expect("start PostgreSQL") else {
            eprintln!("SKIP: {INSTALL_HINT}");
            return;
        };
        let second = TempPostgres::shared()
            .expect("shared")
            .expect("started before");
        assert!(std::ptr::eq(first, second));
        let url = second.fresh_database().expect("database");
        assert_eq!(first.psql(&url, "select 1").expect("psql"), "1\n");
    }

    #[test]
    fn versions_sort_numerically() {
        assert!(version_key("9.6") < version_key("15"));
        assert!(version_key("15") < version_key("16"));
        assert_eq!(shell_quote("/tmp/it's"), r"'/tmp/it'\''s'");
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
