// The streamsr page: every address is relative, so the app works mounted under any prefix.
"use strict";

const $ = (selector) => document.querySelector(selector);
let selected = null;           // path of the chosen source, relative to the root
const jobs = new Map();        // id -> job, as the event stream last sent it

let quiet = null;

function say(text, ok = false) {
  $("#message").textContent = text;
  $("#message").className = ok ? "ok" : "";
  clearTimeout(quiet);
  if (ok) quiet = setTimeout(() => { $("#message").textContent = ""; }, 6000);  // news fades; errors stay
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const text = body.error ? `${body.error} (exit ${body.exit_code}: ${body.meaning})` : String(body);
    throw new Error(text);
  }
  return body;
}

function post(path, data) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data) });
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  return m < 60 ? `${m} min ${s} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function bytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function cell(row, text) {
  const td = row.insertCell();
  td.textContent = text ?? "";
  return td;
}

// --- files -------------------------------------------------------------------------------------

async function loadFiles() {
  const { media, models } = await api("api/files");
  const body = $("#files tbody");
  body.replaceChildren();
  for (const f of media) {
    const row = body.insertRow();
    row.dataset.path = f.path;
    row.classList.toggle("selected", f.path === selected);
    cell(row, f.path);
    if (f.kind === "unreadable") {
      cell(row, f.error).colSpan = 4;
    } else {
      cell(row, `${f.width}×${f.height}` + (f.kind === "video" ? `, ${f.fps} fps${f.variable_frame_rate ? " (variable)" : ""}` : ""));
      cell(row, f.kind === "video" ? duration(f.duration) : "image");
      cell(row, f.kind === "video" ? (f.audio.join(", ") || "none") : "");
      const notes = [];
      if (f.kind === "video") {
        if (f.bit_depth > 8) notes.push(`${f.bit_depth}-bit`);
        if (f.colour) notes.push(f.colour);
        if (f.fields !== "progressive") notes.push(`interlaced (${f.fields})`);
        if (f.sar !== "1:1") notes.push(`pixel aspect ${f.sar}, display ${f.dar}`);
        if (f.rotation) notes.push(`turned ${Math.abs(f.rotation)}° when shown`);
        if (f.subtitles) notes.push(`${f.subtitles} subtitle track${f.subtitles > 1 ? "s" : ""}`);
      }
      cell(row, notes.join(" · "));
    }
    cell(row, bytes(f.bytes));
    row.addEventListener("click", () => choose(f.path));
  }
  const model = $("#model");
  for (const option of [...model.querySelectorAll("option[data-file]")]) option.remove();
  for (const m of models) {
    const option = new Option(`${m.path} (file)`, m.path);
    option.dataset.file = "1";
    model.add(option);
  }
}

function choose(path) {
  selected = path;
  $("#selected").textContent = path;
  for (const row of document.querySelectorAll("#files tbody tr")) row.classList.toggle("selected", row.dataset.path === path);
}

function upload(file) {
  const item = document.createElement("li");
  item.textContent = `${file.name}: 0%`;
  $("#uploads").append(item);
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("PUT", `api/files/${encodeURIComponent(file.name)}`);
    request.upload.onprogress = (e) => { if (e.lengthComputable) item.textContent = `${file.name}: ${Math.round(100 * e.loaded / e.total)}%`; };
    request.onload = () => {
      let body = {};
      try { body = JSON.parse(request.responseText); } catch { body = { error: request.responseText }; }
      if (request.status === 201) {
        item.textContent = `${file.name}: stored as ${body.path}`;
        resolve(body);
      } else {
        item.textContent = `${file.name}: ${body.error || request.statusText}`;
        reject(new Error(body.error || request.statusText));
      }
    };
    request.onerror = () => reject(new Error(`${file.name}: the upload broke off`));
    request.send(file);
  });
}

async function uploadAll(files) {
  let last = null;
  for (const file of files) {
    try {
      const stored = await upload(file);
      if (stored.kind) last = stored.path;
    } catch (e) {
      say(e.message);
    }
  }
  await loadFiles();
  if (last) choose(last);
}

// --- choices -----------------------------------------------------------------------------------

function options() {
  const picked = document.querySelector("input[name=size]:checked").value;
  const chosen = { model: $("#model").value, preset: $("#preset").value, fit: $("#fit").value };
  if (picked.startsWith("x")) chosen.scale = Number(picked.slice(1));
  else if (picked === "custom") {
    if ($("#width").value) chosen.width = Number($("#width").value);
    if ($("#height").value) chosen.height = Number($("#height").value);
  } else chosen.height = Number(picked);
  if (chosen.model) delete chosen.scale;  // a model file or name carries its own scale
  return Object.fromEntries(Object.entries(chosen).filter(([, v]) => v !== "" && v !== undefined));
}

async function loadChoices() {
  const { models, presets } = await api("api/choices");
  for (const m of models) $("#model").add(new Option(`${m.name}: ${m.summary}`, m.name));
  for (const p of presets) $("#preset").add(new Option(p.name, p.name, false, p.name === "default"));
  const about = () => { $("#preset-about").textContent = presets.find((p) => p.name === $("#preset").value)?.description || ""; };
  $("#preset").addEventListener("change", about);
  about();
}

function needSource() {
  if (!selected) throw new Error("pick a file first");
  return { source: selected, options: options() };
}

async function estimate() {
  const out = $("#estimate-out");
  try {
    const request = needSource();
    out.textContent = "measuring on the first frame…";
    const found = await post("api/estimate", request);
    out.textContent = found.map((e) => `${e.model}: ${duration(e.seconds)}`).join(" · ") + " (measured here)";
  } catch (e) {
    out.textContent = "";
    say(e.message);
  }
}

async function start(event) {
  event.preventDefault();
  try {
    const job = await post("api/jobs", needSource());
    show(job);
    say(`queued ${job.source} → ${job.output}`, true);
  } catch (e) {
    say(e.message);
  }
}

// --- before / after ----------------------------------------------------------------------------

let compareQuery = null, compareWhat = "";

async function compare(query, what) {
  compareQuery = query;
  compareWhat = what;
  $("#compare").hidden = false;
  $("#compare-what").textContent = `${what} (working…)`;
  try {
    const at = $("#at").value || "0";
    const pair = await api(`api/compare?${new URLSearchParams({ ...query, at })}`);
    await Promise.all([["#before", pair.before], ["#after", pair.after]].map(([id, src]) => new Promise((resolve) => {
      $(id).onload = resolve;
      $(id).src = src;
    })));
    $("#compare-what").textContent = `${what}: frame at ${pair.seconds.toFixed(3)} s, ${pair.width}×${pair.height}`;
    $("#after-label").textContent = pair.name;
    $("#before-label").textContent = `bicubic ×${pair.scale}`;
    $("#compare").scrollIntoView({ block: "nearest" });
  } catch (e) {
    $("#compare-what").textContent = what;
    say(e.message);
  }
}

function slide() {
  const v = Number($("#slider").value);
  $("#before").style.clipPath = `inset(0 ${100 - v}% 0 0)`;
  $("#divider").style.left = `${v}%`;
}

// --- jobs --------------------------------------------------------------------------------------

function show(job) {
  jobs.set(job.id, job);
  let item = document.getElementById(`job-${job.id}`);
  if (!item) {
    item = document.createElement("li");
    item.id = `job-${job.id}`;
    item.innerHTML = `<div class="head"><span class="state"></span><span class="name"></span><span class="muted detail"></span></div>
      <progress max="1" value="0"></progress><div class="error"></div><div class="done"></div>
      <div class="tools"><button type="button" class="stop"></button></div>`;
    item.querySelector(".stop").addEventListener("click", () => api(`api/jobs/${job.id}`, { method: "DELETE" }).catch((e) => say(e.message)));
    $("#jobs").prepend(item);
  }
  item.className = `job ${job.state}`;
  item.querySelector(".state").textContent = job.state;
  item.querySelector(".name").textContent = `${job.source} → ${job.output}`;
  const bar = item.querySelector("progress");
  bar.max = job.total || Math.max(job.frames, 1);
  bar.value = job.state === "done" ? bar.max : job.frames;
  const parts = [`${job.frames}${job.total ? ` / ${job.total}` : ""} frames`];
  if (job.state === "running" && job.fps) parts.push(`${job.fps.toFixed(1)} fps`);
  if (job.state === "running" && job.eta_seconds !== null) parts.push(`${duration(job.eta_seconds)} left`);
  if (job.resumed) parts.push(`${job.resumed} from before the restart`);
  if (job.reused) parts.push(`${job.reused} repeats reused`);
  if (job.picture.length) parts.push(job.picture.join("; "));
  if (job.warnings.length) parts.push(job.warnings.join("; "));
  item.querySelector(".detail").textContent = parts.join(" · ");
  item.querySelector(".error").textContent = job.state === "failed" ? `exit ${job.exit_code} (${job.meaning}): ${job.error}` : "";
  item.querySelector(".stop").textContent = ["queued", "running"].includes(job.state) ? "Stop" : "Remove";
  const done = item.querySelector(".done");
  if (job.state === "done" && !done.childElementCount) {
    const url = `media/${job.output.split("/").map(encodeURIComponent).join("/")}`;
    const image = /\.(png|jpe?g|webp|tiff?|bmp)$/i.test(job.output);
    const player = document.createElement(image ? "img" : "video");
    player.src = url;
    if (!image) {
      player.controls = true;
      player.preload = "auto";  // a local file: the first frame shows at once
      player.addEventListener("loadedmetadata", () => {
        // A browser that cannot decode the codec (10-bit HEVC, say) still reads the length.
        const shown = player.videoWidth ? `${player.videoWidth}×${player.videoHeight}, ` : "this browser cannot show the picture (download it), ";
        item.querySelector(".length").textContent = shown + duration(player.duration);
      });
    }
    done.append(player);
    const tools = item.querySelector(".tools");
    tools.insertAdjacentHTML("afterbegin", `<a class="download" download href="${url}?download=1">Download</a>
      <button type="button" class="compare">Before / after</button><span class="muted length"></span>`);
    tools.querySelector(".compare").addEventListener("click", () => compare({ job: job.id }, job.output));
    loadFiles();
  }
}

function follow() {
  const events = new EventSource("api/events");
  events.addEventListener("job", (e) => show(JSON.parse(e.data)));
  events.addEventListener("removed", (e) => {
    const { id } = JSON.parse(e.data);
    jobs.delete(id);
    document.getElementById(`job-${id}`)?.remove();
  });
}

// --- wiring ------------------------------------------------------------------------------------

function wire() {
  const drop = $("#drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    uploadAll([...e.dataTransfer.files]);
  });
  $("#pick").addEventListener("change", (e) => uploadAll([...e.target.files]));
  $("#job").addEventListener("submit", start);
  $("#estimate").addEventListener("click", estimate);
  $("#preview").addEventListener("click", () => {
    try {
      const { source, options: chosen } = needSource();
      compare({ source, ...chosen }, source);
    } catch (e) {
      say(e.message);
    }
  });
  $("#compare-again").addEventListener("click", () => compareQuery && compare(compareQuery, compareWhat));
  $("#slider").addEventListener("input", slide);
  for (const input of [$("#width"), $("#height")]) {
    input.addEventListener("focus", () => { document.querySelector("input[name=size][value=custom]").checked = true; });
  }
}

wire();
Promise.all([loadChoices(), loadFiles()]).then(follow).catch((e) => say(e.message));
