//! From the global options to a working [`Tokens`]: where the store is, the hash keys, the
//! policy, the operator, the audit log, and the startup check of the keys.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use api_tokens::{
    Actor, HashKey, Policy, SecretFormat, TokenStore, Tokens, UserId, keys::HashKeyReport,
    legacy::LegacyScheme,
};
use zeroize::Zeroizing;

use crate::audit::AuditLog;
use crate::cli::{Global, LegacyArg, PolicyArg};
use crate::error::{CliError, KeyOrigin, file_error};

/// The store the options name, shared (an import's dry run reads it through a wrapper).
pub type Store = Arc<dyn TokenStore>;

/// How the library is configured: as the host is (policy, keys, legacy schemes).
#[derive(Clone)]
pub struct Settings {
    /// The policy preset.
    pub policy: Policy,
    /// The current hash key.
    pub current: HashKey,
    /// Old keys held for verification.
    pub old: Vec<HashKey>,
    /// Legacy schemes honoured.
    pub legacy: Vec<LegacyScheme>,
}

impl Settings {
    /// The library over `store`, configured so (no event sink).
    pub fn tokens<S: TokenStore>(&self, store: S) -> Tokens<S> {
        let mut tokens = Tokens::new(store)
            .with_policy(self.policy.clone())
            .with_hash_key(self.current.clone());
        for key in &self.old {
            tokens = tokens.with_old_hash_key(key.clone());
        }
        for scheme in &self.legacy {
            tokens = tokens.with_legacy_scheme(*scheme);
        }
        tokens
    }

    /// The same, also honouring `scheme`.
    #[must_use]
    pub fn honouring(mut self, scheme: LegacyScheme) -> Self {
        if !self.legacy.contains(&scheme) {
            self.legacy.push(scheme);
        }
        self
    }
}

/// What every command works with.
pub struct Ctx {
    /// The library over the store, configured as the options say, its changes audited.
    pub tokens: Tokens<Store>,
    /// The store.
    pub store: Store,
    /// The configuration, for a command that needs the library over another store.
    pub settings: Settings,
    /// The operator: an administrator with every right.
    pub actor: Actor,
    /// Where the audit lines go.
    pub audit: Arc<AuditLog>,
}

/// Where the tokens are.
#[derive(Debug, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string, passed to the library unchanged.
    Postgres(String),
}

/// Reads `--database`: `postgres://` and `postgresql://` URLs and libpq `key=value` strings are
/// PostgreSQL; anything else is a SQLite path, with an optional `sqlite:` (or `sqlite://`)
/// prefix — which a SQLite path that looks like `key=value` needs.
pub fn location(database: &str) -> Location {
    if let Some(path) = database.strip_prefix("sqlite:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        return Location::Sqlite(PathBuf::from(path));
    }
    let url = database.starts_with("postgres://") || database.starts_with("postgresql://");
    let first_word = database.split_whitespace().next().unwrap_or("");
    let key_value = first_word.split_once('=').is_some_and(|(key, _)| {
        !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    if url || key_value {
        Location::Postgres(database.to_owned())
    } else {
        Location::Sqlite(PathBuf::from(database))
    }
}

/// Opens the store the options name.
///
/// # Errors
/// No database named, a missing SQLite file (without `--create-database`), a kind this build
/// cannot open, or the store's own error.
pub fn open_store(global: &Global) -> Result<Store, CliError> {
    let database = global.database.as_deref().ok_or(CliError::NoDatabase)?;
    match location(database) {
        Location::Sqlite(path) => open_sqlite(&path, global.create_database),
        Location::Postgres(params) => open_postgres(&params),
    }
}

#[cfg(feature = "sqlite")]
fn open_sqlite(path: &Path, create: bool) -> Result<Store, CliError> {
    if path.as_os_str().is_empty() || (!create && !path.exists()) {
        return Err(CliError::NoSuchDatabase(path.to_path_buf()));
    }
    Ok(Arc::new(api_tokens::store::sqlite::SqliteStore::open(
        path,
    )?))
}

#[cfg(not(feature = "sqlite"))]
fn open_sqlite(_: &Path, _: bool) -> Result<Store, CliError> {
    Err(CliError::StoreNotBuilt {
        kind: "SQLite",
        feature: "sqlite",
    })
}

#[cfg(feature = "postgres")]
fn open_postgres(params: &str) -> Result<Store, CliError> {
    Ok(Arc::new(
        api_tokens::store::postgres::PostgresStore::connect(params)?,
    ))
}

#[cfg(not(feature = "postgres"))]
fn open_postgres(_: &str) -> Result<Store, CliError> {
    Err(CliError::StoreNotBuilt {
        kind: "PostgreSQL",
        feature: "postgres",
    })
}

/// The longest hash key file read: a key is 64 characters; anything much longer is not one.
const MAX_KEY_FILE: u64 = 1024;

/// A hash key from a file: 64 hex digits or base64, surrounding whitespace ignored. The text
/// read is wiped after use.
fn key_from_file(path: &Path) -> Result<HashKey, CliError> {
    let origin = || KeyOrigin::File(path.to_path_buf());
    let file = std::fs::File::open(path).map_err(file_error("read the hash key file", path))?;
    warn_if_readable_by_others(path, &file);
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(file_error("read the hash key file", path))?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        return Err(CliError::KeyFileShape(origin()));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| CliError::KeyFileShape(origin()))?;
    let text = text.trim();
    let key = if text.len() == 64 {
        HashKey::from_hex(text)
    } else {
        HashKey::from_base64(text)
    };
    key.map_err(|source| CliError::HashKey {
        origin: origin(),
        source,
    })
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path, file: &std::fs::File) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = file.metadata()
        && meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "warning: {} can be read by other users (chmod 600 it)",
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path, _: &std::fs::File) {}

