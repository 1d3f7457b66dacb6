/** Pure: `twill bench scale`'s tables (the terminal and report.md share them) and report.md around them. */
import { median } from './stats.js';
import { MB, SETTLE_SECONDS, TARGETS, type CellSummary, type ChurnSummary, type FloorSummary, type ScaleResults, type ScaleSummary, type TargetCheck } from './scale-results.js';
import { fmtNum, fmtRatio, machineLine, markdownTable } from './table.js';

const FAILED = 'failed';

export const fmtS = (x: number | null): string => (x === null ? FAILED : `${fmtNum(x)} s`);
const ratio = (x: number | null): string => (x === null ? '-' : fmtRatio(x));

/** Sizes in binary units, as /proc counts memory: 1 kB = 1024 B. */
export function fmtBytes(b: number): string {
  if (b >= MB) return `${fmtNum(b / MB)} MB`;
  if (b >= 1024) return `${fmtNum(b / 1024)} kB`;
  return `${b} B`;
}

function apiCell(a: CellSummary['status']): string {
  return a ? `${fmtBytes(a.bytes)}, ${fmtNum(a.medianMs)} ms` : FAILED;
}

function memoryCell(c: CellSummary): string {
  return c.rssMB === null ? FAILED : `${fmtNum(c.rssMB)} MB (${fmtNum(c.peakRssMB ?? NaN)})`;
}

export function floorTable(floor: readonly FloorSummary[]): string {
  return markdownTable(
    ['peers', 'floor: ip -batch of N route adds', 'of N deletes'],
    floor.map((f) => [String(f.peers), fmtS(f.addS), fmtS(f.deleteS)]),
  );
}

export function cellTable(cells: readonly CellSummary[]): string {
  const head = ['peers', 'backend', 'cold start', 'burst of N adds', 'burst of N deletes', 'idle CPU (own)', 'RSS (peak)', '/v1/status size, latency', '/metrics size, latency'];
  const rows = cells.map((c) => [
    String(c.peers),
    c.backend,
    fmtS(c.coldStartS),
    fmtS(c.burstAddS),
    fmtS(c.burstDeleteS),
    c.idleCpuPercent === null ? FAILED : `${fmtNum(c.idleCpuPercent)} % (${fmtNum(c.idleOwnCpuPercent ?? NaN)})`,
    memoryCell(c),
    apiCell(c.status),
    apiCell(c.metrics),
  ]);
  return markdownTable(head, rows);
}

export function ratioTable(cells: readonly CellSummary[]): string {
  const head = ['peers', 'backend', 'cold start ÷ floor (adds)', 'burst of adds ÷ floor (adds)', 'burst of deletes ÷ floor (deletes)'];
  return markdownTable(head, cells.map((c) => [String(c.peers), c.backend, ratio(c.vsFloor.coldStart), ratio(c.vsFloor.burstAdd), ratio(c.vsFloor.burstDelete)]));
}

export function churnTable(churn: readonly ChurnSummary[]): string {
  const head = ['backend', 'peers', 'changes', 'lag at the end', 'agent CPU (own)'];
  const sent = (c: ChurnSummary): string => (c.writeSeconds === null ? '' : `, sent in ${fmtNum(c.writeSeconds)} s`);
  const rows = churn.map((c) => [c.backend, String(c.peers), `${c.rate}/s for ${c.seconds} s${sent(c)}`, fmtS(c.lagS), c.cpuCores === null ? FAILED : `${fmtNum(c.cpuCores)} core (${fmtNum(c.ownCpuCores ?? NaN)})`]);
  return markdownTable(head, rows);
}

const verdict = (t: TargetCheck): string => (t.pass === null ? 'not measured' : t.pass ? 'met' : 'MISSED');

export function targetTable(targets: readonly TargetCheck[]): string {
  return markdownTable(['target', 'backend', 'measured', ''], targets.map((t) => [t.target, t.backend, t.measured, verdict(t)]));
}

function failures(summary: ScaleSummary): string[] {
  const lines = [
    ...summary.cells.filter((c) => c.error !== null).map((c) => `- ${c.backend}, ${c.peers} peers: ${c.error}`),
    ...summary.churn.filter((c) => c.error !== null).map((c) => `- ${c.backend}, churn: ${c.error}`),
  ];
  return lines.length > 0 ? ['Steps that failed (their figures read "failed"):', '', ...lines, ''] : [];
}

