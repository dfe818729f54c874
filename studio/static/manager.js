// The tub manager: frame view, play and step, timeline, selection with delete/restore, filter.
import {get, post} from './api.js';
import {deletedChanged, offerUndo} from './app.js';
import {drawFrame, formatCommand, loadImage} from './frame.js';
import {RECORDED, S, attempt, el, emit, imageUrl, on, steeringLines, tagsOf, toast} from './state.js';
import {Timeline} from './timeline.js';

const $ = (id) => document.getElementById(id);
let timeline;
let playing = null;
let drawn = 0;  // the latest frame request; older image loads are dropped
const STRIP = 11;

export function init() {
  timeline = new Timeline($('timeline'), {onSeek: seek, onSelect: select});
  document.querySelectorAll('.transport [data-step]').forEach((button) => {
    button.addEventListener('click', () => seek(S.cursor + Number(button.dataset.step)));
  });
  $('play').addEventListener('click', togglePlay);
  $('speed').addEventListener('change', () => { if (playing) { togglePlay(); togglePlay(); } });
  $('sel-from').addEventListener('change', selectionFromInputs);
  $('sel-to').addEventListener('change', selectionFromInputs);
  $('sel-delete').addEventListener('click', () => attempt(() => changeSelection(true)));
  $('sel-restore').addEventListener('click', () => attempt(() => changeSelection(false)));
  $('sel-clear').addEventListener('click', () => select(null));
  $('zoom-fit').addEventListener('click', () => timeline.fit());
  $('zoom-sel').addEventListener('click', () => S.selection && timeline.zoomTo(...S.selection));
  $('filter-min').addEventListener('input', filterChanged);
  $('filter-max').addEventListener('input', filterChanged);
  $('filter-save').addEventListener('click', () => attempt(saveFilter));
  on('timeline', () => { stopPlay(); refreshTimeline(false); renderStats(); renderFilterChoices(); renderFrame(); });
  on('predictions', () => { refreshTimeline(); renderLegend(); renderFrame(); });
  on('deleted', () => { refreshTimeline(); renderStats(); renderFrame(); });
  on('tags', () => { refreshTimeline(); renderFrame(); });
  on('filter', () => { refreshTimeline(); renderStats(); renderFrame(); });
  on('cursor', renderFrame);
  on('seek', seek);
}

export function shown() { timeline.draw(); }

// ------------------------------------------------------------------ cursor and selection
export function seek(position) {
  if (!S.tl?.n) return;
  S.cursor = Math.min(Math.max(Math.round(position), 0), S.tl.n - 1);
  timeline.setCursor(S.cursor);
  emit('cursor');
}

function select(selection) {
  S.selection = selection;
  timeline.setSelection(selection);
  if (selection) seek(selection[0]);
  renderSelection();
  renderStrip();
}

function selectionFromInputs() {
  const from = positionAtOrAfter(Number($('sel-from').value));
  const to = positionAtOrBefore(Number($('sel-to').value));
  if (from === null || to === null || to < from) return;
  select([from, to]);
  timeline.zoomTo(from, to);
}

function positionAtOrAfter(index) {
  for (let p = 0; p < S.tl.n; p++) if (S.tl.index[p] >= index) return p;
  return null;
}

function positionAtOrBefore(index) {
  for (let p = S.tl.n - 1; p >= 0; p--) if (S.tl.index[p] <= index) return p;
  return null;
}

function selectedIndexes() {
  const [a, b] = S.selection;
  return {range: [S.tl.index[a], S.tl.index[b] + 1]};
}

async function changeSelection(remove) {
  if (!S.selection) { toast('Select records first: drag on the timeline.'); return; }
  const answer = await post(`/api/tubs/${S.tub}/${remove ? 'delete' : 'restore'}`, selectedIndexes());
  deletedChanged(answer);
  const [a, b] = S.selection;
  offerUndo(`${remove ? 'Deleted' : 'Restored'} ${answer.changed} records (#${S.tl.index[a]}–#${S.tl.index[b]})`);
}

function renderSelection() {
  const has = Boolean(S.selection);
  $('sel-delete').disabled = $('sel-restore').disabled = $('sel-clear').disabled = !has;
  if (!has) {
    $('sel-from').value = $('sel-to').value = '';
    $('sel-count').textContent = 'Drag on the timeline, Shift+click a frame, or press [ and ].';
    return;
  }
  const [a, b] = S.selection;
  $('sel-from').value = S.tl.index[a];
  $('sel-to').value = S.tl.index[b];
  let deleted = 0;
  for (let p = a; p <= b; p++) deleted += S.tl.deleted[p];
  const seconds = ((b - a + 1) * S.tl.dt_s).toFixed(1);
  $('sel-count').textContent = `${b - a + 1} records (${seconds} s), ${deleted} of them deleted`;
}

