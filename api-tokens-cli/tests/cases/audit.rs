//! `--audit-log FILE`: the audit lines appended to a file instead of stderr.

use crate::support::{Env, audit_lines};

pub fn audit_log_file(env: &Env) {
    let r = env.ok(&[
        "create",
        "--owner",
        "alice",
        "--name",
        "a",
        "--permissions",
        "*",
        "--audit-log",
        "audit.jsonl",
    ]);
    assert!(r.audit().is_empty(), "{}", r.stderr);
    let id =
        serde_json::from_str::<serde_json::Value>(&env.ok(&["list", "--format", "json"]).stdout)
            .unwrap()[0]["id"]
            .to_string();
    env.ok(&["disable", &id, "--audit-log", "audit.jsonl"]);
    // Reading commands write no audit line.
    env.ok(&["list", "--audit-log", "audit.jsonl"]);
    env.ok(&["keys", "check", "--audit-log", "audit.jsonl"]);
    let lines = audit_lines(&std::fs::read_to_string(env.path("audit.jsonl")).unwrap());
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["created", "generated", "status_changed"]);
    for line in &lines {
        assert_eq!(line["actor"], "ops");
        assert_eq!(line["token"].to_string(), id);
        assert!(line["at"].as_i64().is_some());
    }
    // An audit line that cannot be written: the change is made (the secret is handed over),
    // and the command fails, saying so.
    if std::path::Path::new("/dev/full").exists() {
        let r = env.run(&[
            "create",
            "--owner",
            "alice",
            "--name",
            "b",
            "--permissions",
            "*",
            "--audit-log",
            "/dev/full",
        ]);
        assert_eq!(r.code, 3, "{}", r.stderr);
        assert!(
            r.stderr
                .contains("error[audit_failed]: the change was made"),
            "{}",
            r.stderr
        );
        assert!(
            r.stdout.starts_with("tok_"),
            "the new secret is still handed over"
        );
    }
    // The operator's name comes from --operator (or API_TOKENS_OPERATOR) when given.
    let r = env.ok(&["enable", &id, "--operator", "oncall-jane"]);
    assert_eq!(r.audit()[0]["actor"], "oncall-jane");
}
