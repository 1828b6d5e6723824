//! The authentication decision as a pure function: a token record, an instant, a client address
//! and the owner's state in, a [`Grant`] or a [`Denial`] out. No clock, store or network.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use crate::directory::UserState;
use crate::error::{MalformedSecret, StoreError};
use crate::limits::{Charge, LimitRefusal, Remaining};
use crate::permission::{Permission, PermissionSet};
use crate::store::{Candidate, CandidateLimits, LimitState};
use crate::token::{TokenId, TokenName, UserId};

/// What the host knows of the request being authenticated. The client address is the host's to
/// establish (the peer address, or a forwarding header it trusts); the crate never reads headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestContext {
    /// The client's address. A token with a non-empty allowlist is refused when this is `None`.
    pub client_ip: Option<IpAddr>,
}

impl RequestContext {
    /// A request from `ip`.
    pub fn from_ip(ip: IpAddr) -> Self {
        Self {
            client_ip: Some(ip),
        }
    }

    /// A request whose address is not known (only tokens without an allowlist pass).
    pub fn unknown_address() -> Self {
        Self { client_ip: None }
    }
}

/// A successful authentication: who the request acts as, what it may do, and what remains of
/// the token's limits.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Grant {
    /// The token used.
    pub token: TokenId,
    /// Its name.
    pub name: TokenName,
    /// The user the request acts as.
    pub owner: UserId,
    /// The token's permissions intersected with the owner's current rights.
    pub permissions: PermissionSet,
    /// What the token's limits left, and a handle on their state for [`Grant::spend`]; `None`
    /// for a token without limits (one pointer: an unlimited grant stays small).
    limited: Option<Box<Limited>>,
}

/// The limits part of a [`Grant`].
#[derive(Clone, Debug)]
struct Limited {
    remaining: Vec<Remaining>,
    meter: Option<Arc<dyn LimitState>>,
}

impl PartialEq for Grant {
    /// Two grants are equal when they say the same (the handle on the limits' state aside).
    fn eq(&self, other: &Self) -> bool {
        self.token == other.token
            && self.name == other.name
            && self.owner == other.owner
            && self.permissions == other.permissions
            && self.limits() == other.limits()
    }
}

impl Eq for Grant {}

impl Grant {
    /// A grant as authentication makes one: for a host's tests of its handlers and of code
    /// that takes a `Grant` (in service, only [`Tokens::authenticate`](crate::Tokens::authenticate)
    /// hands them out, with `permissions` already intersected with the owner's rights).
    pub fn new(token: TokenId, name: TokenName, owner: UserId, permissions: PermissionSet) -> Self {
        Self {
            token,
            name,
            owner,
            permissions,
            limited: None,
        }
    }

    /// What remains of each limit this authentication was charged to, and when it resets
    /// (empty for a token without limits that count authentications).
    pub fn limits(&self) -> &[Remaining] {
        self.limited.as_deref().map_or(&[], |l| &l.remaining)
    }

    /// Spends `cost` on the meter `meter` (a name of the host's: `"tokens"`, `"bytes"`) now (the
    /// system clock; [`Tokens::spend`](crate::Tokens::spend) reads the facade's clock, and
    /// [`Grant::spend_at`] takes the instant): every limit of the token that counts this meter must admit it, and
    /// then each counts it (all or nothing). Returns what remains of each; empty when no limit
    /// of the token counts this meter (nothing to refuse). A cost of 0 checks without
    /// spending.
    ///
    /// ```
    /// use api_tokens::limits::{Credits, LimitName, Limits};
    /// use api_tokens::{Actor, NewToken, RequestContext, Tokens, UserId};
    /// let tokens = Tokens::in_memory();
    /// let alice = Actor::user(UserId::new("alice")?);
    /// let llm = LimitName::new("llm.tokens")?;
    /// let credits = Credits::new(1_000, tokens.now())?.on_meter(llm);
    /// let t = NewToken::new("bot".parse()?)
    ///     .permissions("chat".parse()?)
    ///     .limits(Limits::none().credits(credits));
    /// let issued = tokens.issue(&alice, t)?;
    /// let grant = tokens.authenticate(issued.secret.expose(), &RequestContext::unknown_address())?;
    /// grant.spend("llm.tokens", 600)?;
    /// let refused = grant.spend("llm.tokens", 600).unwrap_err();
    /// assert_eq!((refused.code(), refused.http_status()), ("usage_exceeded", 429));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Denial::Limited`] when a limit refuses (with when to retry), [`Denial::Store`] when
    /// the store failed to charge; nothing was spent.
    pub fn spend(&self, meter: &str, cost: u64) -> Result<Vec<Remaining>, Denial> {
        self.spend_at(meter, cost, OffsetDateTime::now_utc())
    }

