//! Permissions (cPanel's ACL privileges) and sets of them.
//!

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Field, Problem, ValidationError};

mod memo;

pub(crate) use memo::IntersectionMemo;

/// The longest permission name, in bytes.
pub const MAX_PERMISSION_LEN: usize = 128;

/// A validated permission name.
///
/// # The wildcard rule
/// A permission is a name made of segments separated by `.`; each segment is one or more of
/// `[A-Za-z0-9_:-]`, so cPanel ACL names such as `kill-acct` and `create-acct` are permissions as
/// they are. Two forms are wildcards:
/// * `*` (also written `all`, cPanel's name for it) covers every permission;
/// * a last segment `*` (`dns.*`) covers every permission that starts with `dns.` — `dns.edit`,
///   `dns.zone.read`, `dns.zone.*` — but not `dns` itself.
///
/// *Covers* is the only relation: holding `dns.*` allows `dns.edit` and allows granting it;
/// holding `dns.edit` never allows `dns.*`. A [`PermissionSet`] drops members another member
/// already covers (`{dns.*, dns.edit}` is `{dns.*}`), so two sets that allow the same things
/// are equal.
///
/// ```
/// use api_tokens::Permission;
/// let p: Permission = "dns.*".parse()?;
/// assert!(p.covers(&"dns.edit".parse()?));
/// assert!(!"dns.edit".parse::<Permission>()?.covers(&p));
/// assert_eq!("all".parse::<Permission>()?.to_string(), "*");
/// # Ok::<(), api_tokens::ValidationError>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission(Box<str>);

