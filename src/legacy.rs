//! Hashes imported from other systems: [`LegacyScheme`] names how the other system hashed its
//! secrets, [`LegacyHash`] is one such hash as it stored it.
//!
//! The crate never keeps the other system's digest as it is. An imported token's stored
//! [`SecretHash`] is the keyed BLAKE3 hash, under a key derived from the host's [`HashKey`] for
//! the scheme, of that digest: lookup stays one hash-map probe by [`SecretHash`] in every store,
//! hashes of every kind share one uniqueness rule, and a stolen database alone no longer lets
//! anyone test guesses against the old digests. At authentication a presented secret that no
//! ordinary hash matches is digested the old way and looked up the same way (the *miss path*:
//! ordinary tokens never pay for it); on the first success the token is re-hashed the ordinary
//! way, so its secret keeps working and the old digest is gone from the store.
//!
//! What an imported token came from is remembered for its whole life, apart from its secret:
//! an [`ImportOrigin`] (a keyed hash of the digest under a key derived for that purpose alone),
//! so the same digest is never imported twice, even after the first token's hash was replaced.

use std::fmt;

#[cfg(feature = "legacy")]
use sha2::{Digest, Sha256, Sha512};

use crate::error::{Field, Problem, ValidationError};
use crate::secret::{HashKey, MAX_PRESENTED_LEN, SecretHash};

/// The shortest secret [`LegacyScheme::Sha256`] accepts: shorter ones are too weak to keep
/// honouring.
pub const MIN_LEGACY_SECRET_LEN: usize = 16;

/// How another system hashed its secrets. Each scheme says what its secrets look like (the
/// format check accepts that shape too once the scheme is enabled) and how their digest is
/// written.
///
/// | scheme | secrets | stored digest |
/// | --- | --- | --- |
/// | [`ZabbixSha512`](LegacyScheme::ZabbixSha512) | 64 lowercase hex digits | SHA-512 of the secret's text, 128 hex digits (Zabbix's `token.token`) |
/// | [`Sha256`](LegacyScheme::Sha256) | 16–128 visible ASCII characters | SHA-256 of the secret's bytes, as 64 hex digits or base64 (standard or URL-safe, padding optional) |
///
/// ```
/// use api_tokens::legacy::LegacyScheme;
/// assert_eq!("zabbix-sha512".parse::<LegacyScheme>()?, LegacyScheme::ZabbixSha512);
/// assert!(LegacyScheme::ZabbixSha512.accepts_shape(&"ab".repeat(32)));
/// assert!(!LegacyScheme::ZabbixSha512.accepts_shape(&"AB".repeat(32)));
/// assert!(LegacyScheme::Sha256.accepts_shape("s3cr3t-0f-my-0ld-app"));
/// assert!(!LegacyScheme::Sha256.accepts_shape("short"));
/// # Ok::<(), api_tokens::ValidationError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum LegacyScheme {
    /// Zabbix API tokens: `hash('sha512', $token)` of a 64-hex-digit secret.
    ZabbixSha512,
    /// A plain SHA-256 of the secret, as many web frameworks keep API keys.
    Sha256,
}

impl LegacyScheme {
    /// Every scheme, in a fixed order.
    pub const ALL: [Self; 2] = [Self::ZabbixSha512, Self::Sha256];

