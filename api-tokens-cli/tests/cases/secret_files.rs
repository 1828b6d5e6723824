//! `--secret-file`: a new file of mode 0600, never an existing one; the secret nowhere else.

use api_tokens::DenialKind;

use crate::support::{Env, json, mode};

pub fn secret_files(env: &Env) {
    let r = env.ok(&[
        "create",
        "--owner",
        "alice",
        "--name",
        "ci",
        "--permissions",
        "deploy",
        "--secret-file",
        "ci.secret",
    ]);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(r.stderr.contains("ci.secret"), "{}", r.stderr);
    let path = env.path("ci.secret");
    assert_eq!(mode(&path), 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    let secret = text.strip_suffix('\n').expect("a line");
    env.authenticates(secret)
        .expect("the secret in the file works");

    // An existing file is never overwritten, and the command changes nothing.
    let r = env.run(&[
        "create",
        "--owner",
        "alice",
        "--name",
        "other",
        "--permissions",
        "deploy",
        "--secret-file",
        "ci.secret",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("error[file_exists]"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    assert_eq!(
        json(&env.ok(&["list", "--format", "json"]))
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A refused creation leaves no empty file behind.
    let r = env.run(&[
        "create",
        "--owner",
        "alice",
        "--name",
        "ci",
        "--permissions",
        "deploy",
        "--secret-file",
        "again.secret",
    ]);
    assert_eq!(r.code, 1);
    assert!(!env.path("again.secret").exists());

    // Regenerate into a file, with the token as JSON on stdout (no secret in it).
    let id = json(&env.ok(&["list", "--format", "json"]))[0]["id"].to_string();
    let r = env.ok(&[
        "regenerate",
        &id,
        "--secret-file",
        "new.secret",
        "--format",
        "json",
    ]);
    let views = json(&r);
    assert_eq!(
        views.as_array().unwrap().len(),
        1,
        "regenerate writes an array"
    );
    let view = &views[0];
    assert_eq!(view["id"].to_string(), id);
    assert!(view.get("secret").is_none(), "{view}");
    assert_eq!(mode(&env.path("new.secret")), 0o600);
    let new = std::fs::read_to_string(env.path("new.secret")).unwrap();
    env.authenticates(new.trim_end())
        .expect("the new secret works");
    assert_eq!(env.authenticates(secret), Err(DenialKind::Superseded));
    env.assert_secret_only_in(secret, |_| false);
    env.assert_secret_only_in(new.trim_end(), |_| false);
}
