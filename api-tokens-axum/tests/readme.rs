//! Item 7: the repository README's axum section is the three-line setup, and it compiles: it is
//! kept identical to the crate README's first example, which rustdoc compiles as a doctest
//! (the crate's docs are its README).

use std::path::Path;

/// The first fenced Rust block after `heading`, without rustdoc's hidden (`# `) lines.
fn block(markdown: &str, heading: &str) -> String {
    let after = markdown
        .split_once(heading)
        .unwrap_or_else(|| panic!("no {heading:?}"))
        .1;
    let start = after.find("```rust").expect("a rust block");
    let body = after[start..].split_once('\n').expect("a fence line").1;
    let end = body.find("```").expect("a closing fence");
    body[..end]
        .lines()
        .filter(|l| !(l.starts_with("# ") || *l == "#"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn the_repository_readme_shows_the_compiled_three_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let repo = std::fs::read_to_string(root.join("../README.md")).unwrap();
    let krate = std::fs::read_to_string(root.join("README.md")).unwrap();
    let shown = block(&repo, "## axum: three lines");
    let compiled = block(&krate, "## Three lines");
    assert!(
        shown.lines().count() >= 5 && compiled.contains(&shown),
        "README.md's axum block:\n{shown}\nis not part of api-tokens-axum/README.md's doctest:\n{compiled}"
    );
    for line in [
        "require(permission!(",
        ".layer(AuthLayer::new(",
        "into_make_service_with_connect_info",
    ] {
        assert!(shown.contains(line), "{line}");
    }
}
