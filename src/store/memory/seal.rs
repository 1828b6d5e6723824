//! Sealed snapshots: a [`Snapshot`] with a keyed BLAKE3 MAC, for the host to persist.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use super::{SNAPSHOT_VERSION, Snapshot};
use crate::error::StoreError;
use crate::keys::HashScheme;
use crate::secret::{HashKey, KeyId};
use crate::token::{LastUse, PreviousSecret, Revoked, SecretState, Status, Token};

/// The context string the seal's MAC key is derived under (from the [`HashKey`]).
const SEAL_CONTEXT: &str = "api-tokens 2026 snapshot seal";

/// A [`Snapshot`] sealed for storage: its contents, the [`KeyId`] of the hash key it was sealed
/// under, and a keyed BLAKE3 MAC of both under a key derived from that hash key. Write it with
/// any serde format; read it back and [`open`](SealedSnapshot::open) it with the same key.
///
/// An edited snapshot (an owner changed to `admin`, permissions to `*`) no longer matches its
/// seal and is refused ([`StoreError::SnapshotTampered`]); one sealed under another key is
/// refused with a different error ([`StoreError::SnapshotKeyMismatch`]) naming both key ids.
/// The seal protects only as well as the key: with the public [`HashKey::default`], anyone can
/// seal anything.
///
/// **The seal does not prevent a rollback.** An older snapshot sealed under the same key opens
/// as well as the newest: whoever can replace the file can bring back tokens deleted, disabled,
/// regenerated or revoked by possession since it was sealed. Keep snapshots where only the
/// host writes, and after a revocation write a new one at once (and remove older copies).
///
/// ```
/// use api_tokens::{Actor, HashKey, MemoryStore, NewToken, StoreError, Tokens, UserId};
/// use api_tokens::store::memory::SealedSnapshot;
/// let key = HashKey::new([7; 32]);
/// let tokens = Tokens::in_memory().with_hash_key(key.clone());
/// tokens.issue(
///     &Actor::user(UserId::from(2)),
///     NewToken::new("ci".parse()?).permissions("deploy".parse()?),
/// )?;
///
/// let json = serde_json::to_string(&tokens.store().snapshot().seal(&key))?;
/// let sealed: SealedSnapshot = serde_json::from_str(&json)?;
/// let restored = MemoryStore::from_snapshot(sealed.clone().open(&key)?)?;
/// assert_eq!(restored.len(), 1);
///
/// let edited: SealedSnapshot = serde_json::from_str(&json.replace("\"owner\":\"2\"", "\"owner\":\"1\""))?;
/// assert!(matches!(edited.open(&key), Err(StoreError::SnapshotTampered)));
/// assert!(matches!(sealed.open(&HashKey::default()), Err(StoreError::SnapshotKeyMismatch { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SealedSnapshot {
    /// Format version ([`SNAPSHOT_VERSION`]).
    pub version: u32,
    /// The id of the hash key it was sealed under.
    pub key_id: KeyId,
    /// The next id the store hands out.
    pub next_id: u64,
    /// Every token, by id. Written with their hashes, in the
    /// [`StoredToken`](crate::store::StoredToken) form (a `Token`'s own `Serialize` writes its
    /// public view, without them).
    #[serde(with = "crate::store::record::list")]
    pub tokens: Vec<Token>,
    /// The MAC of everything above.
    pub seal: Seal,
}

/// The keyed BLAKE3 MAC of a [`SealedSnapshot`]: 64 hex digits in serde, compared in constant
/// time, shown shortened by `Debug`.
#[derive(Clone, Copy, Eq)]
pub struct Seal([u8; 32]);

impl PartialEq for Seal {
    fn eq(&self, other: &Self) -> bool {
        // blake3::Hash compares in constant time.
        blake3::Hash::from_bytes(self.0) == blake3::Hash::from_bytes(other.0)
    }
}

impl fmt::Debug for Seal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = blake3::Hash::from_bytes(self.0).to_hex();
        write!(f, "Seal({}…)", hex.get(..8).unwrap_or_default())
    }
}

