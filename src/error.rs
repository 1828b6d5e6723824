//! Errors: one enum per concern, and the top-level [`Error`] the management API returns.

use std::fmt;

use crate::permission::PermissionSet;
use crate::token::{TokenId, UserId};

/// A `Result` whose error defaults to the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which field of a token (or of a call) a problem is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// The token's name.
    Name,
    /// The token's description.
    Description,
    /// The token's owner (Zabbix `userid`).
    Owner,
    /// A user id.
    UserId,
    /// The expiry.
    Expiry,
    /// The permission list (cPanel ACLs).
    Permissions,
    /// The IP allowlist (cPanel `whitelist_ip`).
    Allowlist,
    /// A token id.
    TokenId,
    /// The prefix of the secret format.
    SecretPrefix,
    /// A query parameter.
    Query,
    /// The grace period of a regenerated secret.
    Grace,
    /// An imported token's hash in another system's scheme ([`LegacyHash`](crate::LegacyHash)).
    LegacyHash,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Name => "name",
            Self::Description => "description",
            Self::Owner => "owner",
            Self::UserId => "user id",
            Self::Expiry => "expiry",
            Self::Permissions => "permission",
            Self::Allowlist => "allowlist entry",
            Self::TokenId => "token id",
            Self::SecretPrefix => "secret prefix",
            Self::Query => "query",
            Self::Grace => "grace period",
            Self::LegacyHash => "legacy hash",
        })
    }
}

/// What is wrong with a value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// Required but empty.
    Empty,
    /// Longer than allowed (in characters).
    TooLong {
        /// The limit.
        max: usize,
    },
    /// A character the rule does not allow.
    InvalidCharacter {
        /// The first offending character.
        ch: char,
    },
    /// Must start with a letter.
    MustStartWithLetter,
    /// Leading or trailing whitespace.
    SurroundingWhitespace,
    /// Not of the expected syntax (an address, a number, a wildcard in the wrong place).
    Syntax {
        /// What was expected.
        expected: &'static str,
    },
    /// An expiry at or before the current instant, where the policy refuses it.
    InThePast,
    /// An expiry further away than the policy's maximum lifetime.
    LifetimeTooLong {
        /// The maximum lifetime in seconds.
        max_seconds: i64,
    },
    /// More entries than allowed.
    TooMany {
        /// The limit.
        max: usize,
    },
    /// The name is already used by another token of the same owner.
    NameTaken {
        /// The owner.
        owner: UserId,
    },
    /// The same value appears twice in one batch.
    Duplicate,
    /// The user is unknown to the directory.
    UnknownUser,
    /// The user exists but is not active.
    InactiveUser,
    /// A CIDR range with bits set past its prefix (`10.0.0.1/8`): refused rather than silently
    /// widened, naming the network the entry probably meant (as PostgreSQL's `cidr` does).
    HostBitsSet {
        /// The network form of the entry (`10.0.0.0/8`).
        network: ipnet::IpNet,
    },
    /// A list with an empty item between separators (`" , "`, `"a,,b"`, `"a,"`).
    EmptyItem,
    /// A list (a query filter) carries more values than allowed.
    TooManyValues {
        /// How many it carries.
        found: usize,
        /// The limit.
        max: usize,
    },
    /// A grace period longer than the policy's maximum.
    GraceTooLong {
        /// The maximum grace period in seconds.
        max_seconds: i64,
    },
    /// An imported hash in a legacy scheme the `Tokens` does not honour
    /// ([`Tokens::with_legacy_scheme`](crate::Tokens::with_legacy_scheme)): its secret could
    /// never authenticate.
    SchemeNotHonoured,
}

/// A value was refused: which field, the offending value (never a secret), and why.
///
/// ```
/// use api_tokens::TokenName;
/// let err = TokenName::new("").unwrap_err();
/// assert_eq!(err.to_string(), "name \"\" cannot be empty");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} \"{value}\" {problem}")]
pub struct ValidationError {
    /// The field.
    pub field: Field,
    /// The offending value as given (cut to 100 characters).
    pub value: String,
    /// What is wrong with it.
    pub problem: Problem,
}

