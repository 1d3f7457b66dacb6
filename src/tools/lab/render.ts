/** Pure text rendering for `lab check` and `lab status`. */
import type { Segment, Underlay } from './underlay.js';

export interface PingResult {
  readonly from: string;
  readonly to: string;
  readonly ok: boolean;
  readonly detail: string;
}

const OK = '✓';
const FAIL = '✗';
const SELF = '·';
const CORNER = 'from\\to';

/** Rows are sources, columns destinations; a failure list follows the grid. */
export function renderMatrix(pods: readonly string[], results: readonly PingResult[]): string {
  const byPair = new Map(results.map((r) => [`${r.from}>${r.to}`, r]));
  const width = Math.max(CORNER.length, ...pods.map((p) => p.length));
  const cell = (text: string): string => text.padEnd(width);
  const header = [cell(CORNER), ...pods.map(cell)].join(' ');
  const rows = pods.map((from) => {
    const cells = pods.map((to) => (from === to ? SELF : byPair.get(`${from}>${to}`)?.ok ? OK : FAIL));
    return [cell(from), ...cells.map(cell)].join(' ');
  });
  const failures = results.filter((r) => !r.ok);
  const summary = `${results.length - failures.length}/${results.length} reachable`;
  const lines = failures.map((r) => `FAIL ${r.from} -> ${r.to}: ${r.detail}`);
  return [header, ...rows, '', summary, ...lines].map((l) => l.trimEnd()).join('\n') + '\n';
}

export function allReachable(results: readonly PingResult[]): boolean {
  return results.every((r) => r.ok);
}


/** The underlay in a few lines: each segment, its namespace, and what holds its gateway. */
export function renderUnderlay(u: Underlay): string {
  const head = u.router ? `underlay ${u.topology}, router ${u.router.ns}` : `underlay ${u.topology}`;
  const lines = u.segments.map((seg) => `  segment ${seg.id} ${seg.subnet} (${seg.ns}, bridge ${seg.bridge}), gateway ${seg.gateway} on ${gatewayHolder(u, seg)}`);
  return [head, ...lines].join('\n') + '\n';
}

/** A router leg in a routed lab; the bridge itself in a flat one. */
function gatewayHolder(u: Underlay, seg: Segment): string {
  const leg = u.router?.links.find((l) => l.segmentNs === seg.ns);
  return u.router && leg ? `${u.router.ns} ${leg.iface}` : seg.bridge;
}
