// Heimdex web app: a little vanilla JavaScript over server-rendered pages.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
// Cookie-authenticated writes carry this header: proof that the request comes from our own pages.
const CSRF = { "X-Heimdex-CSRF": "1" };

function toast(message, bad = false) {
  const el = $("#toast");
  if (!el) return;
  el.textContent = message;
  el.classList.toggle("bad", bad);
  el.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove("show"), 3500);
}

async function refreshSession() {
  const r = await fetch("/auth/refresh", { method: "POST", headers: CSRF, credentials: "same-origin" });
  return r.ok;
}

// fetch for the API: JSON in and out, renews an expired session once, errors become exceptions.
async function api(path, { method = "GET", json, body, retry = true } = {}) {
  const headers = { ...CSRF };
  if (json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  const r = await fetch(path, { method, headers, body, credentials: "same-origin" });
  if (r.status === 401 && retry && !path.startsWith("/auth/")) {
    if (await refreshSession()) return api(path, { method, json, body, retry: false });
    location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
  }
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (!r.ok) throw new Error((data && data.message) || `request failed (${r.status})`);
  return data;
}

function escapeHtml(s) {
  return String(s ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function clock(seconds) {
  const s = Math.floor(seconds || 0), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}:${String(m).padStart(2, "0")}:${String(r).padStart(2, "0")}` : `${m}:${String(r).padStart(2, "0")}`;
}

// ---------------------------------------------------------------- login / register
// Where to go after logging in: only a page of this site. The URL is resolved as the browser will
// resolve it (tabs and newlines dropped, a backslash read as "/"), so "/\evil.example" cannot leave.
function sameOriginPath(next) {
  try {
    const url = new URL(next || "/app", location.origin);
    if (url.origin === location.origin) return url.pathname + url.search + url.hash;
  } catch (ex) { /* not a URL */ }
  return "/app";
}

function initAuth() {
  const form = $("#auth-form");
  if (!form) return;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const err = $("#auth-error");
    err.hidden = true;
    const button = $("button[type=submit]", form);
    button.disabled = true;
    try {
      await api(`/auth/${form.dataset.mode}`, { method: "POST", json: { email: form.email.value, password: form.password.value } });
      location.href = sameOriginPath(form.dataset.next);
    } catch (ex) {
      err.textContent = ex.message;
      err.hidden = false;
      button.disabled = false;
    }
  });
}

// ---------------------------------------------------------------- video actions (library and player)
function initVideoActions() {
  document.addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-action]");
    if (!button) return;
    const holder = button.closest("[data-video]");
    if (!holder) return;
    const id = holder.dataset.video;
    const action = button.dataset.action;
    if (action === "delete") {
      if (!confirm("Delete this video with its scenes, thumbnails and index?")) return;
      try {
        await api(`/videos/${id}`, { method: "DELETE" });
        toast("Video deleted");
        if (button.dataset.after) { location.href = button.dataset.after; return; }
        $$(`[data-video="${id}"].video-card`).forEach(el => el.remove());
        updateCount();
      } catch (ex) { toast(ex.message, true); }
    } else if (action === "reprocess") {
      try {
        const v = await api(`/videos/${id}/reprocess`, { method: "POST" });
        toast("Indexing again");
        updateCard(v);
      } catch (ex) { toast(ex.message, true); }
    }
  });
}

// ---------------------------------------------------------------- library: cards, live state, uploads
function cardHtml(v) {
  const pct = Math.round((v.progress || 0) * 100);
  const thumb = v.thumbnail ? `<img src="${v.thumbnail}?v=${v.updated_at || ""}" alt="" loading="lazy">` : `<span class="nothumb"></span>`;
  const time = v.duration_s ? `<span class="time">${clock(v.duration_s)}</span>` : "";
  return `<a class="thumb" href="/app/watch/${v.id}">${thumb}${time}</a>
    <div class="card-body">
      <a class="title" href="/app/watch/${v.id}" title="${escapeHtml(v.filename)}">${escapeHtml(v.filename)}</a>
      <div class="status"><span class="badge ${v.state}">${v.state}</span><span class="meta">${statusText(v, pct)}</span></div>
      <div class="bar" ${["indexed", "failed"].includes(v.state) ? "hidden" : ""}><span style="width:${pct}%"></span></div>
      <div class="actions"><button type="button" class="ghost" data-action="reprocess">Reprocess</button>
      <button type="button" class="ghost danger" data-action="delete">Delete</button></div>
    </div>`;
}

function statusText(v, pct) {
  if (v.state === "indexed") return `${v.scene_count} scenes`;
  if (v.state === "failed") return escapeHtml(v.error || "");
  return `${pct}%`;
}

function updateCount() {
  const n = $$(".video-card").length;
  const count = $("#video-count");
  if (count) count.textContent = `${n} video${n === 1 ? "" : "s"}`;
  const empty = $("#empty");
  if (empty) empty.hidden = n > 0;
}

// Full re-render when the state changes (thumbnail, scene count); only the bar moves otherwise.
function updateCard(v) {
  const grid = $("#library");
  if (!grid || !v || !v.id) return;
  let card = $(`.video-card[data-video="${v.id}"]`);
  if (!card) {
    card = document.createElement("article");
    card.dataset.video = v.id;
    grid.prepend(card);
  }
  if (card.dataset.state === v.state && v.state === "processing") {
    const pct = Math.round((v.progress || 0) * 100);
    $(".bar span", card).style.width = pct + "%";
    $(".meta", card).textContent = statusText(v, pct);
    return;
  }
  card.className = `card video-card state-${v.state}`;
  card.dataset.state = v.state;
  card.innerHTML = cardHtml(v);
  updateCount();
}

function initLibrary() {
  if (!$("#library")) return;
  $$(".video-card").forEach(card => { card.dataset.state = (card.className.match(/state-(\w+)/) || [])[1]; });
  const events = new EventSource("/jobs/events");
  events.addEventListener("job", async (e) => {
    const job = JSON.parse(e.data);
    if (job.state === "deleted") { $$(`.video-card[data-video="${job.video_id}"]`).forEach(el => el.remove()); updateCount(); return; }
    const card = $(`.video-card[data-video="${job.video_id}"]`);
    if (card && card.dataset.state === job.state && job.state === "processing") {
      updateCard({ id: job.video_id, ...job });
    } else {
      try { updateCard(await api(`/videos/${job.video_id}`)); } catch (ex) { /* deleted meanwhile */ }
    }
  });
  window.addEventListener("beforeunload", () => events.close());
  initUploads();
}

function initUploads() {
  const zone = $("#dropzone"), input = $("#file-input");
  const pick = () => input.click();
  zone.addEventListener("click", (e) => { if (e.target.id !== "pick-files") pick(); });
  $("#pick-files").addEventListener("click", (e) => { e.stopPropagation(); pick(); });
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(); } });
  ["dragenter", "dragover"].forEach(t => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add("over"); }));
  ["dragleave", "drop"].forEach(t => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.remove("over"); }));
  zone.addEventListener("drop", (e) => uploadAll(e.dataTransfer.files));
  input.addEventListener("change", () => { uploadAll(input.files); input.value = ""; });
}

async function uploadAll(files) {
  // One at a time: each gets its own progress bar, and the server's disk is not hit by all at once.
  for (const file of Array.from(files)) await uploadOne(file);
}

function uploadOne(file) {
  const row = document.createElement("li");
  row.innerHTML = `<span class="name">${escapeHtml(file.name)}</span><span class="pct">0%</span><div class="bar"><span style="width:0%"></span></div>`;
  $("#uploads").prepend(row);
  const max = Number($("#dropzone").dataset.max);
  if (max && file.size > max) { failRow(row, "too large"); return Promise.resolve(); }
  return new Promise((resolve) => {
    const send = (retry) => {
      const xhr = new XMLHttpRequest();  // fetch cannot report upload progress
      xhr.open("POST", "/videos");
      xhr.setRequestHeader("X-Heimdex-CSRF", "1");
      xhr.upload.onprogress = (e) => {
        if (!e.lengthComputable) return;
        const pct = Math.round((e.loaded / e.total) * 100);
        $(".bar span", row).style.width = pct + "%";
        $(".pct", row).textContent = pct < 100 ? pct + "%" : "processing…";
      };
      xhr.onload = async () => {
        if (xhr.status === 401 && retry && await refreshSession()) { send(false); return; }
        let data = null;
        try { data = JSON.parse(xhr.responseText); } catch (ex) { /* not JSON */ }
        if (xhr.status === 200 || xhr.status === 201) {
          row.classList.add("done");
          $(".bar span", row).style.width = "100%";
          const v = data.videos[0];
          $(".pct", row).textContent = v.created ? "uploaded" : "already in your library";
          updateCard(v);
          setTimeout(() => row.remove(), 6000);
        } else {
          failRow(row, (data && data.message) || `failed (${xhr.status})`);
        }
        resolve();
      };
      xhr.onerror = () => { failRow(row, "network error"); resolve(); };
      const form = new FormData();
      form.append("file", file, file.name);
      xhr.send(form);
    };
    send(true);
  });
}

function failRow(row, message) {
  row.classList.add("failed");
  $(".pct", row).textContent = message;
}

// ---------------------------------------------------------------- player and transcript
function initPlayer() {
  const video = $("#player");
  if (!video) return;
  const start = parseFloat(video.dataset.start || "0");
  const lines = $$(".line");
  const scenes = $$(".tscene");
  const seek = (t) => { video.currentTime = t; video.play().catch(() => {}); };
  if (start > 0) {
    const jump = () => { video.currentTime = start; };
    if (video.readyState >= 1) jump(); else video.addEventListener("loadedmetadata", jump, { once: true });
  }
  let active = null;
  const highlight = () => {
    const t = video.currentTime + 0.05;
    let found = null;
    for (const line of lines) {
      if (parseFloat(line.dataset.start) <= t) found = line; else break;
    }
    if (found && t > parseFloat(found.dataset.end) + 1.5) found = null;  // silence after a line
    if (found !== active) {
      if (active) active.classList.remove("active");
      if (found) {
        found.classList.add("active");
        const box = $("#transcript");
        const top = found.offsetTop - box.offsetTop;
        if (top < box.scrollTop || top > box.scrollTop + box.clientHeight - 60) box.scrollTo({ top: top - 80, behavior: "smooth" });
      }
      active = found;
    }
    scenes.forEach(s => s.classList.toggle("current", parseFloat(s.dataset.start) <= t && t < parseFloat(s.dataset.end)));
  };
  video.addEventListener("timeupdate", highlight);
  video.addEventListener("seeked", highlight);
  lines.forEach(line => {
    line.addEventListener("click", (e) => { if (!e.target.closest(".line-tools, .line-input")) seek(parseFloat(line.dataset.start)); });
    line.addEventListener("keydown", (e) => { if (e.key === "Enter" && e.target === line) seek(parseFloat(line.dataset.start)); });
  });
  initCorrections();
  $$("[data-seek]").forEach(b => b.addEventListener("click", () => seek(parseFloat(b.dataset.seek))));
  initCaptions(video);
  initHitMarkers(video, seek);
  initShare(video);
}

// Transcript corrections: Edit turns a line into a text box (Enter saves, Escape cancels); the scene's
// text, full text and vectors change at once. Undo takes a correction back.
function initCorrections() {
  const box = $("#transcript[data-video]");
  if (!box) return;
  const video = box.dataset.video;
  box.addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-line]");
    if (!button) return;
    const line = button.closest(".line");
    if (button.dataset.line === "correct") return startCorrecting(video, line);
    button.disabled = true;
    try {
      await api(`/videos/${video}/transcript/edits/${line.dataset.edit}`, { method: "DELETE" });
      toast("Correction taken back");
      location.reload();
    } catch (ex) { toast(ex.message, true); button.disabled = false; }
  });
}

function startCorrecting(video, line) {
  if ($(".line-input", line)) return;
  const say = $(".say", line);
  const input = document.createElement("input");
  input.className = "line-input";
  input.value = say.textContent;
  input.setAttribute("aria-label", "Corrected line");
  say.hidden = true;
  say.after(input);
  input.focus();
  const stop = () => { input.remove(); say.hidden = false; };
  input.addEventListener("keydown", async (e) => {
    if (e.key === "Escape") { e.preventDefault(); stop(); }
    if (e.key !== "Enter") return;
    e.preventDefault();
    input.disabled = true;
    try {
      const edit = await api(`/videos/${video}/transcript/lines`, {
        method: "PUT",
        json: { start_s: parseFloat(line.dataset.start), end_s: parseFloat(line.dataset.end), text: input.value },
      });
      showCorrected(line, edit);
      stop();
      toast("Line corrected: search finds the new words now");
    } catch (ex) { toast(ex.message, true); input.disabled = false; input.focus(); }
  });
}

function showCorrected(line, edit) {
  $(".say", line).textContent = edit.text;
  line.dataset.edit = edit.id;
  line.dataset.start = edit.start_s;
  line.dataset.end = edit.end_s;
  line.classList.add("edited");
  let mark = $(".edited-mark", line);
  if (!mark) {
    mark = document.createElement("span");
    mark.className = "edited-mark";
    mark.textContent = "edited";
    $(".say", line).after(mark);
    const undo = document.createElement("button");
    Object.assign(undo, { type: "button", className: "ghost tiny", title: "Take the correction back", textContent: "Undo" });
    undo.dataset.line = "undo";
    $(".line-tools", line).append(undo);
  }
  mark.title = `Corrected; recognised as: “${edit.recognised}”`;
}

function typing(e) {
  return e.ctrlKey || e.metaKey || e.altKey || e.target.closest("input, textarea, select");
}

// The query's matches on a timeline under the player: previous / next, also with p and n.
function initHitMarkers(video, seek) {
  const starts = $$(".hit-marker").map(m => parseFloat(m.dataset.seek));
  if (!starts.length) return;
  const next = () => {
    const t = starts.find(s => s > video.currentTime + 0.5);
    seek(t === undefined ? starts[0] : t);
  };
  const previous = () => {
    const earlier = starts.filter(s => s < video.currentTime - 0.5);
    seek(earlier.length ? earlier[earlier.length - 1] : starts[starts.length - 1]);
  };
  $("#next-hit").addEventListener("click", next);
  $("#prev-hit").addEventListener("click", previous);
  document.addEventListener("keydown", (e) => {
    if (typing(e)) return;
    if (e.key === "n") next();
    if (e.key === "p") previous();
  });
}

// A link to this moment, for someone else with an account here.
function initShare(video) {
  const button = $("#share-moment");
  if (!button) return;
  button.addEventListener("click", async () => {
    const url = `${location.origin}${location.pathname}?t=${Math.floor(video.currentTime)}`;
    try {
      await navigator.clipboard.writeText(url);
      toast("Link copied: " + url);
    } catch {
      window.prompt("Copy this link", url);  // no clipboard outside https or localhost
    }
    button.dataset.link = url;
  });
}

// The transcript as a subtitle track: off until asked for, remembered across videos.
function initCaptions(video) {
  const toggle = $("#captions-toggle");
  const track = video.textTracks && video.textTracks[0];
  if (!toggle || !track) return;
  const show = (on) => {
    track.mode = on ? "showing" : "hidden";
    toggle.setAttribute("aria-pressed", String(on));
    toggle.classList.toggle("on", on);
    localStorage.setItem("heimdex.captions", on ? "on" : "off");
  };
  show(localStorage.getItem("heimdex.captions") === "on");
  toggle.addEventListener("click", () => show(track.mode !== "showing"));
  document.addEventListener("keydown", (e) => {
    if (e.key === "c" && !typing(e)) show(track.mode !== "showing");
  });
}

// ---------------------------------------------------------------- people
async function uploadPhotos(personId, files) {
  const form = new FormData();
  for (const f of files) form.append("file", f, f.name);
  return api(`/people/${personId}/photos`, { method: "POST", body: form });
}

function initPeople() {
  const form = $("#new-person");
  if (!form) return;
  const photos = $("input[type=file]", form);
  photos.addEventListener("change", () => {
    $("#new-person-files").textContent = Array.from(photos.files).map(f => f.name).join(", ");
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const button = $("button[type=submit]", form);
    button.disabled = true;
    try {
      const person = await api("/people", { method: "POST", json: { name: form.name.value } });
      if (photos.files.length) {
        toast("Looking for faces…");
        try { await uploadPhotos(person.id, photos.files); } catch (ex) { toast(ex.message, true); await new Promise(r => setTimeout(r, 1500)); }
      }
      location.reload();
    } catch (ex) { toast(ex.message, true); button.disabled = false; }
  });
  $("#people").addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-action]");
    if (!button) return;
    const card = button.closest("[data-person]");
    const id = card.dataset.person;
    try {
      if (button.dataset.action === "rename") {
        const name = prompt("New name", $(".title", card).textContent.trim());
        if (!name) return;
        await api(`/people/${id}`, { method: "PATCH", json: { name } });
        location.reload();
      } else if (button.dataset.action === "delete-person") {
        if (!confirm("Delete this person and their photos?")) return;
        await api(`/people/${id}`, { method: "DELETE" });
        card.remove();
        toast("Deleted");
      }
    } catch (ex) { toast(ex.message, true); }
  });
  // "Same person as…": this person goes into the one picked, who keeps their name (POST .../merge).
  $("#people").addEventListener("change", async (e) => {
    const select = e.target.closest("select[data-action=merge-person]");
    if (!select || !select.value) return;
    const card = select.closest("[data-person]");
    const name = $(".title", card).textContent.trim(), into = select.selectedOptions[0].textContent;
    if (!confirm(`${name} and ${into} are one person? ${name}'s photos and faces go to ${into}.`)) { select.value = ""; return; }
    try {
      await api(`/people/${card.dataset.person}/merge`, { method: "POST", json: { into: select.value } });
      location.reload();
    } catch (ex) { toast(ex.message, true); select.value = ""; }
  });
  $$("input[data-action=photos]").forEach(input => input.addEventListener("change", async () => {
    const id = input.closest("[data-person]").dataset.person;
    toast("Looking for faces…");
    try { await uploadPhotos(id, input.files); location.reload(); } catch (ex) { toast(ex.message, true); }
  }));
}

