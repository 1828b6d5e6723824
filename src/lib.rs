//! API tokens done right.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

mod actor;
mod allowlist;
mod check;
mod clock;
mod directory;
mod error;
mod events;
mod permission;
mod policy;
mod secret;
pub mod store;
mod token;
mod tokens;

pub use actor::Actor;
pub use allowlist::IpAllowlist;
pub use check::{Denial, DenialKind, Grant, PublicDenial, RequestContext, decide};
pub use clock::{Clock, ManualClock, SystemClock};
pub use directory::{AllowAllUsers, StaticDirectory, UserDirectory, UserState};
pub use error::{
    Error, Field, Forbidden, MalformedSecret, Problem, Result, StoreError, ValidationError,
};
pub use events::{CollectEvents, EventKind, EventSink, NoEvents, TokenEvent, UpdatedField};
pub use permission::{Permission, PermissionSet};
pub use policy::{NameCharset, Policy};
pub use secret::{
    HashKey, MAX_PRESENTED_LEN, PresentedSecret, SecretFormat, SecretHash, SecretPrefix,
    TokenSecret,
};
pub use store::{MemoryStore, Query, Snapshot, TokenStore};
pub use token::{
    Expiry, LastUse, PreviousSecret, SecretState, Status, Token, TokenId, TokenName, UserId,
};
pub use tokens::{Issued, NewToken, Revocation, TokenUpdate, Tokens};
