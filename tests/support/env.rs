//! A host as the authentication, rotation and revocation tests see it: tokens over a memory
//! store that counts its lookups by hash, a manual clock at [`NOW`], a directory of two users
//! (1, the admin, with every right; 2 with `dns.*, kill-acct, create-acct`) and collected
//! events.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use api_tokens::{
    CollectEvents, Denial, DenialKind, Grant, ManualClock, MemoryStore, NewToken, PermissionSet,
    Policy, RequestContext, StaticDirectory, TokenId, TokenName, TokenSecret, TokenUpdate, Tokens,
    UserState,
};

use super::hooked::Hooked;
use super::{NOW, admin, uid};

pub struct Env {
    pub tokens: Tokens<Hooked<MemoryStore>>,
    /// Hash lookups that reached the store, to prove what never does.
    lookups: Arc<AtomicUsize>,
    pub clock: Arc<ManualClock>,
    pub directory: Arc<StaticDirectory>,
    pub events: Arc<CollectEvents>,
}

/// The host under Zabbix's policy, which accepts a past expiry (so tests can create expired
/// tokens).
pub fn env() -> Env {
    env_with(Policy::zabbix())
}

/// The host under `policy`.
pub fn env_with(policy: Policy) -> Env {
    let clock = Arc::new(ManualClock::new(NOW));
    let directory = Arc::new(
        StaticDirectory::new()
            .with(uid(1), UserState::Active(PermissionSet::all()))
            .with(
                uid(2),
                UserState::Active("dns.*, kill-acct, create-acct".parse().unwrap()),
            ),
    );
    let events = Arc::new(CollectEvents::new());
    let lookups = Arc::new(AtomicUsize::new(0));
    let counter = lookups.clone();
    let store = Hooked::new(MemoryStore::new()).on_authenticate(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let tokens = Tokens::new(store)
        .with_policy(policy)
        .with_clock(clock.clone())
        .with_directory(directory.clone())
        .with_events(events.clone());
    // As a host does at startup (else the first authentication runs it).
    tokens.check_hash_keys().unwrap();
    Env {
        tokens,
        lookups,
        clock,
        directory,
        events,
    }
}

impl Env {
    /// Issues `item` as the admin.
    pub fn issue(&self, item: NewToken) -> (TokenId, TokenSecret) {
        let issued = self.tokens.issue(&admin(), item).unwrap();
        (issued.token.id, issued.secret)
    }

    /// A token of user 2 for `dns.*, kill-acct`, from `10.0.0.0/8` and `2001:db8::/32`.
    pub fn basic(&self, name: &str) -> (TokenId, TokenSecret) {
        self.issue(
            NewToken::new(TokenName::new(name).unwrap())
                .owner(uid(2))
                .permissions("dns.*, kill-acct".parse().unwrap())
                .allowlist("10.0.0.0/8, 2001:db8::/32".parse().unwrap()),
        )
    }

    pub fn auth(&self, s: &TokenSecret, ctx: RequestContext) -> Result<Grant, Denial> {
        self.tokens.authenticate(s.expose(), &ctx)
    }

    /// How many lookups by hash reached the store so far.
    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }

    pub fn update(&self, u: TokenUpdate) {
        self.tokens.update(&admin(), [u]).unwrap();
    }
}

/// Why `r` was denied; fails the test when it was granted.
pub fn kind(r: Result<Grant, Denial>) -> DenialKind {
    r.expect_err("should be denied").kind()
}
