//! Errors: one enum per concern, and the top-level [`Error`] the management API returns.

use std::fmt;

use crate::permission::PermissionSet;
use crate::token::{TokenId, UserId};

/// A `Result` whose error defaults to the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which field of a token (or of a call) a problem is about.
///
/// [`Field::as_str`] is a stable snake_case name for programs (an API's `"field"` member);
/// `Display` is the label used in messages.
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
    /// An imported token's hash in another system's scheme ([`LegacyHash`](crate::legacy::LegacyHash)).
    LegacyHash,
    /// An imported token's creation time.
    CreatedAt,
    /// An imported token's last use.
    LastUse,
    /// A usage limit or rate limit ([`Limits`](crate::limits::Limits)).
    Limits,
}

impl Field {
    /// The stable snake_case name: `name`, `description`, `owner`, `user_id`, `expiry`,
    /// `permissions`, `allowlist`, `token_id`, `secret_prefix`, `query`, `grace_period`,
    /// `legacy_hash`, `created_at`, `last_use`, `limits`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Description => "description",
            Self::Owner => "owner",
            Self::UserId => "user_id",
            Self::Expiry => "expiry",
            Self::Permissions => "permissions",
            Self::Allowlist => "allowlist",
            Self::TokenId => "token_id",
            Self::SecretPrefix => "secret_prefix",
            Self::Query => "query",
            Self::Grace => "grace_period",
            Self::LegacyHash => "legacy_hash",
            Self::CreatedAt => "created_at",
            Self::LastUse => "last_use",
            Self::Limits => "limits",
        }
    }
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
            Self::CreatedAt => "creation time",
            Self::LastUse => "last use",
            Self::Limits => "limits",
        })
    }
}

/// What is wrong with a value. [`Problem::code`] is its stable snake_case name.
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
    /// Not of the expected syntax (an address, a number).
    Syntax {
        /// What was expected.
        expected: &'static str,
    },
    /// A permission with `*` anywhere but as the whole name or its whole last segment.
    MisplacedWildcard,
    /// A permission with an empty segment (two dots in a row, or a dot at either end).
    EmptySegment,
    /// A negative duration where only zero or more makes sense.
    Negative,
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
    /// The name is already used by another token of the same owner (in the store, or earlier
    /// in the same batch).
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
    /// The policy requires the value and none was given ([`Policy::require_permissions`]).
    ///
    /// [`Policy::require_permissions`]: crate::Policy::require_permissions
    Required,
    /// An imported hash in a legacy scheme the `Tokens` does not honour
    /// (`Tokens::with_legacy_scheme`, feature `legacy`): its secret could
    /// never authenticate.
    SchemeNotHonoured,
    /// A time outside the range allowed: an imported creation or last-use time before
    /// 1970-01-01T00:00:00Z or after the current instant.
    OutOfRange,
    /// An imported hash an existing token was imported from already
    /// ([`Tokens::import`](crate::Tokens::import)): a second token would open with the same
    /// secret.
    AlreadyImported {
        /// The existing token.
        token: TokenId,
    },
}