    /// [`Grant::spend`] at `now`.
    ///
    /// # Errors
    /// As [`Grant::spend`].
    pub fn spend_at(
        &self,
        meter: &str,
        cost: u64,
        now: OffsetDateTime,
    ) -> Result<Vec<Remaining>, Denial> {
        let Some(state) = self.limited.as_ref().and_then(|l| l.meter.as_ref()) else {
            return Ok(Vec::new());
        };
        charge(&**state, self.token, Charge::Spend { meter, cost }, now)
    }

    /// Whether the grant allows `permission`.
    pub fn allows(&self, permission: &Permission) -> bool {
        self.permissions.allows(permission)
    }

    /// Requires `permission`.
    ///
    /// # Errors
    /// [`Denial::MissingPermission`] naming it.
    pub fn require(&self, permission: &Permission) -> Result<(), Denial> {
        if self.allows(permission) {
            Ok(())
        } else {
            Err(Denial::MissingPermission {
                token: self.token,
                permission: permission.clone(),
            })
        }
    }
}

/// Why a request was refused: precise, for logs. Tell the client only [`Denial::public`].
///
/// [`Denial::code`] is a stable snake_case code for logs and metrics (the same as
/// [`DenialKind`]'s), [`Denial::http_status`] the status of the public form.
///
/// | denial | code | public form | HTTP |
/// | --- | --- | --- | --- |
/// | [`Malformed`](Denial::Malformed) | `malformed` | [`InvalidToken`](PublicDenial::InvalidToken) | 401 |
/// | [`Unknown`](Denial::Unknown) | `unknown` | [`InvalidToken`](PublicDenial::InvalidToken) | 401 |
/// | [`Superseded`](Denial::Superseded) | `superseded` | [`InvalidToken`](PublicDenial::InvalidToken) | 401 |
/// | [`Disabled`](Denial::Disabled) | `disabled` | [`InvalidToken`](PublicDenial::InvalidToken) | 401 |
/// | [`OwnerUnknown`](Denial::OwnerUnknown) | `owner_unknown` | [`InvalidToken`](PublicDenial::InvalidToken) | 401 |
/// | [`OwnerInactive`](Denial::OwnerInactive) | `owner_inactive` | [`InvalidToken`](PublicDenial::InvalidToken) | 401 |
/// | [`Expired`](Denial::Expired) | `expired` | [`Expired`](PublicDenial::Expired) | 401 |
/// | [`AddressNotAllowed`](Denial::AddressNotAllowed) | `address_not_allowed` | [`AddressNotAllowed`](PublicDenial::AddressNotAllowed) | 403 |
/// | [`MissingPermission`](Denial::MissingPermission) | `missing_permission` | [`Forbidden`](PublicDenial::Forbidden) | 403 |
/// | [`Limited`](Denial::Limited) (a rate limit) | `rate_limited` | [`RateLimited`](PublicDenial::RateLimited) | 429 |
/// | [`Limited`](Denial::Limited) (credits) | `usage_exceeded` | [`UsageExceeded`](PublicDenial::UsageExceeded) | 429 |
/// | [`Store`](Denial::Store) | `store_unavailable` | [`Unavailable`](PublicDenial::Unavailable) | 503 |
/// | [`Stale`](Denial::Stale) | `replica_stale` | [`Unavailable`](PublicDenial::Unavailable) | 503 |
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Denial {
    /// Not a well-formed secret of the policy's format; refused before hashing or any lookup.
    #[error("malformed token: {0}")]
    Malformed(MalformedSecret),
    /// No token has this secret.
    #[error("unknown token")]
    Unknown,
    /// The secret was replaced by a newer one and its grace period (if any) is over.
    #[error("token {token}: secret was replaced by a newer one")]
    Superseded {
        /// The token.
        token: TokenId,
    },
    /// The token is disabled.
    #[error("token {token} is disabled")]
    Disabled {
        /// The token.
        token: TokenId,
    },
    /// The token expired (`expires_at <= now`).
    #[error("token {token} expired")]
    Expired {
        /// The token.
        token: TokenId,
    },
    /// The directory does not know the owner.
    #[error("token {token}: owner is unknown")]
    OwnerUnknown {
        /// The token.
        token: TokenId,
    },
    /// The owner is disabled.
    #[error("token {token}: owner is inactive")]
    OwnerInactive {
        /// The token.
        token: TokenId,
    },
    /// The client address is not in the token's allowlist (or was not given).
    #[error("token {token}: client address {} not allowed", display_ip(.ip))]
    AddressNotAllowed {
        /// The token.
        token: TokenId,
        /// The client address, if the host gave one.
        ip: Option<IpAddr>,
    },
    /// Authenticated, but the grant lacks a permission the request needs.
    #[error("token {token}: missing permission {permission}")]
    MissingPermission {
        /// The token.
        token: TokenId,
        /// The permission required.
        permission: Permission,
    },
    /// A limit of the token refused the charge: a rate limit is used up for now
    /// (`rate_limited`) or its credits cannot cover it (`usage_exceeded`). Nothing was
    /// charged.
    #[error("token {token}: {refusal}")]
    Limited {
        /// The token.
        token: TokenId,
        /// Which limit refused, and why (boxed: a denial stays small on every path).
        refusal: Box<LimitRefusal>,
        /// How long to wait before trying again, when that is known (a rate limit always; credits
        /// when they are refilled).
        retry_after: Option<time::Duration>,
    },
    /// The store failed; nothing was granted.
    #[error("token store failed")]
    Store(#[source] Arc<StoreError>),
    /// A replica could not confirm it is current within its staleness bound, so it refuses
    /// every token until it has caught up (fails closed). Not the token's fault: the client may
    /// retry, on this replica later or on another.
    #[error("replica not confirmed current for {unconfirmed_for:?}; refusing until caught up")]
    Stale {
        /// How long since the replica last confirmed it was current.
        unconfirmed_for: std::time::Duration,
    },
}

fn display_ip(ip: &Option<IpAddr>) -> String {
    ip.map_or_else(|| "(none given)".to_owned(), |ip| ip.to_string())
}

/// The reason of a [`Denial`] without its data: for events and metrics. Serialized as its
/// [`code`](DenialKind::code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DenialKind {
    /// See [`Denial::Malformed`].
    Malformed,
    /// See [`Denial::Unknown`].
    Unknown,
    /// See [`Denial::Superseded`].
    Superseded,
    /// See [`Denial::Disabled`].
    Disabled,
    /// See [`Denial::Expired`].
    Expired,
    /// See [`Denial::OwnerUnknown`].
    OwnerUnknown,
    /// See [`Denial::OwnerInactive`].
    OwnerInactive,
    /// See [`Denial::AddressNotAllowed`].
    AddressNotAllowed,
    /// See [`Denial::MissingPermission`].
    MissingPermission,
    /// [`Denial::Limited`] by a rate limit.
    RateLimited,
    /// [`Denial::Limited`] by credits.
    UsageExceeded,
    /// See [`Denial::Store`].
    #[serde(rename = "store_unavailable")]
    Store,
    /// See [`Denial::Stale`].
    #[serde(rename = "replica_stale")]
    Stale,
}

