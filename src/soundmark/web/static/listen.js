// The Listen page: the microphone (getUserMedia -> AudioWorklet -> a WAV sent over /ws/), a file
// (POSTed to /), a URL (POSTed to /); the AudD answer shown as a card. Text goes in with
// textContent only, and only http(s) URLs become links.
"use strict";

(() => {
  const root = document.getElementById("listen");
  if (!root) return;
  const seconds = Number(root.dataset.seconds) || 8;
  const providers = root.dataset.return || "";
  const explainPath = root.dataset.explain || "";
  const statusBox = document.getElementById("status");
  const card = document.getElementById("result");
  const mic = document.getElementById("mic");
  const micLabel = mic.querySelector(".mic-label");
  const $ = (id) => document.getElementById(id);

  function apiToken() {
    const input = $("api-token");
    return input ? input.value.trim() : "";
  }

  function setStatus(kind, text) {
    statusBox.className = "status " + kind;
    statusBox.textContent = text;
    statusBox.hidden = false;
    statusBox.dataset.kind = kind;
  }

  function clearResult() {
    card.hidden = true;
    statusBox.hidden = true;
  }

  function safeUrl(value) {
    if (typeof value !== "string") return null;
    try {
      const url = new URL(value, location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function coverOf(r) {
    const sp = r.spotify && r.spotify.album && r.spotify.album.images;
    if (Array.isArray(sp) && sp.length && sp[0].url) return safeUrl(sp[0].url);
    const am = r.apple_music && r.apple_music.artwork;
    if (am && am.url) return safeUrl(String(am.url).replace("{w}", "300").replace("{h}", "300"));
    const dz = r.deezer && r.deezer.album;
    if (dz && (dz.cover_medium || dz.cover)) return safeUrl(dz.cover_medium || dz.cover);
    return null;
  }

  function linksOf(r) {
    const links = [];
    const add = (label, url) => {
      const safe = safeUrl(url);
      if (safe) links.push([label, safe]);
    };
    add("Song page", r.song_link);
    if (r.spotify) add("Spotify", r.spotify.external_urls && r.spotify.external_urls.spotify);
    if (r.apple_music) add("Apple Music", r.apple_music.url);
    if (r.deezer) add("Deezer", r.deezer.link);
    if (r.napster && r.napster.id) add("Napster", "https://web.napster.com/track/" + encodeURIComponent(r.napster.id));
    const mb = Array.isArray(r.musicbrainz) ? r.musicbrainz[0] : null;
    if (mb && mb.id) add("MusicBrainz", "https://musicbrainz.org/recording/" + encodeURIComponent(mb.id));
    return links;
  }

  function fill(id, value) {
    const el = $(id);
    el.textContent = value === undefined || value === null || value === "" ? "—" : String(value);
  }

  function showMatch(r) {
    fill("r-title", r.title || (r.audio_id !== undefined ? "audio_id " + r.audio_id : "Untitled"));
    fill("r-artist", r.artist);
    fill("r-album", r.album);
    fill("r-date", r.release_date);
    fill("r-timecode", r.timecode);
    fill("r-score", typeof r.score === "number" ? r.score.toFixed(1) : r.score);
    const cover = $("r-cover");
    const src = coverOf(r);
    cover.hidden = !src;
    if (src) cover.src = src; else cover.removeAttribute("src");
    const list = $("r-links");
    list.replaceChildren();
    for (const [label, url] of linksOf(r)) {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = url;
      a.textContent = label;
      a.rel = "noopener noreferrer";
      li.append(a);
      list.append(li);
    }
    $("r-why").hidden = !explainPath || !lastAudio;
    $("r-why-figure").hidden = true;
    statusBox.hidden = true;
    card.hidden = false;
  }

  // An AudD envelope: success with a result, success with null (no match), or an error.
  function show(body) {
    if (!body || body.status !== "success") {
      const err = body && body.error;
      const text = err && err.error_message ? err.error_message : "the server did not answer as expected";
      setStatus("error", "Error: " + text);
      return;
    }
    const result = Array.isArray(body.result) ? body.result[0] : body.result;
    if (!result) {
      card.hidden = true;
      setStatus("nomatch", "No match: this does not sound like anything in the catalog.");
      return;
    }
    showMatch(result);
  }

  // The audio of the last recognition (a File, or the recorded WAV), for "why it matched".
  let lastAudio = null;

  async function explain() {
    if (!explainPath || !lastAudio) return;
    const button = $("r-why-button");
    button.disabled = true;
    button.textContent = "Drawing why it matched…";
    const form = new FormData();
    form.append("file", lastAudio, lastAudio.name || "clip.wav");
    form.append("format", "png");
    if (apiToken()) form.append("api_token", apiToken());
    try {
      const response = await fetch(explainPath, { method: "POST", body: form });
      const type = response.headers.get("content-type") || "";
      if (type.startsWith("image/")) {
        const picture = $("r-why-picture");
        if (picture.src.startsWith("blob:")) URL.revokeObjectURL(picture.src);
        picture.src = URL.createObjectURL(await response.blob());
        $("r-why-figure").hidden = false;
      } else {
        const body = await response.json();
        const text = body && body.error && body.error.error_message;
        setStatus("error", "Error: " + (text || "the picture could not be made"));
      }
    } catch (e) {
      setStatus("error", "Error: the picture could not be fetched (" + e.message + ").");
    } finally {
      button.disabled = false;
      button.textContent = "Why it matched";
    }
  }
  $("r-why-button").addEventListener("click", explain);

  async function post(form) {
    clearResult();
    setStatus("busy", "Recognising…");
    form.append("return", providers);
    if (apiToken()) form.append("api_token", apiToken());
    try {
      const response = await fetch("/", { method: "POST", body: form, headers: { Accept: "application/json" } });
      show(await response.json());
    } catch (e) {
      setStatus("error", "Error: the server could not be reached (" + e.message + ").");
    }
  }

  // --- the microphone ------------------------------------------------------------------------
  function wav(chunks, total, rate) {
    const buffer = new ArrayBuffer(44 + total * 2);
    const v = new DataView(buffer);
    const text = (at, s) => { for (let i = 0; i < s.length; i++) v.setUint8(at + i, s.charCodeAt(i)); };
    text(0, "RIFF"); v.setUint32(4, 36 + total * 2, true); text(8, "WAVE");
    text(12, "fmt "); v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
    v.setUint32(24, rate, true); v.setUint32(28, rate * 2, true); v.setUint16(32, 2, true); v.setUint16(34, 16, true);
    text(36, "data"); v.setUint32(40, total * 2, true);
    let at = 44, left = total;
    for (const chunk of chunks) {
      for (let i = 0; i < chunk.length && left > 0; i++, left--, at += 2) {
        const s = Math.max(-1, Math.min(1, chunk[i]));
        v.setInt16(at, s < 0 ? s * 0x8000 : s * 0x7fff, true);
      }
    }
    return buffer;
  }

  function micError(e) {
    if (e && (e.name === "NotAllowedError" || e.name === "SecurityError" || e.name === "PermissionDeniedError")) {
      return ["denied", "Microphone access was denied. Allow the microphone for this site in the browser, or drop a file below."];
    }
    if (e && (e.name === "NotFoundError" || e.name === "OverconstrainedError")) {
      return ["error", "No microphone was found on this device. Drop a file below instead."];
    }
    return ["error", "Error: the microphone could not be used (" + (e && e.message ? e.message : e) + ")."];
  }

  async function record() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.AudioWorkletNode) {
      setStatus("error", "This browser gives this page no microphone: it needs https (or localhost) and a current browser.");
      return null;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
    } catch (e) {
      const [kind, text] = micError(e);
      setStatus(kind, text);
      return null;
    }
    const ctx = new AudioContext();
    try {
      await ctx.audioWorklet.addModule(root.dataset.worklet);
      const source = ctx.createMediaStreamSource(stream);
      const node = new AudioWorkletNode(ctx, "soundmark-capture");
      const silent = ctx.createGain();
      silent.gain.value = 0;  // the graph must reach the output for the worklet to run
      source.connect(node).connect(silent).connect(ctx.destination);
      const want = Math.round(ctx.sampleRate * seconds);
      const chunks = [];
      let have = 0;
      await new Promise((resolve) => {
        const tick = setInterval(() => {
          const left = Math.max(0, Math.ceil((want - have) / ctx.sampleRate));
          setStatus("busy", "Listening… " + left + " s");
        }, 250);
        node.port.onmessage = (event) => {
          chunks.push(event.data);
          have += event.data.length;
          if (have >= want) { clearInterval(tick); resolve(); }
        };
      });
      source.disconnect();
      node.disconnect();
      return wav(chunks, want, ctx.sampleRate);
    } finally {
      stream.getTracks().forEach((t) => t.stop());
      ctx.close();
    }
  }

  function sendOverWebSocket(audio) {
    return new Promise((resolve) => {
      const params = new URLSearchParams({ return: providers });
      if (apiToken()) params.set("api_token", apiToken());
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      const ws = new WebSocket(scheme + "//" + location.host + "/ws/?" + params.toString());
      ws.binaryType = "arraybuffer";
      let answered = false;
      ws.onopen = () => { setStatus("busy", "Recognising…"); ws.send(audio); };
      ws.onmessage = (event) => {
        answered = true;
        try { show(JSON.parse(event.data)); } catch (e) { setStatus("error", "Error: the server's answer could not be read."); }
        ws.close();
        resolve();
      };
      ws.onerror = () => { if (!answered) setStatus("error", "Error: the connection to the server failed."); };
      ws.onclose = () => { if (!answered) setStatus("error", "Error: the server closed the connection without an answer."); resolve(); };
    });
  }

  mic.addEventListener("click", async () => {
    clearResult();
    mic.disabled = true;
    mic.classList.add("recording");
    micLabel.textContent = "Listening";
    try {
      const audio = await record();
      mic.classList.remove("recording");
      if (audio) {
        lastAudio = new File([audio], "microphone.wav", { type: "audio/wav" });
        await sendOverWebSocket(audio);
      }
    } catch (e) {
      setStatus("error", "Error: " + (e && e.message ? e.message : e));
    } finally {
      mic.disabled = false;
      mic.classList.remove("recording");
      micLabel.textContent = "Listen";
    }
  });

  // --- a file, dropped or picked; a URL ------------------------------------------------------
  const fileInput = $("file");
  const zone = $("drop-zone");
  function sendFile(file) {
    if (!file) return;
    lastAudio = file;
    const form = new FormData();
    form.append("file", file, file.name);
    post(form);
  }
  fileInput.addEventListener("change", () => { sendFile(fileInput.files[0]); fileInput.value = ""; });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.files.length) sendFile(e.dataTransfer.files[0]);
  });
  $("url-form").addEventListener("submit", (e) => {
    e.preventDefault();
    lastAudio = null;  // the server fetched it: nothing here to explain with
    const form = new FormData();
    form.append("url", $("url").value.trim());
    post(form);
  });
})();
