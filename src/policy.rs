//! Policy: the rules a host sets for its tokens, with presets for the seeds' systems.

use time::{Duration, OffsetDateTime};

use crate::allowlist::IpAllowlist;
use crate::error::{Field, Problem, ValidationError};
use crate::permission::PermissionSet;
use crate::secret::SecretFormat;
use crate::store::Query;
use crate::token::{Expiry, TokenName};

/// The default of [`Policy::max_permissions`]: ten times WHM's whole ACL catalogue (about a
/// hundred privileges), so every preset's full list fits with room to spare.
pub const DEFAULT_MAX_PERMISSIONS: usize = 1_024;

/// The default of [`Policy::max_filter_values`].
pub const DEFAULT_MAX_FILTER_VALUES: usize = 10_000;

/// The most patterns one [`Query::search`] may carry (on names and descriptions together).
/// Every pattern is tried on every listed token, so the count is bounded like any list filter,
/// but tighter: a search is a handful of words, not a list of ids.
pub const MAX_SEARCH_PATTERNS: usize = 100;

/// The most sort keys one [`Query`] may carry ([`Query::sort`] plus [`Query::then_sort`]):
/// there are only a few fields to sort by, and each key is compared on every comparison.
pub const MAX_SORT_KEYS: usize = 8;

/// The default of [`Policy::max_grace`]: a week.
pub const DEFAULT_MAX_GRACE: Duration = Duration::days(7);

/// What characters a token name may hold (on top of [`TokenName`]'s own rules).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum NameCharset {
    /// Any printable text (Zabbix).
    Printable,
    /// `[A-Za-z0-9_-]` only (cPanel).
    Word,
}

/// The rules for tokens. Start from a preset and change fields:
///
/// ```
/// use api_tokens::Policy;
/// let mut policy = Policy::cpanel();
/// policy.max_lifetime = Some(time::Duration::days(90));
/// assert_eq!(policy.max_name_chars, 50);
/// ```
///
/// # The presets
///
/// | field | [`Policy::default()`] | [`Policy::zabbix()`] | [`Policy::cpanel()`] |
/// | --- | --- | --- | --- |
/// | [`max_name_chars`](Policy::max_name_chars) | 64 | 64 | 50 |
/// | [`name_charset`](Policy::name_charset) | [`Printable`](NameCharset::Printable) | [`Printable`](NameCharset::Printable) | [`Word`](NameCharset::Word) (`[A-Za-z0-9_-]`) |
/// | [`max_description_chars`](Policy::max_description_chars) | 1,024 | 65,535 | 1,024 |
/// | [`accept_past_expiry`](Policy::accept_past_expiry) | no | yes | no |
/// | [`max_lifetime`](Policy::max_lifetime) | none | none | none |
/// | [`max_allowlist`](Policy::max_allowlist) | 100 | 100 | 100 |
/// | [`require_permissions`](Policy::require_permissions) | **yes** | no (all of the creator's) | no (all of the creator's) |
/// | [`max_permissions`](Policy::max_permissions) | 1,024 | 1,024 | 1,024 |
/// | [`max_filter_values`](Policy::max_filter_values) | 10,000 | 10,000 | 10,000 |
/// | [`max_grace`](Policy::max_grace) | 7 days | 7 days | 7 days |
/// | [`secret_format`](Policy::secret_format) | `tok_` + 43 base62 + 6 checksum ([`SecretFormat::default`]) | 64 hex digits ([`SecretFormat::Zabbix`]) | 32 × `[0-9A-Z]` ([`SecretFormat::Cpanel`]) |
///
/// The default is strict: a token states its permissions (least privilege is the default, not
/// an option), cannot be created already expired, and its secret carries a prefix for secret
/// scanners and a checksum that refuses typos without a lookup. The presets keep their seed's
/// rules: Zabbix tokens act with all of their user's rights, and cPanel gives a token all of
/// its creator's privileges when none are listed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Policy {
    /// Longest name, in characters (at most [`crate::token::MAX_NAME_LEN`]).
    pub max_name_chars: usize,
    /// Characters a name may hold.
    pub name_charset: NameCharset,
    /// Longest description, in characters.
    pub max_description_chars: usize,
    /// Whether an expiry at or before now is accepted (Zabbix: yes; cPanel: no).
    pub accept_past_expiry: bool,
    /// The longest lifetime a new or updated expiry may give; `None` for no limit (and `Never`
    /// allowed). With a limit, `Expiry::NEVER` is refused too.
    pub max_lifetime: Option<Duration>,
    /// Most allowlist entries after normalisation (cPanel: 100).
    pub max_allowlist: usize,
    /// Most permissions one token may hold, after normalisation (default
    /// [`DEFAULT_MAX_PERMISSIONS`]). Every operation on permission sets costs O(n log n) or less,
    /// so the cap bounds what one token can cost, not whether the crate copes.
    pub max_permissions: usize,
    /// Most values one list filter ([`Query::ids`], [`Query::owners`], [`Query::creators`],
    /// [`Query::names`], [`Query::expires_at`], [`Query::created_at`], [`Query::last_used_at`])
    /// may carry in [`Tokens::list`](crate::Tokens::list) and [`Tokens::count`](crate::Tokens::count)
    /// (default [`DEFAULT_MAX_FILTER_VALUES`]).
    pub max_filter_values: usize,
    /// The longest grace period [`Tokens::generate_with`](crate::Tokens::generate_with) accepts
    /// for a replaced secret (default [`DEFAULT_MAX_GRACE`], a week). A grace period never
    /// outlives the token's expiry, whatever its length.
    pub max_grace: Duration,
    /// Whether a new token must list its permissions. When `true` (the default), a
    /// [`NewToken`](crate::NewToken) without [`permissions`](crate::NewToken::permissions) is
    /// refused with [`Problem::Required`]; ask for all of the owner's
    /// rights with [`PermissionSet::all`](crate::PermissionSet::all) (`"*"`). When `false` (the
    /// seeds' rule), such a token gets every privilege of the caller who creates it.
    pub require_permissions: bool,
    /// The shape of generated secrets, and the only shape accepted at authentication.
    pub secret_format: SecretFormat,
}

