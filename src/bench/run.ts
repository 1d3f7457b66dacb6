import { iperf3, ping } from '../kernel/probes.js';
import { labDown } from '../lab/down.js';
import { defaultLabDir } from '../lab/naming.js';
import type { LabState } from '../lab/state.js';
import type { LabBackend } from '../lab/topology.js';
import { labUp, type LabDeps } from '../lab/up.js';
import { iperfBitsPerSecond, median, pingRtts, quantile } from './stats.js';

export interface BenchOptions {
  readonly cases: readonly LabBackend[];
  readonly seconds: number;
  readonly pings: number;
}

export interface CaseResult {
  readonly name: LabBackend;
  readonly tcpBitsPerSecond: number;
  readonly rttMs: readonly number[];
  readonly rttMedianMs: number;
  readonly rttP99Ms: number;
}

const LAB = 'bench';

/** Brings a 2-host lab up per case, measures pod h1-p1 → pod h2-p1, and tears it down again. */
export async function runBench(opts: BenchOptions, deps: LabDeps): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const backend of opts.cases) {
    deps.report(`${backend}: lab up`);
    const dir = defaultLabDir(LAB);
    try {
      const state = await labUp({ name: LAB, hosts: 2, podsPerHost: 1, backend, topology: 'flat', dir }, deps);
      results.push(await measure(backend, state, opts, deps));
    } finally {
      await labDown(LAB, dir);
    }
  }
  return results;
}

async function measure(name: LabBackend, state: LabState, opts: BenchOptions, deps: LabDeps): Promise<CaseResult> {
  const [from, to] = [state.pods[0]!, state.pods[1]!];
  if (!to.ip) throw new Error(`pod ${to.ns} has no address`);
  deps.report(`${name}: ping ×${opts.pings}`);
  const rttMs = pingRtts(await ping(from.ns, to.ip, opts.pings, 0.01));
  deps.report(`${name}: iperf3 TCP, 1 stream, ${opts.seconds} s`);
  const json = await iperf3({ serverNs: to.ns, clientNs: from.ns, serverIp: to.ip, seconds: opts.seconds, streams: 1 });
  return { name, tcpBitsPerSecond: iperfBitsPerSecond(json), rttMs, rttMedianMs: median(rttMs), rttP99Ms: quantile(rttMs, 0.99) };
}

/** A plain-text table with each case's ratio to host-gw. */
export function renderResults(results: readonly CaseResult[]): string {
  const base = results.find((r) => r.name === 'host-gw');
  const rows = results.map((r) => [
    r.name,
    `${(r.tcpBitsPerSecond / 1e9).toFixed(2)} Gbit/s`,
    base ? (r.tcpBitsPerSecond / base.tcpBitsPerSecond).toFixed(3) : '-',
    `${r.rttMedianMs.toFixed(3)} ms`,
    `${r.rttP99Ms.toFixed(3)} ms`,
    base ? `${(r.rttMedianMs - base.rttMedianMs >= 0 ? '+' : '')}${(r.rttMedianMs - base.rttMedianMs).toFixed(3)} ms` : '-',
  ]);
  const head = ['case', 'TCP 1 stream', '× host-gw', 'RTT median', 'RTT p99', 'RTT vs host-gw'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}
