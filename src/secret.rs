//! Token secrets: generation, the accepted formats, parsing of presented strings and keyed hashing.
//!
//! A secret exists in plaintext exactly once, as a [`TokenSecret`] returned by the call that
//! generated it. Stores keep only its [`SecretHash`]: a keyed BLAKE3 hash under the host's
//! [`HashKey`].

use std::fmt;

use rand::{CryptoRng, Rng};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::MalformedSecret;

/// The byte accessors of a newtype over `[u8; N]` that stores keep ([`SecretHash`],
/// [`KeyId`], [`ImportOrigin`](crate::legacy::ImportOrigin)): written once, the same for each.
macro_rules! stored_bytes {
    ($n:literal) => {
        /// Wraps the bytes as read back from a store.
        pub const fn from_bytes(bytes: [u8; $n]) -> Self {
            Self(bytes)
        }

        /// The bytes, for a store to keep.
        pub const fn as_bytes(&self) -> &[u8; $n] {
            &self.0
        }
    };
}
pub(crate) use stored_bytes;

/// The longest presented string that is looked at at all, in bytes. Anything longer is refused
/// before any other work, so a client can never make the library hash megabytes.
pub const MAX_PRESENTED_LEN: usize = 128;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Random base62 characters in the default format: 43 * log2(62) = 256.03 bits.
const BODY_LEN: usize = 43;
/// Base62 characters of the checksum: 62^6 > 2^32.
const CHECKSUM_LEN: usize = 6;
const MAX_PREFIX_LEN: usize = 16;

/// The plaintext of a token secret, returned once when it is generated.
///
/// It cannot be cloned, printed with `Display`, or serialized; `Debug` shows a redaction, and the
/// memory holding it is wiped when it is dropped. Read it with [`TokenSecret::expose`], then hand
/// it to the user and drop it.
///
/// ```
/// use api_tokens::SecretFormat;
/// let secret = SecretFormat::default().generate();
/// assert_eq!(format!("{secret:?}"), "TokenSecret(<redacted>)");
/// assert!(secret.expose().starts_with("tok_"));
/// ```
pub struct TokenSecret(String);

impl TokenSecret {
    /// The plaintext. The name is deliberate: every place that reads a secret says so.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Serializes the plaintext, for a response that shows a new secret once: name it in
    /// `#[serde(serialize_with = "TokenSecret::serialize_exposed")]` on a field of your response
    /// type, and the secret goes from its wrapper (wiped when dropped) straight into the
    /// output, with no copy in between. `TokenSecret` itself has no `Serialize`, so no secret is
    /// ever serialized by accident.
    ///
    /// ```
    /// use api_tokens::{Actor, NewToken, TokenId, TokenSecret, Tokens, UserId};
    ///
    /// #[derive(serde::Serialize)]
    /// struct Regenerated {
    ///     id: TokenId,
    ///     #[serde(serialize_with = "TokenSecret::serialize_exposed")]
    ///     secret: TokenSecret,
    /// }
    ///
    /// let tokens = Tokens::in_memory();
    /// let alice = Actor::user(UserId::new("alice")?);
    /// let issued = tokens.issue(&alice, NewToken::new("ci".parse()?).permissions("deploy".parse()?))?;
    /// let (id, secret) = tokens.generate(&alice, [issued.token.id])?.remove(0);
    /// let body = serde_json::to_value(Regenerated { id, secret })?;
    /// assert!(body["secret"].as_str().unwrap().starts_with("tok_"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Whatever the serializer returns.
    pub fn serialize_exposed<S: Serializer>(secret: &TokenSecret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(secret.expose())
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

impl Zeroize for TokenSecret {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl Drop for TokenSecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for TokenSecret {}

/// The key under which secrets are hashed (keyed BLAKE3).
///
/// Hosts should supply 32 random bytes of their own, kept outside the token database (an
/// environment variable, a secrets manager), so that a stolen database alone does not let an
/// attacker test guesses offline. [`HashKey::default`] is a fixed, public key derived from the
/// context string `"api-tokens 2026 default secret hash key"`; it is fine for tests and for hosts
/// that accept that the secrets' own 256 bits of entropy are their only protection — not for
/// imported legacy tokens, whose secrets may be weaker, nor where sealed snapshots must be
/// trusted (anyone can seal under a public key). [`Tokens::uses_default_key`] and
/// [`Tokens::check_hash_keys`] report it when it is in use.
///
/// Every stored hash records the [`id`](HashKey::id) of the key that made it, so a store opened
/// under another key is refused at startup ([`Tokens::check_hash_keys`]) and a key can be
/// rotated without reissuing tokens ([`Tokens::with_old_hash_key`]; [the key rotation
/// guide](crate::guide::key_rotation)).
///
/// [`Tokens::uses_default_key`]: crate::Tokens::uses_default_key
/// [`Tokens::check_hash_keys`]: crate::Tokens::check_hash_keys
/// [`Tokens::with_old_hash_key`]: crate::Tokens::with_old_hash_key
///
/// Make a key once with [`HashKey::random`] and store its [`to_hex`](HashKey::to_hex); load it
/// with [`HashKey::from_env`], [`from_hex`](HashKey::from_hex) or
/// [`from_base64`](HashKey::from_base64). The loaders' errors never contain the key.
///
/// ```
/// use api_tokens::HashKey;
/// let stored = HashKey::random().to_hex(); // 64 hex digits: put them in your secrets manager
/// let key = HashKey::from_hex(&stored)?;
/// assert!(HashKey::from_hex("not a key").is_err());
/// // At startup: `let key = HashKey::from_env("API_TOKENS_HASH_KEY")?;`
/// # Ok::<(), api_tokens::HashKeyError>(())
/// ```
#[derive(Clone)]
pub struct HashKey([u8; 32]);

// Written out rather than derived: `zeroize`'s derive macro would pull a second `syn` into every
// build of the crate for these few lines.
impl Zeroize for HashKey {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl Drop for HashKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for HashKey {}

/// Why text is not a [`HashKey`]. Never contains the text: it may be most of a key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashKeyError {
    /// Not the length of 32 bytes in either encoding.
    #[error(
        "a hash key is 32 bytes, written as 64 hex digits or 43 base64 characters (44 with \
         padding); this text has {found} characters"
    )]
    WrongLength {
        /// The length found, in characters, after trimming surrounding whitespace.
        found: usize,
    },
    /// A character that is not a hex digit.
    #[error("the hash key is not hex: invalid character at position {position}")]
    InvalidHex {
        /// Its 0-based position.
        position: usize,
    },
    /// A character outside base64 (standard or URL-safe alphabet), or bits after the 32nd byte.
    #[error("the hash key is not base64: invalid character at position {position}")]
    InvalidBase64 {
        /// Its 0-based position.
        position: usize,
    },
    /// Every byte is zero: a placeholder, not a key.
    #[error("the hash key is all zeros: a placeholder, not a key (make one with HashKey::random)")]
    AllZero,
    /// The environment variable is not set.
    #[error("the environment variable {var} is not set")]
    EnvMissing {
        /// Its name.
        var: String,
    },
    /// The environment variable is not valid Unicode.
    #[error("the environment variable {var} is not valid Unicode")]
    EnvNotUnicode {
        /// Its name.
        var: String,
    },
}

impl HashKey {
    /// A key from 32 bytes.
    pub const fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh random key from the operating system's CSPRNG (store it; secrets hashed under one
    /// key do not verify under another).
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The key's bytes, for the host to store.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key as 64 lowercase hex digits, for the host to store (wiped when dropped).
    pub fn to_hex(&self) -> zeroize::Zeroizing<String> {
        let mut out = zeroize::Zeroizing::new(String::with_capacity(64));
        for b in self.0 {
            out.push(hex_digit(b >> 4));
            out.push(hex_digit(b & 0xf));
        }
        out
    }

