//! The filter language of listings: [`Query`] (filters, sort, limit), its reference semantics
//! ([`Query::matches`]) and [`QueryMatcher`], the form stores that filter in memory use. SQL
//! stores translate a query and must agree with [`Query::matches`].

use std::cmp::Ordering;
use std::collections::HashSet;

use time::{Duration, OffsetDateTime};

use super::TextSearch;
use crate::token::{Expiry, Status, Token, TokenId, TokenName, UserId};

/// A half-open time range `[from, until)`; either end may be open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Inclusive start.
    pub from: Option<OffsetDateTime>,
    /// Exclusive end.
    pub until: Option<OffsetDateTime>,
}

impl TimeRange {
    /// Whether `t` is inside.
    pub fn contains(&self, t: OffsetDateTime) -> bool {
        self.from.is_none_or(|f| f <= t) && self.until.is_none_or(|u| t < u)
    }
}

/// What to sort a listing by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SortField {
    /// Token id (the default).
    Id,
    /// Name.
    Name,
    /// Creation time.
    Created,
    /// Expiry; never-expiring tokens sort after all others.
    Expiry,
    /// Last use; never-used tokens sort before all others.
    LastUsed,
    /// Status; enabled before disabled.
    Status,
    /// Expiry, never-expiring tokens sorting *before* all others — the order of a column that
    /// stores "never" as `0` (Zabbix `sortfield: expires_at`).
    ExpiryNeverFirst,
}

/// Sort direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// Smallest first.
    #[default]
    Ascending,
    /// Largest first.
    Descending,
}

/// Filters, sort and limit for listing tokens (Zabbix `token.get`, the *API tokens* screen's
/// filters). Every filter that is set must match; an unset filter matches everything.
///
/// The list filters (`ids`, `owners`, `creators`) cost O(n + k) for n tokens and k values in
/// both stores (hash sets, not list scans), and [`Tokens::list`](crate::Tokens::list) and
/// [`Tokens::count`](crate::Tokens::count) refuse a filter of more than
/// [`Policy::max_filter_values`](crate::Policy::max_filter_values) values (10,000 by default).
///
/// ```
/// use api_tokens::{Query, Status, UserId, store::SortField, store::SortOrder};
/// let q = Query::new()
///     .owners([UserId::from(2)])
///     .status(Status::Enabled)
///     .name_contains("deploy")
///     .sort(SortField::Expiry, SortOrder::Ascending)
///     .limit(10);
/// assert_eq!(q.limit, Some(10));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Query {
    /// Only these ids.
    pub ids: Option<Vec<TokenId>>,
    /// Only tokens of these owners.
    pub owners: Option<Vec<UserId>>,
    /// Only tokens created (or last generated) by these users.
    pub creators: Option<Vec<UserId>>,
    /// Only tokens with this status.
    pub status: Option<Status>,
    /// Name contains this text (case-insensitive).
    pub name_contains: Option<String>,
    /// Description contains this text (case-insensitive).
    pub description_contains: Option<String>,
    /// Valid at this instant: never expires, or expires after it.
    pub valid_at: Option<OffsetDateTime>,
    /// Expired at this instant: has an expiry at or before it.
    pub expired_at: Option<OffsetDateTime>,
    /// Not expired now, and expires within this duration from now.
    pub expiring_within: Option<Duration>,
    /// Created within this range.
    pub created: Option<TimeRange>,
    /// Last used within this range (never-used tokens do not match).
    pub last_used: Option<TimeRange>,
    /// Sort key and direction; ties are broken by id, ascending.
    pub sort: Option<(SortField, SortOrder)>,
    /// At most this many tokens.
    pub limit: Option<usize>,
    /// Only tokens with exactly one of these names (case-sensitive; Zabbix `filter.name`).
    pub names: Option<Vec<TokenName>>,
    /// Only tokens whose expiry is one of these (`Expiry::NEVER` matches never-expiring
    /// tokens; Zabbix `filter.expires_at`, where `0` is never).
    pub expires_at: Option<Vec<Expiry>>,
    /// Only tokens created at exactly one of these instants (whole seconds; Zabbix
    /// `filter.created_at`).
    pub created_at: Option<Vec<OffsetDateTime>>,
    /// Only tokens last used at exactly one of these instants; `None` in the list matches
    /// never-used tokens (Zabbix `filter.lastaccess`, where `0` is never).
    pub last_used_at: Option<Vec<Option<OffsetDateTime>>>,
    /// A pattern search on names and descriptions (Zabbix `search` and its flags).
    pub search: Option<TextSearch>,
    /// Further sort keys, applied in order after [`Query::sort`] (Zabbix's `sortfield` list).
    pub then_sort: Vec<(SortField, SortOrder)>,
}