impl Permission {
    /// Parses a permission name.
    ///
    /// # Errors
    /// Empty, longer than [`MAX_PERMISSION_LEN`], an empty segment, a character outside
    /// `[A-Za-z0-9_:-]`, or a `*` anywhere but as the whole name or the whole last segment.
    pub fn new(s: &str) -> Result<Self, ValidationError> {
        let err = |problem| ValidationError::new(Field::Permissions, s, problem);
        if s.is_empty() {
            return Err(err(Problem::Empty));
        }
        if s.len() > MAX_PERMISSION_LEN {
            return Err(err(Problem::TooLong {
                max: MAX_PERMISSION_LEN,
            }));
        }
        if s == "*" || s == "all" {
            return Ok(Self("*".into()));
        }
        let mut segments = s.split('.').peekable();
        while let Some(seg) = segments.next() {
            let last = segments.peek().is_none();
            if seg.is_empty() {
                return Err(err(Problem::Syntax {
                    expected: "dot-separated non-empty segments",
                }));
            }
            if seg == "*" && last {
                continue;
            }
            if let Some(ch) = seg
                .chars()
                .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':')))
            {
                return Err(err(if ch == '*' {
                    Problem::Syntax {
                        expected: "a wildcard only as the whole last segment",
                    }
                } else {
                    Problem::InvalidCharacter { ch }
                }));
            }
        }
        Ok(Self(s.into()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `*`: every permission.
    pub fn is_all(&self) -> bool {
        &*self.0 == "*"
    }

    /// `*` or a name ending in `.*`.
    pub fn is_wildcard(&self) -> bool {
        self.0.ends_with('*')
    }

    /// Whether holding `self` allows `other` (and allows granting it).
    pub fn covers(&self, other: &Permission) -> bool {
        self.covers_str(&other.0)
    }

    /// [`Permission::covers`] of a name's bytes (`other` is a permission's text).
    fn covers_bytes(&self, other: &[u8]) -> bool {
        #[cfg(test)]
        tests::count_cover();
        let me = self.0.as_bytes();
        if me == other || self.is_all() {
            return true;
        }
        match me.strip_suffix(b"*") {
            // `dns.*` -> stem `dns.`; covers anything longer that starts with it.
            Some(stem) => other.len() > stem.len() && other.starts_with(stem),
            None => false,
        }
    }

    fn covers_str(&self, other: &str) -> bool {
        #[cfg(test)]
        tests::count_cover();
        if *self.0 == *other || self.is_all() {
            return true;
        }
        match self.0.strip_suffix('*') {
            // `dns.*` -> stem `dns.`; covers anything longer that starts with it.
            Some(stem) => other.len() > stem.len() && other.starts_with(stem),
            None => false,
        }
    }
}

impl FromStr for Permission {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<&str> for Permission {
    type Error = ValidationError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Permission({:?})", &*self.0)
    }
}

impl Serialize for Permission {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// A set of permissions: sorted, without duplicates or members covered by another member.
///
/// Compares as sets: `a <= b` means "everything `a` allows, `b` allows", i.e. an actor holding
/// `b` may grant `a`. Cloning is cheap (shared).
///
/// ```
/// use api_tokens::PermissionSet;
/// let held: PermissionSet = "dns.*, create-acct".parse()?;
/// let asked: PermissionSet = "dns.edit".parse()?;
/// assert!(asked <= held);
/// assert!(!held.is_subset(&asked));
/// assert_eq!(held.intersection(&"dns.zone, kill-acct".parse()?).to_string(), "dns.zone");
/// # Ok::<(), api_tokens::ValidationError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct PermissionSet(Arc<[Permission]>);

impl PermissionSet {
    /// The empty set: allows nothing.
    pub fn empty() -> Self {
        Self::default()
    }

    /// `{*}`: allows everything.
    pub fn all() -> Self {
        Self(Arc::from([Permission("*".into())]))
    }

    /// Builds a normalised set: sorted, without duplicates or covered members. O(n log n).
    pub fn new(perms: impl IntoIterator<Item = Permission>) -> Self {
        let mut v: Vec<Permission> = perms.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        Self(drop_covered(v).into())
    }

    /// Parses each string.
    ///
    /// # Errors
    /// The first invalid permission.
    pub fn parse<I, S>(perms: I) -> Result<Self, ValidationError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let v = perms
            .into_iter()
            .map(|s| Permission::new(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(v))
    }

    /// The members, sorted.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Permission> {
        self.0.iter()
    }

    /// An equal set in storage of its own: a clone of it touches no reference count that
    /// clones of `self` touch (per-thread copies on the authentication hot path).
    pub(crate) fn unshared(&self) -> Self {
        Self(self.0.iter().cloned().collect())
    }

    /// How many handles share this set's storage (for interning stores).
    pub(crate) fn ref_count(&self) -> usize {
        Arc::strong_count(&self.0)
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty (allows nothing).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the set is `{*}`.
    pub fn is_all(&self) -> bool {
        self.0.first().is_some_and(Permission::is_all)
    }

    /// Whether a member covers `p`.
    pub fn allows(&self, p: &Permission) -> bool {
        self.allows_str(p.as_str())
    }

    fn allows_str(&self, p: &str) -> bool {
        // The only member that can cover `p` is `p` itself or the greatest member before it
        // (see `drop_covered`): one binary search, which stops at `p` itself.
        let p = p.as_bytes();
        match self
            .0
            .binary_search_by(|m| cmp_names(m.as_str().as_bytes(), p))
        {
            Ok(_) => true,
            Err(i) => i
                .checked_sub(1)
                .and_then(|i| self.0.get(i))
                .is_some_and(|m| m.covers_bytes(p)),
        }
    }

    /// Whether both handles share one allocation (so they are equal without comparing).
    pub(crate) fn ptr_eq(&self, other: &PermissionSet) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Whether every member of `self` is covered by `other` (`self <= other`). O(n + m).
    pub fn is_subset(&self, other: &PermissionSet) -> bool {
        if self.ptr_eq(other) || other.is_all() {
            return true;
        }
        let mut cover = Cursor::new(&other.0);
        self.0.iter().all(|p| cover.covers(p))
    }

    /// The members of `self` that `other` does not cover (what an actor holding `other` may not
    /// grant). O(n + m).
    pub fn not_covered_by(&self, other: &PermissionSet) -> PermissionSet {
        let mut cover = Cursor::new(&other.0);
        let missing: Vec<Permission> = self
            .0
            .iter()
            .filter(|p| !cover.covers(p))
            .cloned()
            .collect();
        // A part of a normalised set is normalised.
        Self(missing.into())
    }

    /// What both sets allow. O(n + m); when one set is within the other, the result shares
    /// its storage (and nothing is allocated).
    pub fn intersection(&self, other: &PermissionSet) -> PermissionSet {
        if self.is_subset(other) {
            return self.clone();
        }
        if other.is_subset(self) {
            return other.clone();
        }
        // The members of each that the other covers, merged in order. No member of one part
        // strictly covers a member of the other (one of the inputs would not be normalised),
        // so the merge is the normalised result.
        let (a, b): (&[Permission], &[Permission]) = (&self.0, &other.0);
        let (mut in_a, mut in_b) = (Cursor::new(a), Cursor::new(b));
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        loop {
            let next = match (a.get(i), b.get(j)) {
                (None, None) => break,
                (Some(x), None) => {
                    i += 1;
                    in_b.covers(x).then_some(x)
                }
                (None, Some(y)) => {
                    j += 1;
                    in_a.covers(y).then_some(y)
                }
                (Some(x), Some(y)) => match x.cmp(y) {
                    Ordering::Equal => {
                        i += 1;
                        j += 1;
                        Some(x)
                    }
                    Ordering::Less => {
                        i += 1;
                        in_b.covers(x).then_some(x)
                    }
                    Ordering::Greater => {
                        j += 1;
                        in_a.covers(y).then_some(y)
                    }
                },
            };
            if let Some(p) = next {
                out.push(p.clone());
            }
        }
        Self(out.into())
    }
}

/// The order of `str` (bytewise), eight bytes at a time and without a call: permission names
/// are short, and `memcmp`'s call was most of a permission check.
#[inline]
fn cmp_names(a: &[u8], b: &[u8]) -> Ordering {
    let word = |s: &[u8], at: usize| {
        s.get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map(u64::from_be_bytes)
    };
    let mut at = 0;
    while let (Some(x), Some(y)) = (word(a, at), word(b, at)) {
        if x != y {
            return x.cmp(&y);
        }
        at += 8;
    }
    let (a, b) = (
        a.get(at..).unwrap_or_default(),
        b.get(at..).unwrap_or_default(),
    );
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// Drops the members another member covers, from a sorted list without duplicates, in one
/// pass.
///
/// Why one pass is enough: `*` is the smallest character a permission may hold, so a wildcard
/// `stem*` sorts right before everything it covers, and what it covers (every name that starts
/// with `stem`) is one contiguous run. So the only member that can cover a name is the last
/// wildcard kept before it; a wildcard inside a kept wildcard's run is covered itself.
fn drop_covered(sorted: Vec<Permission>) -> Vec<Permission> {
    let mut out: Vec<Permission> = Vec::with_capacity(sorted.len());
    let mut last_wildcard: Option<usize> = None;
    for p in sorted {
        if last_wildcard
            .and_then(|i| out.get(i))
            .is_some_and(|w| w.covers(&p))
        {
            continue;
        }
        if p.is_wildcard() {
            last_wildcard = Some(out.len());
        }
        out.push(p);
    }
    out
}

/// Walks a normalised set alongside the ascending members of another, answering "is this one
/// covered?" for each in amortised constant time: the candidate cover of a name is the greatest
/// member at or before it (see [`drop_covered`]), and that only moves forward.
struct Cursor<'a> {
    set: &'a [Permission],
    next: usize,
}

impl<'a> Cursor<'a> {
    fn new(set: &'a [Permission]) -> Self {
        Self { set, next: 0 }
    }

    /// Whether the set covers `p`; `p` must not be smaller than the previous call's.
    fn covers(&mut self, p: &Permission) -> bool {
        while self.set.get(self.next).is_some_and(|m| m <= p) {
            self.next += 1;
        }
        self.next
            .checked_sub(1)
            .and_then(|i| self.set.get(i))
            .is_some_and(|m| m.covers(p))
    }
}

impl PartialOrd for PermissionSet {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (self.is_subset(other), other.is_subset(self)) {
            (true, true) => Some(Ordering::Equal),
            (true, false) => Some(Ordering::Less),
            (false, true) => Some(Ordering::Greater),
            (false, false) => None,
        }
    }
}

impl FromStr for PermissionSet {
    type Err = ValidationError;
    /// Comma- or whitespace-separated names; a blank string is the empty set. An empty item
    /// between commas (`"a,,b"`, `" , "`, `"a,"`) is an error, never skipped.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(list_items(s, Field::Permissions)?)
    }
}

