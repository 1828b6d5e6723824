//! The incident: a token is created, listed, disabled, its secret leaks and is revoked by
//! possession; the library refuses it from then on, and the secret was printed once only.

use api_tokens::DenialKind;
use serde_json::json;

use crate::support::{Env, json};

/// The members of a token in `--format json`: the library's `TokenView`, nothing else.
const MEMBERS: [&str; 20] = [
    "id",
    "name",
    "description",
    "owner",
    "creator",
    "status",
    "permissions",
    "allowlist",
    "created_at",
    "created_at_unix",
    "expires_at",
    "expires_at_unix",
    "last_used_at",
    "last_used_at_unix",
    "last_used_ip",
    "secret_generated_at",
    "secret_generated_at_unix",
    "revoked_at",
    "revoked_at_unix",
    "revoked_by",
];

pub fn leaked_secret_lifecycle(env: &Env) {
    // `create` prints the secret alone: one line, nothing else on stdout.
    let created = env.ok(&[
        "create",
        "--owner",
        "alice",
        "--name",
        "deploy",
        "--permissions",
        "dns.*, mail.send",
        "--expires-in",
        "30d",
        "--description",
        "CI deploys",
    ]);
    assert_eq!(created.stdout.lines().count(), 1, "{:?}", created.stdout);
    let secret = created.stdout.trim_end().to_owned();
    assert!(secret.starts_with("tok_"), "{secret}");
    env.authenticates(&secret).expect("the new secret works");
    let audit = created.audit();
    assert_eq!(audit.len(), 2, "{}", created.stderr);
    assert_eq!(audit[0]["event"], "created");
    assert_eq!(audit[1]["event"], "generated");
    assert_eq!(audit[0]["actor"], "ops");
    assert_eq!(audit[0]["owner"], "alice");

    let other = env.ok(&[
        "create",
        "--owner",
        "bob",
        "--name",
        "backup",
        "--permissions",
        "*",
    ]);
    let other_secret = other.stdout.trim_end().to_owned();

    // `list --format json`: the library's token views, no secret, no hash.
    let listed = json(&env.ok(&["list", "--format", "json"]));
    let tokens = listed.as_array().expect("an array");
    assert_eq!(tokens.len(), 2);
    let t = &tokens[0];
    let mut members: Vec<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
    members.sort_unstable();
    let mut expected = MEMBERS.to_vec();
    expected.sort_unstable();
    assert_eq!(members, expected);
    assert_eq!(t["name"], "deploy");
    assert_eq!(t["owner"], "alice");
    assert_eq!(t["creator"], "ops");
    assert_eq!(t["status"], "enabled");
    assert_eq!(t["description"], "CI deploys");
    assert_eq!(t["permissions"], json!(["dns.*", "mail.send"]));
    assert_eq!(
        t["expires_at_unix"].as_i64().unwrap() - t["created_at_unix"].as_i64().unwrap(),
        30 * 86_400
    );
    let id = t["id"].as_u64().unwrap().to_string();
    let only_alice = json(&env.ok(&["list", "--owner", "alice", "--format", "json"]));
    assert_eq!(only_alice.as_array().unwrap().len(), 1);

    // Disable: an audit line, and the library refuses the secret as disabled.
    let disabled = env.ok(&["disable", &id]);
    let audit = disabled.audit();
    assert_eq!(audit.len(), 1, "{}", disabled.stderr);
    assert_eq!(audit[0]["event"], "status_changed");
    assert_eq!(audit[0]["status"], "disabled");
    assert_eq!(audit[0]["token"].to_string(), id);
    assert_eq!(env.authenticates(&secret), Err(DenialKind::Disabled));

    // The secret leaks: revoked by possession, read from stdin.
    let revoked = env.run_stdin(&["revoke", "--secret-from-stdin"], &format!("{secret}\n"));
    assert_eq!(revoked.code, 0, "{}", revoked.stderr);
    assert!(
        revoked
            .stdout
            .contains(&format!("revoked token {id} \"deploy\" (owner alice)")),
        "{}",
        revoked.stdout
    );
    let audit = revoked.audit();
    assert_eq!(audit.len(), 1, "{}", revoked.stderr);
    assert_eq!(audit[0]["event"], "revoked_by_secret");
    assert_eq!(audit[0]["actor"], serde_json::Value::Null);
    // Refused by the library from now on, as a secret nobody has.
    assert_eq!(env.authenticates(&secret), Err(DenialKind::Unknown));
    // For good: it cannot be enabled again; revoking again finds nothing.
    env.fails(&["enable", &id], 1, "revoked");
    // A filter never selects a revoked token to enable: nothing of alice's is left to enable.
    env.fails(&["enable", "--owner", "alice"], 1, "no_match");
    let again = env.run_stdin(&["revoke", "--secret-from-stdin"], &secret);
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("error[unknown_secret]"),
        "{}",
        again.stderr
    );
    // It stays listed, marked.
    let shown = json(&env.ok(&["show", &id, "--format", "json"]));
    assert_eq!(shown["revoked_by"], "possession");
    assert_eq!(shown["status"], "disabled");
    let table = env.ok(&["show", &id]);
    assert!(table.stdout.contains("revoked"), "{}", table.stdout);

    // The other token is untouched.
    env.authenticates(&other_secret)
        .expect("bob's token still works");

    // The secret appeared on create's stdout and nowhere else (the revoke read it from stdin).
    env.assert_secret_only_in(&secret, |r| {
        r.args.first().map(String::as_str) == Some("create")
            && r.args.contains(&"deploy".to_owned())
    });
    env.assert_secret_only_in(&other_secret, |r| {
        r.args.first().map(String::as_str) == Some("create")
            && r.args.contains(&"backup".to_owned())
    });
}
