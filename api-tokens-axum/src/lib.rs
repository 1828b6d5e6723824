#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]
#![warn(clippy::missing_errors_doc, clippy::missing_panics_doc)]
// No panics in library code, as in the core crate.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod client_ip;
mod credentials;
pub mod health;
mod layer;
#[cfg(feature = "manage")]
#[cfg_attr(docsrs, doc(cfg(feature = "manage")))]
pub mod manage;
#[cfg(feature = "page")]
#[cfg_attr(docsrs, doc(cfg(feature = "page")))]
pub mod page;
mod refusal;
mod require;
mod spend;

pub use client_ip::ClientAddress;
pub use credentials::{Absent, CredentialProblem, Presented, SecretSources, Source};
pub use layer::{AuthLayer, AuthService, Authenticated, ResponseFuture};
pub use refusal::{Refusal, add_rate_limit_headers};
pub use require::{RequireLayer, RequireService, require};
pub use spend::{SpendLayer, SpendService, spend};