// ---------------------------------------------------------------- person page: review possible matches
// Possible matches come one card per scene with the faces to judge in data-faces; a sure scene card
// has its faces too, for "Not <name>". Each verdict is a PUT per face; the last reply has the counts.
function showPersonCounts(person) {
  const n = person.scene_count, review = person.possible_count;
  $("#scene-count").textContent = `seen in ${n} scene${n === 1 ? "" : "s"}`;
  const count = $("#review-count");
  $("a", count).textContent = `${review} to review`;
  count.hidden = !review;
  $("#person-empty").hidden = $$("#person-scenes .scene-card").length > 0;
}

// A confirmed card joins the person's scenes, with the person's chip and a "Not <name>" button.
function joinScenes(card, name) {
  const grid = $("#person-scenes");
  const twin = $(`.scene-card[data-scene="${card.dataset.scene}"]`, grid);
  if (twin) {  // the scene was already theirs by another face
    twin.dataset.faces = `${twin.dataset.faces} ${card.dataset.faces}`;
    card.remove();
    return;
  }
  card.classList.remove("review-card");
  card.dataset.sure = "1";
  $(".similarity", card).remove();
  const actions = $(".actions", card);
  actions.innerHTML = `<button type="button" class="ghost danger" data-action="reject-match">Not ${escapeHtml(name)}</button>`;
  actions.insertAdjacentHTML("beforebegin", `<div class="chips"><span class="chip person">${escapeHtml(name)}</span></div>`);
  grid.prepend(card);
}

