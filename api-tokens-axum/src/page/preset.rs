//! How the page looks and behaves beyond its texts: [`Preset`].

use std::ops::RangeInclusive;

use super::texts::Texts;

/// How the create and edit forms take a token's expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpiryInput {
    /// The browser's own date-and-time picker (`<input type="datetime-local">`), read as UTC.
    DateTime,
    /// A text field, `YYYY-MM-DD hh:mm:ss` in UTC, with a calendar button beside it that opens
    /// the browser's picker (with the page's script) and writes its choice into the field:
    /// Zabbix's form.
    Text,
}

/// The page's texts and the choices in which Zabbix's frontend and this page's default
/// differ: which columns a view shows and sorts by, the create form's defaults, the expiry's
/// range. [`Preset::standard`] is the default; [`Preset::zabbix`] is Zabbix's *Users → API
/// tokens* (and *User settings → API tokens* for a user's own tokens), as Zabbix's own
/// frontend tests expect it. Fields are public: start from one and change what you need.
///
/// What both share: mass actions that wait for a selected row (with the page's script; the
/// server asks for one without it), a filter that folds away and stays folded (a cookie the
/// script sets), a warning on the new secret's page when the token has expired already,
/// and the field limits of the host's [`Policy`](api_tokens::Policy) (a name's and a
/// description's length) on the form's fields.
///
/// ```
/// use api_tokens_axum::page::{Preset, TokensPage};
///
/// let mut preset = Preset::zabbix();
/// preset.created_at_sortable = true;
/// let page = TokensPage::new(api_tokens::Tokens::in_memory()).with_preset(preset);
/// # drop(page);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Preset {
    /// Every text the page shows.
    pub texts: Texts,
    /// Whether the list sorts by its "Created at" column (Zabbix: no).
    pub created_at_sortable: bool,
    /// Whether a user's own view (a caller who manages only their own tokens) names users:
    /// the "Created by" column, the user on a token's page and beside its new secret (Zabbix's
    /// *User settings → API tokens*: no).
    pub users_in_own_view: bool,
    /// Whether sorting by expiry puts never-expiring tokens first when ascending (Zabbix
    /// stores "never" as `0`: yes). Otherwise they come last.
    pub never_expires_first: bool,
    /// Whether an administrator's create form starts with themselves as the token's user
    /// (Zabbix: no, the field is empty until one is chosen).
    pub owner_preselected: bool,
    /// Whether the create form starts with "Set expiration date and time" checked (Zabbix:
    /// yes).
    pub expiry_checked: bool,
    /// How the expiry is entered.
    pub expiry_input: ExpiryInput,
    /// Whether the expiry field is hidden (rather than greyed out) while "Set expiration date
    /// and time" is unchecked (with the page's script).
    pub hide_unset_expiry: bool,
    /// Whether a name typed with surrounding whitespace is trimmed before it is checked
    /// (Zabbix's frontend trims: a name of spaces is "empty"). Otherwise it is refused.
    pub trim_names: bool,
    /// The expiries the form accepts, in Unix seconds (Zabbix: a 32-bit signed number, so a
    /// date in 2050 or in 1021 is refused); a value outside is refused with the code
    /// `out_of_range`. `None`: any the core accepts.
    pub expiry_range: Option<RangeInclusive<i64>>,
}

impl Preset {
    /// The page's default: English texts, every column sortable, a user's own view that names
    /// creators, the admin's create form for themselves without an expiry, the browser's own
    /// date-and-time picker, never-expiring tokens last.
    pub fn standard() -> Self {
        Self {
            texts: Texts::english(),
            created_at_sortable: true,
            users_in_own_view: true,
            never_expires_first: false,
            owner_preselected: true,
            expiry_checked: false,
            expiry_input: ExpiryInput::DateTime,
            hide_unset_expiry: false,
            trim_names: false,
            expiry_range: None,
        }
    }

    /// Zabbix's frontend: its texts ([`Texts::zabbix`]), "Created at" not sortable, no
    /// "Created by" column and no user on a user's own view, never-expiring tokens first when
    /// sorting by expiry, a create form with an empty user and "Set expiration date and time"
    /// checked, the expiry as text with a calendar button (hidden while unchecked), names
    /// trimmed, expiries within a 32-bit Unix time.
    ///
    /// Pair it with [`Policy::zabbix`](api_tokens::Policy::zabbix) on the [`Tokens`](api_tokens::Tokens)
    /// (names of at most 64 characters, descriptions of at most 65,535, secrets of 64 hex
    /// digits).
    pub fn zabbix() -> Self {
        Self {
            texts: Texts::zabbix(),
            created_at_sortable: false,
            users_in_own_view: false,
            never_expires_first: true,
            owner_preselected: false,
            expiry_checked: true,
            expiry_input: ExpiryInput::Text,
            hide_unset_expiry: true,
            trim_names: true,
            expiry_range: Some(i64::from(i32::MIN)..=i64::from(i32::MAX)),
        }
    }
}

impl Default for Preset {
    fn default() -> Self {
        Self::standard()
    }
}
