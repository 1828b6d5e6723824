//! Any bytes as snapshot JSON: never a panic; a refused restore leaves the store unchanged.
#![no_main]

use api_tokens::{MemoryStore, Snapshot};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(snapshot) = serde_json::from_slice::<Snapshot>(data) else {
        return;
    };
    let store = MemoryStore::new();
    let before = store.snapshot();
    if store.restore(snapshot).is_err() {
        assert_eq!(store.snapshot(), before);
    }
});
