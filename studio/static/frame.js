// A camera frame with steering drawn on it, as the replay videos draw it: each command is a
// line from the bottom centre, tilted by the command (+1 = full right = 45 degrees).

const imageCache = new Map();  // url -> Promise<HTMLImageElement>, the latest few hundred
const CACHE_SIZE = 400;

export function loadImage(url) {
  if (imageCache.has(url)) return imageCache.get(url);
  const promise = new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error(`cannot load ${url}`));
    image.src = url;
  });
  imageCache.set(url, promise);
  if (imageCache.size > CACHE_SIZE) imageCache.delete(imageCache.keys().next().value);
  promise.catch(() => imageCache.delete(url));
  return promise;
}

// lines: [{value, colour, label, width}]; badge: {text, colour} drawn in the top right corner.
export function drawFrame(canvas, image, {lines = [], badge = null, legend = true} = {}) {
  const g = canvas.getContext('2d');
  const width = canvas.width, height = canvas.height;
  g.fillStyle = '#0f131b';
  g.fillRect(0, 0, width, height);
  if (image) {
    g.imageSmoothingQuality = 'high';
    g.drawImage(image, 0, 0, width, height);
  } else {
    g.fillStyle = '#667085';
    g.font = `${Math.round(height / 16)}px system-ui, sans-serif`;
    g.textAlign = 'center';
    g.fillText('no image', width / 2, height / 2);
  }
  const base = [width / 2, height - 2], length = 0.45 * height, scale = width / 320, text = width / 480;
  for (const line of lines) {
    if (line.value === null || line.value !== line.value) continue;
    const theta = Math.max(-1, Math.min(1, line.value)) * Math.PI / 4;
    g.strokeStyle = 'rgba(0, 0, 0, 0.55)';
    g.lineWidth = (line.width ?? 4) * scale + 3;
    g.lineCap = 'round';
    const tip = [base[0] + length * Math.sin(theta), base[1] - length * Math.cos(theta)];
    g.beginPath(); g.moveTo(...base); g.lineTo(...tip); g.stroke();
    g.strokeStyle = line.colour;
    g.lineWidth = (line.width ?? 4) * scale;
    g.beginPath(); g.moveTo(...base); g.lineTo(...tip); g.stroke();
  }
  if (legend && lines.length) {
    const size = Math.max(11, Math.round(13 * text));
    g.font = `600 ${size}px system-ui, sans-serif`;
    g.textAlign = 'left';
    g.textBaseline = 'top';
    const rows = lines.map((l) => `${l.label}  ${formatCommand(l.value)}`);
    const boxWidth = Math.max(...rows.map((r) => g.measureText(r).width)) + size * 2.2;
    g.fillStyle = 'rgba(15, 19, 27, 0.62)';
    roundRect(g, 8, 8, boxWidth, rows.length * (size + 6) + 8, 6);
    rows.forEach((row, i) => {
      const y = 12 + i * (size + 6);
      g.fillStyle = lines[i].colour;
      g.fillRect(14, y + size / 2 - 2, size, 4);
      g.fillStyle = '#fff';
      g.fillText(row, 14 + size * 1.5, y);
    });
  }
  if (badge) {
    const size = Math.max(11, Math.round(14 * text));
    g.font = `700 ${size}px system-ui, sans-serif`;
    const textWidth = g.measureText(badge.text).width;
    g.fillStyle = badge.colour;
    roundRect(g, width - textWidth - 24, 8, textWidth + 16, size + 10, 5);
    g.fillStyle = '#fff';
    g.textAlign = 'left';
    g.textBaseline = 'top';
    g.fillText(badge.text, width - textWidth - 16, 13);
  }
}

export function formatCommand(value) {
  if (value === null || value === undefined || value !== value) return '–';
  return (value >= 0 ? '+' : '−') + Math.abs(value).toFixed(2);
}

function roundRect(g, x, y, w, h, r) {
  g.beginPath();
  g.roundRect(x, y, w, h, r);
  g.fill();
}
