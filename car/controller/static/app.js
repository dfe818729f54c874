// The car's control page: joystick (touch or mouse), modes, recording, throttle cap, video, stats.
// The stick state goes to the car 20 times a second: that stream is the car's dead man's switch.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const $ = (id) => document.getElementById(id);
const stick = { angle: 0, throttle: 0 };
let socket = null;
let everOpened = false;
let recording = false;

function setBadge(el, text, bad) {
  el.textContent = text;
  el.classList.toggle("bad", bad);
  el.hidden = false;
}

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(token)}`);
  let opened = false;
  socket.onopen = () => {
    opened = everOpened = true;
    setBadge($("connection"), "connected", false);
    $("video").src = `/video?token=${encodeURIComponent(token)}`;
  };
  socket.onmessage = (event) => showStatus(JSON.parse(event.data));
  socket.onclose = () => {
    setBadge($("connection"), opened || everOpened ? "disconnected" : "refused: bad token?", true);
    setTimeout(connect, 1000);
  };
}

function showStatus(status) {
  if (status.error) {
    $("message").textContent = `car rejected a message: ${status.error}`;
    return;
  }
  $("car-name").textContent = status.car || "tubcar";
  const control = status.control || {};
  document.querySelectorAll("button.mode").forEach((b) => b.classList.toggle("selected", b.dataset.mode === control.mode));
  recording = !!control.recording;
  $("record").classList.toggle("on", recording);
  $("record").textContent = recording ? `■ recording${status.records != null ? ` (${status.records})` : ""}` : "● record";
  if (document.activeElement !== $("cap") && control.throttle_cap != null) {
    $("cap").value = control.throttle_cap;
    $("cap-value").textContent = Number(control.throttle_cap).toFixed(2);
  }
  if (status.recording_error) $("message").textContent = `recording stopped: ${status.recording_error}`;
  if (status.failsafe) setBadge($("failsafe"), `failsafe: ${status.failsafe}`, true);
  else $("failsafe").hidden = true;
  if (status.angle != null) $("readout-angle").textContent = `angle ${status.angle.toFixed(2)}`;
  if (status.throttle != null) $("readout-throttle").textContent = `throttle ${status.throttle.toFixed(2)}`;
  const loop = status.loop;
  if (loop) {
    $("summary").textContent = `${loop.ticks} ticks @ ${loop.rate_hz} Hz · overruns ${loop.overruns} · ` +
      `period error p99 ${loop.period_error.p99_ms.toFixed(2)} ms`;
    const rows = Object.entries(loop.parts).map(([name, p]) =>
      `<tr><td>${name}</td><td>${p.p50_ms.toFixed(2)}</td><td>${p.p99_ms.toFixed(2)}</td>` +
      `<td>${p.max_ms.toFixed(2)}</td><td>${p.errors}</td></tr>`);
    document.querySelector("#parts tbody").innerHTML = rows.join("");
  }
}

// Joystick: pointer events cover touch, pen and mouse. Up = forward, right = steer right.
const pad = $("pad");
const knob = $("knob");
function moveStick(event) {
  const box = pad.getBoundingClientRect();
  const radius = box.width / 2;
  let x = (event.clientX - box.left - radius) / radius;
  let y = (event.clientY - box.top - radius) / radius;
  const length = Math.hypot(x, y);
  if (length > 1) { x /= length; y /= length; }
  stick.angle = x;
  stick.throttle = -y;
  knob.style.transform = `translate(${x * radius}px, ${y * radius}px)`;
}
function releaseStick() {
  stick.angle = 0;
  stick.throttle = 0;
  knob.style.transform = "";
  send(stick);
}
pad.addEventListener("pointerdown", (e) => { pad.setPointerCapture(e.pointerId); moveStick(e); e.preventDefault(); });
pad.addEventListener("pointermove", (e) => { if (pad.hasPointerCapture(e.pointerId)) moveStick(e); });
pad.addEventListener("pointerup", releaseStick);
pad.addEventListener("pointercancel", releaseStick);

document.querySelectorAll("button.mode").forEach((button) =>
  button.addEventListener("click", () => send({ mode: button.dataset.mode })));
$("record").addEventListener("click", () => send({ recording: !recording }));
$("stop").addEventListener("click", () => { releaseStick(); send({ mode: "user", angle: 0, throttle: 0 }); });
$("cap").addEventListener("input", () => {
  $("cap-value").textContent = Number($("cap").value).toFixed(2);
  send({ throttle_cap: Number($("cap").value) });
});

setInterval(() => send(stick), 50);
connect();