// ------------------------------------------------------------------ play
function togglePlay() {
  if (playing) { stopPlay(); return; }
  const period = 1000 * S.tl.dt_s / Number($('speed').value);
  let next = performance.now();
  const tick = () => {
    if (S.cursor >= S.tl.n - 1) { stopPlay(); return; }
    seek(S.cursor + 1);
    for (let k = 1; k <= 8 && S.cursor + k < S.tl.n; k++) preload(S.cursor + k);
    next += period;
    playing = setTimeout(tick, Math.max(0, next - performance.now()));
  };
  playing = setTimeout(tick, 0);
  $('play').textContent = '⏸ Pause';
}

function stopPlay() {
  clearTimeout(playing);
  playing = null;
  $('play').textContent = '▶ Play';
}

function preload(position) {
  if (S.tl.hasImage[position]) loadImage(imageUrl(S.tl.index[position])).catch(() => {});
}

// ------------------------------------------------------------------ drawing
export function timelineLanes(all = false) {
  const tl = S.tl;
  const visible = S.info.models.filter((m) => S.preds.has(m.model) && (all || !S.hidden.has(m.model)));
  let low = 0;
  for (let p = 0; p < tl.n; p++) if (tl.throttle[p] < low) low = tl.throttle[p];
  low = Math.floor(low * 10) / 10;
  return [
    {
      name: 'steering', low: -1, high: 1, ticks: [-1, 0, 1], weight: 1.35,
      series: [{values: tl.angle, colour: RECORDED, width: 1.5},
        ...visible.map((m) => ({values: S.preds.get(m.model).angle, colour: m.colour, width: 1.2, alpha: 0.9}))],
    },
    {
      name: 'throttle', low, high: 1, ticks: low < 0 ? [low, 0, 1] : [0, 0.5, 1], weight: 1,
      series: [{values: tl.throttle, colour: RECORDED, width: 1.5},
        ...visible.map((m) => ({values: S.preds.get(m.model).throttle, colour: m.colour, width: 1.2, alpha: 0.9}))],
    },
  ];
}

export function tagMarks() {
  const marks = new Uint8Array(S.tl.n);
  for (let p = 0; p < S.tl.n; p++) if (S.tags.frames.has(S.tl.index[p])) marks[p] = 1;
  return marks;
}

function refreshTimeline(keepView = true) {
  const tl = S.tl;
  let excluded = null;
  if (S.kept) {
    excluded = new Uint8Array(tl.n);
    for (let p = 0; p < tl.n; p++) excluded[p] = !S.kept[p] && !tl.deleted[p];
  }
  timeline.label = (p) => tl.index[p];
  timeline.setData({n: tl.n, lanes: timelineLanes(), deleted: tl.deleted, excluded, marks: tagMarks()}, keepView);
  timeline.setCursor(S.cursor);
  timeline.setSelection(S.selection);
  renderSelection();
}

function renderLegend() {
  const items = [el('span', {}, el('span', {class: 'swatch', style: `background:${RECORDED}`}), ' recorded')];
  for (const m of S.info.models) {
    if (!S.preds.has(m.model)) continue;
    const box = el('input', {type: 'checkbox', checked: !S.hidden.has(m.model)});
    box.addEventListener('change', () => {
      if (box.checked) S.hidden.delete(m.model); else S.hidden.add(m.model);
      refreshTimeline();
      renderFrame();
    });
    items.push(el('label', {}, box, el('span', {class: 'swatch', style: `background:${m.colour}`}), m.name));
  }
  items.push(el('span', {class: 'muted small'}, el('span', {class: 'swatch box', style: 'background:rgba(214,59,59,.25)'}), ' deleted'));
  items.push(el('span', {class: 'muted small'}, el('span', {class: 'swatch box', style: 'background:rgba(16,24,40,.12)'}), ' filtered out'));
  items.push(el('span', {class: 'muted small'}, el('span', {class: 'swatch box', style: 'background:#e6a100'}), ' tagged'));
  $('legend').replaceChildren(...items);
}

async function renderFrame() {
  const tl = S.tl, p = S.cursor;
  if (!tl?.n) return;
  const index = tl.index[p];
  const request = ++drawn;
  let image = null;
  if (tl.hasImage[p]) image = await loadImage(imageUrl(index)).catch(() => null);
  if (request !== drawn) return;
  const badge = tl.deleted[p] ? {text: 'DELETED', colour: '#d63b3b'}
    : (S.kept && !S.kept[p]) ? {text: 'FILTERED OUT', colour: '#667085'} : null;
  drawFrame($('frame'), image, {lines: steeringLines(p), badge});
  renderInfo(p);
  renderStrip();
}