    /// Its name (`"zabbix-sha512"`, `"sha256"`), as stores write it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ZabbixSha512 => "zabbix-sha512",
            Self::Sha256 => "sha256",
        }
    }

    /// Reads a name written by [`LegacyScheme::as_str`].
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// Whether `presented` has the shape of this scheme's secrets. Checked without an early
    /// exit over the characters, like the ordinary format check.
    pub fn accepts_shape(self, presented: &str) -> bool {
        let b = presented.as_bytes();
        match self {
            Self::ZabbixSha512 => {
                b.len() == 64
                    && b.iter().fold(true, |ok, &c| {
                        ok & ((c.wrapping_sub(b'a') < 6) | (c.wrapping_sub(b'0') < 10))
                    })
            }
            Self::Sha256 => {
                (MIN_LEGACY_SECRET_LEN..=MAX_PRESENTED_LEN).contains(&b.len())
                    && b.iter()
                        .fold(true, |ok, &c| ok & (c.wrapping_sub(0x21) < 0x5e))
            }
        }
    }

    /// The digest this scheme keeps of `secret`.
    #[cfg(feature = "legacy")]
    pub(crate) fn digest(self, secret: &str) -> LegacyDigest {
        match self {
            Self::ZabbixSha512 => LegacyDigest::new(&Sha512::digest(secret.as_bytes())),
            Self::Sha256 => LegacyDigest::new(&Sha256::digest(secret.as_bytes())),
        }
    }

    /// The digest's length in bytes.
    const fn digest_len(self) -> usize {
        match self {
            Self::ZabbixSha512 => 64,
            Self::Sha256 => 32,
        }
    }

    /// The context under which this scheme's lookup key is derived from a [`HashKey`].
    pub(crate) const fn context(self) -> &'static str {
        match self {
            Self::ZabbixSha512 => "api-tokens 2026 legacy hash zabbix-sha512",
            Self::Sha256 => "api-tokens 2026 legacy hash sha256",
        }
    }

    /// The key [`SecretHash`]es of this scheme are made with under `key`.
    pub(crate) fn lookup_key(self, key: &HashKey) -> HashKey {
        HashKey::new(key.derive(self.context()))
    }

    /// The context under which this scheme's [`ImportOrigin`] key is derived from a
    /// [`HashKey`]: another context than the lookup key's, so an origin never equals a hash
    /// any token is looked up by.
    const fn origin_context(self) -> &'static str {
        match self {
            Self::ZabbixSha512 => "api-tokens 2026 import origin zabbix-sha512",
            Self::Sha256 => "api-tokens 2026 import origin sha256",
        }
    }

    /// The key [`ImportOrigin`]s of this scheme are made with under `key`.
    pub(crate) fn origin_key(self, key: &HashKey) -> HashKey {
        HashKey::new(key.derive(self.origin_context()))
    }
}

impl fmt::Display for LegacyScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for LegacyScheme {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for LegacyScheme {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for LegacyScheme {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or_else(|| {
            ValidationError::new(
                Field::LegacyHash,
                s,
                Problem::Syntax {
                    expected: "a legacy hash scheme (\"zabbix-sha512\" or \"sha256\")",
                },
            )
        })
    }
}

/// A digest of one of the [`LegacyScheme`]s: up to 64 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct LegacyDigest {
    bytes: [u8; 64],
    len: usize,
}

impl fmt::Debug for LegacyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LegacyDigest({} bytes)", self.len)
    }
}

impl LegacyDigest {
    fn new(d: &[u8]) -> Self {
        let mut bytes = [0u8; 64];
        let len = d.len().min(64);
        for (o, i) in bytes.iter_mut().zip(d) {
            *o = *i;
        }
        Self { bytes, len }
    }

    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&self.bytes)
    }

    /// The [`SecretHash`] a token imported with this digest is stored and looked up by, under
    /// the scheme's lookup key ([`LegacyScheme::lookup_key`]).
    pub(crate) fn lookup_hash(&self, lookup_key: &HashKey) -> SecretHash {
        SecretHash::from_bytes(*blake3::keyed_hash(lookup_key.expose(), self.as_bytes()).as_bytes())
    }

    /// The [`ImportOrigin`] of a token imported with this digest, under the scheme's origin key
    /// ([`LegacyScheme::origin_key`]).
    pub(crate) fn origin(&self, origin_key: &HashKey) -> ImportOrigin {
        ImportOrigin(*blake3::keyed_hash(origin_key.expose(), self.as_bytes()).as_bytes())
    }
}

