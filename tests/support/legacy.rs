//! Tokens imported from Zabbix with the hash it kept (feature `legacy`).

use api_tokens::store::{Change, TokenStore};
use api_tokens::{
    Error, HashKey, ImportedToken, LegacyHash, LegacyScheme, ManualClock, MemoryStore, TokenId,
    Tokens, UserId,
};
use sha2::{Digest, Sha512};

use super::{NOW, admin, hex};

/// A Zabbix secret (64 hex digits) whose SHA-512 the old system kept.
pub const ZABBIX_SECRET: &str = "5f2b9c0e7a1d4e8f3b6a9c2d5e8f1a4b7c0d3e6f9a2b5c8d1e4f7a0b3c6d9e2f";

/// The hash Zabbix kept of `secret`: SHA-512 of its text, 128 hex digits.
pub fn zabbix_row(secret: &str) -> LegacyHash {
    LegacyHash::parse(
        LegacyScheme::ZabbixSha512,
        &hex(&Sha512::digest(secret.as_bytes())),
    )
    .unwrap()
}

/// Tokens over `store` with `key` current, Zabbix hashes honoured, a manual clock at [`NOW`].
pub fn zabbix_tokens_on<S: TokenStore>(store: S, key: HashKey) -> Tokens<S> {
    Tokens::new(store)
        .with_hash_key(key)
        .with_legacy_scheme(LegacyScheme::ZabbixSha512)
        .with_clock(ManualClock::new(NOW))
}

/// Imports the token Zabbix kept as `row` for `owner`, as the admin.
pub fn import(
    t: &Tokens<impl TokenStore>,
    owner: u64,
    name: &str,
    row: LegacyHash,
) -> Result<TokenId, Error> {
    t.import(
        &admin(),
        [
            ImportedToken::new(name.parse().unwrap(), UserId::from(owner))
                .permissions("*".parse().unwrap())
                .hash(row),
        ],
    )
    .map(|ids| ids[0])
}

/// A token of user 3 holding [`ZABBIX_SECRET`]'s imported hash under `key`, with no recorded
/// origin: what an import made before origins were recorded left, next to a token of user 2
/// imported from the same hash since. (The facade refuses to make it, so it is written to the
/// store directly.)
pub fn an_unrecorded_twin(store: &dyn TokenStore, key: HashKey, name: &str) -> TokenId {
    let scratch = zabbix_tokens_on(MemoryStore::new(), key);
    let id = import(&scratch, 3, name, zabbix_row(ZABBIX_SECRET)).unwrap();
    let mut twin = scratch.store().get(id).unwrap().unwrap();
    twin.id = store.reserve_ids(1).unwrap()[0];
    twin.imported_from = None;
    store.apply(vec![Change::Insert(twin.clone())]).unwrap();
    twin.id
}
