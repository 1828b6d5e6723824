//! Every text the page shows, in one table a host can replace: [`Texts`].

use std::borrow::Cow;
use std::fmt;

use super::html::E;

/// A text of the table, or a template of one.
type Text = Cow<'static, str>;

/// Defines [`Texts`]: each row is a field, its documentation, its English text and its text in
/// Zabbix's frontend.
macro_rules! texts {
    ($( $(#[doc = $doc:literal])* $name:ident: $english:literal, $zabbix:literal; )*) => {
        /// Every text the page shows (headings, labels, buttons, messages, the confirmations its
        /// script asks, its tab titles), as one table a host replaces to translate the page or
        /// to reword it.
        ///
        /// Two instances come with the crate: [`Texts::english`] (the default) and
        /// [`Texts::zabbix`] (the wording of Zabbix's frontend, part of
        /// [`Preset::zabbix`](super::Preset::zabbix)). A host starts from one and replaces what
        /// it needs, field by field or by key ([`Texts::set`], for a table read from a file),
        /// and gives it to [`TokensPage::with_texts`](super::TokensPage::with_texts).
        ///
        /// Some texts are templates: `{name}` stands for a value the page puts in (each field
        /// says which); a template may leave a value out. Every value is escaped when the page
        /// is written, so a text is plain text, never markup.
        ///
        /// ```
        /// use api_tokens_axum::page::Texts;
        ///
        /// let mut texts = Texts::english();
        /// texts.lang = "lv".into();
        /// texts.create = "Izveidot API marķieri".into();
        /// texts.set("no_data", "Nav atrasts neviens ieraksts.")?;
        /// texts.problem("name.empty", "Nosaukums nevar būt tukšs.");
        /// assert_eq!(texts.get("create"), Some("Izveidot API marķieri"));
        /// assert!(texts.set("no_such_text", "…").is_err());
        /// # Ok::<(), api_tokens_axum::page::UnknownText>(())
        /// ```
        ///
        /// **Refused values.** A value the core or the page refuses is written with the first
        /// of: the [`problems`](Texts::problems) entry `"{field}.{code}"` (`"name.empty"`), the
        /// entry `"{code}"` (`"name_taken"`), then [`problem`](Texts::problem). The code is the
        /// core's stable [`code`](api_tokens::Error::code) (`empty`, `too_long`,
        /// `invalid_syntax`, `name_taken`, `not_found`, …; the page's own expiry range is
        /// `out_of_range`); the field is the form's (`name`, `owner`, `description`,
        /// `expires_at`, `permissions`, `allowlist`, `status`). Their templates may use
        /// `{message}` (the core's English message), `{field}` (the field's label),
        /// `{value}` (the refused value), `{owner}` (for `name_taken`) and `{id}` (a token id).
        #[derive(Clone, Debug, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Texts {
            $( $(#[doc = $doc])* pub $name: Text, )*
            /// Texts of refused values by `"{field}.{code}"` or `"{code}"` (see above), in the
            /// order they are looked up.
            pub problems: Vec<(Text, Text)>,
        }

        impl Texts {
            /// The page in English (the default).
            pub fn english() -> Self {
                Self {
                    $( $name: Cow::Borrowed($english), )*
                    problems: vec![(
                        Cow::Borrowed("expires_at.invalid_syntax"),
                        Cow::Borrowed("{message} (write YYYY-MM-DD hh:mm:ss, in UTC)"),
                    )],
                }
            }

            /// The page in the words of Zabbix's frontend (*Users → API tokens*): its
            /// headings, labels, messages and refusals (`Incorrect value for field "name":
            /// cannot be empty.`, `Access denied`).
            pub fn zabbix() -> Self {
                let problems = [
                    ("name.empty", "Incorrect value for field \"name\": cannot be empty."),
                    ("name.too_long", "Invalid parameter \"/1/name\": value is too long."),
                    ("name_taken", "API token \"{value}\" already exists for userid \"{owner}\"."),
                    ("owner.empty", "Field \"userid\" is mandatory."),
                    ("unknown_user", "User with ID \"{value}\" is not available."),
                    ("inactive_user", "User with ID \"{value}\" is not available."),
                    (
                        "description.too_long",
                        "Invalid parameter \"/1/description\": value is too long.",
                    ),
                    (
                        "expires_at.invalid_syntax",
                        "Incorrect value for field \"expires_at\": a time is expected.",
                    ),
                    (
                        "expires_at.empty",
                        "Incorrect value for field \"expires_at\": a time is expected.",
                    ),
                    (
                        "expires_at.out_of_range",
                        "Invalid parameter \"/1/expires_at\": a number is too large.",
                    ),
                    ("not_found", "No permissions to referred object or it does not exist!"),
                    (
                        "other_users_tokens",
                        "No permissions to referred object or it does not exist!",
                    ),
                ];
                Self {
                    $( $name: Cow::Borrowed($zabbix), )*
                    problems: problems
                        .into_iter()
                        .map(|(k, v)| (Cow::Borrowed(k), Cow::Borrowed(v)))
                        .collect(),
                }
            }

            /// Every text by its key (the field's name), in the table's order; the
            /// [`problems`](Texts::problems) are not among them.
            pub fn entries(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
                [$( (stringify!($name), &*self.$name), )*].into_iter()
            }

            /// The text of `key` (a field's name).
            pub fn get(&self, key: &str) -> Option<&str> {
                match key {
                    $( stringify!($name) => Some(&self.$name), )*
                    _ => None,
                }
            }

            /// Replaces the text of `key` (a field's name): a table read from a file.
            ///
            /// # Errors
            /// [`UnknownText`] for a key that names no text (nothing changes).
            pub fn set(&mut self, key: &str, text: impl Into<Cow<'static, str>>) -> Result<(), UnknownText> {
                match key {
                    $( stringify!($name) => self.$name = text.into(), )*
                    _ => return Err(UnknownText { key: key.chars().take(64).collect() }),
                }
                Ok(())
            }
        }
    };
}

texts! {
    /// The page's language, its `<html lang>`.
    lang: "en", "en";
    /// The page's name: the header's link home, the list's heading and tab title.
    app: "API tokens", "API tokens";
    /// The tab title of every other page; `{page}`: that page's heading.
    tab_title: "{page} — API tokens", "API tokens";
    /// Who is signed in; `{user}`: the user (shown in bold).
    signed_in_as: "Signed in as {user}", "Signed in as {user}";
    /// The list's button to the create form.
    create: "Create API token", "Create API token";
    /// The filter's tab (it folds the filter away and back).
    filter: "Filter", "Filter";
    /// The filter's tab while a filter is set.
    filter_active: "Filter (active)", "Filter (active)";
    /// The filter's name field.
    filter_name: "Name", "Name";
    /// The filter's users field (administrators).
    filter_users: "Users", "Users";
    /// The filter's creators field (administrators).
    filter_creators: "Created by", "Created by users";
    /// The placeholder of a users field when the host named no users.
    users_placeholder: "user ids, comma-separated", "user ids, comma-separated";
    /// The filter's "expires in less than N days" checkbox.
    filter_expires: "Expires in less than", "Expires in less than";
    /// The word after its number of days.
    filter_days: "days", "days";
    /// The filter's status field.
    filter_status: "Status", "Status";
    /// The status filter's "any".
    status_any: "Any", "Any";
    /// An enabled token (the status filter, the list's status).
    enabled: "Enabled", "Enabled";
    /// A disabled token.
    disabled: "Disabled", "Disabled";
    /// A token revoked by possession of its secret (final).
    revoked: "Revoked", "Revoked";
    /// The filter's apply button.
    apply: "Apply", "Apply";
    /// The filter's reset button.
    reset: "Reset", "Reset";
    /// The list's name column.
    col_name: "Name", "Name";
    /// The list's user column (administrators).
    col_user: "User", "User";
    /// The list's expiry column.
    col_expires: "Expires at", "Expires at";
    /// The list's creation time column.
    col_created: "Created at", "Created at";
    /// The list's creator column.
    col_creator: "Created by", "Created by user";
    /// The list's last use column.
    col_last_used: "Last accessed at", "Last accessed at";
    /// The list's status column.
    col_status: "Status", "Status";
    /// The label of the checkbox that selects every row.
    select_all: "Select all", "Select all";
    /// The label of a row's checkbox; `{name}`: the token's name.
    select_token: "Select {name}", "Select {name}";
    /// An empty list.
    no_data: "No data found.", "No data found.";
    /// No expiry, or no last use.
    never: "Never", "Never";
    /// The flag beside an expired token's expiry.
    expired: "Expired", "Expired";
    /// Beside the row a refused mass action was about.
    refused_here: "refused: see the message above", "refused: see the message above";
    /// The tooltip of an enabled token's status (a click disables it).
    click_to_disable: "Click to disable", "Click to disable";
    /// The tooltip of a disabled token's status (a click enables it).
    click_to_enable: "Click to enable", "Click to enable";
    /// How many rows are selected; `{n}`: the number.
    selected: "{n} selected", "{n} selected";
    /// The mass enable button.
    mass_enable: "Enable", "Enable";
    /// The mass disable button.
    mass_disable: "Disable", "Disable";
    /// The mass delete button.
    mass_delete: "Delete", "Delete";
    /// Asked before enabling one selected token; `{n}`: 1.
    confirm_enable_one: "Enable the selected API token?", "Enable selected API token?";
    /// Asked before enabling several; `{n}`: how many.
    confirm_enable_many: "Enable {n} selected API tokens?", "Enable selected API tokens?";
    /// Asked before disabling one selected token.
    confirm_disable_one: "Disable the selected API token?", "Disable selected API token?";
    /// Asked before disabling several; `{n}`: how many.
    confirm_disable_many: "Disable {n} selected API tokens?", "Disable selected API tokens?";
    /// Asked before deleting one selected token.
    confirm_delete_one: "Delete the selected API token?", "Delete selected API token?";
    /// Asked before deleting several; `{n}`: how many.
    confirm_delete_many: "Delete {n} selected API tokens?", "Delete selected API tokens?";
    /// The count under a list that fits one page; `{first}`, `{last}`, `{shown}` (rows on
    /// the page), `{total}` (`+` after it when more match than a list reads).
    count_one_page: "Displaying {first} to {last} of {total} found", "Displaying {shown} of {total} found";
    /// The count under a list of several pages (the same values).
    count_pages: "Displaying {first} to {last} of {total} found", "Displaying {first} to {last} of {total} found";
    /// The pager's label.
    pages: "Pages", "Pages";
    /// Under a list cut at the most rows one list reads.
    capped: "More tokens match than one list shows: narrow the filter.", "More tokens match than one list shows: narrow the filter.";
    /// The create form's heading.
    new_token: "New API token", "New API token";
    /// A token's heading (its page, its new secret).
    token: "API token", "API token";
    /// The form's name field.
    label_name: "Name", "Name";
    /// The form's user field (and the user on a token's pages).
    label_user: "User", "User";
    /// The form's description field.
    label_description: "Description", "Description";
    /// The checkbox that gives the token an expiry.
    label_set_expiry: "Set expiration date and time", "Set expiration date and time";
    /// The form's expiry field.
    label_expires_at: "Expires at (UTC)", "Expires at";
    /// The placeholder of an expiry typed as text.
    expires_placeholder: "YYYY-MM-DD hh:mm:ss", "YYYY-MM-DD hh:mm:ss";
    /// The label of the calendar button beside an expiry typed as text.
    calendar: "Calendar", "Calendar";
    /// The form's permissions field.
    label_permissions: "Permissions", "Permissions";
    /// Its placeholder.
    permissions_placeholder: "dns.*, mail.send (* for all of the user's)", "dns.*, mail.send (* for all of the user's)";
    /// The form's allowed addresses field.
    label_allowlist: "Allowed addresses", "Allowed addresses";
    /// Its placeholder.
    allowlist_placeholder: "any; or 10.0.0.0/8, 2001:db8::/32", "any; or 10.0.0.0/8, 2001:db8::/32";
    /// The form's enabled checkbox (and the new secret's page).
    label_enabled: "Enabled", "Enabled";
    /// On the page of a token that has expired.
    token_expired: "This token has expired.", "The token has expired. Please update the expiry date to use the token.";
    /// The create form's submit button.
    add: "Add", "Add";
    /// The edit form's submit button.
    update: "Update", "Update";
    /// A token's regenerate button.
    regenerate: "Regenerate", "Regenerate";
    /// A token's delete button.
    delete: "Delete", "Delete";
    /// Back to the list without saving.
    cancel: "Cancel", "Cancel";
    /// Asked before regenerating.
    confirm_regenerate: "Regenerate the auth token? The current one stops working at once.", "Regenerate selected API token? Previously generated token will become invalid.";
    /// Asked before deleting from a token's page.
    confirm_delete_token: "Delete this API token?", "Delete selected API token?";
    /// The heading over the create form's refusals (empty: no heading, each refusal beside
    /// its field).
    add_failed: "", "Cannot add API token";
    /// The heading over the edit form's refusals (empty: no heading).
    update_failed: "", "Cannot update API token";
    /// A token was added.
    added: "API token added", "API token added";
    /// A token was given a new secret.
    regenerated: "API token regenerated", "API token updated";
    /// A token was updated.
    updated: "API token updated", "API token updated";
    /// One token enabled.
    enabled_one: "API token enabled", "API token enabled";
    /// Several enabled.
    enabled_many: "API tokens enabled", "API tokens enabled";
    /// One token disabled.
    disabled_one: "API token disabled", "API token disabled";
    /// Several disabled.
    disabled_many: "API tokens disabled", "API tokens disabled";
    /// One token deleted.
    deleted_one: "API token deleted", "API token deleted";
    /// Several deleted.
    deleted_many: "API tokens deleted", "API tokens deleted";
    /// A mass action with nothing selected (a browser without the page's script).
    select_first: "Select at least one API token.", "Select at least one API token.";
    /// A refused action about one token; `{id}`: its id, `{message}`: the refusal.
    refused_token: "Token {id}: {message}", "Token {id}: {message}";
    /// The new secret's label.
    auth_token: "Auth token", "Auth token";
    /// The copy button.
    copy: "Copy to clipboard", "Copy to clipboard";
    /// The copy button once it copied.
    copied: "Copied", "Copied";
    /// An enabled token, on the new secret's page.
    yes: "Yes", "Yes";
    /// A disabled token, on the new secret's page.
    no: "No", "No";
    /// The warning beside a new secret.
    copy_warning: "Make sure to copy the auth token: it cannot be viewed again after this page is closed.", "Make sure to copy the auth token as you won't be able to view it after the page is closed.";
    /// The warning beside the new secret of a token that has expired already.
    expired_on_create: "This token has already expired: it is refused until its expiry is moved later.", "The token has expired. Please update the expiry date to use the token.";
    /// A secret's page once it was shown; `{link}`: [`secret_gone_link`](Texts::secret_gone_link)
    /// as a link to the token's page.
    secret_gone: "The auth token was shown once and cannot be viewed again. If it was lost, {link}.", "The auth token was shown once and cannot be viewed again. If it was lost, {link}.";
    /// The link in [`secret_gone`](Texts::secret_gone).
    secret_gone_link: "regenerate it", "regenerate it";
    /// Back to the list from a new secret.
    close: "Close", "Close";
    /// The heading of a confirmation page (a browser without the page's script).
    confirm: "Confirm", "Confirm";
    /// Its button.
    ok: "OK", "OK";
    /// A request the page cannot read (a hand-made address or form).
    bad_request: "Bad request", "Bad request";
    /// No token by that id for this user.
    not_found: "Not found", "Not found";
    /// Its text.
    no_such_token: "No such API token.", "No permissions to referred object or it does not exist!";
    /// The link back to the list under a message.
    back: "Back to the list", "Back to the list";
    /// The heading of a form the page cannot read.
    refused: "Refused", "Refused";
    /// The heading of a form without the session's CSRF token.
    csrf_title: "Refused", "Access denied";
    /// Its text; `{user}`: who is signed in.
    csrf_text: "This form was not sent by this page (its CSRF token is missing, wrong or expired). Nothing was changed: reload the page and try again.", "You are logged in as \"{user}\". You have no permissions to access this page.";
    /// A form that is not `application/x-www-form-urlencoded`.
    not_a_form: "The page takes forms (application/x-www-form-urlencoded) only.", "The page takes forms (application/x-www-form-urlencoded) only.";
    /// A form over the page's size bound.
    form_too_large: "The form is too large.", "The form is too large.";
    /// A form or query string that is not UTF-8.
    not_utf8: "The form is not UTF-8 text.", "The form is not UTF-8 text.";
    /// A sort the list does not have; `{columns}`: the ones it has.
    bad_sort: "sort must be one of {columns}", "sort must be one of {columns}";
    /// An order that is neither `asc` nor `desc`.
    bad_order: "order must be asc or desc", "order must be asc or desc";
    /// A page number that is not one.
    bad_page: "page must be a whole number from 1", "page must be a whole number from 1";
    /// A mass action the page does not have.
    bad_action: "action must be enable, disable or delete", "action must be enable, disable or delete";
    /// A selected id that is not a token id.
    bad_ids: "a selected token id is not a token id", "a selected token id is not a token id";
    /// A status click the page cannot read.
    bad_toggle: "toggle must be a token id and enabled or disabled", "toggle must be a token id and enabled or disabled";
    /// A filter text over its bound; `{max}`: the bound.
    filter_too_long: "at most {max} characters", "at most {max} characters";
    /// A users filter over its bound; `{max}`: the bound.
    filter_too_many: "at most {max} users", "at most {max} users";
    /// A number of days that is not one; `{max}`: the most.
    filter_bad_days: "the number of days must be a whole number from 0 to {max}", "the number of days must be a whole number from 0 to {max}";
    /// A status filter the page does not have.
    filter_bad_status: "status must be any, enabled or disabled", "status must be any, enabled or disabled";
    /// A token added when the session ended before its secret could be shown.
    session_ended_added: "The token was added, but your session ended before its auth token could be shown: regenerate it from its page.", "The token was added, but your session ended before its auth token could be shown: regenerate it from its page.";
    /// A secret regenerated when the session ended before it could be shown.
    session_ended_regenerated: "Your session ended before the new auth token could be shown: regenerate it again.", "Your session ended before the new auth token could be shown: regenerate it again.";
    /// The heading for a request without a caller.
    not_signed_in: "Not signed in", "Not signed in";
    /// Its text; `{message}`: the host's refusal.
    not_signed_in_text: "{message}", "{message}";
    /// A refused value without an entry in [`problems`](Texts::problems) (see above).
    problem: "{message}", "{message}";
}

impl Default for Texts {
    fn default() -> Self {
        Self::english()
    }
}

impl Texts {
    /// Adds (in front, so that it wins) the text of a refused value for `key`:
    /// `"{field}.{code}"` or `"{code}"` (see [`Texts`]).
    pub fn problem(
        &mut self,
        key: impl Into<Cow<'static, str>>,
        text: impl Into<Cow<'static, str>>,
    ) -> &mut Self {
        self.problems.insert(0, (key.into(), text.into()));
        self
    }

    /// The template for a refused value of `field` with `code`.
    pub(crate) fn problem_template(&self, field: Option<&str>, code: &str) -> &str {
        let exact = field.map(|f| format!("{f}.{code}"));
        let find = |key: &str| {
            self.problems
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| &**v)
        };
        exact
            .as_deref()
            .and_then(find)
            .or_else(|| find(code))
            .unwrap_or(&self.problem)
    }

    /// The label of a form field, for `{field}`.
    pub(crate) fn field_label<'a>(&'a self, field: &'a str) -> &'a str {
        match field {
            "name" => &self.label_name,
            "owner" => &self.label_user,
            "description" => &self.label_description,
            "expires_at" => &self.label_expires_at,
            "permissions" => &self.label_permissions,
            "allowlist" => &self.label_allowlist,
            "status" => &self.label_enabled,
            "owners" => &self.filter_users,
            "creators" => &self.filter_creators,
            other => other,
        }
    }
}

/// [`Texts::set`] was given a key that names no text.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnknownText {
    /// The key (its first 64 characters).
    pub key: String,
}

impl fmt::Display for UnknownText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no page text is named {:?}", self.key)
    }
}

