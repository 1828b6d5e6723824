//! `report expiring|unused|owners`, the list filters, and the formats (JSON, CSV, tables).

use serde_json::json;

use crate::support::{Env, json};

fn names(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

pub fn reports_and_formats(env: &Env) {
    env.ok(&[
        "create",
        "--owner",
        "alice",
        "--name",
        "soon",
        "--permissions",
        "dns.*, mail.send",
        "--expires-in",
        "2d",
    ]);
    env.ok(&[
        "create",
        "--owner",
        "alice",
        "--name",
        "later",
        "--permissions",
        "*",
        "--expires-in",
        "20d",
    ]);
    let used = env.ok(&[
        "create",
        "--owner",
        "bob",
        "--name",
        "Deploy-Bot",
        "--permissions",
        "*",
        "--description",
        "evil\u{1b}[2J",
    ]);

    let r = env.ok(&["report", "expiring", "--format", "json"]);
    assert_eq!(names(&json(&r)), ["soon"]);
    let r = env.ok(&["report", "expiring", "--within", "30d", "--format", "json"]);
    assert_eq!(names(&json(&r)), ["soon", "later"]);
    let r = env.ok(&["report", "unused", "--format", "json"]);
    assert_eq!(names(&json(&r)), ["soon", "later", "Deploy-Bot"]);

    // Once used, bob's token is no longer "unused since a day".
    env.authenticates(used.stdout.trim_end()).unwrap();
    let r = env.ok(&["report", "unused", "--since", "1d", "--format", "json"]);
    assert_eq!(names(&json(&r)), ["soon", "later"]);
    let r = env.ok(&["list", "--unused-since", "1d", "--format", "json"]);
    assert_eq!(names(&json(&r)), ["soon", "later"]);
    let r = env.ok(&["list", "--never-used", "--format", "json"]);
    assert_eq!(names(&json(&r)), ["soon", "later"]);
    let r = env.ok(&["list", "--name-contains", "DEPLOY", "--format", "json"]);
    assert_eq!(names(&json(&r)), ["Deploy-Bot"]);
    let r = env.ok(&[
        "list", "--sort", "expires", "--desc", "--limit", "2", "--format", "json",
    ]);
    assert_eq!(names(&json(&r)), ["Deploy-Bot", "later"]);
    let r = env.ok(&[
        "list",
        "--expiring-within",
        "3d",
        "--owner",
        "alice",
        "--format",
        "json",
    ]);
    assert_eq!(names(&json(&r)), ["soon"]);

    let r = env.ok(&["report", "owners", "--format", "json"]);
    assert_eq!(
        json(&r),
        json!([
            {"owner": "alice", "tokens": 2, "enabled": 2, "disabled": 0, "expired": 0, "revoked": 0, "never_used": 2},
            {"owner": "bob", "tokens": 1, "enabled": 1, "disabled": 0, "expired": 0, "revoked": 0, "never_used": 0},
        ])
    );
    let r = env.ok(&["report", "owners", "--format", "csv"]);
    assert_eq!(
        r.stdout,
        "owner,tokens,enabled,disabled,expired,revoked,never_used\nalice,2,2,0,0,0,2\nbob,1,1,0,0,0,0\n"
    );
    let r = env.ok(&["report", "owners"]);
    assert!(r.stdout.starts_with("OWNER  TOKENS"), "{}", r.stdout);

    // CSV: the JSON members without the _unix twins, lists joined.
    let r = env.ok(&["list", "--format", "csv"]);
    let mut lines = r.stdout.lines();
    assert_eq!(
        lines.next().unwrap(),
        "id,name,description,owner,creator,status,permissions,allowlist,created_at,expires_at,last_used_at,last_used_ip,secret_generated_at,revoked_at,revoked_by"
    );
    assert!(
        lines
            .next()
            .unwrap()
            .contains(",soon,,alice,ops,enabled,\"dns.*, mail.send\","),
        "{}",
        r.stdout
    );

    // Tables never pass a control character to the terminal; JSON keeps it, escaped.
    let id = json(&env.ok(&["list", "--owner", "bob", "--format", "json"]))[0]["id"].to_string();
    let r = env.ok(&["show", &id]);
    assert!(!r.stdout.contains('\u{1b}'), "{:?}", r.stdout);
    assert!(r.stdout.contains("evil\\u{1b}[2J"), "{:?}", r.stdout);
    let r = env.ok(&["show", &id, "--format", "json"]);
    assert!(
        !r.stdout.contains('\u{1b}') && r.stdout.contains("\\u001b"),
        "{}",
        r.stdout
    );
    assert_eq!(json(&r)["description"], "evil\u{1b}[2J");
    let r = env.ok(&["list"]);
    assert!(r.stdout.starts_with("ID  NAME"), "{}", r.stdout);
}
