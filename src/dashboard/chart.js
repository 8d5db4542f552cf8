// @ts-check
/**
 * Line charts on a canvas: one or more curves on shared axes. `ticks` and `plotRange` are pure
 * (tested in the fast tier); `drawChart` paints.
 * @import { Point } from './curves.js'
 */

/** @typedef {{ points: Point[], colour: string }} Series */

/**
 * What a chart's axes say, and what it shows before it has a point.
 * @typedef {{ x: string, y: string, empty: string, xFrom: number, wholeX: boolean, yText: (value: number) => string }} Axes
 */

/** @type {Axes} */
export const lossAxes = {
  x: 'batch',
  y: 'loss',
  empty: 'waiting for the first loss log line…',
  xFrom: 0,
  wholeX: false,
  yText: String,
};

/** @type {Axes} */
export const accuracyAxes = {
  x: 'epoch',
  y: 'accuracy',
  empty: 'waiting for the first epoch to end…',
  xFrom: 1,
  wholeX: true,
  yText: (fraction) => `${Number((fraction * 100).toPrecision(3))}%`,
};

/**
 * "Nice" tick values covering [min, max].
 * @param {number} min
 * @param {number} max
 * @param {number} count  about how many
 */
export function ticks(min, max, count) {
  const span = max - min || 1;
  const step0 = span / count;
  const power = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= step0) ?? step0;
  const values = [];
  for (let value = Math.ceil(min / step) * step; value <= max + step * 1e-9; value += step)
    values.push(Number(value.toPrecision(12)));
  return values;
}

/**
 * The ranges the axes cover: x from `axes.xFrom` (at least one unit wide); y from 0, unless every
 * value stays in a narrow band (curves to tell apart): then the band, with a margin.
 * @param {Point[]} points  at least one
 * @param {Axes} axes
 */
export function plotRange(points, axes) {
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const xMin = Math.min(axes.xFrom, ...xs);
  const xMax = Math.max(...xs, xMin + 1);
  const [low, high] = [Math.min(...ys), Math.max(...ys)];
  const narrow = low > high / 2 && high > low;
  const yMin = narrow ? Math.max(0, low - (high - low) * 0.1) : 0;
  const yMax = narrow ? high + (high - low) * 0.1 : high * 1.05 || 1;
  return { xMin, xMax, yMin, yMax };
}

/**
 * Draws `series` on `canvas`, on shared axes, sized to its CSS box; the points drawn go to
 * data-points and the series that have any to data-series.
 * @param {HTMLCanvasElement} canvas
 * @param {Series[]} series
 * @param {Axes} [axes]
 */
export function drawChart(canvas, series, axes = lossAxes) {
  const drawn = series.filter((one) => one.points.length > 0);
  const points = drawn.flatMap((one) => one.points);
  canvas.dataset.points = String(points.length);
  canvas.dataset.series = String(drawn.length);
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 640;
  const height = canvas.clientHeight || 260;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const context = canvas.getContext('2d');
  if (!context) return;
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  context.font = '12px system-ui, sans-serif';
  const pad = { left: 60, right: 16, top: 14, bottom: 34 };
  const plotWidth = width - pad.left - pad.right;
  const plotHeight = height - pad.top - pad.bottom;

  if (points.length === 0) {
    context.fillStyle = '#57606a';
    context.textAlign = 'center';
    context.fillText(axes.empty, width / 2, height / 2);
    return;
  }
  const { xMin, xMax, yMin, yMax } = plotRange(points, axes);
  const px = (/** @type {number} */ x) => pad.left + ((x - xMin) / (xMax - xMin)) * plotWidth;
  const py = (/** @type {number} */ y) => pad.top + (1 - (y - yMin) / (yMax - yMin)) * plotHeight;

  context.strokeStyle = '#e1e4e8';
  context.fillStyle = '#57606a';
  context.lineWidth = 1;
  context.textAlign = 'right';
  context.textBaseline = 'middle';
  for (const value of ticks(yMin, yMax, 5)) {
    const y = Math.round(py(value)) + 0.5;
    context.beginPath();
    context.moveTo(pad.left, y);
    context.lineTo(width - pad.right, y);
    context.stroke();
    context.fillText(axes.yText(value), pad.left - 6, y);
  }
  context.textAlign = 'center';
  context.textBaseline = 'top';
  for (const value of ticks(xMin, xMax, 6))
    if (!axes.wholeX || Number.isInteger(value)) context.fillText(String(value), px(value), height - pad.bottom + 6);
  context.fillText(axes.x, pad.left + plotWidth / 2, height - 14);
  context.save();
  context.translate(12, pad.top + plotHeight / 2);
  context.rotate(-Math.PI / 2);
  context.fillText(axes.y, 0, -6);
  context.restore();
  context.strokeStyle = '#8c959f';
  context.strokeRect(pad.left + 0.5, pad.top + 0.5, plotWidth, plotHeight);

  for (const { points: line, colour } of drawn) {
    context.strokeStyle = colour;
    context.lineWidth = 2;
    context.lineJoin = 'round';
    context.beginPath();
    line.forEach((point, index) =>
      index === 0 ? context.moveTo(px(point.x), py(point.y)) : context.lineTo(px(point.x), py(point.y)),
    );
    context.stroke();
    const [only] = line;
    if (line.length === 1 && only) {
      context.fillStyle = colour;
      context.beginPath();
      context.arc(px(only.x), py(only.y), 3, 0, 2 * Math.PI);
      context.fill();
    }
  }
}
