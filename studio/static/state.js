// What the pages share: the studio's state, the current tub's timeline, the cursor and the
// selection, each model's predictions, the tags and the filter; a tiny event bus between them.

export const S = {
  info: null,            // /api/state: tubs, models, preset categories
  tub: 0,                // the current tub's number
  tl: null,              // its timeline, decoded (see decodeTimeline)
  cursor: 0,             // position of the frame shown
  selection: null,       // [first, last] positions, inclusive
  preds: new Map(),      // model number -> {angle: Float32Array, throttle: Float32Array}
  hidden: new Set(),     // models whose traces the user hid
  tags: {categories: [], frames: new Map(), table: []},  // frames: record index -> Set of categories
  kept: null,            // Uint8Array: 1 where the training filter keeps the record
  timings: {},           // page-load figures read by the benchmark
};
window.studio = S;

const listeners = new Map();
export function on(event, listener) {
  if (!listeners.has(event)) listeners.set(event, []);
  listeners.get(event).push(listener);
}
export function emit(event, detail) {
  for (const listener of listeners.get(event) ?? []) listener(detail);
}

export const RECORDED = '#1e9e4a';

export function decodeTimeline(data) {
  const n = data.index.length;
  const tl = {
    ...data,
    n,
    index: Int32Array.from(data.index),
    angle: Float32Array.from(data.angle, (v) => v ?? NaN),
    throttle: Float32Array.from(data.throttle, (v) => v ?? NaN),
    mode: Uint16Array.from(data.mode),
    session: Uint16Array.from(data.session),
    hasImage: Uint8Array.from(data.has_image),
    deleted: new Uint8Array(n),
  };
  setDeleted(tl, data.deleted);
  return tl;
}

export function setDeleted(tl, deletedIndexes) {
  tl.deleted.fill(0);
  for (const index of deletedIndexes) {
    const p = positionOf(index, tl);
    if (p !== null) tl.deleted[p] = 1;
  }
}

// The position of a record index in the timeline (binary search), or null.
export function positionOf(index, tl = S.tl) {
  let low = 0, high = tl.n - 1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    if (tl.index[mid] === index) return mid;
    if (tl.index[mid] < index) low = mid + 1; else high = mid - 1;
  }
  return null;
}

export function imageUrl(index, thumb = false) {
  return `/api/tubs/${S.tub}/${thumb ? 'thumb' : 'image'}/${index}?k=${S.tl.key}`;
}

export function model(number) {
  return S.info.models.find((m) => m.model === number);
}

// Model lines for the frame view at a position: recorded first, then each visible model.
export function steeringLines(position, {all = false} = {}) {
  const lines = [{value: S.tl.angle[position], colour: RECORDED, label: 'recorded', width: 5}];
  for (const m of S.info.models) {
    const pred = S.preds.get(m.model);
    if (!pred || (!all && S.hidden.has(m.model))) continue;
    lines.push({value: pred.angle[position], colour: m.colour, label: m.name, width: 4});
  }
  return lines;
}

export function tagsOf(index) {
  return S.tags.frames.get(index) ?? new Set();
}

let toastTimer = null;
export function toast(message, {error = false, action = null} = {}) {
  const box = document.getElementById('toast');
  box.replaceChildren(document.createTextNode(message));
  box.classList.toggle('error', error);
  if (action) {
    const button = document.createElement('button');
    button.textContent = action.label;
    button.addEventListener('click', () => { box.hidden = true; action.run(); });
    box.append(button);
  }
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, error ? 8000 : 5000);
}

// Run an async action; show its error as a toast instead of failing silently.
export async function attempt(action) {
  try {
    return await action();
  } catch (err) {
    toast(err.message, {error: true});
    return undefined;
  }
}

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(key, value === true ? '' : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export function fmt(value, digits = 4) {
  return value === null || value === undefined ? '–' : Number(value).toFixed(digits);
}
