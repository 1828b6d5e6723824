//! The WHM example (`examples/whm_api`) against the seed document's `api_token_create` and WHM
//! API 1's documented functions, answered as WHM answers them (its names, checks, messages and
//! shapes), with its inputs bounded. Each test runs the built example and reads what it answers.

use serde_json::{Value, json};

use crate::support::{self, json_lines, run};

const NOW: &str = "1483625276";

fn whm(args: &[&str], calls: &str) -> Vec<Value> {
    let mut all = vec!["--now", NOW];
    all.extend_from_slice(args);
    json_lines(&run("whm_api", &all, calls))
}

fn reason(v: &Value) -> &str {
    assert_eq!(v["metadata"]["result"], 0, "expected a failure: {v}");
    assert!(v.get("data").is_none(), "a failure has no data: {v}");
    v["metadata"]["reason"].as_str().unwrap()
}

fn ok(v: &Value) -> &Value {
    assert_eq!(v["metadata"]["result"], 1, "expected success: {v}");
    assert_eq!(v["metadata"]["reason"], "OK");
    &v["data"]
}

#[test]
fn seed_document_request_gets_the_seed_document_answer() {
    // 001_91c89de6a32a1c0b.txt: api_token_create with the document's example values.
    let out = whm(
        &[],
        "api_token_create?token_name=example&acl-0=kill-acct&expires_at=1609372800\
         &whitelist_ip-0=1.1.1.1&whitelist_ip-1=1.1.1.2&whitelist_ip-2=1.1.1.8%2F29\
         &whitelist_ip-3=fc00:abcd:0000:0000:0000:0000:0000:000f\
         &whitelist_ip-4=2620:0000:28a4:0000:0000:0000:0000:0000/48\n",
    );
    assert_eq!(
        out[0]["metadata"],
        json!({"command": "api_token_create", "reason": "OK", "result": 1, "version": 1})
    );
    let data = &out[0]["data"];
    let token = data["token"].as_str().unwrap();
    assert_eq!(token.len(), 32, "like UWU28DCA23NKY76CN17MDPKM3O7EFQY8");
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    );
    let mut shown = data.clone();
    shown.as_object_mut().unwrap().remove("token");
    assert_eq!(
        shown,
        json!({
            "acls": ["kill-acct"],
            "create_time": 1483625276,
            "expires_at": 1609372800,
            "name": "example",
            // The document's own list, written as WHM writes it; sorted by address (the
            // document lists fc00:… before 2620:…, as its request gave them).
            "whitelist_ips": [
                "1.1.1.1", "1.1.1.2", "1.1.1.8/29",
                "2620:0000:28a4:0000:0000:0000:0000:0000/48",
                "fc00:abcd:0000:0000:0000:0000:0000:000f"
            ]
        })
    );
}

#[test]
fn names_are_refused_in_whms_words() {
    let long = "n".repeat(51);
    let out = whm(
        &[],
        &format!(
            "api_token_create?token_name=bad%20name\n\
             api_token_create?token_name={long}\n\
             api_token_create?token_name=\n\
             api_token_create?token_name=caf%C3%A9\n\
             api_token_create?token_name={}\n\
             api_token_create?token_name=taken\n\
             api_token_create?token_name=taken\n\
             api_token_create\n\
             api_token_create?token_name=a&token_name=b\n",
            "n".repeat(50)
        ),
    );
    let invalid = |n: &str| {
        format!(
            "\"{n}\" is not a valid API token name. An API token name must not be longer than 50 \
             characters and may only contain the following characters: a-z A-Z 0-9 _ -"
        )
    };
    assert_eq!(reason(&out[0]), invalid("bad name"));
    assert_eq!(reason(&out[1]), invalid(&long));
    assert_eq!(reason(&out[2]), invalid(""));
    assert_eq!(reason(&out[3]), invalid("café"));
    ok(&out[4]);
    ok(&out[5]);
    assert_eq!(
        reason(&out[6]),
        "A conflicting API token with the name \"taken\" already exists."
    );
    assert_eq!(reason(&out[7]), "Provide the \"token_name\" argument.");
    assert_eq!(
        reason(&out[8]),
        "The \"token_name\" argument may be given only once."
    );
}