impl ValidationError {
    /// A new validation error; the value is cut to 100 characters so errors stay bounded.
    pub fn new(field: Field, value: impl fmt::Display, problem: Problem) -> Self {
        let mut value = value.to_string();
        if let Some((cut, _)) = value.char_indices().nth(100) {
            value.truncate(cut);
            value.push('…');
        }
        Self {
            field,
            value,
            problem,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("cannot be empty"),
            Self::TooLong { max } => write!(f, "is too long (at most {max} characters)"),
            Self::InvalidCharacter { ch } => write!(f, "contains the invalid character {ch:?}"),
            Self::MustStartWithLetter => f.write_str("must start with a letter"),
            Self::SurroundingWhitespace => f.write_str("cannot start or end with whitespace"),
            Self::Syntax { expected } => write!(f, "is not {expected}"),
            Self::InThePast => f.write_str("is not in the future"),
            Self::LifetimeTooLong { max_seconds } => {
                write!(f, "is more than {max_seconds} seconds away")
            }
            Self::TooMany { max } => write!(f, "is one too many (at most {max} entries)"),
            Self::NameTaken { owner } => write!(f, "already exists for owner \"{owner}\""),
            Self::Duplicate => f.write_str("appears more than once in the batch"),
            Self::UnknownUser => f.write_str("is not a known user"),
            Self::InactiveUser => f.write_str("is not an active user"),
            Self::HostBitsSet { network } => {
                write!(f, "has host bits set (the network is {network})")
            }
            Self::EmptyItem => f.write_str("has an empty item between separators"),
            Self::TooManyValues { found, max } => {
                write!(f, "has {found} values (at most {max} are allowed)")
            }
            Self::GraceTooLong { max_seconds } => {
                write!(f, "is longer than the maximum of {max_seconds} seconds")
            }
            Self::SchemeNotHonoured => f.write_str(
                "is in a legacy scheme that is not honoured (enable it with Tokens::with_legacy_scheme)",
            ),
        }
    }
}

/// Why a presented string is not a well-formed secret. Never contains the presented text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedSecret {
    /// Nothing was presented.
    #[error("empty secret")]
    Empty,
    /// Longer than any secret can be; refused before any other work.
    #[error("secret longer than {max} bytes")]
    TooLong {
        /// The bound.
        max: usize,
    },
    /// The prefix of the format is missing.
    #[error("secret does not carry the expected prefix")]
    WrongPrefix,
    /// The length does not match the format.
    #[error("secret has length {found}, expected {expected}")]
    WrongLength {
        /// The format's length.
        expected: usize,
        /// The presented length.
        found: usize,
    },
    /// A character outside the format's alphabet.
    #[error("secret has an invalid character at byte {position}")]
    InvalidCharacter {
        /// Byte offset of the first offending character.
        position: usize,
    },
    /// The checksum does not match (a typo, or not one of our secrets).
    #[error("secret checksum does not match")]
    BadChecksum,
    /// A stored hash is not 64 hex digits.
    #[error("secret hash is not 64 hex digits")]
    InvalidHash,
}

