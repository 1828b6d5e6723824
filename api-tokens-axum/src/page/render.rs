//! The page's views. Markup is written here; every value that comes from a user, a token or a
//! request is written through [`E`] (escaped), never pasted, and every text comes from the
//! page's [`Texts`].

use api_tokens::time::OffsetDateTime;
use api_tokens::{Status, Token, TokenId, UserId};

use super::html::{E, Html, datetime};
use super::preset::{ExpiryInput, Preset};
use super::session::{Filter, Notice, Pending, Reveal};
use super::texts::{Texts, fill, fill_html};
use super::{Col, ListView, MAX_DAYS};

/// What every view needs: where the page is mounted, who is looking, the session's CSRF token,
/// the page's texts and preset.
pub(crate) struct Frame<'a> {
    pub(crate) base: &'a str,
    pub(crate) user: &'a UserId,
    pub(crate) csrf: &'a str,
    pub(crate) admin: bool,
    pub(crate) users: &'a [UserId],
    pub(crate) preset: &'a Preset,
    pub(crate) texts: &'a Texts,
    /// The longest name the host's policy accepts, in characters.
    pub(crate) name_max: usize,
    /// The longest description the host's policy accepts, in characters.
    pub(crate) description_max: usize,
    /// Whether the browser folded the filter away.
    pub(crate) filter_folded: bool,
}

impl Frame<'_> {
    /// The list's address (the page's root).
    pub(crate) fn list_url(&self) -> String {
        if self.base.is_empty() {
            "/".to_owned()
        } else {
            self.base.to_owned()
        }
    }

    /// Whether this view names users (an administrator's, or a preset that does for a user's
    /// own tokens).
    fn names_users(&self) -> bool {
        self.admin || self.preset.users_in_own_view
    }
}

/// Messages refused values produced, each with the form field it belongs to (`None`: the form
/// as a whole).
#[derive(Debug, Default)]
pub(crate) struct Errors(pub(crate) Vec<(Option<String>, String)>);

impl Errors {
    pub(crate) fn add(&mut self, field: Option<&str>, message: impl Into<String>) {
        self.0.push((field.map(str::to_owned), message.into()));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn has(&self, field: &str) -> bool {
        self.0.iter().any(|(f, _)| f.as_deref() == Some(field))
    }
}

/// How a form shows its refusals: each beside its field (and the form's own above it), or all
/// in one box under a heading (`Cannot add API token`), as Zabbix's frontend does.
struct Shown<'a> {
    errors: &'a Errors,
    boxed: bool,
}

impl<'a> Shown<'a> {
    /// Writes what goes above the form: the box under `heading` (when the heading is not empty
    /// and something was refused), or the refusals of the form as a whole.
    fn top(h: &mut Html, errors: &'a Errors, heading: &str) -> Self {
        let boxed = !heading.is_empty() && !errors.is_empty();
        if boxed {
            h.w(format_args!(
                "<div class=\"notice bad\" role=\"alert\" id=\"refusals\"><strong>{}</strong><ul>",
                E(heading)
            ));
            for (field, message) in &errors.0 {
                match field {
                    Some(f) => h.w(format_args!(
                        "<li id=\"{}-error\">{}</li>",
                        E(f),
                        E(message)
                    )),
                    None => h.w(format_args!("<li>{}</li>", E(message))),
                }
            }
            h.s("</ul></div>");
        } else {
            general(h, errors);
        }
        Self { errors, boxed }
    }

    /// The refusals of `field`, beside it (unless they are in the box).
    fn beside(&self, h: &mut Html, field: &str) {
        if !self.boxed {
            beside(h, self.errors, field);
        }
    }
}

/// The refusals of the form as a whole.
fn general(h: &mut Html, errors: &Errors) {
    for (field, message) in &errors.0 {
        if field.is_none() {
            h.w(format_args!(
                "<p class=\"notice bad\" role=\"alert\">{}</p>",
                E(message)
            ));
        }
    }
}

/// The refusals of `field`, written beside it.
fn beside(h: &mut Html, errors: &Errors, field: &str) {
    for (f, message) in &errors.0 {
        if f.as_deref() == Some(field) {
            h.w(format_args!(
                "<p class=\"error\" id=\"{}-error\" role=\"alert\">{}</p>",
                E(field),
                E(message)
            ));
        }
    }
}

