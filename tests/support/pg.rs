//! A throwaway PostgreSQL server for tests and benches: `initdb` into a temporary directory,
//! listening on 127.0.0.1 at a free port, stopped by `Drop` even when a test fails (and its
//! log kept then). Shared by `tests/` and `benches/` (`#[path]`-included).
//!
//! The server binaries are taken from `API_TOKENS_PG_BIN`, else the newest
//! `/usr/lib/postgresql/*/bin`, else `pg_config --bindir`, else `initdb` on `PATH`. When none
//! is found the server is `None` and the caller skips — except with `CI=true`, where a
//! missing server is a failure, never a silent pass. As root (CI, containers) the server runs
//! as `API_TOKENS_PG_USER`, else the `postgres` user, else `nobody`, through `setpriv`, since
//! PostgreSQL refuses root.
//!
//! [`PgServer::start_with_tls`] starts one with `ssl = on` and the certificate and key it is
//! given (the caller makes them: the fixture needs no certificate tooling).
#![allow(dead_code)]

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct PgServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    user: Option<String>,
    child: Option<Child>,
    /// The server's certificate and key files, when it serves TLS.
    tls: Option<(PathBuf, PathBuf)>,
}

fn bin_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("API_TOKENS_PG_BIN") {
        return Some(PathBuf::from(d));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let from = |cmd: &str, args: &[&str]| -> Option<PathBuf> {
        let out = Command::new(cmd).args(args).output().ok()?;
        let s = String::from_utf8(out.stdout).ok()?;
        let p = PathBuf::from(s.trim());
        out.status.success().then_some(p)
    };
    if let Some(d) = from("pg_config", &["--bindir"]).filter(|d| d.join("initdb").exists()) {
        return Some(d);
    }
    from("sh", &["-c", "command -v initdb"]).and_then(|p| p.parent().map(Path::to_path_buf))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn check(what: &str, out: std::io::Result<Output>) -> String {
    let out = out.unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl PgServer {
    /// Starts a fresh server, or `None` when no PostgreSQL is installed (a failure under
    /// `CI=true`).
    pub fn start() -> Option<Self> {
        Self::start_with(None)
    }

    /// [`PgServer::start`] with `ssl = on`, serving `cert_pem` (the chain, leaf first) with
    /// the private key `key_pem`.
    pub fn start_with_tls(cert_pem: &str, key_pem: &str) -> Option<Self> {
        Self::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Option<Self> {
        let Some(bin) = bin_dir() else {
            assert!(
                std::env::var("CI").ok().as_deref() != Some("true"),
                "PostgreSQL server binaries not found (CI=true: this is a failure, not a skip). \
                 Install the `postgresql` package or set API_TOKENS_PG_BIN."
            );
            eprintln!("PostgreSQL not installed: skipping (set API_TOKENS_PG_BIN to run)");
            return None;
        };
        static N: AtomicUsize = AtomicUsize::new(0);
        let user = is_root().then(|| {
            if let Ok(u) = std::env::var("API_TOKENS_PG_USER") {
                u
            } else if user_exists("postgres") {
                "postgres".to_owned()
            } else {
                "nobody".to_owned()
            }
        });
        // The unprivileged user must reach the directory: /tmp, whatever TMPDIR says.
        let base = match user {
            Some(_) => PathBuf::from("/tmp"),
            None => std::env::temp_dir(),
        };
        let dir = base.join(format!(
            "api-tokens-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sock")).expect("temp dir");
        let tls = tls.map(|(cert, key)| {
            use std::os::unix::fs::PermissionsExt;
            let (c, k) = (dir.join("server.crt"), dir.join("server.key"));
            std::fs::write(&c, cert).expect("server certificate");
            std::fs::write(&k, key).expect("server key");
            // PostgreSQL refuses a key file others can read.
            std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).expect("chmod");
            (c, k)
        });
        if let Some(u) = &user {
            check(
                "chown",
                Command::new("chown").arg("-R").arg(u).arg(&dir).output(),
            );
        }
        let mut server = Self {
            bin,
            dir,
            port: free_port(),
            user,
            child: None,
            tls,
        };
        let data = server.dir.join("data");
        let out = server
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ])
            .output();
        check("initdb", out);
        server.start_again();
        Some(server)
    }

    /// A server binary, run as the unprivileged user when we are root.
    fn command(&self, name: &str) -> Command {
        let exe = self.bin.join(name);
        match &self.user {
            Some(u) => {
                // Numeric ids: `nobody`'s group is `nogroup` on Debian, not `nobody`.
                let id = |flag: &str| {
                    let out = Command::new("id").arg(flag).arg(u).output().expect("id");
                    String::from_utf8_lossy(&out.stdout).trim().to_owned()
                };
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={}", id("-u")))
                    .arg(format!("--regid={}", id("-g")))
                    .arg("--clear-groups")
                    .arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// Starts the server (again, after [`PgServer::stop`]) and waits until it accepts
    /// connections (30 s at most).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("server log");
        let mut tls_args = Vec::new();
        if let Some((cert, key)) = &self.tls {
            tls_args.push("-c".to_owned());
            tls_args.push("ssl=on".to_owned());
            tls_args.push("-c".to_owned());
            tls_args.push(format!("ssl_cert_file={}", cert.display()));
            tls_args.push("-c".to_owned());
            tls_args.push(format!("ssl_key_file={}", key.display()));
        }
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(self.dir.join("sock"))
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ])
            .args(&tls_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!("postgres exited ({status}):\n{}", self.log_tail());
            }
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < until,
                "postgres not ready after 30 s:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Stops the server (fast shutdown: sessions are cut, like a crash of the network to it)
    /// and waits for it to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let until = Instant::now() + Duration::from_secs(30);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_tail(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.log_path()) {
            let _ = f.read_to_string(&mut s);
        }
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server serves TLS.
    pub fn has_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// A directory the test may write files to (removed with the server).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Connection parameters for database `db`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={db} connect_timeout=5",
            self.port
        )
    }

    /// Creates a database; returns its connection parameters.
    pub fn create_db(&self, db: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE {db}"));
        self.url(db)
    }

    fn psql_command(&self, db: &str) -> Command {
        let mut c = Command::new(self.bin.join("psql"));
        c.args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", db]);
        c
    }

    /// Runs SQL as the superuser; returns what it printed (unaligned, tuples only).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        check("psql", self.psql_command(db).arg("-c").arg(sql).output())
    }

    /// Runs SQL that must fail; returns the error text.
    pub fn psql_err(&self, db: &str, sql: &str) -> String {
        let out = self
            .psql_command(db)
            .arg("-c")
            .arg(sql)
            .output()
            .expect("psql");
        assert!(!out.status.success(), "expected {sql:?} to fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// An interactive `psql` session: write statements to its stdin, read its output.
    pub fn psql_session(&self, db: &str) -> Child {
        self.psql_command(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("psql session")
    }

    /// Connection parameters for database `db` as `user`.
    pub fn url_as(&self, db: &str, user: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} dbname={db} connect_timeout=5",
            self.port
        )
    }

    /// Dumps database `db` in the custom format (`pg_dump -Fc`) into the server's directory;
    /// returns the file.
    pub fn dump(&self, db: &str, name: &str) -> PathBuf {
        let file = self.dir.join(format!("{name}.dump"));
        check(
            "pg_dump",
            Command::new(self.bin.join("pg_dump"))
                .args(["-Fc", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", "postgres", "-d", db, "-f"])
                .arg(&file)
                .output(),
        );
        file
    }

    /// Restores a dump over database `db` as an operator would after losing data:
    /// `pg_restore --clean --if-exists --single-transaction` (every object dropped and
    /// created again, in one transaction).
    pub fn restore(&self, db: &str, file: &Path) {
        check(
            "pg_restore",
            Command::new(self.bin.join("pg_restore"))
                .args(["--clean", "--if-exists", "--single-transaction"])
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", "postgres", "-d", db])
                .arg(file)
                .output(),
        );
    }

    /// Ends the backends of every session of `user`; returns how many.
    pub fn terminate_user(&self, db: &str, user: &str) -> usize {
        self.psql(
            db,
            &format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE usename = '{user}' AND datname = '{db}'"
            ),
        )
        .trim()
        .parse()
        .expect("a count")
    }

    /// Ends the backends of every session whose `application_name` is `name`; returns how many.
    pub fn terminate(&self, db: &str, name: &str) -> usize {
        self.psql(
            db,
            &format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = '{name}'"
            ),
        )
        .trim()
        .parse()
        .expect("a count")
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "PostgreSQL log kept at {} (last lines):\n{}",
                self.log_path().display(),
                self.log_tail()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Polls `cond` every millisecond until it holds or `limit` passes; returns how long it took.
pub fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}