/** What the terminal shows at the end. */
export function renderScaleTables(summary: ScaleSummary): string {
  return [floorTable(summary.floor), cellTable(summary.cells), ratioTable(summary.cells), churnTable(summary.churn), targetTable(summary.targets), ...failures(summary)].join('\n');
}

export function renderScaleReport(results: ScaleResults, summary: ScaleSummary): string {
  const s = results.settings;
  const load = (l: readonly number[]): string => l.map((x) => x.toFixed(2)).join(', ');
  const pollMs = median(results.cells.flatMap((c) => [c.coldStart, c.burstAdd, c.burstDelete]).flatMap((t) => (t && t.resolutionMs > 0 ? [t.resolutionMs] : [])));
  return [
    `# twill bench scale, ${results.date}`,
    '',
    `Machine: ${machineLine(results.machine)}; load average ${load(results.loadAverage.start)} at the start, ${load(results.loadAverage.end)} at the end.`,
    `Peer counts ${s.peers.join(', ')}; backends ${s.backends.join(', ')}; one real agent per backend, in a lab of one host; fake peers written into etcd.`,
    '',
    'The kernel\'s floor (median of ' + `${s.floorRepeat} fresh namespaces):`,
    '',
    floorTable(summary.floor),
    cellTable(summary.cells),
    'Each against the floor of the same N:',
    '',
    ratioTable(summary.cells),
    `Churn, from ${s.churnPeers} peers:`,
    '',
    churnTable(summary.churn),
    'The targets (this machine):',
    '',
    targetTable(summary.targets),
    ...failures(summary),
    '## How it was measured',
    '',
    '- Fake peers: lease keys `/coreos.com/network/subnets/10.x.y.0-24` in flannel\'s format, for the backend, in a network of 10.0.0.0/8 with /24 subnets. Their PublicIPs are distinct addresses of 198.18.64.0/18, a segment that exists only as a second address on the host\'s eth0: on-link, so host-gw routes to them.',
    '- Writes go to etcd\'s v3 HTTP gateway from a driver program in the host\'s namespace, in transactions of up to 128 operations (etcd\'s default limit), 4 in flight. A burst\'s time runs from its first write; its writes took `writeMs` of it (results.json).',
    '- Programmed: host-gw, the routes via a gateway inside the network in the host\'s table main are exactly the peers\' subnets via their PublicIPs (polled with the kernel\'s route count, /proc/net/fib_triestat, then compared route by route; compared at least once a second whatever the count says). udp, whose peers live in the agent: its /metrics counts them all programmed and its /v1/status lists exactly them; after adds, the end is the latest `since` the agent stamped on them when that is earlier than the poll. Each end is seen at most `resolutionMs` late (results.json)' + (Number.isFinite(pollMs) ? `; the median over this run's polled ends: ${fmtNum(pollMs)} ms.` : '.'),
    '- Cold start: the agent stopped, its routes flushed, N peers in etcd; from starting the agent process (`twill agent`, as the lab runs it) to every peer programmed.',
    `- Idle CPU: the agent's CPU over ${s.idleSeconds} s, ${SETTLE_SECONDS} s after the cold start, in % of one core: utime + stime of the agent and cutime + cstime, the programs it ran meanwhile (ip, nft, iptables), from /proc/PID/stat; "own" is the agent alone. RSS (VmRSS) after that; the peak (VmHWM) after the bursts.`,
    `- /v1/status and /metrics: the median of ${s.apiProbes} GETs in a row over one connection, after one untimed GET, and the body's size.`,
    `- Churn: ${s.churnRate} changes per second for ${s.churnSeconds} s, in turn a peer leaving, a new peer joining and a peer moving to a new PublicIP, each its own etcd request; the lag runs from the last change sent to the agent having exactly the peers present; CPU is the agent's (with its programs', as for idle) over the changes and the lag, per second of them.`,
    `- The targets: bursts of ${TARGETS.burstPeers} within ${TARGETS.burstFloorFactor} × the floor + ${TARGETS.burstSlackS} s; churn lag under ${TARGETS.churnLagS} s with under ${TARGETS.churnCpuCores} of a core; idle CPU at ${TARGETS.idlePeers} peers under ${TARGETS.idleCpuPercent} % of a core; RSS at ${TARGETS.rssPeers} peers under ${TARGETS.rssMB} MB.`,
    '- Sizes in binary units (1 MB = 2²⁰ B).',
    '',
    '![burst times and the floor, per peer count](report.svg)',
    '',
  ].join('\n');
}
