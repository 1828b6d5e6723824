//! The integration tests of `api-tokens-axum`: one binary, a module per behaviour, one support
//! module (`support`: a server on 127.0.0.1, a raw HTTP client, a counting store, captured
//! logs, and the WebDriver client of the browser tests).
//!
//! Run one behaviour with a filter: `cargo test -p api-tokens-axum --all-features --test main
//! -- page::`. The files beside this one are its modules, not binaries of their own
//! (`autotests = false`): a new file becomes a module by a `mod` line here, and
//! [`every_test_file_is_a_module`] fails for a file nobody declared. Modules that need a
//! feature say so on their `mod` line.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test reports a failure by panicking"
)]

mod support;
#[path = "../../tests/support/test_files.rs"]
mod test_files;

/// The page example's demo (its store, users and app), shared with the browser tests.
#[cfg(feature = "page")]
#[path = "../examples/page/demo.rs"]
#[allow(dead_code)]
mod demo;

/// The core's real-PostgreSQL fixture (a server the tests start and stop).
#[cfg(feature = "page")]
#[path = "../../tests/support/pg.rs"]
mod pg;

#[cfg(feature = "page")]
mod browser;
mod burst;
mod client_address;
#[cfg(feature = "page")]
mod fleet;
mod layer;
#[cfg(feature = "manage")]
mod manage;
#[cfg(feature = "page")]
mod page;
#[cfg(feature = "page")]
mod page_example;
#[cfg(feature = "page")]
mod presets;
mod probes;
mod readme;
mod refusal_log;

/// Every `.rs` file under `tests/` is a module some file declares ([`test_files`]).
#[test]
fn every_test_file_is_a_module() {
    let tests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let undeclared = test_files::undeclared(&tests);
    assert!(
        undeclared.is_empty(),
        "test files no module declares (add a `mod` line): {undeclared:?}"
    );
}
