// A zoomable timeline of a tub on a canvas: lanes of series (steering, throttle, predictions),
// shaded deleted and filtered-out records, tag marks, a selection, a cursor and an overview strip.
// Positions are record positions 0..n-1 in the tub; with more records than pixels each pixel
// column draws the min..max of its records, so 20,000 records draw as fast as 1,000.

const GUTTER = 52;       // px left of the plot: lane names and scale
const AXIS = 18;         // px under the lanes: record index ticks
const OVERVIEW = 22;     // px: the whole tub with the visible window
const GAP = 8;
const COLOURS = {
  grid: '#e8ebf1', zero: '#c9cfda', text: '#667085', deleted: 'rgba(214, 59, 59, 0.16)',
  excluded: 'rgba(16, 24, 40, 0.07)', selection: 'rgba(47, 111, 237, 0.16)', selectionEdge: '#2f6fed',
  cursor: '#161b26', tag: '#e6a100', window: 'rgba(47, 111, 237, 0.13)',
};

export class Timeline {
  constructor(canvas, {onSeek = () => {}, onSelect = () => {}} = {}) {
    this.canvas = canvas;
    this.onSeek = onSeek;
    this.onSelect = onSelect;
    this.n = 0;
    this.lanes = [];
    this.deleted = null;
    this.excluded = null;
    this.marks = null;
    this.cursor = 0;
    this.selection = null;
    this.view = [0, 1];
    this.drag = null;
    canvas.addEventListener('mousedown', (e) => this.mouseDown(e));
    window.addEventListener('mousemove', (e) => this.mouseMove(e));
    window.addEventListener('mouseup', (e) => this.mouseUp(e));
    canvas.addEventListener('wheel', (e) => this.wheel(e), {passive: false});
    canvas.addEventListener('dblclick', () => this.fit());
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  // lanes: [{name, low, high, series: [{values: Float32Array, colour, width}]}]
  setData({n, lanes, deleted, excluded, marks}, keepView = true) {
    const changed = n !== this.n;
    Object.assign(this, {n, lanes, deleted, excluded, marks});
    if (changed || !keepView) this.view = [0, Math.max(n, 1)];
    this.draw();
  }

  setCursor(position) {
    this.cursor = position;
    const [v0, v1] = this.view;
    const span = v1 - v0;
    if (position < v0 || position >= v1) this.setView(position - span / 2, position + span / 2);
    else this.draw();
  }

  setSelection(selection) { this.selection = selection; this.draw(); }

  setView(v0, v1) {
    const span = Math.min(Math.max(v1 - v0, 20), Math.max(this.n, 20));
    v0 = Math.min(Math.max(v0, 0), Math.max(this.n - span, 0));
    this.view = [v0, v0 + span];
    this.draw();
  }

  fit() { this.setView(0, this.n); }

  zoomTo(a, b) {
    const pad = Math.max(5, (b - a) * 0.1);
    this.setView(a - pad, b + 1 + pad);
  }

  zoom(factor, aroundPosition) {
    const [v0, v1] = this.view;
    const at = aroundPosition ?? (v0 + v1) / 2;
    this.setView(at - (at - v0) * factor, at + (v1 - at) * factor);
  }

  // ------------------------------------------------------------------ geometry
  box() {
    const width = this.canvas.clientWidth, height = this.canvas.clientHeight;
    const plotHeight = height - AXIS - OVERVIEW - GAP;
    return {width, height, left: GUTTER, right: width - 8, top: 4, bottom: plotHeight, overviewTop: height - OVERVIEW};
  }

  xOf(position, box = this.box()) {
    const [v0, v1] = this.view;
    return box.left + (position - v0) / (v1 - v0) * (box.right - box.left);
  }

  positionAt(x, box = this.box()) {
    const [v0, v1] = this.view;
    const position = v0 + (x - box.left) / (box.right - box.left) * (v1 - v0);
    return Math.min(Math.max(Math.floor(position), 0), this.n - 1);
  }

  overviewPosition(x, box = this.box()) {
    return (x - box.left) / (box.right - box.left) * this.n;
  }

  laneBoxes(box) {
    const weights = this.lanes.map((lane) => lane.weight ?? 1);
    const total = weights.reduce((a, b) => a + b, 0) || 1;
    let top = box.top;
    return this.lanes.map((lane, i) => {
      const height = (box.bottom - box.top - GAP * (this.lanes.length - 1)) * weights[i] / total;
      const laneBox = {top, bottom: top + height};
      top += height + GAP;
      return laneBox;
    });
  }

  // ------------------------------------------------------------------ drawing
  // Changes ask for a draw; the canvas is painted once per animation frame however many asked.
  draw() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = null;
      this.paint();
    });
  }

  paint() {
    const canvas = this.canvas, dpr = window.devicePixelRatio || 1;
    const box = this.box();
    if (box.width === 0) return;
    if (canvas.width !== Math.round(box.width * dpr) || canvas.height !== Math.round(box.height * dpr)) {
      canvas.width = Math.round(box.width * dpr);
      canvas.height = Math.round(box.height * dpr);
    }
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, box.width, box.height);
    if (!this.n) return;
    const lanes = this.laneBoxes(box);
    const columns = this.columns(box);
    this.drawBands(g, box, lanes, columns);
    lanes.forEach((laneBox, i) => this.drawLane(g, box, laneBox, this.lanes[i], columns));
    this.drawMarks(g, box, lanes, columns);
    this.drawSelection(g, box, lanes);
    this.drawAxis(g, box);
    this.drawOverview(g, box);
    const x = this.xOf(this.cursor + 0.5, box);
    if (x >= box.left && x <= box.right) {
      g.strokeStyle = COLOURS.cursor;
      g.lineWidth = 1.5;
      g.beginPath(); g.moveTo(x, box.top); g.lineTo(x, box.bottom); g.stroke();
    }
  }

  // The positions each pixel column covers: column k (at x = box.left + k) holds
  // positions first[k] .. last[k] - 1.
  columns(box) {
    const [v0, v1] = this.view;
    const width = Math.floor(box.right - box.left);
    const perPixel = (v1 - v0) / (box.right - box.left);
    const first = new Int32Array(width), last = new Int32Array(width);
    let count = 0;
    for (let k = 0; k < width; k++) {
      const p0 = Math.max(0, Math.floor(v0 + k * perPixel));
      if (p0 >= this.n) break;
      first[k] = p0;
      last[k] = Math.min(this.n, Math.max(p0 + 1, Math.floor(v0 + (k + 1) * perPixel)));
      count = k + 1;
    }
    return {first, last, count, left: box.left};
  }

  drawBands(g, box, lanes, columns) {
    const top = lanes.length ? lanes[0].top : box.top;
    for (const [mask, colour] of [[this.excluded, COLOURS.excluded], [this.deleted, COLOURS.deleted]]) {
      if (!mask) continue;
      g.fillStyle = colour;
      let start = null;
      const flush = (x) => { if (start !== null) { g.fillRect(start, top, x - start, box.bottom - top); start = null; } };
      for (let k = 0; k < columns.count; k++) {
        const x = columns.left + k;
        let any = false;
        for (let p = columns.first[k]; p < columns.last[k]; p++) if (mask[p]) { any = true; break; }
        if (any && start === null) start = x;
        if (!any) flush(x);
      }
      flush(box.right);
    }
  }

  drawLane(g, box, lane, spec, columns) {
    const y = (value) => lane.bottom - (value - spec.low) / (spec.high - spec.low) * (lane.bottom - lane.top);
    g.font = '11px system-ui, sans-serif';
    g.textBaseline = 'middle';
    g.fillStyle = COLOURS.text;
    g.save();  // the lane's name, upright along the left edge
    g.translate(12, (lane.top + lane.bottom) / 2);
    g.rotate(-Math.PI / 2);
    g.textAlign = 'center';
    g.fillText(spec.name, 0, 0);
    g.restore();
    g.textAlign = 'right';
    for (const tick of spec.ticks ?? [spec.low, spec.high]) {
      g.fillText(tick.toString(), box.left - 6, Math.min(Math.max(y(tick), lane.top + 5), lane.bottom - 5));
      g.strokeStyle = tick === 0 ? COLOURS.zero : COLOURS.grid;
      g.lineWidth = 1;
      g.beginPath(); g.moveTo(box.left, Math.round(y(tick)) + 0.5); g.lineTo(box.right, Math.round(y(tick)) + 0.5); g.stroke();
    }
    g.save();
    g.beginPath(); g.rect(box.left, lane.top, box.right - box.left, lane.bottom - lane.top); g.clip();
    const [v0, v1] = this.view;
    const dense = (v1 - v0) > (box.right - box.left);
    for (const series of spec.series) {
      g.strokeStyle = series.colour;
      g.lineWidth = series.width ?? 1.25;
      g.globalAlpha = series.alpha ?? 1;
      g.beginPath();
      let pen = false;
      if (dense) {
        for (let k = 0; k < columns.count; k++) {
          const x = columns.left + k;
          let low = Infinity, high = -Infinity;
          for (let p = columns.first[k]; p < columns.last[k]; p++) {
            const v = series.values[p];
            if (v === v) { if (v < low) low = v; if (v > high) high = v; }
          }
          if (low === Infinity) { pen = false; continue; }
          if (!pen) g.moveTo(x + 0.5, y(low)); else g.lineTo(x + 0.5, y(low));
          g.lineTo(x + 0.5, y(high) - 0.01);
          pen = true;
        }
      } else {
        const first = Math.max(0, Math.floor(v0) - 1), last = Math.min(this.n - 1, Math.ceil(v1) + 1);
        for (let p = first; p <= last; p++) {
          const v = series.values[p];
          if (v !== v) { pen = false; continue; }
          const x = this.xOf(p + 0.5, box);
          if (!pen) g.moveTo(x, y(v)); else g.lineTo(x, y(v));
          pen = true;
        }
      }
      g.stroke();
    }
    g.restore();
    g.globalAlpha = 1;
  }

  drawMarks(g, box, lanes, columns) {
    if (!this.marks || !lanes.length) return;
    g.fillStyle = COLOURS.tag;
    for (let k = 0; k < columns.count; k++) {
      for (let p = columns.first[k]; p < columns.last[k]; p++) {
        if (this.marks[p]) { g.fillRect(columns.left + k - 1, lanes[0].top, 3, 6); break; }
      }
    }
  }

  drawSelection(g, box, lanes) {
    if (!this.selection) return;
    const [a, b] = this.selection;
    const x0 = Math.max(this.xOf(a, box), box.left), x1 = Math.min(this.xOf(b + 1, box), box.right);
    if (x1 < box.left || x0 > box.right) return;
    g.fillStyle = COLOURS.selection;
    g.fillRect(x0, box.top, Math.max(x1 - x0, 2), box.bottom - box.top);
    g.strokeStyle = COLOURS.selectionEdge;
    g.lineWidth = 1;
    g.strokeRect(x0 + 0.5, box.top + 0.5, Math.max(x1 - x0, 2) - 1, box.bottom - box.top - 1);
  }

  drawAxis(g, box) {
    const [v0, v1] = this.view;
    const span = v1 - v0;
    const step = niceStep(span / Math.max(2, (box.right - box.left) / 90));
    g.fillStyle = COLOURS.text;
    g.font = '11px system-ui, sans-serif';
    g.textAlign = 'center';
    g.textBaseline = 'top';
    for (let p = Math.ceil(v0 / step) * step; p < v1; p += step) {
      const x = this.xOf(p + 0.5, box);
      g.fillRect(x, box.bottom + 1, 1, 4);
      g.fillText(this.label ? this.label(p) : String(p), x, box.bottom + 5);
    }
  }

  drawOverview(g, box) {
    const top = box.overviewTop, height = OVERVIEW - 4;
    g.fillStyle = '#f2f4f7';
    g.fillRect(box.left, top, box.right - box.left, height);
    const first = this.lanes[0]?.series[0];
    if (first) {  // the recorded steering of the whole tub, in miniature
      const perPixel = this.n / (box.right - box.left);
      g.strokeStyle = '#9aa5b8';
      g.lineWidth = 1;
      g.beginPath();
      for (let x = 0; x < box.right - box.left; x++) {
        const p0 = Math.floor(x * perPixel), p1 = Math.max(p0 + 1, Math.floor((x + 1) * perPixel));
        let low = Infinity, high = -Infinity;
        for (let p = p0; p < Math.min(p1, this.n); p++) {
          const v = first.values[p];
          if (v === v) { if (v < low) low = v; if (v > high) high = v; }
        }
        if (low === Infinity) continue;
        const y = (v) => top + height / 2 - v * (height / 2 - 2);
        g.moveTo(box.left + x + 0.5, y(low)); g.lineTo(box.left + x + 0.5, y(high) - 0.01);
      }
      g.stroke();
    }
    const scale = (box.right - box.left) / this.n;
    g.fillStyle = COLOURS.window;
    g.strokeStyle = COLOURS.selectionEdge;
    const x0 = box.left + this.view[0] * scale, w = Math.max((this.view[1] - this.view[0]) * scale, 3);
    g.fillRect(x0, top, w, height);
    g.strokeRect(x0 + 0.5, top + 0.5, w - 1, height - 1);
  }

  // ------------------------------------------------------------------ mouse
  mouseDown(e) {
    if (!this.n || e.button !== 0) return;
    const box = this.box(), x = e.offsetX, y = e.offsetY;
    if (y >= box.overviewTop - 2) {
      this.drag = {kind: 'overview'};
      this.panOverview(x, box);
    } else if (e.shiftKey) {
      this.drag = {kind: 'pan', x, view: [...this.view]};
    } else {
      this.drag = {kind: 'select', x, anchor: this.positionAt(x, box)};
    }
    e.preventDefault();
  }

  mouseMove(e) {
    if (!this.drag) return;
    const rect = this.canvas.getBoundingClientRect(), box = this.box();
    const x = e.clientX - rect.left;
    if (this.drag.kind === 'overview') this.panOverview(x, box);
    else if (this.drag.kind === 'pan') {
      const [v0, v1] = this.drag.view;
      const shift = (this.drag.x - x) / (box.right - box.left) * (v1 - v0);
      this.setView(v0 + shift, v1 + shift);
    } else if (Math.abs(x - this.drag.x) > 3) {
      const here = this.positionAt(x, box);
      this.selection = [Math.min(here, this.drag.anchor), Math.max(here, this.drag.anchor)];
      this.drag.moved = true;
      this.draw();
    }
  }

  mouseUp(e) {
    const drag = this.drag;
    this.drag = null;
    if (!drag || drag.kind !== 'select') return;
    if (drag.moved) {
      this.onSelect(this.selection);
    } else {
      this.onSeek(drag.anchor);
    }
  }

  panOverview(x, box) {
    const centre = this.overviewPosition(x, box), span = this.view[1] - this.view[0];
    this.setView(centre - span / 2, centre + span / 2);
  }

  wheel(e) {
    if (!this.n) return;
    e.preventDefault();
    const box = this.box();
    if (Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
      const shift = e.deltaX / (box.right - box.left) * (this.view[1] - this.view[0]);
      this.setView(this.view[0] + shift, this.view[1] + shift);
      return;
    }
    const [v0, v1] = this.view;
    const at = v0 + (e.offsetX - box.left) / (box.right - box.left) * (v1 - v0);
    this.zoom(Math.exp(e.deltaY * 0.0015), at);
  }
}

function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(Math.max(raw, 1)));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}