/// The document's head and the page's header; `page` is the page's heading (`None`: the list,
/// whose title is the page's name).
fn head(h: &mut Html, frame: &Frame<'_>, page: Option<&str>) {
    let t = frame.texts;
    let title = match page {
        Some(p) => fill(&t.tab_title, &[("page", p)]),
        None => t.app.to_string(),
    };
    let user = format!("<b>{}</b>", E(frame.user.as_str()));
    h.w(format_args!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title>\
         <link rel=\"stylesheet\" href=\"{}/assets/page.css\">\
         <script src=\"{}/assets/page.js\" defer></script></head>\
         <body><header><a class=\"home\" href=\"{}\">{}</a>\
         <span class=\"who\">{}</span></header><main>",
        E(&t.lang),
        E(&title),
        E(frame.base),
        E(frame.base),
        E(&frame.list_url()),
        E(&t.app),
        fill_html(&t.signed_in_as, &[("user", &user)]),
    ));
}

fn foot(h: &mut Html) {
    h.s("</main></body></html>\n");
}

fn csrf(h: &mut Html, frame: &Frame<'_>) {
    h.w(format_args!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        E(frame.csrf)
    ));
}

fn notice(h: &mut Html, notice: Option<&Notice>) {
    if let Some(n) = notice {
        h.w(format_args!(
            "<p class=\"notice {}\" role=\"status\">{}</p>",
            if n.ok { "good" } else { "bad" },
            E(&n.text)
        ));
    }
}

/// A page with a title and a message (refusals, "not found").
pub(crate) fn message(frame: &Frame<'_>, title: &str, text: &str) -> String {
    let mut h = Html::default();
    head(&mut h, frame, Some(title));
    h.w(format_args!(
        "<h1>{}</h1><p class=\"notice bad\" role=\"alert\">{}</p><p><a href=\"{}\">{}</a></p>",
        E(title),
        E(text),
        E(&frame.list_url()),
        E(&frame.texts.back)
    ));
    foot(&mut h);
    h.0
}

/// A message page for a request without a session frame (no caller).
pub(crate) fn bare_message(texts: &Texts, title: &str, text: &str) -> String {
    let mut h = Html::default();
    h.w(format_args!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body><h1>{}</h1><p role=\"alert\">{}</p></body></html>\n",
        E(&texts.lang),
        E(title),
        E(title),
        E(text)
    ));
    h.0
}

