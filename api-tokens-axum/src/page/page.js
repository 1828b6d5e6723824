// The API tokens page's progressive enhancements. Everything works without this file: a
// confirmation is then a page of its own, and the auth token is copied by hand.
"use strict";

// Asks before a mass action, a regenerate or a delete; the server asks again (on a page of its
// own) unless the form says `confirmed=1`.
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  var question = button && button.getAttribute("data-confirm");
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

// "Select all", and the count of selected tokens beside the mass actions.
(function () {
  var list = document.getElementById("list");
  if (!list) {
    return;
  }
  var boxes = function () {
    return list.querySelectorAll("tbody input[name=ids]");
  };
  var count = function () {
    var n = 0;
    boxes().forEach(function (b) { if (b.checked) { n += 1; } });
    var label = document.getElementById("selected");
    if (label) {
      label.textContent = n + " selected";
    }
  };
  list.addEventListener("change", function (event) {
    var target = event.target;
    if (target.hasAttribute("data-select-all")) {
      boxes().forEach(function (b) { b.checked = target.checked; });
    }
    count();
  });
  count();
})();

// The copy button beside a new auth token.
document.querySelectorAll("[data-copy]").forEach(function (button) {
  button.addEventListener("click", function () {
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) {
      return;
    }
    var done = function () { button.textContent = "Copied"; };
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

// "Set expiration date and time" enables the date field.
document.querySelectorAll("[data-toggles]").forEach(function (box) {
  var field = document.getElementById(box.getAttribute("data-toggles"));
  var sync = function () { if (field) { field.disabled = !box.checked; } };
  box.addEventListener("change", sync);
  sync();
});
