//! Usage limits and rate limits on tokens through the facade: applied at authentication or
//! spent by the host, refused with `rate_limited` / `usage_exceeded` (HTTP 429) and when to
//! retry, exact under concurrency, kept across updates and snapshots, never changed by the
//! token they limit, and never silently dropped by a store that cannot enforce them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use api_tokens::limits::{
    Credits, LimitName, LimitRefusal, Limits, RateLimit, Refill, RefillEvery, Remaining,
};
use api_tokens::store::{Candidate, Change, Query};
use api_tokens::{
    Actor, Denial, DenialKind, Error, Field, Forbidden, MemoryStore, NewToken, PublicDenial,
    StoreError, Token, TokenId, TokenName, TokenStore, TokenUpdate, Tokens, UserId, keys::KeyUsage,
    secret::SecretHash, token::LastUse,
};
use time::{Duration, OffsetDateTime};

use crate::support::{NOW, admin, clocked, ctx, every_permission};

fn lname(s: &str) -> LimitName {
    LimitName::new(s).unwrap()
}

fn per_minute(n: u64) -> Limits {
    Limits::none().rate(RateLimit::new(lname("requests"), n, Duration::MINUTE).unwrap())
}

fn credits(n: u64) -> Limits {
    Limits::none().credits(Credits::new(n, NOW).unwrap())
}

fn limited(limits: Limits) -> NewToken {
    every_permission("limited").limits(limits)
}

#[test]
fn a_rate_limit_admits_its_limit_then_refuses_with_when_to_retry() {
    let (tokens, clock, _) = clocked(MemoryStore::new());
    let issued = tokens.issue(&admin(), limited(per_minute(3))).unwrap();
    let secret = issued.secret.expose();
    for left in [2, 1, 0] {
        let g = tokens.authenticate(secret, &ctx()).unwrap();
        assert!(
            matches!(g.limits(), [Remaining::Rate { remaining, limit: 3, .. }] if *remaining == left),
            "{:?}",
            g.limits()
        );
        clock.advance(Duration::seconds(1));
    }
    let d = tokens.authenticate(secret, &ctx()).unwrap_err();
    assert_eq!((d.code(), d.http_status()), ("rate_limited", 429));
    assert_eq!(d.kind(), DenialKind::RateLimited);
    assert_eq!(d.token(), Some(issued.token.id));
    let Denial::Limited {
        refusal,
        retry_after: Some(wait),
        ..
    } = &d
    else {
        panic!("{d:?}")
    };
    let LimitRefusal::RateLimited { name, .. } = &**refusal else {
        panic!("{refusal:?}")
    };
    assert_eq!(name.as_str(), "requests");
    let PublicDenial::RateLimited { retry_after_secs } = d.public() else {
        panic!("{:?}", d.public())
    };
    assert!((57..=60).contains(&retry_after_secs), "{retry_after_secs}");
    assert_eq!(
        serde_json::to_value(d.public()).unwrap(),
        serde_json::json!({"code": "rate_limited", "message": "Rate limit exceeded.", "retry_after": retry_after_secs})
    );
    // Not a moment before the wait is over; at its end, admitted.
    clock.advance(*wait - Duration::MILLISECOND);
    assert!(tokens.authenticate(secret, &ctx()).is_err());
    clock.advance(Duration::MILLISECOND);
    assert!(tokens.authenticate(secret, &ctx()).is_ok());
}

#[test]
fn credits_are_spent_exactly_and_refilled() {
    let (tokens, clock, _) = clocked(MemoryStore::new());
    let daily = Limits::none().credits(
        Credits::new(2, NOW)
            .unwrap()
            .refill(Refill::new(2, RefillEvery::Day).unwrap()),
    );
    let issued = tokens.issue(&admin(), limited(daily)).unwrap();
    let secret = issued.secret.expose();
    tokens.authenticate(secret, &ctx()).unwrap();
    tokens.authenticate(secret, &ctx()).unwrap();
    let d = tokens.authenticate(secret, &ctx()).unwrap_err();
    assert_eq!((d.code(), d.http_status()), ("usage_exceeded", 429));
    // Refilled at midnight UTC: 12 hours from NOW.
    assert_eq!(
        d.public(),
        PublicDenial::UsageExceeded {
            retry_after_secs: Some(12 * 3600)
        }
    );
    // The view shows what is left.
    let t = tokens.get(&admin(), issued.token.id).unwrap();
    assert_eq!(t.balance.map(|b| b.remaining), Some(0));
    let json = serde_json::to_value(t.view()).unwrap();
    assert_eq!(json["credits_remaining"], 0);
    assert_eq!(json["limits"]["credits"]["refill"]["every"], "day");
    let back: api_tokens::TokenView = serde_json::from_value(json).unwrap();
    assert_eq!(back, t.view());
    // A token without limits shows neither member.
    let plain = tokens.issue(&admin(), every_permission("plain")).unwrap();
    let json = serde_json::to_value(plain.token.view()).unwrap();
    assert!(json.get("limits").is_none() && json.get("credits_remaining").is_none());
    clock.advance(Duration::hours(12));
    assert!(tokens.authenticate(secret, &ctx()).is_ok());
}

