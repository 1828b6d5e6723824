//! API tokens done right: named tokens owned by a user, enabled or disabled, with an expiry, a
//! permission list and an IP allowlist; a secret shown once and stored only as a keyed hash;
//! regenerate, mass enable/disable, filters. The model Zabbix (`token.*`, *Users → API tokens*)
//! and cPanel & WHM (`api_token_*`) ship, as a library.
//!
//! # Tutorial
//!
//! A host keeps one [`Tokens`]: a [`Policy`], a store (the embedded [`MemoryStore`] here), and
//! optionally its own clock, hash key, user directory and event sink. Times are
//! [`time::OffsetDateTime`] and [`time::Duration`], re-exported as [`api_tokens::time`](time);
//! the `datetime!` macro below needs `time` in your own `Cargo.toml` (`time = { version =
//! "0.3", features = ["macros"] }`), or write `OffsetDateTime::now_utc()` instead.
//!
//! ```
//! use api_tokens::{
//!     Actor, DenialKind, HashKey, NewToken, Policy, RequestContext, Tokens, UserId, permission,
//! };
//! use api_tokens::clock::ManualClock;
//! use api_tokens::time::Duration;
//! use std::sync::Arc;
//! use time::macros::datetime;
//!
//! let clock = Arc::new(ManualClock::new(datetime!(2026-01-01 9:00 UTC)));
//! let tokens = Tokens::in_memory()
//!     .with_policy(Policy::default())
//!     .with_hash_key(HashKey::new([7; 32])) // yours: HashKey::from_env("API_TOKENS_HASH_KEY")?
//!     .with_clock(clock.clone());
//!
//! // A user issues itself a token: two permissions, a week's life, one network.
//! let alice = Actor::user(UserId::new("alice")?);
//! let issued = tokens.issue(
//!     &alice,
//!     NewToken::new("deploy".parse()?)
//!         .permissions("dns.*, mail.send".parse()?)
//!         .expires_at(tokens.now() + Duration::days(7))
//!         .allowlist("10.0.0.0/8".parse()?),
//! )?;
//! let secret = issued.secret; // shown once: hand it over, then drop it
//!
//! // Every API request: authenticate, then require what the route needs.
//! let office = RequestContext::from_ip("10.1.2.3".parse()?);
//! let grant = tokens.authenticate(secret.expose(), &office)?;
//! assert_eq!(grant.owner.as_str(), "alice");
//! grant.require(&permission!("dns.edit"))?; // checked at compile time, no parse per request
//! assert!(grant.require(&permission!("billing.read")).is_err());
//!
//! // From elsewhere, or after expiry, it is refused with a reason for the log, and a public
//! // form (code, HTTP status, message) for the client.
//! let cafe = RequestContext::from_ip("203.0.113.9".parse()?);
//! let denial = tokens.authenticate(secret.expose(), &cafe).unwrap_err();
//! assert_eq!(denial.kind(), DenialKind::AddressNotAllowed);
//! assert_eq!(denial.public().http_status(), 403);
//! clock.advance(Duration::days(7));
//! let denial = tokens.authenticate(secret.expose(), &office).unwrap_err();
//! assert_eq!((denial.code(), denial.public().code()), ("expired", "token_expired"));
//!
//! // A token states its permissions (least privilege by default); the error says how.
//! let err = tokens.issue(&alice, NewToken::new("lazy".parse()?)).unwrap_err();
//! assert_eq!((err.code(), err.http_status()), ("required", 400));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Management follows the seeds: [`Tokens::create`] (no secret yet), [`Tokens::generate`]
//! (regenerate; the old secret stops working at once or after a grace period),
//! [`Tokens::issue`] (both in one step), [`Tokens::update`], [`Tokens::set_status`] (mass
//! enable/disable), [`Tokens::delete`], [`Tokens::get`], [`Tokens::list`] and
//! [`Tokens::count`] with a [`Query`]. Each batch is all-or-nothing and each refusal is a typed
//! [`Error`] with a stable [`code`](Error::code), an [`HTTP status`](Error::http_status) and a
//! message in plain words, naming the field and, in a batch, the item. What `list` and `get`
//! return serializes as a [`TokenView`]: no hash, ever.
//!
//! The rules are also plain functions ([`decide`], [`Policy`]'s checks, [`Actor::may_manage`])
//! for hosts that keep tokens in their own database and call it themselves, sync or async.
//!
//! [The web service guide](guide::web_service) puts it together behind HTTP: authentication as
//! a plain call, self-service create/list/revoke with JSON bodies, and which calls go through
//! tokio's blocking pool (`AsyncTokens`, or `spawn_blocking`). The other [guides](guide) run a
//! fleet of replicas over PostgreSQL, implement a store over your own database, rotate the hash
//! key and migrate tokens from another system.
//!
//! # Where things are
//!
//! The root holds what a host uses every day: [`Tokens`] and its values, the token's
//! identifiers, permissions, [`Policy`], errors and denials, [`TokenStore`] and [`MemoryStore`].
//! The rest lives in named modules: [`events`] (the audit trail), [`keys`] (which key made a
//! hash), [`legacy`] (imported hashes), [`health`], [`clock`], [`secret`] and [`token`] (the
//! record's parts and the bounds on its values), [`store`] (the port, the filter language and
//! the stores behind features), [`guide`] (long-form operations). Components are configured
//! with `with_*` methods (`Tokens::with_policy`, `SqliteStore::with_touch_interval`); values
//! and option structs with bare setters (`NewToken::owner`, `PostgresOptions::pool_size`).
//!
//! # Non-goals
//!
//! * **Transport.** No HTTP, RPC or header parsing: the host reads the presented secret and the
//!   client address it trusts, and maps [`Denial::public`] to its own responses. The examples
//!   show Zabbix JSON-RPC and WHM API 1; for axum and tower, the workspace's integration crate
//!   `api-tokens-axum` does it (a layer, permission requirements per route, a self-service
//!   router).
//! * **Persistence.** [`MemoryStore`] snapshots to anything serde writes; a database is the
//!   host's, behind the small [`TokenStore`] trait (see the SQLite example). The crate ships
//!   two SQL stores behind features: SQLite (`sqlite`) and PostgreSQL (`postgres`), the latter
//!   with an in-process replica for fleets of processes sharing one database (`store::replica`)
//!   and `AsyncTokens` for tokio hosts. Tokens imported from another system keep their
//!   secrets with the feature `legacy` (`Tokens::with_legacy_scheme`: Zabbix's sha512 hashes,
//!   plain sha256).
//! * **User management.** Users, roles and their rights are the host's; it answers through
//!   [`UserDirectory`].
#![cfg_attr(docsrs, feature(doc_cfg))]

