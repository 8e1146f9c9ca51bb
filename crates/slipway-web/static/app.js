// Progressive enhancement only: every page works without this file.
// 1. Typeahead for the header search box, from GET /api/v1/search/suggest.
// 2. Search filters apply as soon as they change.
// 3. Forms with upload limits (data-max-file, data-max-total) say so before sending too
//    much, so nothing typed is lost; the server enforces the same limits.
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
  Array.prototype.forEach.call(document.querySelectorAll("form[data-max-total]"), function (form) {
    form.addEventListener("submit", function (e) {
      var maxFile = Number(form.dataset.maxFile), maxTotal = Number(form.dataset.maxTotal), total = 0, tooBig = null;
      Array.prototype.forEach.call(form.querySelectorAll("input[type=file]"), function (el) {
        Array.prototype.forEach.call(el.files || [], function (f) {
          total += f.size;
          if (f.size > maxFile && !tooBig) tooBig = f.name;
        });
      });
      var message = null;
      var mb = function (n) { return (n / 1e6).toFixed(1) + " MB"; };
      if (tooBig) message = tooBig + " is larger than " + mb(maxFile) + ": choose a smaller image.";
      else if (total > maxTotal) message = "The images chosen add up to " + mb(total) + ", more than the " + mb(maxTotal) + " a form may send: upload fewer at a time.";
      if (!message) return;
      e.preventDefault();
      var note = form.querySelector(".upload-error");
      if (!note) {
        note = document.createElement("p");
        note.className = "error upload-error";
        note.setAttribute("role", "alert");
        form.insertBefore(note, form.firstChild);
      }
      note.textContent = message;
    });
  });
})();
