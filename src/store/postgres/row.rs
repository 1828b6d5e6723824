//! The one place a [`Token`] meets a row of `api_tokens`: the column list, the row → token
//! mapping, and the column arrays a batch is sent as (`unnest($1::bigint[], …)`). A new field
//! of `Token` is added here, in the schema (`schema.rs`) and nowhere else.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::allowlist::IpAllowlist;
use crate::error::StoreError;
use crate::permission::PermissionSet;
use crate::store::sql::{
    allowlist_text, corrupt, hash_of, id_key, id_of, key_column, legacy_column, origin_of,
    permissions_text, scheme_of, time_of,
};
use crate::token::{
    Expiry, LastUse, PreviousSecret, Revoked, RevokedBy, SecretState, Status, Token, TokenName,
    UserId,
};

/// The columns of a token, in the order [`token_of`] reads them and [`Columns`] sends them.
pub(super) const NAMES: [&str; 24] = [
    "id",
    "owner",
    "name",
    "description",
    "creator",
    "status",
    "created_at",
    "expires_at",
    "permissions",
    "allowlist",
    "last_used_at",
    "last_used_ip",
    "secret_hash",
    "generated_at",
    "previous_hash",
    "previous_valid_until",
    "revision",
    "revoked_at",
    "revoked_by",
    "secret_key_id",
    "secret_legacy",
    "previous_key_id",
    "previous_legacy",
    "imported_from",
];

/// The SQL array type of each column, for `unnest($n::type[])`.
const TYPES: [&str; 24] = [
    "bigint", "text", "text", "text", "text", "smallint", "bigint", "bigint", "text", "text",
    "bigint", "text", "bytea", "bigint", "bytea", "bigint", "bigint", "bigint", "text", "bytea",
    "text", "bytea", "text", "bytea",
];

