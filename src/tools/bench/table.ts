/** Pure: the bench's tables (terminal and report.md share them) and report.md around them. */
import { BUSY_PING_INTERVAL_S, BUSY_PINGS, PING_INTERVAL_S, type AddedRtt, type BenchResults, type CaseSummary, type Machine, type Ratios, YARDSTICKS } from './results.js';
import type { Spread } from './stats.js';

/** Three significant figures or so, without exponent notation. */
export function fmtNum(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(2);
}

export const fmtRatio = (r: number): string => (Number.isFinite(r) ? `×${fmtNum(r)}` : 'n/a');

function withSpread(s: Spread, scale: number, unit: string): string {
  const main = `${fmtNum(s.median / scale)}${unit}`;
  return s.n > 1 ? `${main} (${fmtNum(s.min / scale)}–${fmtNum(s.max / scale)})` : main;
}

export const gbps = (s: Spread): string => withSpread(s, 1e9, ' Gbit/s');
export const kdps = (s: Spread): string => withSpread(s, 1e3, 'k/s');
export const ms = (s: Spread): string => withSpread(s, 1, ' ms');

/** A difference with its sign: "+0.58", "-0.02", "0". */
export const fmtSigned = (x: number): string => (x > 0 ? `+${fmtNum(x)}` : x < 0 ? fmtNum(x) : '0');

/** "+0.58 / +0.13 ms": the round trip over host-gw's, idle / busy; "-" without host-gw. */
export const addedRttCell = (a: AddedRtt | null): string => (a ? `${fmtSigned(a.idle)} / ${fmtSigned(a.busy)} ms` : '-');

const IDLE_APART = `${PING_INTERVAL_S * 1000} ms apart`;
const BUSY_APART = `${BUSY_PING_INTERVAL_S * 1000} ms apart`;

export function machineLine(m: Machine): string {
  return `${m.cores} × ${m.cpuModel}, ${m.memoryGiB} GiB, Linux ${m.kernel} (${m.arch}), Node.js ${m.node}`;
}

function cpuCell(c: CaseSummary): string {
  if (!c.cpuSecondsPerGB) return 'n/a';
  return `${withSpread(c.cpuSecondsPerGB, 1, ' s/GB')}${c.agentInDataPath ? '' : ' (not in data path)'}`;
}

function convergenceCell(c: CaseSummary): string {
  const v = c.convergenceMs;
  return v ? `${fmtNum(v.median)} / ${fmtNum(v.worst)} ms` : 'n/a';
}

export function markdownTable(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, 3, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}

export function absoluteTable(cases: readonly CaseSummary[]): string {
  const head = ['case', 'TCP 1 stream', 'TCP 4 streams', 'UDP 1400 B received', 'UDP loss', `RTT idle (${IDLE_APART})`, `RTT busy (${BUSY_APART})`, 'RTT p99', 'agent CPU', 'convergence median / worst'];
  const rows = cases.map((c) => [
    c.name,
    gbps(c.tcp1Bps),
    gbps(c.tcp4Bps),
    kdps(c.udpDatagramsPerSecond),
    withSpread(c.udpLossPercent, 1, ' %'),
    ms(c.rttMedianMs),
    ms(c.rttBusyMedianMs),
    ms(c.rttP99Ms),
    cpuCell(c),
    convergenceCell(c),
  ]);
  return markdownTable(head, rows);
}

export function ratioTable(cases: readonly CaseSummary[]): string {
  const pair = (r: Ratios | null, k: keyof Ratios): string => (r ? fmtRatio(r[k]) : '-');
  const head = [
    'case', 'TCP 1 ÷ underlay', 'TCP 1 ÷ host-gw', 'TCP 4 ÷ underlay', 'TCP 4 ÷ host-gw', 'UDP rate ÷ underlay', 'UDP rate ÷ host-gw',
    'RTT idle ÷ underlay', 'RTT idle ÷ host-gw', 'RTT busy ÷ underlay', 'RTT busy ÷ host-gw', 'RTT + over host-gw, idle / busy',
  ];
  const rows = cases.map((c) => [
    c.name,
    pair(c.vsUnderlay, 'tcp1'),
    pair(c.vsHostGw, 'tcp1'),
    pair(c.vsUnderlay, 'tcp4'),
    pair(c.vsHostGw, 'tcp4'),
    pair(c.vsUnderlay, 'udp'),
    pair(c.vsHostGw, 'udp'),
    pair(c.vsUnderlay, 'rttMedian'),
    pair(c.vsHostGw, 'rttMedian'),
    pair(c.vsUnderlay, 'rttBusyMedian'),
    pair(c.vsHostGw, 'rttBusyMedian'),
    addedRttCell(c.addedRttMs),
  ]);
  return markdownTable(head, rows);
}

