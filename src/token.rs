//! The token record and its identifiers.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use crate::allowlist::IpAllowlist;
use crate::error::{Field, Problem, StoreError, ValidationError};
use crate::keys::HashScheme;
use crate::legacy::ImportOrigin;
use crate::limits::{Balance, Limits};
use crate::permission::PermissionSet;
use crate::secret::SecretHash;
use crate::store::{Candidate, CandidateLimits, LimitState, Matched, candidate_of};

/// The id of a token, assigned by the store (Zabbix `tokenid`). Serialized as a number;
/// `FromStr` reads its decimal text.
///
/// ```
/// use api_tokens::TokenId;
/// assert_eq!(serde_json::to_string(&TokenId::new(188))?, "188");
/// assert_eq!(serde_json::from_str::<TokenId>("188")?, "188".parse()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenId(u64);

impl TokenId {
    /// Wraps a number.
    pub const fn new(id: u64) -> Self {
        Self(id)
    }

    /// The number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for TokenId {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self).map_err(|_| {
            ValidationError::new(
                Field::TokenId,
                s,
                Problem::Syntax {
                    expected: "a non-negative integer",
                },
            )
        })
    }
}

impl From<u64> for TokenId {
    fn from(v: u64) -> Self {
        Self(v)
    }
}

/// The longest user id, in bytes.
pub const MAX_USER_ID_LEN: usize = 255;

/// A user of the host application: a number (Zabbix `userid`) or a user name (cPanel), as the
/// host chooses. 1–255 bytes, no control characters, no surrounding whitespace. Cloning is cheap.
/// Serialized as a string, and read from one (checked like [`UserId::new`]).
///
/// ```
/// use api_tokens::UserId;
/// assert_eq!(UserId::from(2).as_str(), "2");
/// assert_eq!("root".parse::<UserId>()?.to_string(), "root");
/// assert!(" root".parse::<UserId>().is_err());
/// assert_eq!(serde_json::from_str::<UserId>(r#""root""#)?, "root".parse()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(Arc<str>);

