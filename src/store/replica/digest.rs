//! What a replica's copy sums to: the fingerprints of the rows it installed, per bucket of ids,
//! for comparing the copy with the database without reading it (see the [module docs](super),
//! *Reconciliation*).
//!
//! Every row of `api_tokens` carries a fingerprint of its security-relevant columns that
//! PostgreSQL computes on every write, by any path (`row::FINGERPRINT`). The copy keeps, per
//! bucket of 1,024 consecutive ids, how many rows it installed and the sum of their
//! fingerprints: equal sums on both sides mean equal rows (up to a 64-bit checksum), and a
//! difference names the buckets to read again.
//!
//! The copy does not keep each row's fingerprint (eight bytes a token): when a row is replaced
//! or deleted, its part of the sum is computed again from the record the copy holds
//! (`row::fingerprint`), which is the row's own fingerprint whenever the row is as the crate
//! writes it. The few rows that are not — written by hand with their lists in another order,
//! or left out of the copy because they are unreadable or clash with another — are remembered
//! with the database's fingerprint (`odd`).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::store::MemoryStore;
use crate::store::TokenStore;
use crate::store::postgres::fingerprint;
use crate::token::{Token, TokenId};

/// Ids per bucket: `id >> BUCKET_BITS` is a row's bucket (in SQL too).
pub(super) const BUCKET_BITS: u32 = 10;

/// The bucket of an id.
pub(super) fn bucket_of(id: TokenId) -> i64 {
    (id.get() >> BUCKET_BITS) as i64
}

/// A count of rows and the exact sum of their fingerprints (as signed 64-bit values, as
/// PostgreSQL's `sum(bigint)` adds them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sum {
    pub(crate) rows: i64,
    pub(crate) sum: i128,
}

impl Sum {
    fn add(&mut self, fp: u64) {
        self.rows += 1;
        self.sum += i128::from(fp as i64);
    }

    fn sub(&mut self, fp: u64) {
        self.rows -= 1;
        self.sum -= i128::from(fp as i64);
    }

    /// A sum as SQL returns it: a count and a `numeric` sum written as text.
    pub(crate) fn parse(rows: i64, sum: &str) -> Option<Self> {
        Some(Self {
            rows,
            sum: sum.parse().ok()?,
        })
    }
}

/// The copy's sums, per bucket and in all.
#[derive(Debug, Default)]
pub(crate) struct Digest {
    buckets: BTreeMap<i64, Sum>,
    total: Sum,
    /// Rows whose part of the sum is not what `fingerprint` gives for the record the copy
    /// holds of them (if any): the database's fingerprint of the row.
    odd: HashMap<TokenId, u64>,
}

/// One row as read from the database: the record (or `None` when the crate cannot read it)
/// and the row's fingerprint.
pub(crate) struct Row {
    pub(crate) id: TokenId,
    pub(crate) token: Option<Token>,
    pub(crate) fingerprint: u64,
}

impl Digest {
    /// The sum over every row installed.
    pub(crate) fn total(&self) -> Sum {
        self.total
    }

    /// The sum of one bucket.
    pub(crate) fn bucket(&self, b: i64) -> Sum {
        self.buckets.get(&b).copied().unwrap_or_default()
    }

