//! Which key made a stored hash ([`HashScheme`]), how many hashes each key still backs
//! ([`KeyUsage`], [`HashKeyReport`]), and the set of keys a [`Tokens`](crate::Tokens) holds: one
//! current key that every new hash is made with, older keys kept for verification, and the
//! [`LegacyScheme`]s whose imported hashes it honours.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Field, Problem, ValidationError};
use crate::legacy::{ImportOrigin, LegacyDigest, LegacyScheme};
use crate::secret::{HashKey, KeyId, SecretHash};

/// How a stored [`SecretHash`] was made: under which [`HashKey`] (by its [`KeyId`], never the
/// key), and from what — the secret itself, or the digest another system kept of it
/// ([`LegacyScheme`]). Stores keep one per hash, so a store opened under the wrong key says so
/// ([`Tokens::check_hash_keys`](crate::Tokens::check_hash_keys)) instead of answering every
/// token "unknown", and an operator can see how many hashes an old key still backs.
///
/// Text and serde: `blake3:<key id>` for an ordinary hash, `<scheme>:<key id>` for an imported
/// one (`zabbix-sha512:…`, `sha256:…`), and `unrecorded` for a hash a store kept before it
/// recorded key ids (a SQL database of schema version 2 or older): such a hash is looked up
/// under every key held, and labelled with the key that matched it the first time it does.
///
/// ```
/// use api_tokens::HashKey;
/// use api_tokens::keys::HashScheme;
/// use api_tokens::legacy::LegacyScheme;
/// let key = HashKey::new([7; 32]);
/// let s = HashScheme::keyed(key.id());
/// assert_eq!(s.to_string(), format!("blake3:{}", key.id()));
/// assert_eq!(s.to_string().parse::<HashScheme>()?, s);
/// let z = HashScheme::legacy(LegacyScheme::ZabbixSha512, key.id());
/// assert_eq!(z.to_string().parse::<HashScheme>()?.legacy_scheme(), Some(LegacyScheme::ZabbixSha512));
/// assert_eq!(HashScheme::UNRECORDED.key(), None);
/// # Ok::<(), api_tokens::ValidationError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashScheme {
    key: Option<KeyId>,
    legacy: Option<LegacyScheme>,
}

impl HashScheme {
    /// A hash stored before key ids were recorded: its key is not known until a presented
    /// secret matches it.
    pub const UNRECORDED: Self = Self {
        key: None,
        legacy: None,
    };

    /// The keyed BLAKE3 hash of a secret under the key `key`.
    pub const fn keyed(key: KeyId) -> Self {
        Self {
            key: Some(key),
            legacy: None,
        }
    }

    /// The keyed BLAKE3 hash, under a key derived from `key` for `scheme`, of the digest
    /// `scheme` keeps of a secret (an imported token).
    pub const fn legacy(scheme: LegacyScheme, key: KeyId) -> Self {
        Self {
            key: Some(key),
            legacy: Some(scheme),
        }
    }

    /// The key it was made under; `None` when not recorded.
    pub const fn key(&self) -> Option<KeyId> {
        self.key
    }

    /// The legacy scheme, for an imported hash not upgraded yet.
    pub const fn legacy_scheme(&self) -> Option<LegacyScheme> {
        self.legacy
    }

    /// Whether the key it was made under is not recorded.
    pub const fn is_unrecorded(&self) -> bool {
        self.key.is_none()
    }
}

impl fmt::Display for HashScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.key, self.legacy) {
            (None, _) => f.write_str("unrecorded"),
            (Some(k), None) => write!(f, "blake3:{k}"),
            (Some(k), Some(l)) => write!(f, "{l}:{k}"),
        }
    }
}

impl fmt::Debug for HashScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HashScheme({self})")
    }
}

impl std::str::FromStr for HashScheme {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "unrecorded" {
            return Ok(Self::UNRECORDED);
        }
        let err = || {
            ValidationError::new(
                Field::LegacyHash,
                s,
                Problem::Syntax {
                    expected: "a hash scheme (\"blake3:<key id>\", \"<legacy scheme>:<key id>\" or \"unrecorded\")",
                },
            )
        };
        let (name, id) = s.split_once(':').ok_or_else(err)?;
        let key = id.parse::<KeyId>().map_err(|_| err())?;
        match name {
            "blake3" => Ok(Self::keyed(key)),
            _ => LegacyScheme::from_name(name)
                .map(|l| Self::legacy(l, key))
                .ok_or_else(err),
        }
    }
}

