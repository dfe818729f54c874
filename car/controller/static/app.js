// The car's control page: joystick (touch or mouse), keyboard arrows, a gamepad (the browser's
// Gamepad API), modes, recording, throttle cap, video, stats.
// The stick state goes to the car 20 times a second: that stream is the car's dead man's switch.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const $ = (id) => document.getElementById(id);
const stick = { angle: 0, throttle: 0 };
let socket = null;
let everOpened = false;
let recording = false;  // armed: the car records while it is driven
let mode = "user";
const MODES = ["user", "local_angle", "local"];  // the protocol's (Donkeycar's) names
const MODE_NAMES = { user: "manual", local_angle: "auto steer", local: "autopilot" };

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
  mode = control.mode || mode;
  recording = !!control.recording;
  showRecording(status);
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

// The record button says what the car does: armed or not, writing or why not, and the count.
function showRecording(status) {
  const state = status.recording || (recording ? "recording" : "off");
  const writing = state === "recording";
  const count = status.records != null ? ` (${status.records})` : "";
  $("record").classList.toggle("on", recording);
  $("record").textContent = !recording ? "● record" : writing ? `■ recording${count}` : `■ armed${count}`;
  $("record-state").textContent = !recording ? "not recording" :
    writing ? "recording while you drive" : state === "off" ? "armed: starting" :
      state === "not in autopilot modes" ? `not recorded in ${MODE_NAMES[mode] || mode} mode` : state;
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
let pointerActive = false;
function releaseStick() {
  pointerActive = false;
  stick.angle = 0;
  stick.throttle = 0;
  knob.style.transform = "";
  send(stick);
}
pad.addEventListener("pointerdown", (e) => {
  pointerActive = true; pad.setPointerCapture(e.pointerId); moveStick(e); e.preventDefault();
});
pad.addEventListener("pointermove", (e) => { if (pad.hasPointerCapture(e.pointerId)) moveStick(e); });
pad.addEventListener("pointerup", releaseStick);
pad.addEventListener("pointercancel", releaseStick);

// What the page asks for counts at once here too: status comes only twice a second.
const toggleRecording = () => { recording = !recording; send({ recording }); };
const setMode = (next) => { mode = next; send({ mode }); };
const nextMode = () => setMode(MODES[(MODES.indexOf(mode) + 1) % MODES.length]);
const stop = () => { releaseStick(); keys.clear(); mode = "user"; send({ mode, angle: 0, throttle: 0 }); };
document.querySelectorAll("button.mode").forEach((button) =>
  button.addEventListener("click", () => setMode(button.dataset.mode)));
$("record").addEventListener("click", toggleRecording);
$("stop").addEventListener("click", stop);
$("cap").addEventListener("input", () => {
  $("cap-value").textContent = Number($("cap").value).toFixed(2);
  send({ throttle_cap: Number($("cap").value) });
});

// Keyboard: arrows held = full stick that way (the car scales throttle by its cap); released = centre.
const keys = new Set();
const KEY_ACTIONS = { r: toggleRecording, R: toggleRecording, m: nextMode, M: nextMode, " ": stop };
document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "INPUT") return;
  if (e.key.startsWith("Arrow")) { keys.add(e.key); e.preventDefault(); }
  else if (KEY_ACTIONS[e.key] && !e.repeat) { KEY_ACTIONS[e.key](); e.preventDefault(); }
});
document.addEventListener("keyup", (e) => keys.delete(e.key));
window.addEventListener("blur", () => keys.clear());  // a key released in another window
function keyboardStick() {
  const axis = (minus, plus) => (keys.has(plus) ? 1 : 0) - (keys.has(minus) ? 1 : 0);
  return { angle: axis("ArrowLeft", "ArrowRight"), throttle: axis("ArrowDown", "ArrowUp") };
}

// Gamepad (the browser's standard mapping): left stick steers, right stick (or left, up/down)
// throttles; A records, Y cycles the mode, B stops. Polled with the 20 Hz stream.
const DEAD_ZONE = 0.08;
const pressed = {};
function gamepadStick() {
  const gamepad = [...(navigator.getGamepads ? navigator.getGamepads() : [])].find((g) => g && g.connected);
  $("input-source").textContent = "keyboard: arrows drive, R record, M mode, space stop · gamepad: " +
    (gamepad ? gamepad.id : "none");
  if (!gamepad) return null;
  const button = (index, action) => {
    const down = !!(gamepad.buttons[index] && gamepad.buttons[index].pressed);
    if (down && !pressed[index]) action();
    pressed[index] = down;
  };
  button(0, toggleRecording);
  button(1, stop);
  button(3, nextMode);
  const axis = (index) => { const v = gamepad.axes[index] || 0; return Math.abs(v) < DEAD_ZONE ? 0 : v; };
  const throttleAxis = gamepad.axes.length > 3 ? 3 : 1;
  return { angle: axis(0), throttle: -axis(throttleAxis) };
}

// 20 times a second: the active source's stick. Touch/mouse first, then held keys, then a
// connected gamepad (centred sticks send 0); keys released with no pad: the stick centres.
let keyboardDriving = false;
setInterval(() => {
  const fromPad = gamepadStick();
  if (!pointerActive) {
    let next = null;
    if (keys.size) next = keyboardStick();
    else if (fromPad) next = fromPad;
    else if (keyboardDriving) next = { angle: 0, throttle: 0 };
    keyboardDriving = keys.size > 0;
    if (next) Object.assign(stick, next);
  }
  send(stick);
}, 50);
connect();
