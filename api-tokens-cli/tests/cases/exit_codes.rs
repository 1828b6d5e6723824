//! The documented exit codes, with the error codes on stderr: 1 refused or not found, 2 usage,
//! 3 store or key problem.

use api_tokens::SecretFormat;

use crate::support::{Env, Kind, json};

pub fn exit_codes(env: &Env) {
    env.ok(&[
        "create",
        "--owner",
        "alice",
        "--name",
        "deploy",
        "--permissions",
        "*",
    ]);
    let id = json(&env.ok(&["list", "--format", "json"]))[0]["id"].to_string();
    let unknown = SecretFormat::default().generate();

    // (arguments, stdin, exit code, error code: None for clap's own usage errors)
    let table: &[(&[&str], &str, i32, Option<&str>)] = &[
        // 2: not understood.
        (&["frobnicate"], "", 2, None),
        (&["list", "--expiring-within", "3x"], "", 2, None),
        (&["list", "--expiring-within", "36601d"], "", 2, None),
        (&["list", "--format", "yaml"], "", 2, None),
        (&["show", "abc"], "", 2, None),
        (
            &[
                "create",
                "--owner",
                "a",
                "--name",
                "n",
                "--permissions",
                "*",
                "--expires",
                "tomorrow",
            ],
            "",
            2,
            None,
        ),
        (
            &[
                "create",
                "--owner",
                "a",
                "--name",
                "n",
                "--permissions",
                "*",
                "--expires",
                "never",
                "--expires-in",
                "1d",
            ],
            "",
            2,
            None,
        ),
        (&["create", "--owner", "a", "--name", "n"], "", 2, None),
        (&["revoke"], "", 2, None),
        (&["disable"], "", 2, Some("usage")),
        (&["disable", &id, "--owner", "alice"], "", 2, Some("usage")),
        (
            &["disable", "--all", "--owner", "alice"],
            "",
            2,
            Some("usage"),
        ),
        (&["disable", &id, &id], "", 2, Some("usage")),
        (&["update", &id], "", 2, Some("usage")),
        (
            &["list", "--policy", "zabbix", "--secret-prefix", "abc"],
            "",
            2,
            Some("usage"),
        ),
        // 1: refused or not found.
        (&["show", "999"], "", 1, Some("not_found")),
        (&["disable", &id, "999", "998"], "", 1, Some("not_found")),
        (&["disable", "--owner", "nobody"], "", 1, Some("no_match")),
        (
            &[
                "create",
                "--owner",
                "alice",
                "--name",
                "deploy",
                "--permissions",
                "*",
            ],
            "",
            1,
            Some("name_taken"),
        ),
        (
            &[
                "create",
                "--owner",
                "alice",
                "--name",
                "x",
                "--permissions",
                "a..b",
            ],
            "",
            1,
            Some("empty_segment"),
        ),
        (
            &[
                "create",
                "--owner",
                "alice",
                "--name",
                "x",
                "--permissions",
                "*",
                "--expires",
                "2001-01-01T00:00:00Z",
            ],
            "",
            1,
            Some("expiry_not_in_future"),
        ),
        (
            &[
                "create",
                "--owner",
                " alice",
                "--name",
                "x",
                "--permissions",
                "*",
            ],
            "",
            1,
            Some("surrounding_whitespace"),
        ),
        (
            &[
                "create",
                "--owner",
                "alice",
                "--name",
                "x",
                "--permissions",
                "*",
                "--allowlist",
                "10.0.0.1/8",
            ],
            "",
            1,
            Some("host_bits_set"),
        ),
        (
            &["regenerate", &id, "--grace", "30d"],
            "",
            1,
            Some("grace_too_long"),
        ),
        (&["revoke", "--secret-from-stdin"], "", 1, Some("no_secret")),
        (
            &["revoke", "--secret-from-stdin"],
            "one\ntwo\n",
            1,
            Some("no_secret"),
        ),
        (
            &["revoke", "--secret-from-stdin"],
            "not-a-secret\n",
            1,
            Some("malformed_secret"),
        ),
        (
            &["revoke", "--secret-from-stdin"],
            unknown.expose(),
            1,
            Some("unknown_secret"),
        ),
        (
            &["list", "--secret-prefix", "Bad"],
            "",
            1,
            Some("invalid_character"),
        ),
        // 0.
        (&["show", &id], "", 0, None),
        (&["keys", "check"], "", 0, None),
    ];
    for (args, stdin, code, error) in table {
        let r = env.run_stdin(args, stdin);
        assert_eq!(r.code, *code, "{args:?}: stderr:\n{}", r.stderr);
        if let Some(error) = error {
            assert!(
                r.stderr.contains(&format!("error[{error}]: ")),
                "{args:?}: expected error[{error}]:\n{}",
                r.stderr
            );
        }
        if *code != 0 {
            assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
        }
    }
    // Nothing above changed the token (the refused commands wrote nothing).
    let listed = json(&env.ok(&["list", "--format", "json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["status"], "enabled");

    // 3: the store or the keys.
    let r = env.run_with(&["list"], "", |c| {
        c.env_remove("API_TOKENS_DATABASE");
    });
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("error[no_database]"), "{}", r.stderr);
    let r = env.run(&["list", "--database", "sqlite:no/such/dir/tokens.db"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("error[no_such_database]"), "{}", r.stderr);
    assert!(!env.path("no").exists(), "a missing database was created");
    let r = env.run(&[
        "list",
        "--database",
        "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2",
    ]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("error[store_unavailable]"),
        "{}",
        r.stderr
    );
    let r = env.run(&["disable", &id, "--audit-log", "no/such/dir/audit.log"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("error[file_error]"), "{}", r.stderr);
    let r = env.run(&["import", "zabbix", "missing.csv", "--same-user-ids"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("error[file_error]"), "{}", r.stderr);
    assert_eq!(
        json(&env.ok(&["list", "--format", "json"]))[0]["status"],
        "enabled"
    );
    if let Kind::Sqlite(path) = &env.kind {
        // A SQLite path that looks like key=value is read as one with the prefix.
        let copy = env.path("a=b.db");
        std::fs::copy(path, &copy).unwrap();
        env.ok(&["list", "--database", "sqlite:a=b.db"]);
    }
}