#[test]
fn the_host_spends_on_a_meter_through_the_grant() {
    let (tokens, _, _) = clocked(MemoryStore::new());
    let llm = lname("llm.tokens");
    let limits = Limits::none()
        .credits(Credits::new(1_000, NOW).unwrap().on_meter(llm))
        .rate(
            RateLimit::new(lname("llm-per-minute"), 500, Duration::MINUTE)
                .unwrap()
                .on_meter(llm),
        );
    let issued = tokens.issue(&admin(), limited(limits)).unwrap();
    let g = tokens.authenticate(issued.secret.expose(), &ctx()).unwrap();
    // Meters are not charged by authentication.
    assert!(g.limits().is_empty());
    let r = tokens.spend(&g, "llm.tokens", 350).unwrap();
    assert_eq!(r.len(), 2);
    // 350 + 200 is over the per-minute limit: refused, and the credits untouched.
    let d = tokens.spend(&g, "llm.tokens", 200).unwrap_err();
    assert_eq!(d.code(), "rate_limited");
    assert!(matches!(
        &tokens.spend(&g, "llm.tokens", 0).unwrap()[..],
        [Remaining::Credits { remaining: 650, .. }, ..]
    ));
    // A meter no limit counts: nothing to refuse.
    assert_eq!(g.spend("bytes", 1 << 40).unwrap(), vec![]);
    // A token without limits spends freely.
    let plain = tokens.issue(&admin(), every_permission("plain")).unwrap();
    let pg = tokens.authenticate(plain.secret.expose(), &ctx()).unwrap();
    assert!(pg.limits().is_empty());
    assert_eq!(pg.spend("llm.tokens", 1 << 40).unwrap(), vec![]);
}

