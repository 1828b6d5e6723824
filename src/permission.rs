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
///
/// Serialized as its name, and read from one (checked like [`Permission::new`]).
///
/// # Permissions known at compile time
/// [`permission!`](crate::permission!) checks a literal at compile time and builds the
/// permission without parsing or allocating, so a route's permission is a constant rather than
/// a parse on every request ([`Permission::from_static`] is the `const fn` beneath it):
///
/// ```
/// use api_tokens::{Permission, permission};
/// const REPORTS_READ: Permission = permission!("reports.read");
/// assert_eq!(REPORTS_READ, "reports.read".parse()?);
/// assert_eq!(permission!("all"), Permission::new("*")?);
/// # Ok::<(), api_tokens::ValidationError>(())
/// ```
///
/// A literal that breaks the rules does not compile:
///
/// ```compile_fail
/// const BAD: api_tokens::Permission = api_tokens::permission!("reports:*");
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission(Text);

/// A permission's text: borrowed for the life of the program (built at compile time) or owned
/// (parsed at run time). Compares, orders and hashes as the text, whichever it is.
#[derive(Clone)]
enum Text {
    Static(&'static str),
    Owned(Box<str>),
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Self::Static(s) => s,
            Self::Owned(s) => s,
        }
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Self::Owned(s.into())
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Text {}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    fn cmp(&self, other: &Self) -> Ordering {
        (**self).cmp(&**other)
    }
}

impl std::hash::Hash for Text {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

/// What the grammar check of a permission name found: one scan, usable at compile time.
#[derive(Clone, Copy)]
enum Scan {
    /// `*` or `all`.
    All,
    /// A valid name, kept as written.
    Valid,
    Empty,
    TooLong,
    EmptySegment,
    MisplacedWildcard,
    /// A byte outside `[A-Za-z0-9_:-]` at this position (a character boundary: every byte
    /// before it is ASCII).
    InvalidByte(usize),
}

const fn is_segment_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':')
}

const fn equals(a: &[u8], b: &[u8]) -> bool {
    let (mut a, mut b) = (a, b);
    loop {
        match (a, b) {
            ([], []) => return true,
            ([x, ra @ ..], [y, rb @ ..]) if *x == *y => {
                a = ra;
                b = rb;
            }
            _ => return false,
        }
    }
}

/// The wildcard rule (see [`Permission`]), segment by segment from the left; the first fault
/// found is the answer.
const fn scan(name: &[u8]) -> Scan {
    if name.is_empty() {
        return Scan::Empty;
    }
    if name.len() > MAX_PERMISSION_LEN {
        return Scan::TooLong;
    }
    if equals(name, b"*") || equals(name, b"all") {
        return Scan::All;
    }
    let mut rest = name;
    let mut pos = 0;
    loop {
        // One segment: up to the next `.` or the end, with its first byte outside the alphabet.
        let start = pos;
        let mut first_bad: Option<(usize, u8)> = None;
        while let [b, tail @ ..] = rest {
            if *b == b'.' {
                break;
            }
            if first_bad.is_none() && !is_segment_byte(*b) {
                first_bad = Some((pos, *b));
            }
            rest = tail;
            pos += 1;
        }
        let len = pos - start;
        if len == 0 {
            return Scan::EmptySegment;
        }
        match first_bad {
            // A lone `*` as the last segment is the wildcard; a `*` anywhere else is not.
            Some((_, b'*')) if len == 1 && rest.is_empty() => return Scan::Valid,
            Some((_, b'*')) => return Scan::MisplacedWildcard,
            Some((at, _)) => return Scan::InvalidByte(at),
            None => {}
        }
        match rest {
            [] => return Scan::Valid,
            // Step over the `.`; a name ending in a dot meets an empty segment next.
            [_, tail @ ..] => {
                rest = tail;
                pos += 1;
            }
        }
    }
}

impl Permission {
    /// `*`, built at compile time.
    const ALL: Self = Self(Text::Static("*"));

