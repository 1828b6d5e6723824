//! A compact hash index from keys to slab slots: 8 bytes a bucket.
//!
//! `std`'s `HashMap<SecretHash, u32>` spends 36 bytes an entry and, at a million entries, twice
//! as many buckets; this table keeps only a 32-bit fragment of each key's hash and the slot,
//! and leaves the final comparison to the caller, who has the full key in the slot anyway.
//! Linear probing; deletion shifts entries back, so there are no tombstones.

const EMPTY: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Bucket {
    /// Low 32 bits of the key's hash; its home bucket is `frag & mask`.
    frag: u32,
    slot: u32,
}

const VACANT: Bucket = Bucket {
    frag: 0,
    slot: EMPTY,
};

pub(super) struct SlotIndex {
    buckets: Vec<Bucket>,
    len: usize,
}

impl Default for SlotIndex {
    fn default() -> Self {
        Self {
            buckets: vec![VACANT; 16],
            len: 0,
        }
    }
}

impl SlotIndex {
    fn mask(&self) -> usize {
        self.buckets.len() - 1
    }

    fn bucket(&self, i: usize) -> Bucket {
        self.buckets.get(i & self.mask()).copied().unwrap_or(VACANT)
    }

    fn set(&mut self, i: usize, b: Bucket) {
        let m = self.mask();
        if let Some(slot) = self.buckets.get_mut(i & m) {
            *slot = b;
        }
    }

    /// The slot whose key has hash fragment `frag` and for which `is_key` says yes.
    pub(super) fn find(&self, frag: u32, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        let mut i = frag as usize;
        loop {
            let b = self.bucket(i);
            if b.slot == EMPTY {
                return None;
            }
            if b.frag == frag && is_key(b.slot) {
                return Some(b.slot);
            }
            i = i.wrapping_add(1);
        }
    }

    /// Adds a key (the caller has checked it is not present).
    pub(super) fn insert(&mut self, frag: u32, slot: u32) {
        // Grow at 7/8 full so probe sequences stay short.
        if (self.len + 1) * 8 > self.buckets.len() * 7 {
            self.grow();
        }
        let mut i = frag as usize;
        while self.bucket(i).slot != EMPTY {
            i = i.wrapping_add(1);
        }
        self.set(i, Bucket { frag, slot });
        self.len += 1;
    }

    /// Removes the entry for `slot` under fragment `frag`, if present.
    pub(super) fn remove(&mut self, frag: u32, slot: u32) {
        let mask = self.mask();
        let mut i = frag as usize & mask;
        loop {
            let b = self.bucket(i);
            if b.slot == EMPTY {
                return;
            }
            if b.frag == frag && b.slot == slot {
                break;
            }
            i = (i + 1) & mask;
        }
        // Shift later entries of the run back into the hole when the hole is on their path.
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let b = self.bucket(j);
            if b.slot == EMPTY {
                break;
            }
            let home = b.frag as usize & mask;
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.set(hole, b);
                hole = j;
            }
        }
        self.set(hole, VACANT);
        self.len -= 1;
    }

    fn grow(&mut self) {
        let bigger = vec![VACANT; self.buckets.len() * 2];
        let old = std::mem::replace(&mut self.buckets, bigger);
        self.len = 0;
        for b in old.into_iter().filter(|b| b.slot != EMPTY) {
            self.insert(b.frag, b.slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};
    use std::collections::HashMap;

    /// The index agrees with a `HashMap` under random sequences of inserts and removes, with
    /// fragments drawn from a tiny range so that collisions and long runs are the rule. (Seeded
    /// `rand` rather than proptest: proptest lives in the `proptests/` member, and this index is
    /// private.)
    #[test]
    fn agrees_with_a_hashmap() {
        for seed in 0..300u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut index = SlotIndex::default();
            let mut model: HashMap<u32, u32> = HashMap::new(); // slot -> frag
            let ops = rng.random_range(0..400);
            for _ in 0..ops {
                let (insert, frag, slot) = (
                    rng.random_bool(0.5),
                    rng.random_range(0u32..64),
                    rng.random_range(0u32..40),
                );
                if insert && !model.contains_key(&slot) {
                    index.insert(frag, slot);
                    model.insert(slot, frag);
                } else if let Some(f) = model.remove(&slot) {
                    index.remove(f, slot);
                }
                for (&s, &f) in &model {
                    assert_eq!(index.find(f, |x| x == s), Some(s), "seed {seed}");
                }
                assert_eq!(index.len, model.len(), "seed {seed}");
            }
            for s in 0..40u32 {
                if !model.contains_key(&s) {
                    for f in 0..64 {
                        assert_eq!(index.find(f, |x| x == s), None, "seed {seed}");
                    }
                }
            }
        }
    }
}
