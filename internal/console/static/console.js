// smartgroups console: small progressive enhancements. Every screen works
// without this file; it adds copying ids, live member counts, the live
// feed and the size chart.
(function () {
  "use strict";

  function onReady(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }

  // Copy group ID buttons.
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("[data-copy]");
    if (!b) return;
    var text = b.getAttribute("data-copy");
    var done = function () { b.classList.add("done"); b.setAttribute("data-copied", text); setTimeout(function () { b.classList.remove("done"); }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, done);
    } else {
      var t = document.createElement("textarea");
      t.value = text; t.setAttribute("readonly", ""); t.style.position = "absolute"; t.style.left = "-9999px";
      document.body.appendChild(t); t.select();
      try { document.execCommand("copy"); } catch (e) { /* nothing more to try */ }
      document.body.removeChild(t); done();
    }
  });

  // Selects that submit their form when changed (spot picker, explain).
  document.addEventListener("change", function (ev) {
    var s = ev.target.closest("select[data-autosubmit]");
    if (s && s.form) s.form.requestSubmit ? s.form.requestSubmit() : s.form.submit();
  });

  // Live member counts: every spot section refreshes its counts.
  function refreshCounts(section) {
    var spot = section.getAttribute("data-spot");
    fetch("/spots/" + encodeURIComponent(spot) + "/counts.json", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (counts) {
        if (!counts) return;
        section.querySelectorAll("[data-count]").forEach(function (el) {
          var id = el.getAttribute("data-count");
          if (!(id in counts)) return;
          var v = String(counts[id]);
          if (el.textContent !== v) {
            el.textContent = v;
            el.classList.add("changed");
            setTimeout(function () { el.classList.remove("changed"); }, 1200);
          }
        });
      })
      .catch(function () { /* next round */ });
  }

  onReady(function () {
    var sections = document.querySelectorAll("section.spot[data-spot]");
    if (sections.length) {
      setInterval(function () { sections.forEach(refreshCounts); }, 3000);
    }

    // Live feed.
    var feed = document.getElementById("feed");
    if (feed && window.EventSource) {
      var status = document.getElementById("feed-status");
      var es = new EventSource(feed.getAttribute("data-src"));
      es.onopen = function () { status.textContent = "Connected."; };
      es.onerror = function () { status.textContent = "Disconnected; retrying…"; };
      var spot = feed.getAttribute("data-spot");
      es.addEventListener("membership", function (m) {
        var e = JSON.parse(m.data);
        var li = document.createElement("li");
        li.className = e.op;
        var a = document.createElement("a");
        a.href = "/spots/" + encodeURIComponent(spot) + "/members/" + encodeURIComponent(e.member);
        a.textContent = e.member;
        li.append((e.op === "add" ? "+ " : "− ") + e.ts + " " + e.group + " ", a, " " + e.reason + " seq " + e.seq);
        feed.insertBefore(li, feed.firstChild);
        while (feed.children.length > 500) feed.removeChild(feed.lastChild);
      });
      es.addEventListener("gap", function (m) {
        var li = document.createElement("li");
        li.textContent = "… " + JSON.parse(m.data).dropped + " changes skipped (the page read too slowly)";
        feed.insertBefore(li, feed.firstChild);
      });
    }

    // Size chart (uPlot).
    var chart = document.getElementById("size-chart");
    if (chart) {
      var draw = function () {
        if (!window.uPlot) { setTimeout(draw, 50); return; }
        fetch(chart.getAttribute("data-src"), { credentials: "same-origin" })
          .then(function (r) { return r.json(); })
          .then(function (data) {
            chart.textContent = "";
            if (!data[0].length) { chart.textContent = "No points yet: the size is sampled once a minute."; return; }
            var w = Math.max(280, chart.clientWidth || 800);
            new window.uPlot({ width: w, height: 320, series: [{}, { label: "Members", stroke: "#1d4ed8", width: 2, fill: "rgba(29,78,216,0.08)" }],
              axes: [{}, { label: "members" }], scales: { x: { time: true } } }, data, chart);
          });
      };
      draw();
    }
  });
})();
