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
        .unwrap_or_else(|e| {
            panic!(
                "cannot start example {name}: {e} (cargo test builds the examples; \
                 cargo test --test examples alone does not: cargo build --examples first)"
            )
        });
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

fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

#[test]
fn zabbix_jsonrpc_answers_the_seed_requests_and_the_rest_of_token_api() {
    let requests = r#"
{"jsonrpc":"2.0","method":"token.create","params":{"name":"Your token","userid":"2"},"id":1}
{"jsonrpc":"2.0","method":"token.create","params":{"name":"Your token","status":"1","expires_at":"1611238072"},"id":1}
{"jsonrpc":"2.0","method":"token.create","params":[{"name":"ok"},{"name":""}],"id":2}
{"jsonrpc":"2.0","method":"token.create","params":{"name":"Your token","userid":"2"},"id":3}
{"jsonrpc":"2.0","method":"token.generate","params":["188"],"id":4}
{"jsonrpc":"2.0","method":"token.get","params":{"output":["tokenid","userid","status","expires_at"],"sortfield":"tokenid","sortorder":"DESC"},"id":5}
{"jsonrpc":"2.0","method":"token.get","params":{"expired_at":"1700000000","countOutput":true},"id":6}
{"jsonrpc":"2.0","method":"token.get","params":{"valid_at":"1700000000","output":["tokenid"]},"id":7}
{"jsonrpc":"2.0","method":"token.update","params":{"tokenid":"189","status":"0","expires_at":"0"},"id":8}
{"jsonrpc":"2.0","method":"token.update","params":{"tokenid":"189","userid":"3"},"id":9}
{"jsonrpc":"2.0","method":"token.get","params":{"tokenids":["189"],"output":["status","expires_at"]},"id":10}
{"jsonrpc":"2.0","method":"token.delete","params":["189","999"],"id":11}
{"jsonrpc":"2.0","method":"token.delete","params":["189"],"id":12}
{"jsonrpc":"2.0","method":"token.nope","params":[],"id":13}
{"jsonrpc":"2.0","method":"token.get","params":{"search":{"name":"your"},"limit":1,"output":["tokenid"]},"id":14}
{"jsonrpc":"2.0","method":"token.create","params":{"name":"n","description":5},"id":15}
"#;
    let out = json_lines(&run(
        "zabbix_jsonrpc",
        &["--first-id", "188", "--now", "1700000000"],
        requests,
    ));
    use serde_json::json;
    // The seed's two examples, answered in the seed's shape.
    assert_eq!(
        out[0],
        json!({"jsonrpc":"2.0","result":{"tokenids":["188"]},"id":1})
    );
    assert_eq!(
        out[1],
        json!({"jsonrpc":"2.0","result":{"tokenids":["189"]},"id":1})
    );
    assert_eq!(
        out[2]["error"],
        json!({"code":-32602,"message":"Invalid params.",
               "data":"Invalid parameter \"/2/name\": cannot be empty."})
    );
    assert_eq!(
        out[3]["error"]["data"],
        "API token \"Your token\" already exists for userid \"2\"."
    );
    let generated = &out[4]["result"][0];
    assert_eq!(generated["tokenid"], "188");
    let secret = generated["token"].as_str().unwrap();
    assert_eq!(secret.len(), 64, "Zabbix's 64 hex digits");
    assert_eq!(
        out[5]["result"],
        json!([
            {"tokenid":"189","userid":"1","status":"1","expires_at":"1611238072"},
            {"tokenid":"188","userid":"2","status":"0","expires_at":"0"}
        ])
    );
    assert_eq!(out[6]["result"], "1", "countOutput of expired tokens");
    assert_eq!(out[7]["result"], json!([{"tokenid":"188"}]));
    assert_eq!(out[8]["result"], json!({"tokenids":["189"]}));
    assert_eq!(
        out[9]["error"]["data"],
        "Invalid parameter \"/1\": unexpected parameter \"userid\"."
    );
    assert_eq!(out[10]["result"], json!([{"status":"0","expires_at":"0"}]));
    assert_eq!(
        out[11]["error"],
        json!({"code":-32500,"message":"Application error.",
               "data":"No permissions to referred object or it does not exist!"})
    );
    assert_eq!(out[12]["result"], json!({"tokenids":["189"]}));
    assert_eq!(out[13]["error"]["code"], -32601);
    assert_eq!(out[14]["result"], json!([{"tokenid":"188"}]));
    assert_eq!(
        out[15]["error"]["data"],
        "Invalid parameter \"/1/description\": a character string is expected.",
        "a wrong type is refused, never silently accepted"
    );
}