impl Query {
    /// Matches every token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only these ids.
    #[must_use]
    pub fn ids(mut self, ids: impl IntoIterator<Item = TokenId>) -> Self {
        self.ids = Some(ids.into_iter().collect());
        self
    }

    /// Only these owners.
    #[must_use]
    pub fn owners(mut self, owners: impl IntoIterator<Item = UserId>) -> Self {
        self.owners = Some(owners.into_iter().collect());
        self
    }

    /// Only these creators.
    #[must_use]
    pub fn creators(mut self, creators: impl IntoIterator<Item = UserId>) -> Self {
        self.creators = Some(creators.into_iter().collect());
        self
    }

    /// Only this status.
    #[must_use]
    pub fn status(mut self, status: Status) -> Self {
        self.status = Some(status);
        self
    }

    /// Name contains `text` (case-insensitive).
    #[must_use]
    pub fn name_contains(mut self, text: impl Into<String>) -> Self {
        self.name_contains = Some(text.into());
        self
    }

    /// Description contains `text` (case-insensitive).
    #[must_use]
    pub fn description_contains(mut self, text: impl Into<String>) -> Self {
        self.description_contains = Some(text.into());
        self
    }

    /// Valid at `t`.
    #[must_use]
    pub fn valid_at(mut self, t: OffsetDateTime) -> Self {
        self.valid_at = Some(t);
        self
    }

    /// Expired at `t`.
    #[must_use]
    pub fn expired_at(mut self, t: OffsetDateTime) -> Self {
        self.expired_at = Some(t);
        self
    }

    /// Expiring within `d` of now.
    #[must_use]
    pub fn expiring_within(mut self, d: Duration) -> Self {
        self.expiring_within = Some(d);
        self
    }

    /// Created in `range`.
    #[must_use]
    pub fn created(mut self, range: TimeRange) -> Self {
        self.created = Some(range);
        self
    }

    /// Last used in `range`.
    #[must_use]
    pub fn last_used(mut self, range: TimeRange) -> Self {
        self.last_used = Some(range);
        self
    }

    /// Sort by `field` in `order`.
    #[must_use]
    pub fn sort(mut self, field: SortField, order: SortOrder) -> Self {
        self.sort = Some((field, order));
        self
    }

    /// At most `n` tokens.
    #[must_use]
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// Only tokens with one of these exact names.
    #[must_use]
    pub fn names(mut self, names: impl IntoIterator<Item = TokenName>) -> Self {
        self.names = Some(names.into_iter().collect());
        self
    }

    /// Only tokens whose expiry is one of these.
    #[must_use]
    pub fn expires_at(mut self, expiries: impl IntoIterator<Item = Expiry>) -> Self {
        self.expires_at = Some(expiries.into_iter().collect());
        self
    }

    /// Only tokens created at one of these instants.
    #[must_use]
    pub fn created_at(mut self, instants: impl IntoIterator<Item = OffsetDateTime>) -> Self {
        self.created_at = Some(instants.into_iter().collect());
        self
    }

    /// Only tokens last used at one of these instants (`None`: never used).
    #[must_use]
    pub fn last_used_at(
        mut self,
        instants: impl IntoIterator<Item = Option<OffsetDateTime>>,
    ) -> Self {
        self.last_used_at = Some(instants.into_iter().collect());
        self
    }

    /// Only tokens passing `search`.
    #[must_use]
    pub fn search(mut self, search: TextSearch) -> Self {
        self.search = Some(search);
        self
    }

    /// Adds a sort key after the ones already set (the first key when none is).
    #[must_use]
    pub fn then_sort(mut self, field: SortField, order: SortOrder) -> Self {
        if self.sort.is_none() {
            self.sort = Some((field, order));
        } else {
            self.then_sort.push((field, order));
        }
        self
    }