impl DenialKind {
    /// The stable snake_case code (the table at [`Denial`]).
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Unknown => "unknown",
            Self::Superseded => "superseded",
            Self::Disabled => "disabled",
            Self::Expired => "expired",
            Self::OwnerUnknown => "owner_unknown",
            Self::OwnerInactive => "owner_inactive",
            Self::AddressNotAllowed => "address_not_allowed",
            Self::MissingPermission => "missing_permission",
            Self::RateLimited => "rate_limited",
            Self::UsageExceeded => "usage_exceeded",
            Self::Store => "store_unavailable",
            Self::Stale => "replica_stale",
        }
    }
}

/// What a client may be told. Unknown, malformed, replaced and disabled tokens, and tokens of
/// unknown or inactive owners, all look the same (as in Zabbix), so a client cannot probe which
/// tokens exist; an expired token may be told apart so that its user knows to renew it.
///
/// | public form | code | HTTP | message |
/// | --- | --- | --- | --- |
/// | [`InvalidToken`](PublicDenial::InvalidToken) | `invalid_token` | 401 | Not authorized. |
/// | [`Expired`](PublicDenial::Expired) | `token_expired` | 401 | API token expired. |
/// | [`AddressNotAllowed`](PublicDenial::AddressNotAllowed) | `address_not_allowed` | 403 | Not allowed from this address. |
/// | [`Forbidden`](PublicDenial::Forbidden) | `missing_permission` | 403 | No permissions for this operation. |
/// | [`RateLimited`](PublicDenial::RateLimited) | `rate_limited` | 429 | Rate limit exceeded. |
/// | [`UsageExceeded`](PublicDenial::UsageExceeded) | `usage_exceeded` | 429 | Usage limit exceeded. |
/// | [`Unavailable`](PublicDenial::Unavailable) | `unavailable` | 503 | Service unavailable. |
///
/// The two limit refusals also say when to retry (whole seconds, rounded up), which the
/// token's holder may know; `Serialize` adds it as `retry_after`.
///
/// `Serialize` writes `{"code", "message"}`, a response body as it is:
///
/// ```
/// use api_tokens::{RequestContext, Tokens};
/// let denial = Tokens::in_memory()
///     .authenticate("tok_guess", &RequestContext::unknown_address())
///     .unwrap_err();
/// let public = denial.public();
/// assert_eq!((public.code(), public.http_status()), ("invalid_token", 401));
/// assert_eq!(
///     serde_json::to_string(&public)?,
///     r#"{"code":"invalid_token","message":"Not authorized."}"#
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PublicDenial {
    /// "Not authorized": the token is not valid.
    InvalidToken,
    /// The token has expired.
    Expired,
    /// The token may not be used from this address.
    AddressNotAllowed,
    /// The token may not do this.
    Forbidden,
    /// A rate limit of the token is used up for now.
    RateLimited {
        /// Seconds to wait before trying again (rounded up).
        retry_after_secs: u64,
    },
    /// The token's credits are used up.
    UsageExceeded {
        /// Seconds until they are refilled (rounded up), if they are.
        retry_after_secs: Option<u64>,
    },
    /// A temporary failure; try again.
    Unavailable,
}

