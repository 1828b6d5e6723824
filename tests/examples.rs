//! The examples run and print what they promise: the small ones here, the seeds' APIs (the
//! Zabbix JSON-RPC and WHM API examples) in modules of their own.

mod whm;
mod zabbix;

use std::process::{Command, Stdio};

use crate::support::{TempDir, example, run};

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

#[test]
fn persistence_restores_tokens_without_secrets_on_disk() {
    let dir = TempDir::new("persistence");
    let out = run("persistence", &[dir.path().to_str().unwrap()], "");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..6],
        [
            "snapshot written: 1 token(s)",
            "secret in snapshot file: no",
            "restored: 1 token(s)",
            "after restore, backup authenticates as alice",
            "after restore, the deleted token is refused: unknown token",
            "audit log:",
        ]
    );
    let events: Vec<serde_json::Value> = lines[6..]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["created", "generated", "created", "generated", "deleted"]
    );
    assert!(
        events
            .iter()
            .all(|e| e["actor"] == "ops" && e["at"] == 1772352000)
    );
    let snapshot = std::fs::read_to_string(dir.join("tokens.json")).unwrap();
    let snapshot: serde_json::Value = serde_json::from_str(&snapshot).unwrap();
    assert_eq!(
        snapshot["version"],
        api_tokens::store::memory::SNAPSHOT_VERSION
    );
    assert!(
        snapshot["tokens"][0]["secret"]["scheme"]
            .as_str()
            .unwrap()
            .starts_with("blake3:"),
        "version 3 on records the key each hash was made under"
    );
    assert_eq!(
        snapshot["tokens"][0]["imported_from"],
        serde_json::Value::Null,
        "version 4 records what an imported token came from (this one was not imported)"
    );
    assert_eq!(snapshot["seal"].as_str().unwrap().len(), 64, "sealed");
    assert_eq!(snapshot["tokens"][0]["name"], "backup");
    assert_eq!(
        snapshot["tokens"][0]["secret"]["hash"]
            .as_str()
            .unwrap()
            .len(),
        64,
        "the hash is kept, as 64 hex digits"
    );
}

/// Run without a directory, an example works in a folder of its own in the temp dir
/// (`api-tokens-[sqlite-]PID`) and removes it at the end.
#[test]
fn examples_run_without_a_directory_leave_nothing_behind() {
    let mut names = vec![("persistence", "api-tokens")];
    if cfg!(feature = "sqlite") {
        names.push(("sqlite", "api-tokens-sqlite"));
    }
    for (name, prefix) in names {
        let child = Command::new(example(name))
            .stdout(Stdio::null())
            .spawn()
            .expect("start example");
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", child.id()));
        let out = child.wait_with_output().expect("example ran");
        assert!(out.status.success(), "{name}");
        assert!(!dir.exists(), "{name} left {}", dir.display());
    }
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_example_survives_a_restart() {
    let dir = TempDir::new("sqlite-example");
    let db = dir.join("tokens.db");
    let out = run("sqlite", &[db.to_str().unwrap()], "");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("issued token 1 \"nightly-backup\" into {}", db.display())
    );
    assert_eq!(
        lines[1..],
        [
            "after restart: 1 token(s) for alice",
            "after restart: the secret authenticates as alice with [backup.*]",
            "backup.run: allowed",
        ]
    );
}

#[cfg(feature = "postgres")]
#[test]
fn fleet_issues_uses_and_revokes_on_three_replicas() {
    let pg = crate::support::server!();
    let url = pg.create_db("example");
    let out = run("fleet", &[&url], "");
    let lines: Vec<&str> = out.lines().collect();
    let starts = [
        "3 replicas started, staleness bound 5s",
        "A: issued token 1 \"deploy-",
        "A: authenticates it at once (",
        "B: authenticates it after ",
        "C: authenticates it after ",
        "B: disabled it in ",
        "B: refuses it at once (",
        "A: refuses it after ",
        "C: refuses it after ",
        "C: deleted it; unknown on A, B and C",
    ];
    assert_eq!(lines.len(), starts.len(), "{out}");
    for (line, start) in lines.iter().zip(starts) {
        assert!(
            line.starts_with(start),
            "{line:?} should start with {start:?}\n{out}"
        );
    }
}
