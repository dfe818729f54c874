// The pilot arena: every model on the same records, open loop (errors, traces) and closed loop
// (a replay drive started from here, its score and its video).
import {get, post, waitForJob} from './api.js';
import {showJob} from './app.js';
import {drawFrame, loadImage} from './frame.js';
import {tagMarks, timelineLanes} from './manager.js';
import {RECORDED, S, attempt, el, fmt, imageUrl, on, steeringLines} from './state.js';
import {Timeline} from './timeline.js';

const $ = (id) => document.getElementById(id);
let timeline;
let rows = [];
let visible = false;
let drawn = 0;

export function init() {
  timeline = new Timeline($('arena-timeline'), {onSeek: (p) => { S.cursor = p; renderFrame(); timeline.setCursor(p); },
    onSelect: () => {}});
  on('timeline', () => { rows = []; if (visible) refresh(); });
  on('predictions', () => { if (visible) refresh(); });
  on('deleted', () => { if (visible) refresh(); });
  on('show', (name) => { visible = name === 'arena'; });
}

export function shown() {
  visible = true;
  refresh();
}

function refresh() {
  if (!S.tl) return;
  $('arena-tub').textContent = S.tl.name;
  renderTimeline();
  renderFrame();
  attempt(loadTable);
}

async function loadTable() {
  const answer = await get(`/api/tubs/${S.tub}/arena`);
  rows = answer.rows;
  renderTable();
}

function renderTable() {
  const best = (key) => Math.min(...rows.map((r) => r.open_loop?.[key] ?? Infinity));
  const bestSteering = best('steering_mse'), bestThrottle = best('throttle_mse');
  const head = el('tr', {}, ...['Pilot', 'Model', 'Frames', 'Steering MSE', 'Steering MAE', 'vs mean',
    'Throttle MSE', 'Closed loop'].map((h, i) => el('th', {class: i >= 2 ? 'num' : ''}, h)));
  const body = rows.map((row) => {
    const m = S.info.models.find((x) => x.model === row.model);
    const o = row.open_loop;
    const cell = (value, digits, isBest) => el('td', {class: `num${isBest ? ' best' : ''}`}, fmt(value, digits));
    return el('tr', {'data-model': row.model},
      el('td', {}, el('span', {class: 'name'}, el('span', {class: 'swatch box', style: `background:${m.colour}`}), m.name)),
      el('td', {class: 'muted'}, `${m.architecture}, ${m.quantization}, ${m.input}`),
      o ? el('td', {class: 'num'}, o.frames.toLocaleString()) : el('td', {class: 'num muted'}, 'computing…'),
      cell(o?.steering_mse, 4, o && o.steering_mse === bestSteering && rows.length > 1),
      cell(o?.steering_mae, 4, false),
      el('td', {class: 'num'}, o ? `${(o.steering_mse / o.baseline_steering_mse).toFixed(2)}×` : '–'),
      cell(o?.throttle_mse, 4, o && o.throttle_mse === bestThrottle && rows.length > 1),
      el('td', {class: 'num'}, closedLoopCell(row, m)));
  });
  $('arena-table').replaceChildren(el('thead', {}, head), el('tbody', {}, ...body));
}

function closedLoopCell(row, m) {
  const run = row.closed_loop;
  const button = el('button', {class: 'primary', onclick: () => attempt(() => startRun(row.model))},
    run ? 'Run again' : 'Run closed loop');
  if (run?.state === 'running') {
    return el('div', {class: 'run'}, el('progress', {max: Math.max(run.total, 1), value: run.done}),
      `${Math.round(100 * run.done / Math.max(run.total, 1))}%`);
  }
  if (run?.state === 'failed') return el('div', {class: 'run'}, el('span', {class: 'muted'}, run.error), button);
  if (run?.state === 'done') {
    const r = run.metrics;
    const watch = el('button', {class: 'ghost', onclick: () => play(m, run)}, '▶ Video');
    return el('div', {class: 'run'},
      el('span', {class: 'autonomy'}, el('b', {}, `autonomy ${r.autonomy.toFixed(2)}`),
        ` · ${r.interventions} interventions · offset ${r.mean_offset.toFixed(2)} m`), watch, button);
  }
  return el('div', {class: 'run'}, button);
}

async function startRun(number) {
  const job = await post(`/api/tubs/${S.tub}/closed_loop`, {model: number});
  const row = rows.find((r) => r.model === number);
  const update = (j) => {
    showJob(j);
    if (j.state === 'running') { row.closed_loop = j; renderTable(); }
  };
  await waitForJob(job, update);
  await loadTable();
  const finished = rows.find((r) => r.model === number);
  play(S.info.models.find((x) => x.model === number), finished.closed_loop);
}

function play(m, run) {
  const video = $('arena-video');
  video.src = run.videos.webm;
  video.hidden = false;
  $('video-empty').hidden = true;
  $('video-title').textContent = `Closed loop: ${m.name} · autonomy ${run.metrics.autonomy.toFixed(2)}`;
  $('video-mp4').href = run.videos.mp4;
  $('video-mp4').hidden = false;
  video.play().catch(() => {});
}

function renderTimeline() {
  const tl = S.tl;
  timeline.label = (p) => tl.index[p];
  timeline.setData({n: tl.n, lanes: timelineLanes(true), deleted: tl.deleted, excluded: null, marks: tagMarks()});
  timeline.setCursor(S.cursor);
  const items = [el('span', {}, el('span', {class: 'swatch', style: `background:${RECORDED}`}), ' recorded')];
  for (const m of S.info.models) {
    if (S.preds.has(m.model)) items.push(el('span', {}, el('span', {class: 'swatch', style: `background:${m.colour}`}), ` ${m.name}`));
  }
  $('arena-legend').replaceChildren(...items);
}

async function renderFrame() {
  const tl = S.tl, p = S.cursor;
  if (!tl?.n) return;
  const request = ++drawn;
  const image = tl.hasImage[p] ? await loadImage(imageUrl(tl.index[p])).catch(() => null) : null;
  if (request !== drawn) return;
  drawFrame($('arena-frame'), image, {lines: steeringLines(p, {all: true})});
  $('arena-readout').textContent = `record #${tl.index[p]} · click the timeline to compare the pilots on any frame`;
}
