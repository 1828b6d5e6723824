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

mod allowlist;
mod hostile;
mod limits;
mod permissions;
mod query;
mod secret_format;
mod values;

/// Every `.rs` file beside this one is a module it declares: with `autotests = false` a file
/// added but never declared would silently never compile nor run.
#[test]
fn every_test_file_is_a_module() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let main = std::fs::read_to_string(dir.join("main.rs")).unwrap();
    let undeclared: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.file_stem().unwrap().to_str().unwrap().to_owned())
        .filter(|m| m != "main" && !main.lines().any(|l| l.trim() == format!("mod {m};")))
        .collect();
    assert!(
        undeclared.is_empty(),
        "test files main.rs does not declare (add a `mod` line): {undeclared:?}"
    );
}