impl Problem {
    /// The stable snake_case code of the problem; [`Error::code`] of an [`Error::Invalid`].
    ///
    /// | problem | code |
    /// | --- | --- |
    /// | [`Empty`](Problem::Empty) | `empty` |
    /// | [`TooLong`](Problem::TooLong) | `too_long` |
    /// | [`InvalidCharacter`](Problem::InvalidCharacter) | `invalid_character` |
    /// | [`MustStartWithLetter`](Problem::MustStartWithLetter) | `must_start_with_letter` |
    /// | [`SurroundingWhitespace`](Problem::SurroundingWhitespace) | `surrounding_whitespace` |
    /// | [`Syntax`](Problem::Syntax) | `invalid_syntax` |
    /// | [`MisplacedWildcard`](Problem::MisplacedWildcard) | `misplaced_wildcard` |
    /// | [`EmptySegment`](Problem::EmptySegment) | `empty_segment` |
    /// | [`Negative`](Problem::Negative) | `negative` |
    /// | [`InThePast`](Problem::InThePast) | `expiry_not_in_future` |
    /// | [`LifetimeTooLong`](Problem::LifetimeTooLong) | `lifetime_too_long` |
    /// | [`TooMany`](Problem::TooMany) | `too_many` |
    /// | [`NameTaken`](Problem::NameTaken) | `name_taken` |
    /// | [`Duplicate`](Problem::Duplicate) | `duplicate_in_batch` |
    /// | [`UnknownUser`](Problem::UnknownUser) | `unknown_user` |
    /// | [`InactiveUser`](Problem::InactiveUser) | `inactive_user` |
    /// | [`HostBitsSet`](Problem::HostBitsSet) | `host_bits_set` |
    /// | [`EmptyItem`](Problem::EmptyItem) | `empty_item` |
    /// | [`TooManyValues`](Problem::TooManyValues) | `too_many_values` |
    /// | [`GraceTooLong`](Problem::GraceTooLong) | `grace_too_long` |
    /// | [`Required`](Problem::Required) | `required` |
    /// | [`SchemeNotHonoured`](Problem::SchemeNotHonoured) | `scheme_not_honoured` |
    /// | [`OutOfRange`](Problem::OutOfRange) | `out_of_range` |
    /// | [`AlreadyImported`](Problem::AlreadyImported) | `already_imported` |
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::TooLong { .. } => "too_long",
            Self::InvalidCharacter { .. } => "invalid_character",
            Self::MustStartWithLetter => "must_start_with_letter",
            Self::SurroundingWhitespace => "surrounding_whitespace",
            Self::Syntax { .. } => "invalid_syntax",
            Self::MisplacedWildcard => "misplaced_wildcard",
            Self::EmptySegment => "empty_segment",
            Self::Negative => "negative",
            Self::InThePast => "expiry_not_in_future",
            Self::LifetimeTooLong { .. } => "lifetime_too_long",
            Self::TooMany { .. } => "too_many",
            Self::NameTaken { .. } => "name_taken",
            Self::Duplicate => "duplicate_in_batch",
            Self::UnknownUser => "unknown_user",
            Self::InactiveUser => "inactive_user",
            Self::HostBitsSet { .. } => "host_bits_set",
            Self::EmptyItem => "empty_item",
            Self::TooManyValues { .. } => "too_many_values",
            Self::GraceTooLong { .. } => "grace_too_long",
            Self::Required => "required",
            Self::SchemeNotHonoured => "scheme_not_honoured",
            Self::OutOfRange => "out_of_range",
            Self::AlreadyImported { .. } => "already_imported",
        }
    }

    /// The HTTP status that fits: `409 Conflict` for a taken name or a hash imported already,
    /// `400 Bad Request` for every other problem.
    pub const fn http_status(&self) -> u16 {
        match self {
            Self::NameTaken { .. } | Self::AlreadyImported { .. } => 409,
            _ => 400,
        }
    }
}