impl fmt::Display for PublicDenial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidToken => "Not authorized.",
            Self::Expired => "API token expired.",
            Self::AddressNotAllowed => "Not allowed from this address.",
            Self::Forbidden => "No permissions for this operation.",
            Self::RateLimited { .. } => "Rate limit exceeded.",
            Self::UsageExceeded { .. } => "Usage limit exceeded.",
            Self::Unavailable => "Service unavailable.",
        })
    }
}

impl PublicDenial {
    /// The stable snake_case code (the table at [`PublicDenial`]).
    pub const fn code(&self) -> &'static str {
        match self {
            Self::InvalidToken => "invalid_token",
            Self::Expired => "token_expired",
            Self::AddressNotAllowed => "address_not_allowed",
            Self::Forbidden => "missing_permission",
            Self::RateLimited { .. } => "rate_limited",
            Self::UsageExceeded { .. } => "usage_exceeded",
            Self::Unavailable => "unavailable",
        }
    }

    /// Seconds the client should wait before trying again, when the refusal says
    /// (`Retry-After`).
    pub const fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            Self::UsageExceeded { retry_after_secs } => *retry_after_secs,
            _ => None,
        }
    }

    /// The HTTP status that fits: `401` when the token is not (or no longer) valid, `403` when
    /// it is valid but not for this address or operation, `429` when a limit refused it, `503`
    /// when the store failed.
    pub const fn http_status(&self) -> u16 {
        match self {
            Self::InvalidToken | Self::Expired => 401,
            Self::AddressNotAllowed | Self::Forbidden => 403,
            Self::RateLimited { .. } | Self::UsageExceeded { .. } => 429,
            Self::Unavailable => 503,
        }
    }
}