function initPerson() {
  const root = $("#person[data-person]");
  if (!root) return;
  const id = root.dataset.person, name = root.dataset.name;
  root.addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-action$=-match]");
    if (!button) return;
    const card = button.closest("[data-faces]");
    const verdict = button.dataset.action === "confirm-match" ? "confirmed" : "rejected";
    if (card.dataset.sure && !confirm(`Take this scene off ${name}'s page? This face will not be matched to ${name} again.`)) return;
    const buttons = $$("button", card);
    buttons.forEach(b => { b.disabled = true; });
    try {
      let person = null;
      for (const face of card.dataset.faces.split(" ").filter(Boolean)) {
        person = await api(`/people/${id}/matches/${face}`, { method: "PUT", json: { verdict } });
      }
      if (verdict === "confirmed") { joinScenes(card, name); toast(`Confirmed: ${name} is in this scene`); }
      else { card.remove(); toast(`Not ${name}: the face will not be matched to them again`); }
      const review = $("#possible");
      if (review && !$(".review-card", review)) review.remove();
      if (person) showPersonCounts(person);
    } catch (ex) {
      toast(ex.message, true);
      buttons.forEach(b => { b.disabled = false; });
    }
  });
}

// ---------------------------------------------------------------- account
function initAccount() {
  const logout = $("#logout");
  if (logout) logout.addEventListener("click", async () => { await api("/auth/logout", { method: "POST" }); location.href = "/login"; });
  const form = $("#new-token");
  if (form) form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const t = await api("/auth/tokens", { method: "POST", json: { name: form.name.value } });
      const secret = $("#token-secret");
      secret.textContent = `${t.token}  (copy it now: it is not shown again)`;
      secret.hidden = false;
      $(".tokens").insertAdjacentHTML("beforeend", `<li data-token="${t.id}"><span><strong>${escapeHtml(t.name)}</strong> <code>${t.prefix}…</code></span><button type="button" class="ghost danger" data-action="revoke">Revoke</button></li>`);
      form.reset();
    } catch (ex) { toast(ex.message, true); }
  });
  const tokens = $(".tokens");
  if (tokens) tokens.addEventListener("click", async (e) => {
    const li = e.target.closest("[data-token]");
    if (!li || !e.target.closest("[data-action=revoke]")) return;
    try { await api(`/auth/tokens/${li.dataset.token}`, { method: "DELETE" }); li.remove(); } catch (ex) { toast(ex.message, true); }
  });
}