    /// A key from 64 hex digits (either case); surrounding whitespace is ignored.
    ///
    /// # Errors
    /// [`HashKeyError::WrongLength`], [`HashKeyError::InvalidHex`], [`HashKeyError::AllZero`].
    pub fn from_hex(text: &str) -> Result<Self, HashKeyError> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(HashKeyError::WrongLength {
                found: text.chars().count(),
            });
        }
        let mut key = Self([0; 32]);
        let mut digits = text.bytes().enumerate();
        for byte in &mut key.0 {
            let mut next = || {
                let (position, c) = digits
                    .next()
                    .ok_or(HashKeyError::WrongLength { found: 64 })?;
                nibble(c).ok_or(HashKeyError::InvalidHex { position })
            };
            *byte = (next()? << 4) | next()?;
        }
        key.checked()
    }

    /// A key from base64: 43 characters, or 44 ending in `=`, of the standard (`+/`) or the
    /// URL-safe (`-_`) alphabet; surrounding whitespace is ignored.
    ///
    /// # Errors
    /// [`HashKeyError::WrongLength`], [`HashKeyError::InvalidBase64`] (also when the last
    /// character carries bits beyond the 32nd byte), [`HashKeyError::AllZero`].
    pub fn from_base64(text: &str) -> Result<Self, HashKeyError> {
        let text = text.trim();
        let body = text.strip_suffix('=').unwrap_or(text);
        if body.len() != 43 || (text.len() != 43 && text.len() != 44) {
            return Err(HashKeyError::WrongLength {
                found: text.chars().count(),
            });
        }
        let mut key = Self([0; 32]);
        let mut acc: u32 = 0;
        let mut bits = 0;
        let mut out = key.0.iter_mut();
        for (position, c) in body.bytes().enumerate() {
            let v = sextet(c).ok_or(HashKeyError::InvalidBase64 { position })?;
            acc = (acc << 6) | u32::from(v);
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                let byte = (acc >> bits) as u8;
                match out.next() {
                    Some(slot) => *slot = byte,
                    None => return Err(HashKeyError::InvalidBase64 { position }),
                }
                acc &= (1 << bits) - 1;
            }
        }
        // 43 sextets are 258 bits: the last 2 must be zero, or the text is not an encoding of
        // exactly these 32 bytes.
        if acc != 0 {
            acc.zeroize();
            return Err(HashKeyError::InvalidBase64 { position: 42 });
        }
        key.checked()
    }

    /// A key from the environment variable `var`, written in hex ([`HashKey::from_hex`]) or
    /// base64 ([`HashKey::from_base64`]), told apart by length.
    ///
    /// # Errors
    /// [`HashKeyError::EnvMissing`], [`HashKeyError::EnvNotUnicode`], or the decoder's error.
    pub fn from_env(var: &str) -> Result<Self, HashKeyError> {
        let mut value = std::env::var(var).map_err(|e| match e {
            std::env::VarError::NotPresent => HashKeyError::EnvMissing {
                var: var.to_owned(),
            },
            std::env::VarError::NotUnicode(_) => HashKeyError::EnvNotUnicode {
                var: var.to_owned(),
            },
        })?;
        let key = Self::from_text(&value);
        value.zeroize();
        key
    }

    /// Hex or base64, told apart by length.
    fn from_text(text: &str) -> Result<Self, HashKeyError> {
        if text.trim().len() == 64 {
            Self::from_hex(text)
        } else {
            Self::from_base64(text)
        }
    }

    fn checked(self) -> Result<Self, HashKeyError> {
        if self.0.iter().all(|&b| b == 0) {
            Err(HashKeyError::AllZero)
        } else {
            Ok(self)
        }
    }

    /// The key's public name: 8 bytes derived from it with BLAKE3 `derive_key` under a context
    /// string of its own, so it tells keys apart without revealing anything of the key. Sealed
    /// snapshots carry it, so a snapshot opened with the wrong key says so.
    ///
    /// ```
    /// use api_tokens::HashKey;
    /// let key = HashKey::new([7; 32]);
    /// assert_eq!(key.id(), HashKey::new([7; 32]).id());
    /// assert_ne!(key.id(), HashKey::default().id());
    /// assert_eq!(key.id().to_string().len(), 16);
    /// ```
    pub fn id(&self) -> KeyId {
        let d = blake3::derive_key("api-tokens 2026 hash key id", &self.0);
        let mut id = [0u8; 8];
        for (o, i) in id.iter_mut().zip(d) {
            *o = i;
        }
        KeyId(id)
    }

    /// A key for another purpose, derived from this one (BLAKE3 `derive_key` under `context`).
    pub(crate) fn derive(&self, context: &str) -> [u8; 32] {
        blake3::derive_key(context, &self.0)
    }
}

/// The public name of a [`HashKey`] ([`HashKey::id`]): 16 hex digits, safe to store and show.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 8]);