impl UserId {
    /// Validates a user id.
    ///
    /// # Errors
    /// Empty, longer than [`MAX_USER_ID_LEN`] bytes, a control character, or surrounding
    /// whitespace.
    pub fn new(s: &str) -> Result<Self, ValidationError> {
        check_text(Field::UserId, s, MAX_USER_ID_LEN)?;
        Ok(Self(s.into()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An equal id in an allocation of its own (see `TokenName::unshared`).
    pub(crate) fn unshared(&self) -> Self {
        Self(Arc::from(&*self.0))
    }
}

/// The checks every stored text value shares: non-empty, bounded, no control characters, no
/// surrounding whitespace.
fn check_text(field: Field, s: &str, max_chars: usize) -> Result<(), ValidationError> {
    let err = |problem| ValidationError::new(field, s, problem);
    if s.is_empty() {
        return Err(err(Problem::Empty));
    }
    if s.chars().nth(max_chars).is_some() {
        return Err(err(Problem::TooLong { max: max_chars }));
    }
    if let Some(ch) = s.chars().find(|c| c.is_control()) {
        return Err(err(Problem::InvalidCharacter { ch }));
    }
    if s.trim() != s {
        return Err(err(Problem::SurroundingWhitespace));
    }
    Ok(())
}

impl From<u64> for UserId {
    fn from(v: u64) -> Self {
        Self(v.to_string().into())
    }
}

impl FromStr for UserId {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({:?})", &*self.0)
    }
}

impl Serialize for UserId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// The longest name any policy accepts, in characters.
pub const MAX_NAME_LEN: usize = 255;

/// A token's name: 1–255 characters, no control characters, no surrounding whitespace. The
/// [`Policy`](crate::Policy) may narrow it further (cPanel: `[A-Za-z0-9_-]{1,50}`). Unique per
/// owner. Cloning is cheap (shared). Serialized as a string, and read from one (checked like
/// [`TokenName::new`]; the policy's rules apply when a token is created or renamed).
///
/// ```
/// use api_tokens::TokenName;
/// let name: TokenName = serde_json::from_str(r#""deploy bot""#)?;
/// assert_eq!(name.as_str(), "deploy bot");
/// assert!(serde_json::from_str::<TokenName>(r#"" padded ""#).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TokenName(Arc<str>);

impl TokenName {
    /// Validates a name.
    ///
    /// # Errors
    /// Empty, longer than [`MAX_NAME_LEN`] characters, a control character, or surrounding
    /// whitespace.
    pub fn new(s: &str) -> Result<Self, ValidationError> {
        check_text(Field::Name, s, MAX_NAME_LEN)?;
        Ok(Self(s.into()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An equal name in an allocation of its own: a clone of it touches no reference count
    /// that clones of `self` touch (per-thread copies on the authentication hot path).
    pub(crate) fn unshared(&self) -> Self {
        Self(Arc::from(&*self.0))
    }
}

impl FromStr for TokenName {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<&str> for TokenName {
    type Error = ValidationError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl fmt::Display for TokenName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TokenName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenName({:?})", &*self.0)
    }
}

impl Serialize for TokenName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TokenName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// Whether a token may be used (Zabbix `status`: 0 enabled, 1 disabled). Serialized as
/// `"enabled"` or `"disabled"`.
///
/// ```
/// use api_tokens::Status;
/// assert_eq!(serde_json::to_string(&Status::Disabled)?, r#""disabled""#);
/// assert_eq!(serde_json::from_str::<Status>(r#""enabled""#)?, Status::Enabled);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[allow(
    clippy::exhaustive_enums,
    reason = "a token is enabled or disabled, as in both seeds; revocation is a mark beside the status, not a third state"
)]
pub enum Status {
    /// Usable.
    #[default]
    Enabled,
    /// Refused at authentication; kept, listed, can be enabled again.
    Disabled,
}

/// When a token stops working: never, or at an instant. Times have whole-second precision (both
/// seeds use Unix seconds): [`Expiry::at`] drops the fraction, so a token never lives longer
/// than asked. Stored as Unix seconds, so the check on every request is one integer compare.
///
/// A token is expired at instant `t` iff it has an expiry and `expires_at <= t`.
///
/// ```
/// use api_tokens::Expiry;
/// use time::macros::datetime;
/// let e = Expiry::at(datetime!(2021-01-21 14:07:52 UTC));
/// assert!(!e.is_expired_at(datetime!(2021-01-21 14:07:51 UTC)));
/// assert!(e.is_expired_at(datetime!(2021-01-21 14:07:52 UTC)));
/// assert!(!Expiry::NEVER.is_expired_at(datetime!(9999-01-01 0:00 UTC)));
/// ```
///
/// # Text and serde
/// `Display` writes RFC 3339 (`2021-01-21T14:07:52Z`) or `never`. `FromStr` reads RFC 3339
/// (any offset; the fraction of a second is dropped), Unix seconds (`1611238072`) or `never`.
/// Serde writes Unix seconds, or `null` for never (both seeds' format), and reads a number of
/// Unix seconds, `null`, or any string `FromStr` reads:
///
/// ```
/// use api_tokens::Expiry;
/// let e: Expiry = serde_json::from_str(r#""2021-01-21T16:07:52+02:00""#)?;
/// assert_eq!(e, serde_json::from_str("1611238072")?);
/// assert_eq!(e.to_string(), "2021-01-21T14:07:52Z");
/// assert_eq!(serde_json::to_string(&e)?, "1611238072");
/// assert_eq!(serde_json::from_str::<Expiry>("null")?, Expiry::NEVER);
/// assert_eq!("never".parse::<Expiry>()?, Expiry::NEVER);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Expiry(i64);

/// `time` cannot represent this instant, so it is free to mean "never".
const NEVER_SECS: i64 = i64::MAX;

impl Expiry {
    /// Never expires.
    pub const NEVER: Self = Self(NEVER_SECS);

    /// Expires at `t`, truncated to the whole second. An instant whose UTC form lies past the
    /// last representable second (a local time late on 9999-12-31 with a negative offset) is
    /// clamped to that second, so the token never lives longer than asked and every store can
    /// hold it; use [`Expiry::try_at`] to refuse such an instant instead.
    pub fn at(t: OffsetDateTime) -> Self {
        let secs = t.unix_timestamp();
        if from_unix(secs).is_some() {
            return Self(secs);
        }
        let max = time::PrimitiveDateTime::MAX.assume_utc().unix_timestamp();
        let min = time::PrimitiveDateTime::MIN.assume_utc().unix_timestamp();
        Self(secs.clamp(min, max))
    }

    /// Expires at `t`, truncated to the whole second, when its UTC form is representable.
    ///
    /// # Errors
    /// When `t` in UTC falls outside the years -9999 to 9999 (for example
    /// `9999-12-31T23:59:59-23:59`, which is in the year 10000 in UTC).
    pub fn try_at(t: OffsetDateTime) -> Result<Self, ValidationError> {
        Self::from_unix(t.unix_timestamp())
    }

    /// Expires at a Unix time in seconds.
    ///
    /// # Errors
    /// When the number is outside the range `time` can represent.
    pub fn from_unix(secs: i64) -> Result<Self, ValidationError> {
        match from_unix(secs) {
            Some(_) => Ok(Self(secs)),
            None => Err(ValidationError::new(
                Field::Expiry,
                secs,
                Problem::Syntax {
                    expected: UNIX_RANGE,
                },
            )),
        }
    }

    /// Whether the token never expires.
    pub fn is_never(&self) -> bool {
        self.0 == NEVER_SECS
    }

    /// The instant, if any.
    pub fn instant(&self) -> Option<OffsetDateTime> {
        self.unix().and_then(from_unix)
    }

    /// The instant as Unix seconds, if any.
    pub fn unix(&self) -> Option<i64> {
        (!self.is_never()).then_some(self.0)
    }

    /// Whether the token is expired at `now`: `expires_at <= now`. (Both sides compare as
    /// whole seconds: `expires_at` has no fraction, so `expires_at <= now` iff
    /// `expires_at <= floor(now)`.)
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.is_expired_at_unix(now.unix_timestamp())
    }

    /// [`Expiry::is_expired_at`] with `now` in Unix seconds.
    pub fn is_expired_at_unix(&self, now: i64) -> bool {
        !self.is_never() && self.0 <= now
    }
}

impl Default for Expiry {
    fn default() -> Self {
        Self::NEVER
    }
}

impl fmt::Debug for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.instant() {
            None => f.write_str("Expiry::NEVER"),
            Some(t) => write!(f, "Expiry({t})"),
        }
    }
}

