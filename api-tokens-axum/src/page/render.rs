//! The page's views. Markup is written here; every value that comes from a user, a token or a
//! request is written through [`E`] (escaped), never pasted.

use api_tokens::{Status, Token, TokenId, UserId};

use super::html::{E, Html, datetime};
use super::session::{Filter, Notice, Pending, Reveal};
use super::{Col, ListView};

/// What every view needs: where the page is mounted, who is looking, the session's CSRF token.
pub(crate) struct Frame<'a> {
    pub(crate) base: &'a str,
    pub(crate) user: &'a UserId,
    pub(crate) csrf: &'a str,
    pub(crate) admin: bool,
    pub(crate) users: &'a [UserId],
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

    fn general(&self, h: &mut Html) {
        for (field, message) in &self.0 {
            if field.is_none() {
                h.w(format_args!(
                    "<p class=\"notice bad\" role=\"alert\">{}</p>",
                    E(message)
                ));
            }
        }
    }

    /// The refusals of `field`, written beside it.
    fn beside(&self, h: &mut Html, field: &str) {
        for (f, message) in &self.0 {
            if f.as_deref() == Some(field) {
                h.w(format_args!(
                    "<p class=\"error\" id=\"{}-error\" role=\"alert\">{}</p>",
                    E(field),
                    E(message)
                ));
            }
        }
    }

    fn has(&self, field: &str) -> bool {
        self.0.iter().any(|(f, _)| f.as_deref() == Some(field))
    }
}

fn head(h: &mut Html, frame: &Frame<'_>, title: &str) {
    h.w(format_args!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} — API tokens</title>\
         <link rel=\"stylesheet\" href=\"{}/assets/page.css\">\
         <script src=\"{}/assets/page.js\" defer></script></head>\
         <body><header><a class=\"home\" href=\"{}\">API tokens</a>\
         <span class=\"who\">Signed in as <b>{}</b></span></header><main>",
        E(title),
        E(frame.base),
        E(frame.base),
        E(&frame.list_url()),
        E(frame.user.as_str()),
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
    head(&mut h, frame, title);
    h.w(format_args!(
        "<h1>{}</h1><p class=\"notice bad\" role=\"alert\">{}</p><p><a href=\"{}\">Back to the list</a></p>",
        E(title),
        E(text),
        E(&frame.list_url())
    ));
    foot(&mut h);
    h.0
}

