//! Guides: longer walks through a deployment than the crate docs' tutorial, one topic each.
//! Every Rust block is a doctest, except where a block needs a crate this one does not depend
//! on (it says which).
//!
//! * [`web_service`]: a JSON API with self-service tokens around the crate, framework-neutral.
//! * `fleet` (feature `postgres`): running replicas over one PostgreSQL — TLS, the staleness
//!   bound, restores and hand-made SQL, final revocation, health and operations.
//! * [`custom_store`]: implementing [`TokenStore`](crate::TokenStore) over your own database,
//!   and the conformance suite.
//! * [`key_rotation`]: the startup key check, and changing the hash key without reissuing
//!   tokens.
//! * [`limits`]: usage limits (credits) and rate limits per token — setting them, refusals,
//!   the sliding window and its guarantee, where each store keeps their state.
//! * `migration` (feature `legacy`): importing tokens from Zabbix or another system with their
//!   secrets, in code or with the `api-tokens` command line.

#[doc = include_str!("guide/web_service.md")]
pub mod web_service {}

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
#[doc = include_str!("guide/fleet.md")]
pub mod fleet {}

#[doc = include_str!("guide/custom_store.md")]
pub mod custom_store {}

#[doc = include_str!("guide/key_rotation.md")]
pub mod key_rotation {}

#[doc = include_str!("guide/limits.md")]
pub mod limits {}

#[cfg(feature = "legacy")]
#[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
#[doc = include_str!("guide/migration.md")]
pub mod migration {}

// The repository README's Rust blocks are doctests too, so the front door's code cannot drift
// from the API (its axum blocks are compiled by api-tokens-axum's README, whose doctests they
// are part of: `api-tokens-axum/tests/readme.rs`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}
