//! [`IntersectionMemo`]: the owner ∩ token intersection of large permission sets, remembered.

use std::sync::Mutex;

use super::PermissionSet;

/// Combined size up to which intersecting directly costs about what a lookup here would.
const SMALL: usize = 64;
/// How many intersections are remembered.
const CAPACITY: usize = 32;

struct Entry {
    token: PermissionSet,
    rights: PermissionSet,
    result: PermissionSet,
}

/// Remembers the last few intersections of large permission sets, keyed by the sets' identity
/// (their shared storage), so authenticating a token of many permissions whose owner lacks some
/// of them intersects once, not on every request.
///
/// Identity is enough and always safe: each entry holds its two sets, so their storage cannot be
/// freed and reused while the entry exists, and a set's contents never change. Stores that keep
/// one parsed set per token (both of ours) and directories that hand out the same set while a
/// user's rights are unchanged (a clone, as [`StaticDirectory`](crate::StaticDirectory) does) hit
/// it; anything else pays one linear intersection per request.
#[derive(Default)]
pub(crate) struct IntersectionMemo {
    entries: Mutex<Vec<Entry>>,
}

impl IntersectionMemo {
    /// `token ∩ rights`, from memory when this pair was intersected recently.
    pub(crate) fn intersection(
        &self,
        token: &PermissionSet,
        rights: &PermissionSet,
    ) -> PermissionSet {
        if token.len() + rights.len() <= SMALL {
            return token.intersection(rights);
        }
        let lock = || self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = lock()
            .iter()
            .find(|e| e.token.ptr_eq(token) && e.rights.ptr_eq(rights))
        {
            return e.result.clone();
        }
        let result = token.intersection(rights);
        let mut entries = lock();
        if entries.len() >= CAPACITY {
            entries.remove(0);
        }
        entries.push(Entry {
            token: token.clone(),
            rights: rights.clone(),
            result: result.clone(),
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permission::tests::counting;

    fn wildcards(n: usize, skip: usize) -> PermissionSet {
        (skip..n)
            .map(|i| format!("g{i}.*").parse().unwrap())
            .collect()
    }

    #[test]
    fn a_large_pair_is_intersected_once() {
        let memo = IntersectionMemo::default();
        let token = wildcards(10_000, 0);
        let rights = wildcards(10_000, 1);
        let (first, work) = counting(|| memo.intersection(&token, &rights));
        assert_eq!(first, rights);
        assert!(work > 0);
        for _ in 0..100 {
            let (again, work) = counting(|| memo.intersection(&token, &rights));
            assert_eq!(work, 0, "remembered");
            assert_eq!(again, first);
        }
        // Equal contents in other storage: computed again (and right).
        let copy = wildcards(10_000, 1);
        let (other, work) = counting(|| memo.intersection(&token, &copy));
        assert!(work > 0);
        assert_eq!(other, rights);
    }

    #[test]
    fn small_pairs_are_not_kept_and_the_memo_is_bounded() {
        let memo = IntersectionMemo::default();
        let a: PermissionSet = "a, b".parse().unwrap();
        let b: PermissionSet = "b".parse().unwrap();
        assert_eq!(memo.intersection(&a, &b), b);
        assert!(memo.entries.lock().unwrap().is_empty());
        let token = wildcards(100, 0);
        for i in 0..CAPACITY * 3 {
            let rights = wildcards(100, i % 50);
            assert_eq!(memo.intersection(&token, &rights), rights);
        }
        assert_eq!(memo.entries.lock().unwrap().len(), CAPACITY);
    }
}