/// What an imported token was created from: the keyed BLAKE3 hash of the digest the other
/// system kept of its secret, under a key derived from the [`HashKey`] current at the import
/// for this purpose alone ([`Token::imported_from`](crate::Token::imported_from)).
///
/// It is kept for the token's whole life (re-hashing, a new secret and revocation keep it;
/// deleting the token drops it) and is never used for authentication: its derivation differs
/// from every lookup hash's, and no store looks tokens up by it at authentication.
/// [`Tokens::import`](crate::Tokens::import) compares the origins of new imports with the
/// stored ones ([`TokenStore::find_imported`](crate::TokenStore::find_imported)), under the
/// current key and every old key held, and refuses a digest an existing token came from.
///
/// Stores keep it as 32 bytes. `Debug` shows the first 8 hex digits; serde writes 64 hex
/// digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImportOrigin([u8; 32]);

impl ImportOrigin {
    crate::secret::stored_bytes!(32);

    /// The origin as 64 lowercase hex digits (for stores that keep text).
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    /// Parses 64 hex digits written by [`ImportOrigin::to_hex`].
    ///
    /// # Errors
    /// [`Field::LegacyHash`] with [`Problem::Syntax`] when `s` is not exactly 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, ValidationError> {
        blake3::Hash::from_hex(s)
            .map(|h| Self(*h.as_bytes()))
            .map_err(|_| {
                ValidationError::new(
                    Field::LegacyHash,
                    format_args!("({} characters)", s.chars().count()),
                    Problem::Syntax {
                        expected: "an import origin of 64 hex digits",
                    },
                )
            })
    }
}

impl fmt::Debug for ImportOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.to_hex();
        write!(f, "ImportOrigin({}…)", hex.get(..8).unwrap_or_default())
    }
}

impl serde::Serialize for ImportOrigin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for ImportOrigin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// A hash as another system stored it: its [`LegacyScheme`] and digest, parsed from the text
/// that system kept. Import it with [`Tokens::import`](crate::Tokens::import).
///
/// `Debug` shows the scheme only, never any part of the (unkeyed) digest.
///
/// ```
/// use api_tokens::legacy::{LegacyHash, LegacyScheme};
/// // Zabbix's `token` column: SHA-512 of the secret, 128 hex digits.
/// let zabbix = LegacyHash::parse(LegacyScheme::ZabbixSha512, &"0f".repeat(64))?;
/// assert_eq!(zabbix.scheme(), LegacyScheme::ZabbixSha512);
/// // SHA-256 as 64 hex digits or base64.
/// let hex = LegacyHash::parse(LegacyScheme::Sha256, &"ab".repeat(32))?;
/// let b64 = LegacyHash::parse(LegacyScheme::Sha256, "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=")?;
/// assert_eq!(hex, b64);
/// assert!(LegacyHash::parse(LegacyScheme::Sha256, "not a digest").is_err());
/// # Ok::<(), api_tokens::ValidationError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LegacyHash {
    scheme: LegacyScheme,
    digest: LegacyDigest,
}

impl fmt::Debug for LegacyHash {
    /// The scheme only: the digest is unkeyed, so even a few of its bytes in a log would let
    /// anyone who reads the log check guesses of a weak imported secret offline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LegacyHash({}, <digest withheld>)", self.scheme)
    }
}