impl Serialize for HashScheme {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HashScheme {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Default for HashScheme {
    /// [`HashScheme::UNRECORDED`]: what a record written before schemes were recorded reads as.
    fn default() -> Self {
        Self::UNRECORDED
    }
}

/// How many of a store's hashes were made one way ([`TokenStore::key_usage`]): `current`
/// counts tokens whose current secret was, `previous` replaced secrets still in their grace
/// period (those past it are never counted: they no longer work under any key).
///
/// [`TokenStore::key_usage`]: crate::TokenStore::key_usage
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct KeyUsage {
    /// How the hashes were made.
    pub scheme: HashScheme,
    /// Tokens whose current secret hash was made this way.
    pub current: u64,
    /// Replaced secrets, still in their grace period, whose hash was made this way.
    pub previous: u64,
}

impl KeyUsage {
    /// The count of one scheme's hashes, as a store that counts in place (SQL `GROUP BY`)
    /// reports it from [`TokenStore::key_usage`](crate::TokenStore::key_usage).
    pub fn new(scheme: HashScheme, current: u64, previous: u64) -> Self {
        Self {
            scheme,
            current,
            previous,
        }
    }

    /// `current + previous`.
    pub fn hashes(&self) -> u64 {
        self.current.saturating_add(self.previous)
    }
}

/// Adds `scheme`'s hash to a usage list (one entry per scheme), as `previous` or `current`.
pub(crate) fn count_into(usage: &mut Vec<KeyUsage>, scheme: HashScheme, previous: bool) {
    let entry = match usage.iter_mut().find(|u| u.scheme == scheme) {
        Some(e) => e,
        None => {
            usage.push(KeyUsage {
                scheme,
                current: 0,
                previous: 0,
            });
            match usage.last_mut() {
                Some(e) => e,
                None => return,
            }
        }
    };
    if previous {
        entry.previous += 1;
    } else {
        entry.current += 1;
    }
}

/// Sorts a usage list into a stable order: by key id, ordinary hashes before legacy ones,
/// unrecorded last.
pub(crate) fn sort_usage(usage: &mut [KeyUsage]) {
    usage.sort_by_key(|u| {
        (
            u.scheme.key.is_none(),
            u.scheme.key.map(|k| *k.as_bytes()),
            u.scheme.legacy.map(LegacyScheme::as_str),
        )
    });
}

/// What [`Tokens::check_hash_keys`](crate::Tokens::check_hash_keys) and
/// [`Tokens::hash_key_report`](crate::Tokens::hash_key_report) found: the keys this `Tokens`
/// holds and how many stored hashes each key (and each legacy scheme) still backs.
///
/// An old key can be dropped once [`HashKeyReport::hashes_under`] says nothing uses it any
/// more; tokens move off it as they are used (each successful authentication under an old key
/// re-hashes that token under the current one) or when their secret is regenerated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HashKeyReport {
    /// The id of the current key.
    pub current: KeyId,
    /// Whether the current key is the public [`HashKey::default`].
    pub current_is_default: bool,
    /// The ids of the older keys held for verification.
    pub old: Vec<KeyId>,
    /// The legacy schemes honoured.
    pub legacy: Vec<LegacyScheme>,
    /// The store's hashes, by how they were made.
    pub usage: Vec<KeyUsage>,
}

impl HashKeyReport {
    /// Hashes (current and in-grace previous) made under `key`, ordinary or legacy.
    pub fn hashes_under(&self, key: KeyId) -> u64 {
        self.usage
            .iter()
            .filter(|u| u.scheme.key == Some(key))
            .map(KeyUsage::hashes)
            .sum()
    }

    /// Hashes not yet made under the current key the ordinary way: under old keys, imported,
    /// or unrecorded. Zero means every token is on the current key.
    pub fn not_current(&self) -> u64 {
        self.usage
            .iter()
            .filter(|u| u.scheme != HashScheme::keyed(self.current))
            .map(KeyUsage::hashes)
            .sum()
    }

    /// Hashes whose key is not recorded (see [`HashScheme::UNRECORDED`]).
    pub fn unrecorded(&self) -> u64 {
        self.usage
            .iter()
            .filter(|u| u.scheme.is_unrecorded())
            .map(KeyUsage::hashes)
            .sum()
    }

    /// The key ids stored hashes were made under that this `Tokens` does not hold, each with
    /// how many hashes it backs. Such hashes can never match: the secrets they stand for are
    /// refused as unknown until the key is configured again.
    pub fn missing_keys(&self) -> Vec<(KeyId, u64)> {
        let mut out: Vec<(KeyId, u64)> = Vec::new();
        for u in &self.usage {
            let Some(k) = u.scheme.key else { continue };
            if k == self.current || self.old.contains(&k) {
                continue;
            }
            match out.iter_mut().find(|(id, _)| *id == k) {
                Some((_, n)) => *n += u.hashes(),
                None => out.push((k, u.hashes())),
            }
        }
        out
    }

