// OTYS support dashboard: the menu on narrow screens, live alert for new urgent tickets, the
// line's notice, optional beep, status form fields, and recordings that cannot be played.
(function () {
  "use strict";

  var POLL_MS = 3000;
  var SOUND_KEY = "otys-support-sound";
  var baseTitle = document.title;
  var unseen = 0;
  var audio = null;

  function soundOn() {
    try { return window.localStorage.getItem(SOUND_KEY) === "on"; } catch (e) { return false; }
  }

  function audioContext() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) { return null; }
    if (!audio) { audio = new Context(); }
    if (audio.state === "suspended") { audio.resume(); }
    return audio;
  }

  // Two short tones made with WebAudio: no sound file to download.
  function beep() {
    var ctx = audioContext();
    if (!ctx) { return; }
    [0, 0.28].forEach(function (offset, index) {
      var osc = ctx.createOscillator();
      var gain = ctx.createGain();
      var start = ctx.currentTime + offset;
      osc.type = "sine";
      osc.frequency.value = index === 0 ? 880 : 660;
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.3, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.22);
      osc.connect(gain).connect(ctx.destination);
      osc.start(start);
      osc.stop(start + 0.25);
    });
  }

  function setupSoundToggle() {
    var button = document.getElementById("sound-toggle");
    if (!button) { return; }
    function show() {
      var on = soundOn();
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.textContent = on ? "Sound on" : "Sound off";
    }
    button.addEventListener("click", function () {
      try { window.localStorage.setItem(SOUND_KEY, soundOn() ? "off" : "on"); } catch (e) { /* private mode */ }
      show();
      if (soundOn()) { beep(); }
    });
    // Browsers only start audio after a user gesture: unlock it on the first click.
    document.addEventListener("click", function () { if (soundOn()) { audioContext(); } }, { once: true });
    show();
  }

  function showAlert(text, href) {
    var box = document.getElementById("live-alert");
    if (!box) { return; }
    var span = box.querySelector(".live-alert-text");
    span.textContent = "";
    var link = document.createElement("a");
    link.href = href;
    link.textContent = text;
    span.appendChild(link);
    box.hidden = false;
    document.title = "(" + unseen + ") New urgent ticket · " + baseTitle;
  }

  function clearAlert() {
    var box = document.getElementById("live-alert");
    if (box) { box.hidden = true; }
    unseen = 0;
    document.title = baseTitle;
  }

  // The line-wide notice (PIN checks paused) comes and goes with every poll.
  function showNotice(text) {
    var box = document.getElementById("line-notice");
    if (!box) { return; }
    box.textContent = text || "";
    box.hidden = !text;
  }

  function insertRow(html, id) {
    var tbody = document.querySelector("#queue tbody[data-live='on']");
    if (!tbody || tbody.querySelector("tr[data-ticket-id='" + id + "']")) { return; }
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    var row = template.content.firstElementChild;
    if (row) { tbody.insertBefore(row, tbody.firstChild); }
    var empty = document.querySelector(".empty");
    if (empty) { empty.hidden = true; }
  }

  function startFeed() {
    var body = document.body;
    var url = body.getAttribute("data-feed-url");
    if (!url) { return; }
    var after = body.getAttribute("data-latest-id");
    var stopped = false;

    function poll() {
      if (stopped) { return; }
      var target = url + (after ? "?after=" + encodeURIComponent(after) : "");
      fetch(target, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) {
          if (response.status === 401) {
            stopped = true;
            showAlert("You are signed out: sign in again to keep receiving alerts.", "/support/login");
            return null;
          }
          return response.ok ? response.json() : null;
        })
        .then(function (data) {
          if (!data) { return; }
          showNotice(data.notice);
          var first = after === "" || after === null;
          after = String(data.latest_id);
          if (first || !data.tickets.length) { return; }
          data.tickets.forEach(function (ticket) { insertRow(ticket.row, ticket.id); });
          unseen += data.tickets.length;
          var newest = data.tickets[data.tickets.length - 1];
          var text = data.tickets.length === 1 ? newest.summary
            : data.tickets.length + " new urgent tickets, latest: " + newest.summary;
          showAlert(text, newest.url);
          if (soundOn()) { beep(); }
        })
        .catch(function () { /* offline for a moment: try again next round */ })
        .then(function () { if (!stopped) { window.setTimeout(poll, POLL_MS); } });
    }
    window.setTimeout(poll, POLL_MS);
  }

  function setupStatusForm() {
    var select = document.querySelector("#status-form select[name='status']");
    if (!select) { return; }
    var fields = document.querySelectorAll("#status-form [data-for-status]");
    function update() {
      fields.forEach(function (field) {
        field.hidden = field.getAttribute("data-for-status") !== select.value;
      });
    }
    select.addEventListener("change", update);
    update();
  }

  // On a narrow screen the menu folds behind a button; without this script it stays open.
  function setupMenu() {
    var button = document.getElementById("menu-toggle");
    var bar = document.querySelector(".topbar");
    if (!button || !bar) { return; }
    button.hidden = false;
    bar.classList.add("menu-ready");
    button.addEventListener("click", function () {
      var open = !bar.classList.contains("menu-open");
      bar.classList.toggle("menu-open", open);
      button.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  // A recording the service cannot fetch shows 0:00 and nothing else: say so, and where to look.
  function setupRecordings() {
    document.querySelectorAll("audio[data-recording]").forEach(function (player) {
      player.addEventListener("error", function () {
        if (player.nextElementSibling && player.nextElementSibling.classList.contains("recording-problem")) {
          return;
        }
        var note = document.createElement("span");
        note.className = "recording-problem";
        note.setAttribute("role", "status");
        note.textContent = "This recording could not be played. ";
        var link = document.createElement("a");
        link.href = player.getAttribute("src");
        link.textContent = "See why";
        note.appendChild(link);
        player.insertAdjacentElement("afterend", note);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupMenu();
    setupRecordings();
    var close = document.querySelector(".live-alert-close");
    if (close) { close.addEventListener("click", clearAlert); }
    setupSoundToggle();
    setupStatusForm();
    startFeed();
  });
})();
