//! The list's filter, as the seed's filter form has it. It lives in the list's address (its
//! query string), not in a session: a link, a reload and another process all show the same
//! list.

use api_tokens::{Status, UserId};

use super::form::Form;
use super::render::Errors;
use super::texts::{Texts, fill};

/// Longest name filter kept, in characters.
pub(crate) const MAX_FILTER_TEXT: usize = 255;
/// Most users in the users and creators filters.
pub(crate) const MAX_FILTER_USERS: usize = 100;
/// The longest "expires in less than N days".
pub(crate) const MAX_DAYS: u32 = 36_500;

/// The list's filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Filter {
    pub(crate) name: String,
    pub(crate) owners: Vec<UserId>,
    pub(crate) creators: Vec<UserId>,
    /// "Expires in less than N days".
    pub(crate) expires_within_days: Option<u32>,
    pub(crate) status: Option<Status>,
}

/// Percent-encodes a query value (all but unreserved characters).
pub(crate) fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Filter {
    pub(crate) fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The filter's fields as the filter form names them, the empty ones left out: for the
    /// list's address and for hidden fields of forms that come back to the list.
    pub(crate) fn fields(&self) -> Vec<(&'static str, String)> {
        let users = |u: &[UserId]| u.iter().map(UserId::as_str).collect::<Vec<_>>().join(",");
        let mut out = Vec::new();
        if !self.name.is_empty() {
            out.push(("name", self.name.clone()));
        }
        if !self.owners.is_empty() {
            out.push(("owners", users(&self.owners)));
        }
        if !self.creators.is_empty() {
            out.push(("creators", users(&self.creators)));
        }
        if let Some(days) = self.expires_within_days {
            out.push(("expires_soon", "on".to_owned()));
            out.push(("expires_days", days.to_string()));
        }
        match self.status {
            Some(Status::Enabled) => out.push(("status", "enabled".to_owned())),
            Some(_) => out.push(("status", "disabled".to_owned())),
            None => {}
        }
        out
    }

    /// The filter as query-string pairs (`&name=…&status=…`), each led by `&`.
    pub(crate) fn query(&self) -> String {
        self.fields()
            .iter()
            .map(|(name, value)| format!("&{name}={}", enc(value)))
            .collect()
    }

    /// Reads the filter from a form or a query string; a refused value is named in `errors`
    /// (beside its field) and left out. The users and creators filters are an admin's only.
    pub(crate) fn read(form: &Form, admin: bool, texts: &Texts, errors: &mut Errors) -> Self {
        let mut filter = Self::default();
        let name = form.get("name").unwrap_or_default();
        if name.chars().count() > MAX_FILTER_TEXT {
            let max = MAX_FILTER_TEXT.to_string();
            errors.add(Some("name"), fill(&texts.filter_too_long, &[("max", &max)]));
        } else {
            name.clone_into(&mut filter.name);
        }
        if admin {
            filter.owners = users_of(form, "owners", errors, texts);
            filter.creators = users_of(form, "creators", errors, texts);
        }
        if form.checked("expires_soon") {
            match form
                .get("expires_days")
                .and_then(|d| d.trim().parse::<u32>().ok())
                .filter(|d| *d <= MAX_DAYS)
            {
                Some(days) => filter.expires_within_days = Some(days),
                None => errors.add(
                    Some("expires_days"),
                    fill(&texts.filter_bad_days, &[("max", &MAX_DAYS.to_string())]),
                ),
            }
        }
        filter.status = match form.get("status").unwrap_or("any") {
            "any" | "" => None,
            "enabled" => Some(Status::Enabled),
            "disabled" => Some(Status::Disabled),
            _ => {
                errors.add(Some("status"), texts.filter_bad_status.to_string());
                None
            }
        };
        filter
    }
}

fn users_of(form: &Form, name: &str, errors: &mut Errors, texts: &Texts) -> Vec<UserId> {
    let mut out = Vec::new();
    for item in form.all(name).flat_map(|v| v.split(',')) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        match UserId::new(item) {
            Ok(u) if !out.contains(&u) => out.push(u),
            Ok(_) => {}
            Err(e) => {
                errors.add(Some(name), super::invalid_text(texts, name, &e));
                return out;
            }
        }
        if out.len() > MAX_FILTER_USERS {
            let max = MAX_FILTER_USERS.to_string();
            errors.add(Some(name), fill(&texts.filter_too_many, &[("max", &max)]));
            return out;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_reads_back_from_its_own_query() {
        let filter = Filter {
            name: "a b&c=d%é".to_owned(),
            owners: vec![UserId::new("bob").unwrap(), UserId::new("x y").unwrap()],
            creators: vec![UserId::new("alice").unwrap()],
            expires_within_days: Some(7),
            status: Some(Status::Disabled),
        };
        let query = filter.query();
        let form = Form::parse(query.trim_start_matches('&')).unwrap();
        let mut errors = Errors::default();
        let read = Filter::read(&form, true, &Texts::english(), &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(read, filter);
        assert_eq!(Filter::default().query(), "");
        // A user's own view never filters by other users.
        let own = Filter::read(&form, false, &Texts::english(), &mut errors);
        assert!(own.owners.is_empty() && own.creators.is_empty());
    }
}
