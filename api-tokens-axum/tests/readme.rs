//! The repository README's blocks for this crate compile: each is kept part of the crate
//! README's doctests (the crate's docs are its README). The repository README's axum section is
//! the three-line setup; its page section holds the mount, the command and a screenshot.

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

#[test]
fn the_repository_readme_shows_the_compiled_page_mount_and_a_screenshot() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let repo = std::fs::read_to_string(root.join("../README.md")).unwrap();
    let krate = std::fs::read_to_string(root.join("README.md")).unwrap();
    let shown = block(&repo, "## The API tokens page");
    let compiled = block(&krate, "## The API tokens page");
    assert!(
        shown.lines().count() >= 8 && compiled.contains(&shown),
        "README.md's page block:\n{shown}\nis not part of api-tokens-axum/README.md's doctest:\n{compiled}"
    );
    assert!(shown.contains("TokensPage::new(") && shown.contains(".router()"));
    let section = repo.split_once("## The API tokens page").unwrap().1;
    assert!(section.contains("cargo run -p api-tokens-axum --example page"));
    assert!(section.contains("--example page -- --zabbix"));
    for file in ["page.png", "page-zabbix.png"] {
        assert!(section.contains(&format!("](docs/{file})")), "{file}");
        let png = std::fs::read(root.join("../docs").join(file))
            .unwrap_or_else(|_| panic!("docs/{file} is committed"));
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000);
    }
}