impl LegacyHash {
    /// Parses the text `scheme`'s system stored: hex digits (either case) of the digest's
    /// length, or for [`LegacyScheme::Sha256`] also base64 (standard or URL-safe alphabet,
    /// padding optional). Surrounding whitespace is ignored.
    ///
    /// # Errors
    /// [`Field::LegacyHash`] with [`Problem::Syntax`] when the text is not a digest of the
    /// scheme's length in an accepted encoding. The error never repeats the text.
    pub fn parse(scheme: LegacyScheme, text: &str) -> Result<Self, ValidationError> {
        let t = text.trim();
        let len = scheme.digest_len();
        let decoded = decode_hex(t, len).or_else(|| match scheme {
            LegacyScheme::Sha256 => decode_base64(t, len),
            LegacyScheme::ZabbixSha512 => None,
        });
        match decoded {
            Some(d) => Ok(Self {
                scheme,
                digest: LegacyDigest::new(d.get(..len).unwrap_or(&d)),
            }),
            None => Err(ValidationError::new(
                Field::LegacyHash,
                format_args!("({} characters)", t.chars().count()),
                Problem::Syntax {
                    expected: match scheme {
                        LegacyScheme::ZabbixSha512 => "a SHA-512 digest of 128 hex digits",
                        LegacyScheme::Sha256 => {
                            "a SHA-256 digest of 64 hex digits or 43-44 base64 characters"
                        }
                    },
                },
            )),
        }
    }

    /// The scheme.
    pub fn scheme(&self) -> LegacyScheme {
        self.scheme
    }

