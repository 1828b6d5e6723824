//! The integration tests of `api-tokens`: one binary, a module per behaviour, one support
//! module (`support`) with the fixtures they share.
//!
//! Run one behaviour with a filter: `cargo test --all-features --test main -- revocation::`.
//! The files beside this one are its modules, not binaries of their own (`autotests = false`):
//! a new file becomes a module by a `mod` line here (or in the parent module's file), and
//! [`every_test_file_is_a_module`] fails for a file nobody declared, which would never run.
//! Modules that need a feature say so on their `mod` line.
//!
//! Every test shares this one process: no test sets an environment variable, changes the
//! current directory or a signal disposition, or keeps state in a global that another test
//! reads. A test that needs another process runs one (`support::child`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test reports a failure by panicking"
)]

mod support;

mod authentication;
mod bounds;
mod concurrency;
mod errors;
mod examples;
mod hash_keys;
#[cfg(feature = "postgres")]
mod health;
mod hygiene;
#[cfg(feature = "legacy")]
mod imports;
mod management;
#[cfg(feature = "metrics")]
mod metrics;
mod public_types;
mod revocation;
mod rotation;
mod snapshots;
mod stores;
mod usage_limits;
mod view;

/// Every `.rs` file under `tests/` is a module some file declares ([`support::test_files`]).
#[test]
fn every_test_file_is_a_module() {
    let tests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let undeclared = support::test_files::undeclared(&tests);
    assert!(
        undeclared.is_empty(),
        "test files no module declares (add a `mod` line): {undeclared:?}"
    );
}
