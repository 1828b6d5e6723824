//! Test support shared by every module of the test binary: the fixtures most tests start from
//! (the actor, requests, tokens, hash keys), a store wrapper with hooks (`hooked`), running the
//! example programs (`examples`) and single tests of this binary in a child process (`child`),
//! temporary directories, and, with the `postgres` feature, a real PostgreSQL server (`pg`) and
//! a fleet of replicas (`fleet`).
//!
//! Nothing here is process-global state: every test of the binary shares one process, so a
//! fixture never sets an environment variable, the current directory or a signal disposition
//! of its own process (a child gets its environment through `Command::env`).
//!
//! Each feature set uses a part of it (the `sqlite` tests a helper the others do not): what one
//! build leaves unused is not dead.
#![allow(dead_code, unused_imports, unused_macros)]

pub mod child;
pub mod env;
pub mod examples;
#[cfg(feature = "postgres")]
pub mod fleet;
pub mod hooked;
pub mod keys;
#[cfg(feature = "legacy")]
pub mod legacy;
#[cfg(feature = "postgres")]
pub mod pg;
mod temp_dir;
pub mod test_files;

use std::net::IpAddr;
use std::sync::Arc;

use api_tokens::{
    Actor, Issued, NewToken, PermissionSet, RequestContext, TokenName, TokenStore, Tokens, UserId,
    clock::ManualClock, events::CollectEvents,
};
use time::OffsetDateTime;
use time::macros::datetime;

pub use examples::{Session, example, json_lines, run, run_lossy};
pub use temp_dir::{TempDir, temp_entries};

/// The instant the shared fixtures' manual clocks start at.
pub const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

/// User `n`.
pub fn uid(n: u64) -> UserId {
    UserId::from(n)
}

/// The administrator the tests act as: user 1, who may manage every token.
pub fn admin() -> Actor {
    Actor::admin(uid(1))
}

/// A token name the test knows is valid.
pub fn name(s: &str) -> TokenName {
    TokenName::new(s).unwrap()
}

/// An IP address the test knows is valid.
pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A request from `ip`.
pub fn from(s: &str) -> RequestContext {
    RequestContext::from_ip(ip(s))
}

/// A request whose address the test does not care about.
pub fn ctx() -> RequestContext {
    RequestContext::unknown_address()
}

/// A new token named `name` with every permission its owner holds.
pub fn every_permission(name: &str) -> NewToken {
    NewToken::new(name.parse().unwrap()).permissions(PermissionSet::all())
}

/// Issues [`every_permission`]`(name)` as the [`admin`], for the admin.
pub fn issue<S: TokenStore>(tokens: &Tokens<S>, name: &str) -> Issued {
    tokens.issue(&admin(), every_permission(name)).unwrap()
}

/// `bytes` as lowercase hex digits.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Tokens over `store` with a manual clock at [`NOW`] and collected events.
pub fn clocked<S: TokenStore>(store: S) -> (Tokens<S>, Arc<ManualClock>, Arc<CollectEvents>) {
    let clock = Arc::new(ManualClock::new(NOW));
    let events = Arc::new(CollectEvents::new());
    let tokens = Tokens::new(store)
        .with_clock(clock.clone())
        .with_events(events.clone());
    (tokens, clock, events)
}

/// A real PostgreSQL server for this test, or a return from the test when none is installed
/// (`PgServer::start` fails instead under `CI=true`). `server!()` starts a plain one;
/// `server!(expr)` takes the `Option<PgServer>` of another start (one with TLS).
#[cfg(feature = "postgres")]
macro_rules! server {
    () => {
        $crate::support::server!($crate::support::pg::PgServer::start())
    };
    ($start:expr) => {
        match $start {
            Some(s) => s,
            None => return,
        }
    };
}
#[cfg(feature = "postgres")]
pub(crate) use server;