    /// Parses a permission name.
    ///
    /// # Errors
    /// Empty, longer than [`MAX_PERMISSION_LEN`], an empty segment, a character outside
    /// `[A-Za-z0-9_:-]`, or a `*` anywhere but as the whole name or the whole last segment.
    pub fn new(s: &str) -> Result<Self, ValidationError> {
        let err = |problem| Err(ValidationError::new(Field::Permissions, s, problem));
        match scan(s.as_bytes()) {
            Scan::All => Ok(Self::ALL),
            Scan::Valid => Ok(Self(s.into())),
            Scan::Empty => err(Problem::Empty),
            Scan::TooLong => err(Problem::TooLong {
                max: MAX_PERMISSION_LEN,
            }),
            Scan::EmptySegment => err(Problem::EmptySegment),
            Scan::MisplacedWildcard => err(Problem::MisplacedWildcard),
            Scan::InvalidByte(at) => err(Problem::InvalidCharacter {
                ch: s
                    .get(at..)
                    .and_then(|rest| rest.chars().next())
                    .unwrap_or(char::REPLACEMENT_CHARACTER),
            }),
        }
    }

    /// A permission from a name known at compile time, without allocating: `None` when the
    /// name breaks the rules of [`Permission::new`] (which says why). Usually written through
    /// [`permission!`](crate::permission!), which refuses a bad name at compile time.
    pub const fn from_static(name: &'static str) -> Option<Self> {
        match scan(name.as_bytes()) {
            Scan::All => Some(Self::ALL),
            Scan::Valid => Some(Self(Text::Static(name))),
            _ => None,
        }
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
/// # Text and serde
/// `FromStr` reads names separated by commas and/or whitespace (`"dns.*, mail.send"`; the
/// empty string is the empty set); `Display` writes them sorted, joined by `", "`. Serde
/// writes an array of names and reads an array, or (in human-readable formats such as JSON)
/// the same one string `FromStr` reads:
///
/// ```
/// use api_tokens::PermissionSet;
/// let a: PermissionSet = serde_json::from_str(r#"["mail.send", "dns.*"]"#)?;
/// let b: PermissionSet = serde_json::from_str(r#""dns.*, mail.send""#)?;
/// assert_eq!(a, b);
/// assert_eq!(serde_json::to_string(&a)?, r#"["dns.*","mail.send"]"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
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
        Self(Arc::from([Permission::ALL]))
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
        let p = p.as_bytes();
        // Most tokens hold a handful of permissions and most checks ask for one of them by
        // name: in a small set, a member of `p`'s length that equals it decides after one
        // length compare per member (cheaper than the search's ordered compares on the hot path).
        if self.0.len() <= SMALL_SET
            && self.0.iter().any(|m| {
                let m = m.as_str().as_bytes();
                m.len() == p.len() && m == p
            })
        {
            return true;
        }
        // The only member that can cover `p` is `p` itself or the greatest member before it
        // (see `drop_covered`): one binary search, which stops at `p` itself.
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

/// Sets this small are first scanned for an exact member (see `PermissionSet::allows`).
const SMALL_SET: usize = 8;

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
    /// An array of names; in human-readable formats also one string in the form `FromStr`
    /// reads (`"dns.*, mail.send"`).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            return Ok(Self::new(Vec::<Permission>::deserialize(d)?));
        }
        d.deserialize_any(ListVisitor {
            what: "an array of permission names, or one string of them separated by commas",
            from_str: |s: &str| s.parse::<Self>(),
            from_seq: |v: Vec<Permission>| Ok(Self::new(v)),
        })
    }
}

/// Reads a list as an array of items or as one comma-separated string (human-readable formats
/// only): shared by [`PermissionSet`] and [`IpAllowlist`](crate::IpAllowlist).
pub(crate) struct ListVisitor<T, I> {
    pub(crate) what: &'static str,
    pub(crate) from_str: fn(&str) -> Result<T, ValidationError>,
    pub(crate) from_seq: fn(Vec<I>) -> Result<T, ValidationError>,
}

impl<'de, T, I: Deserialize<'de>> serde::de::Visitor<'de> for ListVisitor<T, I> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        (self.from_str)(v).map_err(E::custom)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(128));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        (self.from_seq)(items).map_err(serde::de::Error::custom)
    }
}