impl KeyId {
    stored_bytes!(8);
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl std::str::FromStr for KeyId {
    type Err = crate::ValidationError;
    /// 16 hex digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || {
            crate::ValidationError::new(
                crate::Field::Query,
                s,
                crate::Problem::Syntax {
                    expected: "a key id of 16 hex digits",
                },
            )
        };
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err());
        }
        let mut id = [0u8; 8];
        for (i, o) in id.iter_mut().enumerate() {
            let pair = s.get(2 * i..2 * i + 2).ok_or_else(err)?;
            *o = u8::from_str_radix(pair, 16).map_err(|_| err())?;
        }
        Ok(Self(id))
    }
}

impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

impl Default for HashKey {
    fn default() -> Self {
        Self(blake3::derive_key(
            "api-tokens 2026 default secret hash key",
            b"",
        ))
    }
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKey(<redacted>)")
    }
}

/// The keyed BLAKE3 hash of a secret: what stores keep and look tokens up by.
///
/// Equality is constant time. `Debug` shows only the first 8 hex digits (a fingerprint for
/// logs); serde writes the full hash as 64 lowercase hex digits.
#[derive(Clone, Copy, Eq)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// Hashes a parsed presented secret under `key`.
    pub fn of(key: &HashKey, secret: &PresentedSecret<'_>) -> Self {
        Self::of_str(key, secret.0)
    }

    /// Hashes the plaintext of a freshly generated secret under `key`.
    pub fn of_secret(key: &HashKey, secret: &TokenSecret) -> Self {
        Self::of_str(key, secret.expose())
    }

    fn of_str(key: &HashKey, s: &str) -> Self {
        Self(*blake3::keyed_hash(&key.0, s.as_bytes()).as_bytes())
    }

    /// Hashes a presented text that passed a format check (the host's, or a legacy scheme's
    /// shape) under `key`.
    pub(crate) fn of_text(key: &HashKey, s: &str) -> Self {
        Self::of_str(key, s)
    }

    stored_bytes!(32);

    /// The full hash as 64 lowercase hex digits (for stores that keep text).
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    /// Parses 64 hex digits written by [`SecretHash::to_hex`].
    ///
    /// # Errors
    /// When `s` is not exactly 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, MalformedSecret> {
        blake3::Hash::from_hex(s)
            .map(|h| Self(*h.as_bytes()))
            .map_err(|_| MalformedSecret::InvalidHash)
    }
}

impl PartialEq for SecretHash {
    fn eq(&self, other: &Self) -> bool {
        // blake3::Hash compares in constant time.
        blake3::Hash::from_bytes(self.0) == blake3::Hash::from_bytes(other.0)
    }
}

impl std::hash::Hash for SecretHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Equal hashes have equal bytes, so this agrees with the constant-time `eq`.
        self.0.hash(state);
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.to_hex();
        write!(f, "SecretHash({}…)", hex.get(..8).unwrap_or_default())
    }
}

impl Serialize for SecretHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for SecretHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// A presented string that has passed the format check of a [`SecretFormat`]: the right shape
/// and (for the default format) a valid checksum. It borrows the presented string; hash it with
/// [`SecretHash::of`].
#[derive(Clone, Copy)]
pub struct PresentedSecret<'a>(&'a str);

impl fmt::Debug for PresentedSecret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PresentedSecret(<redacted>)")
    }
}

/// The shape of the secrets a host issues and accepts.
///
/// * [`SecretFormat::prefixed`] (the default, with prefix `tok`): `PREFIX "_" BODY CHECKSUM`, where
///   `PREFIX` is 1–16 characters of `[a-z0-9]` starting with a letter, `BODY` is 43 characters of
///   base62 (`[0-9A-Za-z]`) drawn uniformly from a CSPRNG (256 bits), and `CHECKSUM` is 6 base62
///   characters encoding a 32-bit checksum of `PREFIX "_" BODY`. With the prefix `tok` a secret is
///   53 characters long. The prefix lets secret scanners find leaked tokens; the checksum lets
///   typos and garbage be refused without touching the store.
/// * [`SecretFormat::Zabbix`]: 32 random bytes as 64 lowercase hex digits, as Zabbix generates.
/// * [`SecretFormat::Cpanel`]: 32 characters of `[0-9A-Z]` (165 bits), as cPanel & WHM generate.
///
/// ```
/// use api_tokens::SecretFormat;
/// let format = SecretFormat::prefixed("acme")?;
/// let secret = format.generate();
/// assert_eq!(secret.expose().len(), format.secret_len());
/// assert!(format.parse(secret.expose()).is_ok());
/// assert!(format.parse("acme_not-a-token").is_err());
/// # Ok::<(), api_tokens::ValidationError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum SecretFormat {
    /// Our default: prefix, underscore, 256 random bits in base62, checksum.
    Prefixed(SecretPrefix),
    /// Zabbix: 64 lowercase hex digits.
    Zabbix,
    /// cPanel & WHM: 32 characters of `[0-9A-Z]`.
    Cpanel,
}

/// The validated prefix of [`SecretFormat::Prefixed`].
#[derive(Clone, PartialEq, Eq)]
pub struct SecretPrefix(Box<str>, PrefixWords);

/// `PREFIX "_"` laid over the first three little-endian 8-byte words of a secret, for the
/// word-at-a-time check: `head` holds its bytes and `care` is `0xff` in each byte it covers
/// (a prefix is at most 16 bytes, so with its underscore it ends within the third word).
#[derive(Clone, PartialEq, Eq)]
struct PrefixWords {
    head: [u64; 3],
    care: [u64; 3],
}

const _: () = assert!(MAX_PREFIX_LEN < 3 * 8);

impl fmt::Debug for SecretPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SecretPrefix").field(&self.0).finish()
    }
}

impl SecretPrefix {
    /// Wraps a prefix that passed [`SecretFormat::prefixed`]'s rules.
    fn new(prefix: &str) -> Self {
        let mut words = PrefixWords {
            head: [0; 3],
            care: [0; 3],
        };
        for (i, &b) in prefix.as_bytes().iter().chain(b"_").enumerate() {
            let shift = 8 * (i % 8);
            if let (Some(head), Some(care)) = (words.head.get_mut(i / 8), words.care.get_mut(i / 8))
            {
                *head |= u64::from(b) << shift;
                *care |= 0xff << shift;
            }
        }
        Self(prefix.into(), words)
    }