// ---------------------------------------------------------------- highlight reels (search page)
function initReels() {
  const bar = $("#reel-bar");
  if (!bar) return;
  const picked = () => $$(".pick:checked").map(box => box.value);
  const refresh = () => {
    const n = picked().length;
    bar.hidden = n === 0;
    $("#reel-count").textContent = `${n} scene${n === 1 ? "" : "s"} picked`;
  };
  $$(".pick").forEach(box => box.addEventListener("change", refresh));
  $("#make-reel").addEventListener("click", async () => {
    const button = $("#make-reel"), progress = $("#reel-progress"), link = $("#reel-download");
    button.disabled = true;
    link.hidden = true;
    progress.hidden = false;
    progress.value = 0;
    try {
      let reel = await api("/reels", { method: "POST", json: { scene_ids: picked(), fade: $("#reel-fade").checked } });
      while (reel.state === "queued" || reel.state === "running") {
        await new Promise(done => setTimeout(done, 700));
        reel = await api(reel.links.self);
        progress.value = reel.progress;
      }
      if (reel.state !== "done") throw new Error(reel.error || "the reel could not be made");
      link.href = reel.links.file;
      link.hidden = false;
      toast(`Reel ready: ${reel.length_s.toFixed(1)} s`);
    } catch (err) {
      toast(err.message, true);
    } finally {
      button.disabled = false;
      progress.hidden = true;
    }
  });
}

