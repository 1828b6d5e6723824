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

/// Every `.rs` file under `tests/` is a module some file declares (`mod name;`, whatever
/// `cfg` it is under): with `autotests = false` cargo builds only `tests/main.rs`, so a file
/// added beside the others but never declared would silently never compile nor run.
#[test]
fn every_test_file_is_a_module() {
    use std::path::Path;

    fn declared(parent: &Path, module: &str) -> bool {
        let text =
            std::fs::read_to_string(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
        text.lines()
            .map(str::trim)
            .any(|l| l.strip_prefix("pub ").unwrap_or(l) == format!("mod {module};"))
    }

    fn check(dir: &Path, parent: &Path, undeclared: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
            if path.is_dir() {
                // `name/` holds the submodules of `name.rs`; data directories have no `name.rs`.
                let file = dir.join(format!("{stem}.rs"));
                if file.exists() {
                    check(&path, &file, undeclared);
                }
            } else if path.extension().is_some_and(|e| e == "rs")
                && path != parent
                && !declared(parent, &stem)
            {
                undeclared.push(format!("{} (in {})", path.display(), parent.display()));
            }
        }
    }

    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut undeclared = Vec::new();
    check(&tests, &tests.join("main.rs"), &mut undeclared);
    assert!(
        undeclared.is_empty(),
        "test files no module declares (add a `mod` line): {undeclared:?}"
    );
}