impl Policy {
    /// Zabbix's rules: names of 1–64 printable characters, descriptions up to 65,535 characters,
    /// expiry in the past accepted, permissions optional (a Zabbix token acts with its user's
    /// rights), secrets of 64 hex digits. See the [table](Policy#the-presets).
    pub fn zabbix() -> Self {
        Self {
            max_description_chars: 65_535,
            accept_past_expiry: true,
            require_permissions: false,
            secret_format: SecretFormat::Zabbix,
            ..Self::default()
        }
    }

    /// cPanel & WHM's rules: names `[A-Za-z0-9_-]{1,50}`, expiry must be in the future, at most
    /// 100 allowlist entries, no ACLs listed means all of the creator's, secrets of 32
    /// characters `[0-9A-Z]`. See the [table](Policy#the-presets).
    pub fn cpanel() -> Self {
        Self {
            max_name_chars: 50,
            name_charset: NameCharset::Word,
            require_permissions: false,
            secret_format: SecretFormat::Cpanel,
            ..Self::default()
        }
    }

    /// Checks a name against the policy.
    ///
    /// # Errors
    /// Too long, or a character outside the charset.
    pub fn check_name(&self, name: &TokenName) -> Result<(), ValidationError> {
        let s = name.as_str();
        let err = |problem| ValidationError::new(Field::Name, s, problem);
        if s.chars().nth(self.max_name_chars).is_some() {
            return Err(err(Problem::TooLong {
                max: self.max_name_chars,
            }));
        }
        if self.name_charset == NameCharset::Word
            && let Some(ch) = s
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(err(Problem::InvalidCharacter { ch }));
        }
        Ok(())
    }

    /// Checks a description's length.
    ///
    /// # Errors
    /// Longer than the policy allows.
    pub fn check_description(&self, description: &str) -> Result<(), ValidationError> {
        if description
            .chars()
            .nth(self.max_description_chars)
            .is_some()
        {
            return Err(ValidationError::new(
                Field::Description,
                description,
                Problem::TooLong {
                    max: self.max_description_chars,
                },
            ));
        }
        Ok(())
    }

    /// Checks an expiry set at `now`.
    ///
    /// # Errors
    /// In the past (`expires_at <= now`) where the policy refuses it, or further than the
    /// maximum lifetime (including never, when there is a maximum).
    pub fn check_expiry(
        &self,
        expiry: &Expiry,
        now: OffsetDateTime,
    ) -> Result<(), ValidationError> {
        let shown = || {
            expiry
                .instant()
                .map_or_else(|| "never".to_owned(), crate::error::time_for_message)
        };
        if !self.accept_past_expiry && expiry.is_expired_at(now) {
            return Err(ValidationError::new(
                Field::Expiry,
                shown(),
                Problem::InThePast,
            ));
        }
        if let Some(max) = self.max_lifetime {
            let too_long = match expiry.instant() {
                None => true,
                Some(t) => t - now > max,
            };
            if too_long {
                return Err(ValidationError::new(
                    Field::Expiry,
                    shown(),
                    Problem::LifetimeTooLong {
                        max_seconds: max.whole_seconds(),
                    },
                ));
            }
        }
        Ok(())
    }

    /// Checks an allowlist's size.
    ///
    /// # Errors
    /// More entries than the policy allows; the error names the first entry over the limit.
    pub fn check_allowlist(&self, list: &IpAllowlist) -> Result<(), ValidationError> {
        match list.entries().get(self.max_allowlist) {
            Some(first_over) => Err(ValidationError::new(
                Field::Allowlist,
                IpAllowlist::new([*first_over]),
                Problem::TooMany {
                    max: self.max_allowlist,
                },
            )),
            None => Ok(()),
        }
    }

    /// Checks how many permissions a token holds.
    ///
    /// # Errors
    /// More than [`Policy::max_permissions`]; the error names the first member over the cap,
    /// and the cap.
    pub fn check_permissions(&self, set: &PermissionSet) -> Result<(), ValidationError> {
        match set.iter().nth(self.max_permissions) {
            Some(first_over) => Err(ValidationError::new(
                Field::Permissions,
                first_over,
                Problem::TooMany {
                    max: self.max_permissions,
                },
            )),
            None => Ok(()),
        }
    }

    /// Checks how many values each list filter of a query carries, and bounds its search and
    /// sort.
    ///
    /// # Errors
    /// A filter with more than [`Policy::max_filter_values`] values, naming the filter; a
    /// search with more than [`MAX_SEARCH_PATTERNS`] patterns or a pattern longer than any
    /// stored name or description can be; more than [`MAX_SORT_KEYS`] sort keys.
    pub fn check_query(&self, query: &Query) -> Result<(), ValidationError> {
        let sizes = [
            ("ids", query.ids.as_ref().map(Vec::len)),
            ("owners", query.owners.as_ref().map(Vec::len)),
            ("creators", query.creators.as_ref().map(Vec::len)),
            ("names", query.names.as_ref().map(Vec::len)),
            ("expires_at", query.expires_at.as_ref().map(Vec::len)),
            ("created_at", query.created_at.as_ref().map(Vec::len)),
            ("last_used_at", query.last_used_at.as_ref().map(Vec::len)),
        ];
        for (filter, found) in sizes {
            if let Some(found) = found.filter(|&n| n > self.max_filter_values) {
                return Err(ValidationError::new(
                    Field::Query,
                    filter,
                    Problem::TooManyValues {
                        found,
                        max: self.max_filter_values,
                    },
                ));
            }
        }
        if let Some(search) = &query.search {
            if search.len() > MAX_SEARCH_PATTERNS {
                return Err(ValidationError::new(
                    Field::Query,
                    "search",
                    Problem::TooManyValues {
                        found: search.len(),
                        max: MAX_SEARCH_PATTERNS,
                    },
                ));
            }
            // No stored text is longer than this, so a longer pattern can never match: refusing
            // it bounds the cost of every comparison by the longest value.
            let max = self
                .max_name_chars
                .max(self.max_description_chars)
                .max(crate::token::MAX_NAME_LEN);
            if let Some((_, long)) = search
                .conditions()
                .find(|(_, p)| p.chars().nth(max).is_some())
            {
                return Err(ValidationError::new(
                    Field::Query,
                    long,
                    Problem::TooLong { max },
                ));
            }
        }
        let sort_keys = usize::from(query.sort.is_some()) + query.then_sort.len();
        if sort_keys > MAX_SORT_KEYS {
            return Err(ValidationError::new(
                Field::Query,
                "sort",
                Problem::TooManyValues {
                    found: sort_keys,
                    max: MAX_SORT_KEYS,
                },
            ));
        }
        Ok(())
    }

    /// Checks the grace period of a regenerated secret.
    ///
    /// # Errors
    /// Negative, or longer than [`Policy::max_grace`].
    pub fn check_grace(&self, grace: Duration) -> Result<(), ValidationError> {
        if grace.is_negative() {
            return Err(ValidationError::new(Field::Grace, grace, Problem::Negative));
        }
        if grace > self.max_grace {
            return Err(ValidationError::new(
                Field::Grace,
                grace,
                Problem::GraceTooLong {
                    max_seconds: self.max_grace.whole_seconds(),
                },
            ));
        }
        Ok(())
    }
}