    /// The legacy schemes stored hashes use that this `Tokens` does not honour, each with how
    /// many hashes use it.
    pub fn missing_legacy(&self) -> Vec<(LegacyScheme, u64)> {
        let mut out: Vec<(LegacyScheme, u64)> = Vec::new();
        for u in &self.usage {
            let Some(l) = u.scheme.legacy else { continue };
            if self.legacy.contains(&l) {
                continue;
            }
            match out.iter_mut().find(|(s, _)| *s == l) {
                Some((_, n)) => *n += u.hashes(),
                None => out.push((l, u.hashes())),
            }
        }
        out
    }
}

/// One way a presented secret may have been stored: the lookup hash and how it was made.
pub(crate) type Attempt = (SecretHash, HashScheme);

/// The keys a [`Tokens`](crate::Tokens) holds. Every new hash is made under `current`;
/// the others only verify, on the miss path.
#[derive(Clone)]
pub(crate) struct HashKeys {
    current: HashKey,
    current_id: KeyId,
    old: Vec<(HashKey, KeyId)>,
    legacy: Vec<LegacyScheme>,
    /// For each honoured legacy scheme and each held key (current first): the derived lookup
    /// key, computed once here rather than per request.
    legacy_keys: Vec<(LegacyScheme, KeyId, HashKey)>,
    /// The same for the keys [`ImportOrigin`]s are made with.
    origin_keys: Vec<(LegacyScheme, KeyId, HashKey)>,
}

impl fmt::Debug for HashKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashKeys")
            .field("current", &self.current_id)
            .field(
                "old",
                &self.old.iter().map(|(_, id)| id).collect::<Vec<_>>(),
            )
            .field("legacy", &self.legacy)
            .finish()
    }
}

impl Default for HashKeys {
    fn default() -> Self {
        Self::new(HashKey::default())
    }
}

/// The most older keys a `Tokens` holds: each one costs an unknown secret one more hash and
/// lookup.
pub const MAX_OLD_KEYS: usize = 8;

impl HashKeys {
    pub(crate) fn new(current: HashKey) -> Self {
        let current_id = current.id();
        Self {
            current,
            current_id,
            old: Vec::new(),
            legacy: Vec::new(),
            legacy_keys: Vec::new(),
            origin_keys: Vec::new(),
        }
    }

    /// The same keys with `key` as the current one (a former current key that is not `key`
    /// stays held as an old key only if the host lists it).
    pub(crate) fn with_current(&self, key: HashKey) -> Self {
        let mut next = Self::new(key);
        next.old = self
            .old
            .iter()
            .filter(|(_, id)| *id != next.current_id)
            .cloned()
            .collect();
        next.legacy = self.legacy.clone();
        next.rebuild();
        next
    }

    /// Adds an older key for verification. The current key, a key held already, or a key past
    /// [`MAX_OLD_KEYS`] changes nothing (the last is reported by the check).
    pub(crate) fn add_old(&mut self, key: HashKey) -> bool {
        let id = key.id();
        if id == self.current_id || self.old.iter().any(|(_, k)| *k == id) {
            return true;
        }
        if self.old.len() >= MAX_OLD_KEYS {
            return false;
        }
        self.old.push((key, id));
        self.rebuild();
        true
    }

    #[cfg(feature = "legacy")]
    pub(crate) fn add_legacy(&mut self, scheme: LegacyScheme) {
        if !self.legacy.contains(&scheme) {
            self.legacy.push(scheme);
            self.rebuild();
        }
    }

    fn rebuild(&mut self) {
        let keys: Vec<(&HashKey, KeyId)> = std::iter::once((&self.current, self.current_id))
            .chain(self.old.iter().map(|(k, id)| (k, *id)))
            .collect();
        self.legacy_keys = self
            .legacy
            .iter()
            .flat_map(|&l| keys.iter().map(move |(k, id)| (l, *id, l.lookup_key(k))))
            .collect();
        self.origin_keys = self
            .legacy
            .iter()
            .flat_map(|&l| keys.iter().map(move |(k, id)| (l, *id, l.origin_key(k))))
            .collect();
    }

    pub(crate) fn current(&self) -> &HashKey {
        &self.current
    }

    pub(crate) fn current_id(&self) -> KeyId {
        self.current_id
    }

