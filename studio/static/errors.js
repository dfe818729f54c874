// Error analysis: a model's frames by steering error, tagged with their causes; the table of how
// much of the error each cause carries; "label wrong" frames deleted in one step.
import {get, post, waitForJob} from './api.js';
import {deletedChanged, offerUndo, showJob} from './app.js';
import {drawFrame, formatCommand, loadImage} from './frame.js';
import {toggleTag} from './manager.js';
import {RECORDED, S, attempt, el, emit, fmt, imageUrl, model, on, positionOf, tagsOf, toast} from './state.js';

const $ = (id) => document.getElementById(id);
const PAGE = 24;
let frames = null;     // {index, recorded, predicted, error}: worst first
let order = [];        // the ranks listed: all, or one per second of driving
let metrics = null;
let shownCount = PAGE;
let focus = 0;         // rank of the focused card
let visible = false;

export function init() {
  $('errors-model').addEventListener('change', () => attempt(load));
  $('errors-more').addEventListener('click', () => { shownCount += PAGE; renderCards(); });
  $('errors-spread').addEventListener('change', () => { spread(); renderCards(); });
  $('new-category').addEventListener('submit', (e) => {
    e.preventDefault();
    const name = $('new-category-name').value.trim();
    if (!name) return;
    if (!S.tags.categories.includes(name)) S.tags.categories.push(name);
    $('new-category-name').value = '';
    emit('tags');
    toast(`Category "${name}" added: tag a frame with it to keep it.`);
  });
  $('delete-label-wrong').addEventListener('click', () => attempt(deleteLabelWrong));
  on('timeline', () => { frames = null; renderModels(); if (visible) attempt(load); });
  on('predictions', () => { renderModels(); if (visible && !frames) attempt(load); });
  on('tags', () => { renderTable(); updateChips(); });
  on('deleted', () => { frames = null; if (visible) attempt(load); });
}

export function shown() {
  visible = true;
  renderModels();
  if (!frames) attempt(load);
}
on('show', (name) => { visible = name === 'errors'; });

export function currentModel() {
  const value = $('errors-model').value;
  return value === '' ? null : Number(value);
}

function renderModels() {
  const select = $('errors-model'), current = select.value;
  select.replaceChildren(...S.info.models.map((m) => el('option', {value: m.model}, m.name)));
  if (current !== '') select.value = current;
}

async function load() {
  const number = currentModel();
  if (number === null) {
    $('error-cards').replaceChildren(el('div', {class: 'empty'},
      'Start the studio with --model BUNDLE to see the frames a model gets most wrong.'));
    $('errors-summary').textContent = '';
    return;
  }
  const tub = S.tub;
  let answer = await get(`/api/tubs/${tub}/errors?model=${number}`);
  if (answer.job) {
    $('errors-summary').textContent = 'Running the model over every frame…';
    await waitForJob(answer.job, showJob);
    answer = await get(`/api/tubs/${tub}/errors?model=${number}`);
  }
  if (tub !== S.tub || number !== currentModel()) return;
  frames = answer.frames;
  metrics = answer.metrics;
  spread();
  $('errors-summary').textContent = metrics
    ? `${metrics.frames.toLocaleString()} live frames · steering MSE ${fmt(metrics.steering_mse)} ` +
      `(predicting the mean: ${fmt(metrics.baseline_steering_mse)}) · worst first`
    : 'No live frame with labels and a prediction.';
  renderCards();
  emit('reload-tags');
}

// Neighbouring frames look alike: optionally list only the worst frame of each second of driving.
function spread() {
  order = [];
  const spacing = $('errors-spread').checked ? Math.max(1, Math.round(1 / S.tl.dt_s)) : 0;
  const taken = new Set();
  for (let rank = 0; rank < frames.index.length; rank++) {
    const index = frames.index[rank];
    if (spacing && taken.has(Math.floor(index / spacing))) continue;
    order.push(rank);
    if (spacing) for (const bucket of [-1, 0, 1]) taken.add(Math.floor(index / spacing) + bucket);
  }
  focus = Math.min(focus, Math.max(order.length - 1, 0));
}

function renderCards() {
  if (!frames) return;
  const count = Math.min(shownCount, order.length);
  const cards = [];
  for (let k = 0; k < count; k++) cards.push(card(k));
  $('error-cards').replaceChildren(...cards);
  $('errors-more').hidden = count >= order.length;
  $('errors-more').textContent = `Show more (${(order.length - count).toLocaleString()} left)`;
}