/// A [`Permission`] from a string literal, checked at compile time: no parsing and no
/// allocation at run time, and a name that breaks [the rules](Permission#the-wildcard-rule) is
/// a compile error.
///
/// ```
/// use api_tokens::{Permission, permission};
/// static DNS_EDIT: Permission = permission!("dns.edit");
/// assert!(permission!("dns.*").covers(&DNS_EDIT));
/// ```
#[macro_export]
macro_rules! permission {
    ($name:literal) => {
        const {
            // `expect` rather than a `match`: a `const` may not drop the `Option` a match leaves.
            $crate::Permission::from_static($name).expect(::core::concat!(
                "invalid permission ",
                ::core::stringify!($name),
                ": see the rules in the docs of api_tokens::Permission"
            ))
        }
    };
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
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
    fn each_fault_has_its_own_problem() {
        let problem = |s: &str| Permission::new(s).unwrap_err().problem;
        for (bad, expected) in [
            ("", Problem::Empty),
            ("dns..edit", Problem::EmptySegment),
            (".dns", Problem::EmptySegment),
            ("dns.", Problem::EmptySegment),
            ("reports:*", Problem::MisplacedWildcard),
            ("*.dns", Problem::MisplacedWildcard),
            ("dns*", Problem::MisplacedWildcard),
            ("dns.*.edit", Problem::MisplacedWildcard),
            ("dns.*.", Problem::MisplacedWildcard),
            ("a b*", Problem::InvalidCharacter { ch: ' ' }),
            ("ok.é", Problem::InvalidCharacter { ch: 'é' }),
            ("dns.ed*t", Problem::MisplacedWildcard),
        ] {
            assert_eq!(problem(bad), expected, "{bad:?}");
        }
        assert_eq!(
            problem(&"a".repeat(MAX_PERMISSION_LEN + 1)),
            Problem::TooLong {
                max: MAX_PERMISSION_LEN
            }
        );
    }

    #[test]
    fn misplaced_wildcards_are_told_where_the_star_goes() {
        let msg = |s: &str| Permission::new(s).unwrap_err().to_string();
        let rule = "has a wildcard in the wrong place: \"*\" is either the whole permission or \
                    its whole last segment";
        assert_eq!(
            msg("reports:*"),
            format!("permission \"reports:*\" {rule}, as in \"reports.*\"")
        );
        assert_eq!(
            msg("dns.*.edit"),
            format!("permission \"dns.*.edit\" {rule}, as in \"dns.*\"")
        );
        assert_eq!(
            msg("dns..edit"),
            "permission \"dns..edit\" has an empty segment (segments are separated by single \
             dots, none at either end)"
        );
    }

    #[test]
    fn compile_time_permissions_equal_parsed_ones() {
        const P: Permission = crate::permission!("dns.edit");
        assert_eq!(P, p("dns.edit"));
        assert_eq!(
            crate::permission!("all"),
            PermissionSet::all().iter().next().unwrap().clone()
        );
        assert!(crate::permission!("dns.*").covers(&P));
        let set = PermissionSet::new([P.clone(), p("mail.send")]);
        assert!(
            set.allows(&P),
            "a static permission finds a parsed one by binary search"
        );
        use std::collections::hash_map::DefaultHasher;
        use std::hash::{Hash, Hasher};
        let h = |x: &Permission| {
            let mut s = DefaultHasher::new();
            x.hash(&mut s);
            s.finish()
        };
        assert_eq!(h(&P), h(&p("dns.edit")), "hashes as its text");
        for bad in ["", "a b", "dns.", "reports:*", "é"] {
            let leaked: &'static str = Box::leak(bad.to_owned().into_boxed_str());
            assert!(Permission::from_static(leaked).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn sets_read_an_array_or_a_comma_string() {
        let a: PermissionSet = serde_json::from_str(r#"["b", "a.*"]"#).unwrap();
        let b: PermissionSet = serde_json::from_str(r#""a.*, b""#).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            serde_json::from_str::<PermissionSet>(r#""""#).unwrap(),
            PermissionSet::empty()
        );
        let err = serde_json::from_str::<PermissionSet>(r#""a b*""#).unwrap_err();
        assert!(err.to_string().contains("wrong place"), "{err}");
        assert!(serde_json::from_str::<PermissionSet>("5").is_err());
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

    /// The hostile shape a caller may send: many wildcards, none covering another, and as many
    /// names each covered by one of them.
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
}
