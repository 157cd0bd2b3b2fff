// The Jobs pages (web/jobs.py): the progress of every unfinished job shown, polled from
// /jobs.json until each has ended, without reloading the page. The polling is bounded: once a
// second, at most MAX_POLLS times, and it stops after MAX_ERRORS failed requests in a row. A job
// page whose job ends done reloads once to show its tracklist.
(function () {
  "use strict";
  var POLL_MS = 1000;
  var MAX_POLLS = 3600;
  var MAX_ERRORS = 10;
  var rows = Array.prototype.slice.call(document.querySelectorAll("[data-job-id]"));
  var polls = 0;
  var errors = 0;

  function open() {
    return rows.filter(function (row) { return row.dataset.finished !== "true"; });
  }

  function text(row, selector, value) {
    var el = row.querySelector(selector);
    if (el) { el.textContent = value; }
  }

  function show(row, job) {
    var percent = Math.round(job.progress * 100) + " %";
    var bar = row.querySelector("progress.job-progress");
    if (bar) { bar.value = job.progress; bar.textContent = percent; }
    text(row, ".job-percent", percent);
    text(row, ".job-status", job.status + (job.error ? ": " + job.error : ""));
    text(row, ".job-analysed", job.analysed);
    if (job.status === "done") { text(row, ".job-tracks", String(job.tracks)); }
    row.dataset.status = job.status;
    row.dataset.finished = job.finished ? "true" : "false";
    if (job.status === "done" && row.dataset.reloadWhenDone === "true") {
      window.location.reload();
    }
  }

  function poll() {
    var waiting = open();
    if (!waiting.length || polls >= MAX_POLLS || errors >= MAX_ERRORS) { return; }
    polls += 1;
    var query = waiting.map(function (row) { return "id=" + encodeURIComponent(row.dataset.jobId); }).join("&");
    fetch("/jobs.json?" + query, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (body) {
        errors = 0;
        var byId = {};
        body.jobs.forEach(function (job) { byId[job.id] = job; });
        waiting.forEach(function (row) {
          var job = byId[row.dataset.jobId];
          if (job) { show(row, job); }
        });
      })
      .catch(function () { errors += 1; })
      .then(function () { window.setTimeout(poll, POLL_MS); });
  }

  if (open().length) { window.setTimeout(poll, POLL_MS); }
})();
