/**
 * Pure: report.svg, a hand-written bar chart readable without the table. Left panel: TCP
 * throughput per case (1 and 4 streams); right panel: ping round trip per case (idle median,
 * busy median, idle p99).
 * Whiskers show the spread over runs when there was more than one. The axes fit the bars: one
 * stalled run must not flatten every bar, so a whisker that goes higher is cut at the top and
 * labelled with its value.
 */
import { BUSY_PING_INTERVAL_S, BUSY_PINGS, PING_INTERVAL_S, type BenchResults, type CaseSummary } from './results.js';
import type { Spread } from './stats.js';
import { fmtNum, machineLine } from './table.js';

const W = 1020;
const H = 460;
const PANEL = { top: 120, height: 260, width: 420 } as const;
const LEFT_X = 70;
const RIGHT_X = 570;
const COLORS = { dark: '#3b6ea8', light: '#9cc3e6', busy: '#e3923f' } as const;
const LEGEND_STEP = 120;

export function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] ?? c);
}

const STEPS = [1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10] as const;

/** The smallest "round" number (a step above × 10^k, quarters of it stay round) at or above x: the axis top. */
export function niceCeil(x: number): number {
  if (!(x > 0) || !Number.isFinite(x)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  return (STEPS.find((m) => m * p >= x * (1 - 1e-12)) ?? 10) * p;
}

const tick = (v: number): string => String(Number(v.toPrecision(3)));

interface Series {
  readonly label: string;
  readonly color: string;
  readonly value: (c: CaseSummary) => Spread;
}

interface Panel {
  readonly x: number;
  readonly title: string;
  readonly scale: number;
  readonly series: readonly Series[];
}

const text = (x: number, y: number, s: string, attrs = ''): string =>
  `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}"${attrs ? ` ${attrs}` : ''}>${escapeXml(s)}</text>`;

function panel(p: Panel, cases: readonly CaseSummary[]): string {
  // Headroom above the tallest bar for its value label.
  const max = niceCeil(1.1 * Math.max(...cases.flatMap((c) => p.series.map((s) => s.value(c).median / p.scale))));
  const y = (v: number): number => PANEL.top + PANEL.height - (v / max) * PANEL.height;
  const out: string[] = [text(p.x, PANEL.top - 20, p.title, 'class="h"')];
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    out.push(`<line x1="${p.x}" x2="${p.x + PANEL.width}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" class="grid"/>`);
    out.push(text(p.x - 6, y(v) + 4, tick(v), 'text-anchor="end" class="axis"'));
  }
  const group = PANEL.width / Math.max(1, cases.length);
  const bars = p.series.length;
  const bar = Math.min(48, (group * 0.85) / bars);
  cases.forEach((c, ci) => {
    const gx = p.x + ci * group + (group - bars * bar) / 2;
    p.series.forEach((s, si) => {
      const v = s.value(c);
      const [x, top] = [gx + si * bar, y(v.median / p.scale)];
      out.push(`<rect x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${(bar - 2).toFixed(1)}" height="${(y(0) - top).toFixed(1)}" fill="${s.color}"><title>${escapeXml(`${c.name} ${s.label}: ${fmtNum(v.median / p.scale)}`)}</title></rect>`);
      const mid = x + (bar - 2) / 2;
      const whisker = v.n > 1;
      const cut = whisker && v.max / p.scale > max;
      if (whisker) {
        out.push(`<line x1="${mid.toFixed(1)}" x2="${mid.toFixed(1)}" y1="${y(Math.min(v.max / p.scale, max)).toFixed(1)}" y2="${y(v.min / p.scale).toFixed(1)}" class="whisker"/>`);
      }
      if (cut) out.push(text(mid, y(max) - 4, `↑${fmtNum(v.max / p.scale)}`, 'text-anchor="middle" class="val"'));
      // Neighbours' labels would touch on narrow bars: every other one sits a line higher.
      const lift = si % 2 === 1 ? 13 : 0;
      const above = whisker && !cut ? Math.min(top, y(v.max / p.scale)) : top;
      out.push(text(mid, above - 4 - lift, fmtNum(v.median / p.scale), 'text-anchor="middle" class="val"'));
    });
    out.push(text(gx + (bars * bar) / 2, y(0) + 18, c.name, 'text-anchor="middle" class="case"'));
  });
  out.push(`<line x1="${p.x}" x2="${p.x + PANEL.width}" y1="${y(0)}" y2="${y(0)}" class="base"/>`);
  p.series.forEach((s, si) => {
    const lx = p.x + si * LEGEND_STEP;
    out.push(`<rect x="${lx}" y="${PANEL.top + PANEL.height + 34}" width="12" height="12" fill="${s.color}"/>`);
    out.push(text(lx + 18, PANEL.top + PANEL.height + 44, s.label, 'class="axis"'));
  });
  return out.join('\n');
}

export function renderSvg(results: BenchResults, cases: readonly CaseSummary[]): string {
  const s = results.settings;
  const runs = s.repeat > 1 ? `median of ${s.repeat} runs, whiskers min–max` : '1 run';
  const left = panel({ x: LEFT_X, title: 'TCP throughput pod to pod, Gbit/s (higher is better)', scale: 1e9, series: [
    { label: '1 stream', color: COLORS.dark, value: (c) => c.tcp1Bps },
    { label: '4 streams', color: COLORS.light, value: (c) => c.tcp4Bps },
  ] }, cases);
  const right = panel({ x: RIGHT_X, title: 'Ping round trip pod to pod, ms (lower is better)', scale: 1, series: [
    { label: 'idle median', color: COLORS.dark, value: (c) => c.rttMedianMs },
    { label: 'busy median', color: COLORS.busy, value: (c) => c.rttBusyMedianMs },
    { label: 'idle 99th pct.', color: COLORS.light, value: (c) => c.rttP99Ms },
  ] }, cases);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">`,
    '<style>.t{font-size:17px;font-weight:bold}.sub,.axis{font-size:11px;fill:#444}.h{font-size:13px;font-weight:bold}.val{font-size:11px}.case{font-size:12px}.grid{stroke:#ddd}.base{stroke:#333}.whisker{stroke:#111;stroke-width:1.5}</style>',
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    text(LEFT_X - 50, 28, `twill bench: what encapsulation costs (${results.date.slice(0, 10)})`, 'class="t"'),
    text(LEFT_X - 50, 48, machineLine(results.machine), 'class="sub"'),
    text(LEFT_X - 50, 64, `iperf3 ${s.durationSeconds} s per test, ${runs}; underlay = host to host, no twill`, 'class="sub"'),
    text(LEFT_X - 50, 78, `pings per run: ${s.pings}, ${PING_INTERVAL_S * 1000} ms apart (idle), then ${BUSY_PINGS}, ${BUSY_PING_INTERVAL_S * 1000} ms apart (busy)`, 'class="sub"'),
    left,
    right,
    '</svg>',
    '',
  ].join('\n');
}
