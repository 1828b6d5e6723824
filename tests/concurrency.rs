//! Management and authentication at once, bounded in iterations: no secret ever authenticates
//! after the call that invalidated it (a regenerate, a disable, a delete) has returned, and
//! after threads create, generate, rename, disable, delete and authenticate at once the
//! store's invariants hold.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use api_tokens::{
    Actor, MemoryStore, NewToken, PermissionSet, Query, RequestContext, Status, TokenId, TokenName,
    TokenSecret, TokenStore, TokenUpdate, Tokens, UserId,
};

use crate::support::{admin, from};

/// Threads authenticate while others regenerate, disable and delete. A secret must never
/// work once the call that invalidated it has returned.
#[test]
fn no_secret_works_after_the_call_that_invalidated_it_returned() {
    const N: usize = 30;
    let tokens = Arc::new(Tokens::in_memory());
    let actor = admin();
    let secrets: Vec<(TokenId, TokenSecret)> = (0..N)
        .map(|i| {
            let t = tokens
                .issue(
                    &actor,
                    NewToken::new(TokenName::new(&format!("c{i}")).unwrap())
                        .permissions(PermissionSet::all()),
                )
                .unwrap();
            (t.token.id, t.secret)
        })
        .collect();
    let secrets = Arc::new(secrets);
    let invalidated: Arc<Vec<AtomicBool>> =
        Arc::new((0..N).map(|_| AtomicBool::new(false)).collect());
    let violations = Arc::new(AtomicUsize::new(0));
    let granted_before = Arc::new(AtomicUsize::new(0));
    // Invalidation starts once the authenticators are running, so the two always overlap,
    // however the threads happen to be scheduled.
    let rounds_done = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for _ in 0..2 {
            let (tokens, secrets, invalidated, violations, granted_before, rounds_done) = (
                tokens.clone(),
                secrets.clone(),
                invalidated.clone(),
                violations.clone(),
                granted_before.clone(),
                rounds_done.clone(),
            );
            scope.spawn(move || {
                for round in 0..400 {
                    if round > 0 {
                        rounds_done.fetch_add(1, Ordering::SeqCst);
                    }
                    for (i, (_, s)) in secrets.iter().enumerate() {
                        let dead = invalidated[i].load(Ordering::SeqCst);
                        let ok = tokens.authenticate(s.expose(), &from("1.1.1.1")).is_ok();
                        if ok && dead {
                            violations.fetch_add(1, Ordering::SeqCst);
                        }
                        if ok && round < 5 {
                            granted_before.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            });
        }
        for kind in 0..3 {
            let (tokens, secrets, invalidated, actor, rounds_done) = (
                tokens.clone(),
                secrets.clone(),
                invalidated.clone(),
                actor.clone(),
                rounds_done.clone(),
            );
            scope.spawn(move || {
                while rounds_done.load(Ordering::SeqCst) < 2 {
                    std::thread::yield_now();
                }
                for i in (kind * N / 3)..((kind + 1) * N / 3) {
                    std::thread::yield_now();
                    let id = secrets[i].0;
                    match kind {
                        0 => drop(tokens.generate(&actor, [id]).unwrap()),
                        1 => drop(tokens.set_status(&actor, [id], Status::Disabled).unwrap()),
                        _ => drop(tokens.delete(&actor, [id]).unwrap()),
                    }
                    invalidated[i].store(true, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(violations.load(Ordering::SeqCst), 0);
    assert!(
        granted_before.load(Ordering::SeqCst) > 0,
        "the race was exercised"
    );
    for (i, (_, s)) in secrets.iter().enumerate() {
        assert!(invalidated[i].load(Ordering::SeqCst));
        assert!(tokens.authenticate(s.expose(), &from("1.1.1.1")).is_err());
    }
}

struct Live {
    dead: Arc<AtomicBool>,
}

#[derive(Default)]
struct Tracked {
    /// The current secret of each token the test believes usable.
    live: HashMap<TokenId, Live>,
    /// Tokens disabled or deleted: no secret of theirs may work again.
    killed: HashSet<TokenId>,
}

#[derive(Default)]
struct Registry {
    current: Mutex<Tracked>,
    /// Every secret ever handed out, with whether it has been invalidated.
    all: Mutex<Vec<(String, Arc<AtomicBool>)>>,
}

impl Registry {
    /// Records a secret that a call has just returned for `id`; the previous one is dead.
    fn add(&self, id: TokenId, secret: String) {
        let mut cur = self.current.lock().unwrap();
        let dead = Arc::new(AtomicBool::new(cur.killed.contains(&id)));
        self.all
            .lock()
            .unwrap()
            .push((secret.clone(), dead.clone()));
        if let Some(old) = cur.live.insert(id, Live { dead }) {
            old.dead.store(true, SeqCst);
        }
    }

    /// Records that a disable or delete of `id` has returned.
    fn kill(&self, id: TokenId) {
        let mut cur = self.current.lock().unwrap();
        cur.killed.insert(id);
        if let Some(old) = cur.live.get(&id) {
            old.dead.store(true, SeqCst);
        }
    }

    fn pick(&self, r: u64) -> Option<TokenId> {
        let cur = self.current.lock().unwrap();
        let n = cur.live.len();
        (n > 0).then(|| *cur.live.keys().nth((r % n as u64) as usize).unwrap())
    }
}

fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// Five rounds on fresh stores: a lost-update race shows up in about half the rounds when the
/// store's revision check is removed, so five make a miss unlikely (~3%).
#[test]
fn concurrent_management_and_authentication_keep_every_invariant() {
    let (mut successes, mut refusals) = (0, 0);
    for _ in 0..5 {
        let (s, r) = one_round();
        successes += s;
        refusals += r;
    }
    // Over all rounds, not per round: a loaded machine may schedule a round's authenticators
    // only once every managed token is gone, but not five rounds in a row.
    assert!(successes > 0, "managed secrets were authenticated");
    assert!(refusals > 0, "invalidated secrets were presented");
}

/// One round; returns how many managed secrets authenticated and how many invalidated ones
/// were presented.
fn one_round() -> (usize, usize) {
    const OPS: usize = 2000;
    let tokens = Arc::new(Tokens::in_memory());
    let registry = Arc::new(Registry::default());
    let admin = Actor::admin(UserId::from(0));
    let violations = Arc::new(AtomicUsize::new(0));
    let successes = Arc::new(AtomicUsize::new(0));
    let refusals = Arc::new(AtomicUsize::new(0));
    let ctx = RequestContext::from_ip("10.0.0.1".parse().unwrap());
    // A bystander no management thread ever touches (it is not among the live tokens they
    // pick from): the authenticators always have a secret to present, from the first moment,
    // and it must keep working throughout. It is not counted below.
    let bystander = tokens
        .issue(
            &admin,
            NewToken::new(TokenName::new("bystander").unwrap())
                .owner(UserId::from(0))
                .permissions(PermissionSet::all()),
        )
        .unwrap();
    let bystander = bystander.secret.expose().to_owned();
    registry
        .all
        .lock()
        .unwrap()
        .push((bystander.clone(), Arc::new(AtomicBool::new(false))));

    std::thread::scope(|s| {
        // Creators: names collide on purpose (10 names x 4 owners).
        for t in 0..2u64 {
            let (tokens, registry, admin) = (&tokens, &registry, &admin);
            s.spawn(move || {
                let mut r = rng(t + 11);
                for _ in 0..OPS {
                    let name = TokenName::new(&format!("n{}", r() % 10)).unwrap();
                    let item = NewToken::new(name)
                        .owner(UserId::from(r() % 4))
                        .permissions(PermissionSet::all());
                    if let Ok(issued) = tokens.issue(admin, item) {
                        registry.add(issued.token.id, issued.secret.expose().to_owned());
                    }
                }
            });
        }
        // Regenerate, rename, disable, delete.
        for kind in 0..4u64 {
            let (tokens, registry, admin) = (&tokens, &registry, &admin);
            s.spawn(move || {
                let mut r = rng(kind + 101);
                for _ in 0..OPS {
                    let Some(id) = registry.pick(r()) else {
                        std::thread::yield_now();
                        continue;
                    };
                    match kind {
                        0 => {
                            if let Ok(mut v) = tokens.generate(admin, [id]) {
                                let (id, secret) = v.pop().unwrap();
                                registry.add(id, secret.expose().to_owned());
                            }
                        }
                        1 => {
                            let name = TokenName::new(&format!("n{}", r() % 10)).unwrap();
                            let _ = tokens.update(admin, [TokenUpdate::new(id).name(name)]);
                        }
                        2 => {
                            if r().is_multiple_of(4)
                                && tokens.set_status(admin, [id], Status::Disabled).is_ok()
                            {
                                registry.kill(id);
                            }
                        }
                        _ => {
                            if r().is_multiple_of(4) && tokens.delete(admin, [id]).is_ok() {
                                registry.kill(id);
                            }
                        }
                    }
                }
            });
        }
        // Authenticators.
        for t in 0..2u64 {
            let (tokens, registry, violations, successes, refusals, bystander) = (
                &tokens,
                &registry,
                &violations,
                &successes,
                &refusals,
                &bystander,
            );
            s.spawn(move || {
                let mut r = rng(t + 1001);
                for _ in 0..OPS * 10 {
                    let (secret, dead) = {
                        let all = registry.all.lock().unwrap();
                        all[(r() % all.len() as u64) as usize].clone()
                    };
                    let managed = secret != *bystander;
                    let was_dead = dead.load(SeqCst);
                    let ok = tokens.authenticate(&secret, &ctx).is_ok();
                    if ok && was_dead {
                        violations.fetch_add(1, SeqCst);
                    }
                    if !managed {
                        assert!(ok, "the bystander was refused");
                    } else if ok {
                        successes.fetch_add(1, SeqCst);
                    } else if was_dead {
                        refusals.fetch_add(1, SeqCst);
                    }
                }
            });
        }
    });

    assert_eq!(
        violations.load(SeqCst),
        0,
        "a secret worked after it was invalidated"
    );

    // Invariants of the store.
    let snap = tokens.store().snapshot();
    let mut names = HashSet::new();
    let mut hashes = HashSet::new();
    for t in &snap.tokens {
        assert!(
            names.insert((t.owner.clone(), t.name.clone())),
            "unique names per owner"
        );
        if let Some(s) = t.secret {
            for h in s.hashes() {
                assert!(hashes.insert(h), "every hash belongs to one token");
                let mut found = None;
                tokens
                    .store()
                    .authenticate(&h, &mut |c| {
                        found = Some(c.id);
                        None
                    })
                    .unwrap();
                assert_eq!(found, Some(t.id), "each hash finds its own token");
            }
        }
    }
    assert_eq!(tokens.store().len(), snap.tokens.len(), "counts add up");
    assert_eq!(
        tokens.count(&admin, &Query::new()).unwrap(),
        snap.tokens.len()
    );
    let by_owner: usize = (0..4)
        .map(|o| {
            tokens
                .count(&admin, &Query::new().owners([UserId::from(o)]))
                .unwrap()
        })
        .sum();
    assert_eq!(
        by_owner,
        snap.tokens.len(),
        "the owner index covers every token"
    );
    // Every secret the test still believes current works; every other one does not.
    let current = registry.current.lock().unwrap();
    for (secret, dead) in registry.all.lock().unwrap().iter() {
        let ok = tokens.authenticate(secret, &ctx).is_ok();
        assert_eq!(
            ok,
            !dead.load(SeqCst),
            "secret state agrees with the calls made"
        );
    }
    for id in current
        .live
        .keys()
        .filter(|id| !current.killed.contains(id))
    {
        let t = snap.tokens.iter().find(|t| t.id == *id);
        assert_eq!(
            t.map(|t| t.status),
            Some(Status::Enabled),
            "token {id} is live and enabled"
        );
    }
    let _ = MemoryStore::from_snapshot(snap).expect("the final state is a valid snapshot");
    (successes.load(SeqCst), refusals.load(SeqCst))
}