function card(k) {
  const rank = order[k];
  const index = frames.index[rank];
  const m = model(currentModel());
  const canvas = el('canvas', {width: 320, height: 240, title: 'Open in the tub manager'});
  loadImage(imageUrl(index)).then((image) => drawFrame(canvas, image, {
    legend: false,
    lines: [
      {value: frames.recorded[rank], colour: RECORDED, label: 'recorded', width: 5},
      {value: frames.predicted[rank], colour: m.colour, label: m.name, width: 4},
    ],
  })).catch(() => drawFrame(canvas, null));
  canvas.addEventListener('click', () => openInManager(index));
  const node = el('div', {class: `card${k === focus ? ' focus' : ''}`, 'data-index': index, tabindex: -1},
    canvas,
    el('div', {class: 'meta'},
      el('span', {class: 'rank'}, `${k + 1}. #${index}`),
      el('span', {}, el('span', {style: `color:${RECORDED}`}, formatCommand(frames.recorded[rank])), ' → ',
        el('span', {style: `color:${m.colour}`}, formatCommand(frames.predicted[rank]))),
      el('span', {class: 'err'}, `Δ ${frames.error[rank].toFixed(2)}`)),
    el('div', {class: 'chips'}, ...chips(index)));
  node.addEventListener('mousedown', () => setFocus(k));
  return node;
}

function chips(index) {
  const tags = tagsOf(index);
  return S.tags.categories.map((category, i) => el('button', {
    class: `chip${tags.has(category) ? ' on' : ''}`,
    'data-category': category,
    onclick: () => attempt(() => toggleTag(index, category, !tagsOf(index).has(category))),
  }, i < 9 ? el('span', {class: 'key'}, String(i + 1)) : null, category));
}

function updateChips() {
  for (const node of document.querySelectorAll('#error-cards .card')) {
    node.querySelector('.chips').replaceChildren(...chips(Number(node.dataset.index)));
  }
}

function setFocus(k) {
  focus = k;
  document.querySelectorAll('#error-cards .card').forEach((node, i) => node.classList.toggle('focus', i === k));
  document.querySelectorAll('#error-cards .card')[k]?.scrollIntoView({block: 'nearest'});
}

function openInManager(index) {
  const position = positionOf(index);
  if (position === null) return;
  emit('show', 'manager');
  S.cursor = position;
  emit('seek', position);
}

function renderTable() {
  const rows = S.tags.table ?? [];
  const head = el('tr', {}, el('th', {}, 'Category'), el('th', {class: 'num'}, 'Frames'),
    el('th', {class: 'num'}, 'MSE'), el('th', {class: 'num'}, 'Share of error'));
  const body = rows.map((row) => el('tr', {class: row.category === '(untagged)' ? 'untagged' : '', 'data-category': row.category},
    el('td', {}, row.category),
    el('td', {class: 'num'}, String(row.frames)),
    el('td', {class: 'num'}, fmt(row.steering_mse, 3)),
    el('td', {class: 'num'}, row.error_share === null ? '–' : el('div', {class: 'share'},
      el('div', {class: 'track'}, el('div', {class: 'fill', style: `width:${Math.round(row.error_share * 100)}%`})),
      `${(row.error_share * 100).toFixed(1)}%`))));
  $('tag-table').replaceChildren(el('thead', {}, head), el('tbody', {}, ...body));
  const wrong = rows.find((row) => row.category === S.info.label_wrong)?.frames ?? 0;
  $('delete-label-wrong').textContent = `Delete all “${S.info.label_wrong}” frames (${wrong})`;
  $('delete-label-wrong').disabled = wrong === 0;
}

async function deleteLabelWrong() {
  const answer = await post(`/api/tubs/${S.tub}/delete_tagged`, {category: S.info.label_wrong});
  deletedChanged(answer);
  offerUndo(`Deleted ${answer.changed} “${S.info.label_wrong}” records`);
}

export function keydown(e) {
  if (!frames || !order.length) return;
  const digit = Number(e.key);
  const index = frames.index[order[focus]];
  if (digit >= 1 && digit <= 9 && S.tags.categories[digit - 1]) {
    const category = S.tags.categories[digit - 1];
    attempt(() => toggleTag(index, category, !tagsOf(index).has(category)));
  } else if (e.key === 'ArrowDown' || e.key === 'ArrowRight') {
    setFocus(Math.min(focus + 1, Math.min(shownCount, order.length) - 1));
  } else if (e.key === 'ArrowUp' || e.key === 'ArrowLeft') {
    setFocus(Math.max(focus - 1, 0));
  } else if (e.key === 'Enter') {
    openInManager(index);
  } else {
    return;
  }
  e.preventDefault();
}
