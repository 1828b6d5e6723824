//! The migration: Zabbix's `token` table as CSV, imported all or nothing; the old secrets then
//! authenticate through the library.

use api_tokens::DenialKind;
use serde_json::json;

use crate::support::{Env, json, zabbix_hash};

const USERS: &str = "userid,username\n1,Admin\n2,alice\n3,carol\n";

fn secret(pair: &str) -> String {
    pair.repeat(32)
}

/// A `token` table: an enabled token used once, one whose creator is NULL, a disabled one, one
/// never generated, an expired one; the description is quoted as CSV quotes it.
fn table() -> (String, [String; 4]) {
    let s = [secret("a1"), secret("b2"), secret("c3"), secret("d4")];
    let h: Vec<String> = s.iter().map(|x| zabbix_hash(x)).collect();
    let csv = format!(
        "tokenid,name,description,userid,token,lastaccess,status,expires_at,created_at,creator_userid\n\
         12,backup,\"nightly, \"\"full\"\"\nbackup\",2,{},1700000000,0,0,1690000000,1\n\
         13,monitoring,,3,{},0,0,0,1690000100,\n\
         14,old,,2,{},0,1,0,1690000200,1\n\
         15,never-generated,,2,,0,0,0,1690000300,1\n\
         16,expired,,3,{},0,0,1700000000,1690000400,3\n",
        h[0], h[1], h[2], h[3]
    );
    (csv, s)
}

pub fn zabbix_import(env: &Env) {
    let (csv, s) = table();
    env.write("token.csv", &csv);
    env.write("users.csv", USERS);
    let import = ["import", "zabbix", "token.csv", "--users", "users.csv"];

    // A dry run checks every row and writes nothing.
    let dry = env.ok(&[&import[..], &["--dry-run", "--format", "json"]].concat());
    let map = json(&dry);
    assert_eq!(map.as_array().unwrap().len(), 5);
    assert_eq!(
        map[0],
        json!({"zabbix_tokenid": "12", "id": null, "owner": "alice", "name": "backup"})
    );
    assert!(dry.stderr.contains("dry run"), "{}", dry.stderr);
    assert!(dry.audit().is_empty(), "{}", dry.stderr);
    let listed = json(&env.ok(&["list", "--format", "json"]));
    assert_eq!(listed, json!([]), "a dry run wrote");

    // The import: one audit line per token, the id map on stdout.
    let done = env.ok(&[&import[..], &["--yes", "--format", "json"]].concat());
    let map = json(&done);
    let ids: Vec<String> = map
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().expect("an id").to_string())
        .collect();
    assert_eq!(map[1]["zabbix_tokenid"], "13");
    assert_eq!(map[1]["owner"], "carol");
    let audit = done.audit();
    assert_eq!(audit.len(), 5, "{}", done.stderr);
    assert!(audit.iter().all(|e| e["event"] == "imported"));
    assert_eq!(audit[0]["legacy"], "zabbix-sha512");
    assert_eq!(audit[3]["legacy"], serde_json::Value::Null);
    // No progress bar when stderr is not a terminal.
    assert!(
        !done.stderr.contains('\r') && !done.stderr.contains("rows"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("--legacy-scheme zabbix-sha512"),
        "{}",
        done.stderr
    );

    // The Zabbix secrets authenticate through the library; status and expiry still apply.
    let before_use = env.tokens().hash_key_report().unwrap();
    assert_eq!(
        before_use.hashes_under(
            api_tokens::HashKey::from_hex(crate::support::KEY_HEX)
                .unwrap()
                .id()
        ),
        4
    );
    env.authenticates(&s[0]).expect("an imported secret works");
    env.authenticates(&s[1]).expect("an imported secret works");
    assert_eq!(env.authenticates(&s[2]), Err(DenialKind::Disabled));
    assert_eq!(env.authenticates(&s[3]), Err(DenialKind::Expired));
    assert_eq!(env.authenticates(&secret("e5")), Err(DenialKind::Unknown));

    // Two hashes are still Zabbix's (those not used successfully): commands that are not told
    // the host honours the scheme refuse the store, and say what to do.
    let refused = env.fails(&["list"], 3, "hash_keys_missing");
    assert!(
        refused.stderr.contains("zabbix-sha512"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("--legacy-scheme"),
        "{}",
        refused.stderr
    );
    let listed = json(&env.ok(&[
        "list",
        "--format",
        "json",
        "--legacy-scheme",
        "zabbix-sha512",
    ]));
    let tokens = listed.as_array().unwrap();
    assert_eq!(tokens.len(), 5);
    assert_eq!(tokens[0]["description"], "nightly, \"full\"\nbackup");
    assert_eq!(tokens[0]["creator"], "Admin");
    assert_eq!(tokens[0]["created_at_unix"], 1_690_000_000);
    assert_eq!(
        tokens[1]["creator"], "ops",
        "a NULL creator is the importing operator"
    );
    assert_eq!(tokens[2]["status"], "disabled");
    assert_eq!(tokens[3]["secret_generated_at"], serde_json::Value::Null);
    assert_eq!(tokens[4]["expires_at_unix"], 1_700_000_000);
    // The environment variable says it as well as the flag.
    let with_env = env.run_with(&["keys", "status", "--format", "json"], "", |c| {
        c.env("API_TOKENS_LEGACY_SCHEMES", "zabbix-sha512");
    });
    assert_eq!(with_env.code, 0, "{}", with_env.stderr);
    let usage = json(&with_env)["usage"].clone();
    let legacy: Vec<_> = usage
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["legacy"] == "zabbix-sha512")
        .collect();
    assert_eq!(legacy.len(), 1, "{usage}");
    assert_eq!(legacy[0]["current"], 2);

    // A leaked Zabbix secret not yet re-hashed is revoked like any other.
    let revoked = env.run_stdin(
        &[
            "revoke",
            "--secret-from-stdin",
            "--legacy-scheme",
            "zabbix-sha512",
        ],
        &s[2],
    );
    assert_eq!(revoked.code, 0, "{}", revoked.stderr);
    assert!(
        revoked
            .stdout
            .contains(&format!("revoked token {}", ids[2])),
        "{}",
        revoked.stdout
    );
    assert_eq!(env.authenticates(&s[2]), Err(DenialKind::Unknown));
    for x in &s {
        env.assert_secret_only_in(x, |_| false);
    }
}