/// A value was refused: which field, the offending value (never a secret), and why.
///
/// Messages name the field and quote the value; times are written in RFC 3339 with the Unix
/// seconds beside them (`expiry 2021-01-21T14:07:52Z (Unix time 1611238072) is not in the
/// future`).
///
/// ```
/// use api_tokens::{Permission, TokenName};
/// let err = TokenName::new("").unwrap_err();
/// assert_eq!(err.to_string(), "name cannot be empty");
/// assert_eq!(err.code(), "empty");
/// let err = Permission::new("reports:*").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "permission \"reports:*\" has a wildcard in the wrong place: \
///      \"*\" is either the whole permission or its whole last segment, as in \"reports.*\""
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct ValidationError {
    /// The field.
    pub field: Field,
    /// The offending value as given (cut to 100 characters); a time is written as RFC 3339
    /// followed by its Unix seconds.
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

    /// The problem's stable code (see [`Problem::code`]).
    pub const fn code(&self) -> &'static str {
        self.problem.code()
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = self.field;
        match &self.problem {
            Problem::Empty => write!(f, "{field} cannot be empty"),
            Problem::Required if field == Field::Permissions => f.write_str(
                "permissions are required: list the ones the token needs (for example \
                 \"reports.read\"), or give \"*\" for all of its owner's rights",
            ),
            Problem::Required => write!(f, "{field} is required"),
            Problem::MisplacedWildcard => {
                let stem = self
                    .value
                    .split('*')
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
                let example = if stem.is_empty() { "dns" } else { stem };
                write!(
                    f,
                    "{field} \"{}\" {}, as in \"{example}.*\"",
                    self.value, self.problem
                )
            }
            Problem::LifetimeTooLong { max_seconds } if self.value == "never" => write!(
                f,
                "{field} cannot be never: the longest lifetime allowed is {}",
                Span(*max_seconds)
            ),
            // Times are not quoted: they read as "expiry 2021-01-21T14:07:52Z (Unix time …)".
            _ if field == Field::Expiry => write!(f, "{field} {} {}", self.value, self.problem),
            _ => write!(f, "{field} \"{}\" {}", self.value, self.problem),
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
            Self::MisplacedWildcard => f.write_str(
                "has a wildcard in the wrong place: \"*\" is either the whole permission or its \
                 whole last segment",
            ),
            Self::EmptySegment => f.write_str(
                "has an empty segment (segments are separated by single dots, none at either end)",
            ),
            Self::Negative => f.write_str("cannot be negative"),
            Self::InThePast => f.write_str("is not in the future"),
            Self::LifetimeTooLong { max_seconds } => write!(
                f,
                "is further away than the longest lifetime allowed ({})",
                Span(*max_seconds)
            ),
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
            Self::GraceTooLong { max_seconds } => write!(
                f,
                "is longer than the longest grace period allowed ({})",
                Span(*max_seconds)
            ),
            Self::Required => f.write_str("is required"),
            Self::SchemeNotHonoured => f.write_str(
                "is in a legacy scheme that is not honoured (enable it with Tokens::with_legacy_scheme)",
            ),
            Self::OutOfRange => {
                f.write_str("is outside the range allowed (from 1970-01-01T00:00:00Z to now)")
            }
            Self::AlreadyImported { token } => write!(
                f,
                "was imported already, as token {token}: importing it again would let one \
                 secret open two tokens"
            ),
        }
    }
}

/// A number of seconds in the largest unit that divides it: `90 days`, `12 hours`, `1 second`.
struct Span(i64);

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let (n, unit) = [(86_400, "day"), (3_600, "hour"), (60, "minute")]
            .into_iter()
            .find(|(size, _)| s != 0 && s % size == 0)
            .map_or((s, "second"), |(size, unit)| (s / size, unit));
        write!(f, "{n} {unit}{}", if n == 1 { "" } else { "s" })
    }
}