// ---------------------------------------------------------------- search by a photo
// The photo goes to the server, which answers with the results part of the page (same cards).
function initImageSearch() {
  const zone = $("#image-drop"), input = $("#image-input");
  if (!zone) return;
  ["dragenter", "dragover"].forEach(t => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add("over"); }));
  ["dragleave", "drop"].forEach(t => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.remove("over"); }));
  zone.addEventListener("drop", (e) => { if (e.dataTransfer.files.length) searchByPhoto(e.dataTransfer.files[0]); });
  input.addEventListener("change", () => { if (input.files.length) searchByPhoto(input.files[0]); input.value = ""; });
}

async function searchByPhoto(file, retry = true) {
  const form = new FormData();
  form.append("file", file);
  const confidence = $("#min-confidence") ? $("#min-confidence").value : "auto";
  const r = await fetch(`/app/search/image?min_confidence=${encodeURIComponent(confidence)}`,
    { method: "POST", headers: CSRF, body: form, credentials: "same-origin" });
  if (r.status === 401 && retry && await refreshSession()) return searchByPhoto(file, false);
  $("#results-area").innerHTML = await r.text();
  $("#like-example")?.remove();
  initReels();
}

initAuth();
initImageSearch();
initReels();
initVideoActions();
initLibrary();
initPlayer();
// ---------------------------------------------------------------- people page: unnamed people
// Each group card names (POST .../name), merges into the group picked (POST .../merge), hides, or takes
// one face out (POST .../faces/N/move, into a group of its own); the page reloads to show the result.
function initUnnamed() {
  const section = $("#unnamed");
  if (!section) return;
  const act = async (path, json) => { await api(path, { method: path.endsWith("hidden") ? "PUT" : "POST", json }); location.reload(); };
  section.addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-action]");
    if (!button) return;
    const id = button.closest("[data-group]").dataset.group;
    try {
      if (button.dataset.action === "name-group") {
        const name = prompt("Who is this?");
        if (name) await act(`/unnamed-people/${id}/name`, { name });
      } else if (button.dataset.action === "hide-group") {
        await act(`/unnamed-people/${id}/hidden`, { hidden: true });
      } else if (button.dataset.action === "move-face") {
        const face = button.closest("[data-face]").dataset.face;
        await act(`/unnamed-people/${id}/faces/${face}/move`, { to: null });
      }
    } catch (ex) { toast(ex.message, true); }
  });
  section.addEventListener("change", async (e) => {
    const select = e.target.closest("select[data-action=merge-group]");
    if (!select || !select.value) return;
    const id = select.closest("[data-group]").dataset.group;
    try { await act(`/unnamed-people/${id}/merge`, { into: select.value }); } catch (ex) { toast(ex.message, true); }
  });
}