impl fmt::Display for Expiry {
    /// RFC 3339 in UTC, or `never` (Unix seconds for a year RFC 3339 cannot write).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.instant() {
            None => f.write_str("never"),
            Some(t) => match crate::timefmt::rfc3339(t) {
                Some(text) => f.write_str(&text),
                None => write!(f, "{}", t.unix_timestamp()),
            },
        }
    }
}

impl FromStr for Expiry {
    type Err = ValidationError;
    /// `never`, Unix seconds, or RFC 3339.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "never" {
            return Ok(Self::NEVER);
        }
        if let Ok(secs) = s.parse::<i64>() {
            return Self::from_unix(secs);
        }
        let t = crate::timefmt::parse_rfc3339(s).ok_or_else(|| {
            ValidationError::new(
                Field::Expiry,
                format_args!("\"{s}\""),
                Problem::Syntax {
                    expected: "an RFC 3339 time, Unix seconds or \"never\"",
                },
            )
        })?;
        Self::try_at(t).map_err(|_| {
            ValidationError::new(
                Field::Expiry,
                format_args!("\"{s}\""),
                Problem::Syntax {
                    expected: "a time between the years -9999 and 9999 in UTC",
                },
            )
        })
    }
}

impl Serialize for Expiry {
    /// Unix seconds, or `null` for never.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.instant()
            .map(OffsetDateTime::unix_timestamp)
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Expiry {
    /// Unix seconds or `null` (never); in human-readable formats (JSON, TOML, YAML) also any
    /// string [`FromStr`] reads.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            return match Option::<i64>::deserialize(d)? {
                None => Ok(Self::NEVER),
                Some(secs) => Self::from_unix(secs).map_err(serde::de::Error::custom),
            };
        }
        d.deserialize_any(ExpiryVisitor)
    }
}

struct ExpiryVisitor;