impl Default for Policy {
    /// Strict and sensible: names of 1–64 printable characters, descriptions up to 1,024
    /// characters, expiry must be in the future, at most 100 allowlist entries, permissions must
    /// be listed (at most 1,024), 10,000 values per list filter and a week of grace, secrets in
    /// our prefixed and checksummed format with prefix `tok`. See the [table](Policy#the-presets).
    fn default() -> Self {
        Self {
            max_name_chars: 64,
            name_charset: NameCharset::Printable,
            max_description_chars: 1_024,
            accept_past_expiry: false,
            max_lifetime: None,
            max_allowlist: 100,
            max_permissions: DEFAULT_MAX_PERMISSIONS,
            max_filter_values: DEFAULT_MAX_FILTER_VALUES,
            max_grace: DEFAULT_MAX_GRACE,
            require_permissions: true,
            secret_format: SecretFormat::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn name(s: &str) -> TokenName {
        TokenName::new(s).unwrap()
    }

    #[test]
    fn zabbix_names_and_descriptions() {
        let p = Policy::zabbix();
        assert!(p.check_name(&name("Your token")).is_ok());
        assert!(p.check_name(&name(&"x".repeat(64))).is_ok());
        assert!(p.check_name(&name(&"x".repeat(65))).is_err());
        assert!(p.check_description(&"d".repeat(65_535)).is_ok());
        assert!(p.check_description(&"d".repeat(65_536)).is_err());
    }

    #[test]
    fn cpanel_names() {
        let p = Policy::cpanel();
        assert!(p.check_name(&name("my-token_1")).is_ok());
        assert!(p.check_name(&name(&"x".repeat(50))).is_ok());
        assert!(p.check_name(&name(&"x".repeat(51))).is_err());
        let e = p.check_name(&name("my token")).unwrap_err();
        assert_eq!(e.problem, Problem::InvalidCharacter { ch: ' ' });
    }

    #[test]
    fn past_expiry_per_preset() {
        let now = datetime!(2025-01-01 0:00 UTC);
        let past = Expiry::at(datetime!(2021-01-21 14:07:52 UTC));
        let at_now = Expiry::at(now);
        assert!(Policy::zabbix().check_expiry(&past, now).is_ok());
        assert!(Policy::cpanel().check_expiry(&past, now).is_err());
        assert!(
            Policy::cpanel().check_expiry(&at_now, now).is_err(),
            "now is not the future"
        );
        assert!(Policy::default().check_expiry(&Expiry::NEVER, now).is_ok());
    }

    #[test]
    fn max_lifetime() {
        let now = datetime!(2025-01-01 0:00 UTC);
        let p = Policy {
            max_lifetime: Some(Duration::days(30)),
            ..Policy::default()
        };
        assert!(
            p.check_expiry(&Expiry::at(now + Duration::days(30)), now)
                .is_ok()
        );
        assert!(
            p.check_expiry(&Expiry::at(now + Duration::days(31)), now)
                .is_err()
        );
        assert!(p.check_expiry(&Expiry::NEVER, now).is_err());
    }

    #[test]
    fn permission_cap_names_the_first_over_and_the_cap() {
        let p = Policy {
            max_permissions: 3,
            ..Policy::default()
        };
        assert!(p.check_permissions(&"a, b, c".parse().unwrap()).is_ok());
        let e = p
            .check_permissions(&"a, b, c, d".parse().unwrap())
            .unwrap_err();
        assert_eq!(e.field, Field::Permissions);
        assert_eq!(e.problem, Problem::TooMany { max: 3 });
        assert_eq!(e.value, "d");
        assert!(e.to_string().contains("at most 3"), "{e}");
        assert_eq!(Policy::default().max_permissions, 1_024);
        assert_eq!(Policy::cpanel().max_permissions, 1_024);
    }

    #[test]
    fn filter_cap_names_the_filter() {
        let p = Policy {
            max_filter_values: 2,
            ..Policy::default()
        };
        let q = Query::new().owners([1u64, 2].map(crate::UserId::from));
        assert!(p.check_query(&q).is_ok());
        let q = q.creators([1u64, 2, 3].map(crate::UserId::from));
        let e = p.check_query(&q).unwrap_err();
        assert_eq!(e.field, Field::Query);
        assert_eq!(e.value, "creators");
        assert_eq!(e.problem, Problem::TooManyValues { found: 3, max: 2 });
    }

    #[test]
    fn grace_is_bounded() {
        let p = Policy::default();
        assert!(p.check_grace(Duration::ZERO).is_ok());
        assert!(p.check_grace(Duration::days(7)).is_ok());
        let e = p
            .check_grace(Duration::days(7) + Duration::SECOND)
            .unwrap_err();
        assert_eq!(e.field, Field::Grace);
        assert_eq!(
            e.problem,
            Problem::GraceTooLong {
                max_seconds: 7 * 86_400
            }
        );
        assert!(p.check_grace(Duration::days(365 * 100)).is_err());
        assert!(p.check_grace(-Duration::SECOND).is_err());
    }

    #[test]
    fn allowlist_limit() {
        let p = Policy::cpanel();
        let hundred: Vec<String> = (0..100).map(|i| format!("10.0.{i}.1")).collect();
        assert!(
            p.check_allowlist(&IpAllowlist::parse(&hundred).unwrap())
                .is_ok()
        );
        let mut more = hundred.clone();
        more.push("10.0.200.1".into());
        let e = p
            .check_allowlist(&IpAllowlist::parse(&more).unwrap())
            .unwrap_err();
        assert_eq!(e.problem, Problem::TooMany { max: 100 });
        assert_eq!(e.value, "10.0.200.1");
    }

    /// The table in `Policy`'s docs, row by row: change one and the other together.
    #[test]
    fn presets_match_the_documented_table() {
        let rows = [
            (
                Policy::default(),
                64,
                NameCharset::Printable,
                1_024,
                false,
                true,
            ),
            (
                Policy::zabbix(),
                64,
                NameCharset::Printable,
                65_535,
                true,
                false,
            ),
            (Policy::cpanel(), 50, NameCharset::Word, 1_024, false, false),
        ];
        for (p, name, charset, description, past, required) in rows {
            assert_eq!(p.max_name_chars, name);
            assert_eq!(p.name_charset, charset);
            assert_eq!(p.max_description_chars, description);
            assert_eq!(p.accept_past_expiry, past);
            assert_eq!(p.max_lifetime, None);
            assert_eq!(p.max_allowlist, 100);
            assert_eq!(p.require_permissions, required);
            assert_eq!(p.max_permissions, 1_024);
            assert_eq!(p.max_filter_values, 10_000);
            assert_eq!(p.max_grace, Duration::days(7));
        }
        assert_eq!(Policy::default().secret_format, SecretFormat::default());
        assert_eq!(Policy::zabbix().secret_format, SecretFormat::Zabbix);
        assert_eq!(Policy::cpanel().secret_format, SecretFormat::Cpanel);
    }

    #[test]
    fn expiry_errors_read_as_rfc_3339_beside_unix_seconds() {
        let now = datetime!(2025-01-01 0:00 UTC);
        let past = Expiry::from_unix(1_611_238_072).unwrap();
        let e = Policy::cpanel().check_expiry(&past, now).unwrap_err();
        assert_eq!(
            e.to_string(),
            "expiry 2021-01-21T14:07:52Z (Unix time 1611238072) is not in the future"
        );
        let p = Policy {
            max_lifetime: Some(Duration::days(90)),
            ..Policy::default()
        };
        let e = p
            .check_expiry(&Expiry::at(datetime!(2026-01-01 0:00 UTC)), now)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "expiry 2026-01-01T00:00:00Z (Unix time 1767225600) is further away than the longest \
             lifetime allowed (90 days)"
        );
        let e = p.check_expiry(&Expiry::NEVER, now).unwrap_err();
        assert_eq!(
            e.to_string(),
            "expiry cannot be never: the longest lifetime allowed is 90 days"
        );
    }
}