/// A message page for a request without a session frame (no caller).
pub(crate) fn bare_message(title: &str, text: &str) -> String {
    let mut h = Html::default();
    h.w(format_args!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body><h1>{}</h1><p role=\"alert\">{}</p></body></html>\n",
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
            "<input type=\"text\" id=\"f-{}\" name=\"{}\" value=\"{}\" placeholder=\"user ids, comma-separated\">",
            E(name),
            E(name),
            E(&value)
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

fn filter_form(
    h: &mut Html,
    frame: &Frame<'_>,
    filter: &Filter,
    input: &FilterInput,
    errors: &Errors,
) {
    h.w(format_args!(
        "<form class=\"filter\" method=\"post\" action=\"{}/filter\"><fieldset><legend>Filter{}</legend>",
        E(frame.base),
        if filter.is_empty() { "" } else { " (active)" }
    ));
    csrf(h, frame);
    h.s("<div class=\"fields\"><div>");
    h.w(format_args!(
        "<label for=\"f-name\">Name</label><input type=\"text\" id=\"f-name\" name=\"name\" maxlength=\"255\" value=\"{}\">",
        E(&input.name)
    ));
    errors.beside(h, "name");
    h.s("</div>");
    if frame.admin {
        h.s("<div>");
        users_field(
            h,
            frame,
            "owners",
            "Users",
            &filter.owners,
            errors.has("owners").then_some(input.owners.as_str()),
        );
        errors.beside(h, "owners");
        h.s("</div><div>");
        users_field(
            h,
            frame,
            "creators",
            "Created by",
            &filter.creators,
            errors.has("creators").then_some(input.creators.as_str()),
        );
        errors.beside(h, "creators");
        h.s("</div>");
    }
    h.w(format_args!(
        "<div><label><input type=\"checkbox\" name=\"expires_soon\" id=\"f-expires-soon\"{}> Expires in less than</label> \
         <input type=\"number\" name=\"expires_days\" id=\"f-expires-days\" min=\"0\" max=\"36500\" value=\"{}\" aria-label=\"days\"> days",
        if input.expires_soon { " checked" } else { "" },
        E(&input.expires_days)
    ));
    errors.beside(h, "expires_days");
    h.s("</div><div role=\"radiogroup\" aria-label=\"Status\"><span class=\"label\">Status</span>");
    for (value, label) in [
        ("any", "Any"),
        ("enabled", "Enabled"),
        ("disabled", "Disabled"),
    ] {
        h.w(format_args!(
            "<label><input type=\"radio\" name=\"status\" value=\"{value}\"{}> {label}</label>",
            if input.status == value {
                " checked"
            } else {
                ""
            }
        ));
    }
    errors.beside(h, "status");
    h.s("</div></div><div class=\"buttons\"><button type=\"submit\" name=\"apply\" value=\"1\" id=\"filter-apply\">Apply</button>\
         <button type=\"submit\" name=\"reset\" value=\"1\" id=\"filter-reset\" class=\"secondary\">Reset</button></div></fieldset></form>");
}

fn sort_link(h: &mut Html, frame: &Frame<'_>, view: &ListView, col: Col, label: &str) {
    let desc = view.sort == col && !view.desc;
    let arrow = match (view.sort == col, view.desc) {
        (false, _) => "",
        (true, false) => " ▲",
        (true, true) => " ▼",
    };
    h.w(format_args!(
        "<th scope=\"col\" aria-sort=\"{}\"><a id=\"sort-{}\" href=\"{}?sort={}&amp;order={}\">{}{}</a></th>",
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

fn expiry_cell(h: &mut Html, token: &Token, now: api_tokens::time::OffsetDateTime) {
    match token.expiry.instant() {
        None => h.s("<td class=\"time\">Never</td>"),
        Some(at) if token.is_expired_at(now) => h.w(format_args!(
            "<td class=\"time expired\"><span class=\"red\">{}</span> <span class=\"badge\">Expired</span></td>",
            E(&datetime(at))
        )),
        Some(at) => h.w(format_args!("<td class=\"time\">{}</td>", E(&datetime(at)))),
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
    now: api_tokens::time::OffsetDateTime,
) -> String {
    let mut h = Html::default();
    head(&mut h, frame, "API tokens");
    h.w(format_args!(
        "<div class=\"title\"><h1>API tokens</h1><a class=\"button\" id=\"create\" href=\"{}/new\">Create API token</a></div>",
        E(frame.base)
    ));
    notice(&mut h, notice_);
    errors.general(&mut h);
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
    h.s("<table><thead><tr><th scope=\"col\" class=\"check\"><input type=\"checkbox\" id=\"select-all\" data-select-all aria-label=\"Select all\"></th>");
    sort_link(&mut h, frame, view, Col::Name, "Name");
    if frame.admin {
        sort_link(&mut h, frame, view, Col::User, "User");
    }
    sort_link(&mut h, frame, view, Col::Expires, "Expires at");
    sort_link(&mut h, frame, view, Col::Created, "Created at");
    sort_link(&mut h, frame, view, Col::Creator, "Created by");
    sort_link(&mut h, frame, view, Col::LastUsed, "Last accessed at");
    sort_link(&mut h, frame, view, Col::Status, "Status");
    h.s("</tr></thead><tbody>");
    if rows.is_empty() {
        h.s("<tr><td colspan=\"8\" class=\"empty\">No data found.</td></tr>");
    }
    let flagged = notice_.filter(|n| !n.ok).and_then(|n| n.token);
    for t in rows {
        let id = t.id.get();
        h.w(format_args!(
            "<tr id=\"token-{id}\"{}><td class=\"check\"><input type=\"checkbox\" name=\"ids\" value=\"{id}\" aria-label=\"Select {}\"></td>\
             <td class=\"name\"><a href=\"{}/{id}\">{}</a>{}</td>",
            if flagged == Some(t.id) { " class=\"refused\"" } else { "" },
            E(t.name.as_str()),
            E(frame.base),
            E(t.name.as_str()),
            if flagged == Some(t.id) {
                "<span class=\"error\" role=\"alert\"> refused: see the message above</span>"
            } else {
                ""
            },
        ));
        if frame.admin {
            h.w(format_args!(
                "<td class=\"user\">{}</td>",
                E(t.owner.as_str())
            ));
        }
        expiry_cell(&mut h, t, now);
        h.w(format_args!(
            "<td class=\"time\">{}</td><td>{}</td><td class=\"time\">{}</td>",
            E(&datetime(t.created_at)),
            E(t.creator.as_str()),
            E(&t.last_use
                .map_or_else(|| "Never".to_owned(), |u| datetime(u.at)))
        ));
        if t.is_revoked() {
            h.s("<td class=\"status\"><span class=\"red\">Revoked</span></td>");
        } else {
            let (label, class, to) = match t.status {
                Status::Enabled => ("Enabled", "green", "disabled"),
                _ => ("Disabled", "red", "enabled"),
            };
            h.w(format_args!(
                "<td class=\"status\"><button type=\"submit\" class=\"link {class}\" id=\"status-{id}\" name=\"toggle\" value=\"{id}:{to}\" \
                 formaction=\"{}/toggle\" title=\"Click to make it {to}\">{label}</button></td>",
                E(frame.base)
            ));
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
    h.w(format_args!(
        "<div class=\"footer\"><span class=\"selected\" id=\"selected\">0 selected</span>\
         <button type=\"submit\" name=\"action\" value=\"enable\" id=\"mass-enable\" data-confirm=\"Enable selected API tokens?\">Enable</button>\
         <button type=\"submit\" name=\"action\" value=\"disable\" id=\"mass-disable\" data-confirm=\"Disable selected API tokens?\">Disable</button>\
         <button type=\"submit\" name=\"action\" value=\"delete\" id=\"mass-delete\" class=\"danger\" data-confirm=\"Delete selected API tokens?\">Delete</button>\
         <span class=\"count\">Displaying {first} to {last} of {total}{} found</span>",
        if capped { "+" } else { "" }
    ));
    errors.beside(&mut h, "ids");
    h.s("</div></form>");
    if pages > 1 {
        h.s("<nav class=\"pager\" aria-label=\"Pages\">");
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
        h.s("<p class=\"notice\">More tokens match than one list shows: narrow the filter.</p>");
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

fn text_field(h: &mut Html, errors: &Errors, name: &str, label: &str, value: &str, extra: &str) {
    h.w(format_args!(
        "<div class=\"row\"><label for=\"t-{}\">{}</label><div>\
         <input type=\"text\" id=\"t-{}\" name=\"{}\" value=\"{}\"{}{}>",
        E(name),
        E(label),
        E(name),
        E(name),
        E(value),
        if errors.has(name) {
            " aria-invalid=\"true\""
        } else {
            ""
        },
        extra
    ));
    errors.beside(h, name);
    h.s("</div></div>");
}

/// The create form (`token` is `None`) or a token's page with its edit form, regenerate and
/// delete.
pub(crate) fn token_form(
    frame: &Frame<'_>,
    token: Option<&Token>,
    input: &TokenInput,
    errors: &Errors,
    now: api_tokens::time::OffsetDateTime,
) -> String {
    let mut h = Html::default();
    let title = if token.is_some() {
        "API token"
    } else {
        "New API token"
    };
    head(&mut h, frame, title);
    h.w(format_args!("<h1>{}</h1>", E(title)));
    errors.general(&mut h);
    let action = match token {
        Some(t) => format!("{}/{}", frame.base, t.id.get()),
        None => format!("{}/new", frame.base),
    };
    h.w(format_args!(
        "<form id=\"token\" method=\"post\" action=\"{}\" novalidate>",
        E(&action)
    ));
    csrf(&mut h, frame);
    text_field(
        &mut h,
        errors,
        "name",
        "Name",
        &input.name,
        " maxlength=\"255\" required autofocus",
    );
    match token {
        Some(t) => h.w(format_args!(
            "<div class=\"row\"><span class=\"label\">User</span><div><span id=\"t-owner\">{}</span></div></div>",
            E(t.owner.as_str())
        )),
        None if frame.admin => {
            if frame.users.is_empty() {
                text_field(&mut h, errors, "owner", "User", &input.owner, " required");
            } else {
                h.s("<div class=\"row\"><label for=\"t-owner\">User</label><div><select id=\"t-owner\" name=\"owner\">");
                for u in frame.users {
                    h.w(format_args!(
                        "<option value=\"{}\"{}>{}</option>",
                        E(u.as_str()),
                        if input.owner == u.as_str() { " selected" } else { "" },
                        E(u.as_str())
                    ));
                }
                h.s("</select>");
                errors.beside(&mut h, "owner");
                h.s("</div></div>");
            }
        }
        None => {}
    }
    h.w(format_args!(
        "<div class=\"row\"><label for=\"t-description\">Description</label><div>\
         <textarea id=\"t-description\" name=\"description\" rows=\"3\">{}</textarea>",
        E(&input.description)
    ));
    errors.beside(&mut h, "description");
    h.w(format_args!(
        "</div></div><div class=\"row\"><label for=\"t-set-expiry\">Set expiration date and time</label><div>\
         <input type=\"checkbox\" id=\"t-set-expiry\" name=\"set_expiry\" data-toggles=\"t-expires_at\"{}></div></div>",
        if input.set_expiry { " checked" } else { "" }
    ));
    text_field(
        &mut h,
        errors,
        "expires_at",
        "Expires at (UTC)",
        &input.expires_at,
        " placeholder=\"YYYY-MM-DD hh:mm:ss\"",
    );
    if let Some(t) = token
        && t.is_expired_at(now)
    {
        h.s("<p class=\"notice bad\">This token has expired.</p>");
    }
    text_field(
        &mut h,
        errors,
        "permissions",
        "Permissions",
        &input.permissions,
        " placeholder=\"dns.*, mail.send (* for all of the user's)\"",
    );
    text_field(
        &mut h,
        errors,
        "allowlist",
        "Allowed addresses",
        &input.allowlist,
        " placeholder=\"any; or 10.0.0.0/8, 2001:db8::/32\"",
    );
    h.w(format_args!(
        "<div class=\"row\"><label for=\"t-enabled\">Enabled</label><div>\
         <input type=\"checkbox\" id=\"t-enabled\" name=\"enabled\"{}>",
        if input.enabled { " checked" } else { "" }
    ));
    errors.beside(&mut h, "status");
    h.w(format_args!(
        "</div></div><div class=\"buttons\"><button type=\"submit\" id=\"submit\">{}</button>",
        if token.is_some() { "Update" } else { "Add" }
    ));
    if let Some(t) = token {
        let id = t.id.get();
        h.w(format_args!(
            "<button type=\"submit\" id=\"regenerate\" form=\"regenerate-form\" class=\"secondary\" \
             data-confirm=\"Regenerate the auth token? The current one stops working at once.\">Regenerate</button>\
             <button type=\"submit\" id=\"delete\" form=\"delete-form\" class=\"danger\" \
             data-confirm=\"Delete this API token?\">Delete</button>"
        ));
        h.w(format_args!(
            "<a class=\"button secondary\" href=\"{}\">Cancel</a></div></form>\
             <form id=\"regenerate-form\" method=\"post\" action=\"{}/{id}/regenerate\">",
            E(&frame.list_url()),
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
            "<a class=\"button secondary\" href=\"{}\">Cancel</a></div></form>",
            E(&frame.list_url())
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
) -> String {
    let mut h = Html::default();
    head(&mut h, frame, "API token");
    h.s("<h1>API token</h1>");
    match pending {
        Some(p) => {
            h.w(format_args!(
                "<p class=\"notice good\" role=\"status\">{}</p>",
                match p.why {
                    Reveal::Created => "API token added",
                    Reveal::Regenerated => "API token regenerated",
                }
            ));
            h.s("<dl class=\"details\">");
            h.w(format_args!(
                "<dt>Name</dt><dd id=\"s-name\">{}</dd>",
                E(p.name.as_str())
            ));
            h.w(format_args!(
                "<dt>Auth token</dt><dd><input type=\"text\" id=\"auth-token\" readonly size=\"70\" value=\"{}\" aria-label=\"Auth token\"> \
                 <button type=\"button\" id=\"copy\" data-copy=\"auth-token\">Copy to clipboard</button></dd>",
                E(p.secret.expose())
            ));
            if let Some(t) = token {
                h.w(format_args!(
                    "<dt>User</dt><dd>{}</dd><dt>Expires at</dt><dd>{}</dd><dt>Description</dt><dd>{}</dd><dt>Enabled</dt><dd>{}</dd>",
                    E(t.owner.as_str()),
                    E(&t.expiry.instant().map_or_else(|| "Never".to_owned(), datetime)),
                    E(&t.description),
                    if t.status == Status::Enabled { "Yes" } else { "No" }
                ));
            }
            h.s("</dl><p class=\"notice warning\" role=\"alert\" id=\"warning\">Make sure to copy the auth token: \
                 it cannot be viewed again after this page is closed.</p>");
        }
        None => {
            h.w(format_args!(
                "<p class=\"notice bad\" role=\"alert\" id=\"gone\">The auth token was shown once and cannot be viewed again. \
                 If it was lost, <a href=\"{}/{}\">regenerate it</a>.</p>",
                E(frame.base),
                id.get()
            ));
        }
    }
    h.w(format_args!(
        "<p><a class=\"button\" id=\"close\" href=\"{}\">Close</a></p>",
        E(&frame.list_url())
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
    let mut h = Html::default();
    head(&mut h, frame, "Confirm");
    h.w(format_args!(
        "<h1>Confirm</h1><form method=\"post\" action=\"{}\"><p>{}</p>",
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
        "<div class=\"buttons\"><button type=\"submit\" id=\"confirm\">OK</button>\
         <a class=\"button secondary\" href=\"{}\">Cancel</a></div></form>",
        E(&frame.list_url())
    ));
    foot(&mut h);
    h.0
}
