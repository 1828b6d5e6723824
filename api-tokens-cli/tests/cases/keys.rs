//! The startup check before every command, and `keys check` / `keys status`.

use api_tokens::HashKey;

use crate::support::{Env, KEY_HEX, OTHER_KEY_HEX, json};

fn id(hex: &str) -> String {
    HashKey::from_hex(hex).unwrap().id().to_string()
}

pub fn hash_keys(env: &Env) {
    env.ok(&[
        "create",
        "--owner",
        "alice",
        "--name",
        "ci",
        "--permissions",
        "deploy",
    ]);

    // The right key: exit 0, and what it found.
    let ok = env.ok(&["keys", "check"]);
    assert!(ok.stdout.contains("ok: every hash"), "{}", ok.stdout);
    let report = json(&env.ok(&["keys", "check", "--format", "json"]));
    assert_eq!(report["ok"], true);
    assert_eq!(report["current_key"], id(KEY_HEX));
    assert_eq!(report["default_key"], false);
    assert_eq!(
        report["usage"][0]["scheme"],
        format!("blake3:{}", id(KEY_HEX))
    );
    assert_eq!(report["usage"][0]["current"], 1);
    assert_eq!(report["missing_keys"], serde_json::json!([]));

    // The wrong key: `keys check` shows the mismatch and exits 3, naming the key it lacks.
    let wrong = |args: &[&str], stdin: &str| {
        env.run_with(args, stdin, |c| {
            c.env("API_TOKENS_HASH_KEY", OTHER_KEY_HEX);
        })
    };
    let r = wrong(&["keys", "check"], "");
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stdout.contains("MISMATCH"), "{}", r.stdout);
    assert!(
        r.stderr.contains("error[hash_keys_missing]"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(&id(KEY_HEX)), "{}", r.stderr);
    let r = wrong(&["keys", "status", "--format", "json"], "");
    assert_eq!(r.code, 3);
    let report = json(&r);
    assert_eq!(report["ok"], false);
    assert_eq!(
        report["missing_keys"],
        serde_json::json!([{"key": id(KEY_HEX), "hashes": 1}])
    );
    assert_eq!(report["usage"][0]["configured"], false);

    // Every other command refuses before it does anything: nothing listed, nothing created,
    // nothing revoked.
    for args in [
        &["list"][..],
        &[
            "create",
            "--owner",
            "bob",
            "--name",
            "x",
            "--permissions",
            "*",
        ],
        &["report", "owners"],
        &["disable", "--all", "--yes"],
    ] {
        let r = wrong(args, "");
        assert_eq!(r.code, 3, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("error[hash_keys_missing]"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
        assert!(r.audit().is_empty(), "{args:?}: {}", r.stderr);
    }
    let listed = json(&env.ok(&["list", "--format", "json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["status"], "enabled");

    // A rotation: the other key current, this one old (a file, and the environment).
    env.write("old.key", KEY_HEX);
    env.write("new.key", OTHER_KEY_HEX);
    for p in ["old.key", "new.key"] {
        std::fs::set_permissions(
            env.path(p),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
    }
    let r = env.run_with(
        &[
            "keys",
            "status",
            "--format",
            "json",
            "--hash-key-file",
            "new.key",
            "--old-hash-key-file",
            "old.key",
        ],
        "",
        |c| {
            c.env_remove("API_TOKENS_HASH_KEY");
        },
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
    let report = json(&r);
    assert_eq!(report["current_key"], id(OTHER_KEY_HEX));
    assert_eq!(report["old_keys"], serde_json::json!([id(KEY_HEX)]));
    assert_eq!(report["not_current"], 1);
    assert_eq!(report["usage"][0]["configured"], true);
    let r = env.run_with(&["keys", "check"], "", |c| {
        c.env("API_TOKENS_HASH_KEY", OTHER_KEY_HEX)
            .env("API_TOKENS_OLD_HASH_KEY", KEY_HEX);
    });
    assert_eq!(r.code, 0, "{}", r.stderr);

    // No key, an unreadable key, a key file others can read.
    let r = env.run_with(&["list"], "", |c| {
        c.env_remove("API_TOKENS_HASH_KEY");
    });
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("error[no_hash_key]"), "{}", r.stderr);
    let r = env.run_with(&["list"], "", |c| {
        c.env("API_TOKENS_HASH_KEY", "0123-not-a-key");
    });
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("error[invalid_hash_key]"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("0123-not-a-key"),
        "an error shows the key text: {}",
        r.stderr
    );
    env.write("loose.key", KEY_HEX);
    std::fs::set_permissions(
        env.path("loose.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let r = env.run(&["keys", "check", "--hash-key-file", "loose.key"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("can be read by other users"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(KEY_HEX) && !r.stdout.contains(KEY_HEX));
}