impl<'de> serde::de::Visitor<'de> for ExpiryVisitor {
    type Value = Expiry;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Unix seconds, an RFC 3339 time, \"never\", or null")
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Expiry, E> {
        Expiry::from_unix(v).map_err(E::custom)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Expiry, E> {
        match i64::try_from(v) {
            Ok(secs) => self.visit_i64(secs),
            Err(_) => Err(E::custom(ValidationError::new(
                Field::Expiry,
                v,
                Problem::Syntax {
                    expected: UNIX_RANGE,
                },
            ))),
        }
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Expiry, E> {
        v.parse().map_err(E::custom)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Expiry, E> {
        Ok(Expiry::NEVER)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Expiry, E> {
        Ok(Expiry::NEVER)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Expiry, D::Error> {
        d.deserialize_any(self)
    }
}

/// What a Unix time must be to become an [`Expiry`].
const UNIX_RANGE: &str = "Unix seconds between the years -9999 and 9999";

/// `t` with the fraction of a second dropped, in UTC.
#[inline]
pub(crate) fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    // `checked_`: a local time near the end of the range may have no UTC form; keep it as it is.
    // Already UTC (every instant a `SystemClock` reads) skips the conversion: this runs on
    // every authentication.
    let utc = if t.offset().is_utc() {
        t
    } else {
        t.checked_to_offset(time::UtcOffset::UTC).unwrap_or(t)
    };
    utc.replace_nanosecond(0).unwrap_or(utc)
}

pub(crate) fn from_unix(secs: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(secs).ok()
}

/// When and from where a token was last used successfully (Zabbix `lastaccess`). Serde (the
/// persistence form): `{"at": <Unix seconds>, "ip": "10.1.2.3" | null}`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[allow(
    clippy::exhaustive_structs,
    reason = "when and from where: hosts importing tokens write one as a literal"
)]
pub struct LastUse {
    /// The instant (whole seconds).
    #[serde(with = "time::serde::timestamp")]
    pub at: OffsetDateTime,
    /// The client address, if the host gave one.
    pub ip: Option<IpAddr>,
}

/// The hashes a token's secret is known by. Never the secret itself. Serde (the persistence
/// form, hashes included): `{"hash": "<64 hex>", "generated_at": <Unix seconds>, "previous":
/// {"hash": "<64 hex>", "valid_until": <Unix seconds>} | null}`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[allow(
    clippy::exhaustive_structs,
    reason = "a host store that keeps a record in columns builds it; the set of a secret's hashes is settled"
)]
pub struct SecretState {
    /// The hash of the current secret.
    pub hash: SecretHash,
    /// How `hash` was made: under which key, from what. Records written before schemes were
    /// recorded read as [`HashScheme::UNRECORDED`].
    #[serde(default)]
    pub scheme: HashScheme,
    /// When the current secret was generated.
    #[serde(with = "time::serde::timestamp")]
    pub generated_at: OffsetDateTime,
    /// The secret it replaced, if that one is still honoured for a grace period.
    pub previous: Option<PreviousSecret>,
}

impl SecretState {
    /// Every hash this secret state is known by: the current one, then the previous one if it
    /// is still on record. Each must be unique across a store.
    pub fn hashes(&self) -> impl Iterator<Item = SecretHash> + use<> {
        std::iter::once(self.hash).chain(self.previous.map(|p| p.hash))
    }
}

/// A replaced secret that still works until `valid_until` (exclusive), after a rotation with a
/// grace period.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[allow(
    clippy::exhaustive_structs,
    reason = "a host store that keeps a record in columns builds it"
)]
pub struct PreviousSecret {
    /// Its hash.
    pub hash: SecretHash,
    /// How `hash` was made (see [`SecretState::scheme`]).
    #[serde(default)]
    pub scheme: HashScheme,
    /// It is refused from this instant on.
    #[serde(with = "time::serde::timestamp")]
    pub valid_until: OffsetDateTime,
}

/// How a token came to be revoked for good.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RevokedBy {
    /// Someone holding its secret reported it leaked
    /// ([`Tokens::revoke_by_secret`](crate::Tokens::revoke_by_secret)).
    Possession,
}

impl RevokedBy {
    /// The name stores write (`"possession"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Possession => "possession",
        }
    }

    /// Reads a name written by [`RevokedBy::as_str`].
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "possession" => Some(Self::Possession),
            _ => None,
        }
    }
}

/// The mark of a token revoked for good: when, and how. A revoked token is disabled, holds no
/// secret hash, and can never be enabled again or given a new secret.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[allow(
    clippy::exhaustive_structs,
    reason = "a host store that keeps a record in columns builds it"
)]
pub struct Revoked {
    /// When (whole seconds).
    #[serde(with = "time::serde::timestamp")]
    pub at: OffsetDateTime,
    /// How.
    pub by: RevokedBy,
}

