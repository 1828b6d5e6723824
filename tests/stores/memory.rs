//! `MemoryStore`'s hot path: a thread that authenticates a token again is served from its own
//! copy, without the store's lock. These tests hold it to the store's
//! guarantees: every change is seen the moment the call that made it returns, by every thread;
//! last use is still recorded; grants are the same as from the locked path.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration as StdDuration;

use api_tokens::store::Change;
use api_tokens::{
    Denial, HashKey, HashScheme, ManualClock, MemoryStore, NewToken, PermissionSet, RequestContext,
    Status, TokenRevocation, TokenStore, TokenUpdate, Tokens, UserDirectory, UserId, UserState,
};
use time::Duration;
use time::macros::datetime;

use crate::support::{admin, from};

/// Enough uses for the calling thread to hold a copy of the token.
const WARM: usize = 4;

fn warm(tokens: &Tokens, secret: &str) {
    for _ in 0..WARM {
        tokens.authenticate(secret, &from("10.0.0.1")).unwrap();
    }
}

/// Runs `body` with `secret` warm in this thread and in a second one (both hold a copy of the
/// token); `body` gets a call that makes the second thread authenticate once more.
fn with_second_thread(
    tokens: &Tokens,
    secret: &str,
    body: impl FnOnce(&dyn Fn() -> Result<(), Denial>),
) {
    let (ask, asked) = mpsc::channel::<()>();
    let (tell, told) = mpsc::channel::<Result<(), Denial>>();
    std::thread::scope(|s| {
        s.spawn(move || {
            while asked.recv().is_ok() {
                let r = tokens.authenticate(secret, &from("10.0.0.1")).map(|_| ());
                tell.send(r).unwrap();
            }
        });
        let remote = || {
            ask.send(()).unwrap();
            told.recv_timeout(StdDuration::from_secs(30)).unwrap()
        };
        for _ in 0..WARM {
            remote().unwrap();
        }
        warm(tokens, secret);
        body(&remote);
        drop(ask);
    });
}

fn issue<S: TokenStore>(tokens: &Tokens<S>, name: &str) -> api_tokens::Issued {
    tokens
        .issue(
            &admin(),
            NewToken::new(name.parse().unwrap())
                .owner(UserId::from(2))
                .permissions("dns.*, kill-acct".parse().unwrap()),
        )
        .unwrap()
}

#[test]
fn every_change_is_seen_by_a_thread_holding_a_copy_once_the_change_returns() {
    type Change = fn(&Tokens, &api_tokens::Issued);
    let changes: [(&str, Change); 7] = [
        ("disable", |t, i| {
            t.set_status(&admin(), [i.token.id], Status::Disabled)
                .unwrap();
        }),
        ("delete", |t, i| {
            t.delete(&admin(), [i.token.id]).unwrap();
        }),
        ("regenerate", |t, i| {
            t.generate(&admin(), [i.token.id]).unwrap();
        }),
        ("revoke by possession", |t, i| {
            let r = t.revoke_by_secret(i.secret.expose()).unwrap();
            assert_eq!(r.tokens(), [TokenRevocation::Disabled(i.token.id)]);
        }),
        ("expire", |t, i| {
            let past = t.now() - Duration::seconds(1);
            let policy_ok = TokenUpdate::new(i.token.id).expiry(api_tokens::Expiry::at(past));
            t.update(&admin(), [policy_ok]).unwrap();
        }),
        ("allowlist", |t, i| {
            let u = TokenUpdate::new(i.token.id).allowlist("192.0.2.0/24".parse().unwrap());
            t.update(&admin(), [u]).unwrap();
        }),
        ("restore a snapshot without it", |t, _| {
            let empty = Tokens::in_memory().sealed_snapshot();
            t.restore_sealed(empty).unwrap();
        }),
    ];
    for (what, change) in changes {
        let mut policy = api_tokens::Policy::default();
        policy.accept_past_expiry = true;
        let tokens = Tokens::in_memory().with_policy(policy);
        let issued = issue(&tokens, "t");
        let secret = issued.secret.expose().to_owned();
        // A second thread holds a copy too, and waits to be asked again.
        with_second_thread(&tokens, &secret, |remote| {
            change(&tokens, &issued);
            let here = tokens.authenticate(&secret, &from("10.0.0.1"));
            assert!(here.is_err(), "{what}: this thread still authenticates");
            assert!(
                remote().is_err(),
                "{what}: another thread still authenticates"
            );
        });
    }
}