fn user_list(users: &[UserId]) -> String {
    users
        .iter()
        .map(UserId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A users field: a multiple select when the host named its users, comma-separated text
/// otherwise.
fn users_field(
    h: &mut Html,
    frame: &Frame<'_>,
    name: &str,
    label: &str,
    chosen: &[UserId],
    text: Option<&str>,
) {
    h.w(format_args!(
        "<label for=\"f-{}\">{}</label>",
        E(name),
        E(label)
    ));
    if frame.users.is_empty() {
        let value = text.map_or_else(|| user_list(chosen), str::to_owned);
        h.w(format_args!(
            "<input type=\"text\" id=\"f-{}\" name=\"{}\" value=\"{}\" placeholder=\"{}\">",
            E(name),
            E(name),
            E(&value),
            E(&frame.texts.users_placeholder)
        ));
    } else {
        h.w(format_args!(
            "<select id=\"f-{}\" name=\"{}\" multiple size=\"3\">",
            E(name),
            E(name)
        ));
        for u in frame.users {
            h.w(format_args!(
                "<option value=\"{}\"{}>{}</option>",
                E(u.as_str()),
                if chosen.contains(u) { " selected" } else { "" },
                E(u.as_str())
            ));
        }
        h.s("</select>");
    }
}

/// The filter form's values as typed, when they were refused and are shown again.
#[derive(Debug, Default)]
pub(crate) struct FilterInput {
    pub(crate) name: String,
    pub(crate) owners: String,
    pub(crate) creators: String,
    pub(crate) expires_soon: bool,
    pub(crate) expires_days: String,
    pub(crate) status: String,
}

impl FilterInput {
    pub(crate) fn of(f: &Filter) -> Self {
        Self {
            name: f.name.clone(),
            owners: user_list(&f.owners),
            creators: user_list(&f.creators),
            expires_soon: f.expires_within_days.is_some(),
            expires_days: f
                .expires_within_days
                .map_or_else(|| "7".to_owned(), |d| d.to_string()),
            status: match f.status {
                None => "any",
                Some(Status::Enabled) => "enabled",
                Some(_) => "disabled",
            }
            .to_owned(),
        }
    }
}

/// The filter, under a tab that folds it away (a `<details>`: without the page's script too;
/// the script keeps the fold in a cookie, which the next page honours).
fn filter_form(
    h: &mut Html,
    frame: &Frame<'_>,
    filter: &Filter,
    input: &FilterInput,
    errors: &Errors,
) {
    let t = frame.texts;
    // A refused filter stays open, whatever the browser folded.
    let open = !frame.filter_folded || !errors.is_empty();
    h.w(format_args!(
        "<details class=\"filter\" id=\"filter\" data-fold-cookie=\"{}\" data-fold-path=\"{}\"{}>\
         <summary id=\"filter-tab\">{}</summary>\
         <form method=\"post\" action=\"{}/filter\" id=\"filter-form\">",
        super::FOLD_COOKIE,
        E(&frame.list_url()),
        if open { " open" } else { "" },
        E(if filter.is_empty() {
            &t.filter
        } else {
            &t.filter_active
        }),
        E(frame.base),
    ));
    csrf(h, frame);
    h.s("<div class=\"fields\"><div>");
    h.w(format_args!(
        "<label for=\"f-name\">{}</label><input type=\"text\" id=\"f-name\" name=\"name\" maxlength=\"255\" value=\"{}\">",
        E(&t.filter_name),
        E(&input.name)
    ));
    beside(h, errors, "name");
    h.s("</div>");
    if frame.admin {
        h.s("<div>");
        users_field(
            h,
            frame,
            "owners",
            &t.filter_users,
            &filter.owners,
            errors.has("owners").then_some(input.owners.as_str()),
        );
        beside(h, errors, "owners");
        h.s("</div>");
    }
    h.w(format_args!(
        "<div><label for=\"f-expires-soon\"><input type=\"checkbox\" name=\"expires_soon\" id=\"f-expires-soon\"{}> {}</label> \
         <input type=\"number\" name=\"expires_days\" id=\"f-expires-days\" min=\"0\" max=\"{MAX_DAYS}\" value=\"{}\" aria-label=\"{}\"> {}",
        if input.expires_soon { " checked" } else { "" },
        E(&t.filter_expires),
        E(&input.expires_days),
        E(&t.filter_days),
        E(&t.filter_days),
    ));
    beside(h, errors, "expires_days");
    h.s("</div>");
    if frame.admin {
        h.s("<div>");
        users_field(
            h,
            frame,
            "creators",
            &t.filter_creators,
            &filter.creators,
            errors.has("creators").then_some(input.creators.as_str()),
        );
        beside(h, errors, "creators");
        h.s("</div>");
    }
    h.w(format_args!(
        "<div role=\"radiogroup\" aria-labelledby=\"f-status\"><span class=\"label\" id=\"f-status\">{}</span>",
        E(&t.filter_status)
    ));
    for (value, label) in [
        ("any", &t.status_any),
        ("enabled", &t.enabled),
        ("disabled", &t.disabled),
    ] {
        h.w(format_args!(
            "<label><input type=\"radio\" name=\"status\" value=\"{value}\"{}> {}</label>",
            if input.status == value {
                " checked"
            } else {
                ""
            },
            E(label)
        ));
    }
    beside(h, errors, "status");
    h.w(format_args!(
        "</div></div><div class=\"buttons\"><button type=\"submit\" name=\"apply\" value=\"1\" id=\"filter-apply\">{}</button>\
         <button type=\"submit\" name=\"reset\" value=\"1\" id=\"filter-reset\" class=\"secondary\">{}</button></div></form></details>",
        E(&t.apply),
        E(&t.reset)
    ));
}

/// A column's header: a link that sorts by it, or its label where the view does not sort by it.
fn header(h: &mut Html, frame: &Frame<'_>, view: &ListView, col: Col) {
    let label = col.label(frame.texts);
    if !col.sortable(frame.admin, frame.preset) {
        h.w(format_args!(
            "<th scope=\"col\" id=\"col-{}\">{}</th>",
            col.name(),
            E(label)
        ));
        return;
    }
    let desc = view.sort == col && !view.desc;
    let arrow = match (view.sort == col, view.desc) {
        (false, _) => "",
        (true, false) => " ▲",
        (true, true) => " ▼",
    };
    h.w(format_args!(
        "<th scope=\"col\" id=\"col-{}\" aria-sort=\"{}\"><a id=\"sort-{}\" href=\"{}?sort={}&amp;order={}\">{}{}</a></th>",
        col.name(),
        match (view.sort == col, view.desc) {
            (false, _) => "none",
            (true, false) => "ascending",
            (true, true) => "descending",
        },
        col.name(),
        E(&frame.list_url()),
        col.name(),
        if desc { "desc" } else { "asc" },
        E(label),
        arrow
    ));
}

fn expiry_cell(h: &mut Html, texts: &Texts, token: &Token, now: OffsetDateTime) {
    match token.expiry.instant() {
        None => h.w(format_args!(
            "<td class=\"time expires\">{}</td>",
            E(&texts.never)
        )),
        Some(at) if token.is_expired_at(now) => h.w(format_args!(
            "<td class=\"time expires expired\"><span class=\"red\">{}</span> <span class=\"badge\">{}</span></td>",
            E(&datetime(at)),
            E(&texts.expired)
        )),
        Some(at) => h.w(format_args!(
            "<td class=\"time expires\">{}</td>",
            E(&datetime(at))
        )),
    }
}

/// A row's cell of `col`.
fn cell(h: &mut Html, frame: &Frame<'_>, col: Col, t: &Token, now: OffsetDateTime, flagged: bool) {
    let texts = frame.texts;
    let id = t.id.get();
    match col {
        Col::Name => h.w(format_args!(
            "<td class=\"name\"><a href=\"{}/{id}\">{}</a>{}</td>",
            E(frame.base),
            E(t.name.as_str()),
            if flagged {
                format!(
                    "<span class=\"error\" role=\"alert\"> {}</span>",
                    E(&texts.refused_here)
                )
            } else {
                String::new()
            },
        )),
        Col::User => h.w(format_args!(
            "<td class=\"user\">{}</td>",
            E(t.owner.as_str())
        )),
        Col::Expires => expiry_cell(h, texts, t, now),
        Col::Created => h.w(format_args!(
            "<td class=\"time created\">{}</td>",
            E(&datetime(t.created_at))
        )),
        Col::Creator => h.w(format_args!(
            "<td class=\"creator\">{}</td>",
            E(t.creator.as_str())
        )),
        Col::LastUsed => h.w(format_args!(
            "<td class=\"time used\">{}</td>",
            E(&t.last_use
                .map_or_else(|| texts.never.to_string(), |u| datetime(u.at)))
        )),
        Col::Status if t.is_revoked() => h.w(format_args!(
            "<td class=\"status\"><span class=\"red\">{}</span></td>",
            E(&texts.revoked)
        )),
        Col::Status => {
            let (label, class, to, tip) = match t.status {
                Status::Enabled => (&texts.enabled, "green", "disabled", &texts.click_to_disable),
                _ => (&texts.disabled, "red", "enabled", &texts.click_to_enable),
            };
            h.w(format_args!(
                "<td class=\"status\"><button type=\"submit\" class=\"link {class}\" id=\"status-{id}\" name=\"toggle\" value=\"{id}:{to}\" \
                 formaction=\"{}/toggle\" title=\"{}\">{}</button></td>",
                E(frame.base),
                E(tip),
                E(label)
            ));
        }
    }
}

/// The list: the filter, the table with its checkboxes and status buttons, the mass actions
/// and the pager.
#[allow(clippy::too_many_arguments)]
pub(crate) fn list(
    frame: &Frame<'_>,
    filter: &Filter,
    input: &FilterInput,
    errors: &Errors,
    notice_: Option<&Notice>,
    view: &ListView,
    rows: &[Token],
    total: usize,
    capped: bool,
    page_size: usize,
    now: OffsetDateTime,
) -> String {
    let t = frame.texts;
    let mut h = Html::default();
    head(&mut h, frame, None);
    h.w(format_args!(
        "<div class=\"title\"><h1>{}</h1><a class=\"button\" id=\"create\" href=\"{}/new\">{}</a></div>",
        E(&t.app),
        E(frame.base),
        E(&t.create)
    ));
    notice(&mut h, notice_);
    general(&mut h, errors);
    filter_form(&mut h, frame, filter, input, errors);

    h.w(format_args!(
        "<form id=\"list\" method=\"post\" action=\"{}/mass\">",
        E(frame.base)
    ));
    csrf(&mut h, frame);
    h.w(format_args!(
        "<input type=\"hidden\" name=\"confirmed\" value=\"0\">\
         <input type=\"hidden\" name=\"sort\" value=\"{}\"><input type=\"hidden\" name=\"order\" value=\"{}\">\
         <input type=\"hidden\" name=\"page\" value=\"{}\">",
        view.sort.name(),
        if view.desc { "desc" } else { "asc" },
        view.page
    ));
    h.w(format_args!(
        "<table class=\"list\"><thead><tr><th scope=\"col\" class=\"check\"><input type=\"checkbox\" id=\"select-all\" data-select-all aria-label=\"{}\"></th>",
        E(&t.select_all)
    ));
    let cols = Col::shown(frame.admin, frame.preset);
    for col in &cols {
        header(&mut h, frame, view, *col);
    }
    h.s("</tr></thead><tbody>");
    if rows.is_empty() {
        h.w(format_args!(
            "<tr><td colspan=\"{}\" class=\"empty\">{}</td></tr>",
            cols.len() + 1,
            E(&t.no_data)
        ));
    }
    let flagged = notice_.filter(|n| !n.ok).and_then(|n| n.token);
    for row in rows {
        let id = row.id.get();
        h.w(format_args!(
            "<tr id=\"token-{id}\"{}><td class=\"check\"><input type=\"checkbox\" name=\"ids\" value=\"{id}\" aria-label=\"{}\"></td>",
            if flagged == Some(row.id) { " class=\"refused\"" } else { "" },
            E(&fill(&t.select_token, &[("name", row.name.as_str())])),
        ));
        for col in &cols {
            cell(&mut h, frame, *col, row, now, flagged == Some(row.id));
        }
        h.s("</tr>");
    }
    h.s("</tbody></table>");
    let pages = total.div_ceil(page_size.max(1)).max(1);
    let first = if total == 0 {
        0
    } else {
        (view.page - 1) * page_size + 1
    };
    let last = (view.page * page_size).min(total);
    let shown = if total == 0 { 0 } else { last + 1 - first };
    let total_text = format!("{total}{}", if capped { "+" } else { "" });
    let count = fill(
        if pages > 1 {
            &t.count_pages
        } else {
            &t.count_one_page
        },
        &[
            ("first", &first.to_string()),
            ("last", &last.to_string()),
            ("shown", &shown.to_string()),
            ("total", &total_text),
        ],
    );
    // The mass actions wait for a selected row: the page's script disables them until one
    // is; without it they stay enabled, and the server asks for a selection.
    h.w(format_args!(
        "<div class=\"footer\"><span class=\"selected\" id=\"selected\" data-template=\"{}\">{}</span>",
        E(&t.selected),
        E(&fill(&t.selected, &[("n", "0")]))
    ));
    for (action, label, one, many, class) in [
        (
            "enable",
            &t.mass_enable,
            &t.confirm_enable_one,
            &t.confirm_enable_many,
            "",
        ),
        (
            "disable",
            &t.mass_disable,
            &t.confirm_disable_one,
            &t.confirm_disable_many,
            "",
        ),
        (
            "delete",
            &t.mass_delete,
            &t.confirm_delete_one,
            &t.confirm_delete_many,
            " class=\"danger\"",
        ),
    ] {
        h.w(format_args!(
            "<button type=\"submit\" name=\"action\" value=\"{action}\" id=\"mass-{action}\"{class} data-needs-selection \
             data-confirm-one=\"{}\" data-confirm-many=\"{}\">{}</button>",
            E(one),
            E(many),
            E(label)
        ));
    }
    h.w(format_args!(
        "<span class=\"count\" id=\"count\">{}</span>",
        E(&count)
    ));
    beside(&mut h, errors, "ids");
    h.s("</div></form>");
    if pages > 1 {
        h.w(format_args!(
            "<nav class=\"pager\" aria-label=\"{}\">",
            E(&t.pages)
        ));
        for p in 1..=pages {
            if p == view.page {
                h.w(format_args!("<span aria-current=\"page\">{p}</span>"));
            } else {
                h.w(format_args!(
                    "<a href=\"{}?sort={}&amp;order={}&amp;page={p}\">{p}</a>",
                    E(&frame.list_url()),
                    view.sort.name(),
                    if view.desc { "desc" } else { "asc" }
                ));
            }
        }
        h.s("</nav>");
    }
    if capped {
        h.w(format_args!("<p class=\"notice\">{}</p>", E(&t.capped)));
    }
    foot(&mut h);
    h.0
}

/// A token form's values as shown.
#[derive(Debug, Default)]
pub(crate) struct TokenInput {
    pub(crate) name: String,
    pub(crate) owner: String,
    pub(crate) description: String,
    pub(crate) set_expiry: bool,
    pub(crate) expires_at: String,
    pub(crate) enabled: bool,
    pub(crate) permissions: String,
    pub(crate) allowlist: String,
}

impl TokenInput {
    pub(crate) fn of(t: &Token) -> Self {
        Self {
            name: t.name.as_str().to_owned(),
            owner: t.owner.as_str().to_owned(),
            description: t.description.clone(),
            set_expiry: !t.expiry.is_never(),
            expires_at: t.expiry.instant().map(datetime).unwrap_or_default(),
            enabled: t.status == Status::Enabled,
            permissions: t.permissions.to_string(),
            allowlist: t.allowlist.to_string(),
        }
    }
}

/// A form row: its label, and `field` (already written markup) with its refusals.
fn row(h: &mut Html, shown: &Shown<'_>, name: &str, label: &str, field: &str) {
    h.w(format_args!(
        "<div class=\"row\" id=\"row-{}\"><label for=\"t-{}\">{}</label><div>{field}",
        E(name),
        E(name),
        E(label),
    ));
    shown.beside(h, name);
    h.s("</div></div>");
}

/// `aria-invalid` (and where the refusal is) for a refused field.
fn invalid(errors: &Errors, name: &str) -> String {
    if errors.has(name) {
        format!(
            " aria-invalid=\"true\" aria-describedby=\"{}-error\"",
            E(name)
        )
    } else {
        String::new()
    }
}

fn text_input(errors: &Errors, name: &str, value: &str, extra: &str) -> String {
    format!(
        "<input type=\"text\" id=\"t-{}\" name=\"{}\" value=\"{}\"{}{extra}>",
        E(name),
        E(name),
        E(value),
        invalid(errors, name),
    )
}

/// The expiry field: the browser's date-and-time picker, or text with a calendar button that
/// opens it (the button appears with the page's script).
fn expiry_input(frame: &Frame<'_>, errors: &Errors, value: &str) -> String {
    let t = frame.texts;
    match frame.preset.expiry_input {
        ExpiryInput::Text => format!(
            "{}<button type=\"button\" class=\"calendar\" id=\"expires_at_calendar\" data-picker=\"t-expires_at-picker\" \
             title=\"{}\" aria-label=\"{}\" hidden></button>\
             <input type=\"datetime-local\" step=\"1\" id=\"t-expires_at-picker\" class=\"picker\" tabindex=\"-1\" aria-hidden=\"true\" \
             data-fills=\"t-expires_at\">",
            text_input(
                errors,
                "expires_at",
                value,
                &format!(
                    " maxlength=\"255\" placeholder=\"{}\"",
                    E(&t.expires_placeholder)
                ),
            ),
            E(&t.calendar),
            E(&t.calendar),
        ),
        // Any other: the browser's own picker. It takes `YYYY-MM-DDThh:mm:ss`; a value in any
        // other form (typed elsewhere and refused) is shown empty by the browser.
        _ => format!(
            "<input type=\"datetime-local\" step=\"1\" id=\"t-expires_at\" name=\"expires_at\" value=\"{}\"{}>",
            E(&picker_value(value)),
            invalid(errors, "expires_at"),
        ),
    }
}

/// `YYYY-MM-DD hh:mm:ss` as a date-and-time input's value (`YYYY-MM-DDThh:mm:ss`).
fn picker_value(value: &str) -> String {
    let v = value.trim();
    match v.split_once(' ') {
        Some((date, time)) if date.len() == 10 && !time.contains(' ') => format!("{date}T{time}"),
        _ => v.to_owned(),
    }
}

/// The create form (`token` is `None`) or a token's page with its edit form, regenerate and
/// delete.
pub(crate) fn token_form(
    frame: &Frame<'_>,
    token: Option<&Token>,
    input: &TokenInput,
    errors: &Errors,
    now: OffsetDateTime,
) -> String {
    let t = frame.texts;
    let mut h = Html::default();
    let title: &str = if token.is_some() {
        &t.token
    } else {
        &t.new_token
    };
    head(&mut h, frame, Some(title));
    h.w(format_args!("<h1>{}</h1>", E(title)));
    let shown = Shown::top(
        &mut h,
        errors,
        if token.is_some() {
            &t.update_failed
        } else {
            &t.add_failed
        },
    );
    let action = match token {
        Some(tok) => format!("{}/{}", frame.base, tok.id.get()),
        None => format!("{}/new", frame.base),
    };
    h.w(format_args!(
        "<form id=\"token\" method=\"post\" action=\"{}\" novalidate>",
        E(&action)
    ));
    csrf(&mut h, frame);
    row(
        &mut h,
        &shown,
        "name",
        &t.label_name,
        &text_input(
            errors,
            "name",
            &input.name,
            &format!(" maxlength=\"{}\" required autofocus", frame.name_max),
        ),
    );
    match token {
        Some(tok) if frame.names_users() => h.w(format_args!(
            "<div class=\"row\" id=\"row-owner\"><span class=\"label\">{}</span><div><span id=\"t-owner\">{}</span></div></div>",
            E(&t.label_user),
            E(tok.owner.as_str())
        )),
        Some(_) => {}
        None if frame.admin => {
            let field = if frame.users.is_empty() {
                text_input(errors, "owner", &input.owner, " required")
            } else {
                let mut select = format!(
                    "<select id=\"t-owner\" name=\"owner\" required{}>",
                    invalid(errors, "owner")
                );
                if !frame.preset.owner_preselected || input.owner.is_empty() {
                    select.push_str("<option value=\"\"></option>");
                }
                for u in frame.users {
                    select.push_str(&format!(
                        "<option value=\"{}\"{}>{}</option>",
                        E(u.as_str()),
                        if input.owner == u.as_str() {
                            " selected"
                        } else {
                            ""
                        },
                        E(u.as_str())
                    ));
                }
                select.push_str("</select>");
                select
            };
            row(&mut h, &shown, "owner", &t.label_user, &field);
        }
        None => {}
    }
    row(
        &mut h,
        &shown,
        "description",
        &t.label_description,
        &format!(
            "<textarea id=\"t-description\" name=\"description\" rows=\"3\" maxlength=\"{}\"{}>{}</textarea>",
            frame.description_max,
            invalid(errors, "description"),
            E(&input.description)
        ),
    );
    h.w(format_args!(
        "<div class=\"row\"><label for=\"t-set-expiry\">{}</label><div>\
         <input type=\"checkbox\" id=\"t-set-expiry\" name=\"set_expiry\" data-toggles=\"t-expires_at\"{}{}></div></div>",
        E(&t.label_set_expiry),
        if frame.preset.hide_unset_expiry {
            " data-hides=\"row-expires_at\""
        } else {
            ""
        },
        if input.set_expiry { " checked" } else { "" }
    ));
    row(
        &mut h,
        &shown,
        "expires_at",
        &t.label_expires_at,
        &expiry_input(frame, errors, &input.expires_at),
    );
    if let Some(tok) = token
        && tok.is_expired_at(now)
    {
        h.w(format_args!(
            "<p class=\"notice bad\" id=\"token-expired\">{}</p>",
            E(&t.token_expired)
        ));
    }
    row(
        &mut h,
        &shown,
        "permissions",
        &t.label_permissions,
        &text_input(
            errors,
            "permissions",
            &input.permissions,
            &format!(" placeholder=\"{}\"", E(&t.permissions_placeholder)),
        ),
    );
    row(
        &mut h,
        &shown,
        "allowlist",
        &t.label_allowlist,
        &text_input(
            errors,
            "allowlist",
            &input.allowlist,
            &format!(" placeholder=\"{}\"", E(&t.allowlist_placeholder)),
        ),
    );
    h.w(format_args!(
        "<div class=\"row\" id=\"row-enabled\"><label for=\"t-enabled\">{}</label><div>\
         <input type=\"checkbox\" id=\"t-enabled\" name=\"enabled\"{}>",
        E(&t.label_enabled),
        if input.enabled { " checked" } else { "" }
    ));
    shown.beside(&mut h, "status");
    h.s("</div></div>");
    h.w(format_args!(
        "<div class=\"buttons\"><button type=\"submit\" id=\"submit\">{}</button>",
        E(if token.is_some() { &t.update } else { &t.add })
    ));
    if let Some(tok) = token {
        let id = tok.id.get();
        h.w(format_args!(
            "<button type=\"submit\" id=\"regenerate\" form=\"regenerate-form\" class=\"secondary\" \
             data-confirm=\"{}\">{}</button>\
             <button type=\"submit\" id=\"delete\" form=\"delete-form\" class=\"danger\" \
             data-confirm=\"{}\">{}</button>",
            E(&t.confirm_regenerate),
            E(&t.regenerate),
            E(&t.confirm_delete_token),
            E(&t.delete)
        ));
        h.w(format_args!(
            "<a class=\"button secondary\" id=\"cancel\" href=\"{}\">{}</a></div></form>\
             <form id=\"regenerate-form\" method=\"post\" action=\"{}/{id}/regenerate\">",
            E(&frame.list_url()),
            E(&t.cancel),
            E(frame.base)
        ));
        csrf(&mut h, frame);
        h.w(format_args!(
            "<input type=\"hidden\" name=\"confirmed\" value=\"0\"></form>\
             <form id=\"delete-form\" method=\"post\" action=\"{}/mass\">",
            E(frame.base)
        ));
        csrf(&mut h, frame);
        h.w(format_args!(
            "<input type=\"hidden\" name=\"confirmed\" value=\"0\"><input type=\"hidden\" name=\"action\" value=\"delete\">\
             <input type=\"hidden\" name=\"ids\" value=\"{id}\"></form>"
        ));
    } else {
        h.w(format_args!(
            "<a class=\"button secondary\" id=\"cancel\" href=\"{}\">{}</a></div></form>",
            E(&frame.list_url()),
            E(&t.cancel)
        ));
    }
    foot(&mut h);
    h.0
}

/// The new secret, shown this once (`pending`), or the page that says it is gone.
pub(crate) fn secret(
    frame: &Frame<'_>,
    id: TokenId,
    token: Option<&Token>,
    pending: Option<&Pending>,
    now: OffsetDateTime,
) -> String {
    let t = frame.texts;
    let mut h = Html::default();
    head(&mut h, frame, Some(&t.token));
    h.w(format_args!("<h1>{}</h1>", E(&t.token)));
    match pending {
        Some(p) => {
            h.w(format_args!(
                "<p class=\"notice good\" role=\"status\">{}</p>",
                E(match p.why {
                    Reveal::Created => &t.added,
                    Reveal::Regenerated => &t.regenerated,
                })
            ));
            h.s("<dl class=\"details\">");
            h.w(format_args!(
                "<dt>{}</dt><dd id=\"s-name\">{}</dd>",
                E(&t.label_name),
                E(p.name.as_str())
            ));
            if let Some(tok) = token
                && frame.names_users()
            {
                h.w(format_args!(
                    "<dt>{}</dt><dd id=\"s-user\">{}</dd>",
                    E(&t.label_user),
                    E(tok.owner.as_str())
                ));
            }
            h.w(format_args!(
                "<dt>{}</dt><dd><input type=\"text\" id=\"auth-token\" readonly size=\"70\" value=\"{}\" aria-label=\"{}\"> \
                 <button type=\"button\" id=\"copy\" data-copy=\"auth-token\" data-copied=\"{}\">{}</button></dd>",
                E(&t.auth_token),
                E(p.secret.expose()),
                E(&t.auth_token),
                E(&t.copied),
                E(&t.copy)
            ));
            if let Some(tok) = token {
                h.w(format_args!(
                    "<dt>{}</dt><dd id=\"s-expires\">{}</dd><dt>{}</dt><dd id=\"s-description\">{}</dd><dt>{}</dt><dd id=\"s-enabled\">{}</dd>",
                    E(&t.label_expires_at),
                    E(&tok
                        .expiry
                        .instant()
                        .map_or_else(|| t.never.to_string(), datetime)),
                    E(&t.label_description),
                    E(&tok.description),
                    E(&t.label_enabled),
                    E(if tok.status == Status::Enabled {
                        &t.yes
                    } else {
                        &t.no
                    })
                ));
            }
            h.s("</dl>");
            if let Some(tok) = token
                && tok.is_expired_at(now)
            {
                h.w(format_args!(
                    "<p class=\"notice bad\" role=\"alert\" id=\"expired-warning\">{}</p>",
                    E(&t.expired_on_create)
                ));
            }
            h.w(format_args!(
                "<p class=\"notice warning\" role=\"alert\" id=\"warning\">{}</p>",
                E(&t.copy_warning)
            ));
        }
        None => {
            let link = format!(
                "<a href=\"{}/{}\">{}</a>",
                E(frame.base),
                id.get(),
                E(&t.secret_gone_link)
            );
            h.w(format_args!(
                "<p class=\"notice bad\" role=\"alert\" id=\"gone\">{}</p>",
                fill_html(&t.secret_gone, &[("link", &link)])
            ));
        }
    }
    h.w(format_args!(
        "<p><a class=\"button\" id=\"close\" href=\"{}\">{}</a></p>",
        E(&frame.list_url()),
        E(&t.close)
    ));
    foot(&mut h);
    h.0
}

/// Asks again before a mass action or a regenerate, for browsers without JavaScript (with it,
/// the page asks with a dialog and sends `confirmed=1`).
pub(crate) fn confirm(
    frame: &Frame<'_>,
    question: &str,
    action: &str,
    fields: &[(&str, String)],
) -> String {
    let t = frame.texts;
    let mut h = Html::default();
    head(&mut h, frame, Some(&t.confirm));
    h.w(format_args!(
        "<h1>{}</h1><form method=\"post\" action=\"{}\"><p id=\"question\">{}</p>",
        E(&t.confirm),
        E(action),
        E(question)
    ));
    csrf(&mut h, frame);
    h.s("<input type=\"hidden\" name=\"confirmed\" value=\"1\">");
    for (name, value) in fields {
        h.w(format_args!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            E(name),
            E(value)
        ));
    }
    h.w(format_args!(
        "<div class=\"buttons\"><button type=\"submit\" id=\"confirm\">{}</button>\
         <a class=\"button secondary\" href=\"{}\">{}</a></div></form>",
        E(&t.ok),
        E(&frame.list_url()),
        E(&t.cancel)
    ));
    foot(&mut h);
    h.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_time_becomes_a_pickers_value() {
        assert_eq!(picker_value("2030-01-02 03:04:05"), "2030-01-02T03:04:05");
        assert_eq!(picker_value("2030-01-02T03:04"), "2030-01-02T03:04");
        assert_eq!(picker_value("next tuesday"), "next tuesday");
        assert_eq!(picker_value(""), "");
    }
}
