//! Running the built `api-tokens` against a real store, and reading the same store with the
//! library to prove what it did.
//!
//! An [`Env`] is one store (a SQLite file, or a database on a PostgreSQL server the test
//! started), a hash key, and a working directory. Every run of the binary is kept in a
//! transcript, so a test can check afterwards that no secret appeared in any output but the
//! one that was meant to carry it.
#![allow(dead_code)]

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use api_tokens::{HashKey, TokenStore, Tokens, legacy::LegacyScheme};
use assert_cmd::Command;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_api-tokens");

/// The hash key the tests' stores are made under.
pub const KEY_HEX: &str = "0707070707070707070707070707070707070707070707070707070707070707";
/// Another key.
pub const OTHER_KEY_HEX: &str = "0808080808080808080808080808080808080808080808080808080808080808";

/// Which store.
#[derive(Clone, Debug)]
pub enum Kind {
    /// A SQLite file at this path.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string.
    Postgres(String),
}

/// One run of the binary.
#[derive(Clone, Debug)]
pub struct Run {
    /// Its arguments.
    pub args: Vec<String>,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
    /// Its exit code.
    pub code: i32,
}

impl Run {
    /// The audit lines on stderr, parsed.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        audit_lines(&self.stderr)
    }
}

/// The JSON lines of a text (audit lines among messages).
pub fn audit_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?}: {e}")))
        .collect()
}

/// A store, a key, a directory, and the transcript of every run.
pub struct Env {
    pub kind: Kind,
    pub dir: tempfile::TempDir,
    transcript: RefCell<Vec<Run>>,
}

impl Env {
    /// A new SQLite file (created by the binary's first `--create-database` run).
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("tokens.db");
        let env = Self {
            kind: Kind::Sqlite(path),
            dir,
            transcript: RefCell::default(),
        };
        env.ok(&["--create-database", "list"]);
        env
    }

    /// A fresh database on `pg`, named `db`.
    pub fn postgres(pg: &crate::pg::PgServer, db: &str) -> Self {
        Self {
            kind: Kind::Postgres(pg.create_db(db)),
            dir: tempfile::tempdir().expect("temp dir"),
            transcript: RefCell::default(),
        }
    }

    /// The `--database` value.
    pub fn database(&self) -> String {
        match &self.kind {
            Kind::Sqlite(p) => p.display().to_string(),
            Kind::Postgres(s) => s.clone(),
        }
    }

    /// A file in the working directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file in the working directory.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write file");
        p
    }

    /// The binary, in the working directory, with nothing but this store, the key and an
    /// operator named `ops` in its environment.
    pub fn command(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env_clear()
            .current_dir(self.dir.path())
            .env("API_TOKENS_DATABASE", self.database())
            .env("API_TOKENS_HASH_KEY", KEY_HEX)
            .env("USER", "ops");
        c
    }

    /// Runs the binary with `args` and `stdin`, the environment changed by `setup`; records
    /// the run.
    pub fn run_with(&self, args: &[&str], stdin: &str, setup: impl FnOnce(&mut Command)) -> Run {
        let mut c = self.command();
        setup(&mut c);
        let out = c
            .args(args)
            .write_stdin(stdin.as_bytes().to_vec())
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .expect("run api-tokens");
        let run = Run {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
            code: out.status.code().unwrap_or(-1),
        };
        self.transcript.borrow_mut().push(run.clone());
        run
    }

    /// Runs with `args` and an empty stdin.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, "", |_| {})
    }

    /// Runs with `args` and `stdin`.
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        self.run_with(args, stdin, |_| {})
    }

    /// Runs and expects success.
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(run.code, 0, "{args:?} failed:\n{}", run.stderr);
        run
    }

    /// Runs and expects `code` with the error code `error` on stderr.
    pub fn fails(&self, args: &[&str], code: i32, error: &str) -> Run {
        let run = self.run(args);
        assert_eq!(run.code, code, "{args:?}: stderr:\n{}", run.stderr);
        assert!(
            run.stderr.contains(&format!("error[{error}]")),
            "{args:?}: expected error[{error}] in:\n{}",
            run.stderr
        );
        run
    }

    /// `script(1)` running the binary with `args` (a shell line) on a terminal of its own, in
    /// the binary's environment (and `PATH`, `TERM=xterm`); what the terminal shows is
    /// `script`'s stdout.
    /// `None` (a skip) when `script` is missing, a failure under `CI=true`.
    pub fn on_a_terminal(&self, args: &str) -> Option<std::process::Command> {
        let found = std::process::Command::new("script")
            .arg("--version")
            .output()
            .is_ok();
        if !found {
            assert!(
                std::env::var("CI").ok().as_deref() != Some("true"),
                "`script` (util-linux) not found: CI=true makes this a failure, not a skip"
            );
            eprintln!("`script` not found: skipping");
            return None;
        }
        let mut script = std::process::Command::new("script");
        script
            .args(["-qec", &format!("{BIN} {args}"), "/dev/null"])
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            // A terminal that says what it is (indicatif draws nothing on a "dumb" one).
            .env("TERM", "xterm");
        for (k, v) in self.command().get_envs() {
            if let Some(v) = v {
                script.env(k, v);
            }
        }
        Some(script)
    }

    /// Every run so far.
    pub fn transcript(&self) -> Vec<Run> {
        self.transcript.borrow().clone()
    }

    /// The library over the same store: the test's key, Zabbix hashes honoured.
    pub fn tokens(&self) -> Tokens<Box<dyn TokenStore>> {
        let store: Box<dyn TokenStore> = match &self.kind {
            Kind::Sqlite(p) => {
                Box::new(api_tokens::store::sqlite::SqliteStore::open(p).expect("open"))
            }
            Kind::Postgres(s) => {
                Box::new(api_tokens::store::postgres::PostgresStore::connect(s).expect("connect"))
            }
        };
        Tokens::new(store)
            .with_hash_key(HashKey::from_hex(KEY_HEX).expect("key"))
            .with_legacy_scheme(LegacyScheme::ZabbixSha512)
    }

    /// Whether the library authenticates `secret` in this store now.
    pub fn authenticates(&self, secret: &str) -> Result<(), api_tokens::DenialKind> {
        self.tokens()
            .authenticate(secret, &api_tokens::RequestContext::unknown_address())
            .map(|_| ())
            .map_err(|d| d.kind())
    }

    /// Asserts that `secret` appears in no output of any run, except the stdout of the runs
    /// `allowed` picks.
    pub fn assert_secret_only_in(&self, secret: &str, allowed: impl Fn(&Run) -> bool) {
        assert!(!secret.is_empty());
        for run in self.transcript.borrow().iter() {
            assert!(
                !run.stderr.contains(secret),
                "a secret on the stderr of {:?}",
                run.args
            );
            if !allowed(run) {
                assert!(
                    !run.stdout.contains(secret),
                    "a secret on the stdout of {:?}",
                    run.args
                );
            }
        }
    }
}

/// The file's mode bits (Unix).
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// A JSON value from a run's stdout.
pub fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{:?}: stdout is not JSON ({e}):\n{}", run.args, run.stdout))
}

/// The SHA-512 of `secret` in hex: Zabbix's `token` column.
pub fn zabbix_hash(secret: &str) -> String {
    use sha2::{Digest, Sha512};
    Sha512::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