/// A token as stored: everything but the secret, which exists only as hashes.
///
/// Stores build these from their rows; the facade builds them from [`NewToken`]s. `Debug`
/// shows a hash's first 8 hex digits at most, never a secret.
///
/// `Serialize` writes the token's public [`TokenView`](crate::TokenView) — no hash, no revision
/// — so a list of tokens can go into an API response as it is. There is no `Deserialize`: a
/// token read back from an API response would have lost its hashes. Persistence keeps them in
/// [`StoredToken`](crate::store::StoredToken) and [`Snapshot`](crate::store::memory::Snapshot).
///
/// [`NewToken`]: crate::NewToken
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Token {
    /// Its id.
    pub id: TokenId,
    /// Its name, unique per owner.
    pub name: TokenName,
    /// Free text.
    pub description: String,
    /// The user it authenticates as; never changes.
    pub owner: UserId,
    /// The user who created it or last generated its secret.
    pub creator: UserId,
    /// Enabled or disabled.
    pub status: Status,
    /// When it was created (whole seconds).
    pub created_at: OffsetDateTime,
    /// When it stops working.
    pub expiry: Expiry,
    /// What it may do (before intersecting with the owner's current rights).
    pub permissions: PermissionSet,
    /// Where it may be used from; empty is anywhere.
    pub allowlist: IpAllowlist,
    /// The last successful authentication.
    pub last_use: Option<LastUse>,
    /// The secret's hashes; `None` until a secret is generated.
    pub secret: Option<SecretState>,
    /// Bumped by the store on every write. A [`Change::Replace`](crate::store::Change::Replace)
    /// carries the revision it was read at, and the store refuses it when the token has changed
    /// since ([`StoreError::Conflict`]): no write is ever based on a
    /// stale read (optimistic concurrency, as `UPDATE … WHERE revision = ?` in SQL).
    pub revision: u32,
    /// Set when the token was revoked for good ([`Revoked`]); then `status` is
    /// [`Status::Disabled`] and `secret` is `None`.
    pub revoked: Option<Revoked>,
    /// For a token brought in by [`Tokens::import`](crate::Tokens::import) with another
    /// system's hash of its secret: what it was imported from ([`ImportOrigin`]), kept for the
    /// token's whole life so that the same hash is never imported again. Never used for
    /// authentication. `None` for every other token (and for tokens imported before origins
    /// were recorded).
    pub imported_from: Option<ImportOrigin>,
    /// Its usage limits and rate limits, as set ([`Limits`]); `None` for a token without.
    /// Replacing a token with the same limits keeps their state (balance, windows); other
    /// limits start afresh (a rate limit kept as it was keeps its window).
    pub limits: Option<Arc<Limits>>,
    /// The credit balance as of the last charge, as the store reports it (a refill due since
    /// then applies at the next charge; [`Balance::as_of`] computes it). Written by stores
    /// that keep limits' state; ignored when writing, except that a token inserted with one
    /// (restored from a snapshot) starts from it.
    pub balance: Option<Balance>,
}

impl Token {
    /// A record with the given identity and every other field at its plain value: enabled,
    /// made by its owner, never expiring, no permissions, any address, never used, no secret
    /// (it cannot authenticate), revision 0, neither revoked nor imported. The fields are
    /// public: a host store that keeps records in its own shape sets the rest — **every one of
    /// them**: these defaults are the most permissive values, so a column left unread would
    /// widen the token silently. The conformance suite (`store::conformance`, feature
    /// `testing`) stores records whose fields differ from these defaults and reads them back.
    ///
    /// ```
    /// use api_tokens::{Status, Token, TokenId, TokenName, UserId};
    /// use time::macros::datetime;
    ///
    /// let mut t = Token::new(
    ///     TokenId::new(7),
    ///     TokenName::new("backup")?,
    ///     UserId::new("alice")?,
    ///     datetime!(2026-01-01 0:00 UTC),
    /// );
    /// t.status = Status::Disabled;
    /// assert!(t.secret.is_none() && t.creator == t.owner);
    /// # Ok::<(), api_tokens::ValidationError>(())
    /// ```
    pub fn new(id: TokenId, name: TokenName, owner: UserId, created_at: OffsetDateTime) -> Self {
        Self {
            id,
            name,
            description: String::new(),
            creator: owner.clone(),
            owner,
            status: Status::Enabled,
            created_at,
            expiry: Expiry::NEVER,
            permissions: PermissionSet::empty(),
            allowlist: IpAllowlist::any(),
            last_use: None,
            secret: None,
            revision: 0,
            revoked: None,
            imported_from: None,
            limits: None,
            balance: None,
        }
    }

