//! Limits in SQLite: the definitions as set (their text form, [`Limits`]'s `Display`) and
//! their state (the credit balance, each rate limit's window) in the table `api_token_limits`,
//! one row per limited token. A charge is one `BEGIN IMMEDIATE` transaction: read the state,
//! decide with the pure rule ([`decide`]), write it back. SQLite's write lock serialises it
//! with every other charge and write, from this connection or any other on the same file, so
//! the store never admits more than the limits allow (one more write per limited request).

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

use super::db_error;
use crate::error::StoreError;
use crate::limits::{Charge, LimitRefusal, Limits, Remaining, Usage, Window, decide};
use crate::store::LimitState;
use crate::store::sql::{corrupt, id_key, time_of};
use crate::token::{Token, TokenId};

/// The table, created with the schema (version 5 on).
pub(super) const TABLE_SQL: &str = "
CREATE TABLE IF NOT EXISTS api_token_limits (
    id      INTEGER PRIMARY KEY,  -- the token's id (its row in api_tokens)
    limits  TEXT    NOT NULL,     -- the definitions as set: credits ...; rate ...
    state   TEXT    NOT NULL      -- credits <remaining> <refilled_at>; window <newest> <33 counts>
);
";

/// The state in its text form.
fn state_text(u: &Usage) -> String {
    let mut parts = Vec::new();
    if let Some((remaining, at)) = u.credits {
        parts.push(format!("credits {remaining} {}", at.unix_timestamp()));
    }
    for w in &u.windows {
        let (newest, counts) = w.to_parts();
        let counts: Vec<String> = counts.iter().map(u64::to_string).collect();
        parts.push(format!("window {newest} {}", counts.join(" ")));
    }
    parts.join("; ")
}

/// The state of `limits` read back; `None` when the text is not such a state.
fn parse_state(s: &str, limits: &Limits) -> Option<Usage> {
    let mut u = Usage::default();
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let mut words = part.split_whitespace();
        match words.next()? {
            "credits" => {
                let remaining = words.next()?.parse().ok()?;
                let at = time_of(words.next()?.parse().ok()?).ok()?;
                u.credits = Some((remaining, at));
            }
            "window" => {
                let newest = words.next()?.parse().ok()?;
                let counts: Vec<u64> = words.map(|w| w.parse().ok()).collect::<Option<_>>()?;
                u.windows.push(Window::from_parts(newest, &counts)?);
            }
            _ => return None,
        }
    }
    (u.windows.len() == limits.rates.len() && u.credits.is_some() == limits.credits.is_some())
        .then_some(u)
}

/// A token's limits row: the definitions and the state.
pub(super) fn read(
    conn: &Connection,
    id: TokenId,
    waited: StdDuration,
) -> Result<Option<(Arc<Limits>, Usage)>, StoreError> {
    let Some(key) = id_key(id) else {
        return Ok(None);
    };
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT limits, state FROM api_token_limits WHERE id = ?1",
            params![key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(|e| db_error(e, waited))?;
    let Some((limits, state)) = row else {
        return Ok(None);
    };
    let inconsistent = |problem| StoreError::Inconsistent { token: id, problem };
    let limits: Limits = limits
        .parse()
        .map_err(|_| inconsistent("its limits are out of bounds"))?;
    let usage = parse_state(&state, &limits)
        .ok_or_else(|| inconsistent("its limits' state is unreadable"))?;
    Ok(Some((Arc::new(limits), usage)))
}

/// Fills `t`'s limits and balance from its row, if it has one.
pub(super) fn fill(
    conn: &Connection,
    t: &mut Token,
    waited: StdDuration,
) -> Result<(), StoreError> {
    if let Some((limits, usage)) = read(conn, t.id, waited)? {
        t.balance = usage.balance();
        t.limits = (!limits.is_empty()).then_some(limits);
    }
    Ok(())
}

/// Writes the limits row of `t` as a batch inserts or replaces it; `old` is what the row held
/// before (a replaced token's). The same definitions keep their state; changed ones carry over
/// what [`Usage::carried_over`] keeps; a token inserted with a balance (a restored one) starts
/// from it.
pub(super) fn write(
    conn: &Connection,
    t: &Token,
    old: Option<(Arc<Limits>, Usage)>,
    waited: StdDuration,
) -> Result<(), StoreError> {
    let key = id_key(t.id).ok_or_else(|| corrupt("token id beyond SQLite's range"))?;
    let err = |e| db_error(e, waited);
    let Some(limits) = t.limits.as_ref().filter(|l| !l.is_empty()) else {
        conn.execute("DELETE FROM api_token_limits WHERE id = ?1", params![key])
            .map_err(err)?;
        return Ok(());
    };
    let usage = match old {
        Some((was, usage)) if was == *limits => usage,
        Some((was, usage)) => Usage::carried_over(limits, &was, &usage),
        None => {
            let mut u = Usage::of(limits);
            if let (Some(b), Some(_)) = (t.balance, &limits.credits) {
                u.credits = Some((b.remaining, b.refilled_at));
            }
            u
        }
    };
    conn.execute(
        "INSERT OR REPLACE INTO api_token_limits (id, limits, state) VALUES (?1, ?2, ?3)",
        params![key, limits.to_string(), state_text(&usage)],
    )
    .map_err(err)?;
    Ok(())
}

/// Removes a deleted token's row.
pub(super) fn delete(
    conn: &Connection,
    id: TokenId,
    waited: StdDuration,
) -> Result<(), StoreError> {
    if let Some(key) = id_key(id) {
        conn.execute("DELETE FROM api_token_limits WHERE id = ?1", params![key])
            .map_err(|e| db_error(e, waited))?;
    }
    Ok(())
}

/// A token's limits as authentication lends them: charged in the database.
pub(super) struct SqliteLimits {
    pub(super) conn: Arc<Mutex<Connection>>,
    pub(super) id: TokenId,
    pub(super) limits: Arc<Limits>,
    pub(super) waited: StdDuration,
}

impl std::fmt::Debug for SqliteLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteLimits")
            .field("token", &self.id)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl LimitState for SqliteLimits {
    fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Decided on the row as it is in the database, under its write lock. A token whose
    /// limits changed since it was read is charged by the stored ones; one whose limits were
    /// removed meanwhile is charged nothing.
    fn charge(
        &self,
        charge: Charge<'_>,
        now: OffsetDateTime,
    ) -> Result<Result<Vec<Remaining>, LimitRefusal>, StoreError> {
        let err = |e| db_error(e, self.waited);
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let Some((limits, mut usage)) = read(&tx, self.id, self.waited)? else {
            return Ok(Ok(Vec::new()));
        };
        let decided = decide(&limits, &mut usage, charge, now);
        let key = id_key(self.id).ok_or_else(|| corrupt("token id"))?;
        tx.execute(
            "UPDATE api_token_limits SET state = ?2 WHERE id = ?1",
            params![key, state_text(&usage)],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(decided)
    }
}
