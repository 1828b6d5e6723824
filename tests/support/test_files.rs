//! The check each test binary of the workspace runs on its own `tests/` directory: with
//! `autotests = false` cargo builds only `tests/main.rs`, so a file added beside the others
//! but never declared as a module would silently never compile nor run. The axum crate's and
//! the property tests' binaries include this file by path.

use std::path::Path;

/// The `.rs` files under `tests` that no module declares (`mod name;`, whatever `cfg` it is
/// under), starting from `tests/main.rs`; a directory `name/` holds the submodules of
/// `name.rs` (a directory without such a file is data, or a `mod.rs` module, and is skipped).
pub fn undeclared(tests: &Path) -> Vec<String> {
    let mut undeclared = Vec::new();
    check(tests, &tests.join("main.rs"), &mut undeclared);
    undeclared
}

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
