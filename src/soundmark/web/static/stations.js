// The Stations page: live updates over Server-Sent Events (/streams/events). Each "stations"
// event carries the whole view (the same fields the page was rendered with); the two tables are
// rebuilt from it with textContent only. An "end" event (the session ended) stops the updates.
"use strict";

(() => {
  const root = document.getElementById("stations-page");
  if (!root || !window.EventSource) return;
  const live = document.getElementById("live");
  const csrf = root.dataset.csrf || "";

  function setLive(state, text) {
    live.dataset.state = state;
    live.textContent = text;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
    }
    return node;
  }

  const sub = (text, extra) => el("span", { class: extra ? "sub " + extra : "sub" }, text);

  function removeForm(s) {
    const form = el("form", { method: "post", action: "/streams/remove", class: "inline remove-form" });
    for (const [name, value] of [["csrf", csrf], ["token_id", s.token_id], ["radio_id", s.radio_id]]) {
      form.append(el("input", { type: "hidden", name: name, value: String(value) }));
    }
    form.append(el("button", { type: "submit", class: "danger" }, "Remove"));
    return form;
  }

  function stationRow(s) {
    const now = s.now_title
      ? [el("span", { class: "now-title" }, s.now_title),
         sub(s.now_artist + (s.now_since ? " · from " + s.now_since : ""))]
      : [sub("–")];
    return el("tr", { "data-stream": String(s.stream_id), "data-radio": String(s.radio_id), "data-state": s.state },
      el("td", { class: "station" }, el("strong", {}, String(s.radio_id)), el("span", { class: "owner" }, s.owner)),
      el("td", { class: "url" }, el("code", {}, s.url)),
      el("td", { class: "state" }, el("span", { class: "badge" }, s.state_label), s.since ? sub("since " + s.since) : null,
        sub(s.reconnects + " reconnects", "reconnects"),
        s.last_error ? sub("last error: " + s.last_error + " (" + s.error_at + ")", "error") : null),
      el("td", { class: "now" }, ...now),
      el("td", { class: "audio" }, s.last_audio || "–", s.silence ? sub(s.silence, "silence") : null),
      el("td", {}, removeForm(s)));
  }

  function playRow(p) {
    return el("tr", { "data-play": String(p.id) },
      el("td", {}, p.heard_at), el("td", {}, String(p.radio_id)), el("td", { class: "title" }, p.title),
      el("td", {}, p.artist), el("td", { class: "num" }, p.play_length), el("td", { class: "num" }, p.score));
  }

  function fill(tableId, rows, emptyText, columns) {
    const body = document.querySelector("#" + tableId + " tbody");
    if (!rows.length) rows = [el("tr", { class: "empty" }, el("td", { colspan: String(columns) }, emptyText))];
    body.replaceChildren(...rows);
  }

  function render(view) {
    fill("stations", view.stations.map(stationRow), "No stream is monitored yet: add one below.", 6);
    fill("plays", view.plays.map(playRow), "No play yet.", 6);
    const more = document.getElementById("more-stations");
    more.hidden = !view.more_stations;
    more.textContent = view.more_stations + " more streams are not listed.";
  }

  const source = new EventSource(root.dataset.events, { withCredentials: true });
  setLive("connecting", "Live updates: connecting…");
  source.addEventListener("open", () => setLive("on", "Live updates: on"));
  source.addEventListener("stations", (e) => {
    setLive("on", "Live updates: on");
    render(JSON.parse(e.data));
  });
  source.addEventListener("end", (e) => {
    source.close();
    let reason = "the session ended";
    try { reason = JSON.parse(e.data).reason || reason; } catch (err) { /* keep the default */ }
    setLive("ended", "Live updates stopped: " + reason + ".");
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) setLive("lost", "Live updates unavailable: reload the page.");
    else setLive("lost", "Live updates: reconnecting…");
  });
})();