    /// The prefix text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for SecretFormat {
    fn default() -> Self {
        Self::Prefixed(SecretPrefix::new("tok"))
    }
}

impl SecretFormat {
    /// The default format with a prefix of the host's choosing.
    ///
    /// # Errors
    /// When the prefix is empty, longer than 16 characters, does not start with a lowercase
    /// letter, or holds anything but `[a-z0-9]`.
    pub fn prefixed(prefix: &str) -> Result<Self, crate::ValidationError> {
        use crate::error::{Field, Problem};
        let err = |problem| crate::ValidationError::new(Field::SecretPrefix, prefix, problem);
        if prefix.is_empty() {
            return Err(err(Problem::Empty));
        }
        if prefix.len() > MAX_PREFIX_LEN {
            return Err(err(Problem::TooLong {
                max: MAX_PREFIX_LEN,
            }));
        }
        if let Some(ch) = prefix
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        {
            return Err(err(Problem::InvalidCharacter { ch }));
        }
        if !prefix.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(err(Problem::MustStartWithLetter));
        }
        Ok(Self::Prefixed(SecretPrefix::new(prefix)))
    }

    /// The exact length in bytes of every secret of this format.
    pub fn secret_len(&self) -> usize {
        match self {
            Self::Prefixed(p) => p.0.len() + 1 + BODY_LEN + CHECKSUM_LEN,
            Self::Zabbix => 64,
            Self::Cpanel => 32,
        }
    }

    /// Generates a new secret with the thread-local CSPRNG.
    pub fn generate(&self) -> TokenSecret {
        self.generate_with_rng(&mut rand::rng())
    }

    /// Generates a new secret with the given CSPRNG (deterministic in tests with a seeded one).
    pub fn generate_with_rng<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> TokenSecret {
        let mut out = String::with_capacity(self.secret_len());
        match self {
            Self::Prefixed(prefix) => {
                out.push_str(&prefix.0);
                out.push('_');
                push_uniform(rng, &mut out, BASE62, BODY_LEN);
                let sum = checksum(out.as_bytes());
                push_checksum(&mut out, sum);
            }
            Self::Zabbix => {
                let mut bytes = [0u8; 32];
                rng.fill_bytes(&mut bytes);
                for b in bytes {
                    out.push(hex_digit(b >> 4));
                    out.push(hex_digit(b & 0xf));
                }
                bytes.zeroize();
            }
            Self::Cpanel => {
                push_uniform(rng, &mut out, CPANEL_ALPHABET, 32);
            }
        }
        TokenSecret(out)
    }

    /// Checks the shape of a presented string without hashing it or touching any store.
    ///
    /// # Errors
    /// [`MalformedSecret`] says what is wrong: empty, too long (over [`MAX_PRESENTED_LEN`] bytes,
    /// refused before anything else), wrong length, wrong prefix, a character outside the format's
    /// alphabet, or a bad checksum. The error never contains the presented text.
    #[inline]
    pub fn parse<'a>(&self, presented: &'a str) -> Result<PresentedSecret<'a>, MalformedSecret> {
        // The checks return only the verdict; the borrowed string never makes a round trip
        // through memory (a 16-byte result written in halves and read whole stalls the
        // store-to-load forwarding on every request).
        self.check(presented.as_bytes())?;
        Ok(PresentedSecret(presented))
    }

    #[inline]
    fn check(&self, bytes: &[u8]) -> Result<(), MalformedSecret> {
        match self {
            Self::Prefixed(prefix) => {
                let p = prefix.0.as_bytes();
                // One branch on the success path; which rule failed is worked out apart, cold.
                if prefixed_is_valid(p, &prefix.1, bytes) {
                    Ok(())
                } else {
                    Err(prefixed_error(p, bytes))
                }
            }
            Self::Zabbix | Self::Cpanel => {
                if bytes.is_empty() {
                    return Err(MalformedSecret::Empty);
                }
                if bytes.len() > MAX_PRESENTED_LEN {
                    return Err(MalformedSecret::TooLong {
                        max: MAX_PRESENTED_LEN,
                    });
                }
                let expected = self.secret_len();
                match self {
                    Self::Zabbix => check_fixed(bytes, expected, is_lower_hex),
                    _ => check_fixed(bytes, expected, is_upper_base36),
                }
            }
        }
    }
}

/// Whether `bytes` is a secret of the prefixed format with prefix `p` (laid out in `words`):
/// exactly the verdict of [`prefixed_error`]'s rules, computed without finding out which rule
/// fails and with a single branch on the outcome.
///
/// The checksum is a serial chain of multiplications; everything else (the prefix, the base62
/// alphabet, the six checksum digits) is work for the otherwise idle ALUs beside it, done on the
/// same 8-byte words the checksum reads, and folded into one verdict.
#[inline]
fn prefixed_is_valid(p: &[u8], words: &PrefixWords, bytes: &[u8]) -> bool {
    let len = p.len() + 1 + BODY_LEN + CHECKSUM_LEN;
    if bytes.len() != len || p.len() > MAX_PREFIX_LEN {
        return false;
    }
    let signed_len = len - CHECKSUM_LEN;
    let (chunks, _) = bytes.get(..signed_len).unwrap_or_default().as_chunks::<8>();
    let mut h: u64 = CHECKSUM_SEED ^ (signed_len as u64);
    // `diff`: bits where the prefix and underscore differ. `alnum`: the top bit of each byte
    // seen so far that is base62 (or belongs to the prefix, which `diff` checks instead; the
    // original rules never test the prefix against the alphabet). `high`: the top bits of all
    // bytes, so that non-ASCII is refused and `base62_bits`' carries out of such bytes do not
    // matter.
    let mut diff = 0u64;
    let mut alnum = !0u64;
    let mut high = 0u64;
    let mut words_done = 0;
    // The first three words carry the prefix (`len >= 51`, so they are always whole words of
    // the signed part).
    for ((chunk, head), care) in chunks.iter().zip(words.head).zip(words.care) {
        let w = u64::from_le_bytes(*chunk);
        h = (h ^ w).wrapping_mul(CHECKSUM_K);
        h ^= h >> 29;
        diff |= (w ^ head) & care;
        alnum &= base62_bits(w) | care;
        high |= w;
        words_done += 1;
    }
    for chunk in chunks.get(words_done..).unwrap_or_default() {
        let w = u64::from_le_bytes(*chunk);
        h = (h ^ w).wrapping_mul(CHECKSUM_K);
        h ^= h >> 29;
        alnum &= base62_bits(w);
        high |= w;
    }
    // The signed part's last 8 bytes: their top `signed_len % 8` are the checksum's last,
    // zero-padded word (none when the signed part is whole words). They lie past the prefix.
    let last = word_at(bytes, signed_len - 8);
    alnum &= base62_bits(last);
    high |= last;
    let tail = last
        .checked_shr(8 * (8 - (signed_len % 8)) as u32)
        .unwrap_or(0);
    h = (h ^ tail).wrapping_mul(CHECKSUM_K);
    h ^= h >> 32;
    h = h.wrapping_mul(CHECKSUM_K);
    let sum = h >> 32;

    // The last 8 bytes end with the six checksum digits.
    let digits = word_at(bytes, len - 8);
    alnum &= base62_bits(digits);
    high |= digits;
    let value = decode_top_six(digits);

    let refused = diff | ((!alnum | high) & HIGHS) | (value ^ sum);
    refused == 0
}

