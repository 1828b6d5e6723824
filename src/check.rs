//! The authentication decision as a pure function: a token record, an instant, a client address
//! and the owner's state in, a [`Grant`] or a [`Denial`] out. No clock, store or network.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use crate::directory::UserState;
use crate::error::{MalformedSecret, StoreError};
use crate::permission::{Permission, PermissionSet};
use crate::store::Candidate;
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

/// A successful authentication: who the request acts as and what it may do.
#[derive(Clone, PartialEq, Eq, Debug)]
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
}

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
        }
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
/// | [`Unavailable`](PublicDenial::Unavailable) | `unavailable` | 503 | Service unavailable. |
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
            Self::Unavailable => "unavailable",
        }
    }

    /// The HTTP status that fits: `401` when the token is not (or no longer) valid, `403` when
    /// it is valid but not for this address or operation, `503` when the store failed.
    pub const fn http_status(&self) -> u16 {
        match self {
            Self::InvalidToken | Self::Expired => 401,
            Self::AddressNotAllowed | Self::Forbidden => 403,
            Self::Unavailable => 503,
        }
    }
}

impl Serialize for PublicDenial {
    /// `{"code": …, "message": …}`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("code", self.code())?;
        map.serialize_entry("message", &self.to_string())?;
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
            | Self::MissingPermission { token, .. } => Some(*token),
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
            Self::Store(_) | Self::Stale { .. } => PublicDenial::Unavailable,
        }
    }
}

/// Decides one authentication, in this order: a previous secret past its grace period
/// (superseded), disabled, expired (`expires_at <= now`), owner unknown or inactive, client
/// address not allowed (fail closed when a non-empty allowlist meets an unknown address). On
/// success the grant's permissions are the token's intersected with the owner's current rights.
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
    Ok(Grant {
        token: id,
        name: token.name.clone(),
        owner: token.owner.clone(),
        permissions: match rights {
            Some(rights) => intersect(token.permissions, &rights),
            None => token.permissions.clone(),
        },
    })
}
