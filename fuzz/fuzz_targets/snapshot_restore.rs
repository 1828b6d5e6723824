//! Any bytes as sealed snapshot JSON: never a panic; a refused restore leaves the store
//! unchanged. The seal is checked first (a fuzzer cannot forge one, so the contents are then
//! restored as if it held, to reach the store's own checks too).
#![no_main]

use api_tokens::{HashKey, MemoryStore, store::memory::SealedSnapshot, store::memory::Snapshot};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sealed) = serde_json::from_slice::<SealedSnapshot>(data) else {
        return;
    };
    let _ = sealed.clone().open(&HashKey::default());
    // Whatever version the input claims, as restore sees it.
    let mut snapshot = Snapshot::new(sealed.next_id, sealed.tokens);
    snapshot.version = sealed.version;
    let store = MemoryStore::new();
    let before = store.snapshot();
    if store.restore(snapshot).is_err() {
        assert_eq!(store.snapshot(), before);
    }
});