function renderInfo(p) {
  const tl = S.tl;
  const item = (label, value) => el('span', {}, el('span', {class: 'label'}, label), el('b', {}, value));
  const state = tl.deleted[p] ? el('span', {class: 'badge deleted'}, 'deleted')
    : (S.kept && !S.kept[p]) ? el('span', {class: 'badge excluded'}, 'filtered out')
      : el('span', {class: 'badge live'}, 'kept for training');
  const items = [
    item('record', `#${tl.index[p]}`),
    item('steering', formatCommand(tl.angle[p])),
    item('throttle', formatCommand(tl.throttle[p])),
    item('mode', tl.modes[tl.mode[p]]),
    item('session', tl.sessions[tl.session[p]] || '–'),
    state,
  ];
  for (const m of S.info.models) {
    const pred = S.preds.get(m.model);
    if (pred && !S.hidden.has(m.model)) items.push(item(m.name, formatCommand(pred.angle[p])));
  }
  $('record-info').replaceChildren(...items);
  $('readout').textContent = `${p + 1} / ${tl.n}  ·  ${(p * tl.dt_s).toFixed(2)} s`;
  renderFrameTags(tl.index[p]);
}

function renderFrameTags(index) {
  const tags = tagsOf(index);
  const chips = S.tags.categories.map((category, i) => el('button', {
    class: `chip${tags.has(category) ? ' on' : ''}`,
    title: `Tag record #${index} "${category}"`,
    onclick: () => attempt(() => toggleTag(index, category, !tags.has(category))),
  }, i < 9 ? el('span', {class: 'key'}, String(i + 1)) : null, category));
  $('frame-tags').replaceChildren(el('span', {class: 'muted small'}, 'Tags:'), ...chips);
}

export async function toggleTag(index, category, value) {
  await post(`/api/tubs/${S.tub}/tags`, {indexes: [index], category, on: value});
  const tags = new Set(S.tags.frames.get(index) ?? []);
  if (value) tags.add(category); else tags.delete(category);
  if (tags.size) S.tags.frames.set(index, tags); else S.tags.frames.delete(index);
  emit('tags');
  emit('reload-tags');
}

function renderStrip() {
  const tl = S.tl;
  if (!tl?.n) return;
  const first = Math.min(Math.max(S.cursor - (STRIP >> 1), 0), Math.max(tl.n - STRIP, 0));
  const thumbs = [];
  for (let p = first; p < Math.min(first + STRIP, tl.n); p++) {
    const selected = S.selection && p >= S.selection[0] && p <= S.selection[1];
    const classes = ['thumb', p === S.cursor && 'cursor', tl.deleted[p] && 'deleted', selected && 'selected'];
    thumbs.push(el('div', {
      class: classes.filter(Boolean).join(' '),
      'data-index': tl.index[p],
      onclick: (e) => clickThumb(e, p),
    }, tl.hasImage[p] ? el('img', {src: imageUrl(tl.index[p], true), alt: `#${tl.index[p]}`, draggable: 'false'}) : null,
    el('span', {}, `#${tl.index[p]}`)));
  }
  $('filmstrip').replaceChildren(...thumbs);
}

function clickThumb(e, position) {
  if (e.shiftKey) {
    const anchor = S.selection ? S.selection[0] : S.cursor;
    S.selection = [Math.min(anchor, position), Math.max(anchor, position)];
    timeline.setSelection(S.selection);
    renderSelection();
  }
  seek(position);
}

function renderStats() {
  const tl = S.tl;
  let deleted = 0, kept = 0;
  for (let p = 0; p < tl.n; p++) { deleted += tl.deleted[p]; if (S.kept && S.kept[p] && !tl.deleted[p]) kept++; }
  const rows = [
    ['records', tl.n.toLocaleString()],
    ['deleted', deleted.toLocaleString()],
    ['live', (tl.n - deleted).toLocaleString()],
    ['kept by the filter', S.kept ? kept.toLocaleString() : '…'],
    ['sessions', tl.sessions.filter(Boolean).length || '–'],
    ['frame rate', `${(1 / tl.dt_s).toFixed(0)} Hz`],
    ['bad records skipped', tl.problem_count],
  ];
  const cells = rows.flatMap(([k, v]) => [el('span', {class: 'k'}, k), el('span', {class: 'v'}, String(v))]);
  $('tub-stats').replaceChildren(...cells, el('span', {class: 'path'}, `${tl.path} · Donkeycar v${tl.version} tub`));
}