/// `t` for a message: RFC 3339 and Unix seconds (`2021-01-21T14:07:52Z (Unix time 1611238072)`),
/// or the seconds alone for a year RFC 3339 cannot write.
pub(crate) fn time_for_message(t: time::OffsetDateTime) -> String {
    let secs = t.unix_timestamp();
    match crate::timefmt::rfc3339(t) {
        Some(text) => format!("{text} (Unix time {secs})"),
        None => format!("Unix time {secs}"),
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
    #[error("token {0} was changed by another request at the same time; nothing was written")]
    Conflict(TokenId),
    /// The token to replace or delete does not exist.
    #[error("token {0} not found")]
    NotFound(TokenId),
    /// No ids are left to hand out.
    #[error("token ids exhausted")]
    IdsExhausted,
    /// A snapshot could not be restored.
    #[error("invalid snapshot: {0}")]
    InvalidSnapshot(String),
    /// The backend failed (I/O, driver, poisoned lock).
    #[error("the token store failed")]
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
    /// verification), or honour the scheme; see [the key rotation guide](crate::guide::key_rotation).
    #[error("{}", hash_keys_missing(missing, legacy, held))]
    HashKeysMissing {
        /// Each key id hashes were made under that is not held, with how many hashes.
        missing: Vec<(crate::secret::KeyId, u64)>,
        /// Each legacy scheme imported hashes use that is not honoured, with how many.
        legacy: Vec<(crate::legacy::LegacyScheme, u64)>,
        /// The ids of the keys held, the current one first.
        held: Vec<crate::secret::KeyId>,
    },
    /// A write that took rights away committed, but the database could not be asked whether
    /// every replica applied it (nor how long their leases run), so nothing proves that every
    /// replica refuses what it took away. It will reach them within their staleness bound;
    /// treat the change as made and not yet confirmed.
    #[error("the change committed (clock value {seq}) but could not be confirmed on every replica")]
    Unconfirmed {
        /// The change clock value the write committed at.
        seq: u64,
        /// Why the replicas could not be asked.
        #[source]
        source: Box<StoreError>,
    },
    /// The store cannot enforce usage limits or rate limits ([`Token::limits`]): a token with
    /// limits is refused on write, and a record with limits found by authentication is refused
    /// (never used as if it had none).
    ///
    /// [`Token::limits`]: crate::Token::limits
    #[error("this store cannot enforce usage limits or rate limits")]
    LimitsUnsupported,
    /// TLS to PostgreSQL was refused: the server's certificate (unknown CA, another host's
    /// name, expired), a server without TLS under an `sslmode` that requires it, or root
    /// certificates that cannot be loaded. Refused at
    /// startup by [`PostgresStore::connect`](crate::store::postgres::PostgresStore::connect),
    /// and on any later reconnection. Never holds credentials.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    #[error("TLS to PostgreSQL{} refused: {cause}", tls_host(host.as_deref()))]
    Tls {
        /// The host whose connection was refused (`None` when no connection was tried: the
        /// root certificates could not be loaded).
        host: Option<String>,
        /// Why.
        cause: crate::store::postgres::TlsFailure,
        /// The underlying error: rustls' for a refused certificate or handshake.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

#[cfg(feature = "postgres")]
fn tls_host(host: Option<&str>) -> String {
    host.map(|h| format!(" at {h}")).unwrap_or_default()
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

    /// The stable snake_case code: `name_taken`, `id_taken`, `hash_taken`,
    /// `concurrent_change`, `not_found`, `ids_exhausted`, `invalid_snapshot`,
    /// `store_unavailable`, `inconsistent_record`, `store_busy`, `snapshot_key_mismatch`,
    /// `snapshot_tampered`, `schema_too_new`, `replica_stale`, `store_misconfigured`,
    /// `hash_keys_missing`, `unconfirmed`, `limits_unsupported`, `tls_refused` (see
    /// [`Error::code`]).
    pub const fn code(&self) -> &'static str {
        match self {
            Self::NameTaken { .. } => "name_taken",
            Self::IdTaken(_) => "id_taken",
            Self::HashTaken => "hash_taken",
            Self::Conflict(_) => "concurrent_change",
            Self::NotFound(_) => "not_found",
            Self::IdsExhausted => "ids_exhausted",
            Self::InvalidSnapshot(_) => "invalid_snapshot",
            Self::Backend(_) => "store_unavailable",
            Self::Inconsistent { .. } => "inconsistent_record",
            Self::Busy { .. } => "store_busy",
            Self::SnapshotKeyMismatch { .. } => "snapshot_key_mismatch",
            Self::SnapshotTampered => "snapshot_tampered",
            Self::SchemaTooNew { .. } => "schema_too_new",
            Self::Stale { .. } => "replica_stale",
            Self::Config(_) => "store_misconfigured",
            Self::HashKeysMissing { .. } => "hash_keys_missing",
            Self::Unconfirmed { .. } => "unconfirmed",
            Self::LimitsUnsupported => "limits_unsupported",
            #[cfg(feature = "postgres")]
            Self::Tls { .. } => "tls_refused",
        }
    }

    /// The HTTP status that fits: `409` for a taken name or a concurrent change (the client may
    /// try again), `404` for a token that is gone, `503` when the backend failed or a replica is
    /// not confirmed current (both pass), `500` for the rest (a store in a state it should
    /// never reach, or one that needs its operator).
    pub const fn http_status(&self) -> u16 {
        match self {
            Self::NameTaken { .. } | Self::Conflict(_) => 409,
            Self::NotFound(_) => 404,
            Self::Backend(_)
            | Self::Busy { .. }
            | Self::Stale { .. }
            | Self::Unconfirmed { .. } => 503,
            Self::IdTaken(_)
            | Self::HashTaken
            | Self::IdsExhausted
            | Self::InvalidSnapshot(_)
            | Self::Inconsistent { .. }
            | Self::SnapshotKeyMismatch { .. }
            | Self::SnapshotTampered
            | Self::SchemaTooNew { .. }
            | Self::Config(_)
            | Self::HashKeysMissing { .. }
            | Self::LimitsUnsupported => 500,
            #[cfg(feature = "postgres")]
            Self::Tls { .. } => 500,
        }
    }
}

/// Why the caller may not do what it asked. Messages speak to the caller ("you").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Forbidden {
    /// The caller's role does not allow managing API tokens at all.
    #[error("you are not allowed to manage API tokens")]
    CannotManageTokens,
    /// The caller may only manage its own tokens.
    #[error("you may only manage your own tokens")]
    OtherUsersTokens,
    /// The token would get permissions the caller does not hold itself.
    #[error("you cannot grant permissions you do not hold: {missing}")]
    PermissionsBeyondActor {
        /// Every permission the caller lacks.
        missing: PermissionSet,
    },
    /// The caller is unknown to the directory or disabled ([`Tokens::actor`]).
    ///
    /// [`Tokens::actor`]: crate::Tokens::actor
    #[error("your user account is unknown or disabled")]
    UserNotActive,
    /// Importing tokens ([`Tokens::import`]) is for an actor that manages every user's tokens:
    /// an import keeps another system's secrets, expiry and times as they are.
    ///
    /// [`Tokens::import`]: crate::Tokens::import
    #[error("only an actor that manages every user's tokens may import tokens")]
    ImportNeedsAdmin,
    /// A caller that came in with an API token may not change that token's own limits
    /// ([`Actor::via_token`](crate::Actor::via_token)): a token never raises its own limits.
    #[error("you cannot change the limits of the token you are using")]
    OwnLimits,
}

impl Forbidden {
    /// The stable snake_case code: `cannot_manage_tokens`, `other_users_tokens`,
    /// `permissions_not_held`, `user_not_active`, `import_needs_admin`, `own_limits`.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::CannotManageTokens => "cannot_manage_tokens",
            Self::OtherUsersTokens => "other_users_tokens",
            Self::PermissionsBeyondActor { .. } => "permissions_not_held",
            Self::UserNotActive => "user_not_active",
            Self::ImportNeedsAdmin => "import_needs_admin",
            Self::OwnLimits => "own_limits",
        }
    }
}

