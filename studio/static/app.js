// The studio page: loads the state and the current tub, switches pages, runs undo and jobs.
import {answer, get, post, waitForJob} from './api.js';
import * as arena from './arena.js';
import * as errors from './errors.js';
import * as manager from './manager.js';
import {S, attempt, decodeTimeline, emit, el, on, setDeleted, toast} from './state.js';

const pages = {manager, errors, arena};
let page = 'manager';

async function start() {
  S.info = await get('/api/state');
  const select = document.getElementById('tub-select');
  select.replaceChildren(...S.info.tubs.map((t) => el('option', {value: t.tub}, `${t.name} (v${t.version})`)));
  select.addEventListener('change', () => attempt(() => loadTub(Number(select.value))));
  document.querySelectorAll('.tabs button').forEach((button) => {
    button.addEventListener('click', () => show(button.dataset.page));
  });
  document.getElementById('undo').addEventListener('click', () => attempt(undo));
  document.addEventListener('keydown', keydown);
  Object.values(pages).forEach((p) => p.init());
  updateUndo(S.info.undo);
  const wanted = new URLSearchParams(location.hash.slice(1));
  await loadTub(Number(wanted.get('tub') ?? 0), window.firstTimeline);
  if (wanted.get('page')) show(wanted.get('page'));
}

function show(name) {
  if (!pages[name]) return;
  page = name;
  document.querySelectorAll('.tabs button').forEach((b) => b.classList.toggle('active', b.dataset.page === name));
  for (const key of Object.keys(pages)) document.getElementById(`page-${key}`).hidden = key !== name;
  pages[name].shown();
}
on('show', show);

export async function loadTub(number, request = null) {
  const data = request ? await answer(await request) : await get(`/api/tubs/${number}/timeline`);
  S.tub = number;
  S.tl = decodeTimeline(data);
  S.cursor = 0;
  S.selection = null;
  S.preds.clear();
  S.kept = null;
  S.tags = {categories: S.info.presets, frames: new Map(), table: []};
  document.getElementById('tub-select').value = String(number);
  emit('timeline');
  // The timeline paints in the next animation frame, before this callback: the benchmark's figure.
  requestAnimationFrame(() => { S.timings.timeline_ms ??= performance.now(); });
  await Promise.all([loadTags(), manager.loadFilter(), ...S.info.models.map((m) => loadPredictions(m.model))]);
}

export async function loadTags() {
  const models = [...S.preds.keys()];
  const query = models.length ? `?model=${errors.currentModel() ?? models[0]}` : '';
  const tags = await get(`/api/tubs/${S.tub}/tags${query}`);
  S.tags = {
    categories: tags.categories,
    frames: new Map(Object.entries(tags.frames).map(([index, list]) => [Number(index), new Set(list)])),
    table: tags.table,
  };
  emit('tags');
}
on('reload-tags', () => attempt(loadTags));

// Each model's predictions on the tub, computed once on the server (a background job).
async function loadPredictions(number) {
  const tub = S.tub;
  let answer = await get(`/api/tubs/${tub}/predictions?model=${number}`);
  if (answer.job) {
    await waitForJob(answer.job, showJob);
    answer = await get(`/api/tubs/${tub}/predictions?model=${number}`);
  }
  if (tub !== S.tub) return;
  S.preds.set(number, {
    angle: Float32Array.from(answer.angle, (v) => v ?? NaN),
    throttle: Float32Array.from(answer.throttle, (v) => v ?? NaN),
  });
  emit('predictions', number);
  await loadTags();
}

const runningJobs = new Map();
export function showJob(job) {
  if (job.state === 'running') runningJobs.set(job.id, job); else runningJobs.delete(job.id);
  const box = document.getElementById('jobs');
  box.replaceChildren(...[...runningJobs.values()].map((j) => el('span', {class: 'job'},
    j.title, el('progress', {max: Math.max(j.total, 1), value: j.done}))));
}

// The deleted records changed (an edit here, or an undo).
export function deletedChanged(answer) {
  setDeleted(S.tl, answer.deleted);
  updateUndo(answer.undo);
  emit('deleted');
}

export function updateUndo(description) {
  const button = document.getElementById('undo');
  button.disabled = !description;
  button.title = description ? `Undo: ${description} (Ctrl+Z)` : 'Nothing to undo';
}

export async function undo() {
  const answer = await post('/api/undo');
  if (!answer.undone) { toast('Nothing to undo'); updateUndo(null); return; }
  toast(`Undone: ${answer.undone}`);
  updateUndo(answer.undo);
  if (answer.tub === S.tub) {
    const data = await get(`/api/tubs/${S.tub}/timeline`);
    setDeleted(S.tl, data.deleted);
    emit('deleted');
    await loadTags();
  }
}

function keydown(e) {
  if (e.target.matches('input, select, textarea')) return;
  if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'z') {
    e.preventDefault();
    attempt(undo);
    return;
  }
  pages[page].keydown?.(e);
}

// Offer the undo of what an edit just did.
export function offerUndo(message) {
  toast(message, {action: {label: 'Undo', run: () => attempt(undo)}});
}

start().catch((err) => toast(err.message, {error: true}));
