//! Hash keys: two keys to rotate between, and tokens under a key with their events collected.

use std::sync::Arc;

use api_tokens::{
    CollectEvents, EventKind, HashKey, HashScheme, ManualClock, TokenId, TokenStore, Tokens,
};

use super::NOW;

pub fn key_a() -> HashKey {
    HashKey::new([0xa; 32])
}

pub fn key_b() -> HashKey {
    HashKey::new([0xb; 32])
}

/// Tokens over `store` with `key` current, a manual clock at [`NOW`] and collected events.
pub fn tokens_on<S: TokenStore>(store: S, key: HashKey) -> (Tokens<S>, Arc<CollectEvents>) {
    let events = Arc::new(CollectEvents::new());
    let t = Tokens::new(store)
        .with_hash_key(key)
        .with_clock(ManualClock::new(NOW))
        .with_events(events.clone());
    (t, events)
}

/// The re-hashes recorded since the events were last taken: token, from, to.
pub fn rehashed(events: &CollectEvents) -> Vec<(Option<TokenId>, HashScheme, HashScheme)> {
    events
        .take()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Rehashed { from, to } => Some((e.token, from, to)),
            _ => None,
        })
        .collect()
}