// ---------------------------------------------------------------- people page: faces in no group
// "Who is this?" gives the face to a person or a group, or a group of its own (POST /faces/N/assign).
function initUngrouped() {
  const section = $("#ungrouped");
  if (!section) return;
  section.addEventListener("change", async (e) => {
    const select = e.target.closest("select[data-action=assign-face]");
    if (!select || !select.value) return;
    const [kind, id] = select.value.split(":");
    const body = kind === "person" ? { person: id } : kind === "group" ? { group: id } : {};
    try {
      await api(`/faces/${select.closest("[data-face]").dataset.face}/assign`, { method: "POST", json: body });
      location.reload();
    } catch (ex) { toast(ex.message, true); select.value = ""; }
  });
}

initPeople();
initUnnamed();
initUngrouped();
initPerson();
initAccount();

// ---------------------------------------------------------------- account: password and sessions
// Kept apart on purpose (accounts work): POST /auth/password and POST /auth/logout-all.
(function initSessions() {
  const form = $("#change-password");
  if (form) form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("/auth/password", { method: "POST", json: { current_password: form.current_password.value, new_password: form.new_password.value } });
      form.reset();
      $$(".tokens li").forEach(li => li.remove()); // revoked with the old password
      toast("Password changed: every other session and your API tokens were revoked");
    } catch (ex) { toast(ex.message, true); }
  });
  const all = $("#logout-all");
  if (all) all.addEventListener("click", async () => {
    try {
      await api("/auth/logout-all", { method: "POST", json: { api_tokens: $("#logout-all-tokens").checked } });
      location.href = "/login";
    } catch (ex) { toast(ex.message, true); }
  });
})();