/// Errors of a [`TokenStore`](crate::store::TokenStore). Backend errors keep their source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another token of the same owner has this name (`UNIQUE(owner, name)`).
    #[error("name \"{name}\" already exists for owner \"{owner}\"")]
    NameTaken {
        /// The owner.
        owner: UserId,
        /// The name.
        name: String,
    },
    /// A token with this id exists already.
    #[error("token id {0} already exists")]
    IdTaken(TokenId),
    /// Another token already has this secret hash.
    #[error("secret hash already in use")]
    HashTaken,
    /// The token changed since it was read (its revision moved on); nothing was written.
    #[error("token {0} was changed concurrently")]
    Conflict(TokenId),
    /// The token to replace or delete does not exist.
    #[error("token {0} does not exist")]
    NotFound(TokenId),
    /// No ids are left to hand out.
    #[error("token ids exhausted")]
    IdsExhausted,
    /// A snapshot could not be restored.
    #[error("invalid snapshot: {0}")]
    InvalidSnapshot(String),
    /// The backend failed (I/O, driver, poisoned lock).
    #[error("store backend failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A record is in a state no valid token can be in (a previous secret hash without an end
    /// time, a revoked token that is enabled or still has a secret, …). Refused, never read as
    /// something that works: the record was written by something other than the crate.
    #[error("token {token} is stored in an inconsistent state: {problem}")]
    Inconsistent {
        /// The token.
        token: TokenId,
        /// The rule the record breaks.
        problem: &'static str,
    },
    /// The database is locked by another connection that is writing, and stayed locked for as
    /// long as the store waits (its busy timeout). Nothing was changed; try again later.
    #[error(
        "the database is locked by another connection that is writing; gave up after waiting {} ms",
        .waited.as_millis()
    )]
    Busy {
        /// How long the store waited for the lock.
        waited: std::time::Duration,
    },
    /// A sealed snapshot was made under another hash key than the one it is opened with.
    #[error(
        "snapshot was sealed under hash key {snapshot}, not under this key ({expected}): open it with the key it was made with"
    )]
    SnapshotKeyMismatch {
        /// The key id the snapshot carries.
        snapshot: crate::secret::KeyId,
        /// The id of the key it was opened with.
        expected: crate::secret::KeyId,
    },
    /// A sealed snapshot's contents do not match its seal: it was changed after it was made.
    #[error(
        "snapshot seal does not match its contents: the snapshot was changed after it was made"
    )]
    SnapshotTampered,
    /// The database's schema is newer than this version of the crate knows: another process
    /// runs a newer release. Nothing was read or written; upgrade this process.
    #[error("database schema version {found} is newer than this crate supports ({supported})")]
    SchemaTooNew {
        /// The version recorded in the database.
        found: i64,
        /// The newest version this crate knows.
        supported: i64,
    },
    /// A replica could not confirm it is current within its staleness bound (database
    /// unreachable, listener down): it refuses to authenticate until it has caught up.
    #[error("replica not confirmed current for {unconfirmed_for:?} (bound exceeded)")]
    Stale {
        /// How long since the replica last confirmed it was current (`Duration::MAX` if it
        /// never was).
        unconfirmed_for: std::time::Duration,
    },
    /// A store was configured with a value it cannot work with.
    #[error("invalid store configuration: {0}")]
    Config(String),
    /// The store holds secret hashes made under hash keys the [`Tokens`](crate::Tokens) does
    /// not hold (or in legacy schemes it does not honour): the secrets they stand for could
    /// never match, so the store is refused rather than every such token answered "unknown".
    /// Configure the key that made them (as the current key, or as an old key for
    /// verification), or honour the scheme; see "Rotating the hash key" in the README.
    #[error("{}", hash_keys_missing(missing, legacy, held))]
    HashKeysMissing {
        /// Each key id hashes were made under that is not held, with how many hashes.
        missing: Vec<(crate::secret::KeyId, u64)>,
        /// Each legacy scheme imported hashes use that is not honoured, with how many.
        legacy: Vec<(crate::legacy::LegacyScheme, u64)>,
        /// The ids of the keys held, the current one first.
        held: Vec<crate::secret::KeyId>,
    },
}