#[test]
fn acls_must_be_known_and_held() {
    let out = whm(
        &[],
        "api_token_create?token_name=a&acl=frob&acl-1=kill-acct&acl-2=zap\n\
         api_token_create?token_name=b&acl-0=x&acl-1=y&acl-2=z&acl-3=y\n\
         api_token_create?token_name=c&acl=Kill-Acct\n\
         api_token_create?token_name=d&acl=all\n\
         api_token_create?token_name=e\n\
         api_token_create?token_name=f&acl-2=list-accts&acl-1=create-acct&acl=kill-acct\n\
         api_token_list\n",
    );
    assert_eq!(
        reason(&out[0]),
        "Invalid or unauthorized ACL(s) specified: frob and zap"
    );
    assert_eq!(
        reason(&out[1]),
        "Invalid or unauthorized ACL(s) specified: x, y, and z"
    );
    assert_eq!(
        reason(&out[2]),
        "Invalid or unauthorized ACL(s) specified: Kill-Acct"
    );
    assert!(
        ok(&out[3]).get("acls").is_none(),
        "acl=all: a full-access token has no acls"
    );
    assert!(
        ok(&out[4]).get("acls").is_none(),
        "no acl: every privilege of root, full access"
    );
    assert_eq!(
        ok(&out[5])["acls"],
        json!(["create-acct", "kill-acct", "list-accts"])
    );
    let listed = &ok(&out[6])["tokens"];
    assert!(listed["d"].get("acls").is_none());
    assert!(listed["e"].get("acls").is_none());
    let f = listed["f"]["acls"].as_object().unwrap();
    assert_eq!(f["kill-acct"], 1);
    assert_eq!(f["list-accts"], 1);
    assert_eq!(f["suspend-acct"], 0, "every other ACL root holds, off");
    assert_eq!(f.values().filter(|v| **v == 1).count(), 3);

    // A reseller: only ACLs it holds, and not `all`.
    let out = whm(
        &[
            "--user",
            "reseller",
            "--privileges",
            "create-acct,list-accts",
        ],
        "api_token_create?token_name=x&acl=kill-acct&acl-1=create-acct\n\
         api_token_create?token_name=y&acl=all\n\
         api_token_create?token_name=z&acl=create-acct\n\
         api_token_create?token_name=w\n\
         api_token_list\n",
    );
    assert_eq!(
        reason(&out[0]),
        "Invalid or unauthorized ACL(s) specified: kill-acct"
    );
    assert_eq!(
        reason(&out[1]),
        "Invalid or unauthorized ACL(s) specified: all"
    );
    assert_eq!(ok(&out[2])["acls"], json!(["create-acct"]));
    assert_eq!(ok(&out[3])["acls"], json!(["create-acct", "list-accts"]));
    assert_eq!(
        ok(&out[4])["tokens"]["z"]["acls"],
        json!({"create-acct": 1, "list-accts": 0}),
        "the reseller's own ACLs, on or off"
    );
}

#[test]
fn an_acl_catalogue_can_be_loaded() {
    let dir = support::TempDir::new("whm-acls");
    let path = dir.join("acls.txt");
    std::fs::write(
        &path,
        "# a server with a plugin\nkill-acct\nsoftware-plugin\n",
    )
    .unwrap();
    let out = whm(
        &["--acls", path.to_str().unwrap()],
        "api_token_create?token_name=a&acl=software-plugin\n\
         api_token_create?token_name=b&acl=list-accts\n",
    );
    assert_eq!(ok(&out[0])["acls"], json!(["software-plugin"]));
    assert_eq!(
        reason(&out[1]),
        "Invalid or unauthorized ACL(s) specified: list-accts"
    );
}

