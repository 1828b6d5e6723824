//! [`TokenView`]: a token as APIs and UIs show it (never a hash, never the revision), and
//! [`Revealed`]: a new token with its secret, ready to go into a response once.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use crate::allowlist::IpAllowlist;
use crate::limits::{Balance, Limits};
use crate::permission::PermissionSet;
use crate::secret::TokenSecret;
use crate::timefmt;
use crate::token::{
    Expiry, LastUse, Revoked, RevokedBy, Status, Token, TokenId, TokenName, UserId, from_unix,
};

/// A token as an API response or a UI shows it: everything a user may know about it, and
/// nothing else — no secret hash, no store revision.
///
/// `Token`'s own `Serialize` writes this view, so `serde_json::to_string(&tokens.list(..)?)` is
/// safe to send as it is; persistence formats keep hashes in their own types
/// ([`Snapshot`](crate::store::memory::Snapshot), [`StoredToken`](crate::store::StoredToken)).
///
/// # Serialized form
/// Times are written twice, as RFC 3339 (UTC) and as Unix seconds (`_unix`), so that a browser
/// and a shell script can each read the one they like; `null` where there is none (and the RFC
/// 3339 form alone is `null` for a year it cannot write). Reading accepts the same shape, takes
/// each time from its RFC 3339 member (or its `_unix` member when that is the only one given)
/// and refuses a pair that disagrees.
///
/// A token with limits also has `limits` (`{"credits": {"remaining", "refill", "refilled_at",
/// "counts"} | null, "rates": [{"name", "limit", "window" (milliseconds), "counts"}]}`, as
/// set) and, with credits, `credits_remaining` (as of the last charge); a token without has
/// neither member.
///
/// ```
/// use api_tokens::{Actor, NewToken, Tokens, UserId};
/// use api_tokens::clock::ManualClock;
/// use time::macros::datetime;
///
/// let tokens = Tokens::in_memory()
///     .with_clock(ManualClock::new(datetime!(2026-01-01 9:00 UTC)));
/// let alice = Actor::user(UserId::new("alice")?);
/// tokens.issue(
///     &alice,
///     NewToken::new("deploy".parse()?)
///         .permissions("dns.*".parse()?)
///         .allowlist("10.0.0.0/8".parse()?)
///         .expires_at(datetime!(2026-02-01 0:00 UTC)),
/// )?;
/// let listed = tokens.list(&alice, &api_tokens::Query::new())?;
/// assert_eq!(
///     serde_json::to_value(&listed)?,
///     serde_json::json!([{
///         "id": 1,
///         "name": "deploy",
///         "description": "",
///         "owner": "alice",
///         "creator": "alice",
///         "status": "enabled",
///         "permissions": ["dns.*"],
///         "allowlist": ["10.0.0.0/8"],
///         "created_at": "2026-01-01T09:00:00Z",
///         "created_at_unix": 1767258000,
///         "expires_at": "2026-02-01T00:00:00Z",
///         "expires_at_unix": 1769904000,
///         "last_used_at": null,
///         "last_used_at_unix": null,
///         "last_used_ip": null,
///         "secret_generated_at": "2026-01-01T09:00:00Z",
///         "secret_generated_at_unix": 1767258000,
///         "revoked_at": null,
///         "revoked_at_unix": null,
///         "revoked_by": null,
///     }])
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct TokenView {
    /// As [`Token::id`].
    pub id: TokenId,
    /// As [`Token::name`].
    pub name: TokenName,
    /// As [`Token::description`].
    pub description: String,
    /// As [`Token::owner`].
    pub owner: UserId,
    /// As [`Token::creator`].
    pub creator: UserId,
    /// As [`Token::status`].
    pub status: Status,
    /// As [`Token::permissions`] (before intersecting with the owner's current rights).
    pub permissions: PermissionSet,
    /// As [`Token::allowlist`]; empty is anywhere.
    pub allowlist: IpAllowlist,
    /// As [`Token::created_at`].
    pub created_at: OffsetDateTime,
    /// As [`Token::expiry`].
    pub expiry: Expiry,
    /// As [`Token::last_use`].
    pub last_use: Option<LastUse>,
    /// When its current secret was generated; `None` while it has none (created, not yet
    /// generated, or revoked).
    pub secret_generated_at: Option<OffsetDateTime>,
    /// Set when the token was revoked for good ([`Token::revoked`]).
    pub revoked: Option<Revoked>,
    /// As [`Token::limits`].
    pub limits: Option<Arc<Limits>>,
    /// As [`Token::balance`]: the credits left as of the last charge.
    pub balance: Option<Balance>,
}