impl Serialize for Seal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&blake3::Hash::from_bytes(self.0).to_hex())
    }
}

impl<'de> Deserialize<'de> for Seal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        blake3::Hash::from_hex(s.as_bytes())
            .map(|h| Self(*h.as_bytes()))
            .map_err(|_| serde::de::Error::custom("seal is not 64 hex digits"))
    }
}

impl Snapshot {
    /// Seals the snapshot under `key` (the [`HashKey`] its tokens' secrets are hashed with),
    /// for storage.
    pub fn seal(&self, key: &HashKey) -> SealedSnapshot {
        let key_id = key.id();
        SealedSnapshot {
            version: self.version,
            key_id,
            next_id: self.next_id,
            seal: mac(key, self.version, key_id, self.next_id, &self.tokens),
            tokens: self.tokens.clone(),
        }
    }
}

impl SealedSnapshot {
    /// Checks the seal under `key` and returns the snapshot, for
    /// [`MemoryStore::restore`](super::MemoryStore::restore) or
    /// [`MemoryStore::from_snapshot`](super::MemoryStore::from_snapshot).
    ///
    /// # Errors
    /// [`StoreError::InvalidSnapshot`] for another format version;
    /// [`StoreError::SnapshotKeyMismatch`] when it was sealed under another key;
    /// [`StoreError::SnapshotTampered`] when anything in it changed after it was sealed.
    pub fn open(self, key: &HashKey) -> Result<Snapshot, StoreError> {
        if !(2..=SNAPSHOT_VERSION).contains(&self.version) {
            return Err(StoreError::InvalidSnapshot(format!(
                "unknown version {} (expected 2 to {SNAPSHOT_VERSION}; version 1 snapshots were not sealed)",
                self.version
            )));
        }
        let expected = key.id();
        if self.key_id != expected {
            return Err(StoreError::SnapshotKeyMismatch {
                snapshot: self.key_id,
                expected,
            });
        }
        if mac(key, self.version, self.key_id, self.next_id, &self.tokens) != self.seal {
            return Err(StoreError::SnapshotTampered);
        }
        // Versions before 4 wrote no import origins and sealed none: one there was added after
        // the seal was made.
        if self.version < 4 && self.tokens.iter().any(|t| t.imported_from.is_some()) {
            return Err(StoreError::SnapshotTampered);
        }
        // Likewise limits before version 5.
        if self.version < 5
            && self
                .tokens
                .iter()
                .any(|t| t.limits.is_some() || t.balance.is_some())
        {
            return Err(StoreError::SnapshotTampered);
        }
        let mut tokens = self.tokens;
        if self.version == 2 {
            // Version 2 recorded no scheme per hash: every hash in it was made under the one
            // key the snapshot was sealed with (the seal just proved it is this one).
            label_unrecorded(&mut tokens, self.key_id);
        }
        Ok(Snapshot {
            version: SNAPSHOT_VERSION,
            next_id: self.next_id,
            tokens,
        })
    }
}

/// Labels every hash whose scheme is unrecorded as made under `key` (the ordinary way).
fn label_unrecorded(tokens: &mut [Token], key: KeyId) {
    let scheme = HashScheme::keyed(key);
    for s in tokens.iter_mut().filter_map(|t| t.secret.as_mut()) {
        if s.scheme.is_unrecorded() {
            s.scheme = scheme;
        }
        if let Some(p) = s.previous.as_mut()
            && p.scheme.is_unrecorded()
        {
            p.scheme = scheme;
        }
    }
}