/// Why `bytes` is not a secret of the prefixed format with prefix `p`: the rules in order, the
/// first that fails. Only called when [`prefixed_is_valid`] said no.
#[cold]
#[inline(never)]
fn prefixed_error(p: &[u8], bytes: &[u8]) -> MalformedSecret {
    if bytes.is_empty() {
        return MalformedSecret::Empty;
    }
    if bytes.len() > MAX_PRESENTED_LEN {
        return MalformedSecret::TooLong {
            max: MAX_PRESENTED_LEN,
        };
    }
    let Some(rest) = bytes
        .strip_prefix(p)
        .and_then(|rest| rest.strip_prefix(b"_"))
    else {
        return MalformedSecret::WrongPrefix;
    };
    let expected = p.len() + 1 + BODY_LEN + CHECKSUM_LEN;
    if bytes.len() != expected {
        return MalformedSecret::WrongLength {
            expected,
            found: bytes.len(),
        };
    }
    // The vectorized test first: a refused secret is most often garbage or a typo (bad checksum),
    // and looking for the position byte by byte is slow.
    if !all(rest, is_base62) {
        let pos = rest.iter().position(|&b| !is_base62(b)).unwrap_or(0);
        return MalformedSecret::InvalidCharacter {
            position: p.len() + 1 + pos,
        };
    }
    // Shape and alphabet hold, so the checksum is what failed. (Were the fast check ever wrong
    // about a good secret, this still refuses: a format check fails closed.)
    MalformedSecret::BadChecksum
}

/// The 8 bytes at `at` as a little-endian word; 0 (eight bytes outside base62, so refused) if
/// they are not all there, which the callers' length checks rule out.
#[inline(always)]
fn word_at(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..)
        .and_then(<[u8]>::first_chunk::<8>)
        .map_or(0, |w| u64::from_le_bytes(*w))
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Eight bytes at a time: the top bit of each byte of `w` that is base62 (`[0-9A-Za-z]`), for
/// bytes below 0x80 that no byte of `w` at or above 0x80 precedes (the caller refuses words with
/// such bytes anyway; their carries may spoil the bytes above them). The other bits are noise.
///
/// On a byte `x < 0x80`, `x + (0x80 - lo)` has its top bit set iff `x >= lo`, and neither sum
/// carries into the next byte; the xor of the tests against `lo` and `hi + 1` is set iff
/// `lo <= x <= hi`. Letters are tested as in [`is_base62`], folded to lower case by `| 0x20`.
#[inline(always)]
fn base62_bits(w: u64) -> u64 {
    const fn at_least(lo: u8) -> u64 {
        (0x80 - lo as u64) * ONES
    }
    let l = w | (0x20 * ONES);
    let letter = l.wrapping_add(at_least(b'a')) ^ l.wrapping_add(at_least(b'z' + 1));
    let digit = w.wrapping_add(at_least(b'0')) ^ w.wrapping_add(at_least(b'9' + 1));
    letter | digit
}

/// The value of the six base62 digits in the top six bytes of `w` (most significant first, as
/// written), in a few word operations instead of a chain of six. Exact when the eight bytes are
/// base62; otherwise some number below 2^64 (never a panic), which the caller ignores.
#[inline(always)]
fn decode_top_six(w: u64) -> u64 {
    const fn at_least(lo: u8) -> u64 {
        (0x80 - lo as u64) * ONES
    }
    // Each byte's digit: minus '0', minus 7 more from 'A' on, minus 6 more from 'a' on. No byte
    // borrows from its neighbour when all are base62.
    let upper = (w.wrapping_add(at_least(b'A')) >> 7) & ONES;
    let lower = (w.wrapping_add(at_least(b'a')) >> 7) & ONES;
    let d = w
        .wrapping_sub(u64::from(b'0') * ONES)
        .wrapping_sub(upper * 7)
        .wrapping_sub(lower * 6)
        & !0xffff;
    // Pairs of digits into 16-bit lanes (at most 255 * 62 + 255 even for garbage, so no lane
    // overflows), then pairs of lanes into 32-bit lanes (at most 16065 * 3844 + 16065 < 2^32).
    let pairs = (d & 0x00ff_00ff_00ff_00ff)
        .wrapping_mul(62)
        .wrapping_add((d >> 8) & 0x00ff_00ff_00ff_00ff);
    let quads = (pairs & 0x0000_ffff_0000_ffff)
        .wrapping_mul(3_844)
        .wrapping_add((pairs >> 16) & 0x0000_ffff_0000_ffff);
    (quads & 0xffff_ffff)
        .wrapping_mul(14_776_336)
        .wrapping_add(quads >> 32)
}

/// The lowercase hex digit of a nibble (`n < 16`).
fn hex_digit(n: u8) -> char {
    char::from(if n < 10 { b'0' + n } else { b'a' + (n - 10) })
}
const CPANEL_ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn check_fixed(
    bytes: &[u8],
    expected: usize,
    allowed: fn(u8) -> bool,
) -> Result<(), MalformedSecret> {
    if bytes.len() != expected {
        return Err(MalformedSecret::WrongLength {
            expected,
            found: bytes.len(),
        });
    }
    if all(bytes, allowed) {
        return Ok(());
    }
    let position = bytes.iter().position(|&b| !allowed(b)).unwrap_or(0);
    Err(MalformedSecret::InvalidCharacter { position })
}