#[test]
fn a_grant_from_a_copy_carries_the_current_permissions() {
    let tokens = Tokens::in_memory();
    let issued = issue(&tokens, "t");
    let secret = issued.secret.expose();
    warm(&tokens, secret);
    let g = tokens.authenticate(secret, &from("10.0.0.1")).unwrap();
    assert_eq!(g.permissions.to_string(), "dns.*, kill-acct");
    assert_eq!((g.token, g.name.as_str()), (issued.token.id, "t"));
    let u = TokenUpdate::new(issued.token.id)
        .permissions("mail.send".parse().unwrap())
        .name("renamed".parse().unwrap());
    tokens.update(&admin(), [u]).unwrap();
    let g = tokens.authenticate(secret, &from("10.0.0.1")).unwrap();
    assert_eq!(g.permissions.to_string(), "mail.send");
    assert_eq!(g.name.as_str(), "renamed");
    assert!(g.require(&"kill-acct".parse().unwrap()).is_err());
}

#[test]
fn last_use_is_recorded_from_the_hot_path_each_second_and_address() {
    let clock = Arc::new(ManualClock::new(datetime!(2025-06-01 12:00 UTC)));
    let tokens = Tokens::in_memory().with_clock(clock.clone());
    let issued = issue(&tokens, "t");
    let secret = issued.secret.expose();
    let last = |tokens: &Tokens| {
        tokens
            .get(&admin(), issued.token.id)
            .unwrap()
            .last_use
            .unwrap()
    };
    warm(&tokens, secret);
    assert_eq!(last(&tokens).at, datetime!(2025-06-01 12:00 UTC));
    clock.advance(Duration::seconds(1));
    tokens.authenticate(secret, &from("10.0.0.1")).unwrap();
    assert_eq!(last(&tokens).at, datetime!(2025-06-01 12:00:01 UTC));
    tokens.authenticate(secret, &from("10.0.0.9")).unwrap();
    let u = last(&tokens);
    assert_eq!(
        (u.at, u.ip),
        (
            datetime!(2025-06-01 12:00:01 UTC),
            Some("10.0.0.9".parse().unwrap())
        )
    );
    // A refused request is not a use.
    clock.advance(Duration::seconds(1));
    let u = TokenUpdate::new(issued.token.id).allowlist("10.0.0.0/24".parse().unwrap());
    tokens.update(&admin(), [u]).unwrap();
    warm(&tokens, secret);
    clock.advance(Duration::seconds(1));
    assert!(tokens.authenticate(secret, &from("192.0.2.1")).is_err());
    assert_eq!(last(&tokens).at, datetime!(2025-06-01 12:00:02 UTC));
}

/// The copy compares its recorded last use field by field (date, time, offset): the same
/// time of day a day later, and the same instant written in another offset, are each
/// recorded. Without the date in the compare the day-old use would be kept.
#[test]
fn a_use_a_day_later_at_the_same_time_of_day_or_in_another_offset_is_recorded() {
    let tokens = Tokens::in_memory();
    let issued = issue(&tokens, "t");
    let secret = issued.secret.expose();
    let last = || {
        tokens
            .get(&admin(), issued.token.id)
            .unwrap()
            .last_use
            .unwrap()
            .at
    };
    let t0 = datetime!(2026-01-01 12:00:00 UTC);
    for now in [
        t0,
        t0 + Duration::days(1),
        datetime!(2026-01-02 12:00:01 -05:00),
        datetime!(2026-01-02 17:00:01 UTC) + Duration::milliseconds(500),
        datetime!(2026-01-02 17:00:02 UTC).to_offset(time::macros::offset!(+14:00)),
    ] {
        // Several times, so that this thread's copy is taken and then used.
        for _ in 0..4 {
            tokens
                .authenticate_at(secret, &from("10.0.0.1"), now)
                .unwrap();
        }
        assert_eq!(last().unix_timestamp(), now.unix_timestamp(), "{now}");
    }
}

/// A directory that authenticates another token while it is asked (through the same store):
/// the nested call finds this thread's copies busy and takes the locked path.
struct Nested {
    tokens: std::sync::OnceLock<(Tokens<Arc<MemoryStore>>, String)>,
}

impl UserDirectory for Nested {
    fn user(&self, _: &UserId) -> UserState {
        if let Some((tokens, secret)) = self.tokens.get() {
            tokens
                .authenticate(secret, &RequestContext::unknown_address())
                .unwrap();
        }
        UserState::Active("dns.*".parse().unwrap())
    }
}