/// Many threads on one token's credits: exactly the balance is admitted, never more.
#[test]
fn concurrent_authentications_never_overspend() {
    let tokens = Tokens::in_memory();
    let issued = tokens
        .issue(
            &admin(),
            limited(Limits::none().credits(Credits::new(1_000, tokens.now()).unwrap())),
        )
        .unwrap();
    let secret: Arc<str> = issued.secret.expose().into();
    let admitted = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (tokens, secret, admitted) = (tokens.clone(), secret.clone(), admitted.clone());
            std::thread::spawn(move || {
                for _ in 0..600 {
                    match tokens.authenticate(&secret, &ctx()) {
                        Ok(_) => {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(d) => assert_eq!(d.code(), "usage_exceeded"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(admitted.load(Ordering::Relaxed), 1_000);
}

/// A caller that came in with a token may not change that token's limits (not even to
/// clear them), while an administrator may, and it may still set them on its other tokens.
#[test]
fn a_token_never_changes_its_own_limits() {
    let (tokens, _, _) = clocked(MemoryStore::new());
    let owner = UserId::from(2);
    let limited_one = tokens
        .issue(&admin(), limited(per_minute(5)).owner(owner.clone()))
        .unwrap()
        .token
        .id;
    let other = tokens
        .issue(&admin(), every_permission("other").owner(owner.clone()))
        .unwrap()
        .token
        .id;
    let via = Actor::user(owner).via_token(limited_one);
    for limits in [per_minute(1_000), Limits::none()] {
        let e = tokens
            .update(&via, [TokenUpdate::new(limited_one).limits(limits)])
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Forbidden {
                    source: Forbidden::OwnLimits,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(e.code(), "own_limits");
    }
    // Renaming itself is fine, and keeps its limits.
    tokens
        .update(
            &via,
            [TokenUpdate::new(limited_one).name(TokenName::new("renamed").unwrap())],
        )
        .unwrap();
    let t = tokens.get(&admin(), limited_one).unwrap();
    assert_eq!(t.limits.as_deref(), Some(&per_minute(5)));
    tokens
        .update(&via, [TokenUpdate::new(other).limits(per_minute(7))])
        .unwrap();
    tokens
        .update(
            &admin(),
            [TokenUpdate::new(limited_one).limits(Limits::none())],
        )
        .unwrap();
    assert_eq!(tokens.get(&admin(), limited_one).unwrap().limits, None);
}

/// Writing a token back with its limits unchanged keeps their state (spent credits stay
/// spent); new limits start afresh.
#[test]
fn updates_keep_the_state_of_unchanged_limits() {
    let (tokens, clock, _) = clocked(MemoryStore::new());
    let issued = tokens.issue(&admin(), limited(credits(2))).unwrap();
    let (id, secret) = (issued.token.id, issued.secret.expose());
    tokens.authenticate(secret, &ctx()).unwrap();
    tokens.authenticate(secret, &ctx()).unwrap();
    tokens
        .update(
            &admin(),
            [TokenUpdate::new(id).description("still limited")],
        )
        .unwrap();
    tokens
        .update(&admin(), [TokenUpdate::new(id).limits(credits(2))])
        .unwrap();
    assert_eq!(
        tokens.authenticate(secret, &ctx()).unwrap_err().code(),
        "usage_exceeded",
        "the same limits again change nothing"
    );
    clock.advance(Duration::seconds(1));
    let again = Limits::none().credits(Credits::new(1, tokens.now()).unwrap());
    tokens
        .update(&admin(), [TokenUpdate::new(id).limits(again)])
        .unwrap();
    tokens.authenticate(secret, &ctx()).unwrap();
    assert!(tokens.authenticate(secret, &ctx()).is_err());
}

#[test]
fn limits_out_of_bounds_are_refused_naming_the_field() {
    let tokens = Tokens::in_memory();
    let mut bad = per_minute(1);
    bad.rates[0].limit = 0;
    let e = tokens.issue(&admin(), limited(bad.clone())).unwrap_err();
    assert_eq!(e.field(), Some(Field::Limits));
    assert_eq!(e.http_status(), 400);
    let ok = tokens.issue(&admin(), every_permission("ok")).unwrap();
    let e = tokens
        .update(&admin(), [TokenUpdate::new(ok.token.id).limits(bad)])
        .unwrap_err();
    assert_eq!(e.field(), Some(Field::Limits));
    assert_eq!(
        "rate x 0 per 1000ms".parse::<Limits>().unwrap_err().field,
        Field::Limits
    );
}

#[test]
fn a_snapshot_keeps_limits_and_what_was_spent() {
    let tokens = Tokens::in_memory();
    let issued = tokens
        .issue(
            &admin(),
            limited(Limits::none().credits(Credits::new(5, tokens.now()).unwrap())),
        )
        .unwrap();
    tokens.authenticate(issued.secret.expose(), &ctx()).unwrap();
    let sealed = tokens.sealed_snapshot();
    let json = serde_json::to_string(&sealed).unwrap();
    let restored = Tokens::in_memory();
    restored
        .restore_sealed(serde_json::from_str(&json).unwrap())
        .unwrap();
    let g = restored
        .authenticate(issued.secret.expose(), &ctx())
        .unwrap();
    assert!(matches!(
        g.limits(),
        [Remaining::Credits { remaining: 3, .. }]
    ));
    // Limits added to a snapshot after it was sealed are refused.
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["tokens"][0]["balance"]["remaining"] = 1_000.into();
    assert!(
        restored
            .restore_sealed(serde_json::from_value(v).unwrap())
            .is_err()
    );
}

/// A store that keeps no limits' state: everything as the memory store, but it says so and
/// hands out candidates as a host's store would, by `Token::candidate`.
struct Forgetful(MemoryStore);

impl TokenStore for Forgetful {
    fn reserve_ids(&self, n: usize) -> Result<Vec<TokenId>, StoreError> {
        self.0.reserve_ids(n)
    }
    fn apply(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        self.0.apply(changes)
    }
    fn get(&self, id: TokenId) -> Result<Option<Token>, StoreError> {
        self.0.get(id)
    }
    fn find_name(&self, owner: &UserId, name: &TokenName) -> Result<Option<TokenId>, StoreError> {
        self.0.find_name(owner, name)
    }
    fn query(&self, q: &Query, now: OffsetDateTime) -> Result<Vec<Token>, StoreError> {
        self.0.query(q, now)
    }
    fn count(&self, q: &Query, now: OffsetDateTime) -> Result<usize, StoreError> {
        self.0.count(q, now)
    }
    fn authenticate(
        &self,
        hash: &SecretHash,
        check: &mut dyn FnMut(Candidate<'_>) -> Option<LastUse>,
    ) -> Result<bool, StoreError> {
        let found = self
            .0
            .query(&Query::new(), NOW)?
            .into_iter()
            .find(|t| t.candidate(hash).is_some());
        Ok(match found {
            Some(t) => {
                if let Some(c) = t.candidate(hash) {
                    check(c);
                }
                true
            }
            None => false,
        })
    }
    fn key_usage(&self, now: OffsetDateTime) -> Result<Vec<KeyUsage>, StoreError> {
        self.0.key_usage(now)
    }
}

/// A store that cannot enforce limits refuses tokens with them, and a limited record that
/// reaches authentication anyway (written behind the facade's back) is refused, never
/// treated as unlimited.
#[test]
fn a_store_that_cannot_enforce_limits_fails_closed() {
    let tokens = Tokens::new(Forgetful(MemoryStore::new()));
    let e = tokens.issue(&admin(), limited(per_minute(5))).unwrap_err();
    assert!(
        matches!(e, Error::Store(StoreError::LimitsUnsupported)),
        "{e:?}"
    );
    let issued = tokens.issue(&admin(), every_permission("plain")).unwrap();
    assert!(tokens.authenticate(issued.secret.expose(), &ctx()).is_ok());
    let e = tokens
        .update(
            &admin(),
            [TokenUpdate::new(issued.token.id).limits(per_minute(5))],
        )
        .unwrap_err();
    assert_eq!(e.code(), "limits_unsupported");
    // Behind the facade's back.
    let mut t = tokens.store().get(issued.token.id).unwrap().unwrap();
    t.limits = Some(Arc::new(per_minute(5)));
    tokens.store().apply(vec![Change::Replace(t)]).unwrap();
    let d = tokens
        .authenticate(issued.secret.expose(), &ctx())
        .unwrap_err();
    assert_eq!((d.code(), d.http_status()), ("store_unavailable", 503));
}

/// A thread spends from a slice of the budget it took ahead; a slice another thread holds is
/// taken back before anything is refused: no early refusal, no overspend.
#[test]
fn a_slice_another_thread_holds_is_taken_back_before_a_refusal() {
    let (tokens, clock, _) = clocked(MemoryStore::new());
    let rate = RateLimit::new(lname("requests"), 500, Duration::MINUTE).unwrap();
    let issued = tokens
        .issue(&admin(), limited(credits(800).rate(rate)))
        .unwrap();
    let secret: Arc<str> = issued.secret.expose().into();
    // Another thread authenticates once (and takes slices of both budgets), and stays alive
    // (an exited thread's slot may be reused by the next thread, slices included).
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let (authed_tx, authed_rx) = std::sync::mpsc::channel();
    let other = {
        let (tokens, secret) = (tokens.clone(), secret.clone());
        std::thread::spawn(move || {
            authed_tx
                .send(tokens.authenticate(&secret, &ctx()).is_ok())
                .unwrap();
            done_rx.recv().unwrap();
        })
    };
    assert!(authed_rx.recv().unwrap());
    // This thread gets every unit the rate limit has left in this minute, then a refusal.
    let mut admitted = 1;
    while tokens.authenticate(&secret, &ctx()).is_ok() {
        admitted += 1;
        assert!(admitted <= 500);
    }
    assert_eq!(admitted, 500);
    // A minute (and a slot) later, the rest of the credits, exactly.
    clock.advance(Duration::seconds(62));
    while tokens.authenticate(&secret, &ctx()).is_ok() {
        admitted += 1;
        assert!(admitted <= 800);
    }
    assert_eq!(admitted, 800);
    assert_eq!(
        tokens.authenticate(&secret, &ctx()).unwrap_err().code(),
        "usage_exceeded"
    );
    let t = tokens.get(&admin(), issued.token.id).unwrap();
    assert_eq!(t.balance.map(|b| b.remaining), Some(0));
    done_tx.send(()).unwrap();
    other.join().unwrap();
}

/// SQLite keeps limits in its database: two stores on one file (two connections, as two
/// processes would have) share one balance exactly, and a version-4 database (before limits)
/// is migrated when opened.
#[cfg(feature = "sqlite")]
#[test]
fn sqlite_keeps_limits_in_the_database_shared_by_every_connection() {
    use api_tokens::store::sqlite::{SCHEMA_VERSION, SqliteStore};
    let dir = crate::support::TempDir::new("sqlite-limits");
    let path = dir.join("tokens.db");
    let plain = {
        let tokens = Tokens::new(SqliteStore::open(&path).unwrap());
        tokens.issue(&admin(), every_permission("plain")).unwrap()
    };
    // Back to version 4: no limits table.
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("DROP TABLE api_token_limits; PRAGMA user_version = 4;")
            .unwrap();
    }
    let a = Tokens::new(SqliteStore::open(&path).unwrap());
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert!(a.authenticate(plain.secret.expose(), &ctx()).is_ok());
    let b = Tokens::new(SqliteStore::open(&path).unwrap());
    let ten = Limits::none().credits(Credits::new(10, a.now()).unwrap());
    let issued = a.issue(&admin(), limited(ten.clone())).unwrap();
    let secret = issued.secret.expose();
    let mut admitted = 0;
    for i in 0..30 {
        let tokens = if i % 2 == 0 { &a } else { &b };
        match tokens.authenticate(secret, &ctx()) {
            Ok(_) => admitted += 1,
            Err(d) => assert_eq!(d.code(), "usage_exceeded"),
        }
    }
    assert_eq!(admitted, 10);
    let t = b.get(&admin(), issued.token.id).unwrap();
    assert_eq!(t.balance.map(|b| b.remaining), Some(0));
    assert_eq!(t.limits.as_deref(), Some(&ten));
}

/// Requests one after another from three threads (each with its own slices of the budgets)
/// are admitted or refused exactly as the pure rule decides them on one shared state: slices
/// change who holds the budget, never what is admitted.
#[test]
fn slices_admit_exactly_what_the_pure_rule_admits() {
    use api_tokens::limits::{Charge, Usage, decide};
    use std::sync::mpsc;
    let (tokens, clock, _) = clocked(MemoryStore::new());
    let llm = lname("llm");
    let limits = Limits::none()
        .credits(
            Credits::new(400, NOW)
                .unwrap()
                .refill(Refill::new(400, RefillEvery::Interval(Duration::minutes(3))).unwrap()),
        )
        .rate(RateLimit::new(lname("requests"), 60, Duration::seconds(20)).unwrap())
        .rate(
            RateLimit::new(lname("llm-per-minute"), 300, Duration::MINUTE)
                .unwrap()
                .on_meter(llm),
        );
    let issued = tokens.issue(&admin(), limited(limits.clone())).unwrap();
    let secret: Arc<str> = issued.secret.expose().into();
    // Three workers, each authenticating (and spending) when told, one at a time.
    type Job = (OffsetDateTime, u64, mpsc::Sender<(bool, bool)>);
    let workers: Vec<(mpsc::Sender<Job>, std::thread::JoinHandle<()>)> = (0..3)
        .map(|_| {
            let (tx, rx) = mpsc::channel::<Job>();
            let (tokens, secret) = (tokens.clone(), secret.clone());
            let handle = std::thread::spawn(move || {
                for (now, cost, reply) in rx {
                    let auth = tokens.authenticate_at(&secret, &ctx(), now);
                    let spent = match &auth {
                        Ok(g) => g.spend_at("llm", cost, now).is_ok(),
                        Err(_) => false,
                    };
                    reply.send((auth.is_ok(), spent)).unwrap();
                }
            });
            (tx, handle)
        })
        .collect();
    let mut model = Usage::of(&limits);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut now = NOW;
    let (mut admitted, mut refused) = (0, 0);
    for _ in 0..3_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        now += Duration::milliseconds((x % 400) as i64);
        let cost = (x >> 20) % 12;
        let worker = ((x >> 40) % 3) as usize;
        let (reply, answer) = mpsc::channel();
        workers[worker].0.send((now, cost, reply)).unwrap();
        let (auth, spent) = answer.recv().unwrap();
        let want_auth = decide(&limits, &mut model, Charge::Authentication, now).is_ok();
        assert_eq!(auth, want_auth, "authentication at {now}");
        if want_auth {
            let want_spent = decide(
                &limits,
                &mut model,
                Charge::Spend { meter: "llm", cost },
                now,
            )
            .is_ok();
            assert_eq!(spent, want_spent, "spend of {cost} at {now}");
        }
        if auth { admitted += 1 } else { refused += 1 }
    }
    assert!(
        admitted > 100 && refused > 100,
        "{admitted} admitted, {refused} refused"
    );
    let _ = clock;
    for (tx, handle) in workers {
        drop(tx);
        handle.join().unwrap();
    }
}