#[test]
fn zabbix_jsonrpc_authenticates_callers_with_generated_tokens() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(example("zabbix_jsonrpc"))
        .args(["--first-id", "188"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start example");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut ask = |request: String| -> serde_json::Value {
        writeln!(stdin, "{request}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    };
    let rpc = |method: &str, params: &str, auth: &str| {
        format!(r#"{{"jsonrpc":"2.0","method":"{method}","params":{params},{auth}"id":1}}"#)
    };
    ask(rpc(
        "token.create",
        r#"[{"name":"a","userid":"2"},{"name":"b","userid":"3"}]"#,
        "",
    ));
    let generated = ask(rpc("token.generate", r#"["188"]"#, ""));
    let secret = generated["result"][0]["token"].as_str().unwrap().to_owned();
    let auth = format!(r#""auth":"{secret}","#);
    let seen = ask(rpc(
        "token.get",
        r#"{"output":["tokenid","userid"]}"#,
        &auth,
    ));
    assert_eq!(
        seen["result"],
        serde_json::json!([{"tokenid":"188","userid":"2"}]),
        "user 2 sees only its own tokens"
    );
    let denied = ask(rpc("token.delete", r#"["189"]"#, &auth));
    assert_eq!(
        denied["error"]["data"],
        "No permissions to referred object or it does not exist!"
    );
    let bogus = format!(r#""auth":"{}","#, "0".repeat(64));
    let refused = ask(rpc("token.get", "{}", &bogus));
    assert_eq!(refused["error"]["data"], "Not authorized.");
    let found = ask(rpc(
        "token.get",
        &format!(r#"{{"token":"{secret}","output":["tokenid"]}}"#),
        "",
    ));
    assert_eq!(found["result"], serde_json::json!([{"tokenid":"188"}]));
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn whm_api_speaks_api_token_create_list_update_revoke() {
    let calls = "\
api_token_create?token_name=example&acl-0=kill-acct&expires_at=1609372800&whitelist_ip-0=1.1.1.1&whitelist_ip-1=1.1.1.2&whitelist_ip-2=1.1.1.8%2F29&whitelist_ip-3=fc00:abcd:0000:0000:0000:0000:0000:000f&whitelist_ip-4=2620:0000:28a4:0000:0000:0000:0000:0000/48
api_token_create?token_name=example
api_token_create?token_name=bad%20name
api_token_create?token_name=old&expires_at=1000
api_token_create?token_name=full
api_token_update?token_name=example&new_name=renamed&expires_at=0&whitelist_ip=
api_token_list
api_token_revoke?token_name=full
api_token_list
api_token_frobnicate
";
    let out = json_lines(&run("whm_api", &["--now", "1483625276"], calls));
    use serde_json::json;
    let created = &out[0];
    assert_eq!(
        created["metadata"],
        json!({"command":"api_token_create","reason":"OK","result":1,"version":1})
    );
    let data = &created["data"];
    assert_eq!(data["acls"], json!(["kill-acct"]));
    assert_eq!(data["create_time"], 1483625276);
    assert_eq!(data["expires_at"], 1609372800);
    assert_eq!(data["name"], "example");
    assert_eq!(
        data["whitelist_ips"],
        json!([
            "1.1.1.1",
            "1.1.1.2",
            "1.1.1.8/29",
            "2620:0:28a4::/48",
            "fc00:abcd::f"
        ])
    );
    let token = data["token"].as_str().unwrap();
    assert_eq!(token.len(), 32);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    );
    let failed = |i: usize| {
        (
            out[i]["metadata"]["result"].clone(),
            out[i]["metadata"]["reason"].clone(),
        )
    };
    assert_eq!(
        failed(1),
        (
            json!(0),
            json!("The API token name \"example\" is already in use.")
        )
    );
    assert_eq!(failed(1).0, 0);
    assert_eq!(
        failed(2).1,
        "Invalid parameter: name \"bad name\" contains the invalid character ' '"
    );
    assert_eq!(failed(3).1, "The expiration time must be in the future.");
    assert_eq!(
        out[4]["data"]["acls"],
        json!(["all"]),
        "no acl: all of the caller's"
    );
    assert_eq!(out[4]["data"]["expires_at"], json!(null));
    assert_eq!(out[4]["data"]["whitelist_ips"], json!(null));
    assert_eq!(
        out[5]["data"],
        json!({"acls":["kill-acct"],"create_time":1483625276,"expires_at":null,
               "name":"renamed","whitelist_ips":null})
    );
    let listed = out[6]["data"]["tokens"].as_object().unwrap();
    assert_eq!(listed.keys().collect::<Vec<_>>(), ["full", "renamed"]);
    assert_eq!(listed["full"]["has_full_access"], 1);
    assert!(
        listed["renamed"].get("token").is_none(),
        "a list never shows a secret"
    );
    assert_eq!(out[7]["metadata"]["result"], 1);
    assert_eq!(
        out[8]["data"]["tokens"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["renamed"]
    );
    assert_eq!(out[9]["metadata"]["result"], 0);

    // A reseller may only grant privileges it holds.
    let out = json_lines(&run(
        "whm_api",
        &[
            "--user",
            "reseller",
            "--privileges",
            "create-acct,list-accts",
        ],
        "api_token_create?token_name=x&acl=kill-acct&acl-1=create-acct\n\
         api_token_create?token_name=y&acl=create-acct\n",
    ));
    assert_eq!(
        out[0]["metadata"]["reason"],
        "You do not have the following privileges: kill-acct"
    );
    assert_eq!(out[1]["data"]["acls"], json!(["create-acct"]));
}

#[test]
fn persistence_restores_tokens_without_secrets_on_disk() {
    let dir = std::env::temp_dir().join(format!("api-tokens-example-test-{}", std::process::id()));
    let out = run("persistence", &[dir.to_str().unwrap()], "");
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
    assert_eq!(snapshot["version"], 2);
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
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_example_survives_a_restart() {
    let dir =
        std::env::temp_dir().join(format!("api-tokens-sqlite-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
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
    let _ = std::fs::remove_dir_all(dir);
}
