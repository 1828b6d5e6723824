//! [`TextSearch`]: pattern search over names and descriptions, the way Zabbix's `search`,
//! `startSearch`, `excludeSearch`, `searchByAny` and `searchWildcardsEnabled` combine.

/// A search over token names and descriptions (Zabbix `token.get`'s `search` object and its
/// four flags). Every pattern is a condition on its field; all conditions must hold (`any`
/// false) or at least one (`any` true). A search without patterns matches every token.
///
/// Matching is case-insensitive. A pattern matches a value when:
/// * by default, the value contains it;
/// * with `prefix`, the value starts with it;
/// * with `wildcards`, the whole value matches it, `*` standing for any run of characters
///   (`prefix` then changes nothing, as in Zabbix);
/// * with `exclude`, each condition is negated (the value must *not* match).
///
/// Patterns are lower-cased once, when they are added; matching then costs one lower-casing
/// of the value and, per condition, time linear in the value's and the pattern's length.
///
/// ```
/// use api_tokens::store::TextSearch;
/// let s = TextSearch::new().name(["deploy"]).description(["ci"]);
/// assert!(s.matches("Deploy-prod", "CI pipeline"));
/// assert!(!s.matches("Deploy-prod", "nightly"));
/// assert!(s.clone().any(true).matches("Deploy-prod", "nightly"));
/// let w = TextSearch::new().name(["dep*prod"]).wildcards(true);
/// assert!(w.matches("Deploy-prod", ""));
/// assert!(!w.matches("Deploy-prod-2", ""));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextSearch {
    /// Patterns on the name, lower-cased.
    name: Vec<String>,
    /// Patterns on the description, lower-cased.
    description: Vec<String>,
    any: bool,
    prefix: bool,
    exclude: bool,
    wildcards: bool,
}

impl TextSearch {
    /// A search without patterns (matches everything).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds patterns on the name.
    #[must_use]
    pub fn name<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, patterns: I) -> Self {
        self.name
            .extend(patterns.into_iter().map(|p| p.as_ref().to_lowercase()));
        self
    }

    /// Adds patterns on the description.
    #[must_use]
    pub fn description<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, patterns: I) -> Self {
        self.description
            .extend(patterns.into_iter().map(|p| p.as_ref().to_lowercase()));
        self
    }

    /// One condition is enough (`true`) or all must hold (`false`, the default).
    #[must_use]
    pub fn any(mut self, any: bool) -> Self {
        self.any = any;
        self
    }

    /// Match at the start of the value.
    #[must_use]
    pub fn prefix(mut self, prefix: bool) -> Self {
        self.prefix = prefix;
        self
    }

    /// Negate every condition.
    #[must_use]
    pub fn exclude(mut self, exclude: bool) -> Self {
        self.exclude = exclude;
        self
    }

    /// Treat `*` as a wildcard over the whole value.
    #[must_use]
    pub fn wildcards(mut self, wildcards: bool) -> Self {
        self.wildcards = wildcards;
        self
    }

    /// Whether the search has no pattern at all (and so matches every token).
    pub fn is_empty(&self) -> bool {
        self.name.is_empty() && self.description.is_empty()
    }

    /// How many patterns it holds.
    pub fn len(&self) -> usize {
        self.name.len() + self.description.len()
    }

    /// Whether one condition is enough.
    pub fn is_any(&self) -> bool {
        self.any
    }

    /// Whether patterns match at the start.
    pub fn is_prefix(&self) -> bool {
        self.prefix
    }

    /// Whether conditions are negated.
    pub fn is_exclude(&self) -> bool {
        self.exclude
    }

    /// Whether `*` is a wildcard.
    pub fn has_wildcards(&self) -> bool {
        self.wildcards
    }

    /// Every condition: the field it is on (`false` name, `true` description) and the pattern,
    /// lower-cased.
    pub fn conditions(&self) -> impl Iterator<Item = (bool, &str)> {
        self.name
            .iter()
            .map(|p| (false, p.as_str()))
            .chain(self.description.iter().map(|p| (true, p.as_str())))
    }

    /// Whether a token with this name and description passes the search.
    pub fn matches(&self, name: &str, description: &str) -> bool {
        if self.is_empty() {
            return true;
        }
        let name = name.to_lowercase();
        let description = if self.description.is_empty() {
            String::new()
        } else {
            description.to_lowercase()
        };
        let holds = |(on_description, pattern): (bool, &str)| {
            let value = if on_description { &description } else { &name };
            self.pattern_matches(value, pattern) != self.exclude
        };
        if self.any {
            self.conditions().any(holds)
        } else {
            self.conditions().all(holds)
        }
    }

    /// One pattern against one value, both already lower-cased. Stores that evaluate the
    /// search themselves (a SQL function) call this so they agree with [`TextSearch::matches`].
    pub fn pattern_matches(&self, value: &str, pattern: &str) -> bool {
        if self.wildcards {
            glob(value, pattern)
        } else if self.prefix {
            value.starts_with(pattern)
        } else {
            value.contains(pattern)
        }
    }
}