fn hash_keys_missing(
    missing: &[(crate::secret::KeyId, u64)],
    legacy: &[(crate::legacy::LegacyScheme, u64)],
    held: &[crate::secret::KeyId],
) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        let keys: Vec<String> = missing
            .iter()
            .map(|(k, n)| format!("{k} ({n} hash{})", if *n == 1 { "" } else { "es" }))
            .collect();
        let held: Vec<String> = held
            .iter()
            .enumerate()
            .map(|(i, k)| {
                if i == 0 {
                    format!("{k} (current)")
                } else {
                    k.to_string()
                }
            })
            .collect();
        parts.push(format!(
            "stored secret hashes were made under hash key(s) {} that are not configured \
             (configured: {}): configure the key that made them, as the current key or as an \
             old key",
            keys.join(", "),
            held.join(", ")
        ));
    }
    if !legacy.is_empty() {
        let schemes: Vec<String> = legacy
            .iter()
            .map(|(l, n)| format!("{l} ({n} hash{})", if *n == 1 { "" } else { "es" }))
            .collect();
        parts.push(format!(
            "imported hashes use legacy scheme(s) {} that are not honoured: enable them \
             with Tokens::with_legacy_scheme",
            schemes.join(", ")
        ));
    }
    parts.join("; ")
}

impl StoreError {
    /// Wraps any backend error, keeping it as the source.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(e))
    }
}

/// Why an actor may not do what it asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Forbidden {
    /// The actor's role does not allow managing API tokens at all.
    #[error("not allowed to manage API tokens")]
    CannotManageTokens,
    /// The actor may only manage its own tokens.
    #[error("not allowed to manage tokens of other users")]
    OtherUsersTokens,
    /// The token would get permissions the actor does not hold itself.
    #[error("cannot grant permissions the actor does not hold: {missing}")]
    PermissionsBeyondActor {
        /// Every permission the actor lacks.
        missing: PermissionSet,
    },
}

fn item(index: &Option<usize>) -> String {
    index.map(|i| format!("item {i}: ")).unwrap_or_default()
}

/// The error of every management operation of [`Tokens`](crate::Tokens).
///
/// Batch operations are all-or-nothing: on any error nothing was changed. `index` is the
/// 0-based position of the offending item in the batch (`None` for single-item calls or problems
/// of the whole call).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value was refused.
    #[error("{}{source}", item(.index))]
    Invalid {
        /// Position in the batch.
        index: Option<usize>,
        /// What was refused.
        #[source]
        source: ValidationError,
    },
    /// The actor may not do this.
    #[error("{}{source}", item(.index))]
    Forbidden {
        /// Position in the batch.
        index: Option<usize>,
        /// Why.
        #[source]
        source: Forbidden,
    },
    /// The token does not exist, or the actor may not see it: the two are not told apart (as in
    /// Zabbix, "No permissions to referred object or it does not exist!").
    #[error("{}no permissions to referred object or it does not exist", item(.index))]
    NotFound {
        /// Position in the batch.
        index: Option<usize>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The token was revoked by possession of its secret ([`Tokens::revoke_by_secret`]): that
    /// is final. It cannot be enabled again or given a new secret; issue a new token instead.
    ///
    /// [`Tokens::revoke_by_secret`]: crate::Tokens::revoke_by_secret
    #[error(
        "{}token {token} was revoked because its secret was reported leaked: it cannot be enabled again or given a new secret",
        item(.index)
    )]
    Revoked {
        /// Position in the batch.
        index: Option<usize>,
        /// The token.
        token: TokenId,
    },
}

impl Error {
    pub(crate) fn invalid(index: Option<usize>, source: ValidationError) -> Self {
        Self::Invalid { index, source }
    }

    pub(crate) fn forbidden(index: Option<usize>, source: Forbidden) -> Self {
        Self::Forbidden { index, source }
    }

    /// The batch position the error is about, if any.
    pub fn index(&self) -> Option<usize> {
        match self {
            Self::Invalid { index, .. }
            | Self::Forbidden { index, .. }
            | Self::NotFound { index }
            | Self::Revoked { index, .. } => *index,
            Self::Store(_) => None,
        }
    }
}

impl From<ValidationError> for Error {
    fn from(source: ValidationError) -> Self {
        Self::Invalid {
            index: None,
            source,
        }
    }
}

impl From<Forbidden> for Error {
    fn from(source: Forbidden) -> Self {
        Self::Forbidden {
            index: None,
            source,
        }
    }
}