    /// How a new hash is made.
    pub(crate) fn current_scheme(&self) -> HashScheme {
        HashScheme::keyed(self.current_id)
    }

    pub(crate) fn old_ids(&self) -> Vec<KeyId> {
        self.old.iter().map(|(_, id)| *id).collect()
    }

    pub(crate) fn legacy(&self) -> &[LegacyScheme] {
        &self.legacy
    }

    /// The held key with this id.
    pub(crate) fn key(&self, id: KeyId) -> Option<&HashKey> {
        if id == self.current_id {
            return Some(&self.current);
        }
        self.old.iter().find(|(_, k)| *k == id).map(|(key, _)| key)
    }

    /// Whether `presented` has the shape of an honoured legacy scheme's secrets.
    pub(crate) fn accepts_legacy_shape(&self, presented: &str) -> bool {
        self.legacy.iter().any(|l| l.accepts_shape(presented))
    }

    /// Every other way `presented` may be stored, after the ordinary hash under the current
    /// key missed: ordinary hashes under each old key, then each honoured legacy scheme whose
    /// secrets have its shape, under each held key. Computed lazily, one at a time.
    pub(crate) fn miss_attempts<'a>(
        &'a self,
        presented: &'a str,
    ) -> impl Iterator<Item = Attempt> + 'a {
        let old = self
            .old
            .iter()
            .map(move |(key, id)| (SecretHash::of_text(key, presented), HashScheme::keyed(*id)));
        #[cfg(feature = "legacy")]
        let mut digests: Vec<(LegacyScheme, LegacyDigest)> = Vec::new();
        #[cfg(feature = "legacy")]
        let legacy = self
            .legacy_keys
            .iter()
            .filter(move |(l, ..)| l.accepts_shape(presented))
            .map(move |(l, id, lookup)| {
                let digest = match digests.iter().find(|(s, _)| s == l) {
                    Some((_, d)) => *d,
                    None => {
                        let d = l.digest(presented);
                        digests.push((*l, d));
                        d
                    }
                };
                (digest.lookup_hash(lookup), HashScheme::legacy(*l, *id))
            });
        // Without the feature no legacy scheme can be honoured (`Tokens::with_legacy_scheme`
        // is not there): the miss path tries the old keys only.
        #[cfg(not(feature = "legacy"))]
        let legacy = std::iter::empty();
        old.chain(legacy)
    }

    /// The lookup hash of an imported digest under the current key.
    pub(crate) fn import_hash(&self, scheme: LegacyScheme, digest: &LegacyDigest) -> SecretHash {
        digest.lookup_hash(&scheme.lookup_key(&self.current))
    }

    /// The origin a token imported now with `digest` keeps: under the current key.
    pub(crate) fn import_origin(
        &self,
        scheme: LegacyScheme,
        digest: &LegacyDigest,
    ) -> ImportOrigin {
        digest.origin(&scheme.origin_key(&self.current))
    }

    /// Every form an earlier import of `digest` may have left in a store, under each key held
    /// (the current one first, then the old ones, since the key may have rotated between two
    /// imports): its origin ([`ImportOrigin`]), and the lookup hash of a token imported with
    /// it whose hash was not replaced yet (imported before origins were recorded, say).
    /// Empty for a scheme not honoured.
    pub(crate) fn import_traces(
        &self,
        scheme: LegacyScheme,
        digest: &LegacyDigest,
    ) -> (Vec<ImportOrigin>, Vec<SecretHash>) {
        let origins = self
            .origin_keys
            .iter()
            .filter(|(l, ..)| *l == scheme)
            .map(|(.., key)| digest.origin(key))
            .collect();
        let lookups = self
            .legacy_keys
            .iter()
            .filter(|(l, ..)| *l == scheme)
            .map(|(.., key)| digest.lookup_hash(key))
            .collect();
        (origins, lookups)
    }

    /// `origin` made again under the current key, when `presented` is the secret it stands
    /// for: the digest of `presented` in an honoured scheme of its shape gives `origin` under
    /// some held key. `None` when it does not (the token was given a new secret since), or
    /// when `origin` is under the current key already.
    #[cfg(feature = "legacy")]
    pub(crate) fn refreshed_origin(
        &self,
        origin: ImportOrigin,
        presented: &str,
    ) -> Option<ImportOrigin> {
        let mut digests: Vec<(LegacyScheme, LegacyDigest)> = Vec::new();
        for (l, id, key) in self
            .origin_keys
            .iter()
            .filter(|(l, ..)| l.accepts_shape(presented))
        {
            let digest = match digests.iter().find(|(s, _)| s == l) {
                Some((_, d)) => *d,
                None => {
                    let d = l.digest(presented);
                    digests.push((*l, d));
                    d
                }
            };
            if digest.origin(key) == origin {
                return (*id != self.current_id).then(|| self.import_origin(*l, &digest));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_read_back_what_they_write() {
        let id = HashKey::new([3; 32]).id();
        for s in [
            HashScheme::keyed(id),
            HashScheme::legacy(LegacyScheme::ZabbixSha512, id),
            HashScheme::legacy(LegacyScheme::Sha256, id),
            HashScheme::UNRECORDED,
        ] {
            assert_eq!(s.to_string().parse::<HashScheme>().unwrap(), s);
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<HashScheme>(&json).unwrap(), s);
        }
        for bad in [
            "",
            "blake3",
            "blake3:",
            "md5:0123456789abcdef",
            "blake3:0123",
        ] {
            assert!(bad.parse::<HashScheme>().is_err(), "{bad:?}");
        }
    }

    #[cfg(feature = "legacy")]
    #[test]
    fn attempts_cover_old_keys_then_legacy_schemes_in_shape() {
        let a = HashKey::new([1; 32]);
        let b = HashKey::new([2; 32]);
        let mut keys = HashKeys::new(b.clone());
        assert!(keys.add_old(a.clone()));
        assert!(keys.add_old(b.clone()), "the current key is held already");
        keys.add_legacy(LegacyScheme::ZabbixSha512);
        keys.add_legacy(LegacyScheme::Sha256);
        let zabbix = "0123456789abcdef".repeat(4);
        let tried: Vec<Attempt> = keys.miss_attempts(&zabbix).collect();
        // Old key a; Zabbix under b and a; sha256 under b and a (a 64-hex secret is visible
        // ASCII too).
        assert_eq!(tried.len(), 5);
        assert_eq!(
            tried[0],
            (SecretHash::of_text(&a, &zabbix), HashScheme::keyed(a.id()))
        );
        let d = LegacyScheme::ZabbixSha512.digest(&zabbix);
        assert_eq!(
            tried[1],
            (
                d.lookup_hash(&LegacyScheme::ZabbixSha512.lookup_key(&b)),
                HashScheme::legacy(LegacyScheme::ZabbixSha512, b.id())
            )
        );
        assert_eq!(
            tried[2].1,
            HashScheme::legacy(LegacyScheme::ZabbixSha512, a.id())
        );
        // A secret of no legacy shape: old keys only.
        assert_eq!(keys.miss_attempts("short").count(), 1);
        assert!(keys.accepts_legacy_shape(&zabbix));
        assert!(!keys.accepts_legacy_shape("short"));
        // Rotating again keeps the old keys but not the new current one among them.
        let next = keys.with_current(a.clone());
        assert_eq!(next.old_ids(), Vec::<KeyId>::new());
        assert!(next.key(a.id()).is_some() && next.key(b.id()).is_none());
    }

    #[test]
    fn old_keys_are_capped() {
        let mut keys = HashKeys::default();
        for i in 0..MAX_OLD_KEYS {
            assert!(keys.add_old(HashKey::new([i as u8 + 1; 32])));
        }
        assert!(!keys.add_old(HashKey::new([200; 32])));
        assert_eq!(keys.old_ids().len(), MAX_OLD_KEYS);
    }

    #[test]
    fn the_report_names_missing_keys_and_schemes() {
        let (a, b, c) = (
            HashKey::new([1; 32]).id(),
            HashKey::new([2; 32]).id(),
            HashKey::new([3; 32]).id(),
        );
        let mut usage = Vec::new();
        count_into(&mut usage, HashScheme::keyed(a), false);
        count_into(&mut usage, HashScheme::keyed(a), true);
        count_into(&mut usage, HashScheme::keyed(c), false);
        count_into(
            &mut usage,
            HashScheme::legacy(LegacyScheme::Sha256, c),
            false,
        );
        count_into(&mut usage, HashScheme::UNRECORDED, false);
        sort_usage(&mut usage);
        let report = HashKeyReport {
            current: a,
            current_is_default: false,
            old: vec![b],
            legacy: vec![],
            usage,
        };
        assert_eq!(report.hashes_under(a), 2);
        assert_eq!(report.hashes_under(b), 0);
        assert_eq!(report.missing_keys(), vec![(c, 2)]);
        assert_eq!(report.missing_legacy(), vec![(LegacyScheme::Sha256, 1)]);
        assert_eq!(report.unrecorded(), 1);
        assert_eq!(report.not_current(), 3);
        assert_eq!(report.usage.last().unwrap().scheme, HashScheme::UNRECORDED);
    }
}
