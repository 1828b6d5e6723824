//! Permissions (cPanel's ACL privileges) and sets of them.
//!

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Field, Problem, ValidationError};

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

    fn covers_str(&self, other: &str) -> bool {
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

    /// Builds a normalised set.
    pub fn new(perms: impl IntoIterator<Item = Permission>) -> Self {
        let mut v: Vec<Permission> = perms.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        let reduced: Vec<Permission> = v
            .iter()
            .filter(|p| !v.iter().any(|q| q != *p && q.covers(p)))
            .cloned()
            .collect();
        Self(reduced.into())
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
        // Exact members first (binary search), then the few wildcards.
        self.0.binary_search_by(|m| (*m.0).cmp(p)).is_ok()
            || self.0.iter().any(|m| m.is_wildcard() && m.covers_str(p))
    }

    /// Whether every member of `self` is covered by `other` (`self <= other`).
    pub fn is_subset(&self, other: &PermissionSet) -> bool {
        other.is_all() || self.0.iter().all(|p| other.allows(p))
    }

    /// The members of `self` that `other` does not cover (what an actor holding `other` may not
    /// grant).
    pub fn not_covered_by(&self, other: &PermissionSet) -> PermissionSet {
        PermissionSet::new(self.0.iter().filter(|p| !other.allows(p)).cloned())
    }

    /// What both sets allow.
    pub fn intersection(&self, other: &PermissionSet) -> PermissionSet {
        if self.is_subset(other) {
            return self.clone();
        }
        if other.is_subset(self) {
            return other.clone();
        }
        let mut out = Vec::new();
        for (a, b) in [(self, other), (other, self)] {
            out.extend(a.0.iter().filter(|p| b.allows(p)).cloned());
        }
        PermissionSet::new(out)
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
    /// Comma- or whitespace-separated names; an empty string is the empty set.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(list_items(s))
    }
}

/// The items of a comma- or whitespace-separated list, as `FromStr` of lists reads them.
pub(crate) fn list_items(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|item| !item.is_empty())
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
mod tests {
    use super::*;

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
}