    /// The query prepared for testing many tokens at `now` (see [`QueryMatcher`]): what stores
    /// that filter in memory use.
    pub fn matcher(&self, now: OffsetDateTime) -> QueryMatcher<'_> {
        QueryMatcher::new(self, now)
    }

    /// Whether `token` passes every filter at `now`: the reference semantics. Stores that
    /// translate the query (SQL) must agree with it. It scans the list filters, so it is for one
    /// token; to filter many, use [`Query::matcher`], which agrees with it.
    pub fn matches(&self, token: &Token, now: OffsetDateTime) -> bool {
        let in_list =
            |list: &Option<Vec<UserId>>, u: &UserId| list.as_ref().is_none_or(|l| l.contains(u));
        let contains = |needle: &Option<String>, hay: &str| {
            needle
                .as_ref()
                .is_none_or(|n| hay.to_lowercase().contains(&n.to_lowercase()))
        };
        self.ids.as_ref().is_none_or(|ids| ids.contains(&token.id))
            && in_list(&self.owners, &token.owner)
            && in_list(&self.creators, &token.creator)
            && self.status.is_none_or(|s| s == token.status)
            && contains(&self.name_contains, token.name.as_str())
            && contains(&self.description_contains, &token.description)
            && self.valid_at.is_none_or(|t| !token.expiry.is_expired_at(t))
            && self
                .expired_at
                .is_none_or(|t| token.expiry.is_expired_at(t))
            && self.expiring_within.is_none_or(|d| {
                !token.expiry.is_expired_at(now)
                    && token.expiry.is_expired_at(now.saturating_add(d))
            })
            && self.created.is_none_or(|r| r.contains(token.created_at))
            && self
                .last_used
                .is_none_or(|r| token.last_use.is_some_and(|u| r.contains(u.at)))
            && self.matches_exact(token)
    }

    /// The exact-match filters and the search (the fields added for Zabbix's `filter`).
    fn matches_exact(&self, token: &Token) -> bool {
        self.names.as_ref().is_none_or(|n| n.contains(&token.name))
            && self
                .expires_at
                .as_ref()
                .is_none_or(|e| e.contains(&token.expiry))
            && self
                .created_at
                .as_ref()
                .is_none_or(|c| c.contains(&token.created_at))
            && self
                .last_used_at
                .as_ref()
                .is_none_or(|l| l.contains(&token.last_use.map(|u| u.at)))
            && self
                .search
                .as_ref()
                .is_none_or(|s| s.matches(token.name.as_str(), &token.description))
    }

    /// Sorts `tokens` as the query says (by id when it says nothing) and applies the limit.
    pub fn sort_and_limit(&self, tokens: &mut Vec<Token>) {
        let (field, order) = self.sort.unwrap_or((SortField::Id, SortOrder::Ascending));
        let keys = std::iter::once((field, order)).chain(self.then_sort.iter().copied());
        let keys: Vec<(SortField, SortOrder)> = keys.collect();
        tokens.sort_by(|a, b| {
            keys.iter()
                .fold(Ordering::Equal, |acc, &(field, order)| {
                    acc.then_with(|| {
                        let o = compare(field, a, b);
                        match order {
                            SortOrder::Ascending => o,
                            SortOrder::Descending => o.reverse(),
                        }
                    })
                })
                .then(a.id.cmp(&b.id))
        });
        if let Some(n) = self.limit {
            tokens.truncate(n);
        }
    }
}

/// A [`Query`]'s filters prepared once for testing many tokens: every list filter (ids, owners,
/// creators, names, expiries, creation and last-use instants) as a hash set and the search
/// texts lowercased, so filtering n tokens with k filter values costs O(n + k), not O(n · k).
/// Agrees with [`Query::matches`].
///
/// ```
/// use api_tokens::{Query, TokenId};
/// let q = Query::new().ids((1..=10_000).map(TokenId::new));
/// let m = q.matcher(time::OffsetDateTime::UNIX_EPOCH);
/// # let _ = m;
/// ```
#[derive(Debug)]
pub struct QueryMatcher<'a> {
    query: &'a Query,
    now: OffsetDateTime,
    ids: Option<HashSet<TokenId>>,
    owners: Option<HashSet<&'a UserId>>,
    creators: Option<HashSet<&'a UserId>>,
    name: Option<String>,
    description: Option<String>,
    names: Option<HashSet<&'a TokenName>>,
    expires_at: Option<HashSet<Expiry>>,
    /// Instants as Unix nanoseconds: equal instants are equal keys whatever their offset.
    created_at: Option<HashSet<i128>>,
    last_used_at: Option<HashSet<Option<i128>>>,
}

