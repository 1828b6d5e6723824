// The API tokens page's progressive enhancements. Everything works without this file: a
// confirmation is then a page of its own, the mass actions ask the server for a selection, the
// filter folds (without being remembered), and the auth token is copied by hand. Every text
// comes from the page (data attributes), so that a host's texts replace these too.
"use strict";

// `template` with its `{n}` replaced by `n`.
function withCount(template, n) {
  return template.split("{n}").join(String(n));
}

// The list's checkboxes, and how many are checked.
var list = document.getElementById("list");
function boxes() {
  return list ? list.querySelectorAll("tbody input[name=ids]") : [];
}
function selectedCount() {
  var n = 0;
  boxes().forEach(function (b) { if (b.checked) { n += 1; } });
  return n;
}

// Asks before a mass action, a regenerate or a delete; the server asks again (on a page of its
// own) unless the form says `confirmed=1`.
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  if (!button) {
    return;
  }
  var question = button.getAttribute("data-confirm");
  if (!question && button.hasAttribute("data-confirm-many")) {
    var n = selectedCount();
    question = withCount(button.getAttribute(n === 1 ? "data-confirm-one" : "data-confirm-many"), n);
  }
  if (!question) {
    return;
  }
  if (!window.confirm(question)) {
    event.preventDefault();
    return;
  }
  var form = button.form || event.target;
  var confirmed = form.querySelector("input[name=confirmed]");
  if (confirmed) {
    confirmed.value = "1";
  }
});

// "Select all", the count of selected tokens, and the mass actions, which wait for one.
(function () {
  if (!list) {
    return;
  }
  var label = document.getElementById("selected");
  var count = function () {
    var n = selectedCount();
    if (label) {
      label.textContent = withCount(label.getAttribute("data-template") || "{n}", n);
    }
    list.querySelectorAll("[data-needs-selection]").forEach(function (b) { b.disabled = n === 0; });
    var all = list.querySelector("[data-select-all]");
    if (all) {
      all.checked = n > 0 && n === boxes().length;
    }
  };
  list.addEventListener("change", function (event) {
    var target = event.target;
    if (target.hasAttribute("data-select-all")) {
      boxes().forEach(function (b) { b.checked = target.checked; });
    }
    count();
  });
  // A page restored from the back-forward cache keeps its checkboxes.
  window.addEventListener("pageshow", count);
  count();
})();

// The filter's fold, kept in a cookie for the next page (nothing is stored on the server).
document.querySelectorAll("details[data-fold-cookie]").forEach(function (details) {
  details.addEventListener("toggle", function () {
    document.cookie = details.getAttribute("data-fold-cookie") + "=" + (details.open ? "open" : "folded") +
      "; Path=" + details.getAttribute("data-fold-path") + "; SameSite=Strict; Max-Age=31536000";
  });
});

// The copy button beside a new auth token.
document.querySelectorAll("[data-copy]").forEach(function (button) {
  button.addEventListener("click", function () {
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) {
      return;
    }
    var done = function () { button.textContent = button.getAttribute("data-copied") || button.textContent; };
    var fallback = function () {
      field.select();
      try {
        if (document.execCommand("copy")) { done(); }
      } catch (e) { /* left selected for the keyboard */ }
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, fallback);
    } else {
      fallback();
    }
  });
});

// "Set expiration date and time" enables the date field (or shows its row).
document.querySelectorAll("[data-toggles]").forEach(function (box) {
  var field = document.getElementById(box.getAttribute("data-toggles"));
  var row = box.hasAttribute("data-hides") ? document.getElementById(box.getAttribute("data-hides")) : null;
  var sync = function () {
    if (field) { field.disabled = !box.checked; }
    if (row) { row.hidden = !box.checked; }
  };
  box.addEventListener("change", sync);
  sync();
});

// The calendar button beside an expiry typed as text: it opens the browser's own picker and
// writes the choice into the field as `YYYY-MM-DD hh:mm:ss`.
document.querySelectorAll("[data-picker]").forEach(function (button) {
  var picker = document.getElementById(button.getAttribute("data-picker"));
  var field = picker && document.getElementById(picker.getAttribute("data-fills"));
  if (!picker || !field) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    var typed = field.value.trim().replace(" ", "T");
    picker.value = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?$/.test(typed) ? typed : "";
    try {
      picker.showPicker();
    } catch (e) {
      picker.focus();
    }
  });
  picker.addEventListener("change", function () {
    if (!picker.value) {
      return;
    }
    var value = picker.value.replace("T", " ");
    field.value = value.length === 16 ? value + ":00" : value;
    field.dispatchEvent(new Event("change", { bubbles: true }));
  });
});