impl Serialize for PublicDenial {
    /// `{"code": …, "message": …}`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("code", self.code())?;
        map.serialize_entry("message", &self.to_string())?;
        if let Some(secs) = self.retry_after_secs() {
            map.serialize_entry("retry_after", &secs)?;
        }
        map.end()
    }
}

impl Denial {
    /// The stable snake_case code, for logs and metrics (the table at [`Denial`]). Tell the
    /// client only [`PublicDenial::code`].
    pub const fn code(&self) -> &'static str {
        self.kind().code()
    }

    /// The HTTP status of the public form (what the client is told).
    pub const fn http_status(&self) -> u16 {
        self.public().http_status()
    }

    /// The reason without data.
    pub const fn kind(&self) -> DenialKind {
        match self {
            Self::Malformed(_) => DenialKind::Malformed,
            Self::Unknown => DenialKind::Unknown,
            Self::Superseded { .. } => DenialKind::Superseded,
            Self::Disabled { .. } => DenialKind::Disabled,
            Self::Expired { .. } => DenialKind::Expired,
            Self::OwnerUnknown { .. } => DenialKind::OwnerUnknown,
            Self::OwnerInactive { .. } => DenialKind::OwnerInactive,
            Self::AddressNotAllowed { .. } => DenialKind::AddressNotAllowed,
            Self::MissingPermission { .. } => DenialKind::MissingPermission,
            Self::Limited { refusal, .. } => match **refusal {
                LimitRefusal::RateLimited { .. } => DenialKind::RateLimited,
                LimitRefusal::UsageExceeded { .. } => DenialKind::UsageExceeded,
            },
            Self::Store(_) => DenialKind::Store,
            Self::Stale { .. } => DenialKind::Stale,
        }
    }

    /// The token the denial is about, when one was found.
    pub fn token(&self) -> Option<TokenId> {
        match self {
            Self::Superseded { token }
            | Self::Disabled { token }
            | Self::Expired { token }
            | Self::OwnerUnknown { token }
            | Self::OwnerInactive { token }
            | Self::AddressNotAllowed { token, .. }
            | Self::MissingPermission { token, .. }
            | Self::Limited { token, .. } => Some(*token),
            Self::Malformed(_) | Self::Unknown | Self::Store(_) | Self::Stale { .. } => None,
        }
    }

    /// What the client may be told.
    pub const fn public(&self) -> PublicDenial {
        match self {
            Self::Malformed(_)
            | Self::Unknown
            | Self::Superseded { .. }
            | Self::Disabled { .. }
            | Self::OwnerUnknown { .. }
            | Self::OwnerInactive { .. } => PublicDenial::InvalidToken,
            Self::Expired { .. } => PublicDenial::Expired,
            Self::AddressNotAllowed { .. } => PublicDenial::AddressNotAllowed,
            Self::MissingPermission { .. } => PublicDenial::Forbidden,
            Self::Limited {
                refusal,
                retry_after,
                ..
            } => match **refusal {
                LimitRefusal::RateLimited { .. } => PublicDenial::RateLimited {
                    retry_after_secs: match retry_after {
                        Some(d) => ceil_secs(*d),
                        None => 0,
                    },
                },
                LimitRefusal::UsageExceeded { .. } => PublicDenial::UsageExceeded {
                    retry_after_secs: match retry_after {
                        Some(d) => Some(ceil_secs(*d)),
                        None => None,
                    },
                },
            },
            Self::Store(_) | Self::Stale { .. } => PublicDenial::Unavailable,
        }
    }
}

/// Whole seconds in `d`, rounded up; 0 for a negative span.
const fn ceil_secs(d: time::Duration) -> u64 {
    let secs = d.whole_seconds();
    if secs < 0 || (secs == 0 && d.subsec_nanoseconds() <= 0) {
        return 0;
    }
    let up = if d.subsec_nanoseconds() > 0 { 1 } else { 0 };
    secs.unsigned_abs() + up
}

