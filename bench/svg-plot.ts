// The benchmark's picture: one SVG with latency percentiles over time (p50, p90, p99 per interval)
// above the whole run's latency histogram (log-spaced buckets). Plain SVG 1.1 text, no dependency.
import type { IntervalStats } from './recorder.js';

export interface PlotInput {
  readonly title: string;
  readonly intervals: readonly IntervalStats[];
  /** [upper bound ms, count] per bucket, ascending. */
  readonly buckets: readonly (readonly [number, number])[];
}

const width = 900;
const panelHeight = 300;
const margin = { left: 70, right: 20, top: 50, bottom: 45 };
const plotWidth = width - margin.left - margin.right;
const series = [
  { key: 'p50_ms', label: 'p50', color: '#2b8a3e' },
  { key: 'p90_ms', label: 'p90', color: '#e67700' },
  { key: 'p99_ms', label: 'p99', color: '#c92a2a' },
] as const;

const escapeXml = (text: string): string => text.replace(/[<>&"']/g, (char) => `&#${char.charCodeAt(0)};`);

const fixed = (value: number): string => (Number.isFinite(value) ? value.toFixed(1) : '0');

/** A "nice" axis maximum and tick step for values up to `max`. */
const niceScale = (max: number): { top: number; step: number } => {
  if (!(max > 0)) return { top: 1, step: 0.25 };
  const rough = max / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step =
    [1, 2, 2.5, 5, 10].map((factor) => factor * power).find((candidate) => candidate >= rough) ?? rough;
  return { top: Math.ceil(max / step) * step, step };
};

const formatNumber = (value: number): string =>
  Math.abs(value) >= 100 || Number.isInteger(value)
    ? String(Math.round(value))
    : String(Number(value.toPrecision(3)));

const text = (x: number, y: number, content: string, extra = ''): string =>
  `<text x="${fixed(x)}" y="${fixed(y)}"${extra}>${escapeXml(content)}</text>`;

const percentilesPanel = (intervals: readonly IntervalStats[], top: number): string => {
  const parts: string[] = [];
  const bottom = top + panelHeight - margin.bottom;
  const plotTop = top + margin.top;
  const height = bottom - plotTop;
  const lastT = intervals.at(-1)?.t_s ?? 1;
  const maxT = lastT > 0 ? lastT : 1;
  const { top: yTop, step } = niceScale(Math.max(0, ...intervals.map((each) => each.p99_ms)));
  const x = (t: number): number => margin.left + (t / maxT) * plotWidth;
  const y = (value: number): number => bottom - (Math.min(value, yTop) / yTop) * height;
  parts.push(text(margin.left, top + 30, 'Latency percentiles per interval (ms)', ' class="title"'));
  for (let tick = 0; tick <= yTop + step / 2; tick += step) {
    parts.push(
      `<line x1="${margin.left}" x2="${width - margin.right}" y1="${fixed(y(tick))}" y2="${fixed(y(tick))}" class="grid"/>`,
    );
    parts.push(text(margin.left - 8, y(tick) + 4, formatNumber(tick), ' text-anchor="end"'));
  }
  const { step: tStep } = niceScale(maxT);
  for (let t = 0; t <= maxT + tStep / 2; t += tStep) {
    parts.push(text(x(t), bottom + 18, `${formatNumber(t)}s`, ' text-anchor="middle"'));
  }
  parts.push(text(margin.left + plotWidth / 2, bottom + 38, 'time since start (s)', ' text-anchor="middle"'));
  for (const { key, color } of series) {
    const points = intervals
      .filter((each) => each.ops > 0)
      .map((each) => `${fixed(x(each.t_s))},${fixed(y(each[key]))}`);
    if (points.length > 0) {
      parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${points.join(' ')}"/>`);
    }
  }
  series.forEach(({ label, color }, index) => {
    const lx = width - margin.right - 190 + index * 65;
    parts.push(`<rect x="${lx}" y="${top + 20}" width="12" height="12" fill="${color}"/>`);
    parts.push(text(lx + 16, top + 31, label));
  });
  parts.push(
    `<rect x="${margin.left}" y="${plotTop}" width="${plotWidth}" height="${fixed(height)}" class="frame"/>`,
  );
  return parts.join('\n');
};

const histogramPanel = (buckets: readonly (readonly [number, number])[], top: number): string => {
  const parts: string[] = [];
  const bottom = top + panelHeight - margin.bottom;
  const plotTop = top + margin.top;
  const height = bottom - plotTop;
  parts.push(
    text(
      margin.left,
      top + 30,
      'Latency histogram, whole run (requests per bucket, ms upper bound)',
      ' class="title"',
    ),
  );
  const { top: yTop, step } = niceScale(Math.max(0, ...buckets.map(([, count]) => count)));
  const y = (value: number): number => bottom - (value / yTop) * height;
  for (let tick = 0; tick <= yTop + step / 2; tick += step) {
    parts.push(
      `<line x1="${margin.left}" x2="${width - margin.right}" y1="${fixed(y(tick))}" y2="${fixed(y(tick))}" class="grid"/>`,
    );
    parts.push(text(margin.left - 8, y(tick) + 4, formatNumber(tick), ' text-anchor="end"'));
  }
  const barWidth = buckets.length === 0 ? 0 : plotWidth / buckets.length;
  const labelEvery = Math.max(1, Math.ceil(buckets.length / 12));
  buckets.forEach(([upperMs, count], index) => {
    const bx = margin.left + index * barWidth;
    parts.push(
      `<rect x="${fixed(bx + 1)}" y="${fixed(y(count))}" width="${fixed(Math.max(1, barWidth - 2))}" height="${fixed(bottom - y(count))}" class="bar"><title>${escapeXml(`≤ ${upperMs} ms: ${count}`)}</title></rect>`,
    );
    if (index % labelEvery === 0) {
      parts.push(text(bx + barWidth / 2, bottom + 18, formatNumber(upperMs), ' text-anchor="middle"'));
    }
  });
  parts.push(
    text(
      margin.left + plotWidth / 2,
      bottom + 38,
      'latency (ms, log-spaced buckets)',
      ' text-anchor="middle"',
    ),
  );
  parts.push(
    `<rect x="${margin.left}" y="${plotTop}" width="${plotWidth}" height="${fixed(height)}" class="frame"/>`,
  );
  return parts.join('\n');
};

export const renderLatencySvg = (input: PlotInput): string => {
  const height = panelHeight * 2 + 40;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    '<style>.title{font-size:14px;font-weight:bold}.grid{stroke:#ddd;stroke-width:1}.frame{fill:none;stroke:#888}.bar{fill:#1c7ed6}</style>',
    '<rect width="100%" height="100%" fill="white"/>',
    text(margin.left, 24, input.title, ' class="title" font-size="16"'),
    `<g transform="translate(0,10)">${percentilesPanel(input.intervals, 10)}</g>`,
    `<g transform="translate(0,10)">${histogramPanel(input.buckets, panelHeight + 10)}</g>`,
    '</svg>',
    '',
  ].join('\n');
};