/// Whether every byte passes, without an early exit: branch-free, so the compiler vectorizes it
/// (this runs on every request; the early-exit form was most of the parse time).
#[inline]
fn all(bytes: &[u8], allowed: fn(u8) -> bool) -> bool {
    bytes.iter().fold(true, |ok, &b| ok & allowed(b))
}

#[inline]
fn is_base62(b: u8) -> bool {
    ((b | 0x20).wrapping_sub(b'a') < 26) | (b.wrapping_sub(b'0') < 10)
}

#[inline]
fn is_lower_hex(b: u8) -> bool {
    (b.wrapping_sub(b'a') < 6) | (b.wrapping_sub(b'0') < 10)
}

#[inline]
fn is_upper_base36(b: u8) -> bool {
    (b.wrapping_sub(b'A') < 26) | (b.wrapping_sub(b'0') < 10)
}

/// Appends `n` characters drawn uniformly from `alphabet` (rejection sampling, no modulo bias).
fn push_uniform<R: CryptoRng + ?Sized>(rng: &mut R, out: &mut String, alphabet: &[u8], n: usize) {
    let len = alphabet.len();
    // The largest multiple of `len` that fits in a byte: bytes at or above it are rejected.
    let limit = 256 - (256 % len);
    let mut buf = [0u8; 64];
    let mut pushed = 0;
    while pushed < n {
        rng.fill_bytes(&mut buf);
        for &b in &buf {
            if usize::from(b) < limit
                && pushed < n
                && let Some(&c) = alphabet.get(usize::from(b) % len)
            {
                out.push(char::from(c));
                pushed += 1;
            }
        }
    }
    buf.zeroize();
}

const CHECKSUM_K: u64 = 0x9E37_79B9_7F4A_7C15;
const CHECKSUM_SEED: u64 = 0x243F_6A88_85A3_08D3;

/// A fast 32-bit checksum (multiply-xorshift over 8-byte words). It only has to catch typos and
/// garbage; the secret's strength is its 256 random bits, never this.
fn checksum(data: &[u8]) -> u32 {
    const K: u64 = CHECKSUM_K;
    let mut h: u64 = CHECKSUM_SEED ^ (data.len() as u64);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K);
        h ^= h >> 29;
    }
    // The last 0–7 bytes, zero-padded, as a little-endian word (shifts rather than a copy
    // into a buffer: no call on the hot path).
    let rem = chunks.remainder().len();
    let tail = match data.len().checked_sub(8).and_then(|at| data.get(at..)) {
        // The last 8 bytes as one word, shifted down to the remainder's bytes.
        Some(last) if rem > 0 => {
            let mut w = [0u8; 8];
            w.copy_from_slice(last);
            u64::from_le_bytes(w) >> (8 * (8 - rem))
        }
        _ => chunks
            .remainder()
            .iter()
            .rev()
            .fold(0u64, |w, &b| (w << 8) | u64::from(b)),
    };
    h = (h ^ tail).wrapping_mul(K);
    h ^= h >> 32;
    h = h.wrapping_mul(K);
    (h >> 32) as u32
}

fn push_checksum(out: &mut String, sum: u32) {
    let mut digits = [b'0'; CHECKSUM_LEN];
    let mut v = sum;
    for d in digits.iter_mut().rev() {
        *d = BASE62.get((v % 62) as usize).copied().unwrap_or(b'0');
        v /= 62;
    }
    for d in digits {
        out.push(char::from(d));
    }
}

/// The plain decoder of six checksum digits (the tests' reference for `decode_top_six`).
#[cfg(test)]
fn decode_checksum(s: &[u8]) -> Option<u32> {
    let digits: &[u8; CHECKSUM_LEN] = s.try_into().ok()?;
    let mut v: u64 = 0;
    for &b in digits {
        let d = BASE62.iter().position(|&c| c == b)?;
        v = v * 62 + d as u64;
    }
    u32::try_from(v).ok()
}

#[cfg(test)]
mod key_id_tests {
    use super::*;