#[test]
fn a_directory_may_authenticate_through_the_same_store() {
    let directory = Arc::new(Nested {
        tokens: std::sync::OnceLock::new(),
    });
    let store = Arc::new(MemoryStore::new());
    let tokens = Tokens::new(store.clone()).with_directory(directory.clone());
    // Tokens for the directory's own calls: the same store, without the nested directory.
    let shared = Tokens::new(store);
    let plain = issue(&shared, "inner");
    let outer = issue(&shared, "outer");
    directory
        .tokens
        .set((shared, plain.secret.expose().to_owned()))
        .ok();
    for _ in 0..3 * WARM {
        let g = tokens
            .authenticate(outer.secret.expose(), &from("10.0.0.1"))
            .unwrap();
        assert_eq!(g.permissions, PermissionSet::parse(["dns.*"]).unwrap());
    }
}

#[test]
fn a_replaced_secret_held_in_a_copy_is_superseded_when_its_grace_ends() {
    let clock = Arc::new(ManualClock::new(datetime!(2025-06-01 12:00 UTC)));
    let tokens = Tokens::in_memory().with_clock(clock.clone());
    let issued = issue(&tokens, "t");
    let old = issued.secret.expose();
    let new = tokens
        .generate_with(
            &admin(),
            [issued.token.id],
            Duration::seconds(60),
            &mut rand::rng(),
        )
        .unwrap();
    // The old secret works in its grace period, from this thread's copy too ...
    warm(&tokens, old);
    clock.advance(Duration::seconds(59));
    tokens.authenticate(old, &from("10.0.0.1")).unwrap();
    // ... and not from its end, with no write in between to refresh the copy.
    clock.advance(Duration::seconds(1));
    let d = tokens.authenticate(old, &from("10.0.0.1")).unwrap_err();
    assert!(matches!(d, Denial::Superseded { .. }), "{d:?}");
    tokens
        .authenticate(new[0].1.expose(), &from("10.0.0.1"))
        .unwrap();
}

/// A re-hash under a new key is a write like any other: once a re-hash under a new key returns, no
/// thread is served from a copy of the token under its old hash, which the store no longer
/// holds. The re-hash itself starts from this thread's copy (a hit whose scheme is not the
/// current key's).
#[test]
fn a_rehash_under_a_new_key_retires_every_copy_of_the_old_hash() {
    let (key_a, key_b) = (HashKey::new([0xa; 32]), HashKey::new([0xb; 32]));
    let old = Tokens::new(MemoryStore::new()).with_hash_key(key_a.clone());
    let issued = issue(&old, "t");
    let secret = issued.secret.expose().to_owned();
    with_second_thread(&old, &secret, |remote| {
        let rotated = old
            .clone()
            .with_hash_key(key_b.clone())
            .with_old_hash_key(key_a);
        rotated.authenticate(&secret, &from("10.0.0.1")).unwrap();
        let stored = old.store().get(issued.token.id).unwrap().unwrap();
        assert_eq!(
            stored.secret.unwrap().scheme,
            HashScheme::keyed(key_b.id()),
            "re-hashed under the new key"
        );
        // The key-A-only facade hashes the secret under A: that hash is gone from the store,
        // so neither thread may still find the token by it.
        let here = old.authenticate(&secret, &from("10.0.0.1")).unwrap_err();
        assert!(matches!(here, Denial::Unknown), "this thread: {here:?}");
        let there = remote().unwrap_err();
        assert!(matches!(there, Denial::Unknown), "other thread: {there:?}");
        rotated.authenticate(&secret, &from("10.0.0.1")).unwrap();
    });
}

/// A copy carries the scheme of the hash it was found by: a hash stored before
/// schemes were recorded, served from this thread's copy, is still labelled with the current
/// key on its first success through the facade.
#[test]
fn an_unrecorded_hash_served_from_a_copy_is_labelled() {
    let store = Arc::new(MemoryStore::new());
    let tokens = Tokens::new(store.clone());
    let issued = issue(&tokens, "t");
    let mut t = store.get(issued.token.id).unwrap().unwrap();
    let secret = t.secret.as_mut().unwrap();
    secret.scheme = HashScheme::UNRECORDED;
    let hash = secret.hash;
    store.apply(vec![Change::Replace(t)]).unwrap();
    // This thread copies the token as the store holds it, unrecorded, by plain lookups.
    for _ in 0..WARM {
        assert!(store.authenticate(&hash, &mut |_| None).unwrap());
    }
    tokens
        .authenticate(issued.secret.expose(), &from("10.0.0.1"))
        .unwrap();
    let stored = store.get(issued.token.id).unwrap().unwrap();
    assert_eq!(
        stored.secret.unwrap().scheme,
        HashScheme::keyed(HashKey::default().id())
    );
}