mod actor;
mod allowlist;
#[cfg(feature = "tokio")]
mod async_tokens;
mod check;
pub mod clock;
mod directory;
mod error;
pub mod events;
pub mod guide;
pub mod health;
pub mod keys;
pub mod legacy;
pub mod limits;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
pub mod permission;
pub mod policy;
pub mod secret;
pub mod store;
mod timefmt;
pub mod token;
mod tokens;
mod view;

pub use actor::Actor;
pub use allowlist::IpAllowlist;
#[cfg(feature = "tokio")]
pub use async_tokens::{AsyncTokens, Blocking};
pub use check::{Denial, DenialKind, Grant, PublicDenial, RequestContext, decide};
pub use directory::{AllowAllUsers, StaticDirectory, UserDirectory, UserState};
pub use error::{
    Error, Field, Forbidden, MalformedSecret, Problem, Result, StoreError, ValidationError,
};
#[doc(inline)]
pub use permission::{Permission, PermissionSet};
#[doc(inline)]
pub use policy::Policy;
#[doc(inline)]
pub use secret::{HashKey, HashKeyError, KeyId, SecretFormat, TokenSecret};
#[doc(inline)]
pub use store::{MemoryStore, Query, TokenStore};
#[doc(inline)]
pub use token::{Expiry, Status, Token, TokenId, TokenName, UserId};
pub use tokens::{
    ImportedToken, Issued, NewToken, Revocation, TokenRevocation, TokenUpdate, Tokens,
};
pub use view::{Revealed, TokenView};

/// The `time` crate this crate's API speaks ([`time::OffsetDateTime`], [`time::Duration`]), so
/// that a host need not keep its own `time` dependency in step. Its `macros` (`datetime!`)
/// expand to paths of a crate named `time`: to use them, add `time` to your own `Cargo.toml`.
pub use time;
