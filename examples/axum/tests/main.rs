//! The example server's tests: one binary, a module each (`autotests = false`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test reports a failure by panicking"
)]

/// The core's real-PostgreSQL fixture (a server the tests start and stop).
#[path = "../../../tests/support/pg.rs"]
mod pg;

mod http;
mod shutdown;
