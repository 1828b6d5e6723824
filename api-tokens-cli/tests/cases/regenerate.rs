//! `regenerate`: new secrets, the old ones kept for a grace period if asked; several tokens
//! only as JSON; revoked tokens left out of a filter.

use api_tokens::DenialKind;

use crate::support::{Env, json};

pub fn regenerate(env: &Env) {
    let a = env
        .ok(&[
            "create",
            "--owner",
            "alice",
            "--name",
            "a",
            "--permissions",
            "*",
        ])
        .stdout;
    let b = env
        .ok(&[
            "create",
            "--owner",
            "alice",
            "--name",
            "b",
            "--permissions",
            "*",
        ])
        .stdout;
    let (a, b) = (a.trim_end().to_owned(), b.trim_end().to_owned());
    let listed = json(&env.ok(&["list", "--format", "json"]));
    let (id_a, id_b) = (listed[0]["id"].to_string(), listed[1]["id"].to_string());

    // One token, with a grace period: the new secret alone on stdout; the old one still works.
    let r = env.ok(&["regenerate", &id_a, "--grace", "1h"]);
    assert_eq!(r.stdout.lines().count(), 1);
    let a2 = r.stdout.trim_end().to_owned();
    assert_ne!(a2, a);
    env.authenticates(&a2).expect("new secret");
    env.authenticates(&a).expect("old secret within its grace");
    let audit = r.audit();
    assert_eq!(audit[0]["event"], "generated");
    assert!(audit[0]["grace_until"].as_i64().is_some(), "{}", r.stderr);

    // Several tokens: the plain secret is for one token; refused before anything changes.
    let r = env.run(&["regenerate", "--owner", "alice", "--yes"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    env.authenticates(&a2).expect("unchanged");
    env.authenticates(&b).expect("unchanged");
    let r = env.run(&[
        "regenerate",
        "--owner",
        "alice",
        "--yes",
        "--format",
        "json",
        "--secret-file",
        "x",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(!env.path("x").exists());

    // As JSON: each token with its new secret.
    let r = env.ok(&[
        "regenerate",
        "--owner",
        "alice",
        "--yes",
        "--format",
        "json",
    ]);
    let out = json(&r);
    let out = out.as_array().unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0]["id"].to_string(), id_a);
    assert_eq!(out[0]["name"], "a");
    assert_eq!(out[1]["id"].to_string(), id_b);
    let (a3, b2) = (
        out[0]["secret"].as_str().unwrap(),
        out[1]["secret"].as_str().unwrap(),
    );
    env.authenticates(a3).expect("a's newest secret");
    env.authenticates(b2).expect("b's new secret");
    assert_eq!(env.authenticates(&b), Err(DenialKind::Superseded));

    // A revoked token is left out of a filter, and refused by id.
    let r = env.run_stdin(&["revoke", "--secret-from-stdin"], b2);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = env.ok(&["regenerate", "--owner", "alice", "--format", "json"]);
    let out = json(&r);
    assert_eq!(out.as_array().unwrap().len(), 1);
    assert_eq!(out[0]["id"].to_string(), id_a);
    env.fails(&["regenerate", &id_b], 1, "revoked");

    // Secrets were printed only by the runs that made them.
    // Each secret was printed once, by a run of create or regenerate, and is in no other
    // output.
    for s in [a.as_str(), &a2, &b, a3, b2] {
        let printed: Vec<_> = env
            .transcript()
            .into_iter()
            .filter(|r| r.stdout.contains(s))
            .collect();
        assert_eq!(printed.len(), 1, "a secret printed more than once");
        assert!(matches!(
            printed[0].args[0].as_str(),
            "create" | "regenerate"
        ));
        env.assert_secret_only_in(s, |r| r.args == printed[0].args);
    }
}
