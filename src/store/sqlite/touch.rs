//! Last use: bookkeeping, never a reason to wait or to refuse. A use is written at most once
//! per token per touch interval, and only if the write lock is free at that moment; one that
//! cannot be written yet waits in memory, where reads see it, until the next write that gets
//! the lock, [`SqliteStore::flush`], or the store's drop.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use rusqlite::{Connection, TransactionBehavior, params};

use super::SqliteStore;
use crate::error::StoreError;
use crate::store::sql::id_key;
use crate::token::{LastUse, Token, TokenId};

/// Last uses waiting to be written, and when each token's was last written.
#[derive(Default)]
pub(super) struct Touches {
    written: HashMap<TokenId, i64>,
    pending: HashMap<TokenId, LastUse>,
}

impl Touches {
    /// Keeps `used` as the token's pending last use unless a later one waits already.
    fn keep(&mut self, id: TokenId, used: LastUse) {
        if self.pending.get(&id).is_none_or(|p| p.at <= used.at) {
            self.pending.insert(id, used);
        }
    }

    /// Marks `used` written: it no longer waits, unless a later use came in meanwhile.
    fn written(&mut self, id: TokenId, used: LastUse) {
        self.written.insert(id, used.at.unix_timestamp());
        if self.pending.get(&id).is_some_and(|p| p.at <= used.at) {
            self.pending.remove(&id);
        }
    }

    /// Marks every use of `batch` written.
    pub(super) fn all_written(&mut self, batch: Vec<(TokenId, LastUse)>) {
        for (id, used) in batch {
            self.written(id, used);
        }
    }

    /// Forgets when the token's last use was written (its row was written anew).
    pub(super) fn rewritten(&mut self, id: TokenId) {
        self.written.remove(&id);
    }

    /// The uses waiting to be written.
    pub(super) fn pending(&self) -> Vec<(TokenId, LastUse)> {
        self.pending.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// A read's token with the latest last use, written or waiting.
    pub(super) fn overlay(&self, t: &mut Token) {
        if let Some(p) = self.pending.get(&t.id)
            && t.last_use.is_none_or(|u| u.at < p.at)
        {
            t.last_use = Some(*p);
        }
    }
}

/// Writes each use of `batch` (in the caller's transaction), never over a later one.
pub(super) fn write_last_uses(
    conn: &Connection,
    batch: &[(TokenId, LastUse)],
) -> Result<(), rusqlite::Error> {
    for (id, used) in batch {
        // Ids beyond i64 cannot be rows: nothing to write.
        let Some(key) = id_key(*id) else {
            continue;
        };
        conn.prepare_cached(
            "UPDATE api_tokens SET last_used_at = ?1, last_used_ip = ?2
             WHERE id = ?3 AND (last_used_at IS NULL OR last_used_at <= ?1)",
        )?
        .execute(params![
            used.at.unix_timestamp(),
            used.ip.map(|ip| ip.to_string()),
            key
        ])?;
    }
    Ok(())
}

impl SqliteStore {
    /// Writes every pending last use now, waiting for the write lock like any write.
    ///
    /// # Errors
    /// [`StoreError::Busy`] when another connection kept the lock; backend failures. What was
    /// not written keeps waiting.
    pub fn flush(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let pending = self.touches().pending();
        if pending.is_empty() {
            return Ok(());
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.db(e))?;
        write_last_uses(&tx, &pending).map_err(|e| self.db(e))?;
        tx.commit().map_err(|e| self.db(e))?;
        self.touches().all_written(pending);
        Ok(())
    }

    /// Runs `write` with the connection's busy timeout at zero, so that it never waits for
    /// another connection's lock; `None` when the timeout cannot be set.
    fn without_waiting<T>(&self, conn: &Connection, write: impl FnOnce() -> T) -> Option<T> {
        conn.busy_timeout(StdDuration::ZERO).ok()?;
        let r = write();
        // Restoring the timeout cannot fail for a valid connection; if it did, later writes
        // would fail fast with `Busy` rather than wait, which is still safe.
        let _ = conn.busy_timeout(self.busy_timeout);
        Some(r)
    }

    /// Writes what is pending in one transaction, if the write lock is free right now; else
    /// leaves it pending.
    pub(super) fn flush_if_free(&self, conn: &Connection) {
        let pending = self.touches().pending();
        if pending.is_empty() {
            return;
        }
        let written = self.without_waiting(conn, || {
            conn.unchecked_transaction().and_then(|tx| {
                write_last_uses(&tx, &pending)?;
                tx.commit()
            })
        });
        if let Some(Ok(())) = written {
            self.touches().all_written(pending);
        }
    }

    /// Records a last use: written now if due and the lock is free, else kept for later. Never
    /// fails and never waits: authentication does not depend on bookkeeping.
    pub(super) fn touch(&self, conn: &Connection, id: TokenId, used: LastUse) {
        let at = used.at.unix_timestamp();
        {
            let mut t = self.touches();
            if let Some(&w) = t.written.get(&id)
                && at < w.saturating_add(self.touch_interval)
            {
                t.keep(id, used);
                return;
            }
        }
        let written = self.without_waiting(conn, || write_last_uses(conn, &[(id, used)]));
        if let Some(Ok(())) = written {
            self.touches().written(id, used);
        } else {
            self.touches().keep(id, used);
        }
    }
}
