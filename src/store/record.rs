//! [`StoredToken`]: the persistence form of a token, hashes included.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use crate::allowlist::IpAllowlist;
use crate::legacy::ImportOrigin;
use crate::limits::{Balance, Limits};
use crate::permission::PermissionSet;
use crate::token::{
    Expiry, LastUse, Revoked, SecretState, Status, Token, TokenId, TokenName, UserId,
};

/// A [`Token`] in its persistence form: every field, secret hashes and revision included —
/// what a store or a snapshot writes, never what an API returns (that is
/// [`TokenView`](crate::TokenView), which `Token`'s own `Serialize` writes).
///
/// For hosts that keep tokens as documents (a key-value store, a JSON column). The form is the
/// one snapshot files have always used (now inside a [`SealedSnapshot`](super::memory::SealedSnapshot)):
/// times as Unix seconds, hashes as 64 hex digits, permissions and allowlist as arrays of
/// strings, `revoked` as `null` or `{"at": <Unix seconds>, "by": "possession"}`,
/// `imported_from` as `null` or 64 hex digits (a missing one reads as `null`), and for a
/// token with limits `limits` ([`Limits`]) and `balance` ([`Balance`]), absent otherwise.
///
/// ```
/// use api_tokens::store::StoredToken;
/// use api_tokens::{Actor, NewToken, Tokens, UserId};
/// let tokens = Tokens::in_memory();
/// let alice = Actor::user(UserId::new("alice")?);
/// let issued = tokens.issue(&alice, NewToken::new("ci".parse()?).permissions("deploy".parse()?))?;
/// let json = serde_json::to_value(StoredToken(issued.token.clone()))?;
/// assert_eq!(json["secret"]["hash"].as_str().map(str::len), Some(64));
/// let back: StoredToken = serde_json::from_value(json)?;
/// assert_eq!(back.0, issued.token);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_structs,
    reason = "a wrapper whose one field is the point"
)]
pub struct StoredToken(pub Token);

impl From<Token> for StoredToken {
    fn from(t: Token) -> Self {
        Self(t)
    }
}

impl From<StoredToken> for Token {
    fn from(t: StoredToken) -> Self {
        t.0
    }
}

/// The written form, borrowing the token.
#[derive(Serialize)]
struct Out<'a> {
    id: TokenId,
    name: &'a TokenName,
    description: &'a str,
    owner: &'a UserId,
    creator: &'a UserId,
    status: Status,
    #[serde(with = "time::serde::timestamp")]
    created_at: OffsetDateTime,
    expiry: Expiry,
    permissions: &'a PermissionSet,
    allowlist: &'a IpAllowlist,
    last_use: Option<LastUse>,
    secret: Option<SecretState>,
    revision: u32,
    revoked: Option<Revoked>,
    imported_from: Option<ImportOrigin>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limits: Option<&'a Limits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    balance: Option<Balance>,
}

/// The read form. A missing `revision` (files written before it existed) reads as 0.
#[derive(Deserialize)]
struct In {
    id: TokenId,
    name: TokenName,
    description: String,
    owner: UserId,
    creator: UserId,
    status: Status,
    #[serde(with = "time::serde::timestamp")]
    created_at: OffsetDateTime,
    expiry: Expiry,
    permissions: PermissionSet,
    allowlist: IpAllowlist,
    last_use: Option<LastUse>,
    secret: Option<SecretState>,
    #[serde(default)]
    revision: u32,
    #[serde(default)]
    revoked: Option<Revoked>,
    #[serde(default)]
    imported_from: Option<ImportOrigin>,
    #[serde(default)]
    limits: Option<Limits>,
    #[serde(default)]
    balance: Option<Balance>,
}

pub(crate) fn write<S: Serializer>(t: &Token, s: S) -> Result<S::Ok, S::Error> {
    Out {
        id: t.id,
        name: &t.name,
        description: &t.description,
        owner: &t.owner,
        creator: &t.creator,
        status: t.status,
        created_at: t.created_at,
        expiry: t.expiry,
        permissions: &t.permissions,
        allowlist: &t.allowlist,
        last_use: t.last_use,
        secret: t.secret,
        revision: t.revision,
        revoked: t.revoked,
        imported_from: t.imported_from,
        limits: t.limits.as_deref(),
        balance: t.balance,
    }
    .serialize(s)
}

fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Token, D::Error> {
    let r = In::deserialize(d)?;
    Ok(Token {
        id: r.id,
        name: r.name,
        description: r.description,
        owner: r.owner,
        creator: r.creator,
        status: r.status,
        created_at: r.created_at,
        expiry: r.expiry,
        permissions: r.permissions,
        allowlist: r.allowlist,
        last_use: r.last_use,
        secret: r.secret,
        revision: r.revision,
        revoked: r.revoked,
        imported_from: r.imported_from,
        limits: r.limits.filter(|l| !l.is_empty()).map(std::sync::Arc::new),
        balance: r.balance,
    })
}

impl Serialize for StoredToken {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        write(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for StoredToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        read(d).map(Self)
    }
}

/// `#[serde(with = "record::list")]` for a `Vec<Token>` written as stored tokens.
pub(crate) mod list {
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::StoredToken;
    use crate::token::Token;

    struct Ref<'a>(&'a Token);

    impl serde::Serialize for Ref<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            super::write(self.0, s)
        }
    }

    pub(crate) fn serialize<S: Serializer>(tokens: &[Token], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(tokens.len()))?;
        for t in tokens {
            seq.serialize_element(&Ref(t))?;
        }
        seq.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Token>, D::Error> {
        Ok(Vec::<StoredToken>::deserialize(d)?
            .into_iter()
            .map(|t| t.0)
            .collect())
    }
}
