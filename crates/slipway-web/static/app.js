// Progressive enhancement only: every page works without this file.
// 1. Typeahead for the header search box, from GET /api/v1/search/suggest.
// 2. Search filters apply as soon as they change.
(function () {
  "use strict";
  var input = document.getElementById("search-q");
  var list = document.getElementById("suggestions");
  if (input && list) {
    var timer = null, seq = 0, active = -1;
    var clear = function () { list.replaceChildren(); list.hidden = true; active = -1; input.setAttribute("aria-expanded", "false"); };
    var render = function (suggestions) {
      list.replaceChildren();
      suggestions.forEach(function (s, i) {
        var li = document.createElement("li");
        var a = document.createElement("a");
        a.href = s.path;
        a.id = "suggestion-" + i;
        a.setAttribute("role", "option");
        a.textContent = s.name;               // textContent: never parsed as HTML
        var small = document.createElement("small");
        small.textContent = s.publisher + " — " + s.short_description;
        a.appendChild(small);
        li.appendChild(a);
        list.appendChild(li);
      });
      list.hidden = suggestions.length === 0;
      input.setAttribute("aria-expanded", String(!list.hidden));
    };
    input.addEventListener("input", function () {
      clearTimeout(timer);
      var q = input.value.trim();
      if (q.length < 2) { clear(); return; }
      timer = setTimeout(function () {
        var mine = ++seq;
        fetch("/api/v1/search/suggest?q=" + encodeURIComponent(q), { headers: { Accept: "application/json" } })
          .then(function (r) { return r.ok ? r.json() : { suggestions: [] }; })
          .then(function (body) { if (mine === seq) render(body.suggestions || []); })
          .catch(clear);
      }, 120);
    });
    input.addEventListener("keydown", function (e) {
      var items = list.querySelectorAll("a");
      if (list.hidden || items.length === 0) return;
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        active = (active + (e.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
        items.forEach(function (a, i) { a.setAttribute("aria-selected", String(i === active)); });
        input.setAttribute("aria-activedescendant", items[active].id);
      } else if (e.key === "Enter" && active >= 0) {
        e.preventDefault();
        window.location.href = items[active].href;
      } else if (e.key === "Escape") {
        clear();
      }
    });
    document.addEventListener("click", function (e) { if (!list.contains(e.target) && e.target !== input) clear(); });
  }
  var filters = document.getElementById("filters");
  if (filters) {
    // Leave empty filters out of the URL, so shared links stay readable.
    var submitClean = function () {
      Array.prototype.forEach.call(filters.elements, function (el) {
        if (el.name && !el.value) el.disabled = true;
      });
      filters.submit();
    };
    filters.addEventListener("change", submitClean);
    filters.addEventListener("submit", function (e) { e.preventDefault(); submitClean(); });
  }
})();
