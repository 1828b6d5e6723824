//! The token record and its identifiers.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use crate::allowlist::IpAllowlist;
use crate::error::{Field, Problem, StoreError, ValidationError};
use crate::permission::PermissionSet;
use crate::secret::SecretHash;

/// The id of a token, assigned by the store (Zabbix `tokenid`). Serialized as a number.
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
///
/// ```
/// use api_tokens::UserId;
/// assert_eq!(UserId::from(2).as_str(), "2");
/// assert_eq!("root".parse::<UserId>()?.to_string(), "root");
/// assert!(" root".parse::<UserId>().is_err());
/// # Ok::<(), api_tokens::ValidationError>(())
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
/// owner. Cloning is cheap (shared).
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

/// Whether a token may be used (Zabbix `status`: 0 enabled, 1 disabled).
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
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
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Expiry(i64);

/// `time` cannot represent this instant, so it is free to mean "never".
const NEVER_SECS: i64 = i64::MAX;

impl Expiry {
    /// Never expires.
    pub const NEVER: Self = Self(NEVER_SECS);

    /// Expires at `t`, truncated to the whole second.
    pub fn at(t: OffsetDateTime) -> Self {
        Self(t.unix_timestamp())
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
                    expected: "a representable Unix time",
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

impl Serialize for Expiry {
    /// Unix seconds, or `null` for never.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.instant()
            .map(OffsetDateTime::unix_timestamp)
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Expiry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Option::<i64>::deserialize(d)? {
            None => Ok(Self::NEVER),
            Some(secs) => Self::from_unix(secs).map_err(serde::de::Error::custom),
        }
    }
}

/// `t` with the fraction of a second dropped, in UTC.
#[inline]
pub(crate) fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    let utc = if t.offset().is_utc() {
        t
    } else {
        t.to_offset(time::UtcOffset::UTC)
    };
    utc.replace_nanosecond(0).unwrap_or(utc)
}

pub(crate) fn from_unix(secs: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(secs).ok()
}

/// When and from where a token was last used successfully (Zabbix `lastaccess`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LastUse {
    /// The instant (whole seconds).
    #[serde(with = "time::serde::timestamp")]
    pub at: OffsetDateTime,
    /// The client address, if the host gave one.
    pub ip: Option<IpAddr>,
}

/// The hashes a token's secret is known by. Never the secret itself.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SecretState {
    /// The hash of the current secret.
    pub hash: SecretHash,
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
pub struct PreviousSecret {
    /// Its hash.
    pub hash: SecretHash,
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
pub struct Revoked {
    /// When (whole seconds).
    #[serde(with = "time::serde::timestamp")]
    pub at: OffsetDateTime,
    /// How.
    pub by: RevokedBy,
}

/// A token as stored: everything but the secret, which exists only as hashes.
///
/// Stores build these from their rows; the facade builds them from [`NewToken`]s. `Debug` and
/// serde show hashes at most, never a secret.
///
/// [`NewToken`]: crate::NewToken
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
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
    #[serde(with = "time::serde::timestamp")]
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
    /// since ([`StoreError::Conflict`](crate::StoreError::Conflict)): no write is ever based on a
    /// stale read (optimistic concurrency, as `UPDATE … WHERE revision = ?` in SQL).
    #[serde(default)]
    pub revision: u32,
    /// Set when the token was revoked for good ([`Revoked`]); then `status` is
    /// [`Status::Disabled`] and `secret` is `None`.
    #[serde(default)]
    pub revoked: Option<Revoked>,
}

impl Token {
    /// Whether the token is expired at `now` (see [`Expiry`]).
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.expiry.is_expired_at(now)
    }

    /// Whether the token was revoked for good.
    pub fn is_revoked(&self) -> bool {
        self.revoked.is_some()
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
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
            id: TokenId::new(5),
            name: TokenName::new("t").unwrap(),
            description: String::new(),
            owner: UserId::from(2),
            creator: UserId::from(2),
            status: Status::Disabled,
            created_at: datetime!(2025-01-01 0:00 UTC),
            expiry: Expiry::NEVER,
            permissions: PermissionSet::empty(),
            allowlist: IpAllowlist::any(),
            last_use: None,
            secret: None,
            revision: 0,
            revoked: Some(Revoked {
                at: datetime!(2025-01-02 0:00 UTC),
                by: RevokedBy::Possession,
            }),
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
                generated_at: t.created_at,
                previous: Some(PreviousSecret {
                    hash: h,
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

    proptest! {
        #[test]
        fn names_roundtrip_or_refuse(s in ".{0,300}") {
            if let Ok(n) = TokenName::new(&s) {
                prop_assert_eq!(n.to_string().parse::<TokenName>().unwrap(), n);
            }
            if let Ok(u) = UserId::new(&s) {
                prop_assert_eq!(u.to_string().parse::<UserId>().unwrap(), u);
            }
        }
    }
}