    /// Whether the token is expired at `now` (see [`Expiry`]).
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.expiry.is_expired_at(now)
    }

    /// Whether the token was revoked for good.
    pub fn is_revoked(&self) -> bool {
        self.revoked.is_some()
    }

    /// What authentication reads of this record when a secret hashing to `presented` was
    /// presented: the [`Candidate`] a store hands to
    /// [`TokenStore::authenticate`](crate::TokenStore::authenticate)'s check, saying which
    /// secret matched ([`Matched::Current`], or [`Matched::Previous`] with the end of its
    /// grace period) and how that hash was made ([`Candidate::scheme`]).
    ///
    /// `None` when `presented` is neither the current nor the previous hash (or the token has
    /// no secret): a lookup that found this record by mistake must not authenticate with it,
    /// so a store that passes on only what this returns fails closed. Every store of the crate
    /// builds its candidates by this rule; a host's store should call it rather than write it
    /// again.
    ///
    /// ```
    /// use api_tokens::store::Matched;
    /// use api_tokens::{Actor, HashKey, NewToken, SecretFormat, Tokens, UserId};
    /// use api_tokens::secret::SecretHash;
    /// let tokens = Tokens::in_memory();
    /// let alice = Actor::user(UserId::new("alice")?);
    /// let ci = NewToken::new("ci".parse()?).permissions("deploy".parse()?);
    /// let issued = tokens.issue(&alice, ci)?;
    /// let presented = SecretFormat::default().parse(issued.secret.expose())?;
    /// let hash = SecretHash::of(&HashKey::default(), &presented);
    ///
    /// let candidate = issued.token.candidate(&hash).expect("its current secret");
    /// assert_eq!((candidate.id, candidate.matched), (issued.token.id, Matched::Current));
    /// assert!(issued.token.candidate(&SecretHash::from_bytes([7; 32])).is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn candidate(&self, presented: &SecretHash) -> Option<Candidate<'_>> {
        let s = self.secret.as_ref()?;
        let (matched, scheme) =
            Matched::of(presented, Some(&s.hash), s.scheme, s.previous.as_ref())?;
        let limits = if self.limits.is_some() {
            CandidateLimits::Unenforced
        } else {
            CandidateLimits::None
        };
        Some(candidate_of!(self, matched, scheme, limits))
    }

    /// [`Token::candidate`] for a store that enforces limits: the token's limits charged
    /// through `state` (ignored for a token without limits).
    pub fn candidate_limited<'a>(
        &'a self,
        presented: &SecretHash,
        state: Option<&'a Arc<dyn LimitState>>,
    ) -> Option<Candidate<'a>> {
        let mut c = self.candidate(presented)?;
        if self.limits.is_some()
            && let Some(state) = state
        {
            c.limits = CandidateLimits::Enforced(state);
        }
        Some(c)
    }

    /// Checks the rules every stored record keeps: a revoked token is disabled and holds no
    /// secret hash, and a previous secret differs from the current one. (A previous secret
    /// without a current one, or without an end time, cannot be expressed in a `Token`; SQL
    /// stores check those columns themselves.) Every store calls this on what it writes and
    /// reads, so a record in an unexpected state is refused, never used.
    ///
    /// # Errors
    /// [`StoreError::Inconsistent`] naming the first broken rule.
    pub fn check_consistent(&self) -> Result<(), StoreError> {
        let broken = |problem| {
            Err(StoreError::Inconsistent {
                token: self.id,
                problem,
            })
        };
        if self.revoked.is_some() && self.status != Status::Disabled {
            return broken("a revoked token is enabled");
        }
        if self.revoked.is_some() && self.secret.is_some() {
            return broken("a revoked token still has a secret hash");
        }
        if let Some(s) = &self.secret
            && s.previous.is_some_and(|p| p.hash == s.hash)
        {
            return broken("the previous secret hash equals the current one");
        }
        if self.limits.as_ref().is_some_and(|l| l.check().is_err()) {
            return broken("its limits are out of bounds");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn text_rules() {
        assert!(TokenName::new("Your token").is_ok());
        for bad in ["", " x", "x ", "a\nb", "\u{0}"] {
            assert!(TokenName::new(bad).is_err(), "{bad:?}");
            assert!(UserId::new(bad).is_err(), "{bad:?}");
        }
        assert!(
            TokenName::new(&"é".repeat(MAX_NAME_LEN)).is_ok(),
            "counts characters"
        );
        assert!(TokenName::new(&"é".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(UserId::new(&"u".repeat(MAX_USER_ID_LEN + 1)).is_err());
    }

    #[test]
    fn expiry_boundary_and_truncation() {
        let t = datetime!(2021-01-21 14:07:52.9 UTC);
        let e = Expiry::at(t);
        assert_eq!(e.instant(), Some(datetime!(2021-01-21 14:07:52 UTC)));
        assert!(e.is_expired_at(datetime!(2021-01-21 14:07:52 UTC)));
        assert!(!e.is_expired_at(datetime!(2021-01-21 14:07:51.999 UTC)));
        assert_eq!(
            Expiry::from_unix(1611238072).unwrap(),
            Expiry::at(datetime!(2021-01-21 14:07:52 UTC))
        );
        assert!(Expiry::from_unix(i64::MAX).is_err());
        assert_eq!(serde_json::to_string(&e).unwrap(), "1611238072");
        assert_eq!(serde_json::to_string(&Expiry::NEVER).unwrap(), "null");
        assert_eq!(
            serde_json::from_str::<Expiry>("null").unwrap(),
            Expiry::NEVER
        );
    }

    #[test]
    fn expiry_reads_rfc_3339_unix_seconds_and_never() {
        let e = Expiry::from_unix(1_611_238_072).unwrap();
        for text in [
            "2021-01-21T14:07:52Z",
            "2021-01-21T16:07:52+02:00",
            "2021-01-21T14:07:52.999Z",
            "1611238072",
        ] {
            assert_eq!(text.parse::<Expiry>().unwrap(), e, "{text}");
            let json = serde_json::to_string(text).unwrap();
            assert_eq!(serde_json::from_str::<Expiry>(&json).unwrap(), e, "{json}");
        }
        assert_eq!(serde_json::from_str::<Expiry>("1611238072").unwrap(), e);
        assert_eq!(e.to_string(), "2021-01-21T14:07:52Z");
        assert_eq!("never".parse::<Expiry>().unwrap(), Expiry::NEVER);
        assert_eq!(
            Expiry::NEVER.to_string().parse::<Expiry>().unwrap(),
            Expiry::NEVER
        );
        for bad in [
            "",
            "tomorrow",
            "2021-01-21",
            "2021-13-01T00:00:00Z",
            "99999999999999",
        ] {
            let err = bad.parse::<Expiry>().unwrap_err();
            assert_eq!(err.field, Field::Expiry, "{bad}");
        }
        assert!(serde_json::from_str::<Expiry>("18446744073709551615").is_err());
        assert!(serde_json::from_str::<Expiry>("1.5").is_err());
        // A year RFC 3339 cannot write prints as seconds, which read back.
        let far = Expiry::from_unix(-62_167_219_201).unwrap();
        assert_eq!(far.to_string().parse::<Expiry>().unwrap(), far);
    }

    #[test]
    fn an_expiry_past_the_representable_range_is_refused_or_clamped() {
        // Year 10000 in UTC: every store would fail to read it back, so it never gets in.
        let late = "9999-12-31T23:59:59-23:59";
        assert!(late.parse::<Expiry>().is_err());
        assert!(serde_json::from_str::<Expiry>(&format!("\"{late}\"")).is_err());
        let t = crate::timefmt::parse_rfc3339(late).unwrap();
        assert!(Expiry::try_at(t).is_err());
        let clamped = Expiry::at(t);
        assert!(!clamped.is_never());
        assert_eq!(
            clamped.instant(),
            Some(datetime!(9999-12-31 23:59:59 UTC)),
            "clamped to the last representable second, never later than asked"
        );
        let json = serde_json::to_string(&clamped).unwrap();
        assert_eq!(serde_json::from_str::<Expiry>(&json).unwrap(), clamped);
    }

    #[test]
    fn whole_seconds_drops_the_fraction_and_normalises_to_utc() {
        let t = datetime!(2021-01-21 14:07:52.9 UTC);
        assert_eq!(whole_seconds(t), datetime!(2021-01-21 14:07:52 UTC));
        let w = whole_seconds(datetime!(2021-01-21 16:07:52.5 +2));
        assert_eq!(w, datetime!(2021-01-21 14:07:52 UTC));
        assert!(w.offset().is_utc());
    }

    #[test]
    fn inconsistent_records_are_named() {
        let t = Token {
            status: Status::Disabled,
            created_at: datetime!(2025-01-01 0:00 UTC),
            revoked: Some(Revoked {
                at: datetime!(2025-01-02 0:00 UTC),
                by: RevokedBy::Possession,
            }),
            ..crate::store::test_record(TokenId::new(5))
        };
        assert!(t.check_consistent().is_ok());
        let enabled = Token {
            status: Status::Enabled,
            ..t.clone()
        };
        let e = enabled.check_consistent().unwrap_err();
        assert_eq!(
            e.to_string(),
            "token 5 is stored in an inconsistent state: a revoked token is enabled"
        );
        let h = SecretHash::from_bytes([1; 32]);
        let with_hash = Token {
            secret: Some(SecretState {
                hash: h,
                scheme: HashScheme::UNRECORDED,
                generated_at: t.created_at,
                previous: None,
            }),
            ..t.clone()
        };
        assert!(with_hash.check_consistent().is_err());
        let same_previous = Token {
            revoked: None,
            secret: Some(SecretState {
                hash: h,
                scheme: HashScheme::UNRECORDED,
                generated_at: t.created_at,
                previous: Some(PreviousSecret {
                    hash: h,
                    scheme: HashScheme::UNRECORDED,
                    valid_until: t.created_at,
                }),
            }),
            ..t
        };
        assert!(same_previous.check_consistent().is_err());
        assert_eq!(
            RevokedBy::from_name("possession"),
            Some(RevokedBy::Possession)
        );
        assert_eq!(RevokedBy::from_name("x"), None);
    }

    /// Which secret a presented hash matched is read from the record: the current hash with
    /// its scheme, the previous one with its deadline and its own scheme (past the deadline
    /// too: whether it is still honoured is the decision's), and no candidate at all for a
    /// hash the record does not hold or a record without a secret.
    #[test]
    fn a_candidate_says_which_secret_matched_and_fails_closed() {
        use crate::secret::KeyId;
        use crate::store::Matched;
        let (current, previous, other) = (
            SecretHash::from_bytes([1; 32]),
            SecretHash::from_bytes([2; 32]),
            SecretHash::from_bytes([3; 32]),
        );
        let (keyed, legacy) = (
            HashScheme::keyed(KeyId::from_bytes([4; 8])),
            HashScheme::legacy(
                crate::legacy::LegacyScheme::Sha256,
                KeyId::from_bytes([5; 8]),
            ),
        );
        let until = datetime!(2025-01-02 0:00 UTC);
        let t = Token {
            status: Status::Disabled,
            expiry: Expiry::from_unix(1_800_000_000).unwrap(),
            permissions: "dns.*".parse().unwrap(),
            allowlist: "10.0.0.0/8".parse().unwrap(),
            secret: Some(SecretState {
                hash: current,
                scheme: keyed,
                generated_at: datetime!(2025-01-01 0:00 UTC),
                previous: Some(PreviousSecret {
                    hash: previous,
                    scheme: legacy,
                    valid_until: until,
                }),
            }),
            ..crate::store::test_record(TokenId::new(9))
        };
        let matched = |t: &Token, h: &SecretHash| t.candidate(h).map(|c| (c.matched, c.scheme));
        let cases = [
            (current, Some((Matched::Current, keyed))),
            (
                previous,
                Some((Matched::Previous { valid_until: until }, legacy)),
            ),
            (other, None),
        ];
        for (h, expected) in cases {
            assert_eq!(matched(&t, &h), expected, "{h:?}");
        }
        let c = t.candidate(&current).unwrap();
        assert_eq!(
            (c.id, c.name, c.owner, c.status, c.expiry),
            (t.id, &t.name, &t.owner, t.status, t.expiry)
        );
        assert_eq!((c.permissions, c.allowlist), (&t.permissions, &t.allowlist));
        let without = Token {
            secret: None,
            ..t.clone()
        };
        assert_eq!(matched(&without, &current), None, "no secret, no candidate");
    }

    #[test]
    fn ids_parse_and_print() {
        assert_eq!("188".parse::<TokenId>().unwrap(), TokenId::new(188));
        assert!("-1".parse::<TokenId>().is_err());
        assert_eq!(serde_json::to_string(&TokenId::new(7)).unwrap(), "7");
        assert_eq!(
            serde_json::to_string(&Status::Disabled).unwrap(),
            "\"disabled\""
        );
    }
}