impl<'a> QueryMatcher<'a> {
    fn new(query: &'a Query, now: OffsetDateTime) -> Self {
        Self {
            query,
            now,
            ids: query.ids.as_ref().map(|v| v.iter().copied().collect()),
            owners: query.owners.as_ref().map(|v| v.iter().collect()),
            creators: query.creators.as_ref().map(|v| v.iter().collect()),
            name: query.name_contains.as_ref().map(|t| t.to_lowercase()),
            description: query
                .description_contains
                .as_ref()
                .map(|t| t.to_lowercase()),
            names: query.names.as_ref().map(|v| v.iter().collect()),
            expires_at: query
                .expires_at
                .as_ref()
                .map(|v| v.iter().copied().collect()),
            created_at: query
                .created_at
                .as_ref()
                .map(|v| v.iter().map(|t| t.unix_timestamp_nanos()).collect()),
            last_used_at: query.last_used_at.as_ref().map(|v| {
                v.iter()
                    .map(|t| t.map(OffsetDateTime::unix_timestamp_nanos))
                    .collect()
            }),
        }
    }

    /// The ids filter as a set, if the query has one.
    pub(crate) fn id_set(&self) -> Option<&HashSet<TokenId>> {
        self.ids.as_ref()
    }

    /// The owners filter as a set, if the query has one.
    pub(crate) fn owner_set(&self) -> Option<&HashSet<&'a UserId>> {
        self.owners.as_ref()
    }

    /// Whether `token` passes every filter.
    pub fn matches(&self, token: &Token) -> bool {
        let contains = |needle: &Option<String>, hay: &str| {
            needle
                .as_ref()
                .is_none_or(|n| n.is_empty() || hay.to_lowercase().contains(n.as_str()))
        };
        let q = self.query;
        self.ids.as_ref().is_none_or(|s| s.contains(&token.id))
            && self
                .owners
                .as_ref()
                .is_none_or(|s| s.contains(&token.owner))
            && self
                .creators
                .as_ref()
                .is_none_or(|s| s.contains(&token.creator))
            && q.status.is_none_or(|s| s == token.status)
            && contains(&self.name, token.name.as_str())
            && contains(&self.description, &token.description)
            && q.valid_at.is_none_or(|t| !token.expiry.is_expired_at(t))
            && q.expired_at.is_none_or(|t| token.expiry.is_expired_at(t))
            && q.expiring_within.is_none_or(|d| {
                !token.expiry.is_expired_at(self.now)
                    && token.expiry.is_expired_at(self.now.saturating_add(d))
            })
            && q.created.is_none_or(|r| r.contains(token.created_at))
            && q.last_used
                .is_none_or(|r| token.last_use.is_some_and(|u| r.contains(u.at)))
            && self.names.as_ref().is_none_or(|s| s.contains(&token.name))
            && self
                .expires_at
                .as_ref()
                .is_none_or(|s| s.contains(&token.expiry))
            && self
                .created_at
                .as_ref()
                .is_none_or(|s| s.contains(&token.created_at.unix_timestamp_nanos()))
            && self
                .last_used_at
                .as_ref()
                .is_none_or(|s| s.contains(&token.last_use.map(|u| u.at.unix_timestamp_nanos())))
            && q.search
                .as_ref()
                .is_none_or(|s| s.matches(token.name.as_str(), &token.description))
    }
}

fn compare(field: SortField, a: &Token, b: &Token) -> Ordering {
    match field {
        SortField::Id => a.id.cmp(&b.id),
        SortField::Name => a.name.cmp(&b.name),
        SortField::Created => a.created_at.cmp(&b.created_at),
        SortField::Expiry => match (a.expiry.instant(), b.expiry.instant()) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        },
        SortField::LastUsed => a.last_use.map(|u| u.at).cmp(&b.last_use.map(|u| u.at)),
        SortField::Status => a.status.cmp(&b.status),
        SortField::ExpiryNeverFirst => a.expiry.instant().cmp(&b.expiry.instant()),
    }
}