#[test]
fn expiry_must_be_a_future_unix_time() {
    let out = whm(
        &[],
        &format!(
            "api_token_create?token_name=a&expires_at=1000\n\
             api_token_create?token_name=b&expires_at={NOW}\n\
             api_token_create?token_name=c&expires_at=soon\n\
             api_token_create?token_name=d&expires_at=-5\n\
             api_token_create?token_name=e&expires_at=1.5\n\
             api_token_create?token_name=f&expires_at=99999999999999999999999\n\
             api_token_create?token_name=g&expires_at=0\n\
             api_token_create?token_name=h&expires_at=1609372800\n\
             api_token_update?token_name=h&expires_at=0\n\
             api_token_update?token_name=g&expires_at=1483625277\n"
        ),
    );
    assert_eq!(reason(&out[0]), "The \"1000\" value must be a future date.");
    assert_eq!(
        reason(&out[1]),
        format!("The \"{NOW}\" value must be a future date.")
    );
    assert_eq!(
        reason(&out[2]),
        "\"soon\" is not a valid UNIX epoch timestamp."
    );
    assert_eq!(
        reason(&out[3]),
        "\"-5\" is not a valid UNIX epoch timestamp."
    );
    assert_eq!(
        reason(&out[4]),
        "\"1.5\" is not a valid UNIX epoch timestamp."
    );
    assert_eq!(
        reason(&out[5]),
        "\"99999999999999999999999\" is not a valid UNIX epoch timestamp."
    );
    assert_eq!(ok(&out[6])["expires_at"], json!(null));
    assert_eq!(ok(&out[7])["expires_at"], 1609372800);
    assert_eq!(
        ok(&out[8])["expires_at"],
        json!(null),
        "0 clears the expiry"
    );
    assert_eq!(ok(&out[9])["expires_at"], 1483625277);
}

#[test]
fn whitelists_are_checked_and_shown_as_whm_shows_them() {
    let hundred: String = (0..100)
        .map(|i| format!("&whitelist_ip-{i}=10.0.{i}.1"))
        .collect();
    let out = whm(
        &[],
        &format!(
            "api_token_create?token_name=a&whitelist_ip=01.1.1.1\n\
             api_token_create?token_name=b&whitelist_ip=999.1.1.1\n\
             api_token_create?token_name=c&whitelist_ip=\n\
             api_token_create?token_name=d&whitelist_ip=1.1.1.1%20\n\
             api_token_create?token_name=e&whitelist_ip=any&whitelist_ip-1=1.1.1.1\n\
             api_token_create?token_name=f&whitelist_ip=1.1.1.1/33\n\
             api_token_create?token_name=g{hundred}&whitelist_ip-100=10.1.0.1\n\
             api_token_create?token_name=h{hundred}\n\
             api_token_create?token_name=i&whitelist_ip-0=fc00::f&whitelist_ip-1=10.0.0.2/32\
             &whitelist_ip-2=::1/128&whitelist_ip-3=2620:0:28a4::/48&whitelist_ip-4=10.0.0.2\
             &whitelist_ip-5=9.9.9.9&whitelist_ip-6=FC00:0:0:0:0:0:0:F\n\
             api_token_update?token_name=i&whitelist_ip=any\n\
             api_token_create?token_name=j&whitelist_ip=any\n"
        ),
    );
    let invalid = |e: &str| format!("Invalid IP address or CIDR range specified: {e}");
    assert_eq!(
        reason(&out[0]),
        invalid("01.1.1.1"),
        "IPv4 with leading zeros"
    );
    assert_eq!(reason(&out[1]), invalid("999.1.1.1"));
    assert_eq!(reason(&out[2]), invalid(""));
    assert_eq!(reason(&out[3]), invalid("1.1.1.1 "));
    assert_eq!(reason(&out[4]), invalid("any"));
    assert_eq!(reason(&out[5]), invalid("1.1.1.1/33"));
    assert_eq!(
        reason(&out[6]),
        "You have entered \"101\" IP addresses, which is above the limit of 100."
    );
    assert_eq!(ok(&out[7])["whitelist_ips"].as_array().unwrap().len(), 100);
    assert_eq!(
        ok(&out[8])["whitelist_ips"],
        json!([
            "9.9.9.9",
            "10.0.0.2",
            "0000:0000:0000:0000:0000:0000:0000:0001",
            "2620:0000:28a4:0000:0000:0000:0000:0000/48",
            "fc00:0000:0000:0000:0000:0000:0000:000f"
        ]),
        "IPv4 first, by address; IPv6 expanded; /32 and /128 dropped; duplicates removed"
    );
    assert_eq!(
        ok(&out[9])["whitelist_ips"],
        json!(null),
        "whitelist_ip=any clears"
    );
    assert_eq!(ok(&out[10])["whitelist_ips"], json!(null));
}