impl From<&Token> for TokenView {
    fn from(t: &Token) -> Self {
        Self {
            id: t.id,
            name: t.name.clone(),
            description: t.description.clone(),
            owner: t.owner.clone(),
            creator: t.creator.clone(),
            status: t.status,
            permissions: t.permissions.clone(),
            allowlist: t.allowlist.clone(),
            created_at: t.created_at,
            expiry: t.expiry,
            last_use: t.last_use,
            secret_generated_at: t.secret.map(|s| s.generated_at),
            revoked: t.revoked,
            limits: t.limits.clone(),
            balance: t.balance,
        }
    }
}

impl From<Token> for TokenView {
    fn from(t: Token) -> Self {
        Self::from(&t)
    }
}

impl Token {
    /// The token as APIs and UIs show it: no hash, no revision.
    pub fn view(&self) -> TokenView {
        TokenView::from(self)
    }
}

impl Serialize for Token {
    /// The [`TokenView`] form: never a hash, never the revision. Persistence writes
    /// [`StoredToken`](crate::store::StoredToken) instead.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Out::new(&self.view(), None).serialize(s)
    }
}

impl Serialize for TokenView {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Out::new(self, None).serialize(s)
    }
}

/// The written form of a view, borrowing it (and a secret, for [`Revealed`]).
#[derive(Serialize)]
struct Out<'a> {
    id: TokenId,
    name: &'a TokenName,
    description: &'a str,
    owner: &'a UserId,
    creator: &'a UserId,
    status: Status,
    permissions: &'a PermissionSet,
    allowlist: &'a IpAllowlist,
    created_at: Option<String>,
    created_at_unix: i64,
    expires_at: Option<String>,
    expires_at_unix: Option<i64>,
    last_used_at: Option<String>,
    last_used_at_unix: Option<i64>,
    last_used_ip: Option<IpAddr>,
    secret_generated_at: Option<String>,
    secret_generated_at_unix: Option<i64>,
    revoked_at: Option<String>,
    revoked_at_unix: Option<i64>,
    revoked_by: Option<RevokedBy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limits: Option<&'a Limits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credits_remaining: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<&'a str>,
}

impl<'a> Out<'a> {
    fn new(v: &'a TokenView, secret: Option<&'a str>) -> Self {
        let rfc = |t: Option<OffsetDateTime>| t.and_then(timefmt::rfc3339);
        let unix = |t: Option<OffsetDateTime>| t.map(OffsetDateTime::unix_timestamp);
        let expires = v.expiry.instant();
        let used = v.last_use.map(|u| u.at);
        Self {
            id: v.id,
            name: &v.name,
            description: &v.description,
            owner: &v.owner,
            creator: &v.creator,
            status: v.status,
            permissions: &v.permissions,
            allowlist: &v.allowlist,
            created_at: timefmt::rfc3339(v.created_at),
            created_at_unix: v.created_at.unix_timestamp(),
            expires_at: rfc(expires),
            expires_at_unix: unix(expires),
            last_used_at: rfc(used),
            last_used_at_unix: unix(used),
            last_used_ip: v.last_use.and_then(|u| u.ip),
            secret_generated_at: rfc(v.secret_generated_at),
            secret_generated_at_unix: unix(v.secret_generated_at),
            revoked_at: rfc(v.revoked.map(|r| r.at)),
            revoked_at_unix: unix(v.revoked.map(|r| r.at)),
            revoked_by: v.revoked.map(|r| r.by),
            limits: v.limits.as_deref(),
            credits_remaining: v.balance.map(|b| b.remaining),
            secret,
        }
    }
}

/// The read form of a view. Unknown members are ignored (a [`Revealed`] body reads as its
/// view), so that members added later do not break older readers.
#[derive(Deserialize)]
struct In {
    id: TokenId,
    name: TokenName,
    #[serde(default)]
    description: String,
    owner: UserId,
    creator: UserId,
    status: Status,
    permissions: PermissionSet,
    allowlist: IpAllowlist,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    created_at_unix: Option<i64>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    expires_at_unix: Option<i64>,
    #[serde(default)]
    last_used_at: Option<String>,
    #[serde(default)]
    last_used_at_unix: Option<i64>,
    #[serde(default)]
    last_used_ip: Option<IpAddr>,
    #[serde(default)]
    secret_generated_at: Option<String>,
    #[serde(default)]
    secret_generated_at_unix: Option<i64>,
    #[serde(default)]
    revoked_at: Option<String>,
    #[serde(default)]
    revoked_at_unix: Option<i64>,
    #[serde(default)]
    revoked_by: Option<RevokedBy>,
    #[serde(default)]
    limits: Option<Limits>,
    #[serde(default)]
    credits_remaining: Option<u64>,
}

