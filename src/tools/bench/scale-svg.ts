/**
 * Pure: report.svg of `twill bench scale`: three panels (cold start, burst of adds, burst of
 * deletes), each grouped by peer count, one bar for the kernel's floor and one per backend, on a
 * log scale (the figures span four decades). A step that failed has no bar.
 */
import { escapeXml } from './svg.js';
import type { CellSummary, ScaleResults, ScaleSummary } from './scale-results.js';
import { fmtNum, machineLine } from './table.js';

const W = 1020;
const H = 440;
const PANEL = { top: 110, height: 240, width: 270, gap: 55, left: 60 } as const;
const FLOOR_COLOR = '#9a9a9a';
const BACKEND_COLORS = ['#3b6ea8', '#e3923f', '#5a9e5a', '#a8503b'] as const;

interface Series {
  readonly label: string;
  readonly color: string;
  readonly value: (peers: number) => number | null;
}

interface Panel {
  readonly x: number;
  readonly title: string;
  readonly series: readonly Series[];
}

const text = (x: number, y: number, s: string, attrs = ''): string =>
  `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}"${attrs ? ` ${attrs}` : ''}>${escapeXml(s)}</text>`;

/** Pure: the decades a log axis spans so that every positive value fits: [10^lo, 10^hi]. */
export function logRange(values: readonly number[]): { lo: number; hi: number } {
  const pos = values.filter((v) => v > 0 && Number.isFinite(v));
  if (pos.length === 0) return { lo: -3, hi: 0 };
  const lo = Math.floor(Math.log10(Math.min(...pos)));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...pos))));
  return { lo, hi };
}

function panel(p: Panel, peers: readonly number[], range: { lo: number; hi: number }): string {
  const y = (v: number): number => PANEL.top + PANEL.height - ((Math.log10(v) - range.lo) / (range.hi - range.lo)) * PANEL.height;
  const out: string[] = [text(p.x, PANEL.top - 16, p.title, 'class="h"')];
  for (let d = range.lo; d <= range.hi; d++) {
    const v = 10 ** d;
    out.push(`<line x1="${p.x}" x2="${p.x + PANEL.width}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" class="grid"/>`);
    out.push(text(p.x - 6, y(v) + 4, String(Number(v.toPrecision(1))), 'text-anchor="end" class="axis"'));
  }
  const group = PANEL.width / Math.max(1, peers.length);
  const bar = Math.min(22, (group * 0.85) / p.series.length);
  peers.forEach((n, gi) => {
    const gx = p.x + gi * group + (group - p.series.length * bar) / 2;
    p.series.forEach((s, si) => {
      const v = s.value(n);
      if (v === null || !(v > 0)) return;
      const [x, top] = [gx + si * bar, Math.max(PANEL.top, y(v))];
      out.push(`<rect x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${(bar - 2).toFixed(1)}" height="${(y(10 ** range.lo) - top).toFixed(1)}" fill="${s.color}"><title>${escapeXml(`${n} peers, ${s.label}: ${fmtNum(v)} s`)}</title></rect>`);
      const lift = si % 2 === 1 ? 11 : 0;
      out.push(text(x + (bar - 2) / 2, top - 4 - lift, fmtNum(v), 'text-anchor="middle" class="val"'));
    });
    out.push(text(gx + (p.series.length * bar) / 2, y(10 ** range.lo) + 16, String(n), 'text-anchor="middle" class="case"'));
  });
  out.push(`<line x1="${p.x}" x2="${p.x + PANEL.width}" y1="${y(10 ** range.lo)}" y2="${y(10 ** range.lo)}" class="base"/>`);
  return out.join('\n');
}

export function renderScaleSvg(results: ScaleResults, summary: ScaleSummary): string {
  const peers = results.settings.peers;
  const backends = results.settings.backends;
  const cell = (b: string, n: number): CellSummary | undefined => summary.cells.find((c) => c.backend === b && c.peers === n);
  const floor = (n: number) => summary.floor.find((f) => f.peers === n);
  const panels: { title: string; floor: (n: number) => number | null; pick: (c: CellSummary) => number | null }[] = [
    { title: 'Cold start to all programmed, s', floor: (n) => floor(n)?.addS ?? null, pick: (c) => c.coldStartS },
    { title: 'Burst of N adds, s', floor: (n) => floor(n)?.addS ?? null, pick: (c) => c.burstAddS },
    { title: 'Burst of N deletes, s', floor: (n) => floor(n)?.deleteS ?? null, pick: (c) => c.burstDeleteS },
  ];
  const seriesOf = (p: (typeof panels)[number]): Series[] => [
    { label: 'floor (ip -batch)', color: FLOOR_COLOR, value: p.floor },
    ...backends.map((b, i) => ({ label: b, color: BACKEND_COLORS[i % BACKEND_COLORS.length]!, value: (n: number) => { const c = cell(b, n); return c ? p.pick(c) : null; } })),
  ];
  const all = panels.flatMap((p) => peers.flatMap((n) => seriesOf(p).map((s) => s.value(n) ?? 0)));
  const range = logRange(all);
  const body = panels.map((p, i) => panel({ x: PANEL.left + i * (PANEL.width + PANEL.gap), title: p.title, series: seriesOf(p) }, peers, range));
  const legend = seriesOf(panels[0]!).map((s, i) => {
    const lx = PANEL.left + i * 150;
    const ly = PANEL.top + PANEL.height + 36;
    return `<rect x="${lx}" y="${ly}" width="12" height="12" fill="${s.color}"/>\n${text(lx + 18, ly + 10, s.label, 'class="axis"')}`;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">`,
    '<style>.t{font-size:17px;font-weight:bold}.sub,.axis{font-size:11px;fill:#444}.h{font-size:13px;font-weight:bold}.val{font-size:9px}.case{font-size:12px}.grid{stroke:#ddd}.base{stroke:#333}</style>',
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    text(PANEL.left - 40, 28, `twill bench scale: N peers, one agent per backend, against the kernel's floor (${results.date.slice(0, 10)})`, 'class="t"'),
    text(PANEL.left - 40, 48, machineLine(results.machine), 'class="sub"'),
    text(PANEL.left - 40, 64, 'log scale; peers per group below the bars; lower is better; floor = one ip -batch of the same N routes in a fresh namespace', 'class="sub"'),
    ...body,
    ...legend,
    '</svg>',
    '',
  ].join('\n');
}
