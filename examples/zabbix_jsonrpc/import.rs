//! `--import FILE`: tokens brought over from a Zabbix database, whose secrets keep working.
//!
//! The file is a JSON array of rows of Zabbix's `token` table, as
//! `SELECT tokenid, name, description, userid, token, lastaccess, status, expires_at,
//! created_at, creator_userid FROM token` exports them (numbers or numeric strings; `token` is
//! the SHA-512 of the secret in 128 hex digits, empty for a token never generated;
//! `creator_userid` may be `null`; `0` means never for `lastaccess` and `expires_at`):
//!
//! ```json
//! [{"tokenid": "12", "name": "backup", "description": "", "userid": "2",
//!   "token": "9b71d224…", "lastaccess": "1700000000", "status": "0", "expires_at": "0",
//!   "created_at": "1690000000", "creator_userid": "1"}]
//! ```
//!
//! Every row is imported by the Super admin (user `1`), all or nothing, with all of its owner's
//! rights (as Zabbix tokens have). Zabbix's ids are not kept: the example prints on stderr which
//! new id each `tokenid` got. After that, a client presents its old Zabbix secret as `auth` and
//! is authenticated; that first success re-hashes the token under the example's key, and the
//! old SHA-512 is gone from the store.

use std::error::Error as StdError;

use api_tokens::{
    Actor, Expiry, ImportedToken, MemoryStore, PermissionSet, Status, TokenName, Tokens, UserId,
    legacy::LegacyHash, legacy::LegacyScheme, token::LastUse,
};
use serde_json::Value;
use time::OffsetDateTime;

/// A row's member as an integer: a number, or a string of digits (Zabbix's API and most
/// exports write ids and times as strings).
fn int(row: &Value, key: &str) -> Result<i64, Box<dyn StdError>> {
    let v = &row[key];
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| format!("token row: \"{key}\" is not an integer: {v}").into())
}

fn text<'a>(row: &'a Value, key: &str) -> Result<&'a str, Box<dyn StdError>> {
    row[key]
        .as_str()
        .ok_or_else(|| format!("token row: \"{key}\" is not a string").into())
}

fn id(row: &Value, key: &str) -> Result<Option<UserId>, Box<dyn StdError>> {
    if row[key].is_null() {
        return Ok(None);
    }
    match int(row, key)? {
        0 => Ok(None),
        n => Ok(Some(UserId::new(&n.to_string())?)),
    }
}

fn at(secs: i64) -> Result<Option<OffsetDateTime>, Box<dyn StdError>> {
    Ok(match secs {
        0 => None,
        s => Some(OffsetDateTime::from_unix_timestamp(s)?),
    })
}

/// One row of Zabbix's `token` table as a token to import, with Zabbix's `tokenid`.
fn row(row: &Value) -> Result<(i64, ImportedToken), Box<dyn StdError>> {
    let tokenid = int(row, "tokenid")?;
    let owner = id(row, "userid")?.ok_or("token row: \"userid\" is missing")?;
    let mut t = ImportedToken::new(TokenName::new(text(row, "name")?)?, owner)
        .description(text(row, "description").unwrap_or_default())
        .permissions(PermissionSet::all())
        .status(match int(row, "status")? {
            0 => Status::Enabled,
            1 => Status::Disabled,
            s => return Err(format!("token row {tokenid}: status {s}").into()),
        })
        .expiry(match int(row, "expires_at")? {
            0 => Expiry::NEVER,
            s => Expiry::from_unix(s)?,
        });
    if let Some(created) = at(int(row, "created_at")?)? {
        t = t.created_at(created);
    }
    if let Some(used) = at(int(row, "lastaccess")?)? {
        t = t.last_use(LastUse { at: used, ip: None });
    }
    if let Some(creator) = id(row, "creator_userid")? {
        t = t.creator(creator);
    }
    match text(row, "token")? {
        "" => {}
        hash => t = t.hash(LegacyHash::parse(LegacyScheme::ZabbixSha512, hash)?),
    }
    Ok((tokenid, t))
}

/// Imports the rows of `json` into `tokens` (which must honour [`LegacyScheme::ZabbixSha512`]);
/// returns `(Zabbix tokenid, new id)` pairs in the rows' order.
pub fn import(
    tokens: &Tokens<MemoryStore>,
    json: &str,
) -> Result<Vec<(i64, u64)>, Box<dyn StdError>> {
    let rows: Vec<Value> = serde_json::from_str(json)?;
    let (zabbix_ids, items): (Vec<i64>, Vec<ImportedToken>) = rows
        .iter()
        .map(row)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .unzip();
    let ids = tokens.import(&Actor::admin(UserId::from(1)), items)?;
    Ok(zabbix_ids
        .into_iter()
        .zip(ids.into_iter().map(|id| id.get()))
        .collect())
}
