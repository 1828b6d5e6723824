//! The one place a [`Token`] meets a row of `api_tokens`: the column list, the row → token
//! mapping (checked against every record rule), and the row a token is written as.

use std::time::Duration as StdDuration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, params};

use super::schema::rule_problem;
use super::{backend, db_error};
use crate::allowlist::IpAllowlist;
use crate::error::StoreError;
use crate::keys::HashScheme;
use crate::permission::PermissionSet;
use crate::store::sql::{
    RuleCache, allowlist_text, corrupt, hash_of, id_key, id_of, key_column, legacy_column,
    origin_of, permissions_text, scheme_of, time_of,
};
use crate::token::{
    Expiry, LastUse, PreviousSecret, Revoked, RevokedBy, SecretState, Status, Token, TokenId,
    TokenName, UserId,
};

/// The columns in table order; the permission list is last, so a read that finds it cached
/// never touches it (long values spill into overflow pages).
const COLUMNS: &str = "id, owner, name, description, creator, status, created_at, expires_at, \
    last_used_at, last_used_ip, secret_hash, generated_at, previous_hash, previous_valid_until, \
    revoked_at, revoked_by, revision, secret_key_id, secret_legacy, previous_key_id, \
    previous_legacy, imported_from, allowlist, permissions";

/// Column positions in [`COLUMNS`].
mod col {
    pub const ID: usize = 0;
    pub const OWNER: usize = 1;
    pub const NAME: usize = 2;
    pub const DESCRIPTION: usize = 3;
    pub const CREATOR: usize = 4;
    pub const STATUS: usize = 5;
    pub const CREATED_AT: usize = 6;
    pub const EXPIRES_AT: usize = 7;
    pub const LAST_USED_AT: usize = 8;
    pub const LAST_USED_IP: usize = 9;
    pub const SECRET_HASH: usize = 10;
    pub const GENERATED_AT: usize = 11;
    pub const PREVIOUS_HASH: usize = 12;
    pub const PREVIOUS_VALID_UNTIL: usize = 13;
    pub const REVOKED_AT: usize = 14;
    pub const REVOKED_BY: usize = 15;
    pub const REVISION: usize = 16;
    pub const SECRET_KEY_ID: usize = 17;
    pub const SECRET_LEGACY: usize = 18;
    pub const PREVIOUS_KEY_ID: usize = 19;
    pub const PREVIOUS_LEGACY: usize = 20;
    pub const IMPORTED_FROM: usize = 21;
    pub const ALLOWLIST: usize = 22;
    pub const PERMISSIONS: usize = 23;
}

/// `SELECT` of every column `FROM api_tokens`.
pub(super) fn select_sql() -> String {
    format!("SELECT {COLUMNS} FROM api_tokens")
}

/// The lists cache of lookups (see [`RuleCache`]), stamped with a row's revision: the store
/// moves it with every change. Change rows only through the store, or move `revision` on with
/// every change, as the store does.
pub(super) type Lists = RuleCache<u32>;

/// The token in a row of [`select_sql`], its permissions and allowlist taken from `lists`
/// when the row's revision is the cached one (the permission list is the row's last column,
/// so then it is never read).
pub(super) fn read_token(row: &Row<'_>, lists: &Lists) -> Result<Token, StoreError> {
    let id = id_of(row.get(col::ID).map_err(backend)?)?;
    let revision: i64 = row.get(col::REVISION).map_err(backend)?;
    let revision = u32::try_from(revision).map_err(|_| StoreError::Inconsistent {
        token: id,
        problem: rule_problem("revision_in_range"),
    })?;
    let (permissions, allowlist) = lists.lists(id, revision, || {
        Ok((
            text(row, col::PERMISSIONS)?
                .parse::<PermissionSet>()
                .map_err(corrupt)?,
            text(row, col::ALLOWLIST)?
                .parse::<IpAllowlist>()
                .map_err(corrupt)?,
        ))
    })?;
    token_of(row, id, revision, permissions, allowlist)
}

/// A text column, borrowed.
fn text<'r>(row: &'r Row<'_>, i: usize) -> Result<&'r str, StoreError> {
    match row.get_ref(i).map_err(backend)? {
        ValueRef::Text(b) => std::str::from_utf8(b).map_err(corrupt),
        _ => Err(corrupt(format!("column {i} is not text"))),
    }
}

