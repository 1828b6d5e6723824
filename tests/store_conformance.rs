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
