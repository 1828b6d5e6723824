//! The conformance suite on the embedded store.
#![cfg(feature = "testing")]

use api_tokens::MemoryStore;
use api_tokens::store::conformance;

#[test]
fn memory_store_conforms() {
    conformance::run(MemoryStore::new);
}

#[test]
fn memory_store_restored_from_a_snapshot_conforms() {
    conformance::run(|| {
        let s = MemoryStore::new();
        MemoryStore::from_snapshot(s.snapshot()).unwrap()
    });
}

#[cfg(feature = "sqlite")]
mod support;

#[cfg(feature = "sqlite")]
mod sqlite {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::support::{TempDir, temp_entries};
    use api_tokens::store::conformance;
    use api_tokens::store::sqlite::SqliteStore;
    use api_tokens::{
        Actor, NewToken, PermissionSet, Query, RequestContext, Status, TokenName, TokenUpdate,
        Tokens, UserId,
    };
    use time::Duration;

    #[test]
    fn in_memory_sqlite_conforms() {
        conformance::run(|| SqliteStore::open_in_memory().unwrap());
    }

    #[test]
    fn in_memory_sqlite_writing_every_use_conforms() {
        conformance::run(|| {
            SqliteStore::open_in_memory()
                .unwrap()
                .with_touch_interval(Duration::ZERO)
        });
    }

    #[test]
    fn sqlite_file_conforms() {
        // One directory for the whole run, a fresh file for each store the suite asks for; the
        // directory goes when the test ends, after every store is closed.
        let dir = TempDir::new("sqlite-conf");
        let n = AtomicUsize::new(0);
        conformance::run(|| {
            let file = format!("{}.db", n.fetch_add(1, Ordering::SeqCst));
            SqliteStore::open(dir.join(&file)).unwrap()
        });
        let path = dir.path().to_owned();
        drop(dir);
        assert!(!path.exists(), "the test's files are gone");
        assert!(
            temp_entries(&format!(
                "api-tokens-test-sqlite-conf-{}-",
                std::process::id()
            ))
            .is_empty()
        );
    }

    #[test]
    fn a_restart_keeps_every_token_and_every_secret() {
        let dir = TempDir::new("sqlite-restart");
        let path = dir.join("tokens.db");
        let admin = Actor::admin(UserId::from(1));
        let ctx = RequestContext::from_ip("10.1.2.3".parse().unwrap());
        let (secrets, before) = {
            let tokens = Tokens::new(SqliteStore::open(&path).unwrap());
            let mut secrets = Vec::new();
            for i in 0..20 {
                let issued = tokens
                    .issue(
                        &admin,
                        NewToken::new(TokenName::new(&format!("t{i}")).unwrap())
                            .owner(UserId::from(i % 3))
                            .permissions("dns.*, kill-acct".parse().unwrap())
                            .allowlist("10.0.0.0/8, 2001:db8::/32".parse().unwrap())
                            .expires_at(tokens.now() + Duration::days(30)),
                    )
                    .unwrap();
                secrets.push((issued.token.id, issued.secret.expose().to_owned()));
            }
            tokens
                .update(
                    &admin,
                    [TokenUpdate::new(secrets[0].0).status(Status::Disabled)],
                )
                .unwrap();
            tokens.authenticate(&secrets[1].1, &ctx).unwrap();
            let before = tokens.list(&admin, &Query::new()).unwrap();
            (secrets, before)
        }; // dropped: the process "exits"
        let tokens = Tokens::new(SqliteStore::open(&path).unwrap());
        let after = tokens.list(&admin, &Query::new()).unwrap();
        assert_eq!(after, before, "every token and field survives a restart");
        assert!(after[1].last_use.is_some(), "including last use");
        for (i, (id, secret)) in secrets.iter().enumerate() {
            let r = tokens.authenticate(secret, &ctx);
            if i == 0 {
                assert!(r.is_err(), "the disabled one stays disabled");
            } else {
                assert_eq!(r.unwrap().token, *id, "secret {i} still authenticates");
            }
        }
        // New ids continue after the old ones.
        let next =
            tokens
                .create(
                    &admin,
                    [NewToken::new(TokenName::new("later").unwrap())
                        .permissions(PermissionSet::all())],
                )
                .unwrap()[0];
        assert!(secrets.iter().all(|(id, _)| *id < next));
    }

    #[test]
    fn last_use_writes_are_coalesced_but_never_lost() {
        let dir = TempDir::new("sqlite-touch");
        let path = dir.join("tokens.db");
        let admin = Actor::admin(UserId::from(1));
        let clock = std::sync::Arc::new(api_tokens::ManualClock::new(
            time::macros::datetime!(2026-01-01 0:00 UTC),
        ));
        let store = SqliteStore::open(&path)
            .unwrap()
            .with_touch_interval(Duration::minutes(1));
        let tokens = Tokens::new(store).with_clock(clock.clone());
        let issued = tokens
            .issue(
                &admin,
                NewToken::new(TokenName::new("t").unwrap()).permissions(PermissionSet::all()),
            )
            .unwrap();
        let ctx = RequestContext::unknown_address();
        let raw = sqlite_column(&path, issued.token.id.get());
        assert_eq!(raw, None);
        tokens.authenticate(issued.secret.expose(), &ctx).unwrap();
        let first = sqlite_column(&path, issued.token.id.get());
        assert!(first.is_some(), "the first use is written at once");
        clock.advance(Duration::seconds(30));
        tokens.authenticate(issued.secret.expose(), &ctx).unwrap();
        assert_eq!(
            sqlite_column(&path, issued.token.id.get()),
            first,
            "a use within the interval is not written yet"
        );
        // ... but every read sees it, and a restart keeps it.
        let seen = tokens
            .get(&admin, issued.token.id)
            .unwrap()
            .last_use
            .unwrap();
        assert_eq!(seen.at, clock_now(&clock));
        clock.advance(Duration::seconds(10));
        tokens.authenticate(issued.secret.expose(), &ctx).unwrap();
        drop(tokens);
        let reopened = Tokens::new(SqliteStore::open(&path).unwrap());
        let kept = reopened
            .get(&admin, issued.token.id)
            .unwrap()
            .last_use
            .unwrap();
        assert_eq!(kept.at, clock_now(&clock), "flushed on drop");
    }

    fn clock_now(c: &api_tokens::ManualClock) -> time::OffsetDateTime {
        use api_tokens::Clock;
        c.now()
    }

    fn sqlite_column(path: &std::path::Path, id: u64) -> Option<i64> {
        // A second, independent store over the same file: it flushes only its own pending
        // writes (none), so this shows what is on disk.
        let other = Tokens::new(SqliteStore::open(path).unwrap());
        other
            .get(&Actor::admin(UserId::from(1)), api_tokens::TokenId::new(id))
            .unwrap()
            .last_use
            .map(|u| u.at.unix_timestamp())
    }
}