/// `item 2: ` (counting from 1, as people do) when the error is about one item of a batch.
fn item(index: &Option<usize>) -> String {
    index
        .map(|i| format!("item {}: ", i.saturating_add(1)))
        .unwrap_or_default()
}

/// The error of every management operation of [`Tokens`](crate::Tokens).
///
/// Batch operations are all-or-nothing: on any error nothing was changed. When a batch of more
/// than one item is refused because of one item, `index` is that item's 0-based position and
/// the message starts with `item N: ` counting from 1 (`index: Some(1)` reads `item 2: `).
/// Single-item calls ([`Tokens::issue`], [`Tokens::get`]), batches of one item and problems of
/// the whole call carry no index.
///
/// For programs: [`Error::code`] is a stable snake_case code for each condition,
/// [`Error::http_status`] the HTTP status that fits, [`Error::field`] the field at fault. For
/// people: the message (`Display`) in plain words, safe to show the caller (it never holds a
/// secret, and a token the caller may not see reads exactly like one that does not exist).
/// `Serialize` writes all of it as `{"code", "message", "field"?, "index"?}`:
///
/// ```
/// use api_tokens::{Actor, NewToken, Tokens, UserId};
/// let tokens = Tokens::in_memory();
/// let alice = Actor::user(UserId::new("alice")?);
/// let err = tokens.issue(&alice, NewToken::new("deploy".parse()?)).unwrap_err();
/// assert_eq!(err.code(), "required");
/// assert_eq!(err.http_status(), 400);
/// assert_eq!(
///     serde_json::to_value(&err)?,
///     serde_json::json!({
///         "code": "required",
///         "field": "permissions",
///         "message": "permissions are required: list the ones the token needs \
///                     (for example \"reports.read\"), or give \"*\" for all of its owner's rights",
///     })
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`Tokens::issue`]: crate::Tokens::issue
/// [`Tokens::get`]: crate::Tokens::get
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
    /// The caller may not do this.
    #[error("{}{source}", item(.index))]
    Forbidden {
        /// Position in the batch.
        index: Option<usize>,
        /// Why.
        #[source]
        source: Forbidden,
    },
    /// The token does not exist, or the caller may not see it: the two read the same, so that
    /// nobody learns which tokens of other users exist.
    #[error("{}token {id} not found", item(.index))]
    NotFound {
        /// Position in the batch.
        index: Option<usize>,
        /// The token asked for.
        id: TokenId,
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

    /// The batch position the error is about, if any (see [`Error`]).
    pub fn index(&self) -> Option<usize> {
        match self {
            Self::Invalid { index, .. }
            | Self::Forbidden { index, .. }
            | Self::NotFound { index, .. }
            | Self::Revoked { index, .. } => *index,
            Self::Store(_) => None,
        }
    }

    /// The field at fault, for errors about a value.
    pub fn field(&self) -> Option<Field> {
        match self {
            Self::Invalid { source, .. } => Some(source.field),
            Self::Forbidden {
                source: Forbidden::PermissionsBeyondActor { .. },
                ..
            } => Some(Field::Permissions),
            Self::Forbidden { .. }
            | Self::NotFound { .. }
            | Self::Store(_)
            | Self::Revoked { .. } => None,
        }
    }

    /// A stable snake_case code, one per condition, for programs (an API's error code, a
    /// metric label). Codes never change meaning; new conditions get new codes.
    ///
    /// | code | HTTP | when |
    /// | --- | --- | --- |
    /// | [`Problem::code`]: `empty`, `too_long`, `invalid_character`, `must_start_with_letter`, `surrounding_whitespace`, `invalid_syntax`, `misplaced_wildcard`, `empty_segment`, `negative`, `expiry_not_in_future`, `lifetime_too_long`, `too_many`, `duplicate_in_batch`, `unknown_user`, `inactive_user`, `host_bits_set`, `empty_item`, `too_many_values`, `grace_too_long`, `required`, `scheme_not_honoured`, `out_of_range` | 400 | [`Error::Invalid`]: a value was refused; [`Error::field`] says which |
    /// | `name_taken` | 409 | the owner has a token of that name already (in the store, or earlier in the batch) |
    /// | `already_imported` | 409 | an imported hash an existing token was imported from already |
    /// | `cannot_manage_tokens` | 403 | the caller's role does not allow managing tokens |
    /// | `other_users_tokens` | 403 | the caller may only manage its own tokens |
    /// | `permissions_not_held` | 403 | the caller cannot grant permissions it does not hold |
    /// | `user_not_active` | 403 | the caller is unknown to the directory or disabled |
    /// | `import_needs_admin` | 403 | importing tokens needs an actor that manages every user's tokens |
    /// | `own_limits` | 403 | a caller that came in with an API token may not change that token's limits |
    /// | `not_found` | 404 | no such token, or not the caller's to see |
    /// | `revoked` | 409 | the token was revoked by possession of its secret: final, it cannot be enabled or given a new secret |
    /// | `concurrent_change` | 409 | the token kept changing under the call; nothing was written |
    /// | `store_unavailable` | 503 | the store's backend failed |
    /// | `store_busy` | 503 | the database stayed locked by another writer; nothing changed, try again |
    /// | `replica_stale` | 503 | a replica could not confirm it is current within its bound |
    /// | `id_taken`, `hash_taken`, `ids_exhausted`, `invalid_snapshot`, `inconsistent_record` | 500 | a store in a state it should never reach |
    /// | `snapshot_key_mismatch`, `snapshot_tampered` | 500 | a sealed snapshot opened under another key, or changed after it was sealed |
    /// | `schema_too_new`, `store_misconfigured` | 500 | a store its operator must upgrade or configure |
    /// | `limits_unsupported` | 500 | the store cannot enforce usage limits or rate limits (a token with limits was refused) |
    /// | `hash_keys_missing` | 500 | the store's hashes were made under hash keys (or legacy schemes) this `Tokens` is not configured with |
    /// | `tls_refused` | 500 | TLS to PostgreSQL was refused (feature `postgres`): the server's certificate, a server without TLS, or root certificates that cannot be loaded |
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Invalid { source, .. } => source.problem.code(),
            Self::Forbidden { source, .. } => source.code(),
            Self::NotFound { .. } => "not_found",
            Self::Revoked { .. } => "revoked",
            Self::Store(e) => e.code(),
        }
    }

    /// The HTTP status that fits the error (see the table at [`Error::code`]): a hint for
    /// hosts that answer over HTTP; the crate itself speaks no HTTP.
    pub const fn http_status(&self) -> u16 {
        match self {
            Self::Invalid { source, .. } => source.problem.http_status(),
            Self::Forbidden { .. } => 403,
            Self::NotFound { .. } => 404,
            Self::Revoked { .. } => 409,
            Self::Store(e) => e.http_status(),
        }
    }
}