fn key_from_env(var: &'static str) -> Result<HashKey, CliError> {
    HashKey::from_env(var).map_err(|source| CliError::HashKey {
        origin: KeyOrigin::Env(var),
        source,
    })
}

/// The current key: `--hash-key-file`, else `--default-hash-key`, else `API_TOKENS_HASH_KEY`.
fn current_key(global: &Global) -> Result<HashKey, CliError> {
    if let Some(path) = &global.hash_key_file {
        return key_from_file(path);
    }
    if global.default_hash_key {
        return Ok(HashKey::default());
    }
    if std::env::var_os("API_TOKENS_HASH_KEY").is_none() {
        return Err(CliError::NoHashKey);
    }
    key_from_env("API_TOKENS_HASH_KEY")
}

/// The old keys: each `--old-hash-key-file`, then `API_TOKENS_OLD_HASH_KEY` when set.
fn old_keys(global: &Global) -> Result<Vec<HashKey>, CliError> {
    let mut keys = global
        .old_hash_key_files
        .iter()
        .map(|p| key_from_file(p))
        .collect::<Result<Vec<_>, _>>()?;
    if std::env::var_os("API_TOKENS_OLD_HASH_KEY").is_some() {
        keys.push(key_from_env("API_TOKENS_OLD_HASH_KEY")?);
    }
    Ok(keys)
}

/// The policy preset, with the host's secret prefix when it has one.
fn policy(global: &Global) -> Result<Policy, CliError> {
    let mut policy = match global.policy {
        PolicyArg::Default => Policy::default(),
        PolicyArg::Zabbix => Policy::zabbix(),
        PolicyArg::Cpanel => Policy::cpanel(),
    };
    if let Some(prefix) = &global.secret_prefix {
        if global.policy != PolicyArg::Default {
            return Err(CliError::Usage(
                "--secret-prefix belongs to the default policy; the zabbix and cpanel presets' secrets have no prefix".into(),
            ));
        }
        policy.secret_format = SecretFormat::prefixed(prefix)?;
    }
    Ok(policy)
}

/// The library's scheme for a `--legacy-scheme` value.
pub fn legacy(arg: LegacyArg) -> LegacyScheme {
    match arg {
        LegacyArg::ZabbixSha512 => LegacyScheme::ZabbixSha512,
        LegacyArg::Sha256 => LegacyScheme::Sha256,
    }
}

/// The operator: `--operator`, else `$USER` or `$LOGNAME`, else `operator`.
fn operator(global: &Global) -> Result<UserId, CliError> {
    if let Some(name) = &global.operator {
        return Ok(UserId::new(name)?);
    }
    let from_env = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find_map(|name| UserId::new(&name).ok());
    // "operator" passes UserId's rules; a number is the fallback that always does.
    Ok(from_env.unwrap_or_else(|| UserId::new("operator").unwrap_or_else(|_| UserId::from(0))))
}

/// Builds the context: the audit log first (so a log that cannot be written refuses the
/// command before anything happens), the keys, the store and the library over it.
///
/// # Errors
/// As [`open_store`]; unreadable keys; an audit log that cannot be opened.
pub fn context(global: &Global) -> Result<Ctx, CliError> {
    let audit = Arc::new(match &global.audit_log {
        Some(path) => AuditLog::file(path)?,
        None => AuditLog::stderr(),
    });
    let settings = Settings {
        policy: policy(global)?,
        current: current_key(global)?,
        old: old_keys(global)?,
        legacy: global.legacy_schemes.iter().map(|l| legacy(*l)).collect(),
    };
    let actor = Actor::admin(operator(global)?);
    let store = open_store(global)?;
    let tokens = settings.tokens(store.clone()).with_events(audit.clone());
    Ok(Ctx {
        tokens,
        store,
        settings,
        actor,
        audit,
    })
}

/// The startup check: the store's hashes against the configured keys. A default key in use
/// is said on stderr.
///
/// # Errors
/// [`StoreError::HashKeysMissing`](api_tokens::StoreError::HashKeysMissing) naming the keys
/// (or legacy schemes) the store needs; store failures.
pub fn check_keys(tokens: &Tokens<Store>) -> Result<HashKeyReport, CliError> {
    let report = tokens.check_hash_keys()?;
    if report.current_is_default {
        eprintln!(
            "warning: the hash key is the library's public default: anyone holding a copy of \
             this store can test guesses against its hashes"
        );
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_sqlite_paths_from_postgres_strings() {
        let pg = |s: &str| Location::Postgres(s.to_owned());
        let lite = |s: &str| Location::Sqlite(PathBuf::from(s));
        for (given, expected) in [
            ("tokens.db", lite("tokens.db")),
            ("/var/lib/app/tokens.db", lite("/var/lib/app/tokens.db")),
            ("sqlite:tokens.db", lite("tokens.db")),
            (
                "sqlite:///var/lib/app/tokens.db",
                lite("/var/lib/app/tokens.db"),
            ),
            ("sqlite:a=b.db", lite("a=b.db")),
            ("./a b/tokens.db", lite("./a b/tokens.db")),
            ("postgres://app@db/app", pg("postgres://app@db/app")),
            (
                "postgresql://app@db/app?sslmode=verify-full",
                pg("postgresql://app@db/app?sslmode=verify-full"),
            ),
            (
                "host=db user=app dbname=app sslmode=require",
                pg("host=db user=app dbname=app sslmode=require"),
            ),
            ("dbname=app", pg("dbname=app")),
        ] {
            assert_eq!(location(given), expected, "{given}");
        }
    }
}