#[test]
fn update_follows_whms_semantics() {
    let out = whm(
        &[],
        "api_token_create?token_name=one&acl=kill-acct\n\
         api_token_create?token_name=two\n\
         api_token_update?token_name=one\n\
         api_token_update?token_name=one&api.version=1\n\
         api_token_update?token_name=one&frob=1&zap=2&new_name=x\n\
         api_token_update?token_name=nope&new_name=x\n\
         api_token_update?token_name=one&new_name=two\n\
         api_token_update?token_name=one&new_name=bad%20name\n\
         api_token_update?token_name=one&new_name=one\n\
         api_token_update?token_name=one&acl=create-acct&acl-1=list-accts&api.version=1\n\
         api_token_update?token_name=one&new_name=uno&whitelist_ip=10.0.0.0/8\n\
         api_token_list\n",
    );
    ok(&out[0]);
    ok(&out[1]);
    assert_eq!(reason(&out[2]), "Specify a new name, updated ACLs, or IPs.");
    assert_eq!(reason(&out[3]), "Specify a new name, updated ACLs, or IPs.");
    assert_eq!(
        reason(&out[4]),
        "Unrecognized API token update parameter(s): frob, zap"
    );
    assert_eq!(reason(&out[5]), "The API token \"nope\" does not exist.");
    assert_eq!(
        reason(&out[6]),
        "An API token with the name \"two\" already exists."
    );
    assert!(reason(&out[7]).starts_with("\"bad name\" is not a valid API token name."));
    assert_eq!(
        ok(&out[8])["name"],
        "one",
        "renaming to its own name is no conflict"
    );
    assert_eq!(
        ok(&out[9]),
        &json!({"acls": ["create-acct", "list-accts"], "create_time": 1483625276,
                "expires_at": null, "name": "one", "whitelist_ips": null}),
        "the ACLs are replaced, not added to"
    );
    assert_eq!(ok(&out[10])["name"], "uno");
    assert_eq!(ok(&out[10])["whitelist_ips"], json!(["10.0.0.0/8"]));
    let tokens = ok(&out[11])["tokens"].as_object().unwrap();
    assert_eq!(tokens.keys().collect::<Vec<_>>(), ["two", "uno"]);
}

#[test]
fn revoke_skips_unknown_names() {
    let out = whm(
        &[],
        "api_token_create?token_name=a\n\
         api_token_create?token_name=b\n\
         api_token_create?token_name=c\n\
         api_token_revoke\n\
         api_token_revoke?token_name=nope&token_name-1=a&token_name-2=a\n\
         api_token_revoke?token_name-0=b&token_name-1=gone\n\
         api_token_revoke?name=c\n\
         api_token_list\n",
    );
    assert_eq!(
        reason(&out[3]),
        "Provide at least one \"token_name\" argument."
    );
    assert_eq!(
        out[4],
        json!({"metadata": {"command": "api_token_revoke", "reason": "OK", "result": 1, "version": 1}}),
        "no data, and the unknown name is no error"
    );
    ok(&out[5]);
    assert_eq!(
        reason(&out[6]),
        "Unrecognized API token revoke parameter(s): name"
    );
    let tokens = ok(&out[7])["tokens"].as_object().unwrap();
    assert_eq!(tokens.keys().collect::<Vec<_>>(), ["c"]);
}