/// `id, owner, …` with each name prefixed (`t.id, t.owner, …` for `prefix = "t."`).
pub(super) fn columns(prefix: &str) -> String {
    NAMES
        .iter()
        .map(|n| format!("{prefix}{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `unnest($first::bigint[], …) AS v(id, owner, …)`: the rows of a [`Columns`] as a table.
pub(super) fn unnest(first: usize) -> String {
    let args: Vec<String> = TYPES
        .iter()
        .enumerate()
        .map(|(i, t)| format!("${}::{t}[]", first + i))
        .collect();
    format!("unnest({}) AS v({})", args.join(", "), columns(""))
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, StoreError> {
    row.try_get(i).map_err(StoreError::backend)
}

/// A token from a row whose first 24 columns are [`NAMES`]. Every value passes the same
/// constructors as input does, and the record rules ([`Token::check_consistent`]): a row that
/// breaks a rule is refused, never half-read.
pub(crate) fn token_of(row: &Row) -> Result<Token, StoreError> {
    token_with(row, parse_rules)
}

/// The permissions and allowlist of a row, parsed.
fn parse_rules(row: &Row) -> Result<(PermissionSet, IpAllowlist), StoreError> {
    let permissions: String = get(row, 8)?;
    let allowlist: String = get(row, 9)?;
    Ok((
        permissions.parse::<PermissionSet>().map_err(corrupt)?,
        allowlist.parse::<IpAllowlist>().map_err(corrupt)?,
    ))
}

/// The lists cache of lookups by hash (see [`RuleCache`](crate::store::sql::RuleCache)),
/// stamped with a row's revision *and* change clock value (`change_seq`): the store moves the
/// revision on every write, but an operator's hand-made `UPDATE` of `permissions` or
/// `allowlist` does not; the stamp trigger moves `change_seq` for every write, whoever makes
/// it, so a narrowed list is never served from the cache.
pub(super) type RuleCache = crate::store::sql::RuleCache<(i64, i64)>;

/// [`token_of`], taking the lists from `cache` when the row's revision and change clock value
/// are the cached ones. The row must carry `change_seq` after the [`NAMES`] columns.
pub(super) fn token_cached(row: &Row, cache: &RuleCache) -> Result<Token, StoreError> {
    let id = id_of(get(row, 0)?)?;
    let stamp = (get::<i64>(row, 16)?, get::<i64>(row, NAMES.len())?);
    let lists = cache.lists(id, stamp, || parse_rules(row))?;
    token_with(row, |_| Ok(lists))
}

fn token_with(
    row: &Row,
    rules: impl FnOnce(&Row) -> Result<(PermissionSet, IpAllowlist), StoreError>,
) -> Result<Token, StoreError> {
    let status: i16 = get(row, 5)?;
    let expires_at: Option<i64> = get(row, 7)?;
    let last_used_at: Option<i64> = get(row, 10)?;
    let last_used_ip: Option<String> = get(row, 11)?;
    let hash = hash_of(get(row, 12)?)?;
    let generated_at: Option<i64> = get(row, 13)?;
    let previous = hash_of(get(row, 14)?)?;
    let previous_until: Option<i64> = get(row, 15)?;
    let revision: i64 = get(row, 16)?;
    let revoked_at: Option<i64> = get(row, 17)?;
    let revoked_by: Option<String> = get(row, 18)?;
    let scheme = scheme_of(get(row, 19)?, get(row, 20)?).map_err(corrupt)?;
    let previous_scheme = scheme_of(get(row, 21)?, get(row, 22)?).map_err(corrupt)?;
    let imported_from = origin_of(get(row, 23)?)?;
    if (hash.is_none() && !scheme.is_unrecorded())
        || (previous.is_none() && !previous_scheme.is_unrecorded())
    {
        return Err(corrupt("a hash scheme without its hash"));
    }
    let secret = match (hash, generated_at) {
        (None, None) => None,
        (Some(hash), Some(at)) => Some(SecretState {
            hash,
            scheme,
            generated_at: time_of(at)?,
            previous: match (previous, previous_until) {
                (None, None) => None,
                (Some(hash), Some(until)) => Some(PreviousSecret {
                    hash,
                    scheme: previous_scheme,
                    valid_until: time_of(until)?,
                }),
                _ => return Err(corrupt("previous hash without its deadline, or back")),
            },
        }),
        _ => return Err(corrupt("secret hash without its generation time, or back")),
    };
    if secret.is_none() && (previous.is_some() || previous_until.is_some()) {
        return Err(corrupt("a previous secret without a current one"));
    }
    let revoked = match (revoked_at, revoked_by) {
        (None, None) => None,
        (Some(at), Some(by)) => Some(Revoked {
            at: time_of(at)?,
            by: RevokedBy::from_name(&by)
                .ok_or_else(|| corrupt(format!("revocation cause {by:?}")))?,
        }),
        _ => return Err(corrupt("revocation time without its cause, or back")),
    };
    let (permissions, allowlist) = rules(row)?;
    let token = Token {
        id: id_of(get(row, 0)?)?,
        owner: UserId::new(&get::<String>(row, 1)?).map_err(corrupt)?,
        name: TokenName::new(&get::<String>(row, 2)?).map_err(corrupt)?,
        description: get(row, 3)?,
        creator: UserId::new(&get::<String>(row, 4)?).map_err(corrupt)?,
        status: match status {
            0 => Status::Enabled,
            1 => Status::Disabled,
            s => return Err(corrupt(format!("status {s}"))),
        },
        created_at: time_of(get(row, 6)?)?,
        expiry: match expires_at {
            None => Expiry::NEVER,
            Some(s) => Expiry::from_unix(s).map_err(corrupt)?,
        },
        permissions,
        allowlist,
        last_use: match last_used_at {
            None => None,
            Some(at) => Some(LastUse {
                at: time_of(at)?,
                ip: match last_used_ip {
                    None => None,
                    Some(ip) => Some(ip.parse().map_err(corrupt)?),
                },
            }),
        },
        secret,
        revision: u32::try_from(revision).map_err(|_| corrupt(format!("revision {revision}")))?,
        revoked,
        imported_from,
        limits: None,
        balance: None,
    };
    token.check_consistent()?;
    Ok(token)
}

/// The name of the generated column holding a row's fingerprint (schema version 6).
pub(crate) const FINGERPRINT: &str = "sec_fp";

/// A record's fingerprint: what PostgreSQL computes in the generated column [`FINGERPRINT`]
/// for the row the store writes for `t` (schema version 6 spells out the same fields in the
/// same order). 64 bits of the MD5 of the security-relevant columns as text, each text value
/// prefixed by its length in bytes, each absent value written `-`. A row written some other
/// way (by hand, with its lists in another order) can hold the same token under another
/// fingerprint: a replica compares this with the row's own and remembers the row's when they
/// differ.
pub(crate) fn fingerprint(t: &Token) -> u64 {
    use md5::Digest;

    /// The text the SQL expression hashes, fed to MD5 as it is produced (no allocation:
    /// a replica computes this for every row it loads).
    struct Feed(md5::Md5);

    impl Feed {
        fn bytes(&mut self, b: &[u8]) {
            self.0.update(b);
        }
        fn int(&mut self, v: i64) {
            let mut buf = [0u8; 20];
            let mut at = buf.len();
            let mut n = v.unsigned_abs();
            loop {
                at -= 1;
                if let Some(d) = buf.get_mut(at) {
                    *d = b'0' + (n % 10) as u8;
                }
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            if v < 0 {
                self.bytes(b"-");
            }
            self.bytes(buf.get(at..).unwrap_or_default());
        }
        /// `|` and the value, or `|-` for none.
        fn opt_int(&mut self, v: Option<i64>) {
            self.bytes(b"|");
            match v {
                Some(v) => self.int(v),
                None => self.bytes(b"-"),
            }
        }
        /// `|`, then the text's length in bytes, `:` and the text, made of `parts` joined by
        /// single spaces; or `|-` for none.
        fn text<'a, I: Iterator<Item = &'a [u8]>>(&mut self, parts: Option<impl Fn() -> I>) {
            self.bytes(b"|");
            let Some(parts) = parts else {
                self.bytes(b"-");
                return;
            };
            let (mut len, mut n) = (0usize, 0usize);
            for p in parts() {
                len += p.len();
                n += 1;
            }
            self.int(i64::try_from(len + n.saturating_sub(1)).unwrap_or(i64::MAX));
            self.bytes(b":");
            for (i, p) in parts().enumerate() {
                if i > 0 {
                    self.bytes(b" ");
                }
                self.bytes(p);
            }
        }
        /// `|` and the bytes in lowercase hex, or `|-` for none.
        fn hex(&mut self, v: Option<&[u8]>) {
            fn digit(n: u8) -> u8 {
                if n < 10 { b'0' + n } else { b'a' + n - 10 }
            }
            self.bytes(b"|");
            let Some(v) = v else {
                self.bytes(b"-");
                return;
            };
            let mut buf = [0u8; 64];
            for chunk in v.chunks(32) {
                let mut used = 0;
                for (b, pair) in chunk.iter().zip(buf.chunks_exact_mut(2)) {
                    if let [hi, lo] = pair {
                        *hi = digit(b >> 4);
                        *lo = digit(b & 15);
                        used += 2;
                    }
                }
                self.bytes(buf.get(..used).unwrap_or_default());
            }
        }
    }

    fn one<'a>(s: Option<&'a str>) -> Option<impl Fn() -> std::iter::Once<&'a [u8]>> {
        s.map(|s| move || std::iter::once(s.as_bytes()))
    }

    let secret = t.secret;
    let previous = secret.and_then(|s| s.previous);
    let scheme = secret.map(|s| s.scheme);
    let previous_scheme = previous.map(|p| p.scheme);
    let allowlist: Vec<String> = t.allowlist.entry_strings().collect();
    let mut f = Feed(md5::Md5::new());
    // The id first, without a separator before it, as the SQL does.
    f.int(id_key(t.id).unwrap_or(i64::MAX));
    f.text(one(Some(t.owner.as_str())));
    f.opt_int(Some(i64::from(t.status == Status::Disabled)));
    f.opt_int(t.expiry.unix());
    f.text(Some(|| t.permissions.iter().map(|p| p.as_str().as_bytes())));
    f.text(Some(|| allowlist.iter().map(|a| a.as_bytes())));
    f.hex(secret.as_ref().map(|s| s.hash.as_bytes().as_slice()));
    f.hex(
        scheme
            .and_then(|s| s.key())
            .as_ref()
            .map(|k| k.as_bytes().as_slice()),
    );
    f.text(one(legacy_column(scheme)));
    f.hex(previous.as_ref().map(|p| p.hash.as_bytes().as_slice()));
    f.opt_int(previous.map(|p| p.valid_until.unix_timestamp()));
    f.hex(
        previous_scheme
            .and_then(|s| s.key())
            .as_ref()
            .map(|k| k.as_bytes().as_slice()),
    );
    f.text(one(legacy_column(previous_scheme)));
    f.opt_int(t.revoked.map(|r| r.at.unix_timestamp()));
    f.text(one(t.revoked.map(|r| r.by.as_str())));
    let digest = f.0.finalize();
    let mut first = [0u8; 8];
    for (to, from) in first.iter_mut().zip(digest.iter()) {
        *to = *from;
    }
    u64::from_be_bytes(first)
}

/// A batch of tokens as one array per column.
#[derive(Default)]
pub(super) struct Columns {
    id: Vec<i64>,
    owner: Vec<String>,
    name: Vec<String>,
    description: Vec<String>,
    creator: Vec<String>,
    status: Vec<i16>,
    created_at: Vec<i64>,
    expires_at: Vec<Option<i64>>,
    permissions: Vec<String>,
    allowlist: Vec<String>,
    last_used_at: Vec<Option<i64>>,
    last_used_ip: Vec<Option<String>>,
    secret_hash: Vec<Option<Vec<u8>>>,
    generated_at: Vec<Option<i64>>,
    previous_hash: Vec<Option<Vec<u8>>>,
    previous_valid_until: Vec<Option<i64>>,
    revision: Vec<i64>,
    revoked_at: Vec<Option<i64>>,
    revoked_by: Vec<Option<&'static str>>,
    secret_key_id: Vec<Option<Vec<u8>>>,
    secret_legacy: Vec<Option<&'static str>>,
    previous_key_id: Vec<Option<Vec<u8>>>,
    previous_legacy: Vec<Option<&'static str>>,
    imported_from: Vec<Option<Vec<u8>>>,
}

impl Columns {
    /// The columns of `tokens`.
    ///
    /// # Errors
    /// An id beyond `bigint` (no row can hold it).
    pub(super) fn of<'a>(tokens: impl IntoIterator<Item = &'a Token>) -> Result<Self, StoreError> {
        let mut c = Self::default();
        for t in tokens {
            let secret = t.secret;
            let previous = secret.and_then(|s| s.previous);
            c.id.push(id_key(t.id).ok_or_else(|| corrupt(format!("id {} beyond bigint", t.id)))?);
            c.owner.push(t.owner.to_string());
            c.name.push(t.name.to_string());
            c.description.push(t.description.clone());
            c.creator.push(t.creator.to_string());
            c.status.push(i16::from(t.status == Status::Disabled));
            c.created_at.push(t.created_at.unix_timestamp());
            c.expires_at.push(t.expiry.unix());
            c.permissions.push(permissions_text(&t.permissions));
            c.allowlist.push(allowlist_text(&t.allowlist));
            c.last_used_at
                .push(t.last_use.map(|u| u.at.unix_timestamp()));
            c.last_used_ip
                .push(t.last_use.and_then(|u| u.ip).map(|ip| ip.to_string()));
            c.secret_hash
                .push(secret.map(|s| s.hash.as_bytes().to_vec()));
            c.generated_at
                .push(secret.map(|s| s.generated_at.unix_timestamp()));
            c.previous_hash
                .push(previous.map(|p| p.hash.as_bytes().to_vec()));
            c.previous_valid_until
                .push(previous.map(|p| p.valid_until.unix_timestamp()));
            c.revision.push(i64::from(t.revision));
            c.revoked_at.push(t.revoked.map(|r| r.at.unix_timestamp()));
            c.revoked_by.push(t.revoked.map(|r| r.by.as_str()));
            let scheme = secret.map(|s| s.scheme);
            let previous_scheme = previous.map(|p| p.scheme);
            c.secret_key_id.push(key_column(scheme));
            c.secret_legacy.push(legacy_column(scheme));
            c.previous_key_id.push(key_column(previous_scheme));
            c.previous_legacy.push(legacy_column(previous_scheme));
            c.imported_from
                .push(t.imported_from.map(|o| o.as_bytes().to_vec()));
        }
        Ok(c)
    }

    /// `(owner, name)` of each token.
    pub(super) fn owners_and_names(&self) -> (&[String], &[String]) {
        (&self.owner, &self.name)
    }

    /// Every secret hash the batch carries, current and previous.
    pub(super) fn hashes(&self) -> Vec<Vec<u8>> {
        self.secret_hash
            .iter()
            .chain(&self.previous_hash)
            .flatten()
            .cloned()
            .collect()
    }

    /// The arrays as query parameters, in [`NAMES`] order.
    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 24] {
        [
            &self.id,
            &self.owner,
            &self.name,
            &self.description,
            &self.creator,
            &self.status,
            &self.created_at,
            &self.expires_at,
            &self.permissions,
            &self.allowlist,
            &self.last_used_at,
            &self.last_used_ip,
            &self.secret_hash,
            &self.generated_at,
            &self.previous_hash,
            &self.previous_valid_until,
            &self.revision,
            &self.revoked_at,
            &self.revoked_by,
            &self.secret_key_id,
            &self.secret_legacy,
            &self.previous_key_id,
            &self.previous_legacy,
            &self.imported_from,
        ]
    }
}
