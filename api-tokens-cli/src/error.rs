//! What can go wrong, each with a stable code and an exit code: the library's errors keep their
//! own codes; the CLI adds a few of its own.

use std::path::PathBuf;

use api_tokens::{HashKeyError, StoreError, TokenId, ValidationError};

/// The documented exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 1: refused or not found.
    Refused = 1,
    /// 2: the command line is not understood.
    Usage = 2,
    /// 3: the store or the hash keys (or a file the CLI must write).
    Environment = 3,
}

/// Where a hash key was read from (never the key).
#[derive(Clone, Debug)]
pub enum KeyOrigin {
    /// An environment variable.
    Env(&'static str),
    /// A file.
    File(PathBuf),
}

impl std::fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env(var) => write!(f, "the hash key in {var}"),
            Self::File(path) => write!(f, "the hash key in {}", path.display()),
        }
    }
}

/// A problem with one row of an import file.
#[derive(Debug, thiserror::Error)]
pub enum RowProblem {
    /// A required column is missing from the header.
    #[error("the header has no column \"{0}\"")]
    MissingColumn(&'static str),
    /// A column that must hold an integer does not.
    #[error("\"{column}\" is not an integer: \"{value}\"")]
    NotAnInteger {
        /// The column.
        column: &'static str,
        /// What it holds.
        value: String,
    },
    /// A status other than 0 (enabled) or 1 (disabled).
    #[error("status {0} is neither 0 (enabled) nor 1 (disabled)")]
    Status(i64),
    /// A Unix time out of range.
    #[error("\"{column}\" {value} is not a representable time")]
    Time {
        /// The column.
        column: &'static str,
        /// Its value.
        value: i64,
    },
    /// A user id with no entry in the mapping file.
    #[error("{column} {userid} is not in the user mapping file")]
    Unmapped {
        /// The column.
        column: &'static str,
        /// Zabbix's user id.
        userid: String,
    },
    /// The same Zabbix user id twice in the mapping file.
    #[error("userid {0} is mapped twice")]
    MappedTwice(String),
    /// A value the library refused (a name, a user id, a hash).
    #[error("{0}")]
    Value(#[from] ValidationError),
    /// The CSV reader refused the file.
    #[error("{0}")]
    Csv(#[from] csv::Error),
    /// A file with a header and no rows.
    #[error("the file holds no rows after its header")]
    NoRows,
    /// More rows than an import takes at once.
    #[error("more than {0} rows: split the file")]
    TooManyRows(usize),
}

/// A row of an import file, refused.
#[derive(Debug, thiserror::Error)]
#[error("{}, line {line}{}: {problem}", file.display(), tokenid.as_ref().map(|t| format!(" (Zabbix token {t})")).unwrap_or_default())]
pub struct RowError {
    /// The file.
    pub file: PathBuf,
    /// The line (1-based; the header is line 1).
    pub line: u64,
    /// Zabbix's token id, when read.
    pub tokenid: Option<String>,
    /// What is wrong.
    #[source]
    pub problem: RowProblem,
}

impl RowError {
    /// The error for `problem` at `line` of `file`.
    pub fn at(
        file: &std::path::Path,
        line: u64,
        tokenid: Option<String>,
        problem: RowProblem,
    ) -> CliError {
        CliError::Row(Box::new(Self {
            file: file.to_path_buf(),
            line,
            tokenid,
            problem,
        }))
    }
}

/// An import item the library refused, with the row it came from.
#[derive(Debug, thiserror::Error)]
#[error("{source}\n  item {} is Zabbix token {tokenid}, line {line} of {}", index + 1, file.display())]
pub struct ItemError {
    /// The library's error.
    #[source]
    pub source: api_tokens::Error,
    /// The item's 0-based index.
    pub index: usize,
    /// Zabbix's token id.
    pub tokenid: String,
    /// The line.
    pub line: u64,
    /// The file.
    pub file: PathBuf,
}

/// Everything the CLI reports as an error.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The library refused, or failed.
    #[error(transparent)]
    Api(#[from] api_tokens::Error),
    /// The store failed (opening it, or the key check).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A value given on the command line the library refused.
    #[error("{0}")]
    Value(#[from] ValidationError),
    /// The command line holds something the parser could not refuse by itself.
    #[error("{0}")]
    Usage(String),
    /// No store named.
    #[error(
        "no database: set API_TOKENS_DATABASE or pass --database (a SQLite file or a PostgreSQL connection string)"
    )]
    NoDatabase,
    /// A SQLite path that does not exist.
    #[error(
        "there is no database file at {0} (check the path, or pass --create-database to make a new one)"
    )]
    NoSuchDatabase(PathBuf),
    /// A kind of store this build cannot open.
    #[cfg_attr(all(feature = "sqlite", feature = "postgres"), allow(dead_code))]
    #[error(
        "this build of api-tokens cannot open {kind} stores (build it with the feature \"{feature}\")"
    )]
    StoreNotBuilt {
        /// The kind.
        kind: &'static str,
        /// The feature.
        feature: &'static str,
    },
    /// No hash key given.
    #[error(
        "no hash key: set API_TOKENS_HASH_KEY or pass --hash-key-file (or --default-hash-key for a store whose host uses the public default key)"
    )]
    NoHashKey,
    /// A hash key that does not read.
    #[error("{origin}: {source}")]
    HashKey {
        /// Where it was read from.
        origin: KeyOrigin,
        /// Why it does not read.
        #[source]
        source: HashKeyError,
    },
    /// A hash key file that is not text or too large.
    #[error("{0}: not a hash key file (64 hex digits or base64 on one line)")]
    KeyFileShape(KeyOrigin),
    /// A file could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    File {
        /// What was tried.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
    /// A file that would be overwritten.
    #[error("{} exists already: it is never overwritten (choose a new path); nothing was changed", .0.display())]
    FileExists(PathBuf),
    /// Tokens asked for by id that do not exist.
    #[error("{}", not_found(.0))]
    NotFound(Vec<TokenId>),
    /// A filter that matches no token.
    #[error("no token matches; nothing was changed")]
    NoMatch,
    /// The operator did not confirm.
    #[error(
        "not confirmed; nothing was changed (pass --yes to change several tokens without a question)"
    )]
    Declined,
    /// What stdin held is not one secret.
    #[error("{0}")]
    SecretInput(&'static str),
    /// The secret has the shape of no secret this store knows.
    #[error("this is not a secret of this store's shape ({expected}); nothing was revoked")]
    SecretShape {
        /// What secrets look like here.
        expected: String,
    },
    /// No token has the secret.
    #[error(
        "no token has this secret (it may have been revoked or deleted already); nothing was revoked"
    )]
    UnknownSecret,
    /// The library reported a revocation outcome this CLI does not know.
    #[error(
        "the library reported an outcome this api-tokens does not know ({0}): check with 'api-tokens list'"
    )]
    UnknownOutcome(String),
    /// A row of an import file is refused.
    #[error(transparent)]
    Row(Box<RowError>),
    /// The library refused an import item; the row it came from.
    #[error(transparent)]
    ImportItem(Box<ItemError>),
    /// The change was made but its audit line could not be written.
    #[error("the change was made, but its audit line could not be written: {0}")]
    Audit(#[source] std::io::Error),
    /// Output could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
    /// A new secret could not be handed over: the token has it, nobody else does.
    #[error("token {id} has a new secret, but it could not be written ({source}): regenerate it")]
    SecretLost {
        /// The token.
        id: TokenId,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// "token 7 not found", or the first ids of many (an error stays a line or two).
fn not_found(ids: &[TokenId]) -> String {
    const SHOWN: usize = 20;
    let list: Vec<String> = ids.iter().take(SHOWN).map(ToString::to_string).collect();
    match (list.as_slice(), ids.len()) {
        ([one], 1) => format!("token {one} not found"),
        (_, n) if n > SHOWN => format!(
            "{n} tokens not found: {} and {} more",
            list.join(", "),
            n - SHOWN
        ),
        _ => format!("tokens {} not found", list.join(", ")),
    }
}

impl CliError {
    /// The stable code: the library's for its errors, the CLI's own otherwise.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Api(e) => e.code(),
            Self::ImportItem(e) => e.source.code(),
            Self::Store(e) => e.code(),
            Self::Value(e) => e.problem.code(),
            Self::Usage(_) => "usage",
            Self::NoDatabase => "no_database",
            Self::NoSuchDatabase(_) => "no_such_database",
            Self::StoreNotBuilt { .. } => "store_not_built",
            Self::NoHashKey => "no_hash_key",
            Self::HashKey { .. } | Self::KeyFileShape(_) => "invalid_hash_key",
            Self::File { .. } => "file_error",
            Self::FileExists(_) => "file_exists",
            Self::NotFound(_) => "not_found",
            Self::NoMatch => "no_match",
            Self::Declined => "declined",
            Self::SecretInput(_) => "no_secret",
            Self::SecretShape { .. } => "malformed_secret",
            Self::UnknownSecret => "unknown_secret",
            Self::UnknownOutcome(_) => "unknown_outcome",
            Self::Row(_) => "invalid_row",
            Self::Audit(_) => "audit_failed",
            Self::Output(_) => "output_failed",
            Self::SecretLost { .. } => "secret_lost",
        }
    }

    /// The exit code (see [`Exit`]).
    pub fn exit(&self) -> Exit {
        match self {
            Self::Api(e) => library_exit(e),
            Self::ImportItem(e) => library_exit(&e.source),
            Self::Value(_)
            | Self::FileExists(_)
            | Self::NotFound(_)
            | Self::NoMatch
            | Self::Declined
            | Self::SecretInput(_)
            | Self::SecretShape { .. }
            | Self::UnknownSecret
            | Self::Row(_) => Exit::Refused,
            Self::Usage(_) => Exit::Usage,
            Self::Store(e) => store_exit(e),
            Self::NoDatabase
            | Self::NoSuchDatabase(_)
            | Self::StoreNotBuilt { .. }
            | Self::NoHashKey
            | Self::HashKey { .. }
            | Self::KeyFileShape(_)
            | Self::File { .. }
            | Self::Audit(_)
            | Self::UnknownOutcome(_)
            | Self::Output(_)
            | Self::SecretLost { .. } => Exit::Environment,
        }
    }

    /// A line of advice for the operator, when there is one.
    pub fn hint(&self) -> Option<&'static str> {
        let store = match self {
            Self::Store(e) => Some(e),
            Self::Api(api_tokens::Error::Store(e)) => Some(e),
            _ => None,
        };
        match store {
            Some(StoreError::HashKeysMissing {
                legacy, missing, ..
            }) => Some(if missing.is_empty() && !legacy.is_empty() {
                "configure the CLI as the host: --legacy-scheme SCHEME (or API_TOKENS_LEGACY_SCHEMES) for each scheme named"
            } else {
                "configure the key that made them: API_TOKENS_HASH_KEY or --hash-key-file for the current key, --old-hash-key-file or API_TOKENS_OLD_HASH_KEY for an old one ('api-tokens keys status' shows what each key backs)"
            }),
            Some(StoreError::Conflict(_) | StoreError::Busy { .. }) => {
                Some("nothing was changed; try again")
            }
            Some(StoreError::HashTaken) => Some(
                "a token with one of these secrets is in the store already (was the file imported before?); nothing was changed",
            ),
            _ => None,
        }
    }
}

/// The library's errors: a refusal is 1, a store failure 3.
fn library_exit(e: &api_tokens::Error) -> Exit {
    match e {
        api_tokens::Error::Store(e) => store_exit(e),
        _ => Exit::Refused,
    }
}

/// A store's errors are 3 (the store, or the keys), except the constraints it enforces on
/// what it was asked to write: a name or a secret hash some stored token has already is a
/// refusal (1), like the library's own checks of the same.
fn store_exit(e: &StoreError) -> Exit {
    match e {
        StoreError::NameTaken { .. } | StoreError::HashTaken => Exit::Refused,
        _ => Exit::Environment,
    }
}

/// A file operation's error with its path.
pub fn file_error(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> CliError {
    let path = path.to_path_buf();
    move |source| CliError::File {
        action,
        path,
        source,
    }
}