    #[test]
    fn key_ids_round_trip_and_differ_from_the_key() {
        let key = HashKey::new([9; 32]);
        let id = key.id();
        assert_eq!(id.to_string().parse::<KeyId>().unwrap(), id);
        assert_eq!(format!("{id:?}"), format!("KeyId({id})"));
        assert_ne!(&id.as_bytes()[..], &key.expose()[..8], "not the key itself");
        assert_ne!(HashKey::random().id(), id);
        for bad in [
            "",
            "0123",
            "+123456789abcdef",
            "0123456789abcdeg",
            "0123456789abcdef0",
        ] {
            assert!(bad.parse::<KeyId>().is_err(), "{bad:?}");
        }
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<KeyId>(&json).unwrap(), id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::hint::black_box;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    #[test]
    fn default_format_has_documented_grammar() {
        let f = SecretFormat::default();
        let s = f.generate_with_rng(&mut rng());
        let s = s.expose();
        assert_eq!(s.len(), 53);
        assert!(s.starts_with("tok_"));
        assert!(s[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(f.parse(s).is_ok());
    }

    #[test]
    fn generation_is_random_and_seedable() {
        let f = SecretFormat::default();
        let a = f.generate_with_rng(&mut rng());
        let b = f.generate_with_rng(&mut rng());
        assert_eq!(a.expose(), b.expose(), "same seed, same secret");
        assert_ne!(f.generate().expose(), f.generate().expose());
    }

    #[test]
    fn body_uses_whole_alphabet_without_bias_to_low_digits() {
        let f = SecretFormat::default();
        let mut counts = [0usize; 62];
        let mut r = rng();
        for _ in 0..400 {
            let s = f.generate_with_rng(&mut r);
            for b in s.expose()[4..4 + BODY_LEN].bytes() {
                let i = BASE62.iter().position(|&c| c == b).unwrap();
                counts[i] += 1;
            }
        }
        // 17,200 draws over 62 symbols: ~277 each. Modulo bias (256 % 62 = 8) would give the
        // first 8 symbols ~25% more; rejection sampling keeps every symbol near the mean.
        let mean = 400.0 * BODY_LEN as f64 / 62.0;
        for (i, &c) in counts.iter().enumerate() {
            assert!((c as f64 - mean).abs() < mean * 0.2, "symbol {i}: {c}");
        }
    }

    #[test]
    fn seed_formats_have_seed_shapes() {
        let z = SecretFormat::Zabbix.generate_with_rng(&mut rng());
        assert_eq!(z.expose().len(), 64);
        assert!(
            z.expose()
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert!(SecretFormat::Zabbix.parse(z.expose()).is_ok());
        let c = SecretFormat::Cpanel.generate_with_rng(&mut rng());
        assert_eq!(c.expose().len(), 32);
        assert!(
            c.expose()
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        );
        assert!(SecretFormat::Cpanel.parse(c.expose()).is_ok());
        // The seed's own example token is accepted by the cPanel format.
        assert!(
            SecretFormat::Cpanel
                .parse("UWU28DCA23NKY76CN17MDPKM3O7EFQY8")
                .is_ok()
        );
    }

    #[test]
    fn parse_refuses_each_malformation_with_its_reason() {
        let f = SecretFormat::default();
        let good = f.generate_with_rng(&mut rng());
        let good = good.expose();
        assert_eq!(f.parse("").map(|_| ()), Err(MalformedSecret::Empty));
        let long = "a".repeat(MAX_PRESENTED_LEN + 1);
        assert!(matches!(
            f.parse(&long),
            Err(MalformedSecret::TooLong { .. })
        ));
        let wrong_prefix = good.replacen("tok_", "tik_", 1);
        assert!(matches!(
            f.parse(&wrong_prefix),
            Err(MalformedSecret::WrongPrefix)
        ));
        assert!(matches!(
            f.parse(&good[..good.len() - 1]),
            Err(MalformedSecret::WrongLength { .. })
        ));
        let mut bad_char = good.to_string();
        bad_char.replace_range(10..11, "-");
        assert!(matches!(
            f.parse(&bad_char),
            Err(MalformedSecret::InvalidCharacter { position: 10 })
        ));
        // A single changed character (a typo) is caught by the checksum.
        let mut typo = good.as_bytes().to_vec();
        typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).unwrap();
        assert_eq!(
            f.parse(&typo).map(|_| ()),
            Err(MalformedSecret::BadChecksum)
        );
        // Two adjacent characters swapped are caught too.
        let mut swapped = good.as_bytes().to_vec();
        let i = (4..swapped.len() - 1)
            .find(|&i| swapped[i] != swapped[i + 1])
            .unwrap();
        swapped.swap(i, i + 1);
        let swapped = String::from_utf8(swapped).unwrap();
        assert!(f.parse(&swapped).is_err());
    }

    #[test]
    fn seed_formats_refuse_wrong_alphabet_and_length() {
        let lower = "uwu28dca23nky76cn17mdpkm3o7efqy8";
        assert!(matches!(
            SecretFormat::Cpanel.parse(lower),
            Err(MalformedSecret::InvalidCharacter { position: 0 })
        ));
        assert!(matches!(
            SecretFormat::Zabbix.parse(&"A".repeat(64)),
            Err(MalformedSecret::InvalidCharacter { position: 0 })
        ));
        assert!(matches!(
            SecretFormat::Zabbix.parse(&"a".repeat(63)),
            Err(MalformedSecret::WrongLength {
                expected: 64,
                found: 63
            })
        ));
    }

    #[test]
    fn prefix_rules() {
        assert!(SecretFormat::prefixed("acme2").is_ok());
        for bad in ["", "Acme", "2acme", "ac_me", "abcdefghijklmnopq"] {
            assert!(SecretFormat::prefixed(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hash_is_keyed_and_constant_time_comparable() {
        let f = SecretFormat::default();
        let s = f.generate_with_rng(&mut rng());
        let p = f.parse(s.expose()).unwrap();
        let k1 = HashKey::default();
        let k2 = HashKey::new([9; 32]);
        assert_eq!(SecretHash::of(&k1, &p), SecretHash::of_secret(&k1, &s));
        assert_ne!(SecretHash::of(&k1, &p), SecretHash::of(&k2, &p));
        let h = SecretHash::of(&k1, &p);
        assert_eq!(SecretHash::from_hex(&h.to_hex()).unwrap(), h);
        let dbg = format!("{h:?}");
        assert!(dbg.len() < 30 && !dbg.contains(&h.to_hex()));
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{}\"", h.to_hex()));
        assert_eq!(serde_json::from_str::<SecretHash>(&json).unwrap(), h);
        assert!(serde_json::from_str::<SecretHash>("\"zz\"").is_err());
    }

    #[test]
    fn secret_is_redacted_and_wiped() {
        fn assert_zeroize_on_drop<T: ZeroizeOnDrop>() {}
        assert_zeroize_on_drop::<TokenSecret>();
        assert_zeroize_on_drop::<HashKey>();
        let mut s = SecretFormat::default().generate();
        assert_eq!(format!("{s:?}"), "TokenSecret(<redacted>)");
        s.zeroize();
        assert_eq!(s.expose(), "", "zeroize empties the plaintext");
        assert_eq!(format!("{:?}", HashKey::default()), "HashKey(<redacted>)");
    }

    #[test]
    fn branchless_alphabets_match_the_plain_definitions() {
        for b in 0..=255u8 {
            assert_eq!(is_base62(b), b.is_ascii_alphanumeric(), "{b}");
            assert_eq!(
                is_lower_hex(b),
                b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
            );
            assert_eq!(
                is_upper_base36(b),
                b.is_ascii_digit() || b.is_ascii_uppercase()
            );
        }
    }

    #[test]
    fn hash_keys_load_from_hex_base64_and_text() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(1));
        let key = HashKey::new(bytes);
        let hex = key.to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(HashKey::from_hex(&hex).unwrap().expose(), &bytes);
        assert_eq!(
            HashKey::from_hex(&hex.to_uppercase()).unwrap().expose(),
            &bytes
        );
        assert_eq!(
            HashKey::from_hex(&format!(" {}\n", *hex)).unwrap().expose(),
            &bytes
        );
        // The same bytes in base64, standard and URL-safe, with and without padding (the
        // vector is Python's `base64.b64encode` of the bytes).
        let b64 = encode_b64(&bytes);
        assert_eq!(b64, "ASZLcJW63wQpTnOYveIHLFF2m8DlCi9UeZ7D6A0yV3w");
        for text in [
            b64.clone(),
            format!("{b64}="),
            b64.replace('+', "-").replace('/', "_"),
        ] {
            assert_eq!(
                HashKey::from_base64(&text).unwrap().expose(),
                &bytes,
                "{text}"
            );
            assert_eq!(
                HashKey::from_text(&text).unwrap().expose(),
                &bytes,
                "{text}"
            );
        }
        assert_eq!(HashKey::from_text(&hex).unwrap().expose(), &bytes);
    }

    /// A plain reference encoder for the test (standard alphabet, no padding).
    fn encode_b64(bytes: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut bits = String::new();
        for b in bytes {
            bits.push_str(&format!("{b:08b}"));
        }
        while !bits.len().is_multiple_of(6) {
            bits.push('0');
        }
        bits.as_bytes()
            .chunks(6)
            .map(|c| A[usize::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap()] as char)
            .collect()
    }

    #[test]
    fn bad_hash_keys_get_errors_that_never_show_the_key() {
        let hex = HashKey::new([0xab; 32]).to_hex();
        let cases: Vec<(String, HashKeyError)> = vec![
            ("abc".into(), HashKeyError::WrongLength { found: 3 }),
            (
                format!("{}z", &hex[..63]),
                HashKeyError::InvalidHex { position: 63 },
            ),
            ("0".repeat(64), HashKeyError::AllZero),
            ("A".repeat(43), HashKeyError::AllZero),
            (
                format!("{}*", "q".repeat(42)),
                HashKeyError::InvalidBase64 { position: 42 },
            ),
            // 43 characters whose last one carries bits past the 32nd byte.
            ("q".repeat(43), HashKeyError::InvalidBase64 { position: 42 }),
            ("q".repeat(45), HashKeyError::WrongLength { found: 45 }),
            (
                format!("{}==", "q".repeat(42)),
                HashKeyError::InvalidBase64 { position: 42 },
            ),
        ];
        for (text, expected) in cases {
            let err = HashKey::from_text(&text).unwrap_err();
            assert_eq!(err, expected, "{text}");
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains(&text), "{shown}");
        }
        let err = HashKey::from_env("API_TOKENS_TEST_NO_SUCH_VARIABLE_7f3a").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the environment variable API_TOKENS_TEST_NO_SUCH_VARIABLE_7f3a is not set"
        );
        assert!(matches!(
            HashKey::from_env("PATH"),
            Err(HashKeyError::WrongLength { .. } | HashKeyError::InvalidBase64 { .. })
        ));
    }

    #[test]
    fn word_at_a_time_alphabet_test_matches_the_byte_test() {
        // Every ASCII byte in every lane, beside neighbours of every kind below 0x80 (bytes at
        // or above 0x80 are refused through their top bit, whatever `base62_bits` says).
        for filler in [
            0x00u8, b'0', b'9', b'A', b'Z', b'a', b'z', b'_', 0x7f, 0x2f, 0x60,
        ] {
            for lane in 0..8 {
                for b in 0..0x80u8 {
                    let mut bytes = [filler; 8];
                    bytes[lane] = b;
                    let bits = base62_bits(u64::from_le_bytes(bytes));
                    for (i, &x) in bytes.iter().enumerate() {
                        let top = bits >> (8 * i + 7) & 1 == 1;
                        assert_eq!(top, is_base62(x), "byte {x:#x} in lane {i} of {bytes:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn word_at_a_time_digit_decoder_matches_the_plain_one() {
        let mut r = rng();
        for round in 0..20_000 {
            let mut bytes = [0u8; 8];
            for b in &mut bytes {
                *b = BASE62[(r.next_u32() % 62) as usize];
            }
            // Each digit repeated too, the lowest and the highest among them.
            if let Some(&digit) = BASE62.get(round) {
                bytes = [digit; 8];
            }
            let plain = bytes[2..].iter().fold(0u64, |v, &b| {
                v * 62 + BASE62.iter().position(|&c| c == b).unwrap() as u64
            });
            assert_eq!(
                decode_top_six(u64::from_le_bytes(bytes)),
                plain,
                "{bytes:?}"
            );
        }
        assert_eq!(
            decode_top_six(u64::from_le_bytes(*b"00zzzzzz")),
            62u64.pow(6) - 1
        );
        // Any word at all (refused by the alphabet test): no overflow, no panic, in debug too.
        for _ in 0..100_000 {
            let w = r.next_u64();
            black_box((decode_top_six(w), base62_bits(w)));
        }
        black_box((
            decode_top_six(u64::MAX),
            base62_bits(u64::MAX),
            decode_top_six(0),
        ));
    }

    #[test]
    fn secrets_issued_before_the_word_at_a_time_check_still_verify() {
        // Written by the byte-at-a-time check's generator (and an independent implementation of
        // the checksum): the checksum's value must never change.
        let tok = SecretFormat::default();
        assert!(
            tok.parse("tok_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg0g8O74")
                .is_ok()
        );
        let acme = SecretFormat::prefixed("acme2").unwrap();
        assert!(
            acme.parse("acme2_zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJ1vvGHS")
                .is_ok()
        );
        // Every prefix length lays the prefix, the checksum's last word and the digits over the
        // 8-byte words differently.
        let mut r = rng();
        for n in 1..=MAX_PREFIX_LEN {
            let prefix: String = "abcdefghijklmnop".chars().take(n).collect();
            let f = SecretFormat::prefixed(&prefix).unwrap();
            for _ in 0..50 {
                let s = f.generate_with_rng(&mut r);
                let b = s.expose().as_bytes();
                let (signed, sum) = b.split_at(b.len() - CHECKSUM_LEN);
                assert_eq!(decode_checksum(sum), Some(checksum(signed)));
                assert!(f.parse(s.expose()).is_ok(), "{prefix}");
            }
        }
        assert_eq!(
            format!("{tok:?}"),
            "Prefixed(SecretPrefix(\"tok\"))",
            "Debug shows the prefix only"
        );
    }

    #[test]
    fn checksum_roundtrips_through_base62() {
        for v in [0, 1, 61, 62, u32::MAX, 0x1234_5678] {
            let mut s = String::new();
            push_checksum(&mut s, v);
            assert_eq!(decode_checksum(s.as_bytes()), Some(v));
        }
        assert_eq!(decode_checksum(b"zzzzzz"), None, "over u32 is invalid");
    }
}
