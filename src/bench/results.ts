import { median, quantile, spread, type Spread, type TcpSample, type UdpSample } from './stats.js';

/**
 * results.json: every raw sample of one `twill bench` run, the machine and the options. The
 * summary (medians, spreads, ratios) is derived from it by `summarize`, which the report, the
 * chart and the tests all use. Pure.
 */
export const BENCH_CASES = ['underlay', 'host-gw', 'udp'] as const;
export type BenchCase = (typeof BENCH_CASES)[number];

export const RESULTS_SCHEMA = 'twill-bench/1';

export interface Machine {
  readonly cores: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly arch: string;
  readonly node: string;
}

export interface BenchSettings {
  readonly cases: readonly BenchCase[];
  readonly durationSeconds: number;
  readonly repeat: number;
  readonly pings: number;
  readonly hosts: number;
  readonly joins: number;
}

export interface AgentCpuSample {
  /** The hosts whose agents were read: the sender's and the receiver's. */
  readonly hosts: readonly string[];
  /** utime + stime of those agents over the single-stream TCP test. */
  readonly cpuSeconds: number;
  /** Bytes the receiver got in that test. */
  readonly bytes: number;
}

export interface RunSample {
  readonly tcp1: TcpSample;
  readonly tcp4: TcpSample;
  readonly udp: UdpSample;
  /** One per ping reply. */
  readonly rttMs: readonly number[];
  readonly pingsSent: number;
  /** null where there is no agent (underlay). */
  readonly agentCpu: AgentCpuSample | null;
}

export interface JoinSample {
  /** ms from just before the etcd put to the peer being programmed, per host. */
  readonly hostsMs: Readonly<Record<string, number>>;
}

export interface CaseResult {
  readonly name: BenchCase;
  /** The lab backend the case ran in, and whether the bench brought that lab up itself. */
  readonly lab: { readonly name: string; readonly backend: string; readonly reused: boolean };
  /** Whether the agents carry the packets (udp) or only program routes (host-gw). */
  readonly agentInDataPath: boolean;
  readonly runs: readonly RunSample[];
  /** null for the underlay: no agent programs anything for it. */
  readonly convergence: { readonly method: string; readonly joins: readonly JoinSample[] } | null;
}

export interface BenchResults {
  readonly schema: typeof RESULTS_SCHEMA;
  /** When the run started, ISO 8601. */
  readonly date: string;
  readonly machine: Machine;
  readonly settings: BenchSettings;
  readonly cases: readonly CaseResult[];
}

export interface Ratios {
  readonly tcp1: number;
  readonly tcp4: number;
  readonly udp: number;
  readonly rttMedian: number;
}

export interface CaseSummary {
  readonly name: BenchCase;
  readonly runs: number;
  readonly tcp1Bps: Spread;
  readonly tcp4Bps: Spread;
  readonly udpDatagramsPerSecond: Spread;
  readonly udpLossPercent: Spread;
  /** Per run: the median and the 99th percentile of its pings; then median and spread over runs. */
  readonly rttMedianMs: Spread;
  readonly rttP99Ms: Spread;
  readonly pings: number;
  /** Agent CPU seconds per GB (1e9 bytes) received; null without agents. */
  readonly cpuSecondsPerGB: Spread | null;
  readonly agentInDataPath: boolean;
  /** Per join the slowest host; median and worst over the joins. */
  readonly convergenceMs: { readonly median: number; readonly worst: number; readonly joins: number } | null;
  /** This case's medians over the underlay's and host-gw's (null when that case did not run). */
  readonly vsUnderlay: Ratios | null;
  readonly vsHostGw: Ratios | null;
}

export const cpuSecondsPerGB = (s: AgentCpuSample): number => (s.bytes > 0 ? s.cpuSeconds / (s.bytes / 1e9) : NaN);

/** A join's convergence: the last host to program the new peer. */
export const joinMs = (j: JoinSample): number => Math.max(...Object.values(j.hostsMs));

function baseFigures(c: CaseResult) {
  const runs = c.runs;
  const cpu = runs.flatMap((r) => (r.agentCpu ? [cpuSecondsPerGB(r.agentCpu)] : []));
  const joins = c.convergence?.joins.map(joinMs) ?? [];
  return {
    name: c.name,
    runs: runs.length,
    tcp1Bps: spread(runs.map((r) => r.tcp1.bitsPerSecond)),
    tcp4Bps: spread(runs.map((r) => r.tcp4.bitsPerSecond)),
    udpDatagramsPerSecond: spread(runs.map((r) => r.udp.datagramsPerSecond)),
    udpLossPercent: spread(runs.map((r) => r.udp.lossPercent)),
    rttMedianMs: spread(runs.map((r) => median(r.rttMs))),
    rttP99Ms: spread(runs.map((r) => quantile(r.rttMs, 0.99))),
    pings: runs.reduce((n, r) => n + r.rttMs.length, 0),
    cpuSecondsPerGB: cpu.length > 0 ? spread(cpu) : null,
    agentInDataPath: c.agentInDataPath,
    convergenceMs: joins.length > 0 ? { median: median(joins), worst: Math.max(...joins), joins: joins.length } : null,
  };
}

type Figures = ReturnType<typeof baseFigures>;

function ratios(c: Figures, base: Figures | undefined): Ratios | null {
  if (!base) return null;
  return {
    tcp1: c.tcp1Bps.median / base.tcp1Bps.median,
    tcp4: c.tcp4Bps.median / base.tcp4Bps.median,
    udp: c.udpDatagramsPerSecond.median / base.udpDatagramsPerSecond.median,
    rttMedian: c.rttMedianMs.median / base.rttMedianMs.median,
  };
}

/** Medians and spreads per case, and each case's ratio to the underlay and to host-gw. */
export function summarize(results: Pick<BenchResults, 'cases'>): CaseSummary[] {
  const figures = results.cases.map(baseFigures);
  const underlay = figures.find((f) => f.name === 'underlay');
  const hostGw = figures.find((f) => f.name === 'host-gw');
  return figures.map((f) => ({ ...f, vsUnderlay: ratios(f, underlay), vsHostGw: ratios(f, hostGw) }));
}