    /// The buckets holding at least one row.
    pub(crate) fn buckets(&self) -> impl Iterator<Item = i64> + '_ {
        self.buckets.keys().copied()
    }

    fn add(&mut self, id: TokenId, fp: u64) {
        self.buckets.entry(bucket_of(id)).or_default().add(fp);
        self.total.add(fp);
    }

    fn sub(&mut self, id: TokenId, fp: u64) {
        let b = bucket_of(id);
        if let Some(s) = self.buckets.get_mut(&b) {
            s.sub(fp);
            if s.rows == 0 && s.sum == 0 {
                self.buckets.remove(&b);
            }
        }
        self.total.sub(fp);
    }

    /// The part of the sum `id` holds now: its odd fingerprint, else the fingerprint of the
    /// record `local` holds, else nothing (not installed).
    fn part(&self, local: &MemoryStore, id: TokenId) -> Option<u64> {
        if let Some(fp) = self.odd.get(&id) {
            return Some(*fp);
        }
        local.get(id).ok().flatten().map(|t| fingerprint(&t))
    }

    /// Installs `rows` and `deleted` into `local` (one write lock: see
    /// `MemoryStore::replicate`) and moves the sums with them. Returns the ids the copy left
    /// out (unreadable, or clashing with another record's name or hash).
    pub(crate) fn install(
        &mut self,
        local: &MemoryStore,
        rows: Vec<Row>,
        deleted: &[TokenId],
    ) -> Vec<TokenId> {
        let mut seen = HashSet::with_capacity(rows.len() + deleted.len());
        for id in deleted.iter().copied().chain(rows.iter().map(|r| r.id)) {
            if seen.insert(id) {
                if let Some(fp) = self.part(local, id) {
                    self.sub(id, fp);
                }
                self.odd.remove(&id);
            }
        }
        self.add_rows(local, rows, deleted)
    }

    /// [`Digest::install`] into a copy being loaded, which holds none of the rows' ids yet
    /// (they come from one query): nothing to take away first.
    pub(crate) fn load(&mut self, local: &MemoryStore, rows: Vec<Row>) -> Vec<TokenId> {
        self.add_rows(local, rows, &[])
    }

    /// Installs `rows` and `deleted` and adds the rows' parts (the old parts already taken
    /// away).
    fn add_rows(
        &mut self,
        local: &MemoryStore,
        rows: Vec<Row>,
        deleted: &[TokenId],
    ) -> Vec<TokenId> {
        let mut tokens = Vec::with_capacity(rows.len());
        let mut parts = Vec::with_capacity(rows.len());
        let mut left_out = Vec::new();
        for r in rows {
            parts.push((r.id, r.fingerprint));
            match r.token {
                Some(t) => {
                    if fingerprint(&t) != r.fingerprint {
                        self.odd.insert(r.id, r.fingerprint);
                    }
                    tokens.push(t);
                }
                None => {
                    self.odd.insert(r.id, r.fingerprint);
                    left_out.push(r.id);
                }
            }
        }
        // Unreadable rows: an older record of the same id goes too (fail closed).
        let mut gone = deleted.to_vec();
        gone.extend(left_out.iter().copied());
        let refused = local.replicate(tokens, &gone);
        if !refused.is_empty() {
            // Left out of the copy: their part of the sum is the database's, remembered.
            let refused: HashSet<TokenId> = refused.iter().copied().collect();
            for (id, fp) in &parts {
                if refused.contains(id) {
                    self.odd.insert(*id, *fp);
                    left_out.push(*id);
                }
            }
        }
        for (id, fp) in parts {
            self.add(id, fp);
        }
        left_out
    }

    /// Makes the buckets `repaired` hold exactly `rows`: every id of those buckets that the
    /// copy holds and `rows` does not is deleted, every row installed; the buckets' sums are
    /// then the rows' own. Returns the ids left out, as [`Digest::install`].
    pub(crate) fn repair(
        &mut self,
        local: &MemoryStore,
        repaired: &[i64],
        rows: Vec<Row>,
    ) -> Vec<TokenId> {
        let buckets: HashSet<i64> = repaired.iter().copied().collect();
        let present: HashSet<TokenId> = rows.iter().map(|r| r.id).collect();
        let mut stale: Vec<TokenId> = local
            .ids_where(|id| buckets.contains(&bucket_of(id)))
            .into_iter()
            .filter(|id| !present.contains(id))
            .collect();
        stale.extend(
            self.odd
                .keys()
                .filter(|id| buckets.contains(&bucket_of(**id)) && !present.contains(id))
                .copied(),
        );
        stale.sort_unstable();
        stale.dedup();
        let left_out = self.install(local, rows, &stale);
        // Whatever the sums held for these buckets before, they now hold what was read.
        self.recount(local, &buckets);
        left_out
    }

    /// Recomputes the sums of `buckets` from the copy (and the odd rows).
    fn recount(&mut self, local: &MemoryStore, buckets: &HashSet<i64>) {
        for b in buckets {
            if let Some(old) = self.buckets.remove(b) {
                self.total.rows -= old.rows;
                self.total.sum -= old.sum;
            }
        }
        let ids = local.ids_where(|id| buckets.contains(&bucket_of(id)));
        let mut counted = HashSet::with_capacity(ids.len());
        for id in ids {
            if let Some(fp) = self.part(local, id) {
                self.add(id, fp);
                counted.insert(id);
            }
        }
        let odd: Vec<(TokenId, u64)> = self
            .odd
            .iter()
            .filter(|(id, _)| buckets.contains(&bucket_of(**id)) && !counted.contains(id))
            .map(|(id, fp)| (*id, *fp))
            .collect();
        for (id, fp) in odd {
            self.add(id, fp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allowlist::IpAllowlist;
    use crate::keys::HashScheme;
    use crate::secret::SecretHash;
    use crate::token::{Expiry, SecretState, Status, TokenName, UserId};
    use time::OffsetDateTime;

    fn token(id: u64, name: &str, hash: u8) -> Token {
        Token {
            id: TokenId::new(id),
            name: TokenName::new(name).unwrap(),
            description: String::new(),
            owner: UserId::from(2),
            creator: UserId::from(1),
            status: Status::Enabled,
            created_at: OffsetDateTime::UNIX_EPOCH,
            expiry: Expiry::NEVER,
            permissions: "dns.*, mail.send".parse().unwrap(),
            allowlist: IpAllowlist::any(),
            last_use: None,
            secret: Some(SecretState {
                hash: SecretHash::from_bytes([hash; 32]),
                scheme: HashScheme::UNRECORDED,
                generated_at: OffsetDateTime::UNIX_EPOCH,
                previous: None,
            }),
            revision: 0,
            revoked: None,
            imported_from: None,
            limits: None,
            balance: None,
        }
    }

    /// A row as the crate writes it: its fingerprint is the record's.
    fn row(t: &Token) -> Row {
        Row {
            id: t.id,
            token: Some(t.clone()),
            fingerprint: fingerprint(t),
        }
    }

    fn sum(fps: &[u64]) -> Sum {
        let mut s = Sum::default();
        for fp in fps {
            s.add(*fp);
        }
        s
    }

    #[test]
    fn a_load_sums_like_installs() {
        let (a, b) = (token(1, "a", 1), token(2, "b", 2));
        let odd = Row {
            id: TokenId::new(3),
            token: None,
            fingerprint: 9,
        };
        let (one, two) = (MemoryStore::new(), MemoryStore::new());
        let (mut loaded, mut installed) = (Digest::default(), Digest::default());
        let left = loaded.load(&one, vec![row(&a), row(&b), odd]);
        let odd = Row {
            id: TokenId::new(3),
            token: None,
            fingerprint: 9,
        };
        assert_eq!(
            left,
            installed.install(&two, vec![row(&a), row(&b), odd], &[])
        );
        assert_eq!(loaded.total(), installed.total());
        assert_eq!(loaded.total(), sum(&[fingerprint(&a), fingerprint(&b), 9]));
        assert_eq!(one.len(), 2);
    }

    #[test]
    fn sums_follow_inserts_replacements_and_deletions() {
        let local = MemoryStore::new();
        let mut d = Digest::default();
        let (a, b) = (token(1, "a", 1), token(2_000, "b", 2));
        assert!(d.install(&local, vec![row(&a), row(&b)], &[]).is_empty());
        assert_eq!(d.total(), sum(&[fingerprint(&a), fingerprint(&b)]));
        assert_eq!(d.bucket(0), sum(&[fingerprint(&a)]));
        assert_eq!(d.bucket(1), sum(&[fingerprint(&b)]), "2000 >> 10 = 1");
        let mut a2 = a.clone();
        a2.status = Status::Disabled;
        assert_ne!(
            fingerprint(&a2),
            fingerprint(&a),
            "status is in the fingerprint"
        );
        d.install(&local, vec![row(&a2)], &[]);
        assert_eq!(d.total(), sum(&[fingerprint(&a2), fingerprint(&b)]));
        d.install(&local, vec![], &[b.id]);
        assert_eq!(d.total(), sum(&[fingerprint(&a2)]));
        assert_eq!(d.buckets().collect::<Vec<_>>(), vec![0]);
        // Deleting what is not there changes nothing.
        d.install(&local, vec![], &[TokenId::new(77)]);
        assert_eq!(d.total(), sum(&[fingerprint(&a2)]));
    }

    #[test]
    fn fields_outside_security_leave_the_fingerprint_alone() {
        let a = token(1, "a", 1);
        let mut b = a.clone();
        b.description = "other".into();
        b.revision = 9;
        b.name = TokenName::new("renamed").unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let mut c = a.clone();
        c.allowlist = "10.0.0.0/8".parse().unwrap();
        assert_ne!(fingerprint(&a), fingerprint(&c));
        let mut e = a.clone();
        e.expiry = Expiry::from_unix(1_000).unwrap();
        assert_ne!(fingerprint(&a), fingerprint(&e));
    }

    /// A row whose fingerprint in the database is not the record's (spelled otherwise) counts
    /// with the database's, also when it is replaced or deleted later.
    #[test]
    fn odd_rows_count_with_the_database_fingerprint() {
        let local = MemoryStore::new();
        let mut d = Digest::default();
        let a = token(1, "a", 1);
        let odd = Row {
            id: a.id,
            token: Some(a.clone()),
            fingerprint: 42,
        };
        d.install(&local, vec![odd], &[]);
        assert_eq!(d.total(), sum(&[42]));
        let mut a2 = a.clone();
        a2.status = Status::Disabled;
        d.install(&local, vec![row(&a2)], &[]);
        assert_eq!(
            d.total(),
            sum(&[fingerprint(&a2)]),
            "42 taken away, not the record's"
        );
        d.install(&local, vec![], &[a2.id]);
        assert_eq!(d.total(), Sum::default());
    }

    /// Rows the copy leaves out (unreadable, or clashing with another record's hash) count with
    /// the database's fingerprint: the copy deliberately differs there.
    #[test]
    fn rows_left_out_count_too() {
        let local = MemoryStore::new();
        let mut d = Digest::default();
        let a = token(1, "a", 1);
        let clash = token(2, "b", 1); // the same hash as `a`
        let unreadable = Row {
            id: TokenId::new(3),
            token: None,
            fingerprint: 5,
        };
        let left = d.install(&local, vec![row(&a), row(&clash), unreadable], &[]);
        assert_eq!(left, vec![TokenId::new(3), TokenId::new(2)]);
        assert!(local.get(TokenId::new(2)).unwrap().is_none());
        assert_eq!(d.total(), sum(&[fingerprint(&a), fingerprint(&clash), 5]));
        d.install(&local, vec![], &[TokenId::new(2), TokenId::new(3)]);
        assert_eq!(d.total(), sum(&[fingerprint(&a)]));
    }

    /// A repair makes the buckets it is given hold exactly the rows read: what the copy held
    /// there and the database does not is gone, changed rows are replaced, and the sums are
    /// the rows' own whatever they were before.
    #[test]
    fn a_repair_makes_buckets_exactly_the_rows_read() {
        let local = MemoryStore::new();
        let mut d = Digest::default();
        let (a, b, c) = (token(1, "a", 1), token(2, "b", 2), token(5_000, "c", 3));
        d.install(&local, vec![row(&a), row(&b), row(&c)], &[]);
        // The database changed behind the copy's back: `a` disabled, `b` deleted.
        let mut a2 = a.clone();
        a2.status = Status::Disabled;
        let left = d.repair(&local, &[0], vec![row(&a2)]);
        assert!(left.is_empty());
        assert_eq!(
            local.get(a.id).unwrap().map(|t| t.status),
            Some(Status::Disabled)
        );
        assert!(local.get(b.id).unwrap().is_none());
        assert!(
            local.get(c.id).unwrap().is_some(),
            "other buckets untouched"
        );
        assert_eq!(d.bucket(0), sum(&[fingerprint(&a2)]));
        assert_eq!(d.total(), sum(&[fingerprint(&a2), fingerprint(&c)]));
    }

    /// Many random changes (installs, replacements, deletions, odd spellings, unreadable rows):
    /// the sums always equal the sums over the rows as the database holds them.
    #[test]
    fn sums_equal_the_database_rows_after_any_sequence() {
        let local = MemoryStore::new();
        let mut d = Digest::default();
        let mut db: std::collections::BTreeMap<u64, u64> = Default::default();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for step in 0..2_000_u64 {
            let id = next() % 3_000;
            let t = token(id, &format!("t{id}"), (step % 251) as u8);
            match next() % 5 {
                0 => {
                    d.install(&local, vec![], &[t.id]);
                    db.remove(&id);
                }
                1 => {
                    let fp = next();
                    d.install(
                        &local,
                        vec![Row {
                            id: t.id,
                            token: Some(t),
                            fingerprint: fp,
                        }],
                        &[],
                    );
                    db.insert(id, fp);
                }
                2 => {
                    let fp = next();
                    d.install(
                        &local,
                        vec![Row {
                            id: t.id,
                            token: None,
                            fingerprint: fp,
                        }],
                        &[],
                    );
                    db.insert(id, fp);
                }
                _ => {
                    let r = row(&t);
                    db.insert(id, r.fingerprint);
                    d.install(&local, vec![r], &[]);
                }
            }
            let fps: Vec<u64> = db.values().copied().collect();
            assert_eq!(d.total(), sum(&fps), "step {step}");
        }
        for b in d.buckets().collect::<Vec<_>>() {
            let fps: Vec<u64> = db
                .iter()
                .filter(|(id, _)| bucket_of(TokenId::new(**id)) == b)
                .map(|(_, fp)| *fp)
                .collect();
            assert_eq!(d.bucket(b), sum(&fps));
        }
    }
}