/// The MAC over a canonical encoding of the values (not of any serde format, so any format the
/// host picks round-trips): integers little-endian, texts and lists length-prefixed, times in
/// whole Unix seconds (the precision serde keeps).
fn mac(key: &HashKey, version: u32, key_id: KeyId, next_id: u64, tokens: &[Token]) -> Seal {
    let mut m = Mac(blake3::Hasher::new_keyed(&key.derive(SEAL_CONTEXT)));
    m.u64(u64::from(version));
    m.bytes(key_id.as_bytes());
    m.u64(next_id);
    m.len(tokens.len());
    // Version 2 had no schemes; from version 3 on, each hash's scheme is sealed with it,
    // from version 4 on each token's import origin, from version 5 on its limits.
    let fields = Fields {
        schemes: version >= 3,
        origins: version >= 4,
        limits: version >= 5,
    };
    for t in tokens {
        m.token(t, fields);
    }
    Seal(*m.0.finalize().as_bytes())
}

struct Mac(blake3::Hasher);

/// Which fields a snapshot's version seals besides those every version seals.
#[derive(Clone, Copy)]
struct Fields {
    schemes: bool,
    origins: bool,
    limits: bool,
}

impl Mac {
    fn u64(&mut self, v: u64) {
        self.0.update(&v.to_le_bytes());
    }

    fn i64(&mut self, v: i64) {
        self.0.update(&v.to_le_bytes());
    }

    fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.update(b);
    }

    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn time(&mut self, t: OffsetDateTime) {
        self.i64(t.unix_timestamp());
    }

    fn flag(&mut self, present: bool) {
        self.0.update(&[u8::from(present)]);
    }

    fn ip(&mut self, ip: Option<IpAddr>) {
        match ip {
            None => self.0.update(&[0]),
            Some(IpAddr::V4(a)) => self.0.update(&[4]).update(&a.octets()),
            Some(IpAddr::V6(a)) => self.0.update(&[6]).update(&a.octets()),
        };
    }

    fn scheme(&mut self, s: HashScheme) {
        self.str(&s.to_string());
    }

    /// Every field, by name: a field added to `Token` fails to compile here until it is sealed.
    fn token(&mut self, t: &Token, fields: Fields) {
        let schemes = fields.schemes;
        let Token {
            id,
            name,
            description,
            owner,
            creator,
            status,
            created_at,
            expiry,
            permissions,
            allowlist,
            last_use,
            secret,
            revision,
            revoked,
            imported_from,
            limits,
            balance,
        } = t;
        self.u64(id.get());
        self.str(name.as_str());
        self.str(description);
        self.str(owner.as_str());
        self.str(creator.as_str());
        self.flag(*status == Status::Disabled);
        self.time(*created_at);
        self.flag(expiry.is_never());
        self.i64(expiry.unix().unwrap_or_default());
        self.len(permissions.len());
        for p in permissions.iter() {
            self.str(p.as_str());
        }
        self.len(allowlist.len());
        for e in allowlist.entry_strings() {
            self.str(&e);
        }
        self.flag(last_use.is_some());
        if let Some(LastUse { at, ip }) = last_use {
            self.time(*at);
            self.ip(*ip);
        }
        self.flag(secret.is_some());
        if let Some(SecretState {
            hash,
            scheme,
            generated_at,
            previous,
        }) = secret
        {
            self.bytes(hash.as_bytes());
            if schemes {
                self.scheme(*scheme);
            }
            self.time(*generated_at);
            self.flag(previous.is_some());
            if let Some(PreviousSecret {
                hash,
                scheme,
                valid_until,
            }) = previous
            {
                self.bytes(hash.as_bytes());
                if schemes {
                    self.scheme(*scheme);
                }
                self.time(*valid_until);
            }
        }
        self.u64(u64::from(*revision));
        self.flag(revoked.is_some());
        if let Some(Revoked { at, by }) = revoked {
            self.time(*at);
            self.str(by.as_str());
        }
        if fields.origins {
            self.flag(imported_from.is_some());
            if let Some(origin) = imported_from {
                self.bytes(origin.as_bytes());
            }
        }
        if fields.limits {
            // Their text form is canonical: one text for equal limits.
            self.flag(limits.is_some());
            if let Some(limits) = limits {
                self.str(&limits.to_string());
            }
            self.flag(balance.is_some());
            if let Some(b) = balance {
                self.u64(b.remaining);
                self.time(b.refilled_at);
            }
        }
    }
}