pub fn import_is_all_or_nothing(env: &Env) {
    env.write("users.csv", USERS);
    let h = |p: &str| zabbix_hash(&secret(p));
    let header = "tokenid,name,description,userid,token,lastaccess,status,expires_at,created_at,creator_userid\n";
    let count = |env: &Env| {
        json(&env.ok(&[
            "list",
            "--format",
            "json",
            "--legacy-scheme",
            "zabbix-sha512",
        ]))
        .as_array()
        .unwrap()
        .len()
    };
    let import = |file: &str| {
        vec![
            "import",
            "zabbix",
            file,
            "--users",
            "users.csv",
            "--yes",
            "--legacy-scheme",
            "zabbix-sha512",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>()
    };
    let run = |file: &str| {
        let args = import(file);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        env.run(&args)
    };

    // An owner missing from the mapping, on the last row: nothing is imported.
    env.write(
        "unmapped.csv",
        &format!(
            "{header}1,a,,2,{},0,0,0,1690000000,1\n2,b,,2,{},0,0,0,1690000000,1\n3,c,,9,{},0,0,0,1690000000,1\n",
            h("a1"),
            h("b2"),
            h("c3")
        ),
    );
    let r = run("unmapped.csv");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("error[invalid_row]"), "{}", r.stderr);
    assert!(r.stderr.contains("line 4 (Zabbix token 3)"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("userid 9 is not in the user mapping file"),
        "{}",
        r.stderr
    );
    assert_eq!(count(env), 0);

    // A name the store has already, on the second row: the library refuses, naming the item,
    // and the CLI names the row; the first row is not imported either.
    env.ok(&[
        "create",
        "--owner",
        "alice",
        "--name",
        "taken",
        "--permissions",
        "*",
    ]);
    env.write(
        "taken.csv",
        &format!(
            "{header}1,fresh,,2,{},0,0,0,1690000000,1\n2,taken,,2,{},0,0,0,1690000000,1\n",
            h("a1"),
            h("b2")
        ),
    );
    let r = run("taken.csv");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("error[name_taken]"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("item 2 is Zabbix token 2, line 3 of taken.csv"),
        "{}",
        r.stderr
    );
    assert_eq!(count(env), 1);
    assert_eq!(env.authenticates(&secret("a1")), Err(DenialKind::Unknown));

    // The same hash twice; a malformed hash; a missing column; a header alone.
    env.write(
        "twice.csv",
        &format!(
            "{header}1,x,,2,{0},0,0,0,1690000000,1\n2,y,,2,{0},0,0,0,1690000000,1\n",
            h("a1")
        ),
    );
    let r = run("twice.csv");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("error[duplicate_in_batch]"),
        "{}",
        r.stderr
    );
    env.write(
        "bad-hash.csv",
        &format!("{header}1,x,,2,nothex,0,0,0,1690000000,1\n"),
    );
    let r = run("bad-hash.csv");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("error[invalid_row]") && r.stderr.contains("line 2"),
        "{}",
        r.stderr
    );
    env.write(
        "no-token-column.csv",
        "tokenid,name,userid,status,expires_at,created_at\n1,x,2,0,0,0\n",
    );
    let r = run("no-token-column.csv");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("the header has no column \"token\""),
        "{}",
        r.stderr
    );
    env.write("empty.csv", header);
    let r = run("empty.csv");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("no rows"), "{}", r.stderr);
    assert_eq!(count(env), 1);

    // Several tokens ask first; "no" imports nothing.
    env.write(
        "good.csv",
        &format!(
            "{header}1,x,,2,{},0,0,0,1690000000,1\n2,y,,3,,0,0,0,1690000000,\n",
            h("a1")
        ),
    );
    let r = env.run_stdin(
        &[
            "import",
            "zabbix",
            "good.csv",
            "--users",
            "users.csv",
            "--legacy-scheme",
            "zabbix-sha512",
        ],
        "n\n",
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("Import 2 tokens:") && r.stderr.contains("error[declined]"),
        "{}",
        r.stderr
    );
    assert_eq!(count(env), 1);
    // --same-user-ids keeps Zabbix's numbers as user ids.
    let r = env.run(&[
        "import",
        "zabbix",
        "good.csv",
        "--same-user-ids",
        "--yes",
        "--legacy-scheme",
        "zabbix-sha512",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(json(&r)[1]["owner"], "3");
    assert_eq!(count(env), 3);

    // A secret some stored token was imported from already (the same file again, renamed): the
    // library refuses it, naming the token, and so does a dry run, which checks what the store
    // would.
    env.write(
        "again.csv",
        &format!("{header}1,x2,,2,{},0,0,0,1690000000,1\n", h("a1")),
    );
    for dry in [true, false] {
        let mut args = import("again.csv");
        if dry {
            args.push("--dry-run".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = env.run(&args);
        assert_eq!(r.code, 1, "dry run {dry}: {}", r.stderr);
        assert!(r.stderr.contains("error[already_imported]"), "{}", r.stderr);
        assert!(r.stderr.contains("was imported already"), "{}", r.stderr);
        assert_eq!(count(env), 3);
    }
}