/// One time from its RFC 3339 and Unix members: either may be missing; both must agree.
fn instant(
    name: &str,
    rfc: Option<String>,
    unix: Option<i64>,
) -> Result<Option<OffsetDateTime>, String> {
    let from_rfc = rfc
        .map(|s| timefmt::parse_rfc3339(&s).ok_or(format!("{name} \"{s}\" is not RFC 3339")))
        .transpose()?;
    let from_unix = unix
        .map(|n| from_unix(n).ok_or(format!("{name}_unix {n} is not a representable time")))
        .transpose()?;
    match (from_rfc, from_unix) {
        (Some(a), Some(b)) if a.unix_timestamp() != b.unix_timestamp() => {
            Err(format!("{name} and {name}_unix name different instants"))
        }
        (Some(a), _) => Ok(Some(crate::token::whole_seconds(a))),
        (None, b) => Ok(b),
    }
}

impl<'de> Deserialize<'de> for TokenView {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let w = In::deserialize(d)?;
        let created_at = instant("created_at", w.created_at, w.created_at_unix)
            .map_err(D::Error::custom)?
            .ok_or_else(|| D::Error::missing_field("created_at"))?;
        let expiry = instant("expires_at", w.expires_at, w.expires_at_unix)
            .map_err(D::Error::custom)?
            .map_or(Expiry::NEVER, Expiry::at);
        let last_used_at = instant("last_used_at", w.last_used_at, w.last_used_at_unix)
            .map_err(D::Error::custom)?;
        if last_used_at.is_none() && w.last_used_ip.is_some() {
            return Err(D::Error::custom("last_used_ip without last_used_at"));
        }
        let secret_generated_at = instant(
            "secret_generated_at",
            w.secret_generated_at,
            w.secret_generated_at_unix,
        )
        .map_err(D::Error::custom)?;
        let revoked_at =
            instant("revoked_at", w.revoked_at, w.revoked_at_unix).map_err(D::Error::custom)?;
        let revoked = match (revoked_at, w.revoked_by) {
            (Some(at), Some(by)) => Some(Revoked { at, by }),
            (None, None) => None,
            _ => {
                return Err(D::Error::custom(
                    "revoked_at and revoked_by are given together or not at all",
                ));
            }
        };
        Ok(Self {
            id: w.id,
            name: w.name,
            description: w.description,
            owner: w.owner,
            creator: w.creator,
            status: w.status,
            permissions: w.permissions,
            allowlist: w.allowlist,
            created_at,
            expiry,
            last_use: last_used_at.map(|at| LastUse {
                at,
                ip: w.last_used_ip,
            }),
            secret_generated_at,
            revoked,
            balance: match (&w.limits, w.credits_remaining) {
                (
                    Some(Limits {
                        credits: Some(c), ..
                    }),
                    Some(remaining),
                ) => Some(Balance::new(remaining, c.refilled_at)),
                _ => None,
            },
            limits: w.limits.filter(|l| !l.is_empty()).map(Arc::new),
        })
    }
}

/// A new token and its secret, to be put into a response once, without copying the secret out
/// of its wrapper: `Serialize` writes the [`TokenView`] members and `"secret"`, and the secret
/// is wiped when this value is dropped. Made by [`Issued::reveal`](crate::Issued::reveal).
///
/// It is the only type in the crate whose serialization holds a secret; its name says so where
/// it is used. `Debug` shows the view and a redacted secret.
///
/// ```
/// use api_tokens::{Actor, NewToken, Tokens, UserId};
/// let tokens = Tokens::in_memory();
/// let alice = Actor::user(UserId::new("alice")?);
/// let issued = tokens.issue(&alice, NewToken::new("ci".parse()?).permissions("deploy".parse()?))?;
/// let body = serde_json::to_value(issued.reveal())?; // the response: shown once
/// assert!(body["secret"].as_str().unwrap().starts_with("tok_"));
/// assert_eq!(body["name"], "ci");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Revealed {
    /// The token.
    pub token: TokenView,
    secret: TokenSecret,
}

impl Revealed {
    /// A view and the secret that goes with it.
    pub fn new(token: TokenView, secret: TokenSecret) -> Self {
        Self { token, secret }
    }

    /// The secret.
    pub fn secret(&self) -> &TokenSecret {
        &self.secret
    }
}

impl Serialize for Revealed {
    /// The [`TokenView`] members and `"secret"`: the plaintext.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Out::new(&self.token, Some(self.secret.expose())).serialize(s)
    }
}

impl fmt::Debug for Revealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Revealed")
            .field("token", &self.token)
            .field("secret", &self.secret)
            .finish()
    }
}