// udp and every forwarder the bench can put in its agents' place.
const UDP_FORWARDERS: readonly string[] = ['udp', 'udp-dgram', ...YARDSTICKS];

/**
 * udp against its yardsticks: flannel's udp proxy loop in C, and that loop in Node.js (how much
 * of udp's round trip is Node itself). Empty when flannel-udp did not run.
 */
export function yardstickTable(cases: readonly CaseSummary[]): string {
  const rows = cases.filter((c) => c.vsFlannelUdp !== null && UDP_FORWARDERS.includes(c.name));
  if (rows.length === 0) return '';
  const head = ['case', 'TCP 1 ÷ flannel-udp', 'TCP 4 ÷ flannel-udp', 'UDP rate ÷ flannel-udp', 'agent CPU ÷ flannel-udp', 'RTT + over flannel-udp, idle / busy', 'RTT + over node-udp, idle / busy'];
  const baseCpu = cases.find((x) => x.name === 'flannel-udp')?.cpuSecondsPerGB;
  return markdownTable(
    head,
    rows.map((c) => {
      const r = c.vsFlannelUdp!;
      const cpu = c.cpuSecondsPerGB && baseCpu ? fmtRatio(c.cpuSecondsPerGB.median / baseCpu.median) : 'n/a';
      return [c.name, fmtRatio(r.tcp1), fmtRatio(r.tcp4), fmtRatio(r.udp), cpu, addedRttCell(c.addedRttOverFlannelUdpMs), addedRttCell(c.addedRttOverNodeUdpMs)];
    }),
  );
}

/** What the terminal shows at the end: both tables. */
export function renderTables(cases: readonly CaseSummary[]): string {
  const yardstick = yardstickTable(cases);
  return `${absoluteTable(cases)}\n${ratioTable(cases)}${yardstick ? `\n${yardstick}` : ''}`;
}

function yardstickSection(cases: readonly CaseSummary[]): string[] {
  const table = yardstickTable(cases);
  return table ? ["Against the yardsticks, flannel's udp proxy loop in C and in Node.js (above 1 is faster, except CPU):", '', table] : [];
}

export function renderReport(results: BenchResults, cases: readonly CaseSummary[]): string {
  const s = results.settings;
  const runs = s.repeat > 1 ? `${s.repeat} runs per case; each figure is the median over runs, (min–max) after it` : '1 run per case';
  return [
    `# twill bench, ${results.date}`,
    '',
    `Machine: ${machineLine(results.machine)}.`,
    `${runs}; iperf3 tests of ${s.durationSeconds} s, ${s.pings} pings ${IDLE_APART} then ${BUSY_PINGS} ${BUSY_APART}, ${s.joins} simulated joins, a ${s.hosts}-host flat lab.`,
    '',
    absoluteTable(cases),
    'Ratios are medians over medians (RTT: above 1 is slower); "RTT + over host-gw" is this case\'s median minus host-gw\'s.',
    '',
    ratioTable(cases),
    ...yardstickSection(cases),
    'Pod h1-p1 to pod h2-p1; the underlay case goes host namespace to host namespace (h1 eth0 to h2 eth0), with no twill in the path.',
    "flannel-udp: a udp lab whose agents are replaced by flannel's udp proxy loop in C (native/reference/flannel_udp.c: poll, then one packet per read and per sendto until both queues are empty), on a TUN device configured as twill's; its \"agent CPU\" is the two forwarders'.",
    "node-udp: the same, with that loop written in Node.js (src/tools/bench/reference/node-udp.ts: node:dgram and twill's TUN addon, reads on the event loop, a connected socket, no checks, no offload): the floor for a forwarder in Node.",
    'UDP: iperf3 -u -l 1400 -b 0, datagrams that arrived per second and the share lost.',
    `RTT: ping -i ${PING_INTERVAL_S} (idle; the p99 is of this series), then ping -i ${BUSY_PING_INTERVAL_S} (busy) from the same pod to the same address; an idle path costs more per round trip than a busy one because caches go cold and sleeping threads (for udp, the agents) must be woken for each packet.`,
    'Agent CPU: utime + stime of the h1 and h2 agents (/proc/PID/stat) over the single-stream TCP test, per 10⁹ bytes received.',
    'Convergence: a lease is written to etcd for a new host; the time until every host\'s agent reports that peer programmed (/v1/status), per join the slowest host.',
    '',
    '![throughput and round trip per case](report.svg)',
    '',
  ].join('\n');
}