/// Whether `value` matches `pattern` entirely, `*` matching any run of characters. The literal
/// pieces between stars are found left to right, each at its first occurrence after the
/// previous one: for a pattern made only of literals and `*`, the first occurrence is always a
/// valid choice, so no backtracking is needed.
fn glob(value: &str, pattern: &str) -> bool {
    let mut pieces = pattern.split('*');
    let Some(first) = pieces.next() else {
        return value.is_empty();
    };
    let Some(mut rest) = value.strip_prefix(first) else {
        return false;
    };
    let middle: Vec<&str> = pieces.collect();
    let Some((last, inner)) = middle.split_last() else {
        // No star at all: the whole value must be the literal.
        return rest.is_empty();
    };
    for piece in inner {
        match rest.find(piece) {
            Some(at) => rest = rest.get(at + piece.len()..).unwrap_or_default(),
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_rules() {
        for (value, pattern, expected) in [
            ("deploy-prod", "deploy-prod", true),
            ("deploy-prod", "deploy", false),
            ("deploy-prod", "deploy*", true),
            ("deploy-prod", "*prod", true),
            ("deploy-prod", "*loy-p*", true),
            ("deploy-prod", "d*p*d", true),
            ("deploy-prod", "d*x*d", false),
            ("abab", "*ab", true),
            ("aXbXc", "a*b*c", true),
            ("ac", "a*b*c", false),
            ("", "*", true),
            ("", "", true),
            ("x", "", false),
            ("aa", "a*a", true),
            ("a", "a*a", false),
        ] {
            assert_eq!(glob(value, pattern), expected, "{value:?} ~ {pattern:?}");
        }
    }

    /// A reference matcher by dynamic programming, to check the greedy one against.
    fn glob_reference(value: &[char], pattern: &[char]) -> bool {
        let mut m = vec![vec![false; pattern.len() + 1]; value.len() + 1];
        m[0][0] = true;
        for j in 1..=pattern.len() {
            m[0][j] = m[0][j - 1] && pattern[j - 1] == '*';
        }
        for i in 1..=value.len() {
            for j in 1..=pattern.len() {
                m[i][j] = if pattern[j - 1] == '*' {
                    m[i][j - 1] || m[i - 1][j]
                } else {
                    m[i - 1][j - 1] && pattern[j - 1] == value[i - 1]
                };
            }
        }
        m[value.len()][pattern.len()]
    }

    /// Every string over `alphabet` up to `max` characters long.
    fn all_strings(alphabet: &[char], max: usize) -> Vec<String> {
        let mut out = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..max {
            last = last
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            out.extend(last.iter().cloned());
        }
        out
    }

    /// Every value over `{a, b}` up to 7 characters against every pattern over `{a, b, *}` up
    /// to 5: exhaustive where proptest sampled (proptest lives in the `proptests/` member, and
    /// `glob` is private).
    #[test]
    fn greedy_glob_agrees_with_the_reference() {
        let values = all_strings(&['a', 'b'], 7);
        let patterns = all_strings(&['a', 'b', '*'], 5);
        for v in &values {
            let vc: Vec<char> = v.chars().collect();
            for p in &patterns {
                let pc: Vec<char> = p.chars().collect();
                assert_eq!(glob(v, p), glob_reference(&vc, &pc), "{v:?} ~ {p:?}");
            }
        }
    }

    #[test]
    fn flags_combine_as_zabbix_does() {
        let base = TextSearch::new().name(["dep", "prod"]);
        assert!(base.matches("deploy-prod", ""), "all patterns by default");
        assert!(!base.matches("deploy-stage", ""));
        assert!(base.clone().any(true).matches("deploy-stage", ""));
        assert!(!base.clone().prefix(true).matches("deploy-prod", ""));
        assert!(
            base.clone()
                .prefix(true)
                .any(true)
                .matches("deploy-prod", "")
        );
        let excl = TextSearch::new().name(["dep"]).exclude(true);
        assert!(!excl.matches("deploy", ""));
        assert!(excl.matches("backup", ""));
        assert!(TextSearch::new().matches("anything", "at all"));
        assert!(
            TextSearch::new()
                .description(["PIPE"])
                .matches("x", "ci pipeline"),
            "case-insensitive"
        );
    }
}