/// Charges `charge` to the limits in `state` at `now`, as a denial of `token` when refused.
fn charge(
    state: &dyn LimitState,
    token: TokenId,
    charge: Charge<'_>,
    now: OffsetDateTime,
) -> Result<Vec<Remaining>, Denial> {
    match state.charge(charge, now) {
        Ok(Ok(remaining)) => Ok(remaining),
        Ok(Err(refusal)) => Err(Denial::Limited {
            token,
            retry_after: refusal.retry_after(now),
            refusal: Box::new(refusal),
        }),
        Err(e) => Err(Denial::Store(Arc::new(e))),
    }
}

/// Decides one authentication, in this order: a previous secret past its grace period
/// (superseded), disabled, expired (`expires_at <= now`), owner unknown or inactive, client
/// address not allowed (fail closed when a non-empty allowlist meets an unknown address), and
/// last the token's limits that count authentications (charged only when everything else
/// passed; a record whose limits the store does not enforce is refused). On success the
/// grant's permissions are the token's intersected with the owner's current rights.
///
/// `owner` is asked only when the token itself passes, and at most once.
///
/// # Errors
/// The first check that fails, as a [`Denial`].
pub fn decide(
    token: &Candidate<'_>,
    now: OffsetDateTime,
    client_ip: Option<IpAddr>,
    owner: impl FnOnce(&UserId) -> UserState,
) -> Result<Grant, Denial> {
    let now_unix = now.unix_timestamp();
    decide_with(
        token,
        now,
        now_unix,
        client_ip,
        owner,
        PermissionSet::intersection,
    )
}

/// [`decide`], intersecting the token's permissions with the owner's rights through
/// `intersect` (the facade passes its memo, so a large set is not intersected per request).
/// `now_unix` is `now` in Unix seconds, computed once by the caller.
#[inline]
pub(crate) fn decide_with(
    token: &Candidate<'_>,
    now: OffsetDateTime,
    now_unix: i64,
    client_ip: Option<IpAddr>,
    owner: impl FnOnce(&UserId) -> UserState,
    intersect: impl FnOnce(&PermissionSet, &PermissionSet) -> PermissionSet,
) -> Result<Grant, Denial> {
    debug_assert_eq!(
        now.unix_timestamp(),
        now_unix,
        "now_unix is now in Unix seconds"
    );
    let id = token.id;
    if !token.matched.is_live_at(now) {
        return Err(Denial::Superseded { token: id });
    }
    if token.status != crate::token::Status::Enabled {
        return Err(Denial::Disabled { token: id });
    }
    if token.expiry.is_expired_at_unix(now_unix) {
        return Err(Denial::Expired { token: id });
    }
    let rights = match owner(token.owner) {
        UserState::Active(rights) => Some(rights),
        UserState::Unrestricted => None,
        UserState::Inactive => return Err(Denial::OwnerInactive { token: id }),
        UserState::Unknown => return Err(Denial::OwnerUnknown { token: id }),
    };
    let allowed = match client_ip {
        Some(ip) => token.allowlist.allows(ip),
        None => token.allowlist.is_empty(),
    };
    if !allowed {
        return Err(Denial::AddressNotAllowed {
            token: id,
            ip: client_ip,
        });
    }
    // The one branch a token without limits pays.
    let limited = match token.limits {
        CandidateLimits::None => None,
        CandidateLimits::Enforced(state) => Some(charged(state, id, now)?),
        CandidateLimits::Unenforced => {
            return Err(Denial::Store(Arc::new(StoreError::LimitsUnsupported)));
        }
    };
    Ok(Grant {
        token: id,
        name: token.name.clone(),
        owner: token.owner.clone(),
        permissions: match rights {
            Some(rights) => intersect(token.permissions, &rights),
            None => token.permissions.clone(),
        },
        limited,
    })
}

/// The limits part of a decision, out of line: charges the limits that count authentications
/// and keeps a handle for [`Grant::spend`] when some count a meter.
#[inline(never)]
fn charged(
    state: &Arc<dyn LimitState>,
    id: TokenId,
    now: OffsetDateTime,
) -> Result<Box<Limited>, Denial> {
    let remaining = if state.counts_authentications() {
        charge(&**state, id, Charge::Authentication, now)?
    } else {
        Vec::new()
    };
    let meter = state.has_meters().then(|| Arc::clone(state));
    Ok(Box::new(Limited { remaining, meter }))
}
