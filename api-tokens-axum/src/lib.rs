#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

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
