// detforge serve: the web page. Plain JavaScript, no build step.
// Sends the chosen image to POST predict?score_thr=0 once, then filters by the slider locally.
"use strict";

(() => {
  const PALETTE = [
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
    "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324", "#fffac8", "#800000",
    "#aaffc3", "#808000", "#ffd8b1", "#000075", "#a9a9a9", "#ffe119",
  ];
  const MIN_DISPLAY = 512; // small images are drawn larger so labels stay readable
  const $ = (id) => document.getElementById(id);
  const state = { image: null, detections: [], name: "" };

  const colour = (label) => PALETTE[label % PALETTE.length];
  const threshold = () => Number($("score").value);

  function setStatus(text, isError = false) {
    $("status").textContent = text;
    $("status").classList.toggle("error", isError);
  }

  async function loadMetadata() {
    try {
      const response = await fetch("metadata");
      const meta = await response.json();
      $("score").value = meta.score_thr;
      $("score-value").textContent = Number(meta.score_thr).toFixed(3);
      $("model-info").textContent =
        `${meta.config || "model"} · ${meta.num_classes} classes · ${meta.device}`;
    } catch (err) {
      $("model-info").textContent = `metadata unavailable (${err})`;
    }
  }

  function loadImage(file) {
    return new Promise((resolve) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => resolve(null); // the server may read formats the browser cannot show
      img.src = URL.createObjectURL(file);
    });
  }

  function drawLabel(ctx, text, x, y, fill, fontPx) {
    ctx.font = `${fontPx}px system-ui, sans-serif`;
    const width = ctx.measureText(text).width + 6;
    const height = fontPx + 4;
    const top = Math.max(0, y - height);
    ctx.fillStyle = fill;
    ctx.fillRect(x, top, width, height);
    ctx.fillStyle = "#000";
    ctx.textBaseline = "top";
    ctx.fillText(text, x + 3, top + 2);
  }

  function render() {
    const shown = state.detections.filter((d) => d.score > threshold());
    $("score-value").textContent = threshold().toFixed(3);
    $("count").textContent = `${shown.length} of ${state.detections.length}`;
    const list = $("detections");
    list.replaceChildren(...shown.map((d) => {
      const item = document.createElement("li");
      item.className = "detection";
      item.dataset.label = d.label;
      item.dataset.score = d.score;
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = colour(d.label);
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = `${d.class} ${d.score.toFixed(3)}`;
      const box = document.createElement("span");
      box.className = "box";
      box.textContent = `[${d.bbox.map((v) => v.toFixed(0)).join(", ")}]`;
      item.append(swatch, name, box);
      return item;
    }));
    const img = state.image;
    if (!img) return;
    const canvas = $("canvas");
    const longest = Math.max(img.naturalWidth, img.naturalHeight);
    const scale = longest < MIN_DISPLAY ? MIN_DISPLAY / longest : 1;
    canvas.width = Math.round(img.naturalWidth * scale);
    canvas.height = Math.round(img.naturalHeight * scale);
    canvas.dataset.scale = scale;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    const size = Math.max(canvas.width, canvas.height);
    const line = Math.max(2, Math.round(size / 320));
    const fontPx = Math.max(13, Math.round(size / 45));
    for (const d of [...shown].reverse()) { // the best box last, on top
      const [x1, y1, x2, y2] = d.bbox.map((v) => v * scale);
      ctx.strokeStyle = colour(d.label);
      ctx.lineWidth = line;
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      drawLabel(ctx, `${d.class} ${d.score.toFixed(2)}`, x1, y1, colour(d.label), fontPx);
    }
  }

  async function handleFile(file) {
    if (!file) return;
    if (file.type && !file.type.startsWith("image/")) {
      setStatus(`${file.name} is not an image (${file.type}).`, true);
      return;
    }
    setStatus(`Detecting objects in ${file.name}…`);
    const imagePromise = loadImage(file);
    const body = new FormData();
    body.append("file", file, file.name);
    let payload;
    let response;
    try {
      response = await fetch("predict?score_thr=0", { method: "POST", body });
      payload = await response.json();
    } catch (err) {
      setStatus(`Request failed: ${err}`, true);
      return;
    }
    if (!response.ok) {
      setStatus(`${file.name}: ${payload.error || `HTTP ${response.status}`}`, true);
      return;
    }
    state.image = await imagePromise;
    state.detections = payload.detections;
    state.name = file.name;
    const shownNote = state.image ? "" : " (the browser cannot display this format)";
    setStatus(
      `${file.name}: ${payload.width}×${payload.height}, ${payload.detections.length} ` +
      `candidates in ${payload.time_ms.toFixed(0)} ms${shownNote}`,
    );
    render();
    document.body.dataset.ready = "true";
  }

  $("file").addEventListener("change", (event) => handleFile(event.target.files[0]));
  $("score").addEventListener("input", render);
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    handleFile(event.dataTransfer.files[0]);
  });
  window.addEventListener("paste", (event) => {
    const file = [...event.clipboardData.files].find((f) => f.type.startsWith("image/"));
    if (file) handleFile(file);
  });
  loadMetadata();
})();