impl serde::Serialize for Error {
    /// `{"code", "message", "field"?, "index"?}`: `field` and `index` only when known.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let field = self.field();
        let index = self.index();
        let len = 2 + usize::from(field.is_some()) + usize::from(index.is_some());
        let mut map = s.serialize_map(Some(len))?;
        map.serialize_entry("code", self.code())?;
        if let Some(field) = field {
            map.serialize_entry("field", field.as_str())?;
        }
        if let Some(index) = index {
            map.serialize_entry("index", &index)?;
        }
        map.serialize_entry("message", &self.to_string())?;
        map.end()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// No wildcard arm: a new variant does not compile until it is listed here, and then it
    /// must be added to the table in `tests/errors.rs` (code, status, message).
    #[test]
    fn every_variant_is_in_the_code_table() {
        fn listed(e: &Error) -> bool {
            match e {
                Error::Invalid { source, .. } => match source.problem {
                    Problem::Empty
                    | Problem::TooLong { .. }
                    | Problem::InvalidCharacter { .. }
                    | Problem::MustStartWithLetter
                    | Problem::SurroundingWhitespace
                    | Problem::Syntax { .. }
                    | Problem::MisplacedWildcard
                    | Problem::EmptySegment
                    | Problem::Negative
                    | Problem::InThePast
                    | Problem::LifetimeTooLong { .. }
                    | Problem::TooMany { .. }
                    | Problem::NameTaken { .. }
                    | Problem::Duplicate
                    | Problem::UnknownUser
                    | Problem::InactiveUser
                    | Problem::HostBitsSet { .. }
                    | Problem::EmptyItem
                    | Problem::TooManyValues { .. }
                    | Problem::GraceTooLong { .. }
                    | Problem::Required
                    | Problem::SchemeNotHonoured
                    | Problem::OutOfRange
                    | Problem::AlreadyImported { .. } => true,
                },
                Error::Forbidden { source, .. } => match source {
                    Forbidden::CannotManageTokens
                    | Forbidden::OtherUsersTokens
                    | Forbidden::PermissionsBeyondActor { .. }
                    | Forbidden::UserNotActive
                    | Forbidden::ImportNeedsAdmin
                    | Forbidden::OwnLimits => true,
                },
                Error::NotFound { .. } | Error::Revoked { .. } => true,
                Error::Store(e) => match e {
                    StoreError::NameTaken { .. }
                    | StoreError::IdTaken(_)
                    | StoreError::HashTaken
                    | StoreError::Conflict(_)
                    | StoreError::NotFound(_)
                    | StoreError::IdsExhausted
                    | StoreError::InvalidSnapshot(_)
                    | StoreError::Backend(_)
                    | StoreError::Inconsistent { .. }
                    | StoreError::Busy { .. }
                    | StoreError::SnapshotKeyMismatch { .. }
                    | StoreError::SnapshotTampered
                    | StoreError::SchemaTooNew { .. }
                    | StoreError::Stale { .. }
                    | StoreError::Config(_)
                    | StoreError::HashKeysMissing { .. }
                    | StoreError::Unconfirmed { .. }
                    | StoreError::LimitsUnsupported => true,
                    #[cfg(feature = "postgres")]
                    StoreError::Tls { .. } => true,
                },
            }
        }
        assert!(listed(&Error::NotFound {
            index: None,
            id: TokenId::new(1)
        }));
    }

    #[test]
    fn spans_read_in_the_largest_whole_unit() {
        for (secs, text) in [
            (7_776_000, "90 days"),
            (86_400, "1 day"),
            (7_200, "2 hours"),
            (90, "90 seconds"),
            (120, "2 minutes"),
            (1, "1 second"),
            (0, "0 seconds"),
        ] {
            assert_eq!(Span(secs).to_string(), text);
        }
    }
}