impl std::error::Error for UnknownText {}

/// `template` with each `{name}` of `vars` replaced by its value; other braces are kept.
pub(crate) fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    walk(template, vars, &mut |piece| match piece {
        Piece::Text(t) | Piece::Value(t) => out.push_str(t),
    });
    out
}

/// `template` as markup: its text escaped, each `{name}` of `vars` replaced by the markup given
/// (the caller escapes what it puts in).
pub(crate) fn fill_html(template: &str, vars: &[(&str, &str)]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(template.len());
    walk(template, vars, &mut |piece| match piece {
        Piece::Text(t) => {
            let _ = write!(out, "{}", E(t));
        }
        Piece::Value(markup) => out.push_str(markup),
    });
    out
}

enum Piece<'a> {
    Text(&'a str),
    Value(&'a str),
}

fn walk<'a>(template: &'a str, vars: &[(&str, &'a str)], emit: &mut dyn FnMut(Piece<'a>)) {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let (before, tail) = rest.split_at(open);
        let value = tail.find('}').and_then(|close| {
            let name = tail.get(1..close)?;
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v, close))
        });
        match value {
            Some((v, close)) => {
                emit(Piece::Text(before));
                emit(Piece::Value(v));
                rest = tail.get(close + 1..).unwrap_or_default();
            }
            None => {
                let (brace, after) = tail.split_at(1);
                emit(Piece::Text(before));
                emit(Piece::Text(brace));
                rest = after;
            }
        }
    }
    emit(Piece::Text(rest));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_their_values_and_keep_other_braces() {
        assert_eq!(
            fill(
                "Displaying {first} to {last} of {total} found",
                &[("first", "1"), ("last", "8"), ("total", "8+")]
            ),
            "Displaying 1 to 8 of 8+ found"
        );
        assert_eq!(fill("{a}{b}", &[("a", "x")]), "x{b}");
        assert_eq!(fill("{", &[]), "{");
        assert_eq!(fill("}{n", &[("n", "1")]), "}{n");
        assert_eq!(fill("é {n} ü", &[("n", "ā")]), "é ā ü");
        assert_eq!(
            fill_html("<{user}> & \"x\"", &[("user", "<b>a</b>")]),
            "&lt;<b>a</b>&gt; &amp; &quot;x&quot;"
        );
    }

    #[test]
    fn every_text_has_a_key_and_set_replaces_by_key() {
        let mut t = Texts::english();
        let keys: Vec<&str> = t.entries().map(|(k, _)| k).collect();
        assert!(keys.len() > 100, "{}", keys.len());
        for key in &keys {
            t.set(key, format!("<{key}>")).unwrap();
        }
        assert!(t.entries().all(|(k, v)| v == format!("<{k}>")));
        assert_eq!(
            t.set("nope", "x"),
            Err(UnknownText {
                key: "nope".to_owned()
            })
        );
    }

    #[test]
    fn refusals_are_looked_up_by_field_and_code_then_code() {
        let mut t = Texts::zabbix();
        assert_eq!(
            t.problem_template(Some("name"), "empty"),
            "Incorrect value for field \"name\": cannot be empty."
        );
        assert_eq!(
            t.problem_template(Some("description"), "empty"),
            "{message}"
        );
        assert_eq!(
            t.problem_template(Some("name"), "name_taken"),
            "API token \"{value}\" already exists for userid \"{owner}\"."
        );
        t.problem("name_taken", "taken");
        assert_eq!(t.problem_template(Some("name"), "name_taken"), "taken");
        assert_eq!(t.problem_template(None, "store_busy"), "{message}");
    }
}
