//! Runs each example program and checks what it prints.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The example binaries cargo built next to this test's own binary.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    dir.join("examples").join(name)
}

/// Runs an example with `args` and `stdin`, returning its standard output; fails on a non-zero
/// exit.
pub fn run(name: &str, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(example(name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start example {name}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("example ran");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 output");
    assert!(
        out.status.success(),
        "example {name} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn quickstart_shows_every_rule() {
    let out = run("quickstart", &[], "");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "issued token 1 \"deploy-bot\" for alice: permissions [dns.*, mail.send], \
         allowlist [10.0.0.0/8, 2001:db8::/32], expires in 30 days"
    );
    assert!(lines[1].starts_with("secret (shown once, 53 characters): tok_"));
    assert_eq!(
        lines[2..],
        [
            "from 10.20.30.40: granted to alice via token 1 (deploy-bot) with [dns.*, mail.send]",
            "from 203.0.113.7: refused (token 1: client address 203.0.113.7 not allowed); \
             client is told: Not allowed from this address.",
            "require dns.edit: ok",
            "require billing.read: refused (token 1: missing permission billing.read)",
            "regenerated token 1",
            "old secret: refused (token 1: secret was replaced by a newer one); \
             client is told: Not authorized.",
            "new secret: granted to alice via token 1 (deploy-bot) with [dns.*, mail.send]",
            "last used from 10.20.30.40",
        ]
    );
}
