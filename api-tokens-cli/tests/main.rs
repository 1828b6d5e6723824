//! The `api-tokens` binary, run as an operator runs it, against a real SQLite file and a real
//! PostgreSQL server started by the test: every scenario in `cases` runs on both stores.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test reports a failure by panicking"
)]

#[path = "../../tests/support/pg.rs"]
mod pg;

mod cases;
mod support;

/// Each scenario as its own test on a fresh SQLite file, and all of them in one test on one
/// PostgreSQL server (a database each), so the server starts once.
macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $case() {
                    crate::cases::$case(&crate::support::Env::sqlite());
                }
            )*
        }

        #[test]
        fn on_postgres() {
            let Some(pg) = pg::PgServer::start() else {
                return;
            };
            $(
                crate::cases::$case(&support::Env::postgres(&pg, stringify!($case)));
            )*
        }
    };
}

on_both_stores!(
    leaked_secret_lifecycle,
    zabbix_import,
    import_is_all_or_nothing,
    hash_keys,
    confirmation,
    exit_codes,
    secret_files,
    regenerate,
    reports_and_formats,
    audit_log_file,
);

/// `import zabbix` shows a progress bar when stderr is a terminal (`script` gives the binary
/// one); the import tests check that none is drawn when it is piped.
#[test]
fn progress_bar_on_a_terminal() {
    let env = support::Env::sqlite();
    env.write("users.csv", "userid,user\n2,alice\n");
    let hash = support::zabbix_hash(&"a1".repeat(32));
    env.write(
        "token.csv",
        &format!("tokenid,name,userid,token,status,expires_at,created_at\n1,x,2,{hash},0,0,0\n2,y,2,,0,0,0\n"),
    );
    let Some(mut script) = env.on_a_terminal("import zabbix token.csv --users users.csv --dry-run")
    else {
        return;
    };
    let out = script.output().expect("script runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("/2 rows"),
        "no progress bar on a terminal:\n{text}"
    );
    assert!(text.contains("dry run: all 2 rows"), "{text}");
}

/// On a terminal, `revoke` reads the pasted secret with echo off: it never shows on the screen
/// (the terminal's output, as `script` records it).
#[test]
fn a_pasted_secret_is_not_echoed() {
    use std::io::{Read, Write};
    use std::process::Stdio;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    let env = support::Env::sqlite();
    let created = env.ok(&[
        "create",
        "--owner",
        "alice",
        "--name",
        "x",
        "--permissions",
        "*",
    ]);
    let secret = created.stdout.trim_end().to_owned();
    let Some(mut script) = env.on_a_terminal("revoke --secret-from-stdin") else {
        return;
    };
    script.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = script.spawn().expect("script runs");
    let screen = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let screen = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                screen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let shown = |what: &str| String::from_utf8_lossy(&screen.lock().unwrap()).contains(what);
    pg::wait_for(Duration::from_secs(30), "the prompt", || {
        shown("Paste the leaked secret")
    });
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{secret}\r").as_bytes()).unwrap();
    stdin.flush().unwrap();
    let mut status = None;
    pg::wait_for(Duration::from_secs(30), "revoke to finish", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let status = status.unwrap();
    drop(stdin);
    reader.join().unwrap();
    let screen = String::from_utf8_lossy(&screen.lock().unwrap()).into_owned();
    assert!(status.success(), "{screen}");
    assert!(screen.contains("revoked token"), "{screen}");
    assert!(
        !screen.contains(&secret),
        "the secret was echoed:\n{screen}"
    );
}

mod without_a_store {
    use crate::support::BIN;
    use assert_cmd::Command;

    /// Every command's help has examples, and the top-level help documents the exit codes
    /// and the environment.
    #[test]
    fn help_documents_commands_exit_codes_and_examples() {
        let top = Command::new(BIN)
            .arg("--help")
            .env_clear()
            .output()
            .unwrap();
        assert!(top.status.success());
        let top = String::from_utf8(top.stdout).unwrap();
        for needle in [
            "Exit codes:",
            "0  done",
            "1  refused or not found",
            "2  usage",
            "3  store or key problem",
            "API_TOKENS_DATABASE",
            "API_TOKENS_HASH_KEY",
        ] {
            assert!(top.contains(needle), "--help lacks {needle:?}:\n{top}");
        }
        for cmd in [
            &["list"][..],
            &["show"],
            &["create"],
            &["update"],
            &["enable"],
            &["disable"],
            &["delete"],
            &["regenerate"],
            &["revoke"],
            &["import", "zabbix"],
            &["keys", "check"],
            &["keys", "status"],
            &["report", "expiring"],
            &["report", "unused"],
            &["report", "owners"],
            &["completions"],
        ] {
            let out = Command::new(BIN)
                .args(cmd)
                .arg("--help")
                .env_clear()
                .output()
                .unwrap();
            assert!(out.status.success(), "{cmd:?} --help");
            let text = String::from_utf8(out.stdout).unwrap();
            let examples = text.split_once("\nExamples:\n").map(|(_, e)| e);
            assert!(
                examples.is_some_and(|e| e.lines().any(|l| l.contains("api-tokens "))),
                "{cmd:?} --help has no examples:\n{text}"
            );
        }
    }

    #[test]
    fn completions_need_no_store() {
        for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
            let out = Command::new(BIN)
                .args(["completions", shell])
                .env_clear()
                .output()
                .unwrap();
            assert!(out.status.success(), "{shell}");
            let text = String::from_utf8(out.stdout).unwrap();
            assert!(
                text.contains("api-tokens") && text.contains("regenerate"),
                "{shell}"
            );
        }
        let out = Command::new(BIN)
            .args(["completions", "tcsh"])
            .env_clear()
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
    }
}
