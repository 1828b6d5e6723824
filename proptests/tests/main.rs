//! The property tests of `api-tokens`: one binary, a module per subject. A new file here
//! becomes a module by a `mod` line below (`autotests = false`: cargo builds only this file),
//! and `every_test_file_is_a_module` fails for a file nobody declared, which would never run.
//!
//! Failing cases proptest found are kept in `proptests/proptest-regressions/<module>.txt` and
//! run again first (proptest puts them beside the directory holding `main.rs`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unreachable,
    reason = "a test reports a failure by panicking"
)]

#[path = "../../tests/support/test_files.rs"]
mod test_files;

mod allowlist;
mod hostile;
mod limits;
mod permissions;
mod query;
mod secret_format;
mod values;

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