// ------------------------------------------------------------------ filter
let filterRules = null;
let filterTimer = null;

export async function loadFilter() {
  const saved = await get(`/api/tubs/${S.tub}/filter`);
  filterRules = saved.rules;
  renderFilterChoices();
  $('filter-command').hidden = true;
  await previewFilter();
}

function renderFilterChoices() {
  if (!filterRules || !S.tl) return;
  const counts = (codes, names) => names.map((_, i) => codes.reduce((n, c) => n + (c === i), 0));
  const modeCounts = counts(S.tl.mode, S.tl.modes), sessionCounts = counts(S.tl.session, S.tl.sessions);
  const modes = new Set([...S.tl.modes, ...filterRules.modes]);
  $('filter-modes').replaceChildren(...[...modes].map((mode) => {
    const box = el('input', {type: 'checkbox', value: mode, checked: filterRules.modes.includes(mode)});
    box.addEventListener('change', filterChanged);
    const count = modeCounts[S.tl.modes.indexOf(mode)] ?? 0;
    return el('label', {}, box, mode, el('span', {class: 'count'}, `(${count})`));
  }));
  $('filter-sessions').replaceChildren(...S.tl.sessions.map((session, i) => {
    const box = el('input', {type: 'checkbox', value: session,
      checked: filterRules.sessions === null || filterRules.sessions.includes(session)});
    box.addEventListener('change', filterChanged);
    return el('label', {}, box, session || '(none)', el('span', {class: 'count'}, `(${sessionCounts[i]})`));
  }));
  $('filter-min').value = filterRules.min_throttle ?? '';
  $('filter-max').value = filterRules.max_throttle ?? '';
}

function rulesFromInputs() {
  const number = (input) => (input.value === '' ? null : Number(input.value));
  const checked = (id) => [...document.querySelectorAll(`#${id} input:checked`)].map((b) => b.value);
  const sessions = checked('filter-sessions');
  return {
    ...filterRules,
    modes: checked('filter-modes'),
    min_throttle: number($('filter-min')),
    max_throttle: number($('filter-max')),
    sessions: sessions.length === S.tl.sessions.length ? null : sessions,
  };
}

function filterChanged() {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => {
    filterRules = rulesFromInputs();
    $('filter-command').hidden = true;
    attempt(previewFilter);
  }, 150);
}

async function previewFilter() {
  const answer = await post(`/api/tubs/${S.tub}/filter/preview`, {rules: filterRules});
  S.kept = Uint8Array.from(answer.kept, (c) => c === '1');
  const reasons = Object.entries(answer.reasons).map(([why, n]) => `${n} ${why}`).join(', ');
  let live = 0;
  for (let p = 0; p < S.tl.n; p++) live += !S.tl.deleted[p];
  $('filter-count').textContent = `Training keeps ${answer.kept_live} of ${live} live records` +
    (reasons ? ` (filtered out: ${reasons}).` : '.');
  emit('filter');
}

async function saveFilter() {
  filterRules = rulesFromInputs();
  const answer = await post(`/api/tubs/${S.tub}/filter`, {rules: filterRules});
  $('filter-command').textContent = answer.command;
  $('filter-command').hidden = false;
  toast(`Filter saved to ${answer.path}`);
}

// ------------------------------------------------------------------ keys
export function keydown(e) {
  const step = e.shiftKey ? 10 : 1;
  const keys = {
    ArrowRight: () => seek(S.cursor + step),
    ArrowLeft: () => seek(S.cursor - step),
    Home: () => seek(0),
    End: () => seek(S.tl.n - 1),
    ' ': togglePlay,
    '[': () => select([S.cursor, Math.max(S.cursor, S.selection?.[1] ?? S.cursor)]),
    ']': () => select([Math.min(S.cursor, S.selection?.[0] ?? S.cursor), S.cursor]),
    Escape: () => select(null),
    Delete: () => attempt(() => changeSelection(!e.shiftKey)),
    Backspace: () => attempt(() => changeSelection(!e.shiftKey)),
    '+': () => timeline.zoom(0.5, S.cursor),
    '=': () => timeline.zoom(0.5, S.cursor),
    '-': () => timeline.zoom(2, S.cursor),
  };
  const digit = Number(e.key);
  if (digit >= 1 && digit <= 9 && S.tags.categories[digit - 1]) {
    const index = S.tl.index[S.cursor], category = S.tags.categories[digit - 1];
    e.preventDefault();
    attempt(() => toggleTag(index, category, !tagsOf(index).has(category)));
    return;
  }
  if (keys[e.key]) {
    e.preventDefault();
    keys[e.key]();
  }
}

