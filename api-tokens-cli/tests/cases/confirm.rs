//! A change to more than one token asks first, unless `--yes`.

use crate::support::{Env, json};

fn statuses(env: &Env, owner: &str) -> Vec<String> {
    json(&env.ok(&["list", "--owner", owner, "--format", "json"]))
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap().to_owned())
        .collect()
}

pub fn confirmation(env: &Env) {
    for name in ["a", "b", "c"] {
        env.ok(&[
            "create",
            "--owner",
            "alice",
            "--name",
            name,
            "--permissions",
            "*",
        ]);
    }
    env.ok(&[
        "create",
        "--owner",
        "bob",
        "--name",
        "d",
        "--permissions",
        "*",
    ]);

    // "n", anything but yes, and no answer at all (stdin closed): nothing changes.
    for answer in ["n\n", "maybe\n", ""] {
        let r = env.run_stdin(&["disable", "--owner", "alice"], answer);
        assert_eq!(r.code, 1, "{answer:?}: {}", r.stderr);
        assert!(r.stderr.contains("Disable 3 tokens:"), "{}", r.stderr);
        assert!(r.stderr.contains("Go ahead? [y/N]"), "{}", r.stderr);
        assert!(r.stderr.contains("error[declined]"), "{}", r.stderr);
        assert!(r.audit().is_empty());
        assert_eq!(statuses(env, "alice"), ["enabled"; 3]);
    }
    // "yes" goes ahead, for alice's tokens only.
    let r = env.run_stdin(&["disable", "--owner", "alice"], "yes\n");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.audit().len(), 3);
    assert_eq!(statuses(env, "alice"), ["disabled"; 3]);
    assert_eq!(statuses(env, "bob"), ["enabled"]);

    // One token: no question.
    let one = json(&env.ok(&["list", "--owner", "alice", "--format", "json"]))[0]["id"].to_string();
    let r = env.run(&["enable", &one]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("Go ahead"), "{}", r.stderr);
    // --yes: no question either. Ids given one by one are several tokens too.
    let r = env.run(&["delete", "--owner", "alice", "--yes"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("Go ahead"), "{}", r.stderr);
    assert!(statuses(env, "alice").is_empty());
    let d = json(&env.ok(&["list", "--format", "json"]))[0]["id"].to_string();
    env.ok(&[
        "create",
        "--owner",
        "bob",
        "--name",
        "e",
        "--permissions",
        "*",
    ]);
    let e = json(&env.ok(&["list", "--format", "json"]))[1]["id"].to_string();
    let r = env.run_stdin(&["update", &d, &e, "--description", "x"], "n\n");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("Update 2 tokens:"), "{}", r.stderr);
    let r = env.run_stdin(&["update", &d, &e, "--description", "x"], "y\n");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let listed = json(&env.ok(&["list", "--format", "json"]));
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["description"] == "x")
    );
}