#[test]
fn get_details_looks_a_token_up_by_its_secret() {
    let mut s = support::Session::start("whm_api", &["--now", NOW]);
    let created = s.line(
        "api_token_create?token_name=limited&acl=list-accts&whitelist_ip=2001:db8::/32&expires_at=1609372800",
    );
    let limited = created["data"]["token"].as_str().unwrap().to_owned();
    let full = s.line("api_token_create?token_name=full")["data"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let soon = s.line("api_token_create?token_name=soon&expires_at=1483625277")["data"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        s.line(&format!("api_token_get_details?token={limited}")),
        json!({
            "data": {"acls": ["list-accts"], "create_time": 1483625276, "expires_at": 1609372800,
                     "name": "limited", "whitelist_ips": ["2001:0db8:0000:0000:0000:0000:0000:0000/32"]},
            "metadata": {"command": "api_token_get_details", "reason": "OK", "result": 1, "version": 1}
        })
    );
    let full_details = s.line(&format!("api_token_get_details?token={full}"));
    assert!(full_details["data"].get("acls").is_none());
    assert_eq!(full_details["data"]["name"], "full");
    let nothing = json!({"metadata": {"command": "api_token_get_details", "reason": "OK",
                                       "result": 1, "version": 1}});
    assert_eq!(
        s.line("api_token_get_details?token=UWU28DCA23NKY76CN17MDPKM3O7EFQY8"),
        nothing,
        "an unknown token: no data"
    );
    assert_eq!(s.line("api_token_get_details?token=not-a-token"), nothing);
    // The clock is fixed; a token that expires one second later is still found, then revoked.
    assert_eq!(
        s.line(&format!("api_token_get_details?token={soon}"))["data"]["name"],
        "soon"
    );
    s.line("api_token_revoke?token_name=soon");
    assert_eq!(
        s.line(&format!("api_token_get_details?token={soon}")),
        nothing
    );
    assert_eq!(
        reason(&s.line("api_token_get_details")),
        "Provide the \"token\" argument."
    );
}

#[test]
fn revoke_leaked_is_final() {
    let mut s = support::Session::start("whm_api", &["--now", NOW]);
    let token = |s: &mut support::Session, call: &str| {
        ok(&s.line(call))["token"].as_str().unwrap().to_owned()
    };
    let leaked = token(
        &mut s,
        "api_token_create?token_name=leaked&acl=list-accts&whitelist_ip=10.0.0.0/8",
    );
    let kept = token(&mut s, "api_token_create?token_name=kept");
    let done = |command: &str| json!({"metadata": {"command": command, "reason": "OK", "result": 1, "version": 1}});
    let revoke = format!("api_token_revoke_leaked?token={leaked}");
    assert_eq!(
        s.line(&revoke),
        done("api_token_revoke_leaked"),
        "metadata only"
    );
    assert_eq!(
        s.line(&format!("api_token_get_details?token={leaked}")),
        done("api_token_get_details"),
        "the leaked secret is gone: no details"
    );
    assert_eq!(
        ok(&s.line(&format!("api_token_get_details?token={kept}")))["name"],
        "kept",
        "only the leaked token is revoked"
    );
    let listed = ok(&s.line("api_token_list")).clone();
    let now: i64 = NOW.parse().unwrap();
    assert_eq!(listed["tokens"]["leaked"]["revoke_time"], now);
    assert_eq!(listed["tokens"]["leaked"]["acls"]["list-accts"], 1);
    assert_eq!(
        listed["tokens"]["leaked"]["whitelist_ips"],
        json!(["10.0.0.0/8"])
    );
    assert!(
        listed["tokens"]["kept"].get("revoke_time").is_none(),
        "a token that was not revoked has no revoke_time"
    );

    // Every kind of update is refused, and nothing changes.
    for change in [
        "new_name=renamed",
        "acl=create-acct",
        "whitelist_ip=any",
        "expires_at=1609372800",
        "new_name=leaked&acl=list-accts",
    ] {
        assert_eq!(
            reason(&s.line(&format!("api_token_update?token_name=leaked&{change}"))),
            "The API token \"leaked\" was revoked because its secret was reported leaked: it \
             cannot be updated.",
            "{change}"
        );
    }
    // A second report, and a secret that belongs to no token: no data, no change.
    assert_eq!(s.line(&revoke), done("api_token_revoke_leaked"));
    assert_eq!(
        s.line("api_token_revoke_leaked?token=UWU28DCA23NKY76CN17MDPKM3O7EFQY8"),
        done("api_token_revoke_leaked")
    );
    assert_eq!(ok(&s.line("api_token_list")), &listed);
    assert_eq!(
        reason(&s.line("api_token_revoke_leaked")),
        "Provide the \"token\" argument."
    );
    assert_eq!(
        reason(&s.line(&format!(
            "api_token_revoke_leaked?token={kept}&token_name=kept"
        ))),
        "Unrecognized API token revoke_leaked parameter(s): token_name"
    );
    assert_eq!(
        reason(&s.line(&format!(
            "api_token_revoke_leaked?token={kept}&token={kept}"
        ))),
        "The \"token\" argument may be given only once."
    );
    assert_eq!(
        ok(&s.line(&format!("api_token_get_details?token={kept}")))["name"],
        "kept",
        "the refused calls revoked nothing"
    );
    // Revoking by name removes it and frees the name; the new token is not revoked.
    assert_eq!(
        s.line("api_token_revoke?token_name=leaked"),
        done("api_token_revoke")
    );
    let tokens = ok(&s.line("api_token_list"))["tokens"].clone();
    assert_eq!(
        tokens.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["kept"]
    );
    let again = token(&mut s, "api_token_create?token_name=leaked");
    let details = s.line(&format!("api_token_get_details?token={again}"));
    assert_eq!(ok(&details)["name"], "leaked");
    assert!(ok(&details).get("revoke_time").is_none());
}

#[test]
fn an_expired_token_has_no_details() {
    // The system clock this time: a token expiring four seconds from now is found until then
    // (a margin for a loaded machine), and has no details after (polled, with a bounded wait).
    let mut s = support::Session::start("whm_api", &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let created = s.line(&format!(
        "api_token_create?token_name=brief&expires_at={}",
        now + 4
    ));
    let secret = ok(&created)["token"].as_str().unwrap().to_owned();
    let ask = format!("api_token_get_details?token={secret}");
    assert_eq!(s.line(&ask)["data"]["name"], "brief");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let answer = s.line(&ask);
        if answer.get("data").is_none() {
            assert_eq!(answer["metadata"]["result"], 1);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the expired token still has details"
        );
        std::thread::yield_now();
    }
}

#[test]
fn list_shows_every_token_in_whms_shape() {
    let out = whm(
        &[],
        "api_token_create?token_name=b&acl=list-accts&whitelist_ip=1.2.3.4&expires_at=1609372800\n\
         api_token_create?token_name=a\n\
         api_token_list\n\
         api_token_list?x=1\n",
    );
    let data = ok(&out[2]);
    let a = &data["tokens"]["a"];
    assert_eq!(
        a,
        &json!({"create_time": 1483625276, "expires_at": null, "name": "a", "whitelist_ips": null})
    );
    let b = &data["tokens"]["b"];
    assert_eq!(b["whitelist_ips"], json!(["1.2.3.4"]));
    assert_eq!(b["expires_at"], 1609372800);
    assert_eq!(b["acls"]["list-accts"], 1);
    assert!(b.get("token").is_none(), "a list never shows a secret");
    assert_eq!(
        reason(&out[3]),
        "Unrecognized API token list parameter(s): x"
    );
}

#[test]
fn inputs_are_bounded() {
    // 30,000 acl-N parameters are refused before any of them is looked at.
    let acls: String = (0..30_000).map(|i| format!("&acl-{i}=kill-acct")).collect();
    let long_line = format!("api_token_create?token_name=x{}\n", "&a=b".repeat(300_000));
    let out = whm(
        &[],
        &format!(
            "api_token_create?token_name=x{acls}\n{long_line}api_token_create?token_name=after\n"
        ),
    );
    assert_eq!(
        reason(&out[0]),
        "You have entered \"30001\" parameters, which is above the limit of 1000."
    );
    assert_eq!(reason(&out[1]), "The request is too large.");
    ok(&out[2]);
    // At the bound, a call is served: 999 parameters, 998 of them ACLs naming five.
    let names = [
        "kill-acct",
        "list-accts",
        "create-acct",
        "suspend-acct",
        "edit-account",
    ];
    let acls: String = (0..998)
        .map(|i| format!("&acl-{i}={}", names[i % names.len()]))
        .collect();
    let out = whm(&[], &format!("api_token_create?token_name=x{acls}\n"));
    assert_eq!(ok(&out[0])["acls"].as_array().unwrap().len(), 5);
}

#[test]
fn unknown_functions_and_parameters() {
    let out = whm(
        &[],
        "api_token_frobnicate\n\
         api_token_create?token_name=a&expire_at=1609372800\n\
         json-api/api_token_create?token_name=b&api.version=1\n\
         /json-api/api_token_get_details?token=x&extra=1\n\
         api_token_create?token_name=%zz\n",
    );
    assert_eq!(
        out[0],
        json!({"metadata": {"command": "api_token_frobnicate", "reason":
            "Unknown app (\"api_token_frobnicate\") requested for this version (1) of the API.",
            "result": 0, "version": 1}})
    );
    assert_eq!(
        reason(&out[1]),
        "Unrecognized API token create parameter(s): expire_at",
        "a misspelt expiry is refused, not a token that never expires"
    );
    assert_eq!(ok(&out[2])["name"], "b");
    assert_eq!(
        reason(&out[3]),
        "Unrecognized API token details parameter(s): extra"
    );
    assert_eq!(reason(&out[4]), "Invalid URL escape \"%zz\".");
}