/// The token in a row of [`select_sql`], with its parsed permissions and allowlist, checked
/// against every rule of the schema's `RULES` (its constraints may have been switched off when
/// the row was written): a row that breaks one is refused, never read as something that works.
pub(super) fn token_of(
    row: &Row<'_>,
    id: TokenId,
    revision: u32,
    permissions: PermissionSet,
    allowlist: IpAllowlist,
) -> Result<Token, StoreError> {
    let get_err = |e: rusqlite::Error| backend(e);
    let owner: String = row.get(col::OWNER).map_err(get_err)?;
    let name: String = row.get(col::NAME).map_err(get_err)?;
    let status: i64 = row.get(col::STATUS).map_err(get_err)?;
    let expires_at: Option<i64> = row.get(col::EXPIRES_AT).map_err(get_err)?;
    let last_used_at: Option<i64> = row.get(col::LAST_USED_AT).map_err(get_err)?;
    let last_used_ip: Option<String> = row.get(col::LAST_USED_IP).map_err(get_err)?;
    let inconsistent = |rule| StoreError::Inconsistent {
        token: id,
        problem: rule_problem(rule),
    };
    let hash = hash_of(row.get(col::SECRET_HASH).map_err(get_err)?)
        .map_err(|_| inconsistent("secret_hash_is_32_bytes"))?;
    let generated_at: Option<i64> = row.get(col::GENERATED_AT).map_err(get_err)?;
    let previous = hash_of(row.get(col::PREVIOUS_HASH).map_err(get_err)?)
        .map_err(|_| inconsistent("previous_hash_is_32_bytes"))?;
    let previous_until: Option<i64> = row.get(col::PREVIOUS_VALID_UNTIL).map_err(get_err)?;
    let revoked_at: Option<i64> = row.get(col::REVOKED_AT).map_err(get_err)?;
    let revoked_by: Option<String> = row.get(col::REVOKED_BY).map_err(get_err)?;
    let scheme_problem = |problem| StoreError::Inconsistent { token: id, problem };
    let scheme = scheme_of(
        row.get(col::SECRET_KEY_ID).map_err(get_err)?,
        row.get(col::SECRET_LEGACY).map_err(get_err)?,
    )
    .map_err(scheme_problem)?;
    let previous_scheme = scheme_of(
        row.get(col::PREVIOUS_KEY_ID).map_err(get_err)?,
        row.get(col::PREVIOUS_LEGACY).map_err(get_err)?,
    )
    .map_err(scheme_problem)?;
    if previous.is_some() != previous_until.is_some() {
        return Err(inconsistent("previous_hash_has_end"));
    }
    if hash.is_some() != generated_at.is_some() {
        return Err(inconsistent("secret_hash_has_generated_at"));
    }
    // Checked after the record rules, which name the more telling problem first.
    let scheme_without_hash = if hash.is_none() && scheme != HashScheme::UNRECORDED {
        Some("secret_scheme_needs_hash")
    } else if previous.is_none() && previous_scheme != HashScheme::UNRECORDED {
        Some("previous_scheme_needs_hash")
    } else {
        None
    };
    let previous = match (previous, previous_until) {
        (Some(hash), Some(until)) => Some(PreviousSecret {
            hash,
            scheme: previous_scheme,
            valid_until: time_of(until)?,
        }),
        _ => None,
    };
    let secret = match (hash, generated_at) {
        (Some(hash), Some(generated_at)) => Some(SecretState {
            hash,
            scheme,
            generated_at: time_of(generated_at)?,
            previous,
        }),
        _ if previous.is_some() => return Err(inconsistent("previous_hash_needs_current")),
        _ => None,
    };
    let revoked = match (revoked_at, revoked_by) {
        (None, None) => None,
        (Some(at), Some(by)) => Some(Revoked {
            at: time_of(at)?,
            by: RevokedBy::from_name(&by).ok_or_else(|| inconsistent("revoked_by_is_known"))?,
        }),
        _ => return Err(inconsistent("revoked_has_time_and_cause")),
    };
    let imported_from = origin_of(row.get(col::IMPORTED_FROM).map_err(get_err)?)
        .map_err(|_| inconsistent("imported_from_is_32_bytes"))?;
    let token = Token {
        id,
        name: TokenName::new(&name).map_err(corrupt)?,
        description: row.get(col::DESCRIPTION).map_err(get_err)?,
        owner: UserId::new(&owner).map_err(corrupt)?,
        creator: UserId::new(&row.get::<_, String>(col::CREATOR).map_err(get_err)?)
            .map_err(corrupt)?,
        status: match status {
            0 => Status::Enabled,
            1 => Status::Disabled,
            _ => return Err(inconsistent("status_is_0_or_1")),
        },
        created_at: time_of(row.get(col::CREATED_AT).map_err(get_err)?)?,
        expiry: match expires_at {
            None => Expiry::NEVER,
            Some(s) => Expiry::from_unix(s).map_err(corrupt)?,
        },
        permissions,
        allowlist,
        last_use: match (last_used_at, last_used_ip) {
            (None, None) => None,
            (None, Some(_)) => return Err(inconsistent("last_used_ip_has_time")),
            (Some(at), ip) => Some(LastUse {
                at: time_of(at)?,
                ip: ip.and_then(|ip| ip.parse().ok()),
            }),
        },
        secret,
        revision,
        revoked,
        imported_from,
        limits: None,
        balance: None,
    };
    token.check_consistent()?;
    match scheme_without_hash {
        Some(rule) => Err(inconsistent(rule)),
        None => Ok(token),
    }
}

