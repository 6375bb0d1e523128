// The reader study page: one image at a time, no going back, answers saved after every image
// (localStorage) and exported as a JSON file. Works from file:// with no network.
// fnv1a / mulberry32 / readerOrder / the staircase are replayed in Python
// (medsynbench.reader_study.layout and .stats): keep both in step.
"use strict";
(function () {
  const STUDY = window.MEDSYNBENCH_STUDY;
  const TIMED = STUDY.protocol === "timed";
  const T = STUDY.timed || null;
  const READER_ID = /^[A-Za-z0-9_.-]{1,32}$/;
  const byId = {};
  STUDY.trials.forEach(function (t) { byId[t.id] = t; });
  const $ = function (id) { return document.getElementById(id); };
  let state = null;    // what is saved: reader, order, answers, staircases
  let current = null;  // the trial on screen: {trial, onset, answer, rt, exposure}
  let timer = null;
  let storageOk = true;

  function fnv1a(text) {
    let h = 0x811c9dc5;
    const bytes = new TextEncoder().encode(text);
    for (let i = 0; i < bytes.length; i++) { h = Math.imul(h ^ bytes[i], 0x01000193) >>> 0; }
    return h >>> 0;
  }
  function mulberry32(seed) {
    let a = seed >>> 0;
    return function () {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a) >>> 0;
      t = (((t + Math.imul(t ^ (t >>> 7), 61 | t)) >>> 0) ^ t) >>> 0;
      return (t ^ (t >>> 14)) >>> 0;
    };
  }
  function readerOrder(reader) {
    const ids = STUDY.trials.map(function (t) { return t.id; });
    const next = mulberry32(fnv1a(STUDY.study_id + ":" + reader));
    for (let i = ids.length - 1; i > 0; i--) {
      const j = next() % (i + 1);
      const keep = ids[i]; ids[i] = ids[j]; ids[j] = keep;
    }
    return ids;
  }
  function storageKey(reader) { return "medsynbench-study:" + STUDY.study_id + ":" + reader; }
  function save() {
    try { localStorage.setItem(storageKey(state.reader), JSON.stringify(state)); }
    catch (e) { storageOk = false; $("storage-warning").hidden = false; }
  }
  function restore(reader) {
    try {
      const raw = localStorage.getItem(storageKey(reader));
      const found = raw ? JSON.parse(raw) : null;
      return found && found.study_id === STUDY.study_id ? found : null;
    } catch (e) { storageOk = false; $("storage-warning").hidden = false; return null; }
  }

  // HYPE-time staircase, one per entry (trial.g): 3 right in a row → one rung shorter,
  // 1 wrong → one rung longer; attention trials (g null) at the longest exposure.
  function stair(g) {
    const key = String(g);
    if (!state.stairs[key]) { state.stairs[key] = {rung: T.start_rung, streak: 0}; }
    return state.stairs[key];
  }
  function exposureOf(trial) {
    return trial.g === null || trial.g === undefined ? T.attention_ms : T.ladder_ms[stair(trial.g).rung];
  }
  function updateStair(trial, answer) {
    if (trial.g === null || trial.g === undefined) { return; }
    const token = fnv1a(STUDY.study_id + ":" + trial.id + ":" + answer).toString(16).padStart(8, "0");
    const s = stair(trial.g);
    let move;
    if (token === trial.c) {
      s.streak += 1;
      if (s.streak < T.down) { return; }
      move = 1;
    } else {
      move = -1;
    }
    s.streak = 0;
    s.rung = Math.min(Math.max(s.rung + move, 0), T.ladder_ms.length - 1);
  }

  function setChoices(enabled, chosen) {
    ["real", "fake"].forEach(function (answer) {
      const button = $("answer-" + answer);
      button.disabled = !enabled;
      button.setAttribute("aria-pressed", String(answer === chosen));
    });
  }
  function showTrial() {
    const index = state.answers.length;
    if (index >= state.order.length) { finish(); return; }
    const trial = byId[state.order[index]];
    const total = state.order.length;
    $("progress-text").textContent = "Image " + (index + 1) + " of " + total;
    $("progress").max = total;
    $("progress").value = index;
    $("confidence").hidden = true;
    $("hidden-note").hidden = true;
    $("image").hidden = true;
    setChoices(false);
    const loader = new Image();
    loader.src = trial.src;
    const ready = loader.decode ? loader.decode().catch(function () {}) : Promise.resolve();
    ready.then(function () {
      if (!TIMED) { present(trial, index, total); return; }
      $("fixation").hidden = false;
      setTimeout(function () { $("fixation").hidden = true; present(trial, index, total); },
                 T.fixation_ms);
    });
  }
  function present(trial, index, total) {
    const image = $("image");
    image.src = trial.src;
    image.alt = "Image " + (index + 1) + " of " + total + ": real or fake?";
    image.hidden = false;
    current = {trial: trial, index: index, onset: performance.now(), answer: null, rt: null,
               exposure: TIMED ? exposureOf(trial) : null};
    setChoices(true);
    if (TIMED) {
      timer = setTimeout(function () {
        image.hidden = true;
        $("hidden-note").hidden = false;
      }, current.exposure);
    }
  }
  function choose(answer) {
    if (!current || current.answer) { return; }
    current.answer = answer;
    current.rt = performance.now() - current.onset;
    if (TIMED) { record(null); return; }
    setChoices(false, answer);
    $("confidence").hidden = false;
    $("confidence").querySelector("button").focus();
  }
  function record(confidence) {
    if (!current || !current.answer) { return; }
    clearTimeout(timer);
    const trial = current.trial;
    state.answers.push({
      index: current.index, trial: trial.id, answer: current.answer, confidence: confidence,
      rt_ms: Math.round(current.rt), exposure_ms: current.exposure, at: new Date().toISOString(),
    });
    if (TIMED) { updateStair(trial, current.answer); }
    current = null;
    save();
    showTrial();
  }
  function finish() {
    state.finished = state.finished || new Date().toISOString();
    save();
    $("trial").hidden = true;
    $("done").hidden = false;
    $("done-text").textContent = "You answered all " + state.order.length + " images, reader " +
      state.reader + ".";
    $("export").focus();
  }
  function exportAnswers() {
    const doc = {
      kind: "medsynbench-reader-answers", schema_version: 1, study_id: STUDY.study_id,
      protocol: STUDY.protocol, reader: state.reader, started: state.started,
      finished: state.finished || null, exported: new Date().toISOString(),
      complete: state.answers.length === state.order.length, n_trials: state.order.length,
      order: state.order, answers: state.answers,
      display: {size_px: STUDY.display_size, device_pixel_ratio: window.devicePixelRatio,
                user_agent: navigator.userAgent},
    };
    const blob = new Blob([JSON.stringify(doc, null, 1)], {type: "application/json"});
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "answers-" + STUDY.study_id + "-" + state.reader + ".json";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(link.href); }, 5000);
  }
  function start(event) {
    event.preventDefault();
    const reader = $("reader").value.trim();
    if (!READER_ID.test(reader)) {
      $("start-error").textContent = "Enter a reader id of 1–32 letters, digits, . _ or -.";
      $("reader").focus();
      return;
    }
    if (!$("consent").checked) {
      $("start-error").textContent = "Please tick the consent box to take part.";
      $("consent").focus();
      return;
    }
    state = restore(reader) || {
      study_id: STUDY.study_id, protocol: STUDY.protocol, reader: reader,
      order: readerOrder(reader), answers: [], stairs: {}, started: new Date().toISOString(),
    };
    save();
    $("welcome").hidden = true;
    $("trial").hidden = false;
    $("choice").focus();
    showTrial();
  }

  function instructions() {
    const box = $("instructions");
    const p = document.createElement("p");
    p.textContent = TIMED
      ? "Each image appears after a cross (+) in the middle of the screen and is shown only " +
        "briefly — from 1 second down to a tenth of a second. Look at the cross, then answer " +
        "as soon as you can: real or fake."
      : "Take as long as you need for each image. Answer real or fake, then say how sure you " +
        "are: guessing, fairly sure or certain.";
    box.appendChild(p);
  }

  document.addEventListener("keydown", function (event) {
    if ($("trial").hidden || event.repeat || event.altKey || event.ctrlKey || event.metaKey) {
      return;
    }
    const key = event.key.toLowerCase();
    if (key === "r" || key === "f") {
      event.preventDefault();
      choose(key === "r" ? "real" : "fake");
    } else if (!TIMED && (key === "1" || key === "2" || key === "3")) {
      event.preventDefault();
      record(Number(key));
    }
  });
  $("answer-real").addEventListener("click", function () { choose("real"); });
  $("answer-fake").addEventListener("click", function () { choose("fake"); });
  document.querySelectorAll("#confidence button").forEach(function (button) {
    button.addEventListener("click", function () { record(Number(button.dataset.confidence)); });
  });
  $("start-form").addEventListener("submit", start);
  $("export").addEventListener("click", exportAnswers);
  $("export-partial").addEventListener("click", exportAnswers);
  document.body.classList.add(TIMED ? "timed" : "unlimited");
  $("n-images").textContent = String(STUDY.trials.length);
  $("attention-note").hidden = !STUDY.attention_checks;
  const size = STUDY.display_size + "px";
  $("stage").style.width = size;
  $("stage").style.height = size;
  $("choice").tabIndex = -1;
  instructions();
  try { localStorage.setItem("medsynbench-probe", "1"); localStorage.removeItem("medsynbench-probe"); }
  catch (e) { storageOk = false; $("storage-warning").hidden = false; }
  window.medsynbenchStudy = {readerOrder: readerOrder, fnv1a: fnv1a, storageOk: function () { return storageOk; }};
})();