/// The items of a comma- or whitespace-separated list, as `FromStr` of lists reads them: commas
/// and runs of whitespace separate items, a blank string is the empty list, and an empty item
/// between commas is an error (so `" , "` never reads as an empty list).
///
/// # Errors
/// [`Problem::EmptyItem`] naming the whole list.
pub(crate) fn list_items(s: &str, field: Field) -> Result<Vec<&str>, ValidationError> {
    let mut items = Vec::new();
    if s.trim().is_empty() {
        return Ok(items);
    }
    for piece in s.split(',') {
        let before = items.len();
        items.extend(piece.split_whitespace());
        if items.len() == before {
            return Err(ValidationError::new(field, s, Problem::EmptyItem));
        }
    }
    Ok(items)
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        Self::new(iter)
    }
}

impl fmt::Display for PermissionSet {
    /// Members joined by `", "`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(p.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.0.iter().map(|p| p.as_str()))
            .finish()
    }
}

impl Serialize for PermissionSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

impl<'de> Deserialize<'de> for PermissionSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::new(Vec::<Permission>::deserialize(d)?))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::Cell;

    thread_local! {
        static COVERS: Cell<u64> = const { Cell::new(0) };
    }

    /// Counts one `covers` test (the unit of work of every set operation) on this thread.
    pub(crate) fn count_cover() {
        COVERS.with(|c| c.set(c.get() + 1));
    }

    /// How many `covers` tests this thread has run.
    pub(crate) fn covers_calls() -> u64 {
        COVERS.with(Cell::get)
    }

    /// `f`'s result and the `covers` tests it ran.
    pub(crate) fn counting<T>(f: impl FnOnce() -> T) -> (T, u64) {
        let before = covers_calls();
        let out = f();
        (out, covers_calls() - before)
    }

    fn p(s: &str) -> Permission {
        Permission::new(s).unwrap()
    }
    fn set(s: &str) -> PermissionSet {
        s.parse().unwrap()
    }

    #[test]
    fn names_accepted_and_refused() {
        for ok in [
            "kill-acct",
            "create-acct",
            "dns.edit",
            "dns.*",
            "*",
            "all",
            "repo:read",
            "a_b",
        ] {
            assert!(Permission::new(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(MAX_PERMISSION_LEN + 1);
        for bad in [
            "",
            " ",
            "a b",
            "tab\t",
            "nl\n",
            "\u{7}",
            "dns..edit",
            ".dns",
            "dns.",
            "*.dns",
            "dns*",
            "dns.*.edit",
            "é",
            long.as_str(),
        ] {
            assert!(Permission::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn wildcard_rule_is_one_way() {
        assert!(p("dns.*").covers(&p("dns.edit")));
        assert!(p("dns.*").covers(&p("dns.zone.*")));
        assert!(!p("dns.*").covers(&p("dns")));
        assert!(!p("dns.*").covers(&p("dnsx.edit")));
        assert!(!p("dns.edit").covers(&p("dns.*")));
        assert!(p("*").covers(&p("anything.at.all")));
        assert!(!p("kill-acct").covers(&p("kill-acct2")));
        assert!(set("dns.edit") <= set("dns.*"));
        assert!(!set("dns.*").is_subset(&set("dns.edit")));
    }

    #[test]
    fn sets_normalise() {
        assert_eq!(set("b, a, a").to_string(), "a, b");
        assert_eq!(set("dns.edit, dns.*"), set("dns.*"));
        assert_eq!(set("kill-acct, all"), PermissionSet::all());
        assert!(set("").is_empty());
        assert!(!PermissionSet::empty().allows(&p("x")));
    }

    #[test]
    fn allows_exact_and_wildcard_members() {
        let s = set("create-acct, dns.*");
        assert!(s.allows(&p("create-acct")));
        assert!(s.allows(&p("dns.edit")));
        assert!(!s.allows(&p("kill-acct")));
        assert!(PermissionSet::all().allows(&p("kill-acct")));
    }

    #[test]
    fn order_and_intersection() {
        assert_eq!(set("a").partial_cmp(&set("b")), None, "incomparable sets");
        assert_eq!(set("a").partial_cmp(&set("a, b")), Some(Ordering::Less));
        assert_eq!(
            set("dns.*").intersection(&set("dns.edit, mail.*")),
            set("dns.edit")
        );
        assert_eq!(set("a, b").intersection(&set("b, c")), set("b"));
        assert_eq!(
            set("a.*, b").not_covered_by(&set("a.x, b")).to_string(),
            "a.*"
        );
    }

    /// The hostile shape of issue 17: many wildcards, none covering another, and as many names
    /// each covered by one of them.
    fn wildcards_and_covered(n: usize) -> Vec<Permission> {
        (0..n)
            .flat_map(|i| [p(&format!("g{i}.*")), p(&format!("g{i}.edit"))])
            .collect()
    }

    #[test]
    fn normalising_tests_each_member_once() {
        let n = 20_000;
        let input = wildcards_and_covered(n);
        let (set, work) = counting(|| PermissionSet::new(input));
        assert_eq!(set.len(), n, "every covered name dropped");
        assert!(set.iter().all(Permission::is_wildcard));
        // Pairwise normalising (the old way) ran n² tests here.
        assert!(
            work <= 2 * n as u64,
            "{work} covers tests for {} members",
            2 * n
        );
    }

    #[test]
    fn set_operations_are_linear() {
        let n = 20_000;
        let names: Vec<Permission> = (0..n).map(|i| p(&format!("g{i}.*"))).collect();
        let all = PermissionSet::new(names.clone());
        let fewer = PermissionSet::new(names.iter().skip(1).cloned());
        let covered = PermissionSet::new((0..n).map(|i| p(&format!("g{i}.edit"))));
        let bound = 2 * n as u64;

        let (yes, work) = counting(|| fewer.is_subset(&all));
        assert!(yes);
        assert!(work <= bound, "subset: {work}");
        let (no, work) = counting(|| all.is_subset(&fewer));
        assert!(!no);
        assert!(work <= bound, "subset: {work}");
        let (i, work) = counting(|| all.intersection(&fewer));
        assert_eq!(i, fewer);
        assert!(work <= 2 * bound, "intersection: {work}");
        let (i, work) = counting(|| covered.intersection(&fewer));
        assert_eq!(i.len(), n - 1);
        assert!(work <= 2 * bound, "intersection: {work}");
        let (missing, work) = counting(|| all.not_covered_by(&fewer));
        assert_eq!(missing.to_string(), "g0.*");
        assert!(work <= bound, "not_covered_by: {work}");
        // One test per lookup, however many wildcards the set holds.
        let (hit, work) = counting(|| all.allows(&p("g19999.zone.edit")));
        assert!(hit);
        assert!(work <= 1, "allows: {work}");
        let (hit, work) = counting(|| all.allows(&p("h.edit")));
        assert!(!hit);
        assert!(work <= 1, "allows: {work}");
    }

    #[test]
    fn an_intersection_within_one_side_shares_its_storage() {
        let big = set("a.*, b.*, c");
        let small = set("a.x, c");
        assert!(big.intersection(&small).ptr_eq(&small));
        assert!(small.intersection(&big).ptr_eq(&small));
        assert!(PermissionSet::all().intersection(&big).ptr_eq(&big));
    }

    #[test]
    fn empty_items_between_commas_are_refused() {
        for bad in [" , ", ",", "a,,b", "a,", ",a", "a, ,b"] {
            let e = bad.parse::<PermissionSet>().unwrap_err();
            assert_eq!(e.problem, Problem::EmptyItem, "{bad:?}");
            assert_eq!(e.value, bad);
        }
        assert!("".parse::<PermissionSet>().unwrap().is_empty());
        assert!("  ".parse::<PermissionSet>().unwrap().is_empty());
        assert_eq!(set("a , b c,d").to_string(), "a, b, c, d");
    }

    /// The obvious definitions, pairwise: what the fast operations must agree with.
    mod naive {
        use super::*;

        pub fn normalise(v: &[Permission]) -> Vec<Permission> {
            let mut out: Vec<Permission> = v
                .iter()
                .filter(|x| !v.iter().any(|y| y != *x && y.covers(x)))
                .cloned()
                .collect();
            out.sort();
            out.dedup();
            out
        }

        pub fn allows(set: &[Permission], q: &Permission) -> bool {
            set.iter().any(|m| m.covers(q))
        }
    }

    /// Names over characters on both sides of `*` and `.` in sort order (`-` `0` `:` `_` `a`),
    /// where an ordering mistake would show.
    fn tricky_perm() -> impl Strategy<Value = Permission> {
        prop_oneof![
            1 => Just(p("*")),
            4 => "[-0:_a]{1,2}(\\.[-0:_a]{1,2}){0,2}".prop_map(|s| p(&s)),
            4 => "[-0:_a]{1,2}(\\.[-0:_a]{1,2}){0,1}\\.\\*".prop_map(|s| p(&s)),
        ]
    }

    proptest! {
        #[test]
        fn fast_operations_agree_with_the_pairwise_definitions(
            a in prop::collection::vec(tricky_perm(), 0..12),
            b in prop::collection::vec(tricky_perm(), 0..12),
            q in tricky_perm(),
        ) {
            let sa = PermissionSet::new(a.clone());
            let sb = PermissionSet::new(b.clone());
            prop_assert_eq!(sa.iter().cloned().collect::<Vec<_>>(), naive::normalise(&a));
            prop_assert_eq!(sa.allows(&q), naive::allows(&a, &q));
            let subset = a.iter().all(|x| naive::allows(&b, x));
            prop_assert_eq!(sa.is_subset(&sb), subset);
            let both: Vec<Permission> = a
                .iter()
                .chain(&b)
                .filter(|x| naive::allows(&a, x) && naive::allows(&b, x))
                .cloned()
                .collect();
            prop_assert_eq!(
                sa.intersection(&sb).iter().cloned().collect::<Vec<_>>(),
                naive::normalise(&both)
            );
            let missing: Vec<Permission> =
                sa.iter().filter(|x| !naive::allows(&b, x)).cloned().collect();
            prop_assert_eq!(sa.not_covered_by(&sb).iter().cloned().collect::<Vec<_>>(), missing);
        }
    }

    fn perm_strategy() -> impl Strategy<Value = Permission> {
        prop_oneof![
            Just(p("*")),
            "[a-c]{1,2}(\\.[a-c]{1,2}){0,2}".prop_map(|s| p(&s)),
            "[a-c]{1,2}(\\.[a-c]{1,2}){0,1}\\.\\*".prop_map(|s| p(&s)),
        ]
    }

    fn set_strategy() -> impl Strategy<Value = PermissionSet> {
        prop::collection::vec(perm_strategy(), 0..5).prop_map(PermissionSet::new)
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,200}") {
            let _ = Permission::new(&s);
            let _ = s.parse::<PermissionSet>();
        }

        #[test]
        fn display_roundtrips(s in set_strategy()) {
            prop_assert_eq!(s.to_string().parse::<PermissionSet>().unwrap(), s.clone());
            let json = serde_json::to_string(&s).unwrap();
            prop_assert_eq!(serde_json::from_str::<PermissionSet>(&json).unwrap(), s);
        }

        #[test]
        fn normalising_twice_changes_nothing(s in set_strategy()) {
            prop_assert_eq!(PermissionSet::new(s.iter().cloned()), s);
        }

        #[test]
        fn subset_is_transitive(a in set_strategy(), b in set_strategy(), c in set_strategy()) {
            if a <= b && b <= c {
                prop_assert!(a <= c);
            }
        }

        #[test]
        fn order_is_consistent_with_eq(a in set_strategy(), b in set_strategy()) {
            prop_assert_eq!(a <= b && b <= a, a == b);
        }

        #[test]
        fn intersection_is_within_both(a in set_strategy(), b in set_strategy(), q in perm_strategy()) {
            let i = a.intersection(&b);
            prop_assert!(i <= a && i <= b);
            prop_assert_eq!(i.allows(&q), a.allows(&q) && b.allows(&q));
        }
    }
}