fn is_unique_violation(e: &rusqlite::Error, columns: &str) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, Some(msg))
        if f.code == rusqlite::ErrorCode::ConstraintViolation && msg.contains(columns))
}

pub(super) fn insert_row(conn: &Connection, t: &Token) -> Result<(), StoreError> {
    let secret = t.secret;
    let scheme = secret.map(|s| s.scheme);
    let previous_scheme = secret.and_then(|s| s.previous).map(|p| p.scheme);
    let r = conn
        .prepare_cached(&format!(
            "INSERT INTO api_tokens ({COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
              ?18, ?19, ?20, ?21, ?22, ?23, ?24)"
        ))
        .and_then(|mut stmt| {
            stmt.execute(params![
                id_sql(t.id).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
                t.owner.as_str(),
                t.name.as_str(),
                t.description,
                t.creator.as_str(),
                i64::from(t.status == Status::Disabled),
                t.created_at.unix_timestamp(),
                t.expiry.unix(),
                t.last_use.map(|u| u.at.unix_timestamp()),
                t.last_use.and_then(|u| u.ip).map(|ip| ip.to_string()),
                secret.map(|s| s.hash.as_bytes().to_vec()),
                secret.map(|s| s.generated_at.unix_timestamp()),
                secret
                    .and_then(|s| s.previous)
                    .map(|p| p.hash.as_bytes().to_vec()),
                secret
                    .and_then(|s| s.previous)
                    .map(|p| p.valid_until.unix_timestamp()),
                t.revoked.map(|r| r.at.unix_timestamp()),
                t.revoked.map(|r| r.by.as_str()),
                i64::from(t.revision),
                key_column(scheme),
                legacy_column(scheme),
                key_column(previous_scheme),
                legacy_column(previous_scheme),
                t.imported_from.map(|o| o.as_bytes().to_vec()),
                allowlist_text(&t.allowlist),
                permissions_text(&t.permissions),
            ])
        });
    match r {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e, "api_tokens.owner, api_tokens.name") => {
            Err(StoreError::NameTaken {
                owner: t.owner.clone(),
                name: t.name.to_string(),
            })
        }
        Err(e) if is_unique_violation(&e, "api_tokens.id") => Err(StoreError::IdTaken(t.id)),
        Err(e) if is_unique_violation(&e, "hash") => Err(StoreError::HashTaken),
        Err(rusqlite::Error::SqliteFailure(f, Some(msg)))
            if f.code == ErrorCode::ConstraintViolation && msg.starts_with("CHECK constraint") =>
        {
            let rule = msg.rsplit(": ").next().unwrap_or_default();
            Err(StoreError::Inconsistent {
                token: t.id,
                problem: rule_problem(rule),
            })
        }
        Err(e) => Err(backend(e)),
    }
}

/// The revision and last use of a stored token, if it exists.
pub(super) fn current_state(
    conn: &Connection,
    id: TokenId,
) -> Result<Option<(u32, Option<LastUse>)>, StoreError> {
    let Some(key) = id_key(id) else {
        return Ok(None);
    };
    conn.query_row(
        "SELECT revision, last_used_at, last_used_ip FROM api_tokens WHERE id = ?1",
        params![key],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        },
    )
    .optional()
    .map_err(|e| db_error(e, StdDuration::ZERO))?
    .map(|(rev, at, ip)| {
        let last = at.map(time_of).transpose()?.map(|at| LastUse {
            at,
            ip: ip.and_then(|ip| ip.parse().ok()),
        });
        Ok((u32::try_from(rev).map_err(|_| corrupt("revision"))?, last))
    })
    .transpose()
}

/// The row key of an id, or an error for an id no row can have.
pub(super) fn id_sql(id: TokenId) -> Result<i64, StoreError> {
    id_key(id).ok_or_else(|| corrupt(format!("token id {id} beyond SQLite's range")))
}