    pub(crate) fn digest(&self) -> &LegacyDigest {
        &self.digest
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// `len` bytes from exactly `2 * len` hex digits.
fn decode_hex(t: &str, len: usize) -> Option<[u8; 64]> {
    let b = t.as_bytes();
    if b.len() != 2 * len || len > 64 {
        return None;
    }
    let mut out = [0u8; 64];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *o = hex_value(*hi)? << 4 | hex_value(*lo)?;
    }
    Some(out)
}

fn base64_value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

/// `len` bytes from base64 (either alphabet, padding optional, no bits left over).
fn decode_base64(t: &str, len: usize) -> Option<[u8; 64]> {
    let body = t.trim_end_matches('=');
    let pad = t.len() - body.len();
    let chars = (len * 4).div_ceil(3);
    let padded = len.div_ceil(3) * 4;
    if body.len() != chars || (pad != 0 && body.len() + pad != padded) || len > 48 {
        return None;
    }
    let mut out = [0u8; 64];
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut n = 0;
    for &c in body.as_bytes() {
        acc = (acc << 6) | base64_value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(n)? = (acc >> bits) as u8;
            n += 1;
            acc &= (1 << bits) - 1;
        }
    }
    // The bits past the last whole byte must be zero (one encoding per digest).
    (n == len && acc == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "legacy")]
    #[test]
    fn digests_are_the_published_ones() {
        // SHA-512("abc") and SHA-256("abc") from FIPS 180-2's examples.
        let d = LegacyScheme::ZabbixSha512.digest("abc");
        assert_eq!(
            d.as_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
        let d = LegacyScheme::Sha256.digest("abc");
        assert_eq!(
            d.as_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[cfg(feature = "legacy")]
    #[test]
    fn parse_reads_hex_and_base64_and_refuses_the_rest() {
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let a = LegacyHash::parse(LegacyScheme::Sha256, hex).unwrap();
        let b = LegacyHash::parse(LegacyScheme::Sha256, &hex.to_uppercase()).unwrap();
        let c = LegacyHash::parse(
            LegacyScheme::Sha256,
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
        )
        .unwrap();
        let d = LegacyHash::parse(
            LegacyScheme::Sha256,
            " ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0 ",
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a, d);
        assert_eq!(a.digest, LegacyScheme::Sha256.digest("abc"));
        for bad in [
            "",
            &hex[..62],
            &format!("{hex}00"),
            &hex.replace('b', "g"),
            // Leftover bits set: a second encoding of a near digest.
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa1=",
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0==",
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAF*0=",
        ] {
            let e = LegacyHash::parse(LegacyScheme::Sha256, bad).unwrap_err();
            assert_eq!(e.field, Field::LegacyHash);
            assert!(bad.is_empty() || !e.to_string().contains(bad.trim()), "{e}");
        }
        // Zabbix keeps hex only, of 128 digits.
        let z = "ab".repeat(64);
        assert!(LegacyHash::parse(LegacyScheme::ZabbixSha512, &z).is_ok());
        assert!(LegacyHash::parse(LegacyScheme::ZabbixSha512, hex).is_err());
        assert!(LegacyHash::parse(LegacyScheme::ZabbixSha512, &z[..127]).is_err());
    }

    #[test]
    fn shapes() {
        let z = LegacyScheme::ZabbixSha512;
        assert!(z.accepts_shape(&"0123456789abcdef".repeat(4)));
        assert!(!z.accepts_shape(&"0123456789abcdef".repeat(4)[1..]));
        assert!(!z.accepts_shape(&"0123456789abcdeg".repeat(4)));
        assert!(!z.accepts_shape(&"0123456789ABCDEF".repeat(4)));
        let s = LegacyScheme::Sha256;
        assert!(s.accepts_shape(&"x".repeat(MIN_LEGACY_SECRET_LEN)));
        assert!(!s.accepts_shape(&"x".repeat(MIN_LEGACY_SECRET_LEN - 1)));
        assert!(s.accepts_shape(&"~".repeat(MAX_PRESENTED_LEN)));
        assert!(!s.accepts_shape(&"~".repeat(MAX_PRESENTED_LEN + 1)));
        assert!(
            !s.accepts_shape("sixteen chars ok"),
            "a space is not visible ASCII"
        );
        assert!(!s.accepts_shape("sixteen-chars-ok\u{7f}"));
        assert!(!s.accepts_shape("sixteen-chars-é-ok"));
        for b in 0..=255u8 {
            let visible = (0x21..=0x7e).contains(&b);
            assert_eq!(b.wrapping_sub(0x21) < 0x5e, visible, "{b}");
        }
        for l in LegacyScheme::ALL {
            assert_eq!(LegacyScheme::from_name(l.as_str()), Some(l));
            assert_eq!(l.to_string().parse::<LegacyScheme>().unwrap(), l);
        }
        assert!("md5".parse::<LegacyScheme>().is_err());
    }

    #[cfg(feature = "legacy")]
    #[test]
    fn lookup_hashes_depend_on_key_scheme_and_digest() {
        let k1 = HashKey::new([1; 32]);
        let k2 = HashKey::new([2; 32]);
        let d = LegacyScheme::Sha256.digest("a-legacy-secret-of-mine");
        let z = LegacyScheme::ZabbixSha512;
        let s = LegacyScheme::Sha256;
        let h = d.lookup_hash(&s.lookup_key(&k1));
        assert_eq!(h, d.lookup_hash(&s.lookup_key(&k1)));
        assert_ne!(h, d.lookup_hash(&s.lookup_key(&k2)));
        assert_ne!(h, d.lookup_hash(&z.lookup_key(&k1)));
        let other = LegacyScheme::Sha256.digest("a-legacy-secret-of-yours");
        assert_ne!(h, other.lookup_hash(&s.lookup_key(&k1)));
        // An origin is never a lookup hash: another derivation under the same key.
        let o = d.origin(&s.origin_key(&k1));
        assert_ne!(o.as_bytes(), h.as_bytes());
        assert_ne!(o, d.origin(&s.origin_key(&k2)));
        assert_ne!(o, other.origin(&s.origin_key(&k1)));
        assert_eq!(o, d.origin(&s.origin_key(&k1)));
        assert_eq!(ImportOrigin::from_hex(&o.to_hex()).unwrap(), o);
        let json = serde_json::to_string(&o).unwrap();
        assert_eq!(serde_json::from_str::<ImportOrigin>(&json).unwrap(), o);
        assert!(serde_json::from_str::<ImportOrigin>("\"ab\"").is_err());
        assert_eq!(
            format!("{o:?}"),
            format!("ImportOrigin({}…)", &o.to_hex()[..8])
        );
        let dbg = format!("{:?}", LegacyHash::parse(s, &"ab".repeat(32)).unwrap());
        assert_eq!(dbg, "LegacyHash(sha256, <digest withheld>)");
        assert!(
            !dbg.contains("ab"),
            "no byte of the unkeyed digest in Debug: {dbg}"
        );
    }
}
